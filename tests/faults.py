"""A serial port that fails when it is told to: fault injection for the transport and the daemon.

Theory of operation
-------------------
:class:`FaultySerialFactory` is a drop-in ``serial_factory`` for
:class:`~callguard.modem.transport.ModemTransport` (and anything else that opens ports the way
``serial.serial_for_url(port, baudrate=..., timeout=..., write_timeout=..., exclusive=True)``
does). It opens the real port (by default with pyserial, so a :class:`~callguard.sim.SimModem`
pty answers as a modem would) and wraps it in a :class:`FaultySerial`, which passes every call
through unless the shared :class:`FaultPlan` says otherwise.

A plan is a list of :class:`Fault` rules, consulted on every ``open``, ``write``, ``read`` and
``close``. A rule matches an operation (and, for writes, data containing some bytes), counts the
matching calls from the moment it was added, and when it fires does one of:

* ``"raise"``: raise its error (by default ``serial.SerialException`` with EIO, as pyserial
  raises for a pulled USB cable; any exception factory can be given);
* ``"swallow"``: a write is accepted and dropped (the modem never hears it), a read returns
  ``b""`` (after the real read, whose timeout keeps the reader from spinning);
* ``"block"``: the call hangs until ``fault.gate`` is set (a wedged USB driver). Always release
  it at the end of a test: :meth:`FaultPlan.release` sets every gate.

A rule can fire only on the ``nth`` matching call, at most ``times`` times, and only in a time
window (``after_s`` from when it was added, for ``for_s``), on the plan's clock. The helpers
cover the usual cases::

    plan = FaultPlan()
    factory = FaultySerialFactory(plan)
    transport = ModemTransport(sim.port, serial_factory=factory)

    plan.fail_write(nth=3)                      # the third write from now raises
    plan.fail_writes(containing=b"ATH")         # every on-hook command fails
    plan.fail_reads(after_s=0.5)                # reads fail from half a second on
    plan.unplug(for_s=1.0)                      # open ports fail, opens fail for 1 s
    plan.deaf(for_s=2.0)                        # writes are swallowed: no answers for 2 s
    gate = plan.block("close").gate             # the next close() hangs until gate.set()

What happened is recorded for assertions: :attr:`FaultPlan.opens`, :attr:`FaultPlan.writes`
(every write, passed or not), :attr:`FaultPlan.dtr` (every DTR change) and ``fault.fired``.
"""

from __future__ import annotations

import errno
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import serial

Op = Literal["open", "write", "read", "close"]
Action = Literal["raise", "swallow", "block"]


def eio(port: str = "") -> BaseException:
    """What pyserial raises when the USB device went away under a read or write."""
    return serial.SerialException(errno.EIO, "[Errno 5] Input/output error")


def enoent(port: str) -> BaseException:
    """What pyserial raises when opening a port whose device is not there."""
    return serial.SerialException(
        errno.ENOENT, f"could not open port {port}: [Errno 2] No such file or directory: '{port}'"
    )


@dataclass
class Fault:
    """One rule of a :class:`FaultPlan`. Create them with the plan's helpers or
    :meth:`FaultPlan.add`; the counters are kept by the plan."""

    op: Op
    action: Action = "raise"
    containing: bytes | None = None
    """Writes only: match only writes whose data contains these bytes."""
    nth: int | None = None
    """Fire only on the nth matching call (1 = the next one) after the rule was added."""
    times: int | None = None
    """Fire at most this many times (None: every matching call)."""
    after_s: float = 0.0
    for_s: float | None = None
    error: Callable[[str], BaseException] | None = None
    """Makes the exception to raise, given the port; by default :func:`enoent` for an open and
    :func:`eio` otherwise."""
    gate: threading.Event = field(default_factory=threading.Event)
    """``"block"``: the blocked call returns (or raises, for open) once this is set."""
    entered: threading.Event = field(default_factory=threading.Event)
    """Set the first time the rule fires: a test can wait for the fault to be in effect."""
    added_at: float = 0.0
    seen: int = 0
    fired: int = 0

    def active(self, now: float) -> bool:
        if now < self.added_at + self.after_s:
            return False
        return self.for_s is None or now < self.added_at + self.after_s + self.for_s

    def _matches(self, op: Op, data: bytes | None) -> bool:
        if op != self.op:
            return False
        return self.containing is None or (data is not None and self.containing in data)

    def _fires(self) -> bool:
        """Count a matching call; True when this one is to fail (plan lock held)."""
        self.seen += 1
        if self.nth is not None and self.seen != self.nth:
            return False
        if self.times is not None and self.fired >= self.times:
            return False
        self.fired += 1
        return True


