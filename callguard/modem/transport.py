"""The serial side of the modem: open, read, command, notice it is gone, reconnect.

Theory of operation
-------------------
:class:`ModemTransport` owns one serial port (any pyserial URL: ``/dev/ttyACM0``, a pty,
``loop://``, ``spy:///dev/ttyACM0`` to capture traffic) opened with ``exclusive=True`` so two
daemons can never share a modem. Two kinds of thread:

* the **supervisor** is the one owner of the port. It alone opens it, runs the profile's init
  (on-hook first, then country and caller ID), watches it, and closes it. Each open is a
  *link* (the serial object, its protocol parser, the caller waiting for a reply, its reader and
  whether it has failed); a link is never reused, so a reader or a caller still holding an old
  link can only ever fail that link, never the next one. While connected the supervisor checks
  health: if nothing has shown the modem alive for ``health_interval_s`` it sends ``AT``; two
  missed replies mean a locked-up modem. A failed link is closed and the port reopened with a
  backoff capped at ``max_backoff_s`` (2 s by default), so a modem that comes back is in use
  again within a few seconds, with init run again.
* one **reader** per link reads whatever arrives, feeds it to the sans-IO
  :class:`~callguard.modem.protocol.ModemProtocol`, completes the waiting caller's reply, and
  passes every event to the listeners. Listeners run on the reader thread and must not block
  (the daemon puts events on its own queue); calling :meth:`ModemTransport.command` from a
  listener would wait for a reply that only this thread can read, so it raises instead.

The **first look** (:meth:`ModemTransport.set_first_look`) is the one write a reader makes: the
daemon's predicate is asked about each new caller ID on the reader thread, before any listener,
and when it says "blocked outright" the reader writes ``ATH1`` there and then, no hand-over to
another thread, if the session is free at that instant (it never waits for it; when busy, the
daemon's own loop seizes as before). Nobody waits for that ``ATH1``'s reply on the reader: it is
owed to the next ``ATH1`` anyone sends, which adopts it instead of writing again (the daemon's
seize, told by :meth:`ModemTransport.claim_first_look`), and any other command waits it out
first, so the modem still answers one command at a time.

A read or write that fails does not close anything: it *reports* the failure (the link is
marked lost and whoever waits on it is woken) and the supervisor, woken too, does the closing.

Replies: which command the modem owes a final result is known in one place, the link's
parser: it numbers each command (:class:`~callguard.modem.protocol.Command`) and says which one
every final result answers. The link keeps only the caller waiting (``_Pending``, holding the
number it waits for), and the reader completes that caller's reply only with a final result
for that same command, never with a late one (``late=True``: the answer to a command whose
caller gave up and cancelled it in the parser), which is logged at debug and dropped. So a late
``OK`` to a timed-out ``AT`` can never answer the ``ATH0`` sent after it. :meth:`write_then_wait`
(``<DLE><ETX>``, which ends voice transmit with a final result but is no command line) is owed
its final the same way (:meth:`~callguard.modem.protocol.ModemProtocol.expect_final`).

Locks, outermost first; a thread holding one may take only those below it:

1. the **session** (re-entrant) serialises commands, raw writes and voice sessions
   (:meth:`ModemTransport.session`), so no health check or other command lands in the middle of
   audio. Callers wait for it as long as it takes; the transport's own threads never do: the
   supervisor waits in short slices (and gives up when stopping), the health check only takes
   it when free and is skipped while a call is in progress (a RING or caller ID in the last
   ``quiet_after_line_activity_s``), and :meth:`ModemTransport.on_hook` waits at most 0.3 s
   before falling back to dropping DTR.
2. ``_io_lock`` guards which link is current and each link's parser, waiting caller and lost
   flag. It is a leaf: nothing is ever done while holding it but reading and setting those
   fields. No serial I/O, sleep, join, callback or other lock is ever taken or done under
   it, so the reader, the supervisor and callers can never wait on each other through it.
3. ``_status_lock`` guards the published status; ``on_status`` is called after releasing it.

Liveness: the supervisor records a heartbeat (from the injectable ``monotonic`` clock) on every
turn of its loops: while opening, backing off, initialising, watching and closing. Every wait in
those loops is bounded (a command timeout, a 1 s watch slice, a 0.5 s session slice), so a
heartbeat older than :attr:`ModemTransport.liveness_bound_s` (``max(15 s, 4 x command timeout +
5 s)``) means the supervisor is stuck in something unbounded: a serial driver whose ``close`` or
``open`` never returns, or a status listener that blocks. :meth:`ModemTransport.healthy` says
so, and also when a serial write has been blocked for longer than that bound or the supervisor
thread has ended; the daemon stops petting the systemd watchdog then. An unexpected exception
in the supervisor is logged, the link closed, and the loop carries on after a backoff. The
clock is only read, never waited on: every wait is a bounded ``Event.wait``.

Stopping: :meth:`ModemTransport.stop` wakes the supervisor and cancels any command the
supervisor itself is waiting on (init, health check); the supervisor then says ``ATH0`` (two
attempts of 1 s, after waiting at most 0.3 s for a command in progress), drops DTR (0.2 s) if
no OK came, closes the port and joins the reader for at most 1 s: about 3.5 s in all.
``stop()`` returns within :data:`STOP_TIMEOUT_S` (4.5 s) whatever the modem or the serial
driver does; a supervisor still stuck then (a driver that never returns) is logged and left to
the process exit.

State changes (connected, disconnected with the reason) go to ``on_status``; the current one is
:attr:`ModemTransport.status`.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import serial

from callguard.errors import CallGuardError
from callguard.modem import profiles
from callguard.modem.protocol import (
    FINAL_EVENTS,
    CallerId,
    Command,
    Connect,
    DleCode,
    Echo,
    Error,
    Event,
    FinalEvent,
    Info,
    LineVoltage,
    ModemProtocol,
    Ok,
    Ring,
    encode_command,
)

log = logging.getLogger(__name__)

EventListener = Callable[[Event], None]

STOP_TIMEOUT_S = 4.5
"""How long :meth:`ModemTransport.stop` may take, whatever the modem does (systemd allows 10 s)."""
STOP_ATH0_ATTEMPTS = 2
STOP_ATH0_TIMEOUT_S = 1.0
ON_HOOK_SESSION_WAIT_S = 0.3
"""How long :meth:`ModemTransport.on_hook` waits for another command to finish before it drops
DTR instead."""
DTR_DROP_S = 0.2
READER_JOIN_S = 0.5
SESSION_SLICE_S = 0.5
WATCH_SLICE_S = 1.0
BACKOFF_SLICE_S = 1.0
LIVENESS_FLOOR_S = 15.0
_READ_MAX = 4096
_SEIZE = encode_command("ATH1")
"""What the reader writes to take the line on the first look."""


class ModemError(CallGuardError):
    """Base of the transport's failures."""


