"""End to end: `callguard run` as a subprocess against the simulated modem over a real pty."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import wait_for

from callguard.sim import Call, CallRecord, SimModem

pytestmark = pytest.mark.e2e

SCALE = 0.5  # UK: caller ID, 0.25 s, then a RING every 1.5 s


class Unit:
    """A running daemon, its simulated modem, and the CLI pointed at the same config."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.sim = SimModem(identity="conexant", link_path=str(tmp / "modem"), time_scale=SCALE)
        self.config = tmp / "callguard.toml"
        self.config.write_text(
            f'[modem]\nport = "{tmp / "modem"}"\n'
            f'[storage]\ndir = "{tmp / "state"}"\n'
            '[warning]\nroom_command = ""\n'
        )
        self.proc: subprocess.Popen[str] | None = None

    def cli(self, *argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "callguard", "--config", str(self.config), *argv],
            capture_output=True,
            text=True,
            timeout=60,
        )

    def start(self) -> None:
        self.sim.start()
        self.stderr = open(self.tmp / "daemon.log", "w")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "callguard", "--config", str(self.config), "run"],
            stdout=subprocess.DEVNULL,
            stderr=self.stderr,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        wait_for(lambda: self.status().get("modem") == "connected", 20, "the daemon to connect")

    def status(self) -> dict[str, Any]:
        result = self.cli("status", "--json")
        return json.loads(result.stdout) if result.returncode == 0 and result.stdout else {}

    def calls(self) -> list[dict[str, Any]]:
        return json.loads(self.cli("log", "--json").stdout)

    def call(self, call: Call) -> tuple[CallRecord, dict[str, Any]]:
        before = len(self.calls())
        record = self.sim.place_call(call).wait(60)
        logged = wait_for(lambda: self.calls()[before:], 30, "the call to be logged")
        return record, logged[-1]

    def log_text(self) -> str:
        return (self.tmp / "daemon.log").read_text()

    def stop(self) -> int | None:
        code = None
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            code = self.proc.wait(20)
        elif self.proc is not None:
            code = self.proc.returncode
        self.sim.stop()
        self.stderr.close()
        return code


@pytest.fixture(scope="module")
def unit(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Unit]:
    u = Unit(tmp_path_factory.mktemp("unit"))
    assert u.cli("allow", "add", "01707 354000", "--name", "Sue (daughter)").returncode == 0
    assert (
        u.cli(
            "block", "add", "0113 496 0000", "--name", "rang pretending to be the bank"
        ).returncode
        == 0
    )
    u.start()
    yield u
    u.stop()


def test_status_while_running(unit: Unit) -> None:
    status = unit.status()
    assert status["daemon"] == "running" and status["modem"] == "connected"
    assert status["line"] == "idle" and status["grooming_alert"] is False
    assert status["lists"]["allow"] == 1


def test_allowed_caller_rings_through_untouched(unit: Unit) -> None:
    record, logged = unit.call(Call(number="01707354000", rings=2))
    assert record.seized_at is None and record.outcome == "unanswered" and len(record.rings) == 2
    assert logged["verdict"] == "allowed" and logged["number"] == "+441707354000"
    assert logged["name"] == "Sue (daughter)" and "allow list" in logged["reason"]
    assert logged["answered"] is None and logged["duration_s"] is None
    assert logged["category"] == "landline" and logged["started"][10] == "T"


def test_blocked_uk_caller_is_seized_before_the_first_ring(unit: Unit) -> None:
    record, logged = unit.call(Call(number="01134960000", rings=3))
    assert record.outcome == "seized" and record.rings == []
    assert record.seized_at is not None and record.cid_sent_at is not None
    assert record.released_at is not None and record.released_at > record.seized_at
    assert logged["verdict"] == "blocked" and "rang pretending to be the bank" in logged["reason"]
    assert logged["answered"] is False
    assert not unit.sim.off_hook


def test_blocked_us_caller_is_seized_before_the_second_ring(unit: Unit) -> None:
    record, logged = unit.call(Call(number="01134960000", style="us", rings=3))
    assert record.outcome == "seized" and len(record.rings) == 1
    assert logged["verdict"] == "blocked" and logged["rings"] == 1


@pytest.mark.parametrize(("number", "category"), [("02079460123", "landline"), ("P", "withheld")])
def test_unknown_and_withheld_callers_are_warned_not_blocked(
    unit: Unit, number: str, category: str
) -> None:
    record, logged = unit.call(Call(number=number, rings=2))
    assert record.seized_at is None
    assert logged["verdict"] == "warned" and logged["category"] == category
    assert logged["reason"].startswith("Warned")


def test_number_blocked_while_running_takes_effect_on_the_next_call(unit: Unit) -> None:
    result = unit.cli("block", "add", "020 7946 0999", "--name", "courier scam")
    assert result.returncode == 0, result.stderr
    record, logged = unit.call(Call(number="02079460999", rings=2))
    assert record.outcome == "seized" and logged["verdict"] == "blocked"
    assert "courier scam" in logged["reason"]


def test_caller_id_is_asserted_again_after_every_call(unit: Unit) -> None:
    # the simulated Conexant forgets +VCID after ATZ and voice; the daemon re-asserts after calls
    assert unit.sim.vcid
    commands = [c for _, c in unit.sim.commands]
    assert commands.count("AT+VCID=1") >= 3


def test_log_text_and_limit(unit: Unit) -> None:
    result = unit.cli("log", "--limit", "2")
    assert result.returncode == 0 and len(result.stdout.strip().splitlines()) == 2
    bad = unit.cli("log", "--limit", "zero")
    assert bad.returncode == 2 and "'zero'" in bad.stderr


def test_sigterm_mid_seize_exits_0_with_the_line_on_hook(tmp_path: Path) -> None:
    u = Unit(tmp_path)
    assert u.cli("block", "add", "0113 496 0000").returncode == 0
    u.config.write_text(u.config.read_text() + "[block]\nhold_s = 10.0\n")
    u.start()
    try:
        u.sim.place_call(Call(number="01134960000", rings=3))
        wait_for(lambda: u.sim.off_hook, 10, "the line to be seized")
        assert u.proc is not None
        u.proc.send_signal(signal.SIGTERM)
        code = u.proc.wait(20)
        on_hook_after_exit = not u.sim.off_hook
    finally:
        u.stop()
    assert code == 0
    assert on_hook_after_exit  # released well before the 10 s hold was up
    assert "CallGuard stopping" in u.log_text()
