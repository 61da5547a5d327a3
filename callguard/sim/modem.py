"""A simulated USB voice/caller-ID modem on a pseudo-terminal.

Theory of operation
-------------------
`SimModem` is the hardware around `firmware.Firmware`: the USB cable (a pty pair), the
serial reader, and the telephone line the calls arrive on.

* The pty: `os.openpty()`, both ends raw. The client opens the slave path (or `link_path`, a
  symlink kept pointing at the current slave) with pyserial. The sim keeps its own slave fd
  open, so the client closing and reopening the port never makes the master see EIO.
  `unplug()` closes both of the sim's ends: the client's next read or write fails with EIO,
  which pyserial raises as `SerialException`, exactly like a pulled USB cable. `replug()` makes
  a new pty, re-points the symlink and powers the firmware on with default settings.
* One reader thread per plug-in waits on the master with `select` (a self-pipe wakes it for
  unplug and stop), feeds bytes to the firmware and writes the answer. When the firmware has
  timed work (voice playback, an answer attempt) it also ticks every 20 ms.
* One lock (a `threading.Condition`) guards the firmware, the line and every write to the
  master. Call threads (see `script.play_call`) hold it except while they wait, and the reader
  notifies it after every input, so a call sees a hook change as soon as it happens.
* Writes to the master are non-blocking with a bounded wait (`write_timeout_s`): if the client
  stops reading and the pty buffer fills, output is dropped and counted rather than wedging
  the lock. Every timestamp recorded for output is taken after the write returned.

The line: a call rings through the firmware (RING and caller ID); "a phone elsewhere" is the
extension hook state, which the line voltage (`AT-TRV`, Conexant only) reflects.
`set_line_dead(True)` takes the line's voltage away (a cut cable, or a Digital Voice
switch-over that moved the line to the router): `AT-TRV` reads 0 V and no call can be placed
(`place_call` raises `SimModemError`; a scenario's calls are aborted). The modem itself is
untouched and answers as before; a call already on the line plays out.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import threading
import time
import tty
from collections.abc import Sequence
from types import TracebackType
from typing import Literal

from callguard.sim.firmware import IDENTITIES, Firmware, VoiceSession
from callguard.sim.script import (
    DEFAULT_TIMING,
    Call,
    CallHandle,
    CallRecord,
    CallStyle,
    CallTiming,
    Scenario,
    play_call,
)

READ_CHUNK_BYTES = 4096
IDLE_POLL_S = 0.25
TICK_S = 0.02
SETTLE_TIMEOUT_S = 2.0
"""How long `answer`, `hang_up` and `place_call(wait_for_line=True)` wait for the call's player
thread to act on the change (it is woken at once; this only bounds a wedged player)."""

Answered = Literal["answered", "lifted", "already-off-hook"]
HungUp = Literal["ended-call", "put-down", "caller-gave-up", "caller-hung-up", "nothing"]


class SimModemError(RuntimeError):
    """The simulated modem was used wrongly (not started, bad identity, link path taken)."""


class _Plug:
    """One plug-in of the USB cable: a pty pair and the thread reading its master."""

    def __init__(self) -> None:
        self.master, self.slave = os.openpty()
        try:
            tty.setraw(self.slave)  # on Linux the master shares the slave's termios
            os.set_blocking(self.master, False)
            self.path = os.ttyname(self.slave)
            self.wake_r, self.wake_w = os.pipe()
        except BaseException:
            os.close(self.master)
            os.close(self.slave)
            raise
        os.set_blocking(self.wake_r, False)
        os.set_blocking(self.wake_w, False)
        self.stop = threading.Event()
        self.thread: threading.Thread | None = None

    def wake(self) -> None:
        with contextlib.suppress(BlockingIOError, OSError):
            os.write(self.wake_w, b"x")

    def close(self) -> None:
        for fd in (self.master, self.slave, self.wake_r, self.wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)


class SimModem:
    """A Conexant- or USRobotics-like voice modem on a pty, with a scriptable phone line.

    `time_scale` multiplies every line timing (ring cadence, caller-ID gap, talk time, the ATA
    carrier wait); audio playback always runs at the real sample rate.
    """

    def __init__(
        self,
        identity: str = "conexant",
        link_path: str | os.PathLike[str] | None = None,
        time_scale: float = 1.0,
        *,
        timing: CallTiming = DEFAULT_TIMING,
        forget_vcid_after_voice: bool | None = None,
        cid_needs_country: bool = False,
        voice_buffer_s: float = 1.0,
        underrun_grace_s: float = 0.25,
        etx_required: int = 1,
        write_timeout_s: float = 0.5,
    ) -> None:
        if identity not in IDENTITIES:
            raise SimModemError(
                f"identity {identity!r} is not known; expected one of {sorted(IDENTITIES)}"
            )
        if time_scale <= 0:
            raise SimModemError(f"time_scale is {time_scale}; expected a positive number")
        self.identity = identity
        self.link_path = os.fspath(link_path) if link_path is not None else None
        self.time_scale = time_scale
        self.timing = timing
        self.write_timeout_s = write_timeout_s
        self.cond = threading.Condition(threading.RLock())
        self._fw = Firmware(
            IDENTITIES[identity],
            time_scale=time_scale,
            forget_vcid_after_voice=forget_vcid_after_voice,
            cid_needs_country=cid_needs_country,
            voice_buffer_s=voice_buffer_s,
            underrun_grace_s=underrun_grace_s,
            etx_required=etx_required,
        )
        self._plug: _Plug | None = None
        self._last_path: str | None = None
        self._started = False
        self._stopping = False
        self._threads: list[threading.Thread] = []
        self._active_call: CallRecord | None = None
        self._calls: list[CallRecord] = []
        self.dropped_output_bytes = 0

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> SimModem:
        with self.cond:
            if self._started:
                raise SimModemError("SimModem.start() called twice; create a new SimModem")
            link = self.link_path
            if link is not None and os.path.lexists(link) and not os.path.islink(link):
                raise SimModemError(
                    f"link path {link} exists and is not a symlink; pass a path the sim may own"
                )
            self._started = True
            self._stopping = False
        try:
            self._plug_in()
        except BaseException:
            with self.cond:
                self._started = False
            raise
        return self

    def stop(self) -> None:
        """Stop calls, unplug and join every thread. Safe to call twice."""
        with self.cond:
            if not self._started or self._stopping:
                return
            self._stopping = True
            self.cond.notify_all()
        self._unplug_current()
        for thread in list(self._threads):
            if thread is not threading.current_thread():
                thread.join()
        with self.cond:
            self._threads.clear()

    def __enter__(self) -> SimModem:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ----------------------------------------------------------------- the USB cable

    @property
    def port(self) -> str:
        """What the client opens: `link_path` if given, else the current /dev/pts/N."""
        if self.link_path is not None:
            return self.link_path
        with self.cond:
            if self._last_path is None:
                raise SimModemError("the sim has no port yet; call start() first")
            return self._last_path

    @property
    def plugged_in(self) -> bool:
        with self.cond:
            return self._plug is not None

    def unplug(self) -> None:
        """Like pulling the USB cable: the client's reads fail, the symlink goes away."""
        self._require_started()
        self._unplug_current()

    def replug(self) -> None:
        """A new pty appears (symlink re-pointed), firmware at power-on defaults."""
        self._require_started()
        self._unplug_current()
        self._plug_in()

    def hang(self) -> None:
        """Firmware lock-up: commands are logged but get no reply; no RING, no caller ID."""
        with self.cond:
            self._fw.hung = True

    def unhang(self) -> None:
        with self.cond:
            self._fw.hung = False
            self.cond.notify_all()

    def _plug_in(self) -> None:
        plug = _Plug()
        with self.cond:
            if self.link_path is not None:
                try:
                    _point_symlink(self.link_path, plug.path)
                except OSError as e:
                    plug.close()
                    raise SimModemError(
                        f"cannot point {self.link_path} at {plug.path}: {e.strerror};"
                        " pass a link path in a writable directory"
                    ) from e
            self._fw.power_on(time.monotonic())
            self._plug = plug
            self._last_path = plug.path
            thread = threading.Thread(
                target=self._reader, args=(plug,), name=f"simmodem-reader-{plug.path}", daemon=True
            )
            plug.thread = thread
            self._threads = [t for t in self._threads if t.is_alive()]
            self._threads.append(thread)
            self.cond.notify_all()
        thread.start()

    def _unplug_current(self) -> None:
        with self.cond:
            plug, self._plug = self._plug, None
        if plug is None:
            return
        plug.stop.set()
        plug.wake()
        if plug.thread is not None and plug.thread is not threading.current_thread():
            plug.thread.join()
        with self.cond:
            self._fw.power_off(time.monotonic())
            plug.close()
            if self.link_path is not None:
                _remove_symlink(self.link_path, plug.path)
            self.cond.notify_all()

    def _reader(self, plug: _Plug) -> None:
        while not plug.stop.is_set():
            with self.cond:
                timeout = TICK_S if self._fw.wants_ticks() else IDLE_POLL_S
            try:
                readable, _, _ = select.select([plug.master, plug.wake_r], [], [], timeout)
            except (OSError, ValueError):
                return
            if plug.stop.is_set():
                return
            if plug.wake_r in readable:
                with contextlib.suppress(OSError):
                    os.read(plug.wake_r, 64)
            data = b""
            if plug.master in readable:
                try:
                    data = os.read(plug.master, READ_CHUNK_BYTES)
                except BlockingIOError:
                    pass
                except OSError as e:
                    if e.errno != errno.EIO:
                        return
                    plug.stop.wait(TICK_S)  # EIO: no slave open; cannot happen while we hold one
            with self.cond:
                if self._plug is not plug:
                    return
                now = time.monotonic()
                out = self._fw.receive(data, now) if data else b""
                out += self._fw.tick(now)
                if out:
                    self._write(out)
                self.cond.notify_all()

    def _write(self, data: bytes) -> bool:
        """Write to the current master (lock held); False if not everything went out."""
        plug = self._plug
        if plug is None:
            return False
        view = memoryview(data)
        deadline = time.monotonic() + self.write_timeout_s
        while view:
            try:
                n = os.write(plug.master, view)
                view = view[n:]
                continue
            except BlockingIOError:
                pass
            except OSError:
                break
            remaining = deadline - time.monotonic()
            if remaining <= 0 or plug.stop.is_set():
                break
            with contextlib.suppress(OSError, ValueError):
                select.select([], [plug.master], [], min(remaining, 0.05))
        self.dropped_output_bytes += len(view)
        return not view

    def _require_started(self) -> None:
        if not self._started or self._stopping:
            raise SimModemError("the sim is not running; call start() (or use `with SimModem()`)")

    # ----------------------------------------------------------------- what the tests look at

    @property
    def commands(self) -> list[tuple[float, str]]:
        with self.cond:
            return list(self._fw.commands)

    @property
    def off_hook(self) -> bool:
        with self.cond:
            return self._fw.off_hook

    @property
    def hook_events(self) -> list[tuple[float, bool]]:
        with self.cond:
            return list(self._fw.hook_events)

    @property
    def voice_sessions(self) -> list[VoiceSession]:
        with self.cond:
            return list(self._fw.voice_sessions)

    @property
    def echo(self) -> bool:
        with self.cond:
            return self._fw.echo

    @property
    def vcid(self) -> bool:
        with self.cond:
            return self._fw.vcid

    @property
    def country(self) -> str | None:
        with self.cond:
            return self._fw.country

    @property
    def fclass(self) -> int:
        with self.cond:
            return self._fw.fclass

    @property
    def hung(self) -> bool:
        with self.cond:
            return self._fw.hung

    @property
    def line_volts(self) -> float:
        """The tip/ring volts `AT-TRV` reports now (a USR answers ERROR; the line is the same)."""
        with self.cond:
            return self._fw.line_volts()

    @property
    def line_dead(self) -> bool:
        """Whether the line has no voltage (`set_line_dead`)."""
        with self.cond:
            return self._fw.line_dead

    @property
    def calls(self) -> list[CallRecord]:
        with self.cond:
            return list(self._calls)

    @property
    def active_call(self) -> CallRecord | None:
        """The call that has the line now (ringing, seized or answered), if any."""
        with self.cond:
            return self._active_call

    @property
    def extension_off_hook(self) -> bool:
        """Whether a phone elsewhere in the house is off the hook."""
        with self.cond:
            return self._fw.extension_off_hook

    # ----------------------------------------------------------------- the phone line

    def set_extension_off_hook(self, off_hook: bool) -> None:
        """A phone elsewhere in the house is lifted (True) or put down (False)."""
        with self.cond:
            self._fw.extension_off_hook = off_hook
            self.cond.notify_all()

    def set_line_dead(self, dead: bool) -> None:
        """Take the line's voltage away (True) or give it back (False); see the module
        docstring."""
        with self.cond:
            self._fw.line_dead = dead
            self.cond.notify_all()

    def place_call(self, call: Call, *, wait_for_line: bool = False) -> CallHandle:
        """Ring the line with `call` in a background thread; returns at once, or with
        `wait_for_line` once the call has the line or has found it busy.

        Raises `SimModemError` on a dead line (`set_line_dead`): no call can come in."""
        with self.cond:
            if self._fw.line_dead:
                raise SimModemError(
                    "the line is dead (no line voltage), so no call can come in; "
                    "give it back with set_line_dead(False) (console: line live)"
                )
        record = CallRecord(call)
        handle = CallHandle(record, self._start_call(record))
        if wait_for_line:
            with self.cond:
                self.cond.wait_for(lambda: record.outcome != "pending", SETTLE_TIMEOUT_S)
        return handle

    def answer(self) -> Answered:
        """The resident picks up a phone in the house.

        A ringing call is answered (it then lasts until `hang_up`); with no call ringing the
        phone is simply off the hook, so the line voltage drops and new calls find it busy.
        Returns once the call's player has acted on it.
        """
        self._require_started()
        with self.cond:
            record = self._active_call
            if self._fw.extension_off_hook:
                return "already-off-hook"
            if record is not None and record.outcome == "ringing" and not record._hang_up_asked:
                record._answer_asked = True
                self.cond.notify_all()
                self.cond.wait_for(lambda: record.outcome != "ringing", SETTLE_TIMEOUT_S)
                if record.answered_at is not None:
                    return "answered"
                if self._fw.extension_off_hook:
                    return "already-off-hook"
            self._fw.extension_off_hook = True
            self.cond.notify_all()
            return "lifted"

    def hang_up(self) -> HungUp:
        """Someone puts the phone down: the resident ends an answered call (or puts down a
        phone lifted with no call), or the caller gives up ringing, or hangs up on a line the
        modem has seized. Returns once the call's player has let go of it."""
        self._require_started()
        with self.cond:
            record = self._active_call
            if record is not None and record._hang_up_asked:
                record = None  # already ending
            if record is not None and record.outcome == "answered":
                result: HungUp = "ended-call"
            elif self._fw.extension_off_hook:
                self._fw.extension_off_hook = False
                self.cond.notify_all()
                return "put-down"
            elif record is not None and record.outcome == "ringing":
                result = "caller-gave-up"
            elif record is not None and record.outcome == "seized":
                result = "caller-hung-up"
            else:
                return "nothing"
            record._hang_up_asked = True
            self.cond.notify_all()
            self.cond.wait_for(lambda: record.done, SETTLE_TIMEOUT_S)
            return result

    def play(
        self, scenario: Scenario, wait: bool = True, timeout_s: float | None = None
    ) -> list[CallRecord]:
        """Place each call at its offset. With `wait`, return when every call is over."""
        self._require_started()
        records = [CallRecord(call) for _, call in scenario.calls]
        thread = threading.Thread(
            target=self._run_scenario,
            args=(scenario, records),
            name=f"simmodem-scenario-{scenario.name}",
            daemon=True,
        )
        with self.cond:
            self._calls.extend(records)
            self._threads.append(thread)
        thread.start()
        if wait:
            deadline = None if timeout_s is None else time.monotonic() + timeout_s
            for record in records:
                left = None if deadline is None else max(0.0, deadline - time.monotonic())
                record.wait(left)
        return records

    def _run_scenario(self, scenario: Scenario, records: list[CallRecord]) -> None:
        t0 = time.monotonic()
        threads: list[threading.Thread] = []
        for (offset, _), record in zip(scenario.calls, records, strict=True):
            with self.cond:
                due = t0 + offset * self.time_scale
                while not self._stopping and time.monotonic() < due:
                    self.cond.wait(due - time.monotonic())
                if self._stopping or self._fw.line_dead:  # a dead line: no call comes in
                    record.outcome = "aborted"
                    record._done.set()
                    continue
                threads.append(self._start_call(record, register=False))
        for thread in threads:
            thread.join()

    def _start_call(self, record: CallRecord, *, register: bool = True) -> threading.Thread:
        self._require_started()
        thread = threading.Thread(
            target=play_call,
            args=(_LineView(self), record, self.timing),
            name=f"simmodem-call-{record.call.number}",
            daemon=True,
        )
        with self.cond:
            if register:
                self._calls.append(record)
            self._threads = [t for t in self._threads if t.is_alive()]
            self._threads.append(thread)
            thread.start()
        return thread


