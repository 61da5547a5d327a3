"""The fleet link against a real Mosquitto with the group's ACL (tests/broker.py): availability
and the Last Will, the retained state, commands from the broker, Home Assistant discovery,
numbers kept home, and a broker that is down or refuses the unit."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import paho.mqtt.client as mqtt
import pytest
from helpers import SetClock, terminated, wait_for, warned_call

from callguard.config import Config, from_dict
from callguard.link.events import Message
from callguard.link.fleet import FleetLink, strip_numbers
from callguard.store.state import StateFiles

if TYPE_CHECKING:
    from broker import Broker

pytest_plugins = ["broker"]

NOW = dt.datetime(2026, 11, 25, 9, 45, tzinfo=dt.UTC)
WAIT_S = 10.0


# -- a client that listens (and one that sends) ---------------------------------------------


class Listener:
    """An MQTT client logged in as ``user``, keeping every message it gets, in order."""

    def __init__(self, broker: Broker, user: str, *topics: str) -> None:
        self.messages: list[tuple[str, bytes, bool]] = []
        self.changed = threading.Condition()
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=f"test-{user}-{os.urandom(4).hex()}"
        )
        self.client.username_pw_set(user, broker.passwords[user])
        ready = threading.Event()

        def on_connect(c: mqtt.Client, u: Any, f: Any, rc: Any, p: Any) -> None:
            if topics:
                c.subscribe([(t, 1) for t in topics])
            else:
                ready.set()

        self.client.on_connect = on_connect
        self.client.on_subscribe = lambda c, u, mid, rcs, p: ready.set()
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", broker.port, keepalive=30)
        self.client.loop_start()
        assert ready.wait(WAIT_S), f"{user} could not connect and subscribe to {topics}"

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        with self.changed:
            self.messages.append((message.topic, bytes(message.payload), bool(message.retain)))
            self.changed.notify_all()

    def on(self, topic: str) -> list[bytes]:
        with self.changed:
            return [payload for t, payload, _ in self.messages if t == topic]

    def wait(
        self, topic: str, where: Callable[[bytes], bool] = lambda p: True, timeout_s: float = WAIT_S
    ) -> bytes:
        """The first message on ``topic`` (from the start) that ``where`` accepts."""
        with self.changed:
            found: list[bytes] = []

            def seen() -> bool:
                found[:] = [p for t, p, _ in self.messages if t == topic and where(p)]
                return bool(found)

            assert self.changed.wait_for(seen, timeout_s), (
                f"nothing on {topic} as wanted; had {self.messages}"
            )
            return found[0]

    def wait_json(
        self, topic: str, where: Callable[[dict[str, Any]], bool] = lambda d: True
    ) -> dict[str, Any]:
        return dict(json.loads(self.wait(topic, lambda p: where(json.loads(p)))))

    def publish(self, topic: str, payload: str | bytes, *, retain: bool = False) -> None:
        self.client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(WAIT_S)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def config_for(tmp: Path, broker: Broker | None, unit: str = "unit-1", **fleet: Any) -> Config:
    section: dict[str, Any] = {"unit_id": unit}
    if broker is not None:
        section |= {"broker": broker.url, "password_file": str(broker.password_file(unit))}
    return from_dict(
        {"storage": {"dir": str(tmp / "state")}, "fleet": {**section, **fleet}}, "(test)"
    )


def status(**fields: Any) -> dict[str, Any]:
    """A running daemon's status (this test process stands in for its pid)."""
    return {
        "daemon": "running",
        "pid": os.getpid(),
        "version": "0.9.0",
        "modem": "connected",
        "line": "idle",
        "grooming_alert": False,
        "last_call": None,
        "line_sense": {"source": "modem", "detail": "AT-TRV"},
        "caller_id_timing": "before-first-ring",
        "clock_synchronised": True,
        "line_voltage": {"volts": 48.0, "dead": False},
        **fields,
    }


