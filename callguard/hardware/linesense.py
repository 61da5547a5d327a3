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
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, Protocol

import gpiozero  # type: ignore[import-untyped]

from callguard.core.hook import Debouncer, Hook, HookChange
from callguard.errors import UsageError
from callguard.modem.protocol import Error
from callguard.modem.transport import CommandTimeout, ModemTransport, ModemUnavailable

log = logging.getLogger(__name__)

Clock = Callable[[], float]
"""Float tolerance when comparing how long a state has held with ``hold_s``."""


class LineSense(Protocol):
    """What the daemon uses, whatever the source."""

    @property
    def name(self) -> str:
        """``"modem"``, ``"gpio"`` or ``"none"``."""
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


# --------------------------------------------------------------------------------------------
# The modem: AT-TRV
# --------------------------------------------------------------------------------------------

_NO_TRV_FIX = 'set line_sense.source = "gpio" with an opto sensor, or use a Conexant-based modem'


class ModemLineSense:
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
        self.transport = transport
        self.interval_s = interval_s
        self.off_hook_below_v = off_hook_below_v
        self._on_change = on_change
        self._clock = clock
        self._debouncer = Debouncer(hold_s)
        self._cond = threading.Condition()
        self._active = False
        self._paused = 0
        self._gaps = 0  # bumped whenever readings stop (inactive, paused): spans no change
        self._in_flight = False
        self._stopping = False
        self._thread: threading.Thread | None = None
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
        with self._cond:
            if self._thread is not None:
                raise RuntimeError("line sense already started")
            self._stopping = False
            self._thread = threading.Thread(target=self._run, name="line-sense-modem", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=self.transport.command_timeout_s + 2.0)

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
# None, and choosing a source
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


SOURCES = ("gpio", "modem", "none")

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


def build(
    source: str,
    *,
    transport: ModemTransport | None,
    on_change: Callable[[HookChange], None],
    gpio_pin: int | str = 17,
    **options: Any,
) -> LineSense:
    """The line sense for ``line_sense.source``, not yet started.

    ``options`` go to the chosen source's constructor; those meant only for the other source
    (``active_high`` for a modem, ``off_hook_below_v`` for GPIO) are ignored, so the daemon can
    pass its whole ``[line_sense]`` section. An option no source knows is a TypeError.
    """
    unknown = set(options) - _MODEM_OPTIONS - _GPIO_OPTIONS
    if unknown:
        raise TypeError(f"unknown line-sense option(s): {', '.join(sorted(unknown))}")
    if source == "modem":
        if transport is None:
            raise ValueError('line_sense.source = "modem" needs the modem transport')
        kwargs = {k: v for k, v in options.items() if k in _MODEM_OPTIONS}
        return ModemLineSense(transport, on_change, **kwargs)
    if source == "gpio":
        kwargs = {k: v for k, v in options.items() if k in _GPIO_OPTIONS}
        return GpioLineSense(gpio_pin, on_change, **kwargs)
    if source == "none":
        return NoLineSense()
    raise UsageError(
        f"line_sense.source = {source!r} is not a line-sense source; use one of "
        + ", ".join(repr(s) for s in SOURCES)
    )
