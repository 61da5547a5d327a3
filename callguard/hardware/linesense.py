"""Line sensing: is a phone in the house off-hook, and since when?

Theory of operation
-------------------
RING alone cannot tell an answered call from a caller who gave up, so CallGuard watches the
line itself. Every source turns raw readings ("off-hook", "on-hook" or "no reading") into
samples for one :class:`Debouncer`, which reports a :class:`HookChange` only when a new state
has held for ``hold_s`` (1 s by default). That one rule filters everything on a UK line that
is not a phone being lifted or put down: a hook flash (timed break recall, ~100 ms), the
polarity reversal that announces caller ID, and ringing, which the opto sensor sees as 25 Hz
pulses. A change is stamped with the time the new state *began* (its first sample), so a call
is timed to within one sampling interval, not late by ``hold_s``. The debouncer is pure: it is
given the time with every sample and never looks at a clock.

Sources (``line_sense.source``):

* ``modem``: :class:`ModemLineSense` asks a Conexant modem for the tip/ring voltage
  (``AT-TRV``) every ``interval_s``: about 48 V on-hook (and while ringing), 5-12 V with any
  phone off-hook, so below ``off_hook_below_v`` (20 V) is off-hook. The magnitude is used, so
  a line left reversed after caller ID still reads on-hook. A thread polls only while the
  daemon says it needs readings (:meth:`~ModemLineSense.set_active`: a call ringing or in
  progress), only while the transport is connected, and through
  :meth:`ModemTransport.command <callguard.modem.transport.ModemTransport.command>`, which
  waits for any command or voice session in flight. A failed reading (timeout, unplugged) is
  no reading. The first ``ERROR`` means the modem has no ``AT-TRV`` (a USRobotics 5637): the
  source logs a WARNING with the fix, marks itself unavailable and stops for good.
* ``gpio``: :class:`GpioLineSense` reads an opto-isolated sensor across the line on a pin: lit
  while the line carries its ~50 V (on-hook), dark when a phone is off-hook. The pin is a
  gpiozero :class:`~gpiozero.DigitalInputDevice` built from an injectable pin factory (the
  mock factory in tests). It is sampled on every edge *and* every ``sample_interval_s``
  (0.1 s): edges catch every lit moment of the ringing pulses, so the dark half-cycles never
  add up to ``hold_s``; the timer catches a level that stays put after its last edge (a missed
  edge, or the pin's bounce filter swallowing one). It costs nothing, so it ignores
  :meth:`~GpioLineSense.set_active`.
* ``none``: :class:`NoLineSense`; call durations are unknown and the grooming alert cannot work.
* ``auto`` (the default): :class:`AutoLineSense` chooses one of the three, once, as soon as the
  modem has connected (the transport then knows the modem's family): the modem's line voltage
  where the modem answers ``AT-TRV`` with a voltage (the Conexant family), else the GPIO
  sensor where ``line_sense.gpio_pin`` is set, else none. A modem whose profile is known to have
  no ``AT-TRV`` (the USRobotics 5637) is not asked. The question is one ``AT-TRV``, sent only
  while the line is quiet: no call ringing or in progress (the daemon's :meth:`set_active`),
  no RING or caller ID from the modem in the last ``quiet_s`` and no :meth:`pause` held, so it
  is not sent during a call, and a seizure can meet it only if a caller ID lands in the
  moment it goes out (then the seizure waits for that one reply, at most ``probe_timeout_s``).
  ``ERROR`` (or an answer that is not a voltage) means no ``AT-TRV``; no answer is asked again
  a few times, then counts as none; an unplugged modem is asked again when it is back. Until
  it has chosen, ``name`` is ``"auto"`` and ``available`` False; then both are the chosen
  source's. The choice and why are logged (a WARNING with the fix when it is none), shown in
  ``detail``, and announced through ``on_decided`` so the daemon can write its status again.
  :func:`choose` holds the rule, so ``callguard selftest`` judges a unit as the daemon will.

Is the line alive at all? (:class:`LineVoltageWatch`.) A Digital Voice switch-over or a cut
cable leaves the modem plugged in and answering, but the line carries no voltage and no call
can come in. While the line is idle the watch reads ``AT-TRV`` every ``check_s``
(:data:`LINE_CHECK_S`, 60 s), whatever ``source`` is, whenever the modem can (the modem's
profile is not known to lack ``AT-TRV``; the first ``ERROR`` or non-voltage answer stops it
for good: then volts and dead are unknown). Under :data:`DEAD_BELOW_V` (3 V) in magnitude is
a dead line; it is *dead* once two readings in a row say so (the second taken sooner,
``recheck_s``), and alive again at the first good reading. The same rules as the auto probe
keep it off the seize path: it asks only while the daemon says the line is quiet
(:meth:`~LineVoltageWatch.set_active` False: no call ringing or in progress, CallGuard not
holding the line), never within ``quiet_s`` (2 s) of a RING or caller ID from the modem (heard
on the reader thread, before the daemon's loop has seen them) nor of the end of a call, one
``AT-TRV`` at a time with a short timeout (``probe_timeout_s``). So it is never sent during a
call, and a seizure meets one only if a caller ID lands in the moment it goes out (then the
seizure waits for that one reply, a few milliseconds, at most ``probe_timeout_s``). With
``source = "auto"`` it waits for auto's one question and takes its answer as the first reading
(:meth:`~LineVoltageWatch.seed`), so the modem is not asked twice at start.

Pausing: when CallGuard itself takes the line (speaking a warning, holding a blocked call),
the line voltage drops exactly as if a phone were lifted, and both sources would see it. While
:meth:`pause` is held no reading is taken or used and no change is reported; a change that was
pending when it began is forgotten, as is one pending when readings stop (``set_active``). For
the modem source, ``pause()`` also waits for an ``AT-TRV`` already in flight, so nothing is sent
during the pause: enter it *before* taking the transport's session, never inside it.

``on_change`` is called from the source's own thread (the poller, the sampler or gpiozero's
edge thread) and must not block: the daemon puts the change on its queue.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import gpiozero  # type: ignore[import-untyped]

from callguard.core.hook import Debouncer, Hook, HookChange
from callguard.errors import UsageError
from callguard.modem.profiles import ModemProfile
from callguard.modem.protocol import CallerId, Error, Event, Ring
from callguard.modem.transport import CommandTimeout, ModemTransport, ModemUnavailable, Reply

log = logging.getLogger(__name__)

Clock = Callable[[], float]
"""Float tolerance when comparing how long a state has held with ``hold_s``."""


class LineSense(Protocol):
    """What the daemon uses, whatever the source."""

    @property
    def name(self) -> str:
        """``"modem"``, ``"gpio"`` or ``"none"`` (``"auto"`` until auto has chosen one)."""
        ...

    @property
    def available(self) -> bool:
        """False once the source has given up (no ``AT-TRV``, the pin could not be used)."""
        ...

    @property
    def detail(self) -> str:
        """Plain English for ``callguard status`` and the log."""
        ...

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def set_active(self, active: bool) -> None:
        """Whether the daemon needs readings now (a call ringing or in progress)."""
        ...

    def pause(self) -> contextlib.AbstractContextManager[None]:
        """CallGuard is using the line itself: no readings and no changes while held."""
        ...


def _call_listener(on_change: Callable[[HookChange], None], change: HookChange) -> None:
    try:
        on_change(change)
    except Exception:
        log.exception("line-sense listener failed on %r", change)


class _Worker:
    """A thread of its own (the subclass's ``_run``), started once and stopped by
    ``_stopping``, set under ``_cond`` (which wakes the thread). The modem source, the auto
    probe and the line-voltage watch share it."""

    def __init__(self, cond: threading.Condition) -> None:
        self._cond = cond
        self._stopping = False
        self._thread: threading.Thread | None = None

    def _start_thread(self, name: str, already: str) -> None:
        """Start the thread (``already``: the RuntimeError's words if it was started before);
        :meth:`_starting` runs just before it starts. Returns at once."""
        with self._cond:
            if self._thread is not None:
                raise RuntimeError(already)
            self._stopping = False
            self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._starting()
        self._thread.start()

    def _stop_thread(self) -> None:
        """Stop the thread and wait for it (at most :meth:`_join_s`; not when called from it),
        then :meth:`_stopped`."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=self._join_s())
        self._stopped()

    def _starting(self) -> None:
        """Called once the thread is made, just before it starts (outside the lock)."""

    def _stopped(self) -> None:
        """Called at the end of :meth:`_stop_thread`."""

    def _join_s(self) -> float:
        """How long :meth:`_stop_thread` waits for the thread."""
        raise NotImplementedError

    def _run(self) -> None:
        raise NotImplementedError


# --------------------------------------------------------------------------------------------
# The modem: AT-TRV
# --------------------------------------------------------------------------------------------

_NO_TRV_FIX = 'set line_sense.source = "gpio" with an opto sensor, or use a Conexant-based modem'


class ModemLineSense(_Worker):
    """Line voltage from a Conexant modem's ``AT-TRV``. See the module docstring."""

    name = "modem"

    def __init__(
        self,
        transport: ModemTransport,
        on_change: Callable[[HookChange], None],
        *,
        interval_s: float = 1.0,
        off_hook_below_v: float = 20.0,
        hold_s: float = 1.0,
        clock: Clock = time.monotonic,
    ) -> None:
        if interval_s <= 0:
            raise ValueError(f"interval_s is {interval_s}; expected a positive number of seconds")
        if off_hook_below_v <= 0:
            raise ValueError(f"off_hook_below_v is {off_hook_below_v}; expected a positive voltage")
        super().__init__(threading.Condition())
        self.transport = transport
        self.interval_s = interval_s
        self.off_hook_below_v = off_hook_below_v
        self._on_change = on_change
        self._clock = clock
        self._debouncer = Debouncer(hold_s)
        self._active = False
        self._paused = 0
        self._gaps = 0  # bumped whenever readings stop (inactive, paused): spans no change
        self._in_flight = False
        self._available = True
        self._detail = (
            f"line voltage from the modem (AT-TRV), off-hook below {off_hook_below_v:g} V"
        )
        self._warned_unreadable = False
        self.last_volts: float | None = None
        """The latest reading; None before the first and after one that failed."""

    @property
    def available(self) -> bool:
        with self._cond:
            return self._available

    @property
    def detail(self) -> str:
        with self._cond:
            return self._detail

    @property
    def hook(self) -> Hook:
        """The debounced state: the last change reported (on-hook at start)."""
        with self._cond:
            return self._debouncer.state

    def start(self) -> None:
        """Start the polling thread; it sends nothing until :meth:`set_active` (True)."""
        self._start_thread("line-sense-modem", "line sense already started")

    def stop(self) -> None:
        self._stop_thread()

    def _join_s(self) -> float:
        return self.transport.command_timeout_s + 2.0

    def set_active(self, active: bool) -> None:
        with self._cond:
            if active == self._active:
                return
            self._active = active
            if not active:
                self._gaps += 1
                self._debouncer.discard_pending()
            self._cond.notify_all()

    @contextlib.contextmanager
    def pause(self) -> Iterator[None]:
        """No ``AT-TRV`` is sent and no change reported while held; waits for one in flight."""
        with self._cond:
            self._paused += 1
            self._gaps += 1
            self._debouncer.discard_pending()
            # Bounded, in case the caller holds the transport session the poll is waiting for.
            self._cond.wait_for(
                lambda: not self._in_flight, timeout=self.transport.command_timeout_s + 1.0
            )
        try:
            yield
        finally:
            with self._cond:
                self._paused -= 1
                self._cond.notify_all()

    def is_off_hook(self, volts: float) -> bool:
        """Below the threshold in magnitude: a reversed line (negative volts) is still on-hook."""
        return abs(volts) < self.off_hook_below_v

    def poll(self) -> HookChange | None:
        """Take one reading now and feed it (the polling thread's step; public for tests).

        Returns the change it confirmed, after passing it to ``on_change``.
        """
        with self._cond:
            if not self._available:
                return None
            self._in_flight = True
            gaps = self._gaps
        at = self._clock()
        volts: float | None = None
        try:
            volts = self._read()
        finally:
            with self._cond:
                self._in_flight = False
                self._cond.notify_all()
                self.last_volts = volts
                fresh = gaps == self._gaps and self._paused == 0 and self._available
                change = None
                if fresh and volts is not None:
                    change = self._debouncer.feed(at, self.is_off_hook(volts))
        if change is not None:
            log.info("line %s (AT-TRV %.1f V)", change.hook.value, volts)
            _call_listener(self._on_change, change)
        return change

    def _read(self) -> float | None:
        transport = self.transport
        if not transport.status.connected:
            return None
        try:
            reply = transport.command("AT-TRV")
        except (CommandTimeout, ModemUnavailable) as exc:
            log.debug("no line voltage this time: %s", exc)
            return None
        if isinstance(reply.final, Error):
            self._give_up(reply.final.text)
            return None
        if reply.volts is None and not self._warned_unreadable:
            self._warned_unreadable = True
            log.warning(
                "the modem answered AT-TRV with %r, which is not a voltage; ignoring it",
                reply.lines,
            )
        return reply.volts

    def _give_up(self, answer: str) -> None:
        profile = self.transport.profile
        guess = ""
        if profile is not None and profile.line_voltage is not True:
            guess = f" ({profile.description}?)"
        with self._cond:
            self._available = False
            self._detail = f"stopped: this modem has no AT-TRV{guess}"
            self._cond.notify_all()
        log.warning(
            "line sensing stopped: the modem answered %s to AT-TRV, so it cannot report the "
            "line voltage%s. Call durations are unknown and the grooming alert cannot work; %s",
            answer,
            guess,
            _NO_TRV_FIX,
        )

    def _ready(self) -> bool:
        return self._stopping or (self._active and self._paused == 0 and self._available)

    def _run(self) -> None:
        next_due = time.monotonic()
        while True:
            with self._cond:
                self._cond.wait_for(self._ready)
                if self._stopping or not self._available:
                    return
                delay = next_due - time.monotonic()
                if delay > 0:
                    self._cond.wait(delay)
                    continue  # conditions may have changed while waiting
            next_due = time.monotonic() + self.interval_s
            try:
                self.poll()
            except Exception:
                log.exception("line-sense poll failed; trying again")


# --------------------------------------------------------------------------------------------
# GPIO: an opto-isolated sensor across the line
# --------------------------------------------------------------------------------------------


def _pin_label(pin: int | str) -> str:
    return f"GPIO{pin}" if isinstance(pin, int) else str(pin)


class GpioLineSense:
    """An opto sensor on a pin, lit while on-hook. See the module docstring.

    ``active_high``: the pin reads high while lit (the opto pulls it up; an internal pull-down
    holds it low when dark). With False it reads low while lit (the usual open-collector
    wiring, with an internal pull-up). ``external_pull``: the board has its own resistor, so
    no internal pull is set.
    """

    name = "gpio"

    def __init__(
        self,
        pin: int | str,
        on_change: Callable[[HookChange], None],
        *,
        active_high: bool = True,
        hold_s: float = 1.0,
        pin_factory: gpiozero.Factory | None = None,
        clock: Clock = time.monotonic,
        sample_interval_s: float | None = 0.1,
        bounce_time_s: float | None = 0.002,
        external_pull: bool = False,
    ) -> None:
        if sample_interval_s is not None and sample_interval_s <= 0:
            raise ValueError(
                f"sample_interval_s is {sample_interval_s}; expected a positive number of "
                "seconds, or None for no periodic sampling"
            )
        self.pin = pin
        self.active_high = active_high
        self.sample_interval_s = sample_interval_s
        self.bounce_time_s = bounce_time_s
        self.external_pull = external_pull
        self._pin_factory = pin_factory
        self._on_change = on_change
        self._clock = clock
        self._debouncer = Debouncer(hold_s)
        self._lock = threading.Lock()  # the debouncer, the device, and the order of changes
        self._device: Any = None
        self._paused = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._available = True
        lit = "high" if active_high else "low"
        self._detail = f"opto sensor on {_pin_label(pin)} (reads {lit} while the line is on-hook)"

    @property
    def available(self) -> bool:
        return self._available

    @property
    def detail(self) -> str:
        return self._detail

    @property
    def hook(self) -> Hook:
        """The debounced state: the last change reported (on-hook at start)."""
        with self._lock:
            return self._debouncer.state

    @property
    def device(self) -> Any:
        """The gpiozero input device while started (``is_active`` means lit), else None."""
        return self._device

    def start(self) -> None:
        """Claim the pin and start sampling. A pin that cannot be used is logged, not raised:
        the daemon keeps screening calls, and ``available``/``detail`` say what went wrong."""
        if self._device is not None or self._thread is not None:
            raise RuntimeError("line sense already started")
        label = _pin_label(self.pin)
        try:
            if self.external_pull:
                pull: dict[str, Any] = {"pull_up": None, "active_state": self.active_high}
            else:
                pull = {"pull_up": not self.active_high}
            device = gpiozero.DigitalInputDevice(
                self.pin,
                bounce_time=self.bounce_time_s,
                pin_factory=self._pin_factory,
                **pull,
            )
        except Exception as exc:
            self._available = False
            self._detail = f"stopped: cannot use {label} for the line sensor: {exc}"
            log.error(
                "line sensing is off: cannot use %s for the line sensor (%s). Check "
                "line_sense.gpio_pin, that nothing else uses the pin, and that the callguard "
                "user is in the gpio group",
                label,
                exc,
            )
            return
        with self._lock:
            self._device = device
        device.when_activated = self._lit
        device.when_deactivated = self._dark
        self.sample()
        if self.sample_interval_s is not None:
            self._stop.clear()
            self._thread = threading.Thread(
                target=self._sample_loop, name="line-sense-gpio", daemon=True
            )
            self._thread.start()

    def stop(self) -> None:
        """Stop sampling and close the device (the pin is free again)."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=2.0)
        with self._lock:
            device, self._device = self._device, None
        if device is not None:
            device.when_activated = None
            device.when_deactivated = None
            device.close()

    def set_active(self, active: bool) -> None:
        """Ignored: the sensor costs nothing to read, so it is always watched."""

    @contextlib.contextmanager
    def pause(self) -> Iterator[None]:
        with self._lock:
            self._paused += 1
            self._debouncer.discard_pending()
        try:
            yield
        finally:
            with self._lock:
                self._paused -= 1

    def sample(self, now: float | None = None) -> HookChange | None:
        """Read the pin and feed it (the sampler's step; public for tests). ``now`` defaults
        to the clock. Returns the change it confirmed, after passing it to ``on_change``."""
        with self._lock:
            device = self._device
            if device is None:
                return None
            try:
                lit = bool(device.is_active)
            except gpiozero.GPIOZeroError:
                return None  # closed under us by stop()
            change = self._feed_locked(now, lit)
        if change is not None:
            _call_listener(self._on_change, change)
        return change

    def _edge(self, lit: bool) -> None:
        with self._lock:
            change = self._feed_locked(None, lit)
        if change is not None:
            _call_listener(self._on_change, change)

    def _lit(self) -> None:
        self._edge(True)

    def _dark(self) -> None:
        self._edge(False)

    def _feed_locked(self, now: float | None, lit: bool) -> HookChange | None:
        if self._paused:
            return None
        at = self._clock() if now is None else now
        change = self._debouncer.feed(at, not lit)
        if change is not None:
            log.info("line %s (opto sensor on %s)", change.hook.value, _pin_label(self.pin))
        return change

    def _sample_loop(self) -> None:
        interval = self.sample_interval_s
        assert interval is not None
        while not self._stop.wait(interval):
            try:
                self.sample()
            except Exception:
                log.exception("line-sense sample failed; trying again")


# --------------------------------------------------------------------------------------------
# None
# --------------------------------------------------------------------------------------------


class NoLineSense:
    """``line_sense.source = "none"``: nothing is sensed."""

    name = "none"
    available = False
    detail = "off: call durations are unknown and the grooming alert cannot work"

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def set_active(self, active: bool) -> None:
        pass

    def pause(self) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()


# --------------------------------------------------------------------------------------------
# Auto: the modem's line voltage, else a configured sensor, else none
# --------------------------------------------------------------------------------------------

NO_ANSWER = "no answer"
"""What :func:`ask_line_voltage` returns when the modem did not answer ``AT-TRV`` in time."""

MODULE_PIN = 17
"""The pin the README's wiring gives the line-sense module."""

NO_SENSE_FIX = (
    f"fit the line-sense module on GPIO {MODULE_PIN} and set line_sense.gpio_pin = {MODULE_PIN} "
    "(callguard setup asks; see Wiring in the README), or use a Conexant-based modem "
    "(Zoom 3095, StarTech), which senses the line by itself"
)
"""What to do when nothing can sense the line: for the log, ``status`` and ``selftest``."""


def gpio_configured(pin: int | str | None) -> bool:
    """Whether ``line_sense.gpio_pin`` names a pin (-1, or None, is "no module fitted")."""
    return pin is not None and not (isinstance(pin, int) and pin < 0)


def line_voltage_answer(reply: Reply) -> float | str:
    """The volts in a reply to ``AT-TRV``, or what the modem said instead (``"ERROR"``...)."""
    if reply.volts is not None:
        return reply.volts
    if isinstance(reply.final, Error):
        return reply.final.text or "ERROR"
    said = "; ".join(reply.lines) or reply.describe()
    return f"{said!r}, which is not a voltage,"


def ask_line_voltage(transport: ModemTransport, timeout_s: float) -> float | str | None:
    """Ask the modem for the line voltage, once.

    The volts; or what the modem said instead (see :func:`line_voltage_answer`), or
    :data:`NO_ANSWER`; or None, not asked, when the modem's profile is known to have no
    ``AT-TRV``. Raises :class:`ModemUnavailable` when there is no modem to ask.
    """
    profile = transport.profile
    if profile is not None and profile.line_voltage is False:
        return None
    try:
        reply = transport.command("AT-TRV", timeout_s=timeout_s)
    except CommandTimeout:
        return NO_ANSWER
    return line_voltage_answer(reply)


@dataclass(frozen=True)
class Choice:
    """What ``line_sense.source = "auto"`` settles on, and why, in plain English."""

    source: str
    """``"modem"``, ``"gpio"`` or ``"none"``."""
    reason: str


def modem_cannot(profile: ModemProfile | None, answer: float | str | None) -> str | None:
    """Why the modem cannot sense the line, in words, from what :func:`ask_line_voltage`
    returned; None when it gave a voltage."""
    modem = f"the modem ({profile.description})" if profile is not None else "the modem"
    if isinstance(answer, int | float):
        return None
    if answer is None:
        without = f"the {profile.description}" if profile is not None else "the modem"
        return f"{without} cannot report the line voltage (no AT-TRV)"
    if answer == NO_ANSWER:
        return f"{modem} did not answer AT-TRV"
    return f"{modem} answered {answer} to AT-TRV"


def choose(
    profile: ModemProfile | None, answer: float | str | None, gpio_pin: int | str | None
) -> Choice:
    """The rule of ``auto``: the modem's line voltage where ``AT-TRV`` gave a voltage, else
    the sensor where ``gpio_pin`` is set, else none. ``answer`` is what
    :func:`ask_line_voltage` returned."""
    why = modem_cannot(profile, answer)
    if why is None:
        modem = f"the modem ({profile.description})" if profile is not None else "the modem"
        return Choice("modem", f"{modem} reports the line voltage (AT-TRV: {answer:.1f} V)")
    if gpio_configured(gpio_pin):
        assert gpio_pin is not None
        return Choice("gpio", f"{why}; the line-sense module on {_pin_label(gpio_pin)} is set")
    return Choice("none", f"{why}, and no line-sense module is set (line_sense.gpio_pin)")


class _QuietAsker(_Worker):
    """What the auto probe and the line-voltage watch share: a thread of their own that sends
    one ``AT-TRV`` at a time (:meth:`_ask`), only while the line is quiet (:meth:`_quiet_at`:
    no RING or caller ID heard from the modem in the last ``quiet_s``). See the module
    docstring. The subclass writes ``_run``, the thread's loop."""

    def __init__(
        self,
        transport: ModemTransport,
        *,
        clock: Clock,
        quiet_s: float,
        probe_timeout_s: float,
        wait_slice_s: float,
    ) -> None:
        super().__init__(threading.Condition(threading.RLock()))
        self.transport = transport
        self.quiet_s = quiet_s
        self.probe_timeout_s = probe_timeout_s
        self.wait_slice_s = wait_slice_s
        self._clock = clock
        self._in_flight = False
        self._heard_at: float | None = None  # the last RING or caller ID (reader thread)

    def _starting(self) -> None:
        """Listen for RING and caller ID from before the thread starts."""
        self.transport.add_listener(self._heard)

    def _stopped(self) -> None:
        """Stop listening (after the wait for the thread)."""
        self.transport.remove_listener(self._heard)

    def _join_s(self) -> float:
        """Long enough for an ``AT-TRV`` in flight and one wait slice."""
        return self.probe_timeout_s + self.wait_slice_s + 2.0

    def _quiet_at(self, now: float, *since: float | None) -> bool:
        """Whether the line has been quiet for ``quiet_s`` at ``now``: since the last RING or
        caller ID heard and since each of ``since`` (None: never)."""
        for quiet_from in (self._heard_at, *since):
            if quiet_from is not None and now - quiet_from < self.quiet_s:
                return False
        return True

    def _ask(self) -> float | str | None:
        """Send the one ``AT-TRV`` (:func:`ask_line_voltage`); the caller has set
        ``_in_flight`` under the lock, and it is cleared (waking the waiters) however the
        question ends. Raises :class:`ModemUnavailable` when there is no modem to ask."""
        try:
            return ask_line_voltage(self.transport, self.probe_timeout_s)
        finally:
            with self._cond:
                self._in_flight = False
                self._asked_locked()
                self._cond.notify_all()

    def _asked_locked(self) -> None:
        """Called under the lock once an ``AT-TRV`` is done, before the waiters wake."""

    def _heard(self, event: Event) -> None:
        """A modem event, on the transport's reader thread: a RING or caller ID is a call
        coming in before the daemon has said so. Takes no lock (must never hold the reader
        up)."""
        if isinstance(event, Ring | CallerId):
            self._heard_at = self._clock()


class AutoLineSense(_QuietAsker):
    """``line_sense.source = "auto"``: chooses a source once the modem is connected, then is
    that source. See the module docstring.

    ``make`` builds the chosen source (not started) from its name. ``on_decided`` is called
    (from the choosing thread, after the choice is in force) so the daemon can show it.
    """

    def __init__(
        self,
        transport: ModemTransport,
        make: Callable[[str], LineSense],
        *,
        gpio_pin: int | str | None = None,
        on_decided: Callable[[], None] | None = None,
        clock: Clock = time.monotonic,
        probe_timeout_s: float = 1.0,
        attempts: int = 3,
        retry_s: float = 5.0,
        quiet_s: float = 2.0,
        wait_slice_s: float = 0.25,
    ) -> None:
        if attempts < 1:
            raise ValueError(f"attempts is {attempts}; expected 1 or more")
        super().__init__(
            transport,
            clock=clock,
            quiet_s=quiet_s,
            probe_timeout_s=probe_timeout_s,
            wait_slice_s=wait_slice_s,
        )
        self.gpio_pin = gpio_pin
        self.attempts = attempts
        self.retry_s = retry_s
        self._make = make
        self._on_decided = on_decided
        self._chosen: LineSense | None = None
        self.choice: Choice | None = None
        """What was chosen and why; None until then."""
        self.answer: float | str | None = None
        """What the modem said to the question the choice rests on (see
        :func:`ask_line_voltage`); None until then, or when it was not asked."""
        self._active = False
        self._paused = 0
        self._no_answers = 0
        self._next_try: float | None = None
        self._waiting = "waiting for the modem to connect"

    @property
    def name(self) -> str:
        with self._cond:
            return self._chosen.name if self._chosen is not None else "auto"

    @property
    def available(self) -> bool:
        with self._cond:
            return self._chosen is not None and self._chosen.available

    @property
    def detail(self) -> str:
        with self._cond:
            chosen, choice = self._chosen, self.choice
            if chosen is None or choice is None:
                return f"auto: not chosen yet ({self._waiting})"
        detail = f"{chosen.detail} (auto: {choice.reason})"
        if choice.source == "none":
            detail += f"; to fix: {NO_SENSE_FIX}"
        return detail

    @property
    def chosen(self) -> LineSense | None:
        """The source in force once chosen, else None."""
        with self._cond:
            return self._chosen

    def start(self) -> None:
        """Start the thread that waits for the modem and chooses; returns at once."""
        self._start_thread("line-sense-auto", "line sense already started")

    def stop(self) -> None:
        self._stop_thread()
        with self._cond:
            chosen = self._chosen
        if chosen is not None:
            chosen.stop()

    def set_active(self, active: bool) -> None:
        with self._cond:
            self._active = active
            if self._chosen is not None:
                self._chosen.set_active(active)
            self._cond.notify_all()

    @contextlib.contextmanager
    def pause(self) -> Iterator[None]:
        """As the chosen source's; before the choice, no ``AT-TRV`` is sent while held (an
        ``AT-TRV`` already in flight is waited for, at most ``probe_timeout_s`` and a second)."""
        with self._cond:
            chosen = self._chosen
            if chosen is None:
                self._paused += 1
                self._cond.wait_for(lambda: not self._in_flight, timeout=self.probe_timeout_s + 1.0)
        if chosen is not None:
            with chosen.pause():
                yield
            return
        try:
            yield
        finally:
            with self._cond:
                self._paused -= 1
                self._cond.notify_all()

    def may_ask(self) -> bool:
        """Whether the modem may be asked now: connected, the line quiet, nothing paused."""
        with self._cond:
            now = self._clock()
            if self._chosen is not None or self._stopping:
                return False
            if not self.transport.status.connected:
                return False
            if self._active or self._paused:
                return False
            if not self._quiet_at(now):
                return False
            return self._next_try is None or now >= self._next_try

    def decide(self) -> bool:
        """Ask the modem and choose (the thread's step, once :meth:`may_ask`; public for tests).

        True once a source is chosen and started; False to try again later (the modem is gone,
        or did not answer and has tries left, or this was stopped).
        """
        with self._cond:
            if self._chosen is not None:
                return True
            if self._stopping:
                return False
            self._in_flight = True
        try:
            answer = self._ask()
        except ModemUnavailable as exc:
            log.debug("line sensing (auto): no modem to ask yet: %s", exc)
            return False
        if answer == NO_ANSWER:
            with self._cond:
                self._no_answers += 1
                if self._no_answers < self.attempts:
                    self._next_try = self._clock() + self.retry_s
                    self._waiting = "the modem did not answer AT-TRV; asking again"
                    log.info(
                        "line sensing (auto): the modem did not answer AT-TRV (try %d of %d); "
                        "asking again in %g s",
                        self._no_answers,
                        self.attempts,
                        self.retry_s,
                    )
                    return False
        self.answer = answer
        choice = choose(self.transport.profile, answer, self.gpio_pin)
        chosen = self._make(choice.source)
        with self._cond:
            self._cond.wait_for(lambda: self._stopping or not self._paused)
            if self._stopping:
                return False
            chosen.start()
            chosen.set_active(self._active)
            self._chosen, self.choice = chosen, choice
        self.transport.remove_listener(self._heard)
        self._log(choice, chosen)
        if self._on_decided is not None:
            try:
                self._on_decided()
            except Exception:
                log.exception("line sensing (auto): the on_decided listener failed")
        return True

    def _log(self, choice: Choice, chosen: LineSense) -> None:
        if choice.source == "none":
            log.warning(
                'line sensing is off (line_sense.source = "auto"): %s. Call durations are '
                "unknown and the grooming light cannot work; %s",
                choice.reason,
                NO_SENSE_FIX,
            )
        else:
            log.info(
                'line sensing (line_sense.source = "auto") chose %s: %s; %s',
                choice.source,
                choice.reason,
                chosen.detail,
            )

    def _run(self) -> None:
        while True:
            with self._cond:
                if self._stopping or self._chosen is not None:
                    return
            if not self.transport.wait_connected(self.wait_slice_s):
                continue
            with self._cond:
                ready = self._cond.wait_for(
                    lambda: self._stopping or self.may_ask(), timeout=self.wait_slice_s
                )
                if self._stopping:
                    return
            if not ready:
                continue
            try:
                self.decide()
            except Exception:
                log.exception("line sensing (auto) could not choose; trying again")
                with self._cond:
                    self._next_try = self._clock() + self.retry_s


# --------------------------------------------------------------------------------------------
# Is the line alive? The voltage while idle
# --------------------------------------------------------------------------------------------

LINE_CHECK_S = 60.0
"""How often the line voltage is read while the line is idle."""
DEAD_BELOW_V = 3.0
"""Under this in magnitude the line carries no voltage: dead (cut, or moved to the router)."""
DEAD_LINE_FIX = (
    "check the phone cable from CallGuard to the wall socket (or to the router's phone port), "
    "and that the socket or port has a dial tone with a phone plugged straight in; after a "
    "Digital Voice switch-over the line comes from the router's phone port, not the wall"
)
"""What to check when the line is dead, for the log and ``callguard status``."""


def _wall_now() -> dt.datetime:
    return dt.datetime.now().astimezone()


@dataclass(frozen=True)
class LineVoltage:
    """What the watch knows: the last reading and whether the line is dead.

    ``volts`` and ``dead`` are None when the modem cannot read the line voltage (or has not
    yet); ``since`` is when the line went dead (its first low reading), else None;
    ``checked`` is when the last reading was taken, else None.
    """

    volts: float | None = None
    dead: bool | None = None
    since: dt.datetime | None = None
    checked: dt.datetime | None = None
    detail: str = "not read yet"

    def to_json(self) -> dict[str, Any]:
        return {
            "volts": None if self.volts is None else round(self.volts, 1),
            "dead": self.dead,
            "since": self.since.isoformat(timespec="seconds") if self.since else None,
            "checked": self.checked.isoformat(timespec="seconds") if self.checked else None,
            "detail": self.detail,
        }


class LineVoltageWatch(_QuietAsker):
    """Reads ``AT-TRV`` every ``check_s`` while the line is idle: is it dead? See the module
    docstring for when it may ask.

    ``on_change`` (from the watch's thread, must not block) gets the new :class:`LineVoltage`
    after every reading and when the modem turns out to have no ``AT-TRV``.
    ``wait_for_seed``: send nothing until :meth:`seed` (``source = "auto"``). ``clock`` runs
    the deadlines; ``wall`` dates what the status shows.
    """

    def __init__(
        self,
        transport: ModemTransport,
        *,
        check_s: float = LINE_CHECK_S,
        recheck_s: float | None = None,
        dead_below_v: float = DEAD_BELOW_V,
        quiet_s: float = 2.0,
        probe_timeout_s: float = 1.0,
        wait_for_seed: bool = False,
        on_change: Callable[[LineVoltage], None] | None = None,
        clock: Clock = time.monotonic,
        wall: Callable[[], dt.datetime] = _wall_now,
        wait_slice_s: float = 0.25,
    ) -> None:
        if check_s <= 0:
            raise ValueError(f"check_s is {check_s}; expected a positive number of seconds")
        if dead_below_v <= 0:
            raise ValueError(f"dead_below_v is {dead_below_v}; expected a positive voltage")
        super().__init__(
            transport,
            clock=clock,
            quiet_s=quiet_s,
            probe_timeout_s=probe_timeout_s,
            wait_slice_s=wait_slice_s,
        )
        self.check_s = check_s
        self.recheck_s = min(check_s, 10.0) if recheck_s is None else recheck_s
        self.dead_below_v = dead_below_v
        self._on_change = on_change
        self._wall = wall
        self._reading = LineVoltage()
        self._low_since: dt.datetime | None = None  # the first of a run of low readings
        self._available = True
        self._seeded = not wait_for_seed
        self._active = False
        self._next_due: float | None = None  # None: as soon as the line is quiet
        self._quiet_from: float | None = None  # the end of the last call
        self.asked_while_active = 0
        """``AT-TRV`` sent while a call was on (set_active True before the reply): should
        stay 0 but for the one-in-flight race the module docstring describes."""

    @property
    def reading(self) -> LineVoltage:
        with self._cond:
            return self._reading

    @property
    def available(self) -> bool:
        """False once the modem is known not to read the line voltage."""
        with self._cond:
            return self._available

    def start(self) -> None:
        self._start_thread("line-voltage-watch", "the line-voltage watch is already started")

    def stop(self) -> None:
        self._stop_thread()

    def set_active(self, active: bool) -> None:
        """A call is ringing or on, or CallGuard holds the line: no readings. Never blocks."""
        with self._cond:
            if active == self._active:
                return
            self._active = active
            if not active:  # a redial is likeliest just after a call: stay quiet a moment
                self._quiet_from = self._clock()
            self._cond.notify_all()

    def seed(self, answer: float | str | None) -> None:
        """The answer auto's one question got (:func:`ask_line_voltage`): the first reading."""
        with self._cond:
            self._seeded = True
            self._cond.notify_all()
        self._take(answer)

    def may_ask(self) -> bool:
        """Whether ``AT-TRV`` may go out now: see the module docstring."""
        with self._cond:
            return self._may_ask_locked()

    def _may_ask_locked(self) -> bool:
        if self._stopping or not self._available or not self._seeded:
            return False
        if self._active or self._in_flight or not self.transport.status.connected:
            return False
        now = self._clock()
        if not self._quiet_at(now, self._quiet_from):
            return False
        return self._next_due is None or now >= self._next_due

    def check(self) -> LineVoltage | None:
        """One reading if :meth:`may_ask` (the thread's step; public for tests). Returns the
        new state, or None when nothing was asked or the modem gave no answer."""
        with self._cond:
            if not self._may_ask_locked():
                return None
            self._in_flight = True
            self._next_due = self._clock() + self.check_s
        answer: float | str | None
        try:
            answer = self._ask()
        except ModemUnavailable as exc:
            log.debug("line voltage: no modem to ask: %s", exc)
            answer = NO_ANSWER
        return self._take(answer)

    def _asked_locked(self) -> None:
        if self._active:
            self.asked_while_active += 1

    def _take(self, answer: float | str | None) -> LineVoltage | None:
        """Fold one answer in; tell ``on_change`` when what the status says has changed."""
        now, when = self._clock(), self._wall()
        with self._cond:
            before = self._reading
            if isinstance(answer, int | float):
                volts = float(answer)
                low = abs(volts) < self.dead_below_v
                if low and self._low_since is None:
                    self._low_since = when
                elif not low:
                    self._low_since = None
                was_low = before.volts is not None and abs(before.volts) < self.dead_below_v
                dead = low and (before.dead is True or was_low)
                self._reading = self._state(volts, low, dead, when)
                self._next_due = now + (self.recheck_s if low and not dead else self.check_s)
            elif answer == NO_ANSWER:
                self._next_due = now + self.check_s
                return None
            else:
                self._available = False
                why = modem_cannot(self.transport.profile, answer) or "no AT-TRV"
                self._reading = LineVoltage(checked=before.checked, detail=f"unknown: {why}")
            after = self._reading
        if (before.dead, before.volts is None) != (after.dead, after.volts is None):
            self._log(before, after)
        # every reading: the status shows when the line was last checked
        if after != before and self._on_change is not None:
            try:
                self._on_change(after)
            except Exception:
                log.exception("the line-voltage listener failed")
        return after

    def _state(self, volts: float, low: bool, dead: bool, when: dt.datetime) -> LineVoltage:
        if dead:
            detail = f"dead: {abs(volts):.1f} V, under {self.dead_below_v:g} V"
        elif low:
            detail = f"{volts:.1f} V: low, reading again to be sure"
        else:
            detail = f"{volts:.1f} V: the line is live"
        return LineVoltage(volts, dead, self._low_since if dead else None, when, detail)

    def _log(self, before: LineVoltage, after: LineVoltage) -> None:
        if after.dead:
            since = after.since.strftime("%H:%M") if after.since else "now"
            log.warning(
                "the phone line is dead: no line voltage (AT-TRV %.1f V) since %s; no call can "
                "come in. To fix: %s",
                after.volts or 0.0,
                since,
                DEAD_LINE_FIX,
            )
        elif before.dead and after.dead is False:
            log.warning("the phone line is live again (AT-TRV %.1f V)", after.volts or 0.0)
        elif after.volts is None and not self._available:
            log.info("line voltage: not watched: %s", after.detail)

    def _wait_s(self) -> float:
        """Until the next check is due; else a slice (connected? quiet yet?)."""
        left = 0.0 if self._next_due is None else self._next_due - self._clock()
        return min(max(left, self.wait_slice_s), self.check_s)

    def _run(self) -> None:
        while True:
            with self._cond:
                if self._stopping:
                    return
                if not self._may_ask_locked():
                    self._cond.wait(self._wait_s())
                    continue
            try:
                self.check()
            except Exception:
                log.exception("line voltage: the check failed; trying again later")
                with self._cond:
                    self._next_due = self._clock() + self.check_s


# --------------------------------------------------------------------------------------------
# Choosing a source
# --------------------------------------------------------------------------------------------

SOURCES = ("auto", "gpio", "modem", "none")

_MODEM_OPTIONS = frozenset({"interval_s", "off_hook_below_v", "hold_s", "clock"})
_GPIO_OPTIONS = frozenset(
    {
        "active_high",
        "hold_s",
        "pin_factory",
        "clock",
        "sample_interval_s",
        "bounce_time_s",
        "external_pull",
    }
)
_AUTO_OPTIONS = frozenset({"on_decided", "clock"})


def build(
    source: str,
    *,
    transport: ModemTransport | None,
    on_change: Callable[[HookChange], None],
    gpio_pin: int | str | None = None,
    **options: Any,
) -> LineSense:
    """The line sense for ``line_sense.source``, not yet started.

    ``options`` go to the chosen source's constructor; those meant only for another source
    (``active_high`` for a modem, ``off_hook_below_v`` for GPIO, ``on_decided`` for all but
    auto) are ignored, so the daemon can pass its whole ``[line_sense]`` section. An option no
    source knows is a TypeError. ``gpio_pin`` -1 or None means no sensor is fitted.
    """
    unknown = set(options) - _MODEM_OPTIONS - _GPIO_OPTIONS - _AUTO_OPTIONS
    if unknown:
        raise TypeError(f"unknown line-sense option(s): {', '.join(sorted(unknown))}")

    def make(name: str) -> LineSense:
        if name == "modem":
            assert transport is not None
            kwargs = {k: v for k, v in options.items() if k in _MODEM_OPTIONS}
            return ModemLineSense(transport, on_change, **kwargs)
        if name == "gpio":
            if not gpio_configured(gpio_pin):
                raise ValueError(
                    'line_sense.source = "gpio" needs line_sense.gpio_pin: the BCM pin of the '
                    f"line-sense module (GPIO {MODULE_PIN} in the README's wiring)"
                )
            assert gpio_pin is not None
            kwargs = {k: v for k, v in options.items() if k in _GPIO_OPTIONS}
            return GpioLineSense(gpio_pin, on_change, **kwargs)
        return NoLineSense()

    if source in ("modem", "auto") and transport is None:
        raise ValueError(f'line_sense.source = "{source}" needs the modem transport')
    if source in ("modem", "gpio", "none"):
        return make(source)
    if source == "auto":
        assert transport is not None
        kwargs = {k: v for k, v in options.items() if k in _AUTO_OPTIONS}
        return AutoLineSense(transport, make, gpio_pin=gpio_pin, **kwargs)
    raise UsageError(
        f"line_sense.source = {source!r} is not a line-sense source; use one of "
        + ", ".join(repr(s) for s in SOURCES)
    )