class Links:
    """FleetLinks made for a test, each stopped at its end."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.made: list[FleetLink] = []

    def __call__(self, config: Config, **kw: Any) -> FleetLink:
        state = StateFiles(config.storage.dir, clock=SetClock(NOW))
        link = FleetLink(config, state, clock=SetClock(NOW), **kw)
        self.made.append(link)
        return link


@pytest.fixture
def links(tmp_path: Path) -> Iterator[Links]:
    made = Links(tmp_path)
    yield made
    for link in made.made:
        link.stop()


@pytest.fixture
def volunteer(broker: Broker) -> Iterator[Listener]:
    listener = Listener(broker, "volunteer", "callguard/#", "homeassistant/#")
    yield listener
    listener.close()


def started(link: FleetLink) -> FleetLink:
    link.start()
    assert link.wait_connected(WAIT_S), "the link did not connect"
    return link


# -- availability and the Last Will ------------------------------------------------------------

UNIT_PROCESS = """
import sys, time
from callguard.config import from_dict
from callguard.link.fleet import FleetLink
from callguard.store.state import StateFiles

url, password_file, folder = sys.argv[1:4]
config = from_dict({"storage": {"dir": folder},
                    "fleet": {"broker": url, "unit_id": "unit-3", "password_file": password_file}})
link = FleetLink(config, StateFiles(folder), keepalive_s=1)
link.start()
assert link.wait_connected(10)
print("connected", flush=True)
time.sleep(120)
"""


def test_online_then_offline_by_the_last_will_within_seconds_of_a_kill_9(
    broker: Broker, volunteer: Listener, tmp_path: Path
) -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            UNIT_PROCESS,
            broker.url,
            str(broker.password_file("unit-3")),
            str(tmp_path / "state"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "connected"
        assert volunteer.wait("callguard/unit-3/availability") == b"online"
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        killed = time.monotonic()
        volunteer.wait("callguard/unit-3/availability", lambda p: p == b"offline", 3.0)
        assert time.monotonic() - killed < 3.0
    finally:
        terminated(proc)
    # retained: a volunteer who looks later still sees it
    late = Listener(broker, "volunteer", "callguard/unit-3/availability")
    try:
        assert late.wait("callguard/unit-3/availability") == b"offline"
    finally:
        late.close()


def test_a_clean_stop_says_offline_and_leaves_it_retained(
    broker: Broker, volunteer: Listener, links: Links, tmp_path: Path
) -> None:
    link = started(links(config_for(tmp_path, broker)))
    assert volunteer.wait("callguard/unit-1/availability") == b"online"
    began = time.monotonic()
    link.stop()
    assert time.monotonic() - began < 5.0
    assert not link.connected
    volunteer.wait("callguard/unit-1/availability", lambda p: p == b"offline")


# -- the state --------------------------------------------------------------------------------


def test_the_state_is_retained_and_follows_a_grooming_alert(
    broker: Broker, volunteer: Listener, links: Links, tmp_path: Path
) -> None:
    link = links(config_for(tmp_path, broker))
    link.publish_state(status())  # before there is a connection: it goes out on connect
    link.start()
    assert link.wait_connected(WAIT_S)
    first = volunteer.wait_json("callguard/unit-1/state")
    assert first["modem"] == "connected" and first["line"] == "idle"
    assert first["grooming_alert"] is False and first["daemon"] == "running"
    assert {"last_call", "version", "line_sense", "caller_id_timing", "updated"} <= set(first)
    assert first["line_sense"] == "modem"

    link.publish_state(status())  # nothing changed: nothing sent
    call = warned_call(answered=True, duration_s=None)
    link.state.raise_alert(call)
    link.publish_state(status(grooming_alert=True, line="in-call", last_call=call))
    raised = volunteer.wait_json("callguard/unit-1/state", lambda s: s["grooming_alert"])
    assert raised["line"] == "in-call" and raised["last_call"] == call["started"]
    assert b"+442079460123" not in volunteer.on("callguard/unit-1/state")[-1]
    assert len(volunteer.on("callguard/unit-1/state")) == 2  # once per change

    later = Listener(broker, "volunteer", "callguard/unit-1/state")
    try:
        assert json.loads(later.wait("callguard/unit-1/state"))["grooming_alert"] is True
        assert later.messages[0][2], "the state is retained"
    finally:
        later.close()


def test_the_state_goes_out_even_when_the_broker_answers_before_start_returns(
    broker: Broker,
    volunteer: Listener,
    links: Links,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On a busy unit paho's thread can connect before start() has returned: the state given
    before must still go out on that connection (it was lost, and stayed lost until the next
    change: a volunteer's `fleet status` showed the unit's modem and line as unknown)."""
    loop_start = mqtt.Client.loop_start

    def connected_before_returning(client: mqtt.Client) -> Any:
        result = loop_start(client)
        assert link.wait_connected(WAIT_S)  # its on_connect has run, and the SUBACK come
        return result

    monkeypatch.setattr(mqtt.Client, "loop_start", connected_before_returning)
    link = links(config_for(tmp_path, broker))
    link.publish_state(status(line="ringing"))
    link.start()
    assert link.wait_connected(WAIT_S)
    assert volunteer.wait_json("callguard/unit-1/state")["line"] == "ringing"


