"""The daemon: starts the parts in order, runs the main loop, stops them in reverse.

Theory of operation
-------------------
This is the imperative shell around the pure core (protocol, call machine, screening). One
thread, the *main loop*, owns the call machine; the :class:`~callguard.daemon.actions.ActionRunner`
carries out its actions and the :class:`~callguard.daemon.status.StatusBoard` keeps what
``callguard status`` shows. Everything else talks to the loop through a queue:

* the transport's reader thread puts modem events on the queue (it must never block);
* the transport's supervisor reports connected/disconnected on the queue;
* line sensing and the button put their changes on the queue;
* SIGTERM/SIGINT and SIGHUP only set flags (a signal handler must not take a lock that the
  interrupted main thread may hold), which the loop reads at least every
  :data:`LOOP_TICK_S`.

Start-up is in order (config, store and index, modem, line sensing, lights, audio, status) and
shut-down in reverse, in ``finally``, so the line is put on-hook on every way out: the
transport's init says ``ATH0`` first, every end of a seized call releases it (and the runner
keeps trying until the modem confirms), a fault while handling a call ends that call (it rings
through), and stopping says ``ATH0`` (bounded, DTR dropped if the modem is deaf) before the port
is closed. A fault never stops the daemon.

The caller ID comes first. It jumps the queue, and housekeeping waits while one does. Work that
can wait is done a moment after the change that calls for it
(:data:`~callguard.daemon.actions.SETTLE_S`), not at once, because the next caller ID is likeliest
just after a call (a blocked caller redials the moment the line is put down): the status
snapshot, the call's record for the writer, and re-asserting caller ID with the modem (which
also gives way to a call that comes in). While the daemon runs, the interpreter switches threads
every :data:`SWITCH_INTERVAL_S` rather than every 5 ms, so a thread busy in Python holds up the
reader and the loop for less at each hand-over.

Is the line alive? A :class:`~callguard.hardware.linesense.LineVoltageWatch` reads the line
voltage (``AT-TRV``) every ``line_check_s`` (:data:`~callguard.hardware.linesense.LINE_CHECK_S`)
while the line is idle, whatever ``line_sense.source`` is, if the modem can; the loop tells it
when a call is on or CallGuard holds the line (no readings then), and the status shows
``line_voltage`` (dead or not, since when). It keeps off the seize path by the auto probe's
rules (see :mod:`callguard.hardware.linesense`).

Time: deadlines run on a monotonic clock (``monotonic``, injectable); the wall clock (``clock``)
is only written down. A Pi with no real-time clock steps its wall clock at NTP sync.

systemd: ``READY=1`` once the modem has been tried, ``WATCHDOG=1`` from the main loop while the
modem link is not wedged (so a wedged loop or transport is restarted), ``RELOADING=1`` on
SIGHUP, ``STOPPING=1`` on the way out.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import datetime as dt
import logging
import queue
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from callguard import config as config_mod
from callguard.audio.prompts import Prompts, Voice
from callguard.audio.speaker import RoomSpeaker
from callguard.clock import ClockState, SystemClock
from callguard.config import Config
from callguard.core import screening
from callguard.core.call import (
    CallAction,
    CallMachine,
    LineState,
    LogCall,
    Moment,
    Phase,
    Seize,
    Timing,
)
from callguard.core.hook import Hook, HookChange
from callguard.core.lists import MAX_NAME, target_for
from callguard.core.numbers import Caller, quick_key, warm_up
from callguard.core.record import last_unknown_caller
from callguard.daemon.actions import SETTLE_S, ActionRunner
from callguard.daemon.reloader import IndexReloader
from callguard.daemon.status import CallerIdTiming, Live, StatusBoard
from callguard.daemon.systemd import Notifier
from callguard.daemon.writer import Writer
from callguard.hardware import linesense
from callguard.hardware.indicators import LONG_PRESS_S, Indicators
from callguard.modem.protocol import CallerId, Event, Ring
from callguard.modem.transport import ModemTransport, TransportStatus
from callguard.store.files import Signature, file_signature
from callguard.store.folder import now_local
from callguard.store.index import ListIndex
from callguard.store.lists import Store
from callguard.texts import BLOCKED_LAST, NOTHING_TO_BLOCK, shown

log = logging.getLogger("callguard.daemon.app")

LOOP_TICK_S = 0.2
RELOAD_GRACE_S = 0.03
"""The most a caller ID waits for a list reload already under way (the UK gap is >= 200 ms)."""
INDEX_CHECK_S = 0.05
"""How often the reloader looks at the lists files (a stat() each when unchanged, a few µs): a
number the family has just added counts from the next call, whatever the list's size."""
VOICE_JOIN_ON_STOP_S = 2.0
CONFIG_CHECK_S = 2.0
WRITER_OPEN_WAIT_S = 1.0
"""How long start-up waits for the call log to open (a first start after an upgrade migrating
a big ``calls.json`` takes longer, and is not waited for)."""
"""How often the daemon looks at its config file (a stat()): a change made by the family page
is taken up as SIGHUP would, with no signal between processes."""
CLOCK_CHECK_S = 60.0
"""How often the daemon asks whether the system clock is synchronised (one system call)."""
SWITCH_INTERVAL_S = 0.0005
"""How long a thread busy in Python may keep the interpreter from one that is waiting (Python's
default is 5 ms): the reader and the loop wait at most this at each hand-over while another
thread builds a changed list's index or writes, instead of up to 5 ms each time."""