class FaultPlan:
    """The faults every port of a :class:`FaultySerialFactory` obeys. Thread-safe; change it
    at any time from the test while the transport runs."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._ports: list[FaultySerial] = []
        self._unplugged_until: float | None = None
        self._unplugged = False
        self.opens = 0
        """Successful opens so far."""
        self.writes: list[bytes] = []
        """Every write asked of any port, whether it went through, was swallowed or failed."""
        self.dtr: list[bool] = []
        """Every DTR change asked of any port (False, True is a hang-up by DTR)."""

    # -- rules -------------------------------------------------------------------------------

    def add(self, fault: Fault) -> Fault:
        with self._lock:
            fault.added_at = self.clock()
            self._faults.append(fault)
        return fault

    def remove(self, fault: Fault) -> None:
        """Take a rule out (and let anything it blocks go on)."""
        with self._lock:
            if fault in self._faults:
                self._faults.remove(fault)
        fault.gate.set()

    def clear(self) -> None:
        """No more faults: every rule removed, the cable plugged in, blocked calls released."""
        with self._lock:
            faults, self._faults = self._faults, []
            self._unplugged = False
            self._unplugged_until = None
        for fault in faults:
            fault.gate.set()

    def release(self) -> None:
        """Let every blocked call go on (the rules stay). Call it in a test's ``finally``."""
        with self._lock:
            faults = list(self._faults)
        for fault in faults:
            fault.gate.set()

    def fail_write(self, nth: int = 1, error: Callable[[str], BaseException] = eio) -> Fault:
        """The nth write from now raises (a cable pulled in the middle of a command)."""
        return self.add(Fault("write", nth=nth, times=1, error=error))

    def fail_writes(
        self,
        containing: bytes | None = None,
        *,
        times: int | None = None,
        after_s: float = 0.0,
        for_s: float | None = None,
        error: Callable[[str], BaseException] = eio,
    ) -> Fault:
        """Writes (containing ``containing``, if given) raise, in the window given."""
        fault = Fault("write", containing=containing, times=times, after_s=after_s, for_s=for_s)
        fault.error = error
        return self.add(fault)

    def fail_reads(
        self,
        *,
        after_s: float = 0.0,
        for_s: float | None = None,
        times: int | None = None,
        error: Callable[[str], BaseException] = eio,
    ) -> Fault:
        """Reads raise from ``after_s`` on, for ``for_s`` (for ever by default)."""
        return self.add(Fault("read", after_s=after_s, for_s=for_s, times=times, error=error))

    def fail_opens(
        self,
        *,
        times: int | None = None,
        for_s: float | None = None,
        error: Callable[[str], BaseException] = enoent,
    ) -> Fault:
        """Opens raise (by default the ENOENT of a missing device): a modem being replugged."""
        return self.add(Fault("open", times=times, for_s=for_s, error=error))

    def deaf(self, for_s: float | None = None, *, mute: bool = False) -> list[Fault]:
        """The modem hears nothing: every write is swallowed, so nothing is ever answered.
        With ``mute`` it also says nothing (RING and caller ID are lost too). Ends after
        ``for_s``, or when the returned rules are removed (:meth:`hear`)."""
        faults = [self.add(Fault("write", action="swallow", for_s=for_s))]
        if mute:
            faults.append(self.add(Fault("read", action="swallow", for_s=for_s)))
        return faults

    def hear(self) -> None:
        """End every deaf (and mute) spell now."""
        with self._lock:
            self._faults = [f for f in self._faults if f.action != "swallow"]

    def block(self, op: Op, containing: bytes | None = None, *, times: int | None = 1) -> Fault:
        """The next ``op`` (``times`` of them; None: all) hangs until ``fault.gate`` is set;
        ``fault.entered`` is set once one is hanging."""
        return self.add(Fault(op, action="block", containing=containing, times=times))

    # -- the cable ---------------------------------------------------------------------------

    def unplug(self, for_s: float | None = None) -> None:
        """Pull the cable: every open port fails from its next read or write on (for good, as a
        vanished device does), and opens fail with ENOENT until :meth:`replug` or ``for_s``."""
        with self._lock:
            self._unplugged = True
            self._unplugged_until = None if for_s is None else self.clock() + for_s
            ports = list(self._ports)
        for port in ports:
            port.dead = True

    def replug(self) -> None:
        with self._lock:
            self._unplugged = False
            self._unplugged_until = None

    @property
    def unplugged(self) -> bool:
        with self._lock:
            return self._is_unplugged()

    def _is_unplugged(self) -> bool:
        until = self._unplugged_until
        if self._unplugged and until is not None and self.clock() >= until:
            self._unplugged = False
            self._unplugged_until = None
        return self._unplugged

    # -- used by the ports -------------------------------------------------------------------

    def _check(self, op: Op, data: bytes | None = None) -> Fault | None:
        """The rule that fires for this call, if any."""
        with self._lock:
            if op == "write" and data is not None:
                self.writes.append(bytes(data))
            now = self.clock()
            for fault in self._faults:
                if fault._matches(op, data) and fault.active(now) and fault._fires():
                    fault.entered.set()
                    return fault
        return None

    def _apply(self, fault: Fault, port: str) -> None:
        """Carry out a "raise" or "block" (a "swallow" is up to the caller)."""
        if fault.action == "block":
            fault.gate.wait()
            return
        if fault.action == "raise":
            make = fault.error or (enoent if fault.op == "open" else eio)
            raise make(port)