class ModemUnavailable(ModemError):
    """The modem is not connected (unplugged, or still starting)."""


class CommandTimeout(ModemError):
    """The modem sent no final result in time."""


class LinkState(Enum):
    CONNECTED = "connected"
    DISCONNECTED = "disconnected"


@dataclass(frozen=True)
class TransportStatus:
    """What the transport knows about the modem, for ``callguard status``."""

    state: LinkState
    detail: str
    port: str
    profile: str | None = None
    identity: str | None = None
    since: float = field(default_factory=time.time)
    warnings: tuple[str, ...] = ()

    @property
    def connected(self) -> bool:
        return self.state is LinkState.CONNECTED


@dataclass
class Reply:
    """Everything a command got back: information lines, then its final result."""

    command: str
    events: list[Event] = field(default_factory=list)
    final: Event | None = None

    @property
    def ok(self) -> bool:
        return isinstance(self.final, Ok)

    @property
    def connected(self) -> bool:
        return isinstance(self.final, Connect)

    @property
    def lines(self) -> list[str]:
        return [e.text for e in self.events if isinstance(e, Info)]

    @property
    def volts(self) -> float | None:
        for e in self.events:
            if isinstance(e, LineVoltage):
                return e.volts
        return None

    def describe(self) -> str:
        if self.final is None:
            return f"{self.command}: no reply"
        if isinstance(self.final, Error):
            return f"{self.command}: {self.final.text}"
        return f"{self.command}: {type(self.final).__name__.upper()}"


class _Pending:
    """A caller waiting for the final result to ``command`` (numbered by the link's parser,
    which alone knows what the modem still owes). ``done`` is set by whoever ends the wait: the
    reader (that command's final result), a failure of the link, the close, or
    :meth:`ModemTransport.stop` (``cancelled``, only for the supervisor's own commands)."""

    def __init__(self, command: Command, label: str, cancel_on_stop: bool) -> None:
        self.command = command
        self.reply = Reply(label)
        self.done = threading.Event()
        self.cancel_on_stop = cancel_on_stop
        self.cancelled = False


class _Link:
    """One open of the port. Created and closed only by the supervisor; the fields after
    ``ser`` are read and written under ``_io_lock``."""

    def __init__(self, ser: Any) -> None:
        self.ser = ser
        self.proto = ModemProtocol()
        self.pending: _Pending | None = None
        self.early: _Pending | None = None
        """An ``ATH1`` the reader wrote on the first look, its reply not yet waited for."""
        self.early_for: CallerId | None = None
        """The caller ID that ``ATH1`` was for, until the daemon claims it."""
        self.lost = threading.Event()
        self.reason = ""
        self.reader: threading.Thread | None = None


