"""A busy line (issue 13): nothing on the seize path waits for a disk, a reload or a flood.
The real daemon (in-process) on the simulated line; the assertions are "before the first ring",
not milliseconds."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from helpers import Running, wait_for, warned_call

from callguard.cli import main
from callguard.core.lists import target_for
from callguard.modem.protocol import CallerId, DleCode, DleMeaning
from callguard.sim import Call
from callguard.store.lists import Store

pytestmark = pytest.mark.e2e

SCAM = "01134960000"


class Running(Running):  # type: ignore[no-redef]
    """The simulated line at the UK's real minimum: the first ring 200 ms after the caller ID
    (BT SIN 227), where the other end-to-end tests speed the line up further."""

    SCALE = 0.4


def block_scam(tmp: Path) -> Store:
    store = Store(tmp / "state")
    store.add("block", target_for(SCAM, "GB"), name="scam")
    return store


def test_a_redial_at_once_is_seized_before_the_first_ring_eight_times(tmp_path: Path) -> None:
    block_scam(tmp_path)
    with Running(tmp_path, {"block": {"hold_s": 0.5}}) as r:
        for _ in range(8):
            record = r.sim.place_call(Call(number=SCAM, rings=3)).wait(30)
            assert record.outcome == "seized" and record.rings == []


def test_a_blocked_caller_just_after_a_list_edit_is_seized_before_the_first_ring(
    tmp_path: Path,
) -> None:
    store = block_scam(tmp_path)
    for i in range(500):  # a list big enough that rebuilding the index takes a moment
        store.add("block", target_for(f"0161 496 {i:04d}", "GB"), name=f"n{i}")
    with Running(tmp_path) as r:
        for i in range(4):
            store.add("allow", target_for(f"01707 35400{i}", "GB"), name="family")
            record = r.sim.place_call(Call(number=SCAM, rings=3)).wait(30)
            assert record.outcome == "seized" and record.rings == []


def test_a_flood_of_line_codes_does_not_delay_a_seizure(tmp_path: Path) -> None:
    block_scam(tmp_path)
    with Running(tmp_path) as r:
        for _ in range(100_000):  # what a noisy line in voice mode can send
            r.daemon._line_event(DleCode("b", DleMeaning.BUSY))
        record = r.sim.place_call(Call(number=SCAM, rings=3)).wait(30)
        assert record.outcome == "seized" and record.rings == []


def test_a_call_cut_short_by_a_kill_is_logged_at_the_next_start(tmp_path: Path) -> None:
    store = block_scam(tmp_path)
    # what a daemon killed mid-call leaves: its status says running, with the call on
    call = warned_call(call_id=3, answered=True, rings=1)
    store.write_status(
        {"daemon": "running", "updated": "2026-11-25T10:05:00+00:00", "current_call": call}
    )
    with Running(tmp_path):
        logged = wait_for(store.calls, 10, "the call cut short in the log")
    assert logged[0]["number"] == "+442079460123" and logged[0]["ended"].startswith(
        "2026-11-25T10:05"
    )
    assert any("restarted during this call" in n for n in logged[0]["notes"])


def test_the_live_status_is_kept_on_tmpfs_where_there_is_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    run.mkdir()
    with Running(tmp_path, {"storage": {"runtime_dir": str(run)}}) as r:
        wait_for(lambda: (run / "status.json").exists(), 5, "the status on tmpfs")
        assert not (tmp_path / "state" / "status.json").exists()
        capsys.readouterr()
        assert main(["--config", str(r.config_path), "status", "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["daemon"] == "running"


def test_a_redial_with_a_year_of_calls_in_the_log_is_seized_before_the_first_ring(
    tmp_path: Path,
) -> None:
    store = block_scam(tmp_path)
    # a year of a busy line in today's format; the first use of the log migrates it to SQLite
    record = {
        "started": "2026-01-05T09:30:00+00:00",
        "number": "+442079460123",
        "verdict": "warned",
        "reason": "Warned.",
        "category": "landline",
        "notes": [],
    }
    calls = {str(i): {**record, "call_id": i} for i in range(1, 50_001)}
    (tmp_path / "state" / "calls.json").write_text(json.dumps({"calls": calls}))
    with Running(tmp_path, {"block": {"hold_s": 0.5}}) as r:
        for _ in range(4):
            seized = r.sim.place_call(Call(number=SCAM, rings=3)).wait(30)
            assert seized.outcome == "seized" and seized.rings == []
        wait_for(lambda: len(store.calls()) >= 50_004, 20, "the new calls after the year's")


def test_a_flood_of_caller_ids_builds_no_backlog_in_front_of_a_real_caller(tmp_path: Path) -> None:
    """A faulty line repeating a caller ID every 10 ms: each is screened (none dropped), and a
    real blocked caller after the flood is still seized before the first ring."""
    block_scam(tmp_path)
    with Running(tmp_path) as r:
        for i in range(300):
            number = f"0207946{i:04d}"
            r.daemon._line_event(CallerId(number, None, number, burst=10_000 + i))
            time.sleep(0.01)  # the flood's own pace, not a wait for the daemon
        record = r.sim.place_call(Call(number=SCAM, rings=3)).wait(30)
        assert record.outcome == "seized" and record.rings == []
        screened = [o for o in r.seen if o.kind == "screened"]
        assert len(screened) >= 301  # every caller ID of the flood was screened
