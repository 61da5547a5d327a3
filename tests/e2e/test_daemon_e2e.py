"""End to end: `callguard run` as a subprocess against the simulated modem over a real pty."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import ConfigData, DaemonUnit, merged, wait_for

from callguard.sim import Call

pytestmark = pytest.mark.e2e

SCALE = 0.5  # UK: caller ID, 0.25 s, then a RING every 1.5 s; a call is over 4 s after its last


class Unit(DaemonUnit):
    def __init__(self, tmp: Path, extra: ConfigData | None = None) -> None:
        super().__init__(tmp, merged({"warning": {"room_command": ""}}, extra), scale=SCALE)


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
    # line sensing is on by default (auto: the simulated Conexant answers AT-TRV), so an
    # unanswered call is known to be unanswered
    assert logged["answered"] is False and logged["duration_s"] is None
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


def calls_at_least(unit: Unit, n: int) -> None:
    """For a test of what calls leave behind: the tests before it on this unit placed calls,
    but not when run alone or on another xdist worker; then blocked ones (the quickest)."""
    while len(unit.store.calls()) < n:
        unit.call(Call(number="01134960000", rings=3))


def test_caller_id_is_asserted_again_after_every_call(unit: Unit) -> None:
    # the simulated Conexant forgets +VCID after ATZ and voice; the daemon re-asserts after calls
    calls_at_least(unit, 2)
    assert unit.sim.vcid
    commands = [c for _, c in unit.sim.commands]
    assert commands.count("AT+VCID=1") >= 3


def test_log_text_and_limit(unit: Unit) -> None:
    calls_at_least(unit, 3)  # more than the limit
    result = unit.cli("log", "--limit", "2")
    assert result.returncode == 0 and len(result.stdout.strip().splitlines()) == 2
    bad = unit.cli("log", "--limit", "zero")
    assert bad.returncode == 2 and "'zero'" in bad.stderr


def test_sigterm_mid_seize_exits_0_with_the_line_on_hook(tmp_path: Path) -> None:
    u = Unit(tmp_path, {"block": {"hold_s": 10.0}})
    assert u.cli("block", "add", "0113 496 0000").returncode == 0
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
