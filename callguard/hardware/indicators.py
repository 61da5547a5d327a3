"""The lights and the button: the grooming alert LED, the status LED, the acknowledge button.

Theory of operation
-------------------
Everything is a gpiozero device built from one pin factory, so the same code drives a real Pi
(lgpio) and gpiozero's ``MockFactory`` in tests (``GPIOZERO_PIN_FACTORY=mock`` off a Pi).

* **Alert LED** (``indicators.alert_led_pin``): off; *blinking* while an unknown caller who has
  passed ``grooming.minutes`` is still on the line; *steady* once that call has ended, until
  someone acknowledges it (the button, or ``callguard ack``). gpiozero blinks it on its own
  background thread, so the light keeps going whatever the daemon is doing.
* **Status LED** (``indicators.status_led_pin``): a slow heartbeat (a short flash every two
  seconds) while the daemon runs and the modem answers; a fast blink while the modem is
  missing; dark when the daemon is not running (it is switched off on the way out, and a dead
  process drives nothing).
* **Button** (``indicators.button_pin``, to ground, internal pull-up): a short press
  acknowledges the alert; holding it for :data:`LONG_PRESS_S` seconds is "block the last
  caller" (the short press then counts on release, so a long press does not also acknowledge).
  Both are handed to the daemon through callbacks (its queue), never acted on in gpiozero's
  thread.

A unit without GPIO (a laptop running the demo, a Pi whose pins are taken) logs one line and
carries on without lights: screening calls matters more than the lamp.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

HEARTBEAT = {"on_time": 0.1, "off_time": 1.9}
MODEM_MISSING = {"on_time": 0.15, "off_time": 0.15}
ALERT_BLINK = {"on_time": 0.5, "off_time": 0.5}
LONG_PRESS_S = 3.0
"""Holding the button this long means "block the last caller"."""


class Indicators:
    """The LEDs and the button. Every method is safe to call when GPIO is unavailable."""

    def __init__(
        self,
        *,
        alert_pin: int | None,
        status_pin: int | None,
        button_pin: int | None,
        on_button: Callable[[], None] | None = None,
        on_long_press: Callable[[], None] | None = None,
        long_press_s: float = LONG_PRESS_S,
        pin_factory: Any = None,
    ) -> None:
        self.alert: Any = None
        self.status: Any = None
        self.button: Any = None
        self.detail = "off"
        self._alert_state = "off"
        self._status_state = "off"
        try:
            from gpiozero import LED, Button  # type: ignore[import-untyped]

            warnings.filterwarnings("ignore", module="gpiozero")  # "falling back from lgpio"

            if alert_pin is not None:
                self.alert = LED(alert_pin, pin_factory=pin_factory)
            if status_pin is not None:
                self.status = LED(status_pin, pin_factory=pin_factory)
            if button_pin is not None:
                self.button = Button(
                    button_pin,
                    pull_up=True,
                    bounce_time=0.05,
                    hold_time=long_press_s,
                    pin_factory=pin_factory,
                )
                self._wire_button(on_button, on_long_press)
            self.detail = (
                f"alert LED GPIO{alert_pin}, status LED GPIO{status_pin}, button GPIO{button_pin}"
            )
        except Exception as exc:  # gpiozero raises several kinds: no pins, pin in use, ...
            self.close()
            self.detail = f"no lights: GPIO is not available here ({exc})"
            log.info(
                "%s; on a Raspberry Pi check the [indicators] pins in the config and that the "
                "callguard user is in the gpio group",
                self.detail,
            )

    @property
    def available(self) -> bool:
        return self.alert is not None or self.status is not None

    @property
    def alert_state(self) -> str:
        """``off``, ``blinking`` or ``steady``: what the alert LED is doing."""
        return self._alert_state

    @property
    def status_state(self) -> str:
        return self._status_state

    def alert_blinking(self) -> None:
        self._alert_state = "blinking"
        if self.alert is not None:
            self.alert.blink(**ALERT_BLINK)

    def alert_steady(self) -> None:
        self._alert_state = "steady"
        if self.alert is not None:
            self.alert.on()

    def alert_off(self) -> None:
        self._alert_state = "off"
        if self.alert is not None:
            self.alert.off()

    def modem(self, connected: bool) -> None:
        """Heartbeat while the modem answers, fast blink while it is missing."""
        state = "heartbeat" if connected else "modem-missing"
        if state == self._status_state:
            return
        self._status_state = state
        if self.status is not None:
            self.status.blink(**(HEARTBEAT if connected else MODEM_MISSING))

    def _wire_button(
        self, on_press: Callable[[], None] | None, on_long: Callable[[], None] | None
    ) -> None:
        if on_long is None:
            if on_press is not None:
                self.button.when_pressed = lambda *_: on_press()
            return
        held = [False]

        def pressed(*_: Any) -> None:
            held[0] = False

        def long_press(*_: Any) -> None:
            held[0] = True
            on_long()

        def released(*_: Any) -> None:
            if not held[0] and on_press is not None:
                on_press()

        self.button.when_pressed = pressed
        self.button.when_held = long_press
        self.button.when_released = released

    def close(self) -> None:
        """Lights off and pins released (the status LED goes dark: the daemon is stopping)."""
        self._status_state = "off"
        for led in (self.alert, self.status):
            if led is not None:
                with contextlib.suppress(Exception):
                    led.off()  # closing alone can leave a blinking LED lit
        for device in (self.alert, self.status, self.button):
            if device is not None:
                with contextlib.suppress(Exception):
                    device.close()
        self.alert = self.status = self.button = None