def _voice(config: Config) -> Voice:
    w = config.warning
    return Voice(
        text=w.text,
        line_text=w.line_text,
        claim_text=w.claim_text,
        recording=w.recording,
        voice=w.voice,
        speed_wpm=w.speed_wpm,
        say_who=w.say_who,
        say_place=w.say_place,
    )


@dataclass(frozen=True)
class Observed:
    """What the daemon did, for a narrator (``callguard demo``) or a test."""

    kind: str  # "modem", "screened", "seized", "released", "warned", "logged", "reloaded"
    detail: Any = None


class Daemon:
    """``callguard run``. Build it, then :meth:`run` (blocks until :meth:`stop` or a signal)."""

    def __init__(
        self,
        config: Config,
        *,
        config_path: str | None = None,
        clock: Callable[[], dt.datetime] = now_local,
        monotonic: Callable[[], float] = time.monotonic,
        notifier: Notifier | None = None,
        observer: Callable[[Observed], None] | None = None,
        transport_factory: Callable[..., ModemTransport] = ModemTransport,
        ring_gap_s: float | None = None,
        pin_factory: Any = None,
        clock_check: Callable[[], ClockState] | None = None,
        long_press_s: float = LONG_PRESS_S,
        line_check_s: float = linesense.LINE_CHECK_S,
    ) -> None:
        self.config = config
        self.config_path = config_path
        self.clock = clock
        self.monotonic = monotonic
        self.notifier = notifier or Notifier()
        self.observer = observer
        self.transport_factory = transport_factory
        self.ring_gap_s = ring_gap_s or Timing().ring_gap_s  # shorter only for a sped-up demo
        self.store = Store(
            config.storage.dir,
            region=config.screening.region,
            retention_days=config.storage.log_retention_days,
            runtime_dir=config.storage.runtime_dir,
        )
        self.store.log.keep_open = True  # one connection for the daemon's appends (disk wear)
        self.index = ListIndex(self.store)
        self.machine = self._make_machine(config)
        self.transport: ModemTransport | None = None
        self.prompts = Prompts(Path(config.storage.dir) / "cache", _voice(config))
        self.speaker = RoomSpeaker(
            config.warning.room_command,
            self.prompts,
            on_played=lambda path: self._observe("room-warning", path),
        )
        self.line_sense: linesense.LineSense = linesense.NoLineSense()
        self.line_check_s = line_check_s
        self.voltage: linesense.LineVoltageWatch | None = None  # is the line alive at all
        self.pin_factory = pin_factory
        self.long_press_s = long_press_s
        self.indicators: Indicators | None = None
        self.clock_check = clock_check or SystemClock().check
        self.clock_state = ClockState(True, "not checked yet")
        self._clock_checked = -CLOCK_CHECK_S
        self._config_signature = self._config_file_signature()
        self._config_checked = 0.0
        self.cid_timing = CallerIdTiming()
        self.board = StatusBoard(clock, config.modem.port)
        self.writer = Writer(
            # looked up at each write, so a test (or a reload) may swap the store's methods
            append_call=lambda call: self.store.append_call(self._stamped(call)),
            write_status=lambda status: self.store.write_status(status),
            raise_alert=lambda call: self.store.raise_alert(call),
            open_log=lambda: self.store.log.open(),
            close_log=lambda: self.store.log.close(),
            monotonic=monotonic,
        )
        self.actions = ActionRunner(
            config,
            store=self.store,
            prompts=self.prompts,
            speaker=self.speaker,
            board=self.board,
            writer=self.writer,
            observe=self._observe,
            monotonic=monotonic,
        )
        self._queue: queue.Queue[tuple[str, Any]] = queue.Queue()
        # how long the modem held the line to speak the warning: not the resident's call
        self.actions.on_line_held = lambda held: self._queue.put(("held-line", held))
        # caller IDs jump the queue: screened before any other work that is waiting
        self._caller_ids: collections.deque[CallerId] = collections.deque()
        self._ring_waiting = threading.Event()  # RINGs coalesce: a flood is one event
        self._reloader = IndexReloader(self.index, INDEX_CHECK_S, on_reload=self._lists_reloaded)
        self._stop_requested = threading.Event()
        self._reload_requested = threading.Event()
        self._last_watchdog = 0.0
        self._status_due: float | None = None

    # -- public --------------------------------------------------------------------------------

    def stop(self) -> None:
        """Ask the main loop to finish (thread-safe, signal-safe)."""
        self._stop_requested.set()

    def reload(self) -> None:
        self._reload_requested.set()

    def run(self, install_signals: bool = True) -> int:
        previous = sys.getswitchinterval()
        sys.setswitchinterval(SWITCH_INTERVAL_S)
        try:
            return self._run(install_signals)
        finally:
            sys.setswitchinterval(previous)

    def _run(self, install_signals: bool) -> int:
        if install_signals:
            self._install_signals()
        warm_up(self.config.screening.region)
        screening.warm_up()
        # what the daemon keeps in its storage folder is made before the lists are read (the
        # first look trusts them while the folder is unchanged): the cache folder (prompts,
        # built indexes), the status's folder where there is no runtime_dir, the call log's
        # database files
        for folder in (self.prompts.cache_dir, self.store.status_path.parent):
            with contextlib.suppress(OSError):  # a read-only card: screening goes on without
                folder.mkdir(exist_ok=True)
        self.writer.start(wait_open_s=WRITER_OPEN_WAIT_S)
        try:
            self.index.refresh()
        except Exception:  # screen anyway (unknown callers are warned) rather than not at all
            log.exception("the lists could not be read; screening without them until they can")
        self._reloader.start()
        self._log_call_cut_short()
        log.info(
            "CallGuard starting: lists %s; storage %s",
            ", ".join(f"{n} {c}" for n, c in self.index.sizes().items()),
            self.config.storage.dir,
        )
        if self.config.line_sense.source == "none":
            log.info(
                'line sensing is off (line_sense.source = "none"): call durations are '
                "unknown and the grooming alert cannot work"
            )
        self.transport = self.transport_factory(
            self.config.modem.port,
            country=self.config.modem.country,
            profile=self.config.modem.profile,
            baudrate=self.config.modem.baudrate,
            health_interval_s=self.config.modem.health_check_s,
            on_status=lambda status: self._queue.put(("status", status)),
        )
        self.transport.add_listener(self._line_event)
        self.transport.set_first_look(self._first_look_on_reader)
        self.actions.transport = self.transport
        self.voltage = linesense.LineVoltageWatch(
            self.transport,
            check_s=self.line_check_s,
            wait_for_seed=self.config.line_sense.source == "auto",  # auto asks first
            on_change=lambda reading: self._queue.put(("line-voltage", reading)),
            clock=self.monotonic,
            wall=self.clock,
        )
        try:
            self.transport.start()
            self.line_sense = linesense.build(
                self.config.line_sense.source,
                transport=self.transport,
                on_change=lambda change: self._queue.put(("hook", change)),
                gpio_pin=self.config.line_sense.gpio_pin,
                active_high=self.config.line_sense.gpio_active_high,
                off_hook_below_v=self.config.line_sense.off_hook_below_v,
                pin_factory=self.pin_factory,  # the lights' pins: one factory, one set of fakes
                clock=self.monotonic,  # changes are dated on the daemon's own clock
                on_decided=self._line_sense_decided,  # "auto": show what it chose
            )
            self.line_sense.start()
            self.voltage.start()
            self.actions.line_sense = self.line_sense
            self._start_indicators()
            self._start_audio()
            self.transport.wait_connected(5.0)
            self._write_status()
            self.notifier.ready(self._status_line())
            self._loop()
        finally:
            self._shutdown()
        return 0

    def _log_call_cut_short(self) -> None:
        """A daemon killed mid-call (kill -9, a crash, the watchdog) left the call in progress
        in its status: log it now, as ended by the restart, so it is not lost."""
        try:
            previous = self.store.read_status()
        except Exception:
            log.exception("could not read the last status to find a call cut short")
            return
        call = (previous or {}).get("current_call")
        if not isinstance(call, dict) or (previous or {}).get("daemon") != "running":
            return
        note = "CallGuard restarted during this call; it ended then at the latest"
        record = {
            **call,
            "ended": str((previous or {}).get("updated") or call.get("started")),
            "notes": [*list(call.get("notes") or []), note],
        }
        log.warning("logging the call that was in progress when CallGuard last stopped")
        self.writer.log_call(record)

    def _start_indicators(self) -> None:
        pins = self.config.indicators

        def pin(value: int) -> int | None:
            return None if value < 0 else value

        self.indicators = Indicators(
            alert_pin=pin(pins.alert_led_pin),
            status_pin=pin(pins.status_led_pin),
            button_pin=pin(pins.button_pin),
            on_button=lambda: self._queue.put(("ack", "the button")),
            on_long_press=lambda: self._queue.put(("block-last", "the button")),
            long_press_s=self.long_press_s,
            pin_factory=self.pin_factory,
        )
        self.indicators.modem(False)
        self.actions.indicators = self.indicators
        self.actions.follow_alert(self.machine.line, force=True)
        if self.actions.alert_active:
            log.warning("the grooming alert from before the restart is still on")
        if self.machine.grooming_minutes is None:
            log.info("the grooming alert is off: it needs line sensing (line_sense.source)")

    def _start_audio(self) -> None:
        self.speaker.start()
        if self.config.warning.line and self.config.line_sense.source == "none":
            log.warning(
                "warning.line is on, but the line warning needs line sensing to know when a "
                'call is answered: set line_sense.source to "modem" or "gpio"'
            )
        if not self.speaker.enabled:
            log.info("warning.room_command is empty: no warnings in the room")

        def warm() -> None:  # render and convert now, not while a caller is waiting
            try:
                self.prompts.room_wav(None)
                if self.config.warning.line:
                    self.prompts.modem_bytes("warning")
                if self.config.block.announce:
                    self.actions.announcement = self.prompts.modem_bytes("announcement")
            except Exception:
                log.exception("could not prepare the spoken prompts")

        threading.Thread(target=warm, name="prompt-warmup", daemon=True).start()

    # -- the loop ----------------------------------------------------------------------------

    def _line_event(self, event: Event) -> None:
        """From the transport's reader thread: only what the call machine needs, coalesced.

        DLE codes, replies and the rest are not the loop's (a flood of 100,000 ``<DLE>R`` must
        not queue up in front of a caller); a RING already waiting makes another one nothing.
        """
        if isinstance(event, CallerId):
            self._caller_ids.append(event)
            self._queue.put(("wake", None))
        elif isinstance(event, Ring) and not self._ring_waiting.is_set():
            self._ring_waiting.set()
            self._queue.put(("modem", event))

    def _next(self) -> tuple[str, Any]:
        if self._caller_ids:
            return "modem", self._caller_ids.popleft()
        try:
            kind, payload = self._queue.get(timeout=self._wait_s())
        except queue.Empty:
            return "tick", None
        if kind == "wake":
            return ("modem", self._caller_ids.popleft()) if self._caller_ids else ("tick", None)
        if kind == "modem" and isinstance(payload, Ring):
            self._ring_waiting.clear()
        return kind, payload

    def _loop(self) -> None:
        while not self._stop_requested.is_set():
            if self._reload_requested.is_set():
                self._reload_requested.clear()
                self._reload()
            kind, payload = self._next()
            self._handle(kind, payload)
            if not self._caller_ids:  # housekeeping waits while a caller ID does
                self._housekeeping()

    def _wait_s(self) -> float:
        deadlines = [
            d
            for d in (
                self.machine.next_deadline(),
                self.actions.after_call_at(self.machine.line),
                self.actions.records_due,
                self._status_due,
            )
            if d is not None
        ]
        if not deadlines:
            return LOOP_TICK_S
        return min(LOOP_TICK_S, max(0.0, min(deadlines) - self.monotonic()))

    def _now(self) -> Moment:
        return Moment(self.monotonic(), self.clock())

    def _handle(self, kind: str, payload: Any) -> None:
        now = self._now()
        try:
            taken = kind == "modem" and self._taken_by_reader(payload)
            sensing = self.line_sense.available  # "auto" decides once the modem is there
            self.machine.line_sensing = sensing
            self.machine.line_warning = sensing and self.config.warning.line
            actions: list[CallAction] = []
            if kind == "modem":
                actions = self._modem_event(payload, now, taken)
            elif kind == "status":
                actions = self._modem_status(payload, now)
            elif kind == "hook":
                actions = self._hook(payload, now)
            elif kind == "ack":
                self.actions.acknowledge(payload, self.machine.line)
            elif kind == "block-last":
                self._block_last(payload)
            elif kind == "held-line":
                actions = self.machine.line_held(payload, now)
            elif kind == "line-voltage":
                self.board.changed()
                self._observe("line-voltage", payload)
            actions += self.machine.tick(now)
            self.actions.execute(actions, self.machine.line)
            self.actions.settle_first()
            wanted = self.machine.wants_line_state(now)
            self.line_sense.set_active(wanted)
            if self.voltage is not None:  # idle only: no call, and the line not held by us
                self.voltage.set_active(wanted or self.actions.off_hook)
        except Exception:
            log.exception("error while handling %s %r; the call rings through", kind, payload)
            self._recover(now)

    def _taken_by_reader(self, event: Event) -> bool:
        """Whether the modem's reader took the line for this caller ID (the transport's first
        look); if so the line counts as off-hook from here on, whatever follows, so an error
        handling the call still puts it down."""
        transport = self.transport
        if not isinstance(event, CallerId) or transport is None:
            return False
        if not transport.claim_first_look(event):
            return False
        self.actions.off_hook = True
        return True

    def _modem_event(self, event: Event, now: Moment, taken: bool) -> list[CallAction]:
        if isinstance(event, CallerId):
            self._seize_first(event, taken)
            actions = self.machine.caller_id(event, now)
            if not event.refined and self.cid_timing.saw(self.machine.current):
                self.board.changed()
            return actions
        if isinstance(event, Ring):
            self.board.changed()
            return self.machine.ring(now)
        return []

    def _seize_first(self, event: CallerId, taken: bool) -> None:
        """A new call from a number the lists block outright is seized before anything else,
        the number parsed and screened after (a few hundred microseconds sooner: those count
        on a Pi Zero). Mostly the modem's reader has ``taken`` the line already, the moment the
        caller ID arrived (:meth:`_first_look_on_reader`); otherwise (the modem busy with
        another command just then) the same look is taken here. The call machine's screening
        follows as always and has the last word (:meth:`ActionRunner.settle_first`)."""
        if taken or self._blocks_outright(event):
            try:
                self.actions.seize_first()  # after the reader's ATH1: waits for its reply
            except Exception:  # the call machine's own Seize tries again
                log.exception("could not take the line at the first look")

    def _first_look_on_reader(self, event: CallerId) -> bool:
        """The transport's first look: ``ATH1`` from the reader, unless a blocked caller is to
        hear the announcement (the voice session takes the line itself, from the loop)."""
        announce = self.config.block.announce and self.actions.announcement is not None
        return not announce and self._blocks_outright(event)

    def _blocks_outright(self, event: CallerId) -> bool:
        """The first look: whether ``event`` is a new call, from idle, that the lists in force
        block outright, by string work on the number alone. Asked on the modem's reader thread
        (so it only reads: attributes the loop swaps whole, one stat()) and by the loop."""
        if event.refined or self.machine.phase is not Phase.IDLE or self.actions.off_hook:
            return False
        key = quick_key(event.number, self.config.screening.region)
        if key is None:
            return False
        lists = self.index.trusted_snapshot()
        return lists is not None and screening.blocks_outright(key, lists, self.clock)

    def _hook(self, change: HookChange, now: Moment) -> list[CallAction]:
        ago = max(0.0, now.mono - change.at)  # line sensing dates changes on the same clock
        began = Moment(now.mono - ago, now.wall - dt.timedelta(seconds=ago))
        self.board.changed()
        self._observe("hook", change)
        if change.hook is Hook.OFF:
            return self.machine.line_off_hook(began)
        return self.machine.line_on_hook(began)

    def _modem_status(self, status: TransportStatus, now: Moment) -> list[CallAction]:
        self.board.modem_changed(status)
        if self.indicators is not None:
            self.indicators.modem(status.connected)
        self._observe("modem", status)
        if status.connected:
            if self.actions.off_hook:  # init says ATH0 first; only a confirmed one gets here
                log.warning("the modem was re-initialised: the line is on-hook again")
            self.actions.line_down()
            self.actions.caller_id_asserted()  # init turned caller ID on
            return []
        return self.machine.modem_lost(now)

    def _recover(self, now: Moment) -> None:
        """After a fault: abandon the call (it rings through) and make sure of on-hook."""
        try:
            actions = self.machine.reset(now, "CallGuard hit an error handling this call")
            self.actions.execute([a for a in actions if not isinstance(a, Seize)], LineState.IDLE)
        except Exception:
            log.exception("could not log the call after an error")
        self.actions.release_after_fault()

    def _line_sense_decided(self) -> None:
        """``auto`` has chosen (its thread): show it; its answer is the first voltage reading."""
        self.board.changed()
        sense, voltage = self.line_sense, self.voltage
        if isinstance(sense, linesense.AutoLineSense) and voltage is not None:
            voltage.seed(sense.answer)

    def _observe(self, kind: str, detail: Any = None) -> None:
        if self.observer is not None:
            try:
                self.observer(Observed(kind, detail))
            except Exception:
                log.exception("observer failed")

    # -- housekeeping -----------------------------------------------------------------------

    def _housekeeping(self) -> None:
        mono = self.monotonic()
        if self.machine.phase is not Phase.SEIZED:  # a held block is released by its deadline
            self.actions.release_if_due(mono)
        self.actions.after_call_if_due(mono, self.machine.line)
        self.actions.hand_over_if_due(mono)
        if self.notifier.watchdog_interval_s and mono - self._last_watchdog >= min(
            self.notifier.watchdog_interval_s, 5.0
        ):
            transport = self.transport
            if transport is None or transport.healthy():
                self._last_watchdog = mono
                self.notifier.watchdog()
            # else: no ping; systemd restarts a daemon whose modem link is wedged
        with contextlib.suppress(Exception):
            self.actions.follow_alert(self.machine.line)
        if mono - self._clock_checked >= CLOCK_CHECK_S:
            self._check_clock(mono)
        if mono - self._config_checked >= CONFIG_CHECK_S and self.machine.phase is Phase.IDLE:
            self._config_checked = mono
            signature = self._config_file_signature()
            if signature != self._config_signature:
                log.info("the config file changed: reloading it")
                self._reload()
        if self.board.dirty:
            if self._status_due is None:
                self._status_due = mono + SETTLE_S  # building it takes a millisecond or two
            if mono >= self._status_due:
                self._write_status()

    def _screen(self, caller: Caller, now: dt.datetime, name: str | None) -> screening.Verdict:
        # the index in force: a changed list is read and built off the loop, then swapped in;
        # a reload under way gets a short grace (a small list is ready within it: a number added
        # a moment ago counts), never more; one snapshot, so a call sees one version of the lists
        self._reloader.current_within(RELOAD_GRACE_S)
        settings = self.config.screening
        if not self.clock_state.synchronised and settings.quiet_hours:
            settings = dataclasses.replace(settings, quiet_hours="")  # never block on a wrong time
        return screening.screen(caller, self.index.snapshot(), settings, now, name)

    # -- the clock, caller ID's timing, the button's long press --------------------------------

    def _check_clock(self, mono: float) -> None:
        """Whether the system clock is right yet (a syscall): until it is, quiet hours are off
        and the log's records say so."""
        self._clock_checked = mono
        try:
            state = self.clock_check()
        except Exception:
            log.exception("could not tell whether the clock is synchronised")
            return
        if state.synchronised != self.clock_state.synchronised:
            if state.synchronised:
                log.info("the system clock is synchronised: quiet hours apply again")
            else:
                log.warning("the system clock %s", state.detail)
            self.board.changed()
        self.clock_state = state

    def _stamped(self, call: dict[str, Any]) -> dict[str, Any]:
        """A call record as logged: flagged when the clock was not yet right (dates may be off)."""
        if self.clock_state.synchronised:
            return call
        return {**call, "clock_synchronised": False}

    def _block_last(self, by: str) -> None:
        """The button's long press: the last unknown caller that rang or was answered onto the
        block list, confirmed by a sentence in the room. The list is written on a worker thread
        (a disk write never holds up the loop); the next call from that number is seized."""
        current = self.machine.current
        records = ([current] if current is not None else []) + self.board.recent_calls()
        call = last_unknown_caller(r.to_json() for r in records)
        region = self.config.screening.region

        def work() -> None:
            try:
                number = call.get("number") if call else None
                if call is None or not number:
                    log.warning("long press: no unknown caller with a number to block")
                    self.speaker.say(NOTHING_TO_BLOCK)
                    return
                when = str(call.get("started", ""))[11:16]
                name = str(call.get("name") or "")[:MAX_NAME] or f"last caller at {when}"
                self.store.add(
                    "block",
                    target_for(str(number), region),
                    name=name,
                    note=f"blocked with the button ({when})",
                    by=by,
                )
                log.warning("long press: %s is now on the block list", shown(number))
                self._observe("blocked-last", number)
                self.speaker.say(BLOCKED_LAST)
            except Exception:
                log.exception("long press: could not block the last caller")

        threading.Thread(target=work, name="block-last", daemon=True).start()

    def _lists_reloaded(self) -> None:
        log.info("lists reloaded: %s", self.index.sizes())
        self.board.changed()

    def _make_machine(self, config: Config) -> CallMachine:
        return CallMachine(
            self._screen,
            region=config.screening.region,
            timing=Timing(hold_s=config.block.hold_s, ring_gap_s=self.ring_gap_s),
            line_sensing=config.line_sense.source != "none",
            line_warning=config.warning.line and config.line_sense.source != "none",
            grooming_minutes=config.grooming.minutes
            if config.line_sense.source != "none"
            else None,
        )

    def _config_file_signature(self) -> Signature | None:
        source = self.config_path or self.config.source
        return file_signature(source) if source and not source.startswith("(") else None

    def _reload(self) -> None:
        self._config_signature = (
            self._config_file_signature()
        )  # before reading: a racing write shows
        self.notifier.reloading()
        try:
            new = config_mod.load(self.config_path)
        except config_mod.ConfigError as exc:
            log.error("SIGHUP: the new config was not loaded, the old one stays: %s", exc)
        else:
            if new.modem != self.config.modem or new.storage != self.config.storage:
                log.warning("SIGHUP: [modem] and [storage] changes take effect after a restart")
            self.config = dataclasses.replace(
                new,
                modem=self.config.modem,
                storage=self.config.storage,
                line_sense=self.config.line_sense,
                indicators=self.config.indicators,
            )
            if self.machine.grooming_minutes is not None:
                self.machine.grooming_minutes = new.grooming.minutes
            self.machine.timing = Timing(hold_s=new.block.hold_s, ring_gap_s=self.ring_gap_s)
            self.machine.region = new.screening.region
            # machine.line_warning follows self.config and the line sense at the next input
            self.prompts.voice = _voice(self.config)
            self.speaker.set_command(new.warning.room_command)
            self.actions.config = self.config
            log.info("SIGHUP: configuration reloaded from %s", new.source)
        self._reloader.poke(force=True)  # read again off the loop, even if unchanged
        self.board.changed()
        self._observe("reloaded")
        self.notifier.ready(self._status_line())

    def _line_state(self) -> LineState:
        if self.actions.off_hook and self.machine.line is LineState.IDLE:
            return LineState.IN_CALL  # CallGuard still holds the line; it keeps trying
        return self.machine.line

    def _live(self) -> Live:
        ind = self.indicators
        return Live(
            line=self._line_state(),
            off_hook=self.actions.off_hook,
            on_hook_failures=self.actions.on_hook_failures,
            current_call=self.machine.current,
            grooming_alert=self.actions.alert_active,
            indicators={
                "alert_led": ind.alert_state if ind else "off",
                "detail": ind.detail if ind else "not started",
            },
            line_sense={"source": self.line_sense.name, "detail": self.line_sense.detail},
            line_voltage=(
                self.voltage.reading.to_json()
                if self.voltage is not None
                else linesense.LineVoltage(detail="not started").to_json()
            ),
            clock_synchronised=self.clock_state.synchronised,
            caller_id_timing=self.cid_timing.verdict(),
            lists={**self.index.sizes(), "community": self.index.community_size()},
            unlogged_calls=self.writer.unlogged + self.actions.waiting_records,
        )

    def _status_line(self) -> str:
        return self.board.line_text(self._live())

    def status(self, state: str = "running") -> dict[str, Any]:
        return self.board.snapshot(state, self._live())

    def _write_status(self, state: str = "running") -> None:
        """Hand the status to the writer (latest wins, a few writes a second at most)."""
        self.board.dirty = False
        self._status_due = None
        self.writer.status(self.status(state))
        self.notifier.status(self._status_line())

    # -- start/stop --------------------------------------------------------------------------

    def _install_signals(self) -> None:
        def on_stop(signum: int, frame: FrameType | None) -> None:
            self._stop_requested.set()

        def on_hup(signum: int, frame: FrameType | None) -> None:
            self._reload_requested.set()

        signal.signal(signal.SIGTERM, on_stop)
        signal.signal(signal.SIGINT, on_stop)
        signal.signal(signal.SIGHUP, on_hup)

    def _shutdown(self) -> None:
        self.notifier.stopping()
        log.info("CallGuard stopping")
        with contextlib.suppress(Exception):
            self.speaker.stop()
        if self.actions.voice_thread is not None:
            self.actions.voice_thread.join(VOICE_JOIN_ON_STOP_S)  # the transport's stop ends it
        with contextlib.suppress(Exception):
            self.line_sense.stop()
        if self.voltage is not None:
            with contextlib.suppress(Exception):
                self.voltage.stop()
        if self.indicators is not None:
            self.indicators.close()  # the status LED goes dark: the daemon is not running
        transport = self.transport
        if transport is not None:
            transport.set_first_look(None)  # no seizure the stop-time ATH0 could miss
            with contextlib.suppress(Exception):
                for action in self.machine.reset(self._now(), "CallGuard was stopped"):
                    if isinstance(action, LogCall):
                        self.actions.log_call(action.record)
            # stop() says ATH0 (bounded), drops DTR if the modem does not answer, and closes
            transport.stop()
        self._reloader.stop()
        self.actions.hand_over()
        self._write_status("stopped")
        self.writer.stop()  # writes what waits: the last calls and the "stopped" status