class FaultySerial:
    """A real pyserial port that obeys a :class:`FaultPlan`."""

    def __init__(self, real: Any, plan: FaultPlan, port: str) -> None:
        self._real = real
        self._plan = plan
        self.port = port
        self.dead = False
        """Unplugged: every read and write fails, as on a device that has gone."""

    def read(self, size: int = 1) -> bytes:
        if self.dead:
            raise serial.SerialException(
                "device reports readiness to read but returned no data "
                "(device disconnected or multiple access on port?)"
            )
        fault = self._plan._check("read")
        if fault is not None and fault.action != "swallow":
            self._plan._apply(fault, self.port)
        data: bytes = self._real.read(size)
        if fault is not None and fault.action == "swallow":
            return b""
        return data

    def write(self, data: bytes) -> int:
        if self.dead:
            with self._plan._lock:
                self._plan.writes.append(bytes(data))
            raise eio(self.port)
        fault = self._plan._check("write", data)
        if fault is not None:
            if fault.action == "swallow":
                return len(data)
            self._plan._apply(fault, self.port)
        written: int = self._real.write(data)
        return written

    @property
    def in_waiting(self) -> int:
        if self.dead:
            raise OSError(errno.EIO, "Input/output error")
        waiting: int = self._real.in_waiting
        return waiting

    @property
    def dtr(self) -> bool:
        value: bool = self._real.dtr
        return value

    @dtr.setter
    def dtr(self, value: bool) -> None:
        self._plan.dtr.append(bool(value))
        self._real.dtr = value

    def close(self) -> None:
        fault = self._plan._check("close")
        if fault is not None:
            self._plan._apply(fault, self.port)
        self._real.close()
        with self._plan._lock:
            if self in self._plan._ports:
                self._plan._ports.remove(self)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


class FaultySerialFactory:
    """A ``serial_factory``: opens the real port with ``opener`` (pyserial by default) and
    returns it wrapped in a :class:`FaultySerial` obeying ``plan``."""

    def __init__(
        self,
        plan: FaultPlan | None = None,
        opener: Callable[..., Any] = serial.serial_for_url,
    ) -> None:
        self.plan = plan if plan is not None else FaultPlan()
        self._opener = opener
        self.ports: list[FaultySerial] = []
        """Every port opened, oldest first."""

    def __call__(self, port: str, **kwargs: Any) -> FaultySerial:
        plan = self.plan
        with plan._lock:
            unplugged = plan._is_unplugged()
        if unplugged:
            raise enoent(port)
        fault = plan._check("open")
        if fault is not None:
            plan._apply(fault, port)
        wrapped = FaultySerial(self._opener(port, **kwargs), plan, port)
        with plan._lock:
            plan.opens += 1
            plan._ports.append(wrapped)
        self.ports.append(wrapped)
        return wrapped
