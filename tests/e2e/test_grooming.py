"""The grooming alert: the LEDs and the button on gpiozero's mock pins, the alert surviving a
restart, and end to end on the simulator with modem line sensing."""

from __future__ import annotations

from pathlib import Path

import pytest
from gpiozero.pins.mock import MockFactory
from helpers import DaemonUnit, Running, wait_for

from callguard.config import ConfigError, from_dict
from callguard.hardware.indicators import Indicators
from callguard.sim import Call
from callguard.store.lists import Store


def test_leds_and_button_on_mock_pins(factory: MockFactory) -> None:
    pressed: list[str] = []
    ind = Indicators(
        alert_pin=23,
        status_pin=24,
        button_pin=25,
        on_button=lambda: pressed.append("x"),
        pin_factory=factory,
    )
    assert ind.available
    ind.alert_steady()
    assert factory.pin(23).state == 1 and ind.alert_state == "steady"
    ind.alert_blinking()
    wait_for(lambda: factory.pin(23).state == 0, 2, "the blink to go off")
    wait_for(lambda: factory.pin(23).state == 1, 2, "the blink to come on")
    ind.alert_off()
    assert factory.pin(23).state == 0 and ind.alert_state == "off"
    ind.modem(True)
    assert ind.status_state == "heartbeat"
    factory.pin(25).drive_low()  # the button, to ground with the pull-up
    wait_for(lambda: pressed, 2, "the button callback")
    ind.close()
    assert factory.pin(24).state == 0  # dark: the daemon is not running


def test_no_gpio_means_no_lights_not_a_crash() -> None:
    ind = Indicators(alert_pin=23, status_pin=24, button_pin=25, pin_factory="no-such-factory")
    assert not ind.available and "not available" in ind.detail
    ind.alert_blinking()
    ind.modem(False)
    ind.close()


def test_alert_survives_a_restart_and_the_button_clears_it(
    tmp_path: Path, factory: MockFactory
) -> None:
    store = Store(tmp_path / "state")
    store.raise_alert({"display": "withheld number", "category": "withheld"})
    with Running(tmp_path, {"line_sense": {"source": "modem"}}, pin_factory=factory) as r:
        assert r.daemon.status()["grooming_alert"] is True
        assert factory.pin(23).state == 1  # steady after the restart
        factory.pin(25).drive_low()  # a short press: acknowledged when it is let go
        factory.pin(25).drive_high()
        r.wait_seen("acknowledged", 5)  # the button
        assert not store.alert_active()
        wait_for(lambda: factory.pin(23).state == 0, 5, "the light to go off")
        assert store.read_alert()["acknowledged_by"] == "the button"  # type: ignore[index]


@pytest.mark.e2e
def test_long_unknown_call_lights_the_alert_and_ack_clears_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"grooming\.minutes"):
        from_dict({"grooming": {"minutes": 0.01}})  # too short for a unit: only through the seam
    unit = DaemonUnit(
        tmp_path,
        {
            "warning": {"room_command": ""},
            "line_sense": {"source": "modem"},
            "grooming": {"minutes": 0.1},  # the least the config allows: 6 s
        },
        grooming_minutes=0.01,  # 0.6 s, through the daemon's seam: the config refuses it
    )
    with unit:
        # answered after one ring, 2 s of conversation: over the 0.6 s threshold
        record, logged = unit.call(Call(number="02079460123", answer_after_rings=1, talk_s=4))
        assert unit.status()["grooming_alert"] is True
        assert logged["answered"] is True and logged["grooming_alert"] is True
        assert record.ended_at is not None and record.answered_at is not None
        truth = record.ended_at - record.answered_at
        assert abs(logged["duration_s"] - truth) < 2.0, (logged["duration_s"], truth)
        out = unit.cli("ack")
        assert out.returncode == 0 and "cleared" in out.stdout
        assert unit.status()["grooming_alert"] is False
        assert "no grooming alert" in unit.cli("ack").stdout
    assert unit.proc is not None and unit.proc.returncode == 0
