"""What a call leaves behind waits until the line has settled (issue 13: seize latency).

The next caller ID is likeliest just after a call (a blocked caller redials at once), so the
status snapshot, the call's record for the writer and re-asserting caller ID are done a moment
later, and the re-assertion gives way to a call that comes in. The daemon is built, not run:
its clock is injected and its housekeeping called by hand.
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import Any

import pytest
from helpers import Running

from callguard.config import from_dict
from callguard.core.call import LineState
from callguard.core.numbers import Category
from callguard.core.record import CallRecord
from callguard.core.screening import Action
from callguard.daemon import app
from callguard.daemon.actions import SETTLE_S
from callguard.daemon.app import Daemon

T0 = dt.datetime(2026, 3, 2, 10, 0, tzinfo=dt.UTC)


class Modem:
    """The transport as the after-call work sees it: a count of calls coming in."""

    def __init__(self) -> None:
        self.line_events = 0
        self.asked: list[int | None] = []

    def after_call(self, *, step_aside_after: int | None = None) -> bool:
        self.asked.append(step_aside_after)
        return True


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def record(call_id: int = 1) -> CallRecord:
    return CallRecord(
        call_id=call_id,
        started=T0,
        ended=T0,
        number="+441134960000",
        display="0113 496 0000",
        category=Category.LANDLINE,
        name="scam",
        verdict=Action.BLOCK,
        rule="block",
        reason="Blocked: on the block list.",
        answered=False,
        duration_s=None,
        rings=0,
        caller_id=True,
        impersonation=False,
        grooming_alert=False,
        name_claim=False,
        notes=(),
    )


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def daemon(tmp_path: Path, clock: Clock) -> Daemon:
    config = from_dict({"storage": {"dir": str(tmp_path / "state")}})
    daemon = Daemon(config, monotonic=clock)
    daemon._write_status()  # the first status, as run() writes it
    return daemon


@pytest.fixture
def modem(daemon: Daemon) -> Modem:
    modem = Modem()
    daemon.actions.transport = modem  # type: ignore[assignment]
    return modem


def run_after_call(daemon: Daemon) -> None:
    """Housekeeping, then wait for an after-call worker it started (it only asks the fake)."""
    daemon._housekeeping()
    worker = daemon.actions.after_call_thread
    if worker is not None:
        worker.join(5)


def test_caller_id_is_asserted_again_once_the_line_has_been_idle_a_moment(
    daemon: Daemon, modem: Modem, clock: Clock
) -> None:
    daemon.actions.after_call()
    run_after_call(daemon)
    assert modem.asked == []  # not just when the next caller ID is likeliest
    assert daemon._wait_s() == pytest.approx(SETTLE_S)  # the loop wakes for it
    clock.t += SETTLE_S
    modem.line_events = 7
    run_after_call(daemon)
    # it gives way to any call that comes in from now on
    assert modem.asked == [7] and daemon.actions.after_call_due is None


def test_a_call_in_progress_puts_the_after_call_off_until_its_own_end(
    daemon: Daemon, modem: Modem, clock: Clock
) -> None:
    actions = daemon.actions
    actions.after_call()
    clock.t += SETTLE_S
    for line in (LineState.RINGING, LineState.IN_CALL):
        assert actions.after_call_at(line) is None  # the loop does not spin on it
        actions.after_call_if_due(clock.t, line)
    assert modem.asked == []
    actions.after_call()  # that call's end
    due = clock.t + SETTLE_S
    assert actions.after_call_at(LineState.IDLE) == pytest.approx(due)
    actions.after_call_if_due(due - 0.01, LineState.IDLE)
    assert modem.asked == []
    actions.after_call_if_due(due, LineState.IDLE)
    assert actions.after_call_thread is not None
    actions.after_call_thread.join(5)
    assert modem.asked == [0]


def test_no_after_call_while_the_line_is_held_or_after_a_reinitialisation(
    daemon: Daemon, modem: Modem, clock: Clock
) -> None:
    actions = daemon.actions
    actions.after_call()
    clock.t += SETTLE_S
    actions.off_hook = True  # an unconfirmed release is being retried: the modem is busy
    actions.after_call_if_due(clock.t, LineState.IDLE)
    assert modem.asked == [] and actions.after_call_at(LineState.IDLE) is None
    actions.off_hook = False
    actions.caller_id_asserted()  # the modem was re-initialised, which turns caller ID on
    actions.after_call_if_due(clock.t, LineState.IDLE)
    assert modem.asked == [] and actions.after_call_at(LineState.IDLE) is None


def test_a_calls_record_reaches_the_writer_a_moment_after_the_call(
    daemon: Daemon, clock: Clock
) -> None:
    daemon.actions.log_call(record())
    assert daemon.writer.unlogged == 0  # not yet handed over
    assert daemon.status()["unlogged_calls"] == 1  # but counted as not on the card
    assert daemon.status()["counts_since_start"]["blocked"] == 1
    due = clock.t + SETTLE_S
    clock.t = due - 0.01
    daemon._housekeeping()
    assert daemon.writer.unlogged == 0
    clock.t = due
    daemon._housekeeping()
    assert daemon.writer.unlogged == 1 and daemon.actions.waiting_records == 0


def test_stopping_hands_every_waiting_record_over(daemon: Daemon) -> None:
    daemon.actions.log_call(record(1))
    daemon.actions.log_call(record(2))
    daemon.actions.hand_over()
    assert daemon.writer.unlogged == 2 and daemon.actions.records_due is None


def test_the_status_is_handed_to_the_writer_a_moment_after_a_change(
    daemon: Daemon, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    written: list[dict[str, Any]] = []
    monkeypatch.setattr(daemon.writer, "status", written.append)
    daemon.board.changed()
    daemon._housekeeping()
    assert written == [] and daemon._wait_s() == pytest.approx(SETTLE_S)
    due = clock.t + SETTLE_S
    clock.t = due - 0.01
    daemon.board.changed()  # a later change rides along; it does not put it off
    daemon._housekeeping()
    assert written == []
    clock.t = due
    daemon._housekeeping()
    assert len(written) == 1 and not daemon.board.dirty
    daemon._housekeeping()
    assert len(written) == 1


def test_the_daemon_switches_threads_often_while_it_runs(tmp_path: Path) -> None:
    before = sys.getswitchinterval()
    with Running(tmp_path):
        assert sys.getswitchinterval() == pytest.approx(app.SWITCH_INTERVAL_S)
    assert sys.getswitchinterval() == pytest.approx(before)