SerialFactory = Callable[..., Any]


def _open_failure(port: str, exc: Exception) -> str:
    """Why a port would not open, said so that a volunteer knows what to check."""
    text = str(exc)
    errno_value = getattr(exc, "errno", None)
    if errno_value == errno.ENOENT or "No such file" in text:
        return f"no modem at {port} (is it plugged in? is modem.port right?)"
    if errno_value in (errno.EACCES, errno.EPERM) or "Permission denied" in text:
        return f"no permission to open {port} (the callguard user must be in the dialout group)"
    if "exclusively lock" in text or errno_value in (errno.EBUSY, errno.EAGAIN):
        return f"{port} is in use by another program (another callguard, ModemManager?)"
    return f"cannot open {port}: {text}"


_RECONNECTING = "reconnecting; if this keeps happening, check the modem's USB cable and power"

# What a pyserial port raises when it fails under us. TypeError/AttributeError: pyserial's posix
# read or write on a port another thread has just closed (its fd is None).
_PORT_ERRORS = (serial.SerialException, OSError, TypeError, AttributeError, ValueError)


def _rest_of_burst(ser: Any) -> Callable[[], bytes]:
    """How the reader takes what has arrived after the byte that woke it. A plain serial port
    (a tty or pty; pyserial opens it non-blocking) in one ``read()`` of its descriptor: on the
    seize path, where a caller ID is on its way to ``ATH1``, pyserial's ``in_waiting`` and
    ``read(n)`` cost an ioctl, a select and some tens of microseconds more. Anything else
    (``loop://``, ``spy://``, a test's wrapper) through pyserial."""
    if type(ser) is serial.Serial and hasattr(ser, "fileno"):
        fd = ser.fileno()

        def rest() -> bytes:
            if not ser.is_open:  # closed since the first byte: the descriptor is not its any more
                return b""
            try:
                return os.read(fd, _READ_MAX)
            except BlockingIOError:
                return b""

        return rest

    def waiting() -> bytes:
        count = ser.in_waiting
        return ser.read(count) if count else b""

    return waiting


