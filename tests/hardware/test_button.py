"""The resident's button on gpiozero's mock pins (issue 14, item 5): a short press acknowledges
the alert, a long press is "block the last caller" and does not also acknowledge."""

from __future__ import annotations

import threading

from gpiozero.pins.mock import MockFactory
from helpers import wait_for

from callguard.hardware.indicators import Indicators


def test_a_short_press_acknowledges_and_a_long_press_blocks(factory: MockFactory) -> None:
    short: list[str] = []
    long: list[str] = []
    held = threading.Event()
    ind = Indicators(
        alert_pin=None,
        status_pin=None,
        button_pin=25,
        on_button=lambda: short.append("ack"),
        on_long_press=lambda: (long.append("block"), held.set()),
        long_press_s=0.2,
        pin_factory=factory,
    )
    button = factory.pin(25)
    try:
        button.drive_low()  # a tap: pressed, then let go before the hold time
        button.drive_high()
        wait_for(lambda: short == ["ack"], 2, "the short press")
        assert long == []
        button.drive_low()  # held down past the hold time
        assert held.wait(2), "the long press"
        button.drive_high()
        assert long == ["block"]
        assert short == ["ack"]  # letting go after a long press acknowledges nothing
    finally:
        ind.close()


def test_without_a_long_press_action_a_press_acknowledges_at_once(factory: MockFactory) -> None:
    pressed: list[str] = []
    ind = Indicators(
        alert_pin=None,
        status_pin=None,
        button_pin=25,
        on_button=lambda: pressed.append("ack"),
        pin_factory=factory,
    )
    try:
        factory.pin(25).drive_low()
        wait_for(lambda: pressed, 2, "the press")
    finally:
        ind.close()