def test_the_state_goes_again_after_a_reconnect(
    broker: Broker, links: Links, tmp_path: Path
) -> None:
    link = started(links(config_for(tmp_path, broker)))
    link.publish_state(status(line="ringing"))
    broker.stop()
    wait_for(lambda: not link.connected, WAIT_S, "the link to see the broker go")
    broker.start()  # persistence is off: the broker forgot every retained message
    assert link.wait_connected(WAIT_S)
    listener = Listener(broker, "volunteer", "callguard/unit-1/#")
    try:
        assert json.loads(listener.wait("callguard/unit-1/state"))["line"] == "ringing"
        assert listener.wait("callguard/unit-1/availability") == b"online"
    finally:
        listener.close()


def test_a_daemon_whose_process_is_gone_is_not_running(tmp_path: Path) -> None:
    config = config_for(tmp_path, None)
    link = FleetLink(config, StateFiles(tmp_path / "state"), alive=lambda pid: False)
    state = link.state_of(status())
    assert state["daemon"] == "not running"
    assert state["modem"] == "disconnected" and state["line"] == "unknown"
    assert link.state_of(None)["daemon"] == "not running"
    assert link.state_of(status(daemon="stopped"))["daemon"] == "stopped"


# -- commands from the broker ---------------------------------------------------------------


def test_an_ack_from_the_broker_clears_the_alert(
    broker: Broker, volunteer: Listener, links: Links, tmp_path: Path
) -> None:
    link = started(links(config_for(tmp_path, broker)))
    link.state.raise_alert(warned_call(answered=True))
    link.publish_state(status(grooming_alert=True))
    volunteer.wait_json("callguard/unit-1/state", lambda s: s["grooming_alert"])
    # Home Assistant's button (its login may write the unit's commands)
    button = Listener(broker, "unit-1")
    try:
        button.publish("callguard/unit-1/cmd/ack", "PRESS")
    finally:
        button.close()
    alert = wait_for(
        lambda: (a := link.state.read_alert()) and not a["active"] and a, WAIT_S, "the ack"
    )
    assert alert["acknowledged_by"] == "the fleet (MQTT)"
    volunteer.wait_json("callguard/unit-1/state", lambda s: s["grooming_alert"] is False)


def test_selftest_and_reload_from_the_broker_and_nothing_else(
    broker: Broker, volunteer: Listener, links: Links, tmp_path: Path, caplog: Any
) -> None:
    caplog.set_level(logging.INFO, "callguard.link.fleet")
    daemon = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import signal, sys, time\n"
            "signal.signal(signal.SIGHUP, lambda *a: sys.exit(7))\n"
            "print('ready', flush=True)\n"
            "time.sleep(60)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert daemon.stdout is not None and daemon.stdout.readline().strip() == "ready"
        link = started(links(config_for(tmp_path, broker)))
        link.state.write_status(status(pid=daemon.pid, caller_id_timing="unknown"))
        unit = Listener(broker, "unit-1")
        try:
            unit.publish("callguard/unit-1/cmd/selftest", "")
            report = volunteer.wait_json("callguard/unit-1/selftest")
            checks = {c["check"]: c for c in report["checks"]}
            assert set(checks) == {"screening", "modem", "line", "clock", "caller_id"}
            assert checks["screening"]["ok"] and checks["modem"]["ok"] and checks["clock"]["ok"]
            assert (
                not checks["caller_id"]["ok"] and "ring the line" in checks["caller_id"]["detail"]
            )
            assert report["ok"] is False
            unit.publish("callguard/unit-1/cmd/reload", "")
            assert daemon.wait(WAIT_S) == 7  # it got SIGHUP
            unit.publish("callguard/unit-1/cmd/reboot", "")
            wait_for(lambda: "unknown command 'reboot'" in caplog.text, WAIT_S, "the log line")
        finally:
            unit.close()
        assert link.connected
    finally:
        terminated(daemon)


