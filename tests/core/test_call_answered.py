"""Answered calls in the call machine (issue 14, items 1 and 3), table-driven: every phase and
input that can lead to an answered call, whether it is watched for grooming and what the log
says; and how long a call lasted when CallGuard itself held the line. The clock is injected
(:class:`Moment`, its monotonic reading apart from the wall clock's): no threads, no sleeps."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import pytest

from callguard.core.call import (
    HELD_LINE_GRACE_S,
    CallAction,
    CallMachine,
    GroomingAlert,
    LineHeld,
    LineState,
    LogCall,
    Moment,
    Release,
    Screened,
    Seize,
    SpeakOnLine,
    Timing,
)
from callguard.core.numbers import Caller
from callguard.core.screening import Action, Verdict
from callguard.modem.protocol import Absence, CallerId

T0 = dt.datetime(2026, 11, 24, 9, 30, tzinfo=dt.UTC)
MONO0 = 5000.0  # the monotonic clock reads nothing like the wall clock's timestamp
GROOMING_MINUTES = 1.0
CID_WAIT_S = 5.0

UNKNOWN = "02079460000"
ALLOWED = "01707354000"  # on the allow list
BLOCKED = "01134960000"  # on the block list
SPOOFED = "01632960999"  # on the protect list: a number that never calls out
OPEN = "07700900123"  # on no list; a category setting lets it ring unwarned


def at(seconds: float) -> Moment:
    return Moment(MONO0 + seconds, T0 + dt.timedelta(seconds=seconds))


def screen(caller: Caller, now: dt.datetime, name: str | None = None) -> Verdict:
    decided: dict[str | None, tuple[Action, str, str, str | None]] = {
        "+441707354000": (Action.ALLOW, "Allowed: on the allow list as 'Sue'.", "allow", "Sue"),
        "+441134960000": (Action.BLOCK, "Blocked: on the block list as 'scam'.", "block", None),
        "+441632960999": (
            Action.BLOCK,
            "Blocked: the call showed 01632 960999 ('Bank'), a number that never calls out.",
            "protect",
            "Bank",
        ),
        "+447700900123": (Action.ALLOW, "Allowed: a mobile.", "category:mobile", None),
        None: (
            Action.WARN,
            "Warned: the caller's number was not available.",
            "category:unavailable",
            None,
        ),
    }
    action, reason, rule, who = decided.get(
        caller.key, (Action.WARN, "Warned: not on any list.", "mode:guarded", None)
    )
    return Verdict(action, reason, caller.category, rule, None, who)


def cid(number: str | None, burst: int = 1, absence: Absence | None = None) -> CallerId:
    return CallerId(number=number, absence=absence, raw_number=number or "P", burst=burst)


def machine(**kw: Any) -> CallMachine:
    options: dict[str, Any] = {
        "line_sensing": True,
        "line_warning": True,
        "grooming_minutes": GROOMING_MINUTES,
    }
    return CallMachine(
        screen,
        timing=Timing(cid_wait_s=CID_WAIT_S, ring_gap_s=8, hold_s=1.5),
        **{**options, **kw},
    )


def kinds(actions: list[CallAction]) -> list[type]:
    return [type(a) for a in actions]


def records(actions: list[CallAction]) -> list[dict[str, Any]]:
    return [a.record.to_json() for a in actions if isinstance(a, LogCall)]


Step = tuple[float, str, Any]
"""(seconds, input, argument): "cid" (a CallerId), "ring", "off", "tick", and "off-dated"
(a lift that line sensing confirms at the step's time but that began at the argument's)."""


def play(m: CallMachine, steps: list[Step]) -> list[CallAction]:
    """Feed ``steps``, ticking at every deadline that falls before the next, as the daemon
    sleeps until :meth:`CallMachine.next_deadline`."""
    actions: list[CallAction] = []
    for seconds, kind, arg in steps:
        actions += run_until(m, seconds)
        now = at(seconds)
        if kind == "cid":
            actions += m.caller_id(arg, now)
        elif kind == "ring":
            actions += m.ring(now)
        elif kind == "off":
            actions += m.line_off_hook(now)
        elif kind == "off-dated":  # the lift began earlier; sensing confirms it now
            actions += m.line_off_hook(at(arg))
        actions += m.tick(now)
    return actions


def run_until(m: CallMachine, seconds: float) -> list[CallAction]:
    actions: list[CallAction] = []
    for _ in range(20):
        deadline = m.next_deadline()
        if deadline is None or deadline > at(seconds).mono:
            break
        actions += m.tick(Moment(deadline, T0 + dt.timedelta(seconds=deadline - MONO0)))
    return actions


# -- every way to an answered call -------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    name: str
    steps: list[Step]
    answered_at: float
    watched: bool
    """The grooming alert comes GROOMING_MINUTES after the answer."""
    verdict: str = "warned"
    number: str | None = None
    rule: str | None = None
    reason_starts: str = ""
    notes: tuple[str, ...] = ()
    not_notes: tuple[str, ...] = ()
    speaks: bool | None = None
    """SpeakOnLine (warning.line is on); None: as ``watched``."""
    impersonation: bool = False
    extra: tuple[type, ...] = field(default=())
    """Actions that must be among the answer's (beyond Screened)."""


