"""The community block list end to end (issue 17), on a real Mosquitto with the group's ACL:
three units report a number, `callguard hub` publishes it signed, and a fourth unit (the real
daemon on the simulated line, with `callguard link`) seizes that caller before the first ring;
a tampered list is refused with a log line; the family's allow list beats the community list."""

from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from broker import Broker
from helpers import DaemonUnit, LinkProcess, callguard_cli, terminated, wait_for, write_config

from callguard.config import from_dict
from callguard.link.community import generate_private_key, sign_list
from callguard.link.fleet import FleetLink
from callguard.sim import Call
from callguard.store.state import StateFiles

pytestmark = pytest.mark.e2e
pytest_plugins = ["broker"]

SCAMMER = "01632960555"
SCAMMER_E164 = "+441632960555"
LIST_TOPIC = "callguard/community/list"


class Hub:
    """`callguard hub` as a subprocess, with its key made by `callguard hub key`."""

    def __init__(self, tmp: Path, broker: Broker) -> None:
        self.tmp = tmp
        self.config = write_config(
            tmp / "hub.toml",
            {
                "hub": {
                    "broker": broker.url,
                    "username": "hub",
                    "password_file": str(broker.password_file("hub")),
                    "dir": str(tmp / "hub"),
                    "threshold": 3,
                }
            },
        )
        made = self.cli("hub", "key")
        assert made.returncode == 0, made.stderr
        found = re.search(r'community_key = "([^"]+)"', made.stdout)
        assert found, made.stdout
        self.key = found.group(1)
        self.proc: subprocess.Popen[str] | None = None

    def cli(self, *argv: str) -> subprocess.CompletedProcess[str]:
        return callguard_cli(self.config, *argv)

    def start(self) -> Hub:
        self.log = open(self.tmp / "hub.log", "w")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "callguard", "--config", str(self.config), "hub"],
            stdout=subprocess.DEVNULL,
            stderr=self.log,
            text=True,
        )
        # connected and listening (reports are not retained: one sent before would be lost)
        wait_for(lambda: "published community list" in self.log_text(), 20, "the hub up")
        return self

    def log_text(self) -> str:
        return (self.tmp / "hub.log").read_text()

    def stop(self) -> None:
        terminated(self.proc)
        self.log.close()


class Watch:
    """The volunteer's view of the retained community list."""

    def __init__(self, broker: Broker) -> None:
        self.lists: list[dict[str, Any]] = []
        self.changed = threading.Condition()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="watch")
        self.client.username_pw_set("volunteer", broker.passwords["volunteer"])
        self.client.on_message = self._message
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(LIST_TOPIC, qos=1)
        self.client.connect("127.0.0.1", broker.port)
        self.client.loop_start()

    def _message(self, client: Any, userdata: Any, message: mqtt.MQTTMessage) -> None:
        with self.changed:
            self.lists.append(json.loads(message.payload)["list"])
            self.changed.notify_all()

    def wait_for_number(self, number: str, timeout_s: float = 20) -> dict[str, Any]:
        with self.changed:
            ok = self.changed.wait_for(
                lambda: any(number in listed["numbers"] for listed in self.lists), timeout_s
            )
        assert ok, f"the hub never published {number}: {self.lists}"
        return next(listed for listed in self.lists if number in listed["numbers"])

    def stop(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def fleet_section(broker: Broker, unit: str, key: str) -> dict[str, Any]:
    return {
        "broker": broker.url,
        "unit_id": unit,
        "password_file": str(broker.password_file(unit)),
        "community": True,
        "community_key": key,
    }


@pytest.fixture
def hub(tmp_path: Path, broker: Broker) -> Iterator[Hub]:
    running = Hub(tmp_path, broker).start()
    yield running
    running.stop()


def report_from_units(tmp: Path, broker: Broker, key: str, units: list[str]) -> None:
    """The units that blocked the scammer tell the group (their real fleet links)."""
    for unit in units:
        folder = tmp / unit
        folder.mkdir(exist_ok=True)
        config = from_dict(
            {"storage": {"dir": str(folder)}, "fleet": fleet_section(broker, unit, key)}
        )
        link = FleetLink(config, StateFiles(folder))
        link.start()
        try:
            assert link.wait_connected(10)
            link.report(SCAMMER_E164, "impersonation")
        finally:
            link.stop()


def test_three_units_report_a_scammer_and_a_fourth_seizes_them_before_the_first_ring(
    tmp_path: Path, broker: Broker, hub: Hub
) -> None:
    watch = Watch(broker)
    try:
        report_from_units(tmp_path, broker, hub.key, ["unit-1", "unit-2"])
        report_from_units(tmp_path, broker, hub.key, ["unit-1"])  # the same unit again: not 3
        assert not watch.lists or all(SCAMMER_E164 not in x["numbers"] for x in watch.lists)
        report_from_units(tmp_path, broker, hub.key, ["unit-3"])
        published = watch.wait_for_number(SCAMMER_E164)
        extra = {"fleet": fleet_section(broker, "unit-4", hub.key)}
        (tmp_path / "home").mkdir()
        with DaemonUnit(tmp_path / "home", extra) as unit:
            link = LinkProcess(unit).start()
            try:
                in_force = f"version {published['version']} is in force"
                wait_for(lambda: in_force in link.log_text(), 20, "the list loaded")
                # the daemon's reloader picks the new list file up by itself
                wait_for(lambda: unit.status()["lists"]["community"] >= 1, 10)
                record = unit.sim.place_call(Call(number=SCAMMER, rings=3)).wait(60)
                assert record.outcome == "seized" and record.rings == []
                wait_for(lambda: unit.calls(), 10, "the call logged")
                assert "community block list" in unit.calls()[-1]["reason"]

                # a tampered list (signed by another key, a newer version) is refused
                forged = sign_list(
                    [],
                    generate_private_key(),
                    version=published["version"] + 1,
                    created=dt.datetime.now(dt.UTC),
                )
                publisher = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="forger")
                publisher.username_pw_set("hub", broker.passwords["hub"])
                publisher.connect("127.0.0.1", broker.port)
                publisher.loop_start()
                publisher.publish(LIST_TOPIC, forged, qos=1, retain=True).wait_for_publish(5)
                publisher.loop_stop()
                publisher.disconnect()
                wait_for(lambda: "was refused" in link.log_text(), 20, "the forgery refused")
                again = unit.sim.place_call(Call(number=SCAMMER, rings=3)).wait(60)
                assert again.outcome == "seized" and again.rings == []

                # the family's allow list wins over the group's list
                assert unit.cli("allow", "add", SCAMMER, "--name", "Uncle Bob").returncode == 0
                allowed = unit.sim.place_call(Call(number=SCAMMER, rings=2)).wait(60)
                assert allowed.outcome != "seized" and len(allowed.rings) == 2
            finally:
                link.stop()
    finally:
        watch.stop()