class ModemTransport:
    """A modem on a serial port, kept connected and initialised. See the module docstring.

    ``monotonic`` is the clock for every timestamp the transport keeps (heartbeat, last sign of
    life, line activity); tests inject one to jump time. It is only read: waits are real.
    """

    def __init__(
        self,
        port: str,
        *,
        country: str = "GB",
        profile: str = "auto",
        baudrate: int = 115200,
        command_timeout_s: float = 3.0,
        health_interval_s: float = 30.0,
        quiet_after_line_activity_s: float = 10.0,
        max_backoff_s: float = 2.0,
        on_status: Callable[[TransportStatus], None] | None = None,
        serial_factory: SerialFactory = serial.serial_for_url,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        profiles.country_code(country)  # fail at construction on a bad country
        if profile != "auto":
            profiles.select_profile(profile, None)
        self.port = port
        self.country = country
        self.configured_profile = profile
        self.baudrate = baudrate
        self.command_timeout_s = command_timeout_s
        self.health_interval_s = health_interval_s
        self.quiet_after_line_activity_s = quiet_after_line_activity_s
        self.max_backoff_s = max_backoff_s
        self.liveness_bound_s = max(LIVENESS_FLOOR_S, 4 * command_timeout_s + 5)
        """:meth:`healthy` is False once the supervisor has made no progress for this long."""
        self._on_status = on_status
        self._serial_factory = serial_factory
        self._monotonic = monotonic

        self.profile: profiles.ModemProfile | None = None
        self._listeners: list[EventListener] = []
        self._io_lock = threading.Lock()  # a leaf: guards _link and each link's mutable fields
        self._link: _Link | None = None
        self._session = threading.RLock()  # serialises commands, raw writes, voice sessions
        self._stop = threading.Event()
        self._wake = threading.Event()  # set after _stop or a link's lost flag: look again
        self._on_reader = threading.local()  # .active on reader threads
        self._closing = False  # supervisor-only: in its stop-time on-hook, commands not cancelled
        self._heartbeat = monotonic()
        self._write_started: float | None = None
        self._last_alive = 0.0
        self._last_line_activity = 0.0
        self._line_events = 0
        self._caller_id_command: str | None = None
        self._supervisor: threading.Thread | None = None
        self._status = TransportStatus(LinkState.DISCONNECTED, "not started", port)
        self._status_lock = threading.Lock()
        self._connected = threading.Event()
        self._first_look: Callable[[CallerId], bool] | None = None

    # -- public API ------------------------------------------------------------------------

    @property
    def status(self) -> TransportStatus:
        with self._status_lock:
            return self._status

    def add_listener(self, listener: EventListener) -> None:
        self._listeners.append(listener)

    def remove_listener(self, listener: EventListener) -> None:
        with contextlib.suppress(ValueError):
            self._listeners.remove(listener)

    def set_first_look(self, look: Callable[[CallerId], bool] | None) -> None:
        """Have the reader take the line itself for a caller ID ``look`` says to block outright
        (module docstring). ``look`` runs on the reader thread: it must be quick, must not
        block and must not send commands; an exception from it counts as "no"."""
        self._first_look = look

    def claim_first_look(self, event: CallerId) -> bool:
        """True once if the reader wrote ``ATH1`` for ``event`` on the current link: the line
        is (being) taken, and the claimer's own ``ATH1`` adopts the reply. False otherwise."""
        with self._io_lock:
            link = self._link
            if link is None or link.early_for is not event:
                return False
            link.early_for = None
            return True

    def start(self) -> None:
        """Start the supervisor; it connects in the background. Returns at once."""
        if self._supervisor is not None:
            if self._supervisor.is_alive():
                state = "still stopping" if self._stop.is_set() else "already started"
                raise RuntimeError(f"the transport on {self.port} is {state}")
            self._supervisor = None  # a previous one that did not stop in time has ended since
        self._stop.clear()
        self._heartbeat = self._monotonic()
        self._supervisor = threading.Thread(
            target=self._supervise, name=f"modem-supervisor {self.port}", daemon=True
        )
        self._supervisor.start()

    def wait_connected(self, timeout_s: float) -> bool:
        return self._connected.wait(timeout_s)

    def healthy(self, now_mono: float | None = None) -> bool:
        """Is the transport's machinery moving? For the systemd watchdog.

        True while the supervisor thread is running and has recorded a heartbeat within
        :attr:`liveness_bound_s` of ``now_mono`` (default: the transport's clock now), and no
        serial write has been blocked for that long. False before :meth:`start`, after the
        supervisor ended (stopped, or died), or when it is stuck. A disconnected modem is
        *not* unhealthy: the supervisor is then busy reconnecting; see :attr:`status`.
        """
        supervisor = self._supervisor
        if supervisor is None or not supervisor.is_alive():
            return False
        now = self._monotonic() if now_mono is None else now_mono
        if now - self._heartbeat > self.liveness_bound_s:
            return False
        started = self._write_started
        return started is None or now - started <= self.liveness_bound_s

    def stop(self) -> None:
        """Put the line on-hook (best effort), close the port and stop the threads.

        Returns within :data:`STOP_TIMEOUT_S` even when the modem never answers: the
        supervisor's pending command is cancelled, ``ATH0`` is tried twice for 1 s each, then
        DTR is dropped, the port closed and the reader joined for at most 0.5 s.
        """
        self._stop.set()
        self._wake.set()
        with self._io_lock:
            link = self._link
            pending = None
            if link is not None and link.pending is not None:
                pending = link.pending
                # (the reader's ATH1 too: the stop-time ATH0 need not wait for its reply)
                if pending.cancel_on_stop or pending is link.early:
                    pending.cancelled = True
                else:
                    pending = None
        if pending is not None:
            pending.done.set()
        supervisor = self._supervisor
        if supervisor is None or supervisor is threading.current_thread():
            return
        supervisor.join(timeout=STOP_TIMEOUT_S)
        if supervisor.is_alive():
            log.error(
                "the modem supervisor for %s did not stop within %g s (a serial driver that "
                "does not return?); the port is left to be closed when the process exits",
                self.port,
                STOP_TIMEOUT_S,
            )
        else:
            self._supervisor = None

    def __enter__(self) -> ModemTransport:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @contextlib.contextmanager
    def session(self) -> Iterator[ModemTransport]:
        """Hold the modem for a sequence of commands (a voice session)."""
        with self._session:
            yield self

    def command(self, command: str, timeout_s: float | None = None) -> Reply:
        """Send one AT command and wait for its final result.

        Raises :class:`ModemUnavailable` when there is no port and :class:`CommandTimeout`
        when no final result comes in time. ``ERROR`` is a reply, not an exception.
        """
        return self._exchange(command, None, timeout_s)

    def write_then_wait(self, data: bytes, label: str, timeout_s: float | None = None) -> Reply:
        """Write raw bytes (``<DLE><ETX>``) and wait for the final result they cause."""
        return self._exchange(label, data, timeout_s)

    def write_raw(self, data: bytes) -> None:
        """Write bytes with no reply expected (voice data, already DLE-shielded)."""
        self._refuse_on_reader()
        with self._session:
            with self._io_lock:
                link = self._link
                if link is None or link.lost.is_set():
                    raise ModemUnavailable(self._not_connected())
            self._write(link, data)

    def reinitialise(self, reason: str) -> None:
        """Ask the supervisor to close the port, open it again and re-run init (``ATH0``
        first). Returns at once; the status goes disconnected with ``reason``, then connected.
        Does nothing while disconnected (the supervisor is reconnecting already)."""
        with self._io_lock:
            link = self._link
        if link is not None:
            self._port_lost(link, f"re-initialising the modem on {self.port}: {reason}")

    def hangup_by_dtr(self) -> None:
        """Last resort on-hook: drop DTR, which hangs up a modem in the default ``&D2``.

        Takes no session (it is what to do when a command cannot get through) and holds no
        lock while it waits the 0.2 s the modem needs to see the drop.
        """
        with self._io_lock:
            link = self._link
        if link is None:
            return
        with contextlib.suppress(Exception):
            link.ser.dtr = False
            time.sleep(DTR_DROP_S)
            link.ser.dtr = True

    def on_hook(self, attempts: int = 3, attempt_timeout_s: float = 2.0) -> bool:
        """``ATH0`` until the modem says OK (DOMAIN: repeat ATH0 if no OK comes back).

        True when the modem confirmed OK. Otherwise DTR is dropped (a modem that cannot be
        reached is not dropped: there is no port) and False returned. Blocks for at most about
        ``attempts * attempt_timeout_s + 0.5 s``: it waits :data:`ON_HOOK_SESSION_WAIT_S` for a
        command in progress on another thread, then drops DTR instead.
        """
        if not self._session.acquire(timeout=ON_HOOK_SESSION_WAIT_S):
            log.warning(
                "the modem on %s is busy with another command; dropping DTR to put the line "
                "on-hook instead of ATH0",
                self.port,
            )
            self.hangup_by_dtr()
            return False
        try:
            for _ in range(attempts):
                try:
                    if self.command("ATH0", timeout_s=attempt_timeout_s).ok:
                        return True
                except ModemUnavailable:
                    return False
                except CommandTimeout:
                    continue
        finally:
            self._session.release()
        self.hangup_by_dtr()
        return False

    def assert_caller_id(self) -> Reply:
        """Turn formatted caller ID on, trying the profile's commands in order."""
        profile = self.profile or profiles.GENERIC
        known = self._caller_id_command
        candidates: Sequence[str] = (known,) if known else profile.caller_id
        reply = Reply("caller ID")
        for cmd in candidates:
            reply = self.command(cmd)
            if reply.ok:
                self._caller_id_command = cmd
                break
        return reply

    @property
    def line_events(self) -> int:
        """How many RINGs and caller IDs the modem has reported (each is a call coming in): a
        mark for :meth:`after_call`'s ``step_aside_after``."""
        return self._line_events

    def after_call(self, *, step_aside_after: int | None = None) -> bool:
        """Back to command class with caller ID on; run after every call and voice session.

        With ``step_aside_after`` (a :attr:`line_events` reading), it gives way to a new call:
        once the line has had a RING or caller ID since that reading, it sends no further
        command and returns False, so a seizure waits for one command in flight at most, never
        for the whole sequence (the daemon asserts caller ID again after the new call). True
        when every command was sent.
        """
        with self.session():
            if self._stepping_aside(step_aside_after):
                return False
            self.command("AT+FCLASS=0")
            if self._stepping_aside(step_aside_after):
                return False
            reply = self.assert_caller_id()
            if not reply.ok:
                log.warning("could not re-enable caller ID after the call: %s", reply.describe())
        return True

    def _stepping_aside(self, mark: int | None) -> bool:
        if mark is None or self._line_events == mark:
            return False
        log.debug("a call came in: caller ID is asserted again after it instead")
        return True

    # -- internals: commands and writes ------------------------------------------------------

    def _not_connected(self) -> str:
        return f"modem on {self.port} is not connected"

    def _refuse_on_reader(self) -> None:
        if getattr(self._on_reader, "active", False):
            raise RuntimeError("modem commands cannot be sent from an event listener")

    def _beat(self) -> None:
        self._heartbeat = self._monotonic()

    def _exchange(self, label: str, raw: bytes | None, timeout_s: float | None) -> Reply:
        self._refuse_on_reader()
        timeout = self.command_timeout_s if timeout_s is None else timeout_s
        own = threading.current_thread() is self._supervisor and not self._closing
        if own:
            self._beat()
        with self._session:
            adopted = self._settle_first_look(label if raw is None else None, timeout)
            with self._io_lock:
                link = self._link
                if own and self._stop.is_set():
                    raise ModemUnavailable(f"the transport on {self.port} is stopping")
                if adopted is not None:
                    link, pending = adopted
                else:
                    if link is None or link.lost.is_set():
                        raise ModemUnavailable(self._not_connected())
                    if raw is None:
                        data = link.proto.send_command(label)
                        command = link.proto.awaiting
                        assert command is not None
                    else:
                        data = raw
                        command = link.proto.expect_final(label)
                    pending = _Pending(command, label, cancel_on_stop=own)
                    link.pending = pending
            try:
                if adopted is None:
                    self._write(link, data)
                pending.done.wait(timeout)
            finally:
                self._forget(link, pending)
            if own:
                self._beat()
            if pending.reply.final is not None:
                log.debug("%s -> %s", label, pending.reply.describe())
                return pending.reply
            if pending.cancelled:
                raise ModemUnavailable(f"the transport on {self.port} is stopping")
            if link.lost.is_set():
                raise ModemUnavailable(link.reason or self._not_connected())
            raise CommandTimeout(f"no reply to {label} from {self.port} within {timeout:g} s")

    def _forget(self, link: _Link, pending: _Pending) -> None:
        """The wait for ``pending`` is over: no longer the link's, and a reply still owed is
        cancelled in the parser (a late answer is nobody's reply)."""
        with self._io_lock:
            if link.pending is pending:
                link.pending = None
            if pending.reply.final is None:
                link.proto.cancel_command(pending.command)

    def _settle_first_look(
        self, label: str | None, timeout: float
    ) -> tuple[_Link, _Pending] | None:
        """Session held: an ``ATH1`` the reader wrote and nobody has waited for yet is adopted
        by an ``ATH1`` (returned: wait for it instead of writing again) and waited out first by
        anything else (at most ``timeout``)."""
        with self._io_lock:
            link = self._link
            early = None if link is None else link.early
            if link is None or early is None:
                return None
            link.early = None
            if label is not None and label.strip().upper() == "ATH1":
                return link, early
        early.done.wait(timeout)
        self._forget(link, early)
        return None

    def _write(self, link: _Link, data: bytes) -> None:
        """Write to ``link`` (session held, no other lock); a failure fails the link."""
        self._write_started = self._monotonic()
        try:
            link.ser.write(data)
        except _PORT_ERRORS as exc:
            reason = f"writing to {self.port} failed: {exc} ({_RECONNECTING})"
            self._port_lost(link, reason)
            raise ModemUnavailable(reason) from exc
        finally:
            self._write_started = None

    # -- internals: reader -----------------------------------------------------------------

    def _read_loop(self, link: _Link) -> None:
        self._on_reader.active = True
        ser = link.ser
        try:
            rest = _rest_of_burst(ser)
            while not link.lost.is_set():  # runs until _close(), so stop() can still say ATH0
                try:
                    # the first byte wakes the read; the rest of the burst is there by then
                    data = ser.read(1)
                    if data:
                        data += rest()
                except _PORT_ERRORS as exc:
                    reason = f"lost the modem on {self.port}: {exc} ({_RECONNECTING})"
                    self._port_lost(link, reason)
                    return
                if data:
                    self._feed(link, data)
        except Exception as exc:  # a bug must not leave a link that nobody reads
            log.exception("the modem reader for %s failed", self.port)
            self._port_lost(link, f"the reader for {self.port} failed: {exc} (reconnecting)")

    def _feed(self, link: _Link, data: bytes) -> None:
        now = self._monotonic()
        unanswered: list[FinalEvent] = []
        with self._io_lock:
            if self._link is not link:
                return  # a reader that outlived its link: nobody is listening to it
            link.proto.receive_data(data)
            events = link.proto.events()
            pending = link.pending
            for event in events:
                if isinstance(event, FINAL_EVENTS):
                    if pending is not None and event.answers == pending.command and not event.late:
                        pending.reply.final = event
                        link.pending = None
                        pending.done.set()
                        pending = None
                    else:
                        unanswered.append(event)
                elif (
                    isinstance(event, Info | LineVoltage | Echo)
                    and pending is not None
                    and event.answers == pending.command
                ):
                    pending.reply.events.append(event)
        for event in unanswered:
            if event.answers is None:
                log.debug("a final result with no command owed it, dropped: %r", event)
            else:
                log.debug(
                    "a late answer to %s (its caller gave up waiting), dropped: %r",
                    event.answers.text,
                    event,
                )
        self._last_alive = now
        look = self._first_look
        if look is not None:
            for event in events:
                if isinstance(event, CallerId) and not event.refined:
                    self._seize_on_first_look(link, event, look)
        for event in events:
            if isinstance(event, Ring | CallerId | DleCode):
                self._last_line_activity = now
            if isinstance(event, Ring | CallerId):
                self._line_events += 1
            for listener in list(self._listeners):
                try:
                    listener(event)
                except Exception:
                    log.exception("modem event listener failed on %r", event)

    def _seize_on_first_look(
        self, link: _Link, event: CallerId, look: Callable[[CallerId], bool]
    ) -> None:
        """On the reader: ``ATH1`` now if ``look`` blocks ``event`` outright and the session is
        free this instant (module docstring). Never waits; a failure leaves it to the daemon."""
        try:
            if not look(event):
                return
        except Exception:
            log.exception("the first look at %r failed; the daemon screens it as usual", event)
            return
        if not self._session.acquire(blocking=False):
            return  # a command or voice session in progress: the daemon's own seize waits for it
        try:
            with self._io_lock:
                if self._link is not link or link.lost.is_set() or link.pending or link.early:
                    return
                if self._stop.is_set():
                    return  # stopping: the last word on the line is the stop-time ATH0
            try:  # first the write, then the bookkeeping: only this thread can read the reply
                self._write(link, _SEIZE)
            except ModemUnavailable:  # the link is lost: the daemon hears of it
                return
            with self._io_lock:
                link.proto.send_command("ATH1")
                command = link.proto.awaiting
                assert command is not None
                link.pending = link.early = _Pending(command, "ATH1", cancel_on_stop=False)
                link.early_for = event
        finally:
            self._session.release()

    def _port_lost(self, link: _Link, reason: str) -> None:
        """Mark ``link`` failed and wake its waiter and the supervisor, which closes it.

        Takes ``_io_lock``: never call it with that lock held.
        """
        with self._io_lock:
            if link.lost.is_set():
                return
            link.reason = reason
            link.lost.set()
            pending = link.pending
        if pending is not None:
            pending.done.set()
        self._wake.set()

    # -- internals: supervisor ---------------------------------------------------------------

    def _set_status(self, status: TransportStatus) -> None:
        with self._status_lock:
            previous = self._status
            self._status = status
        if status.connected:
            self._connected.set()
        else:
            self._connected.clear()
        if (previous.state, previous.detail) != (status.state, status.detail):
            level = logging.INFO if status.connected else logging.WARNING
            log.log(level, "modem %s: %s", status.state.value, status.detail)
            if self._on_status is not None:
                try:
                    self._on_status(status)
                except Exception:
                    log.exception("modem status listener failed")

    def _disconnected(self, detail: str) -> None:
        self._set_status(TransportStatus(LinkState.DISCONNECTED, detail, self.port))

    def _supervise(self) -> None:
        backoff = 0.0
        try:
            while not self._stop.is_set():
                self._beat()
                if backoff:
                    self._pause(backoff)
                    if self._stop.is_set():
                        break
                try:
                    backoff = self._run_once(backoff)
                except Exception as exc:
                    backoff = self.max_backoff_s
                    log.exception(
                        "the modem supervisor for %s failed; trying again in %g s",
                        self.port,
                        backoff,
                    )
                    with contextlib.suppress(Exception):
                        self._disconnected(
                            f"internal error on {self.port}: {exc} (retrying; please report it)"
                        )
        finally:
            self._beat()
            with contextlib.suppress(Exception):
                self._disconnected("stopped")

    def _run_once(self, backoff: float) -> float:
        """Open, initialise, watch, close; the backoff before the next attempt."""
        link = self._open()
        if link is None:
            return min(self.max_backoff_s, max(0.2, backoff * 2))
        try:
            if self._initialise(link):
                backoff = 0.0
                self._watch(link)
            else:
                backoff = min(self.max_backoff_s, max(0.5, backoff * 2))
        finally:
            self._close(link, hang_up=self._stop.is_set())
        return backoff

    def _pause(self, seconds: float) -> None:
        """Back off for ``seconds``, beating, until stopped. Counted slices: no clock read."""
        slices = max(1, int(-(-seconds // BACKOFF_SLICE_S)))
        for _ in range(slices):
            if self._stop.wait(seconds / slices):
                return
            self._beat()

    def _open(self) -> _Link | None:
        self._beat()
        try:
            ser = self._serial_factory(
                self.port, baudrate=self.baudrate, timeout=0.2, write_timeout=2.0, exclusive=True
            )
        except (serial.SerialException, OSError, ValueError) as exc:
            self._beat()
            self._disconnected(_open_failure(self.port, exc))
            return None
        self._beat()
        link = _Link(ser)
        link.reader = threading.Thread(
            target=self._read_loop, args=(link,), name=f"modem-reader {self.port}", daemon=True
        )
        with self._io_lock:
            self._link = link
        link.reader.start()
        return link

    def _close(self, link: _Link, hang_up: bool) -> None:
        """Put the line on-hook if asked and the link works, then close it. Bounded but for
        the driver's own ``close()``, which the heartbeat watches."""
        self._beat()
        if hang_up and not link.lost.is_set():
            self._closing = True
            try:
                with contextlib.suppress(ModemError):
                    self.on_hook(attempts=STOP_ATH0_ATTEMPTS, attempt_timeout_s=STOP_ATH0_TIMEOUT_S)
            finally:
                self._closing = False
            self._beat()
        with self._io_lock:
            if self._link is link:
                self._link = None
            if not link.lost.is_set():
                link.reason = link.reason or f"the port {self.port} was closed"
                link.lost.set()
            pending = link.pending
        if pending is not None:
            pending.done.set()
        reader = link.reader
        if reader is not None and reader is not threading.current_thread():
            reader.join(timeout=READER_JOIN_S)
        self._beat()
        with contextlib.suppress(Exception):
            link.ser.close()
        self._beat()
        if reader is not None and reader is not threading.current_thread():
            reader.join(timeout=READER_JOIN_S)
            if reader.is_alive():
                log.warning(
                    "the reader for %s did not finish after the port was closed; "
                    "it is abandoned and its data ignored",
                    self.port,
                )

    def _acquire_session(self) -> bool:
        """The session for the supervisor: waited for in slices, beating; False on stop."""
        while not self._session.acquire(timeout=SESSION_SLICE_S):
            self._beat()
            if self._stop.is_set():
                return False
        return True

    def _initialise(self, link: _Link) -> bool:
        """Run init; True when the modem answered and is set up (warnings are allowed)."""
        warnings: list[str] = []
        if not self._acquire_session():
            return False
        try:
            on_hook, *rest = profiles.init_commands(self.country)
            self._first_reply(on_hook)
            for cmd in rest:
                reply = self.command(cmd, timeout_s=max(self.command_timeout_s, 3.0))
                if not reply.ok:
                    warnings.append(reply.describe())
            ident = self.command("ATI0")
            ati0 = ident.lines[0] if ident.lines else None
            self.profile = profiles.select_profile(self.configured_profile, ati0)
            ati3 = self.command("ATI3")
            identity = " / ".join(x for x in (ati0, *(ati3.lines[:1])) if x) or None
            self._caller_id_command = None
            reply = self.assert_caller_id()
            if not reply.ok:
                warnings.append("caller ID could not be turned on (" + reply.describe() + ")")
        except ModemUnavailable as exc:
            if not self._stop.is_set():
                self._disconnected(link.reason or str(exc))
            return False
        except CommandTimeout as exc:
            if not self._stop.is_set():
                self._disconnected(
                    f"modem on {self.port} is not answering: {exc} "
                    "(retrying; unplug it and plug it in again if this goes on)"
                )
            return False
        finally:
            self._session.release()
        for w in warnings:
            log.warning("modem init: %s", w)
        self._last_alive = self._monotonic()
        self._set_status(
            TransportStatus(
                LinkState.CONNECTED,
                f"{self.profile.description} on {self.port}",
                self.port,
                profile=self.profile.name,
                identity=identity,
                warnings=tuple(warnings),
            )
        )
        return True

    def _first_reply(self, command: str) -> Reply:
        """The first command after opening; a modem just powered on may eat it, so retry."""
        for _ in range(3):
            with contextlib.suppress(CommandTimeout):
                return self.command(command, timeout_s=1.5)
        raise CommandTimeout(f"no reply to {command}")

    def _watch(self, link: _Link) -> None:
        """Stay here while connected; return when stopping, the link is lost or the modem dead."""
        misses = 0
        while True:
            self._beat()
            if self._stop.is_set():
                return
            if link.lost.is_set():
                self._disconnected(link.reason)
                return
            self._wake.wait(min(WATCH_SLICE_S, self.health_interval_s / 4))
            self._wake.clear()  # the flags it stands for are looked at next, at the loop's top
            now = self._monotonic()
            if now - self._last_alive < self.health_interval_s:
                continue
            if now - self._last_line_activity < self.quiet_after_line_activity_s:
                continue
            if self._stop.is_set() or link.lost.is_set():
                continue
            if not self._session.acquire(blocking=False):
                continue
            try:
                alive = self.command("AT", timeout_s=min(2.0, self.command_timeout_s)).final
            except CommandTimeout:
                alive = None
            except ModemUnavailable:
                continue  # lost or stopping: reported at the top of the loop
            finally:
                self._session.release()
            if alive is not None:
                misses = 0
                continue
            misses += 1
            log.warning("the modem on %s missed a health check (%d of 2)", self.port, misses)
            if misses >= 2:
                self._disconnected(
                    f"modem on {self.port} stopped answering (no reply to AT; reconnecting)"
                )
                return
