"""The events the family hears about, found in the store by callguard link's watcher (a set
clock, the real call log and state files, marks in a dict)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from helpers import SetClock, warned_call

from callguard.config import from_dict
from callguard.link.events import Message, Watcher, cleared_how, weekly_summary
from callguard.store.calllog import CallLog
from callguard.store.state import StateFiles

UTC = dt.UTC
MONDAY = dt.datetime(2026, 12, 7, 10, 0, tzinfo=UTC)


class DictMarks(dict[str, str]):
    def get_mark(self, name: str) -> str | None:
        return self.get(name)

    def set_mark(self, name: str, value: str) -> None:
        self[name] = value


class Unit:
    """A storage folder, a watcher on it, and a clock."""

    def __init__(self, tmp: Path, **alerts: Any) -> None:
        self.clock = SetClock(MONDAY)
        self.config = from_dict(
            {"storage": {"dir": str(tmp)}, "alerts": {"resident": "Mum", **alerts}}
        )
        self.state = StateFiles(tmp, clock=self.clock)
        self.log = CallLog(tmp, clock=self.clock)
        self.marks = DictMarks()
        self.pids = {4242}
        self.watcher = Watcher(
            self.config,
            self.state,
            self.log,
            self.marks,
            clock=self.clock,
            alive=lambda pid: pid in self.pids,
        )
        self.status()  # screening runs, with its modem
        self.watcher.poll()  # the first look: where the log is, no history told

    def call(self, minutes_ago: float = 0, **fields: Any) -> dict[str, Any]:
        started = self.clock.now - dt.timedelta(minutes=minutes_ago)
        call = warned_call(
            call_id=len(self.log.read()) + 1,
            started=started.isoformat(timespec="seconds"),
            **fields,
        )
        self.log.append(call)
        return call

    def later(self, **delta: float) -> None:
        self.clock.now += dt.timedelta(**delta)

    def status(self, **fields: Any) -> None:
        self.state.write_status({"daemon": "running", "pid": 4242, "modem": "connected", **fields})

    def kinds(self) -> list[str]:
        return [m.kind for m in self.watcher.poll()]


@pytest.fixture
def unit(tmp_path: Path) -> Unit:
    return Unit(tmp_path)


def test_history_before_the_first_start_is_not_told(tmp_path: Path) -> None:
    log = CallLog(tmp_path)
    for _ in range(5):
        log.append(
            {"started": MONDAY.isoformat(), "number": "+441632960999", "verdict": "blocked"}
            | {"impersonation": True, "category": "landline", "reason": "x"}
        )
    assert Unit(tmp_path).kinds() == []


def test_a_blocked_impersonation_is_told_once_with_what_to_do(unit: Unit) -> None:
    unit.status()
    unit.call(
        number="+443069990123",
        display="0306 999 0123",
        verdict="blocked",
        rule="protect",
        impersonation=True,
        reason="Blocked: the call showed 0306 999 0123 ('Drama Bank plc'), a number that "
        "never calls out, so the caller was pretending.",
    )
    [message] = unit.watcher.poll()
    assert message.kind == "impersonation"
    assert "0306 999 0123" in message.body and "Drama Bank plc" in message.body
    assert "159" in message.body and "Ring Mum" in message.body
    assert unit.watcher.poll() == []  # the log is followed, not read again


def test_an_ordinary_blocked_call_is_not_an_impersonation(unit: Unit) -> None:
    unit.call(verdict="blocked", rule="block")
    assert unit.kinds() == []


def test_three_calls_in_an_hour_from_one_unknown_number_are_told_once(unit: Unit) -> None:
    unit.call(minutes_ago=50)
    unit.call(minutes_ago=20)
    assert unit.kinds() == []
    unit.call()
    [message] = unit.watcher.poll()
    assert message.kind == "repeated-calls"
    assert "020 7946 0123" in message.title and "3 times" in message.title
    assert "callguard block add +442079460123" in message.body
    unit.call()  # the fourth: already told
    assert unit.kinds() == []


def test_calls_spread_over_more_than_an_hour_are_not_repeated_calls(unit: Unit) -> None:
    unit.call(minutes_ago=70)
    unit.call(minutes_ago=30)
    unit.call()
    assert unit.kinds() == []


def test_allowed_callers_may_ring_as_often_as_they_like(unit: Unit) -> None:
    for minutes in (30, 20, 10, 0):
        unit.call(minutes_ago=minutes, verdict="allowed", rule="allow")
    assert unit.kinds() == []


def test_the_count_is_a_setting_and_zero_is_never(tmp_path: Path) -> None:
    unit = Unit(tmp_path, repeated_calls=0)
    for minutes in (3, 2, 1, 0):
        unit.call(minutes_ago=minutes)
    assert unit.kinds() == []


def test_the_grooming_alert_each_call_and_who_cleared_it(unit: Unit) -> None:
    call = unit.call(answered=True, duration_s=None)
    unit.later(minutes=16)
    unit.state.raise_alert(call)
    [message] = unit.watcher.poll()
    assert message.kind == "grooming"
    assert "020 7946 0123" in message.body and "16 min" in message.body
    assert "ring Mum" in message.body
    assert unit.watcher.poll()[0].key == message.key  # the same key: queued once
    unit.later(minutes=2)
    unit.state.ack_alert(by="Sarah")
    [cleared] = unit.watcher.poll()
    assert cleared.kind == "cleared"
    assert cleared.title.endswith("cleared by Sarah at 10:18")
    assert unit.watcher.poll()[0].key == cleared.key


def test_no_grooming_messages_when_switched_off(tmp_path: Path) -> None:
    unit = Unit(tmp_path, grooming=False)
    unit.state.raise_alert(unit.call(answered=True))
    assert unit.kinds() == []


def test_the_modem_missing_for_the_threshold_and_back(unit: Unit) -> None:
    unit.status(modem="disconnected")
    assert unit.kinds() == []
    unit.later(minutes=9)
    assert unit.kinds() == []
    unit.later(minutes=2)
    [missing] = unit.watcher.poll()
    assert missing.kind == "modem-missing" and "11 min" in missing.body
    unit.later(minutes=5)
    assert unit.kinds() == []  # told once
    unit.status(modem="connected")
    [back] = unit.watcher.poll()
    assert back.kind == "modem-back" and "16 min" in back.body
    assert unit.kinds() == []


def test_a_short_blip_is_not_told(unit: Unit) -> None:
    unit.status(modem="disconnected")
    unit.kinds()
    unit.later(minutes=2)
    unit.status(modem="connected")
    assert unit.kinds() == []
    unit.status(modem="disconnected")
    unit.kinds()
    unit.later(minutes=9)
    assert unit.kinds() == []  # the threshold counts from the new start


def test_screening_stopped_when_the_daemon_died(unit: Unit) -> None:
    unit.status()
    unit.kinds()
    unit.pids.clear()  # killed: the status still says running
    unit.kinds()
    unit.later(minutes=10)
    assert unit.kinds() == ["screening-stopped"]
    unit.pids.add(4242)
    assert unit.kinds() == ["screening-back"]


def test_the_weekly_summary_on_its_day_once(unit: Unit) -> None:
    unit.clock.now = dt.datetime(2026, 12, 13, 17, 0, tzinfo=UTC)  # Sunday, before 18:00
    unit.call(minutes_ago=60 * 24, verdict="blocked", rule="block")
    unit.call(minutes_ago=60 * 24 * 2, answered=True, duration_s=1265)
    unit.watcher.poll()
    assert unit.kinds() == []
    unit.later(hours=1, minutes=1)
    [summary] = unit.watcher.poll()
    assert summary.kind == "weekly-summary"
    assert "2 calls" in summary.body and "21 min 5 s" in summary.body
    assert unit.kinds() == []


def test_a_weekly_summary_more_than_a_day_late_waits_for_next_week(unit: Unit) -> None:
    unit.clock.now = dt.datetime(2026, 12, 15, 9, 0, tzinfo=UTC)  # Tuesday: Sunday's is late
    assert unit.kinds() == []


def test_the_weekly_summary_text() -> None:
    start = dt.datetime(2026, 11, 29, 18, 0, tzinfo=UTC)
    end = start + dt.timedelta(days=7)
    calls = [
        {"verdict": "allowed", "rule": "allow", "display": "01707 354000", "name": "Sue"},
        {"verdict": "warned", "started": "2026-12-01T11:02:00+00:00", "display": "020 7946 0123"}
        | {"answered": True, "duration_s": 1265},
        {"verdict": "blocked", "rule": "protect", "impersonation": True, "display": "159"},
        {"verdict": "blocked", "rule": "block", "display": "0113 496 0000", "name": "scam"},
        {"verdict": "blocked", "rule": "block", "display": "0113 496 0000", "name": "scam"},
    ]
    text = weekly_summary(calls, "Mum", start, end)
    assert text.startswith("Sun 29 Nov to Sun 6 Dec: 5 calls to Mum's phone.")
    assert "1 from people on the allow list, 1 from unknown callers (warned), 3 blocked" in text
    assert "Tue 11:02  020 7946 0123, 21 min 5 s" in text
    assert "0113 496 0000 ('scam'): 2 calls" in text
    assert "1 of the blocked calls pretended" in text


def test_one_failing_source_does_not_silence_the_others(unit: Unit) -> None:
    def broken() -> list[Message]:
        raise OSError("the card is unreadable")

    unit.watcher._grooming = broken  # type: ignore[method-assign]
    unit.call(verdict="blocked", rule="protect", impersonation=True)
    assert unit.kinds() == ["impersonation"]


def test_a_dead_line_for_the_threshold_and_back(unit: Unit) -> None:
    unit.status(line_voltage={"volts": 0.2, "dead": True, "since": None, "checked": None})
    assert unit.kinds() == []
    unit.later(minutes=10)
    [dead] = unit.watcher.poll()
    assert dead.kind == "line-dead" and "Digital Voice" in dead.body
    unit.status(line_voltage={"volts": 48.1, "dead": False, "since": None, "checked": None})
    assert unit.kinds() == ["line-back"]
    unit.status(line_voltage={"volts": None, "dead": None, "since": None, "checked": None})
    unit.later(minutes=30)
    assert unit.kinds() == []  # a modem that cannot tell says nothing


@pytest.mark.parametrize(
    ("by", "words"),
    [
        ("Sarah", "by Sarah"),
        ("the button", "with the button on the unit"),
        ("family page (192.168.1.20)", "on the family page"),
        ("the fleet (MQTT)", "from the volunteers' dashboard"),
        ("", "by someone"),
    ],
)
def test_who_or_what_cleared_the_alert(by: str, words: str) -> None:
    assert cleared_how(by) == words
