"""A unit on the group's broker end to end (issue 17): the real daemon on the simulated line,
`callguard link` as its own process with `[fleet]` set, a real Mosquitto with the group's ACL,
and the volunteer's view of it (their own client, and `callguard fleet status`)."""

from __future__ import annotations

import json
import signal
import threading
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from broker import Broker
from helpers import DaemonUnit, LinkProcess, write_config

from callguard.sim import Call

pytestmark = pytest.mark.e2e
pytest_plugins = ["broker"]


class Volunteer:
    """The volunteer's MQTT client: the last message on each topic, retained or not."""

    def __init__(self, broker: Broker) -> None:
        self.last: dict[str, bytes] = {}
        self.seen = threading.Condition()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="volunteer")
        self.client.username_pw_set("volunteer", broker.passwords["volunteer"])
        self.client.on_message = self._message
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(
            [("callguard/#", 1), ("homeassistant/#", 1)]
        )
        self.client.connect("127.0.0.1", broker.port)
        self.client.loop_start()

    def _message(self, client: Any, userdata: Any, message: mqtt.MQTTMessage) -> None:
        with self.seen:
            self.last[message.topic] = message.payload
            self.seen.notify_all()

    def wait(self, topic: str, test: Any, timeout_s: float = 20) -> bytes:
        with self.seen:
            ok = self.seen.wait_for(
                lambda: topic in self.last and test(self.last[topic]), timeout_s
            )
            assert ok, f"{topic}: {self.last.get(topic)!r}"
            return self.last[topic]

    def state(self, unit: str) -> dict[str, Any]:
        return dict(json.loads(self.last[f"callguard/{unit}/state"]))

    def press(self, topic: str) -> None:
        self.client.publish(topic, b"1", qos=1).wait_for_publish(5)

    def stop(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def test_a_unit_reports_its_state_takes_an_ack_and_goes_offline_when_killed(
    tmp_path: Path, broker: Broker
) -> None:
    fleet = {
        "broker": broker.url,
        "unit_id": "unit-1",
        "password_file": str(broker.password_file("unit-1")),
    }
    volunteer = Volunteer(broker)
    try:
        with DaemonUnit(tmp_path, {"fleet": fleet}, grooming_minutes=0.03) as unit:
            link = LinkProcess(unit).start()
            try:
                volunteer.wait("callguard/unit-1/availability", lambda p: p == b"online")
                volunteer.wait("callguard/unit-1/state", lambda p: b'"connected"' in p)
                state = volunteer.state("unit-1")
                assert state["modem"] == "connected" and state["grooming_alert"] is False
                config = volunteer.wait(
                    "homeassistant/binary_sensor/unit-1/grooming_alert/config", bool
                )
                assert json.loads(config)["state_topic"] == "callguard/unit-1/state"

                # a long unknown call lights the grooming alert: the state says so
                unit.sim.place_call(
                    Call(number="02079460123", rings=2, answer_after_rings=1, talk_s=6)
                ).wait(60)
                volunteer.wait("callguard/unit-1/state", lambda p: json.loads(p)["grooming_alert"])
                event = volunteer.wait("callguard/unit-1/events", bool)
                assert json.loads(event)["kind"] == "grooming"
                assert "7946" not in event.decode()  # numbers stay home (share_numbers off)

                # the volunteer acknowledges it from the broker (Home Assistant's button)
                volunteer.press("callguard/unit-1/cmd/ack")
                volunteer.wait(
                    "callguard/unit-1/state", lambda p: not json.loads(p)["grooming_alert"]
                )
                assert not unit.store.alert_active()
                assert unit.store.read_alert()["acknowledged_by"] == "the fleet (MQTT)"

                # the volunteer's command line sees the unit
                listing = unit.cli("fleet", "status", "--json")
                assert listing.returncode == 0, listing.stderr
                [row] = [r for r in json.loads(listing.stdout) if r["unit"] == "unit-1"]
                assert row["online"] is True and row["modem"] == "connected"

                # kill -9: the broker's Last Will says offline
                assert link.proc is not None
                link.proc.send_signal(signal.SIGKILL)
                volunteer.wait("callguard/unit-1/availability", lambda p: p == b"offline", 10)
            finally:
                link.stop()
    finally:
        volunteer.stop()


def test_fleet_status_needs_a_broker(tmp_path: Path) -> None:
    config = write_config(tmp_path / "c.toml", {"storage": {"dir": str(tmp_path)}})
    from callguard.cli import main

    assert main(["--config", str(config), "fleet", "status"]) == 2