class _LineView:
    """The `script.Line` the call player drives; every method runs with `cond` held."""

    def __init__(self, sim: SimModem) -> None:
        self._sim = sim
        self.cond = sim.cond
        self.time_scale = sim.time_scale

    def stopping(self) -> bool:
        return self._sim._stopping

    def claim(self, record: CallRecord) -> bool:
        sim = self._sim
        if sim._active_call is not None or sim._fw.off_hook or sim._fw.extension_off_hook:
            return False
        sim._active_call = record
        return True

    def release(self, record: CallRecord) -> None:
        if self._sim._active_call is record:
            self._sim._active_call = None

    def hook_log(self) -> Sequence[tuple[float, bool]]:
        return self._sim._fw.hook_events

    def modem_off_hook(self) -> bool:
        return self._sim._fw.off_hook

    def decodes_cid(self, style: CallStyle) -> bool:
        return self._sim._fw.decodes_cid(style)

    def emit_cid(self, lines: Sequence[str]) -> float | None:
        return self._emit(self._sim._fw.cid_block(list(lines)))

    def emit_ring(self) -> float | None:
        return self._emit(self._sim._fw.unsolicited_ring())

    def set_extension_off_hook(self, off_hook: bool) -> None:
        self._sim._fw.extension_off_hook = off_hook

    def _emit(self, data: bytes) -> float | None:
        sim = self._sim
        if not data or sim._fw.hung or sim._plug is None:
            return None
        if not sim._write(data):
            return None
        return time.monotonic()


def _point_symlink(link: str, target: str) -> None:
    """Atomically make `link` a symlink to `target` (create-then-rename)."""
    tmp = f"{link}.{os.getpid()}.{threading.get_ident()}.tmp"
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)
    os.symlink(target, tmp)
    os.replace(tmp, link)


def _remove_symlink(link: str, target: str) -> None:
    """Remove `link` if it is still our symlink to `target`."""
    with contextlib.suppress(OSError):
        if os.path.islink(link) and os.readlink(link) == target:
            os.unlink(link)