A = "answered before caller ID arrived"
CASES = [
    # idle -> caller ID (UK: before the first ring) -> ringing -> off-hook
    Case(
        "uk caller ID, unknown",
        [(0, "cid", cid(UNKNOWN)), (0.5, "ring", None), (4, "off", None)],
        answered_at=4,
        watched=True,
        number="+442079460000",
        reason_starts="Warned: not on any list.",
        not_notes=(A,),
    ),
    Case(
        "uk caller ID, allow list",
        [(0, "cid", cid(ALLOWED)), (0.5, "ring", None), (4, "off", None)],
        answered_at=4,
        watched=False,
        verdict="allowed",
        rule="allow",
    ),
    Case(
        "uk caller ID, withheld",
        [(0, "cid", cid(None, absence=Absence.WITHHELD)), (0.5, "ring", None), (4, "off", None)],
        answered_at=4,
        watched=True,
        rule="category:unavailable",
    ),
    Case(  # let ring by a category setting, but on no list: still unknown to the grooming watch
        "uk caller ID, allowed by a setting, not on the allow list",
        [(0, "cid", cid(OPEN)), (0.5, "ring", None), (4, "off", None)],
        answered_at=4,
        watched=True,
        verdict="allowed",
        rule="category:mobile",
        speaks=False,  # the line warning is for warned callers only
    ),
    # idle -> RING -> awaiting -> caller ID (US: after the first ring) -> ringing -> off-hook
    Case(
        "us caller ID after ring 1, unknown",
        [(0, "ring", None), (1.5, "cid", cid(UNKNOWN)), (3, "off", None)],
        answered_at=3,
        watched=True,
        number="+442079460000",
        not_notes=(A,),
    ),
    Case(
        "us caller ID after ring 1, allow list",
        [(0, "ring", None), (1.5, "cid", cid(ALLOWED)), (3, "off", None)],
        answered_at=3,
        watched=False,
        verdict="allowed",
    ),
    # awaiting -> cid_wait_s passes -> ringing (no caller ID) -> off-hook
    Case(
        "no caller ID, then answered",
        [(0, "ring", None), (3, "ring", None), (6, "ring", None), (7, "off", None)],
        answered_at=7,
        watched=True,
        reason_starts="No caller ID was received. Warned:",
        notes=("no caller ID",),
        not_notes=(A,),
    ),
    Case(
        "no caller ID, a late one on the allow list, then answered",
        [(0, "ring", None), (6, "cid", cid(ALLOWED)), (7, "off", None)],
        answered_at=7,
        watched=False,
        verdict="allowed",
        notes=("caller ID arrived late",),
    ),
    # awaiting -> off-hook: answered on ring 1 before caller ID arrived
    Case(
        "answered on ring 1, no caller ID ever",
        [(0, "ring", None), (1, "off", None), (30, "tick", None)],
        answered_at=1,
        watched=True,
        rule="category:unavailable",
        reason_starts="Answered before caller ID arrived. No caller ID was received. Warned:",
        notes=(A, "no caller ID"),
    ),
    Case(
        "answered on ring 1, caller ID late: unknown",
        [(0, "ring", None), (1, "off", None), (2, "cid", cid(UNKNOWN))],
        answered_at=1,
        watched=True,
        number="+442079460000",
        rule="mode:guarded",
        reason_starts="Answered before caller ID arrived. Warned: not on any list.",
        notes=(A,),
        not_notes=("no caller ID",),
    ),
    Case(
        "answered on ring 1, caller ID late: withheld",
        [(0, "ring", None), (1, "off", None), (2, "cid", cid(None, absence=Absence.WITHHELD))],
        answered_at=1,
        watched=True,
        notes=(A,),
    ),
    Case(
        "answered on ring 1, caller ID late: allow list drops the watch",
        [(0, "ring", None), (1, "off", None), (2, "cid", cid(ALLOWED))],
        answered_at=1,
        watched=False,
        verdict="allowed",
        number="+441707354000",
        reason_starts="Answered before caller ID arrived. Allowed:",
        speaks=True,  # the warning had started: the caller was unknown when answered
    ),
    Case(
        "answered on ring 1, caller ID late: block list is warned, not seized",
        [(0, "ring", None), (1, "off", None), (2, "cid", cid(BLOCKED))],
        answered_at=1,
        watched=True,
        number="+441134960000",
        rule="block",
        reason_starts="Answered before caller ID arrived. Warned, not blocked: on the block list",
        notes=(A,),
    ),
    Case(
        "answered on ring 1, caller ID late: a spoofed number is warned, not seized",
        [(0, "ring", None), (1, "off", None), (2, "cid", cid(SPOOFED))],
        answered_at=1,
        watched=True,
        rule="protect",
        reason_starts="Answered before caller ID arrived. Warned, not blocked: the call showed",
        impersonation=True,
    ),
    Case(
        "answered on ring 1, none by the wait, then a late one: unknown",
        [(0, "ring", None), (1, "off", None), (9, "cid", cid(UNKNOWN))],
        answered_at=1,
        watched=True,
        number="+442079460000",
        notes=(A, "caller ID arrived late"),
        not_notes=("no caller ID",),
    ),
    Case(
        "answered on ring 1, none by the wait, then a late one on the allow list",
        [(0, "ring", None), (1, "off", None), (9, "cid", cid(ALLOWED))],
        answered_at=1,
        watched=False,
        verdict="allowed",
        speaks=True,
    ),
    # the lift began before caller ID came, but line sensing confirmed it after (it waits 1 s)
    Case(
        "lift confirmed after a late caller ID: unknown",
        [(0, "ring", None), (1.5, "cid", cid(UNKNOWN)), (2.2, "off-dated", 1.2)],
        answered_at=1.2,
        watched=True,
        reason_starts="Answered before caller ID arrived. Warned: not on any list.",
        notes=(A,),
    ),
    Case(  # the caller ID jumped the queue and was seized; the lift was already waiting
        "lift confirmed after a late caller ID that was seized: let go at once",
        [(0, "ring", None), (1.5, "cid", cid(BLOCKED)), (1.6, "off-dated", 1.2)],
        answered_at=1.2,
        watched=True,
        rule="block",
        reason_starts="Answered before caller ID arrived. Warned, not blocked:",
        notes=(A, "the phone had been answered before CallGuard took the line: let go"),
        extra=(Release,),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_answered_calls(case: Case) -> None:
    m = machine()
    actions = play(m, case.steps)
    assert m.line is LineState.IN_CALL
    assert kinds(actions).count(Seize) == kinds(actions).count(Release)  # never left held
    speaks = case.watched if case.speaks is None else case.speaks
    assert (SpeakOnLine in kinds(actions)) is speaks
    for extra in case.extra:
        assert extra in kinds(actions)
    threshold = case.answered_at + GROOMING_MINUTES * 60
    if case.watched:
        assert m.next_deadline() == pytest.approx(at(threshold).mono)
    before = play(m, [(threshold - 0.1, "tick", None)])
    assert GroomingAlert not in kinds(before)
    alert = play(m, [(threshold, "tick", None)])
    assert (GroomingAlert in kinds(alert)) is case.watched
    assert play(m, [(threshold + 600, "tick", None)]) == []  # once, and nothing else comes
    (record,) = records(m.line_on_hook(at(threshold + 100)))
    assert record["answered"] is True and record["end_seen"] is True
    assert record["duration_s"] == pytest.approx(threshold + 100 - case.answered_at, abs=0.05)
    assert record["verdict"] == case.verdict and record["grooming_alert"] is case.watched
    if case.number is not None:
        assert record["number"] == case.number and record["caller_id"] is True
    if case.rule is not None:
        assert record["rule"] == case.rule
    assert str(record["reason"]).startswith(case.reason_starts), record["reason"]
    for note in case.notes:
        assert note in record["notes"], record["notes"]
    for note in case.not_notes:
        assert note not in record["notes"], record["notes"]
    assert record["impersonation"] is case.impersonation


def test_a_late_blocked_caller_id_is_never_seized_and_never_logged_as_blocked() -> None:
    m = machine()
    play(m, [(0, "ring", None), (1, "off", None)])
    actions = m.caller_id(cid(BLOCKED), at(2))
    assert kinds(actions) == [Screened]  # no Seize, no Warn in the room mid-call
    screened = actions[0]
    assert isinstance(screened, Screened) and screened.verdict.action is Action.WARN
    assert "the resident had already answered" in screened.verdict.reason
    (record,) = records(m.line_on_hook(at(20)))
    assert record["verdict"] == "warned" and record["answered"] is True


def test_answered_on_ring_1_is_an_unknown_caller_at_once() -> None:
    m = machine()
    m.ring(at(0))
    actions = m.line_off_hook(at(1))
    assert kinds(actions) == [Screened, SpeakOnLine]
    current = m.current
    assert current is not None and current.verdict is Action.WARN and current.number is None
    assert current.reason.startswith("Warned: answered before caller ID arrived")
    # the grooming watch starts now; the caller-ID wait still runs from the first RING
    assert m.next_deadline() == at(CID_WAIT_S).mono
    assert kinds(m.tick(at(CID_WAIT_S))) == [Screened]  # none came: a caller with no number
    assert m.next_deadline() == at(1 + GROOMING_MINUTES * 60).mono


def test_answered_on_ring_1_and_over_before_the_caller_id_wait() -> None:
    m = machine()
    m.ring(at(0))
    m.line_off_hook(at(1))
    (record,) = records(m.line_on_hook(at(3)))
    assert record["reason"] == (
        "Warned: answered before caller ID arrived, so the caller is not known."
    )
    assert record["rule"] == "answered-before-caller-id" and record["verdict"] == "warned"
    assert record["number"] is None and record["category"] == "unavailable"
    assert record["caller_id"] is False and "answered before caller ID arrived" in record["notes"]
    assert record["duration_s"] == pytest.approx(2.0) and record["end_seen"] is True


def test_without_line_warning_nothing_is_spoken_but_the_watch_runs() -> None:
    m = machine(line_warning=False)
    m.ring(at(0))
    assert kinds(m.line_off_hook(at(1))) == [Screened]
    assert m.next_deadline() == at(CID_WAIT_S).mono


def test_an_alert_already_raised_stays_when_the_late_caller_id_is_on_the_allow_list() -> None:
    m = machine(grooming_minutes=0.1)  # 6 s
    m.ring(at(0))
    m.line_off_hook(at(1))
    assert kinds(play(m, [(7, "tick", None)])).count(GroomingAlert) == 1
    m.caller_id(cid(ALLOWED), at(9))  # within late_cid_s: it was Sue after all
    assert m.next_deadline() is None
    (record,) = records(m.line_on_hook(at(30)))
    assert record["verdict"] == "allowed" and record["grooming_alert"] is True


def test_a_caller_id_long_after_an_answer_with_none_is_another_calls() -> None:
    m = machine()
    m.ring(at(0))
    m.line_off_hook(at(1))
    late = Timing().late_cid_s
    actions = m.caller_id(cid(UNKNOWN), at(late + 1))
    (record,) = records(actions)
    assert "a new call arrived" in record["notes"] and record["end_seen"] is False
    assert m.line is LineState.RINGING and m.current is not None and m.current.call_id == 2


def test_a_lift_after_the_seizure_is_callguards_own_and_changes_nothing() -> None:
    m = machine()
    assert kinds(m.caller_id(cid(BLOCKED), at(0)))[0] is Seize
    assert m.line_off_hook(at(0.2)) == []
    (record,) = records(m.tick(at(1.5)))
    assert record["verdict"] == "blocked" and record["answered"] is False


# -- how long the resident talked (item 3) -----------------------------------------------------


@dataclass(frozen=True)
class Ending:
    name: str
    held: tuple[float, float] | None
    """CallGuard held the line (seconds after the start) to speak the warning."""
    end: str
    """"on" (line sensing saw the phone put down), "lost", "reset" or "new-call"."""
    at_s: float
    end_seen: bool
    duration_s: float | None
    note: str | None


ANSWER_S = 4.0
HELD = (5.0, 11.0)  # the warning: from 1 s to 7 s into the call
ENDINGS = [
    Ending("seen, no warning", None, "on", 64, True, 60.0, None),
    Ending("seen after the warning", HELD, "on", 64, True, 60.0, None),
    Ending(
        "put down during the warning",
        HELD,
        "on",
        11.05,  # the first reading after the hold
        False,
        7.1,  # at most: rounded up, never shorter than the call
        "the end of the call could not be seen: CallGuard held the line to speak the warning "
        "until 7 s into the call, so the duration is at most 7.1 s",
    ),
    Ending("put down just after the warning", HELD, "on", 11 + HELD_LINE_GRACE_S, False, 8.5, None),
    Ending("put down after the warning", HELD, "on", 11 + HELD_LINE_GRACE_S + 0.1, True, 8.6, None),
    Ending(
        "modem lost",
        HELD,
        "lost",
        64,
        False,
        None,
        "the end of the call could not be seen: it lasted at least 60 s",
    ),
    Ending("CallGuard stopped", None, "reset", 100, False, None, "it lasted at least 96 s"),
    Ending("a new call's caller ID", None, "new-call", 30, False, None, "at least 26 s"),
]


@pytest.mark.parametrize("ending", ENDINGS, ids=[e.name for e in ENDINGS])
def test_how_long_the_resident_talked(ending: Ending) -> None:
    m = machine(grooming_minutes=None)
    m.caller_id(cid(UNKNOWN), at(0))
    m.ring(at(0.5))
    (speak,) = m.line_off_hook(at(ANSWER_S))
    assert isinstance(speak, SpeakOnLine)
    if ending.held is not None:
        since, until = ending.held
        held = LineHeld(speak.call_id, at(since).mono, at(until).mono)
        assert m.line_held(held, at(until)) == []
    now = at(ending.at_s)
    if ending.end == "on":
        actions = m.line_on_hook(now)
    elif ending.end == "lost":
        actions = m.modem_lost(now)
    elif ending.end == "reset":
        actions = m.reset(now, "CallGuard was stopped")
    else:
        actions = m.caller_id(cid(UNKNOWN, burst=2), now)
    (record,) = records(actions)
    assert record["answered"] is True and record["end_seen"] is ending.end_seen
    assert record["duration_s"] == (
        None if ending.duration_s is None else pytest.approx(ending.duration_s, abs=1e-9)
    )
    unseen = [n for n in record["notes"] if n.startswith("the end of the call could not be seen")]
    assert len(unseen) == (0 if ending.end_seen else 1), record["notes"]
    if ending.note is not None:
        assert ending.note in unseen[0], unseen


def test_the_hold_is_reported_with_the_caller_hanging_up() -> None:
    m = machine()
    m.caller_id(cid(UNKNOWN), at(0))
    (speak,) = m.line_off_hook(at(2))
    assert isinstance(speak, SpeakOnLine)
    m.line_held(LineHeld(speak.call_id, at(3).mono, at(6).mono, caller_hung_up=True), at(6))
    (record,) = records(m.line_on_hook(at(6.2)))
    assert "the caller hung up while CallGuard was speaking the warning" in record["notes"]
    assert record["end_seen"] is False and record["duration_s"] == pytest.approx(4.2)


def test_a_hold_for_a_call_that_is_over_changes_nothing() -> None:
    m = machine()
    m.caller_id(cid(UNKNOWN), at(0))
    (speak,) = m.line_off_hook(at(2))
    assert isinstance(speak, SpeakOnLine)
    m.modem_lost(at(3))
    m.caller_id(cid(UNKNOWN, burst=2), at(10))
    m.line_off_hook(at(12))
    assert m.line_held(LineHeld(speak.call_id, at(3).mono, at(8).mono), at(13)) == []
    (record,) = records(m.line_on_hook(at(13)))
    assert record["end_seen"] is True and record["duration_s"] == pytest.approx(1.0)


def test_unanswered_and_blocked_calls_have_no_end_to_see() -> None:
    m = machine()
    m.caller_id(cid(UNKNOWN), at(0))
    (unanswered,) = records(m.tick(at(8)))
    m.caller_id(cid(BLOCKED, burst=2), at(20))
    (blocked,) = records(m.tick(at(21.5)))
    for record in (unanswered, blocked):
        assert record["answered"] is False and record["duration_s"] is None
        assert record["end_seen"] is None
