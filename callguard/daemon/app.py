"""The daemon: wires the modem, the call machine, the lists and the log together.

Theory of operation
-------------------
This is the imperative shell around the pure core (protocol, call machine, screening). One
thread, the *main loop*, owns the call machine and carries out its actions; everything else
talks to it through a queue:

* the transport's reader thread puts modem events on the queue (it must never block);
* the transport's supervisor reports connected/disconnected on the queue;
* SIGTERM/SIGINT and SIGHUP only set flags (a signal handler must not take a lock that the
  interrupted main thread may hold), which the loop reads at least every
  :data:`LOOP_TICK_S`.

Start-up is in order (config, store and index, modem, status) and shut-down in reverse, in
``finally``, so the line is put on-hook on every way out: the transport's init says ``ATH0``
first, a seized call is released when its hold time is up, a fault while handling a call ends
that call (it rings through) and puts the line on-hook, and stopping says ``ATH0`` before the
port is closed. A fault never stops the daemon.

Off-hook is a state the daemon owns. Every ``Seize`` sets it; only a modem that confirms
``ATH0`` (or a re-initialisation, which says ``ATH0`` first) clears it. A release that is not
confirmed is retried on a timer (:data:`ON_HOOK_RETRY_S`, doubling to :data:`ON_HOOK_RETRY_MAX_S`)
for as long as it takes, and after every :data:`REINIT_AFTER_FAILURES` failures the transport is
asked to reconnect and re-initialise. ``status`` shows the line as in a call while it is held.

Time: deadlines run on a monotonic clock (``monotonic``, injectable); the wall clock (``clock``)
is only written down. A Pi with no real-time clock steps its wall clock at NTP sync.

A call record that cannot be written (a full or read-only SD card) is kept in memory (up to
:data:`UNLOGGED_MAX` records) and written when the card takes it again.

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
import os
import queue
import signal
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
from callguard.config import Config
from callguard.core import screening
from callguard.core.call import (
    AfterCall,
    CallAction,
    CallBackReminder,
    CallMachine,
    GroomingAlert,
    LineState,
    LogCall,
    Moment,
    Phase,
    Release,
    Screened,
    Seize,
    SpeakOnLine,
    Timing,
    Warn,
)
from callguard.core.hook import Hook, HookChange
from callguard.core.numbers import Caller, warm_up
from callguard.core.record import CallRecord
from callguard.daemon.systemd import Notifier
from callguard.hardware import linesense
from callguard.hardware.indicators import Indicators
from callguard.modem.protocol import CallerId, Event, Ring
from callguard.modem.transport import ModemError, ModemTransport, TransportStatus
from callguard.modem.voice import VoicePlayer
from callguard.store.files import file_signature
from callguard.store.index import ListIndex
from callguard.store.lists import Store, now_local
from callguard.texts import shown

log = logging.getLogger("callguard.daemon.app")

LOOP_TICK_S = 0.2
INDEX_CHECK_S = 2.0
ON_HOOK_RETRY_S = 1.0
ON_HOOK_RETRY_MAX_S = 5.0
REINIT_AFTER_FAILURES = 2
UNLOGGED_MAX = 1000
VOICE_JOIN_ON_STOP_S = 2.0


def _voice(config: Config) -> Voice:
    w = config.warning
    return Voice(
        text=w.text,
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


def _json(record: CallRecord | None) -> dict[str, Any] | None:
    return record.to_json() if record is not None else None


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
        )
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
        self._voice_thread: threading.Thread | None = None
        self._seize_pause = contextlib.ExitStack()
        self.pin_factory = pin_factory
        self.indicators: Indicators | None = None
        self._alert_active = False
        self._alert_signature: tuple[int, int, int] | None = None
        self._announcement: bytes | None = None
        self._queue: queue.Queue[tuple[str, Any]] = queue.Queue()
        self._stop_requested = threading.Event()
        self._reload_requested = threading.Event()
        self._off_hook = False
        self._on_hook_failures = 0
        self._on_hook_retry_at = 0.0
        self._unlogged: collections.deque[CallRecord] = collections.deque(maxlen=UNLOGGED_MAX)
        self._modem: TransportStatus | None = None
        self._status_dirty = True
        self._last_call: CallRecord | None = None
        self._counts = {"calls": 0, "blocked": 0, "warned": 0, "impersonations": 0}
        self._started = clock()
        self._last_index_check = 0.0
        self._last_watchdog = 0.0

    # -- public --------------------------------------------------------------------------------

    def stop(self) -> None:
        """Ask the main loop to finish (thread-safe, signal-safe)."""
        self._stop_requested.set()

    def reload(self) -> None:
        self._reload_requested.set()

    def run(self, install_signals: bool = True) -> int:
        if install_signals:
            self._install_signals()
        warm_up(self.config.screening.region)
        screening.warm_up()
        try:
            self.index.refresh()
        except Exception:  # screen anyway (unknown callers are warned) rather than not at all
            log.exception("the lists could not be read; screening without them until they can")
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
        self.transport.add_listener(lambda event: self._queue.put(("modem", event)))
        try:
            self.transport.start()
            self.line_sense = linesense.build(
                self.config.line_sense.source,
                transport=self.transport,
                on_change=lambda change: self._queue.put(("hook", change)),
                gpio_pin=self.config.line_sense.gpio_pin,
                active_high=self.config.line_sense.gpio_active_high,
                off_hook_below_v=self.config.line_sense.off_hook_below_v,
            )
            self.line_sense.start()
            self._start_indicators()
            self._start_audio()
            self.transport.wait_connected(5.0)
            self._write_status()
            self.notifier.ready(self._status_line())
            self._loop()
        finally:
            self._shutdown()
        return 0

    def _start_indicators(self) -> None:
        pins = self.config.indicators

        def pin(value: int) -> int | None:
            return None if value < 0 else value

        self.indicators = Indicators(
            alert_pin=pin(pins.alert_led_pin),
            status_pin=pin(pins.status_led_pin),
            button_pin=pin(pins.button_pin),
            on_button=lambda: self._queue.put(("ack", "the button")),
            pin_factory=self.pin_factory,
        )
        self.indicators.modem(False)
        self._check_alert(force=True)
        if self._alert_active:
            log.warning("the grooming alert from before the restart is still on")
        if self.machine.grooming_minutes is None:
            log.info("the grooming alert is off: it needs line sensing (line_sense.source)")

    def _check_alert(self, force: bool = False) -> None:
        """Follow the alert file: `callguard ack` may have cleared it while we run."""
        signature = file_signature(self.store.alert_path)
        if not force and signature == self._alert_signature:
            return
        self._alert_signature = signature
        active = self.store.alert_active()
        if active != self._alert_active:
            self._status_dirty = True
        self._alert_active = active
        if self.indicators is None:
            return
        if not active:
            self.indicators.alert_off()
        elif self.indicators.alert_state == "off":
            in_call = self.machine.line.value == "in-call"
            self.indicators.alert_blinking() if in_call else self.indicators.alert_steady()

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
                    self._announcement = self.prompts.modem_bytes("announcement")
            except Exception:
                log.exception("could not prepare the spoken prompts")

        threading.Thread(target=warm, name="prompt-warmup", daemon=True).start()

    # -- the loop ----------------------------------------------------------------------------

    def _loop(self) -> None:
        while not self._stop_requested.is_set():
            if self._reload_requested.is_set():
                self._reload_requested.clear()
                self._reload()
            try:
                kind, payload = self._queue.get(timeout=self._wait_s())
            except queue.Empty:
                kind, payload = "tick", None
            self._handle(kind, payload)
            self._housekeeping()

    def _wait_s(self) -> float:
        deadline = self.machine.next_deadline()
        if deadline is None:
            return LOOP_TICK_S
        return min(LOOP_TICK_S, max(0.0, deadline - self.monotonic()))

    def _now(self) -> Moment:
        return Moment(self.monotonic(), self.clock())

    def _handle(self, kind: str, payload: Any) -> None:
        now = self._now()
        try:
            actions: list[CallAction] = []
            if kind == "modem":
                actions = self._modem_event(payload, now)
            elif kind == "status":
                actions = self._modem_status(payload, now)
            elif kind == "hook":
                actions = self._hook(payload, now)
            elif kind == "ack":
                self._acknowledge(payload)
            actions += self.machine.tick(now)
            self._execute(actions)
            self.line_sense.set_active(self.machine.wants_line_state(now))
        except Exception:
            log.exception("error while handling %s %r; the call rings through", kind, payload)
            self._recover(now)

    def _modem_event(self, event: Event, now: Moment) -> list[CallAction]:
        if isinstance(event, CallerId):
            return self.machine.caller_id(event, now)
        if isinstance(event, Ring):
            self._status_dirty = True
            return self.machine.ring(now)
        return []

    def _hook(self, change: HookChange, now: Moment) -> list[CallAction]:
        ago = max(0.0, now.mono - change.at)  # line sensing dates changes on the same clock
        began = Moment(now.mono - ago, now.wall - dt.timedelta(seconds=ago))
        self._status_dirty = True
        self._observe("hook", change)
        if change.hook is Hook.OFF:
            return self.machine.line_off_hook(began)
        return self.machine.line_on_hook(began)

    def _acknowledge(self, by: str) -> None:
        if self.store.ack_alert(by=by) is not None:
            log.info("grooming alert acknowledged by %s", by)
        self._check_alert(force=True)
        self._observe("acknowledged", by)

    def _modem_status(self, status: TransportStatus, now: Moment) -> list[CallAction]:
        self._modem = status
        self._status_dirty = True
        if self.indicators is not None:
            self.indicators.modem(status.connected)
        self._observe("modem", status)
        if status.connected:
            if self._off_hook:  # init says ATH0 first, and only a confirmed one gets here
                log.warning("the modem was re-initialised: the line is on-hook again")
            self._line_down()
            return []
        return self.machine.modem_lost(now)

    def _recover(self, now: Moment) -> None:
        """After a fault: abandon the call (it rings through) and make sure of on-hook."""
        try:
            actions = self.machine.reset(now, "CallGuard hit an error handling this call")
            self._execute([a for a in actions if not isinstance(a, Seize)])
        except Exception:
            log.exception("could not log the call after an error")
        if self._off_hook and not self._on_hook_failures:  # not already being retried
            self._release()

    # -- actions -----------------------------------------------------------------------------

    def _execute(self, actions: list[CallAction]) -> None:
        for action in actions:
            if isinstance(action, Seize):
                self._seize()
            elif isinstance(action, Release):
                self._release()
            elif isinstance(action, Screened):
                self._screened(action.caller, action.verdict)
            elif isinstance(action, Warn):
                self._warn(action)
            elif isinstance(action, SpeakOnLine):
                self._speak_on_line()
            elif isinstance(action, GroomingAlert):
                self._grooming_alert(action)
            elif isinstance(action, CallBackReminder):
                log.info("the phone was picked up soon after a suspicious call: reminding")
                self.speaker.remind()
                self._observe("call-back-reminder", action)
            elif isinstance(action, LogCall):
                self._log_call(action.record)
            elif isinstance(action, AfterCall):
                self._after_call()

    def _seize(self) -> None:
        assert self.transport is not None
        self._off_hook = True  # assume the worst until the line is known to be on-hook
        if self.config.block.announce and self._announcement:
            # the voice session takes the line itself (AT+VLS=1), speaks, and puts it down
            with self.line_sense.pause():
                result = VoicePlayer(self.transport).play(self._announcement)
            self._off_hook = not result.on_hook
            self._observe("seized")
            return
        reply = self.transport.command("ATH1", timeout_s=2.0)
        # our own off-hook looks like a lifted phone to the line sensor: not a reading until
        # released (entered after ATH1: nothing may delay the seize; a pending reading is dropped)
        self._seize_pause.enter_context(self.line_sense.pause())
        if not reply.ok:
            raise ModemError(f"the modem would not take the line: {reply.describe()}")
        self._observe("seized")

    def _release(self) -> None:
        """Put the line down; if the modem does not confirm, keep trying (see the docstring)."""
        assert self.transport is not None
        confirmed = False
        try:
            confirmed = self.transport.on_hook(attempts=2, attempt_timeout_s=1.0)
        except ModemError as exc:
            log.error("could not put the line on-hook: %s", exc)
        if confirmed:
            self._line_down()
            self._observe("released")
            return
        self._on_hook_failures += 1
        delay = min(ON_HOOK_RETRY_MAX_S, ON_HOOK_RETRY_S * 2 ** (self._on_hook_failures - 1))
        self._on_hook_retry_at = self.monotonic() + delay
        self._status_dirty = True
        log.critical(
            "the modem did not confirm that the line is on-hook (try %d); trying again in "
            "%.0f s, and re-initialising the modem if it still does not answer",
            self._on_hook_failures,
            delay,
        )
        if self._on_hook_failures % REINIT_AFTER_FAILURES == 0:
            self.transport.reinitialise("it did not confirm on-hook after a blocked call")

    def _line_down(self) -> None:
        """The modem has confirmed on-hook: CallGuard no longer holds the line."""
        if self._off_hook or self._on_hook_failures:
            self._status_dirty = True
        self._off_hook = False
        self._on_hook_failures = 0
        self._seize_pause.close()

    def _screened(self, caller: Caller, verdict: screening.Verdict) -> None:
        self._status_dirty = True
        log.info("call from %s: %s", shown(caller.display), shown(verdict.reason))
        self._observe("screened", (caller, verdict))

    def _warn(self, action: Warn) -> None:
        self.speaker.warn(action.caller, strong=action.strong)
        self._observe("warned", action)

    def _speak_on_line(self) -> None:
        """Join the answered call in voice mode, speak the warning, leave (worker thread)."""
        if self._voice_thread is not None and self._voice_thread.is_alive():
            return
        transport = self.transport
        assert transport is not None

        def speak() -> None:
            try:
                audio = self.prompts.modem_bytes("warning")
                with self.line_sense.pause():
                    result = VoicePlayer(transport).play(audio)
                self._observe("line-warning", result)
            except Exception:
                log.exception("could not speak the warning down the line")

        self._voice_thread = threading.Thread(target=speak, name="line-warning", daemon=True)
        self._voice_thread.start()

    def _grooming_alert(self, action: GroomingAlert) -> None:
        record = action.record
        who = record.display or record.category.value
        minutes = self.config.grooming.minutes
        log.warning(
            "GROOMING ALERT: an unknown caller (%s) has kept the line for over %g minutes; "
            "the alert light is on until someone acknowledges it",
            who,
            minutes,
        )
        self.store.raise_alert(record.to_json())
        self._check_alert(force=True)
        if self.indicators is not None:
            self.indicators.alert_blinking()
        self._observe("grooming-alert", record)

    def _log_call(self, record: CallRecord) -> None:
        self._last_call = record
        if record.grooming_alert and self.indicators is not None and self._alert_active:
            self.indicators.alert_steady()  # the call is over; the light stays until ack
        self._counts["calls"] += 1
        if record.suspicious and record.verdict is not None:
            self._counts[record.verdict.value] += 1
        if record.impersonation:
            self._counts["impersonations"] += 1
        self._status_dirty = True
        self._unlogged.append(record)
        self._write_unlogged()
        self._observe("logged", record)

    def _write_unlogged(self) -> None:
        """Write the records not yet in the log, oldest first; keep them if the card refuses."""
        while self._unlogged:
            try:
                self.store.append_call(self._unlogged[0].to_json())
            except Exception as exc:
                log.error(
                    "could not write the call log (%s); %d call(s) kept in memory until it can",
                    exc,
                    len(self._unlogged),
                )
                return
            self._unlogged.popleft()

    def _after_call(self) -> None:
        assert self.transport is not None
        try:
            self.transport.after_call()
        except ModemError as exc:
            # caller ID may be off (some firmware forgets it): init asserts it again
            log.warning("could not re-enable caller ID after the call: %s", exc)
            self.transport.reinitialise("it did not answer after a call")

    def _observe(self, kind: str, detail: Any = None) -> None:
        if self.observer is not None:
            try:
                self.observer(Observed(kind, detail))
            except Exception:
                log.exception("observer failed")

    # -- housekeeping -----------------------------------------------------------------------

    def _housekeeping(self) -> None:
        mono = self.monotonic()
        retry_due = self._on_hook_failures and mono >= self._on_hook_retry_at
        if self._off_hook and retry_due and self.machine.phase is not Phase.SEIZED:
            self._release()
        if self.notifier.watchdog_interval_s and mono - self._last_watchdog >= min(
            self.notifier.watchdog_interval_s, 5.0
        ):
            transport = self.transport
            if transport is None or transport.healthy():
                self._last_watchdog = mono
                self.notifier.watchdog()
            # else: no ping; systemd restarts a daemon whose modem link is wedged
        if self._unlogged and self.machine.line is LineState.IDLE:
            self._write_unlogged()
        if self.machine.line is LineState.IDLE and mono - self._last_index_check >= INDEX_CHECK_S:
            self._last_index_check = mono
            with contextlib.suppress(Exception):
                if self.index.refresh():
                    log.info("lists reloaded: %s", self.index.sizes())
                    self._status_dirty = True
        with contextlib.suppress(Exception):
            self._check_alert()
        if self._status_dirty:
            self._write_status()

    def _screen(self, caller: Caller, now: dt.datetime, name: str | None) -> screening.Verdict:
        try:
            self.index.refresh()  # one stat() when unchanged: a number added a moment ago counts
        except Exception:
            log.exception("could not reload the lists; screening with the last good copy")
        return screening.screen(caller, self.index, self.config.screening, now, name)

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

    def _reload(self) -> None:
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
            self.machine.line_warning = new.warning.line and self.line_sense.name != "none"
            self.prompts.voice = _voice(self.config)
            self.speaker.set_command(new.warning.room_command)
            log.info("SIGHUP: configuration reloaded from %s", new.source)
        with contextlib.suppress(Exception):
            self.index.loaded = False
            self.index.refresh()
        self._status_dirty = True
        self._observe("reloaded")
        self.notifier.ready(self._status_line())

    def _line_state(self) -> LineState:
        if self._off_hook and self.machine.line is LineState.IDLE:
            return LineState.IN_CALL  # CallGuard still holds the line; it keeps trying
        return self.machine.line

    def _status_line(self) -> str:
        modem = self._modem.detail if self._modem else "modem not found yet"
        held = "; LINE HELD OFF-HOOK, retrying" if self._on_hook_failures else ""
        return f"{self._line_state().value}{held}; {modem}"

    def status(self, state: str = "running") -> dict[str, Any]:
        modem = self._modem
        connected = bool(modem and modem.connected)
        return {
            "daemon": state,
            "pid": os.getpid(),
            "started": self._started.isoformat(timespec="seconds"),
            "updated": self.clock().isoformat(timespec="seconds"),
            "modem": "connected" if connected else "disconnected",
            "modem_detail": {
                "detail": modem.detail if modem else "not started",
                "port": self.config.modem.port,
                "profile": modem.profile if modem else None,
                "identity": modem.identity if modem else None,
                "warnings": list(modem.warnings) if modem else [],
            },
            "line": self._line_state().value,
            "off_hook": self._off_hook,
            "current_call": _json(self.machine.current),
            "last_call": _json(self._last_call),
            "grooming_alert": self._alert_active,
            "indicators": {
                "alert_led": self.indicators.alert_state if self.indicators else "off",
                "detail": self.indicators.detail if self.indicators else "not started",
            },
            "line_sense": {"source": self.line_sense.name, "detail": self.line_sense.detail},
            "lists": self.index.sizes(),
            "counts_since_start": dict(self._counts),
            "unlogged_calls": len(self._unlogged),
        }

    def _write_status(self, state: str = "running") -> None:
        self._status_dirty = False
        try:
            self.store.write_status(self.status(state))
        except Exception:
            log.exception("could not write the status file")
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
        if self._voice_thread is not None:
            self._voice_thread.join(VOICE_JOIN_ON_STOP_S)  # the transport's stop ends it
        with contextlib.suppress(Exception):
            self.line_sense.stop()
        if self.indicators is not None:
            self.indicators.close()  # the status LED goes dark: the daemon is not running
        transport = self.transport
        if transport is not None:
            with contextlib.suppress(Exception):
                for action in self.machine.reset(self._now(), "CallGuard was stopped"):
                    if isinstance(action, LogCall):
                        self._log_call(action.record)
            # stop() says ATH0 (bounded), drops DTR if the modem does not answer, and closes
            transport.stop()
        self._write_status("stopped")