def test_bad_input_from_the_broker_never_raises_out_of_a_callback(
    broker: Broker, links: Links, tmp_path: Path, caplog: Any
) -> None:
    link = links(config_for(tmp_path, broker, community=True))
    got: queue.Queue[bytes] = queue.Queue()

    def on_list(payload: bytes) -> None:
        got.put(payload)
        raise ValueError("not a signed list")

    link.on_community_list = on_list
    started(link)
    hub = Listener(broker, "hub")
    try:
        hub.publish("callguard/community/list", b"\xff\x00garbage", retain=True)
    finally:
        hub.close()
    assert got.get(timeout=WAIT_S) == b"\xff\x00garbage"
    wait_for(lambda: "could not be handled" in caplog.text, WAIT_S, "the error logged")
    link.handle("callguard/unit-2/cmd/ack", b"")  # not its own: ignored
    link.state.raise_alert(warned_call())
    link.handle("callguard/unit-2/cmd/ack", b"")
    assert link.state.alert_active()
    assert "not for this unit" in caplog.text
    assert link.connected


# -- the ACL: a unit keeps to its own topics --------------------------------------------------


def test_a_unit_cannot_write_into_another_units_topics(broker: Broker, volunteer: Listener) -> None:
    unit = Listener(broker, "unit-1")
    try:
        unit.publish("callguard/unit-2/state", '{"modem": "forged"}', retain=True)
        unit.publish("callguard/unit-2/availability", "offline", retain=True)
        unit.publish("homeassistant/sensor/unit-2/line/config", "{}", retain=True)
        unit.publish("callguard/unit-1/marker", "after")
    finally:
        unit.close()
    # one publisher's messages arrive in order: once the marker is here, the others would be
    volunteer.wait("callguard/unit-1/marker")
    topics = [t for t, _, _ in volunteer.messages]
    assert not [t for t in topics if "unit-2" in t], topics


# -- Home Assistant discovery -----------------------------------------------------------------

DISCOVERY = re.compile(r"homeassistant/(binary_sensor|sensor|button)/unit-1/([a-z_]+)/config")


def test_home_assistant_discovery_configs_are_well_formed_and_the_units_own(
    broker: Broker, volunteer: Listener, links: Links, tmp_path: Path
) -> None:
    started(links(config_for(tmp_path, broker)))
    wanted = {
        ("binary_sensor", "modem"),
        ("binary_sensor", "grooming_alert"),
        ("sensor", "last_call"),
        ("sensor", "line"),
        ("button", "ack"),
    }
    for component, obj in wanted:
        volunteer.wait(f"homeassistant/{component}/unit-1/{obj}/config")
    late = Listener(broker, "volunteer", "homeassistant/#")  # Home Assistant starting later
    try:
        for component, obj in wanted:
            late.wait(f"homeassistant/{component}/unit-1/{obj}/config")
        configs = {t: (json.loads(p), retained) for t, p, retained in late.messages}
    finally:
        late.close()
    assert {DISCOVERY.fullmatch(t).groups() for t in configs} == wanted  # type: ignore[union-attr]
    unique_ids = set()
    for topic, (config, retained) in configs.items():
        assert retained, topic
        unique_ids.add(config["unique_id"])
        assert config["availability_topic"] == "callguard/unit-1/availability"
        assert config["payload_available"] == "online"
        assert config["payload_not_available"] == "offline"
        device = config["device"]
        assert device["identifiers"] == ["callguard_unit-1"]
        assert device["manufacturer"] == "CallGuard"
        assert device["name"] and device["model"] and device["sw_version"]
        own = config.get("state_topic") or config.get("command_topic")
        assert own and own.startswith("callguard/unit-1/"), topic
    assert len(unique_ids) == len(wanted)
    modem = configs["homeassistant/binary_sensor/unit-1/modem/config"][0]
    assert modem["device_class"] == "connectivity"
    assert modem["state_topic"] == "callguard/unit-1/state"
    assert (
        configs["homeassistant/binary_sensor/unit-1/grooming_alert/config"][0]["device_class"]
        == "problem"
    )
    assert configs["homeassistant/sensor/unit-1/last_call/config"][0]["device_class"] == (
        "timestamp"
    )
    assert configs["homeassistant/button/unit-1/ack/config"][0]["command_topic"] == (
        "callguard/unit-1/cmd/ack"
    )


