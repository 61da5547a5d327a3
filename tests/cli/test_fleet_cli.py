"""``callguard fleet status [--json]`` against a real Mosquitto (tests/broker.py), logged in as
the group's volunteer."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from helpers import SetClock, run_cli, warned_call, write_config

from callguard.config import from_dict
from callguard.link.fleet import FleetLink
from callguard.store.state import StateFiles

if TYPE_CHECKING:
    from broker import Broker

pytest_plugins = ["broker"]

NOW = dt.datetime(2026, 11, 25, 9, 45, tzinfo=dt.UTC)


def volunteer_config(tmp: Path, server: Broker, **fleet: Any) -> Path:
    section = {
        "broker": server.url,
        "username": "volunteer",
        "password_file": str(server.password_file("volunteer")),
        **fleet,
    }
    return write_config(
        tmp / "volunteer.toml", {"storage": {"dir": str(tmp / "laptop")}, "fleet": section}
    )


def unit_status(**fields: Any) -> dict[str, Any]:
    return {
        "daemon": "running",
        "pid": 1,  # init: always there
        "modem": "connected",
        "line": "idle",
        "grooming_alert": False,
        "last_call": None,
        "caller_id_timing": "before-first-ring",
        **fields,
    }


@pytest.fixture
def fleet(broker: Broker, tmp_path: Path) -> Iterator[list[FleetLink]]:
    """unit-1 well, unit-2 with its grooming light on, unit-3 gone offline."""
    links: list[FleetLink] = []

    def unit(name: str, status: dict[str, Any], alert: bool = False) -> FleetLink:
        folder = tmp_path / name
        config = from_dict(
            {
                "storage": {"dir": str(folder)},
                "fleet": {
                    "broker": broker.url,
                    "unit_id": name,
                    "password_file": str(broker.password_file(name)),
                },
            }
        )
        state = StateFiles(folder, clock=SetClock(NOW))
        if alert:
            state.raise_alert(warned_call(answered=True))
        link = FleetLink(config, state, clock=SetClock(NOW))
        links.append(link)
        link.publish_state(status)
        link.start()
        assert link.wait_connected(10)  # SUBACK: the broker has what came before it
        return link

    unit("unit-2", unit_status(line="in-call", grooming_alert=True), alert=True)
    unit("unit-1", unit_status(last_call=warned_call()))
    unit("unit-3", unit_status()).stop()
    yield links
    for link in links:
        link.stop()


def test_fleet_status_prints_each_unit_sorted_with_its_alert(
    broker: Broker, fleet: list[FleetLink], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = volunteer_config(tmp_path, broker)
    began = time.monotonic()
    code, out, err = run_cli(cfg, capsys, "fleet", "status")
    assert time.monotonic() - began < 5.5
    assert code == 0, err
    lines = out.splitlines()
    assert [line.split()[0] for line in lines] == ["unit-1", "unit-2", "unit-3"]
    one, two, three = lines
    assert "online" in one and "modem connected" in one and "line idle" in one
    assert "last call 2026-11-25 09:30" in one and "ALERT" not in one
    assert "online" in two and "line in-call" in two and two.endswith("ALERT")
    assert "offline" in three and "ALERT" not in three


def test_fleet_status_json(
    broker: Broker, fleet: list[FleetLink], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(
        volunteer_config(tmp_path, broker), capsys, "fleet", "status", "--json"
    )
    assert code == 0, err
    units = json.loads(out)
    assert [u["unit"] for u in units] == ["unit-1", "unit-2", "unit-3"]
    by = {u["unit"]: u for u in units}
    assert by["unit-1"]["availability"] == "online" and by["unit-1"]["online"] is True
    assert by["unit-1"]["modem"] == "connected" and by["unit-1"]["line"] == "idle"
    assert by["unit-1"]["last_call"] == "2026-11-25T09:30:00+00:00"
    assert by["unit-1"]["grooming_alert"] is False
    assert by["unit-2"]["grooming_alert"] is True
    assert by["unit-3"]["availability"] == "offline" and by["unit-3"]["online"] is False


def test_fleet_status_with_no_broker_set_names_the_key(
    cfg: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(cfg, capsys, "fleet", "status")
    assert code == 2 and out == ""
    assert "[fleet] broker" in err


def test_fleet_status_with_the_broker_unreachable_names_it_and_the_fix(
    broker: Broker, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from broker import free_port

    url = f"mqtt://127.0.0.1:{free_port()}"
    cfg = volunteer_config(tmp_path, broker, broker=url)
    began = time.monotonic()
    code, out, err = run_cli(cfg, capsys, "fleet", "status")
    assert time.monotonic() - began < 5
    assert code == 1 and out == ""
    assert url in err and "check [fleet] broker" in err


def test_fleet_status_with_a_wrong_password_says_so(
    broker: Broker, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wrong = tmp_path / "wrong.password"
    wrong.write_text("nope\n")
    wrong.chmod(0o600)
    cfg = volunteer_config(tmp_path, broker, password_file=str(wrong))
    code, out, err = run_cli(cfg, capsys, "fleet", "status")
    assert code == 1 and out == ""
    assert "refused the login as volunteer" in err and "password_file" in err
