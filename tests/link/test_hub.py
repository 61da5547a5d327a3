"""``callguard hub``: K distinct units within the window, expiry, removals, and the signed list
published retained over a real Mosquitto with the group's ACL."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import logging
import queue
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import paho.mqtt.client as mqtt
import pytest
from helpers import SetClock, terminated, write_config
from paho.mqtt.enums import CallbackAPIVersion

from callguard.cli import main
from callguard.config import HubConfig
from callguard.link.community import CommunityList, public_key_b64, verify_list
from callguard.link.hub import KEY_FILE, LIST_TOPIC, REMOVE_TOPIC, Hub, create_key, read_key

if TYPE_CHECKING:
    from broker import Broker

pytest_plugins = ["broker"]
HOST = "127.0.0.1"  # tests/broker.py's: imported only after pytest has loaded the plugin

_CLIENT_IDS = itertools.count(1)

DAY0 = dt.datetime(2026, 12, 7, 10, 0, tzinfo=dt.UTC)
A = "+441632960123"
B = "+447700900456"


def day(n: float) -> dt.datetime:
    return DAY0 + dt.timedelta(days=n)


def report(number: str, reason: str = "impersonation") -> bytes:
    return json.dumps({"number": number, "reason": reason, "at": DAY0.isoformat()}).encode()


@pytest.fixture
def clock() -> SetClock:
    return SetClock(DAY0)


@pytest.fixture
def hub(tmp_path: Path, clock: SetClock) -> Iterator[Hub]:
    running = Hub(HubConfig(dir=str(tmp_path / "hub")), clock=clock)
    try:
        yield running
    finally:
        running.close()


def reported(hub: Hub, clock: SetClock, when: float, *units: str, number: str = A) -> None:
    clock.now = day(when)
    for unit in units:
        assert hub.record_report(unit, report(number))


# -- the rules ---------------------------------------------------------------------------------


def test_k_distinct_units_put_a_number_on_the_list(hub: Hub, clock: SetClock) -> None:
    reported(hub, clock, 0, "unit-1", "unit-1", "unit-1")
    assert hub.current(day(0)) == []  # one unit three times is one unit
    reported(hub, clock, 1, "unit-2")
    assert hub.current(day(1)) == []
    reported(hub, clock, 2, "unit-3")
    assert hub.current(day(2)) == [A]
    assert [(e.number, e.units) for e in hub.entries(day(2))] == [(A, 3)]


def test_only_reports_within_the_window_count(hub: Hub, clock: SetClock) -> None:
    reported(hub, clock, 0, "unit-1")
    reported(hub, clock, 10, "unit-2")
    reported(hub, clock, 35, "unit-3")  # unit-1's report is 35 days old: two units in 30 days
    assert hub.current(day(35)) == []
    reported(hub, clock, 36, "unit-1")  # unit-2 (day 10), unit-3, unit-1 within 30 days
    assert hub.current(day(36)) == [A]


def test_a_number_nobody_reports_for_expire_days_leaves(hub: Hub, clock: SetClock) -> None:
    reported(hub, clock, 0, "unit-1", "unit-2", "unit-3")
    assert hub.current(day(179)) == [A]
    assert hub.current(day(181)) == []
    reported(hub, clock, 200, "unit-1")  # one report after expiry is not K
    assert hub.current(day(200)) == []
    reported(hub, clock, 201, "unit-2", "unit-3")
    assert hub.current(day(201)) == [A]


def test_a_number_still_being_reported_stays(hub: Hub, clock: SetClock) -> None:
    reported(hub, clock, 0, "unit-1", "unit-2", "unit-3")
    reported(hub, clock, 150, "unit-4")
    assert hub.current(day(300)) == [A]
    hub.prune(day(331))
    assert hub.current(day(331)) == []


def test_a_removal_holds_until_k_new_reports(hub: Hub, clock: SetClock) -> None:
    reported(hub, clock, 0, "unit-1", "unit-2", "unit-3", "unit-4")
    clock.now = day(1)
    assert hub.remove(A, "admin") is True
    assert hub.current(day(1)) == []
    reported(hub, clock, 2, "unit-1", "unit-2")  # the reports before the removal do not count
    assert hub.current(day(2)) == []
    reported(hub, clock, 3, "unit-3")
    assert hub.current(day(3)) == [A]
    assert [(e.number, e.units) for e in hub.entries(day(3))] == [(A, 3)]


def test_removing_a_number_not_on_the_list_says_so(hub: Hub) -> None:
    assert hub.remove(B, "admin") is False


def test_removal_of_what_is_not_e164_is_refused(hub: Hub) -> None:
    from callguard.errors import UsageError

    with pytest.raises(UsageError, match=r"E\.164"):
        hub.remove("01632 960123", "admin")


@pytest.mark.parametrize(
    ("unit", "payload", "why"),
    [
        ("unit-1", b"not json", "not UTF-8 JSON"),
        ("unit-1", b"\xff", "not UTF-8 JSON"),
        ("unit-1", b"[1]", "not a JSON object"),
        ("unit-1", b'{"number": "01632 960123", "reason": "x"}', "not in E.164 form"),
        ("unit-1", b'{"number": 441632960123, "reason": "x"}', "not in E.164 form"),
        ("unit-1", b'{"number": "+441632960123"}', "not a reason word"),
        ("unit-1", b'{"number": "+441632960123", "reason": "<b>"}', "not a reason word"),
        ("unit-1", b"{" + b" " * 5000 + b"}", "more than a report's"),
        ("community", report(A), "not a unit's name"),
        ("", report(A), "not a unit's name"),
    ],
)
def test_garbage_reports_are_ignored_with_a_log_line(
    hub: Hub, unit: str, payload: bytes, why: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="callguard.link.hub"):
        assert hub.record_report(unit, payload) is False
    assert why in caplog.text
    assert hub.entries(DAY0) == []


def test_a_new_version_is_signed_only_when_the_list_changes(
    hub: Hub, clock: SetClock, tmp_path: Path
) -> None:
    key, _ = create_key(tmp_path / "hub")
    assert hub.sign_if_changed(day(0)) is True  # the empty list, at the start
    first = hub.signed_list()
    assert first is not None
    assert hub.sign_if_changed(day(0)) is False
    reported(hub, clock, 0, "unit-1", "unit-2", "unit-3")
    assert hub.sign_if_changed(day(0)) is True
    second = hub.signed_list()
    assert second is not None
    assert second[0] > first[0]
    listed = verify_list(second[1], public_key_b64(key))
    assert listed.numbers == (A,)
    assert listed.version == second[0]


def test_the_key_is_made_once_and_private(tmp_path: Path) -> None:
    key, made = create_key(tmp_path / "hub")
    assert made is True
    assert (tmp_path / "hub" / KEY_FILE).stat().st_mode & 0o777 == 0o600
    assert create_key(tmp_path / "hub") == (key, False)
    (tmp_path / "hub" / KEY_FILE).chmod(0o644)
    from callguard.errors import UsageError

    with pytest.raises(UsageError, match="chmod 600"):
        read_key(tmp_path / "hub")


def test_cli_key_list_and_remove(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path / "c.toml", {"hub": {"dir": str(tmp_path / "hub")}})
    assert main(["--config", str(config), "hub", "list"]) == 2  # no hub there yet
    assert "there is no hub here" in capsys.readouterr().err
    assert main(["--config", str(config), "hub", "key"]) == 0
    printed = capsys.readouterr().out
    assert f'community_key = "{public_key_b64(read_key(tmp_path / "hub"))}"' in printed
    hub = Hub(HubConfig(dir=str(tmp_path / "hub")))
    for unit in ("unit-1", "unit-2", "unit-3"):
        hub.record_report(unit, report(A))
    hub.close()
    assert main(["--config", str(config), "hub", "list", "--json"]) == 0
    [entry] = json.loads(capsys.readouterr().out)
    assert (entry["number"], entry["units"]) == (A, 3)
    assert main(["--config", str(config), "hub", "remove", "01632 960123"]) == 0
    assert "Removed +441632960123" in capsys.readouterr().out
    assert main(["--config", str(config), "hub", "list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
    assert main(["--config", str(config), "hub", "remove", "999"]) == 2
    assert "999 is a short code" in capsys.readouterr().err


# -- over the real broker ----------------------------------------------------------------------


class Client:
    """A test's MQTT client as one of the broker's users."""

    def __init__(self, broker: Broker, user: str) -> None:
        self.messages: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
        self._connected = threading.Event()
        self._subscribed = threading.Event()
        self.mqtt = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"test-{user}-{next(_CLIENT_IDS)}"
        )
        self.mqtt.username_pw_set(user, broker.passwords[user])
        self.mqtt.on_connect = lambda *args: self._connected.set()
        self.mqtt.on_subscribe = lambda *args: self._subscribed.set()
        self.mqtt.on_message = lambda client, userdata, message: self.messages.put(message)
        self.mqtt.connect(HOST, broker.port)
        self.mqtt.loop_start()
        assert self._connected.wait(10), f"{user} could not connect"

    def publish(self, topic: str, payload: bytes | str) -> None:
        self.mqtt.publish(topic, payload, qos=1).wait_for_publish(10)

    def subscribe(self, topic: str) -> None:
        self._subscribed.clear()
        self.mqtt.subscribe(topic, qos=1)
        assert self._subscribed.wait(10)

    def close(self) -> None:
        self.mqtt.disconnect()
        self.mqtt.loop_stop()


class Lists:
    """A unit receiving the group's list: each one checked with the group's public key."""

    def __init__(self, broker: Broker, public: str, user: str = "unit-5") -> None:
        self.client = Client(broker, user)
        self.public = public
        self.client.subscribe(LIST_TOPIC)

    def next(self, what: str = "a list", timeout_s: float = 10.0) -> tuple[CommunityList, bool]:
        try:
            message = self.client.messages.get(timeout=timeout_s)
        except queue.Empty:
            raise AssertionError(f"no list arrived: waiting for {what}") from None
        return verify_list(bytes(message.payload), self.public), bool(message.retain)

    def until(self, numbers: tuple[str, ...], what: str) -> CommunityList:
        while True:
            listed, _ = self.next(what)
            if listed.numbers == numbers:
                return listed


class Running:
    """``callguard hub`` in a thread, against the test broker."""

    def __init__(self, broker: Broker, folder: Path) -> None:
        self.config = HubConfig(
            broker=broker.url,
            username="hub",
            password_file=str(broker.password_file("hub")),
            dir=str(folder),
        )
        key, _ = create_key(folder)
        self.public = public_key_b64(key)
        self.hub = Hub(self.config)
        self.thread = threading.Thread(target=self.hub.run, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.hub.stop()
        self.thread.join(10)
        assert not self.thread.is_alive()
        self.hub.close()


@pytest.fixture
def running(broker: Broker, tmp_path: Path) -> Iterator[Running]:
    hub = Running(broker, tmp_path / "hub")
    try:
        yield hub
    finally:
        hub.stop()


def send_reports(broker: Broker, number: str, *units: str) -> None:
    for unit in units:
        client = Client(broker, unit)
        try:
            client.publish(f"callguard/{unit}/report", report(number))
        finally:
            client.close()


def test_three_units_reporting_make_a_signed_retained_list(
    broker: Broker, running: Running
) -> None:
    unit = Lists(broker, running.public)
    try:
        first, _ = unit.next("the list published at start")
        assert first.numbers == ()
        send_reports(broker, A, "unit-1", "unit-2")
        send_reports(broker, A, "unit-3")
        listed = unit.until((A,), "the list with the number three units reported")
        assert listed.version > first.version
    finally:
        unit.client.close()
    later = Lists(broker, running.public, user="volunteer")  # joins later: the retained copy
    try:
        retained, retain_flag = later.next("the retained list")
        assert retain_flag is True
        assert retained.numbers == (A,)
    finally:
        later.client.close()


def test_the_hub_survives_garbage_and_the_acl_keeps_removal_to_admin(
    broker: Broker, running: Running
) -> None:
    unit = Lists(broker, running.public)
    try:
        unit.next("the list published at start")
        garbage = Client(broker, "unit-1")
        for payload in (b"", b"\xff\xfe", b"{", b"[]", b'{"number": "999", "reason": "x"}'):
            garbage.publish("callguard/unit-1/report", payload)
        garbage.publish("callguard/unit-1/report", b"{" * 100_000)
        garbage.publish(REMOVE_TOPIC, A)  # a unit may not: the broker drops it
        garbage.close()
        send_reports(broker, A, "unit-1", "unit-2", "unit-3")
        unit.until((A,), "the list with the number")
        intruder = Client(broker, "unit-2")
        intruder.publish(REMOVE_TOPIC, A)  # denied by the ACL
        intruder.close()
        send_reports(broker, B, "unit-3", "unit-4", "unit-5")
        unit.until((A, B), "both numbers: the unit's removal did nothing")
        admin = Client(broker, "admin")
        admin.publish(REMOVE_TOPIC, b"not a number")
        admin.publish(REMOVE_TOPIC, A)
        admin.close()
        unit.until((B,), "the list without the number admin removed")
    finally:
        unit.client.close()


def test_a_removal_on_the_hubs_machine_is_published_and_a_restart_republishes(
    broker: Broker, running: Running, tmp_path: Path
) -> None:
    unit = Lists(broker, running.public)
    try:
        unit.next("the list published at start")
        send_reports(broker, A, "unit-1", "unit-2", "unit-3")
        unit.until((A,), "the list with the number")
        cli = Hub(running.config, create=False)  # what `callguard hub remove` does
        assert cli.remove(A, "volunteer via callguard hub remove") is True
        cli.close()
        removed = unit.until((), "the list without the number removed on the hub's machine")
        running.stop()
        again = Running(broker, tmp_path / "hub")
        try:
            republished, _ = unit.next("the list republished at start")
            assert (republished.numbers, republished.version) == ((), removed.version)
        finally:
            again.stop()
    finally:
        unit.client.close()


def test_the_hub_refuses_to_start_without_a_key_saying_how_to_make_one(tmp_path: Path) -> None:
    from callguard.errors import UsageError

    hub = Hub(HubConfig(broker="mqtt://127.0.0.1:1", dir=str(tmp_path / "hub")))
    try:
        with pytest.raises(UsageError, match="callguard hub key"):
            hub.run()
    finally:
        hub.close()


def test_callguard_hub_runs_as_a_process_and_stops_on_sigterm(
    broker: Broker, tmp_path: Path
) -> None:
    folder = tmp_path / "hub"
    key, _ = create_key(folder)
    hub_section = {
        "broker": broker.url,
        "username": "hub",
        "password_file": str(broker.password_file("hub")),
        "dir": str(folder),
    }
    config = write_config(tmp_path / "c.toml", {"hub": hub_section})
    unit = Lists(broker, public_key_b64(key))
    proc = subprocess.Popen(
        [sys.executable, "-m", "callguard", "--config", str(config), "hub"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        listed, _ = unit.next("the list the hub publishes at start")
        assert listed.numbers == ()
        send_reports(broker, B, "unit-1", "unit-2", "unit-3")
        unit.until((B,), "the list with the number")
    finally:
        unit.client.close()
        code = terminated(proc)
    output = proc.stdout.read() if proc.stdout else ""
    assert code == 0, output
    assert "published community list version" in output
