"""callguard link's loop, one step at a time: events queued in the outbox before delivery, the
heartbeat only while the unit is well, config changes followed."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from helpers import SetClock, write_config

from callguard.config import load
from callguard.link.service import Link, ping
from callguard.store.calllog import CallLog
from callguard.store.state import StateFiles

pytest_plugins = ["receivers"]

NOW = dt.datetime(2026, 12, 7, 10, 0, tzinfo=dt.UTC)


class Pings:
    """A local HTTP server counting GETs (a Healthchecks check stands in)."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        pings = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                pings.paths.append(self.path)
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"OK")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/ping/abc"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def pings() -> Iterator[Pings]:
    server = Pings()
    yield server
    server.close()


class Clocks:
    def __init__(self) -> None:
        self.wall = SetClock(NOW)
        self.mono = 1000.0

    def monotonic(self) -> float:
        return self.mono


def make_link(tmp: Path, clocks: Clocks, **alerts: Any) -> tuple[Link, StateFiles]:
    path = tmp / "callguard.toml"
    write_config(path, {"storage": {"dir": str(tmp / "state")}, "alerts": alerts})
    link = Link(
        load(str(path)),
        config_path=str(path),
        clock=clocks.wall,
        monotonic=clocks.monotonic,
        alive=lambda pid: pid == 4242,
    )
    return link, StateFiles(tmp / "state")


def well(state: StateFiles, **fields: Any) -> None:
    state.write_status({"daemon": "running", "pid": 4242, "modem": "connected", **fields})


def wait_heartbeat(link: Link) -> None:
    if link._heartbeat is not None:
        link._heartbeat.join(10)


def test_the_heartbeat_is_pinged_every_few_minutes_while_the_unit_is_well(
    tmp_path: Path, pings: Pings
) -> None:
    clocks = Clocks()
    link, state = make_link(tmp_path, clocks, heartbeat_url=pings.url, heartbeat_minutes=5)
    well(state)
    link.step()
    wait_heartbeat(link)
    assert pings.paths == ["/ping/abc"]
    clocks.mono += 120
    link.step()
    wait_heartbeat(link)
    assert len(pings.paths) == 1  # not before its five minutes
    clocks.mono += 181
    link.step()
    wait_heartbeat(link)
    assert len(pings.paths) == 2
    link.close()


@pytest.mark.parametrize(
    "status",
    [
        {"modem": "disconnected"},
        {"daemon": "stopped"},
        {"pid": 999_999},  # the status says running, but its process is gone (kill -9)
    ],
)
def test_no_heartbeat_while_the_unit_is_not_screening(
    tmp_path: Path, pings: Pings, status: dict[str, Any]
) -> None:
    clocks = Clocks()
    link, state = make_link(tmp_path, clocks, heartbeat_url=pings.url)
    well(state, **status)
    link.step()
    wait_heartbeat(link)
    assert pings.paths == []  # silence: the carer's check raises the alarm
    well(state)
    clocks.mono += 301
    link.step()
    wait_heartbeat(link)
    assert pings.paths == ["/ping/abc"]
    link.close()


def test_a_heartbeat_that_cannot_get_through_is_logged_not_raised(
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert not ping("http://127.0.0.1:9/nothing-listens")
    assert "heartbeat ping did not get through" in caplog.text


def test_an_event_is_in_the_outbox_before_it_is_sent_and_sent_once(
    tmp_path: Path, http_receiver: Any
) -> None:
    clocks = Clocks()
    link, state = make_link(tmp_path, clocks, urls=[http_receiver.url])
    well(state)
    link.step()  # the first look: where the log is
    CallLog(tmp_path / "state").append(
        {
            "started": NOW.isoformat(),
            "number": "+441632960999",
            "display": "01632 960999",
            "verdict": "blocked",
            "rule": "protect",
            "impersonation": True,
            "reason": "Blocked: pretending.",
        }
    )
    http_receiver.down()
    link.step()
    [alert] = link.outbox.alerts()
    assert alert.kind == "impersonation" and alert.state == "pending"
    assert alert.deliveries[0].attempts == 1 and http_receiver.messages == []
    http_receiver.up()
    clocks.wall.now += dt.timedelta(seconds=31)  # its back-off is over
    link.step()
    link.step()
    assert [m.title for m in http_receiver.messages] == [alert.title]
    assert link.outbox.alerts()[0].state == "delivered"
    link.close()


def test_a_changed_config_is_followed(tmp_path: Path) -> None:
    clocks = Clocks()
    link, state = make_link(tmp_path, clocks, resident="Mum")
    well(state)
    link.step()
    write_config(
        tmp_path / "callguard.toml",
        {"storage": {"dir": str(tmp_path / "state")}, "alerts": {"resident": "Dad"}},
    )
    clocks.mono += 6
    link.step()
    assert link.config.alerts.resident == "Dad"
    write_config(tmp_path / "callguard.toml", {"alerts": {"repeated_calls": "lots"}})
    clocks.mono += 6
    link.step()  # a bad config is logged; the old one stays
    assert link.config.alerts.resident == "Dad"
    link.close()


def test_the_screening_daemon_never_loads_the_links_libraries() -> None:
    """apprise, paho-mqtt and cryptography live in callguard link's process only."""
    import subprocess
    import sys

    code = (
        "import sys, callguard.daemon.app, callguard.cli.unit; "
        "print([m for m in sys.modules if m.split('.')[0] in "
        "('apprise', 'paho', 'cryptography', 'requests') or m.startswith('callguard.link')])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