# -- events and reports: numbers stay home -----------------------------------------------------

EVENT = Message(
    key="repeated-calls:+442079460123:41",
    kind="repeated-calls",
    title="CallGuard: 020 7946 0123 has called 4 times in an hour",
    body="020 7946 0123, a number on no list, rang at 09:30 on Wed 25 Nov. Block it: "
    "`callguard block add +442079460123`. If in doubt, ring 159.",
)


@pytest.mark.parametrize("share", [False, True])
def test_events_go_to_the_broker_without_numbers_unless_shared(
    broker: Broker, volunteer: Listener, links: Links, tmp_path: Path, share: bool
) -> None:
    link = started(links(config_for(tmp_path, broker, share_numbers=share)))
    link.publish_event(EVENT)
    event = volunteer.wait_json("callguard/unit-1/events")
    assert event["kind"] == "repeated-calls" and event["at"] == NOW.isoformat()
    text = json.dumps(event)
    if share:
        assert (event["key"], event["title"], event["body"]) == (EVENT.key, EVENT.title, EVENT.body)
    else:
        assert "7946" not in text and "442079460123" not in text, text
        assert "ring 159" in event["body"] and "4 times" in event["title"]
        assert "09:30 on Wed 25 Nov" in event["body"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("from 020 7946 0123.", "from #."),
        ("from 02079460123", "from #"),
        ("from +442079460123 again", "from # again"),
        ("from +44 20 7946 0123", "from #"),
        ("from +44 (0)20 7946 0123", "from #"),
        ("from 0044 20 7946 0123", "from #"),
        ("07700 900461 rang", "# rang"),
        ("07700-900461", "#"),
        ("0306 999 0123, twice", "#, twice"),
        ("(01707) 354000", "#"),
        ("+33 1 23 45 67 89", "#"),
        ("ring 159, 999, 101 or 118118", "ring 159, 999, 101 or 118118"),
        ("at 09:30 on 2026-11-25T09:30:00+00:00", "at 09:30 on 2026-11-25T09:30:00+00:00"),
        ("4 times in 1 hour, 16 minutes", "4 times in 1 hour, 16 minutes"),
        ("07700 900461 3 times", "# 3 times"),
        ("key grooming:2026-11-25T09:30:00+00:00:1", "key grooming:2026-11-25T09:30:00+00:00:1"),
    ],
)
def test_strip_numbers(text: str, expected: str) -> None:
    assert strip_numbers(text, "#") == expected


def test_reports_go_only_with_community_on_as_e164(
    broker: Broker, links: Links, tmp_path: Path, volunteer: Listener
) -> None:
    hub = Listener(broker, "hub", "callguard/+/report")
    try:
        on = started(links(config_for(tmp_path, broker, community=True)))
        on.report("020 7946 0123", "blocked: on the block list")
        report = json.loads(hub.wait("callguard/unit-1/report"))
        assert report == {
            "number": "+442079460123",
            "reason": "blocked: on the block list",
            "at": NOW.isoformat(),
        }
        off = started(links(config_for(tmp_path / "two", broker, unit="unit-2", community=False)))
        off.report("020 7946 0999", "blocked")
        off.publish_event(EVENT)  # after the report, on the same connection
        volunteer.wait("callguard/unit-2/events")
        assert volunteer.on("callguard/unit-2/report") == []
    finally:
        hub.close()


# -- a broker that is down, a bad password, no broker -------------------------------------------


