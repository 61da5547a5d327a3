"""The status board: what `callguard status --json` shows, from the parts that own it."""

from __future__ import annotations

import datetime as dt

from helpers import live

from callguard.core.call import LineState
from callguard.core.numbers import Category
from callguard.core.record import CallRecord
from callguard.core.screening import Action
from callguard.daemon.status import StatusBoard
from callguard.version import version_info

T0 = dt.datetime(2026, 11, 24, 9, 30, tzinfo=dt.UTC)


def record(verdict: Action, impersonation: bool = False) -> CallRecord:
    return CallRecord(
        call_id=1,
        started=T0,
        ended=T0,
        number="+441134960000",
        display="0113 496 0000",
        category=Category.LANDLINE,
        name=None,
        verdict=verdict,
        rule="block",
        reason="Blocked.",
        answered=False,
        duration_s=None,
        rings=0,
        caller_id=True,
        impersonation=impersonation,
        grooming_alert=False,
        name_claim=False,
        notes=(),
    )


def test_the_snapshot_says_which_code_the_unit_runs() -> None:
    snap = StatusBoard(lambda: T0, "/dev/ttyACM0").snapshot("running", live())
    info = version_info()
    assert snap["version"] == info["version"] and snap["lock_digest"] == info["lock_digest"]
    assert str(snap["lock_digest"]).startswith("sha256:")


def test_counts_follow_the_logged_calls_and_the_last_call_is_shown() -> None:
    board = StatusBoard(lambda: T0, "/dev/ttyACM0")
    board.call_logged(record(Action.BLOCK, impersonation=True))
    board.call_logged(record(Action.WARN))
    board.call_logged(record(Action.ALLOW))
    snap = board.snapshot("running", live())
    assert snap["counts_since_start"] == {
        "calls": 3,
        "blocked": 1,
        "warned": 1,
        "impersonations": 1,
    }
    assert snap["last_call"]["verdict"] == "allowed"


def test_a_held_line_is_said_in_systemds_status_line() -> None:
    board = StatusBoard(lambda: T0, "/dev/ttyACM0")
    text = board.line_text(live(line=LineState.IN_CALL, off_hook=True, on_hook_failures=2))
    assert text.startswith("in-call; LINE HELD OFF-HOOK")
    assert "HELD" not in board.line_text(live())
