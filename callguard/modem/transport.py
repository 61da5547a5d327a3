"""The serial side of the modem: open, read, command, notice it is gone, reconnect.

Theory of operation
-------------------
:class:`ModemTransport` owns one serial port (any pyserial URL: ``/dev/ttyACM0``, a pty,
``loop://``, ``spy:///dev/ttyACM0`` to capture traffic) opened with ``exclusive=True`` so two
daemons can never share a modem. Two threads:

* the **reader** reads whatever arrives, feeds it to the sans-IO
  :class:`~callguard.modem.protocol.ModemProtocol`, completes the pending command's reply, and
  passes every event to the listeners. Listeners run on the reader thread and must not block
  (the daemon puts events on its own queue); calling :meth:`ModemTransport.command` from a
  listener would wait for a reply that only this thread can read, so it raises instead.
* the **supervisor** opens the port, runs the profile's init (on-hook first, then country and
  caller ID), and then checks health: if nothing has shown the modem alive for
  ``health_interval_s`` it sends ``AT``; two missed replies mean a locked-up modem. A read
  error (USB unplugged) or a dead modem closes the port; it is reopened with a backoff capped at
  ``max_backoff_s`` (2 s by default), so a modem that comes back is in use again within a few
  seconds, with init run again.

State changes (connected, disconnected with the reason) go to ``on_status``; the current one is
:attr:`ModemTransport.status`.

Commands are serialised by a re-entrant session lock. A voice session takes the same lock for
its whole length (:meth:`ModemTransport.session`) so no health check or other command can land
in the middle of audio. The health check never waits for that lock and is skipped while a call
is in progress (a RING or caller ID in the last ``quiet_after_line_activity_s``), so it cannot
disturb caller-ID reception.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import serial

from callguard.modem import profiles
from callguard.modem.protocol import (
    FINAL_EVENTS,
    CallerId,
    Connect,
    DleCode,
    Echo,
    Error,
    Event,
    Info,
    LineVoltage,
    ModemProtocol,
    Ok,
    Ring,
)

log = logging.getLogger(__name__)

EventListener = Callable[[Event], None]


class ModemError(Exception):
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
    def __init__(self, command: str) -> None:
        self.reply = Reply(command)
        self.done = threading.Event()


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


class ModemTransport:
    """A modem on a serial port, kept connected and initialised. See the module docstring."""

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
        self._on_status = on_status
        self._serial_factory = serial_factory

        self.profile: profiles.ModemProfile | None = None
        self._listeners: list[EventListener] = []
        self._proto = ModemProtocol()
        self._ser: Any = None
        self._io_lock = threading.Lock()  # guards _ser, _proto, _pending
        self._session = threading.RLock()  # serialises commands and voice sessions
        self._pending: _Pending | None = None
        self._stop = threading.Event()
        self._lost = threading.Event()  # set by the reader when the port fails
        self._lost_reason = ""
        self._last_alive = 0.0
        self._last_line_activity = 0.0
        self._caller_id_command: str | None = None
        self._reader: threading.Thread | None = None
        self._supervisor: threading.Thread | None = None
        self._status = TransportStatus(LinkState.DISCONNECTED, "not started", port)
        self._status_lock = threading.Lock()
        self._connected = threading.Event()

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

    def start(self) -> None:
        """Start the supervisor; it connects in the background. Returns at once."""
        if self._supervisor is not None:
            raise RuntimeError("transport already started")
        self._stop.clear()
        self._supervisor = threading.Thread(
            target=self._supervise, name="modem-supervisor", daemon=True
        )
        self._supervisor.start()

    def wait_connected(self, timeout_s: float) -> bool:
        return self._connected.wait(timeout_s)

    def stop(self) -> None:
        """Put the line on-hook (best effort), close the port and stop the threads."""
        self._stop.set()
        if self._supervisor is not None:
            self._supervisor.join(timeout=self.command_timeout_s * 4 + 5)
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
        with self._io_lock:
            ser = self._ser
            if ser is None:
                raise ModemUnavailable(f"modem on {self.port} is not connected")
            try:
                ser.write(data)
            except (serial.SerialException, OSError) as exc:
                raise ModemUnavailable(f"writing to {self.port} failed: {exc}") from exc

    def hangup_by_dtr(self) -> None:
        """Last resort on-hook: drop DTR, which hangs up a modem in the default ``&D2``."""
        with self._io_lock:
            ser = self._ser
            if ser is None:
                return
            with contextlib.suppress(Exception):
                ser.dtr = False
                time.sleep(0.2)
                ser.dtr = True

    def on_hook(self, attempts: int = 3) -> bool:
        """``ATH0`` until the modem says OK (DOMAIN: repeat ATH0 if no OK comes back)."""
        for _ in range(attempts):
            try:
                if self.command("ATH0", timeout_s=2.0).ok:
                    return True
            except ModemUnavailable:
                return False
            except CommandTimeout:
                continue
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

    def after_call(self) -> None:
        """Back to command class with caller ID on; run after every call and voice session."""
        with self.session():
            self.command("AT+FCLASS=0")
            reply = self.assert_caller_id()
            if not reply.ok:
                log.warning("could not re-enable caller ID after the call: %s", reply.describe())

    # -- internals: commands -----------------------------------------------------------------

    def _exchange(self, label: str, raw: bytes | None, timeout_s: float | None) -> Reply:
        if threading.current_thread() is self._reader:
            raise RuntimeError("modem commands cannot be sent from an event listener")
        timeout = self.command_timeout_s if timeout_s is None else timeout_s
        with self._session:
            pending = _Pending(label)
            with self._io_lock:
                ser = self._ser
                if ser is None or self._lost.is_set():
                    raise ModemUnavailable(f"modem on {self.port} is not connected")
                data = raw if raw is not None else self._proto.send_command(label)
                self._pending = pending
                try:
                    ser.write(data)
                except (serial.SerialException, OSError) as exc:
                    self._pending = None
                    self._port_lost(f"writing to {self.port} failed: {exc}")
                    raise ModemUnavailable(str(exc)) from exc
            finished = pending.done.wait(timeout)
            with self._io_lock:
                if self._pending is pending:
                    self._pending = None
                    self._proto.cancel_command()
            if not finished:
                if self._lost.is_set():
                    raise ModemUnavailable(self._lost_reason)
                raise CommandTimeout(f"no reply to {label} within {timeout:g} s")
            log.debug("%s -> %s", label, pending.reply.describe())
            return pending.reply

    # -- internals: reader -----------------------------------------------------------------

    def _read_loop(self, ser: Any) -> None:
        while not self._lost.is_set():  # runs until _close(), so stop() can still say ATH0
            try:
                data = ser.read(max(1, ser.in_waiting))
            except (serial.SerialException, OSError, TypeError, AttributeError) as exc:
                # TypeError/AttributeError: pyserial's posix read after close() from another thread
                self._port_lost(f"lost the modem on {self.port}: {exc}")
                return
            if data:
                self._feed(data)

    def _feed(self, data: bytes) -> None:
        now = time.monotonic()
        with self._io_lock:
            self._proto.receive_data(data)
            events = self._proto.events()
            pending = self._pending
            for event in events:
                if pending is None:
                    continue
                if isinstance(event, FINAL_EVENTS):
                    pending.reply.final = event
                    self._pending = None
                    pending.done.set()
                    pending = None
                elif isinstance(event, Info | LineVoltage | Echo):
                    pending.reply.events.append(event)
        self._last_alive = now
        for event in events:
            if isinstance(event, Ring | CallerId | DleCode):
                self._last_line_activity = now
            for listener in list(self._listeners):
                try:
                    listener(event)
                except Exception:
                    log.exception("modem event listener failed on %r", event)

    def _port_lost(self, reason: str) -> None:
        if self._lost.is_set():
            return
        self._lost_reason = reason
        self._lost.set()
        with self._io_lock:
            pending = self._pending
            self._pending = None
        if pending is not None:
            pending.done.set()

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

    def _supervise(self) -> None:
        backoff = 0.0
        while not self._stop.is_set():
            if backoff:
                self._stop.wait(backoff)
                if self._stop.is_set():
                    break
            ser = self._open()
            if ser is None:
                backoff = min(self.max_backoff_s, max(0.2, backoff * 2))
                continue
            try:
                if self._initialise():
                    backoff = 0.0
                    self._watch()
                else:
                    backoff = min(self.max_backoff_s, max(0.5, backoff * 2))
            finally:
                self._close(on_hook=self._stop.is_set())
        self._set_status(TransportStatus(LinkState.DISCONNECTED, "stopped", self.port))

    def _open(self) -> Any:
        try:
            ser = self._serial_factory(
                self.port, baudrate=self.baudrate, timeout=0.2, write_timeout=2.0, exclusive=True
            )
        except (serial.SerialException, OSError, ValueError) as exc:
            reason = _open_failure(self.port, exc)
            self._set_status(TransportStatus(LinkState.DISCONNECTED, reason, self.port))
            return None
        with self._io_lock:
            self._proto = ModemProtocol()
            self._pending = None
            self._ser = ser
        self._lost.clear()
        self._lost_reason = ""
        self._reader = threading.Thread(
            target=self._read_loop, args=(ser,), name="modem-reader", daemon=True
        )
        self._reader.start()
        return ser

    def _close(self, on_hook: bool) -> None:
        if on_hook and not self._lost.is_set():
            with contextlib.suppress(ModemError):
                self.on_hook(attempts=2)
        with self._io_lock:
            ser = self._ser
            self._ser = None
            pending = self._pending
            self._pending = None
        self._lost.set()
        if pending is not None:
            pending.done.set()
        if self._reader is not None:
            self._reader.join(timeout=2.0)
            self._reader = None
        if ser is not None:
            with contextlib.suppress(Exception):
                ser.close()

    def _initialise(self) -> bool:
        """Run init; True when the modem answered and is set up (warnings are allowed)."""
        warnings: list[str] = []
        try:
            with self.session():
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
            reason = self._lost_reason or str(exc)
            self._set_status(TransportStatus(LinkState.DISCONNECTED, reason, self.port))
            return False
        except CommandTimeout as exc:
            self._set_status(
                TransportStatus(
                    LinkState.DISCONNECTED,
                    f"modem on {self.port} is not answering: {exc}",
                    self.port,
                )
            )
            return False
        for w in warnings:
            log.warning("modem init: %s", w)
        self._last_alive = time.monotonic()
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

    def _watch(self) -> None:
        """Stay here while connected; return when the port is lost or the modem is dead."""
        misses = 0
        while not self._stop.is_set():
            if self._lost.wait(min(1.0, self.health_interval_s / 4)):
                self._set_status(
                    TransportStatus(LinkState.DISCONNECTED, self._lost_reason, self.port)
                )
                return
            now = time.monotonic()
            if now - self._last_alive < self.health_interval_s:
                continue
            if now - self._last_line_activity < self.quiet_after_line_activity_s:
                continue
            if not self._session.acquire(blocking=False):
                continue
            try:
                alive = self.command("AT", timeout_s=min(2.0, self.command_timeout_s)).final
            except CommandTimeout:
                alive = None
            except ModemUnavailable:
                continue  # the lost flag is set; reported at the top of the loop
            finally:
                self._session.release()
            if alive is not None:
                misses = 0
                continue
            misses += 1
            log.warning("modem missed a health check (%d of 2)", misses)
            if misses >= 2:
                self._set_status(
                    TransportStatus(
                        LinkState.DISCONNECTED,
                        f"modem on {self.port} stopped answering (no reply to AT)",
                        self.port,
                    )
                )
                return