def test_start_returns_at_once_with_the_broker_down_and_connects_when_it_comes_up(
    tmp_path: Path, links: Links
) -> None:
    from broker import Broker, mosquitto

    if mosquitto() is None:
        pytest.skip("mosquitto is not installed (sudo apt install mosquitto; make broker)")
    folder = tmp_path / "broker"
    folder.mkdir()
    broker = Broker(folder)  # not started yet
    link = links(config_for(tmp_path, broker))
    began = time.monotonic()
    link.start()
    assert time.monotonic() - began < 0.5
    assert not link.connected
    link.publish_state(status())  # no broker: kept for later, never raises
    link.publish_event(EVENT)
    broker.start()
    try:
        assert link.wait_connected(15)
        listener = Listener(broker, "volunteer", "callguard/unit-1/state")
        try:
            assert json.loads(listener.wait("callguard/unit-1/state"))["modem"] == "connected"
        finally:
            listener.close()
    finally:
        link.stop()
        broker.stop()


def test_stop_is_bounded_when_the_broker_never_came(tmp_path: Path, links: Links) -> None:
    from broker import Broker, mosquitto

    if mosquitto() is None:
        pytest.skip("mosquitto is not installed (sudo apt install mosquitto; make broker)")
    broker = Broker(tmp_path)
    link = links(config_for(tmp_path, broker))
    link.start()
    began = time.monotonic()
    link.stop()
    assert time.monotonic() - began < 6.0


@pytest.mark.parametrize("problem", ["missing", "empty", "readable by everyone"])
def test_a_bad_password_file_is_a_logged_error_naming_it_and_no_connection(
    broker: Broker, links: Links, tmp_path: Path, caplog: Any, problem: str
) -> None:
    path = tmp_path / "unit-1.password"
    if problem == "empty":
        path.write_text("\n")
        path.chmod(0o600)
    elif problem == "readable by everyone":
        path.write_text(broker.passwords["unit-1"] + "\n")
        path.chmod(0o644)
    link = links(config_for(tmp_path, broker, password_file=str(path)))
    began = time.monotonic()
    link.start()
    assert time.monotonic() - began < 0.5
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert any(str(path) in e and "password" in e for e in errors), errors
    assert not link.connected
    assert "unit-1" not in broker.log_text()  # it never tried


def test_a_wrong_password_is_logged_once_with_the_fix(
    broker: Broker, links: Links, tmp_path: Path, caplog: Any
) -> None:
    path = tmp_path / "wrong.password"
    path.write_text("not-the-password\n")
    path.chmod(0o600)
    link = links(config_for(tmp_path, broker, password_file=str(path)))
    link.start()
    wait_for(lambda: "refused unit-1" in caplog.text, WAIT_S, "the refusal logged")
    assert str(path) in caplog.text
    assert not link.connected


def test_no_broker_means_no_fleet_link(tmp_path: Path) -> None:
    link = FleetLink(config_for(tmp_path, None), StateFiles(tmp_path / "state"))
    link.start()
    link.publish_state(status())
    link.publish_event(EVENT)
    link.report("020 7946 0123", "blocked")
    assert not link.connected
    link.stop()


def test_mqtts_with_the_groups_ca(tmp_path: Path, links: Links, tls_broker: Broker) -> None:
    """mqtts:// with [fleet] ca_file: the broker's certificate checked against the group's CA."""
    config = config_for(tmp_path, tls_broker, ca_file=str(tls_broker.ca_file))
    link = links(config)
    link.start()
    assert link.wait_connected(15)
    assert "unit-1" in tls_broker.log_text()


def test_mqtts_refuses_a_broker_its_ca_did_not_sign(
    tmp_path: Path, links: Links, tls_broker: Broker, caplog: Any
) -> None:
    from broker import make_certificates

    other = tmp_path / "other-ca"
    other.mkdir()
    make_certificates(other)  # another group's CA
    link = links(config_for(tmp_path, tls_broker, ca_file=str(other / "ca.crt")))
    link.start()
    assert not link.wait_connected(3)
    assert "New client connected" not in tls_broker.log_text()
    assert any("certificate" in r.getMessage().lower() for r in caplog.records), [
        r.getMessage() for r in caplog.records
    ]
