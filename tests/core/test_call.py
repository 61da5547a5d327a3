"""The call state machine, with an injected clock: no threads, no sleeps."""

from __future__ import annotations

import datetime as dt

import pytest

from callguard.core.call import (
    AfterCall,
    CallAction,
    CallBackReminder,
    CallMachine,
    GroomingAlert,
    LineState,
    LogCall,
    Moment,
    Release,
    Screened,
    Seize,
    SpeakOnLine,
    Timing,
    Warn,
)
from callguard.core.hook import Debouncer, Hook
from callguard.core.numbers import Caller, Category
from callguard.core.screening import Action, Verdict
from callguard.modem.protocol import Absence, CallerId

T0 = dt.datetime(2026, 11, 24, 9, 30, tzinfo=dt.UTC)
BLOCKED = "+441134960000"
ALLOWED = "+441707354000"


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def fake_screen(caller: Caller, now: dt.datetime, name: str | None = None) -> Verdict:
    if caller.key == "+441632960999":
        return Verdict(Action.BLOCK, "Blocked: spoofed.", caller.category, "protect", None, "Bank")
    if caller.key == BLOCKED:
        return Verdict(
            Action.BLOCK, "Blocked: on the block list.", caller.category, "block", None, "scam"
        )
    if caller.key == ALLOWED:
        return Verdict(
            Action.ALLOW, "Allowed: on the allow list.", caller.category, "allow", None, "Sue"
        )
    return Verdict(
        Action.WARN, "Warned: not on any list.", caller.category, "mode:guarded", None, None
    )


def cid(
    number: str | None, burst: int = 1, absence: Absence | None = None, name: str | None = None
) -> CallerId:
    return CallerId(number=number, absence=absence, raw_number=number or "", burst=burst, name=name)


def machine(**kw: object) -> CallMachine:
    return CallMachine(fake_screen, timing=Timing(cid_wait_s=5, ring_gap_s=8, hold_s=1.5), **kw)  # type: ignore[arg-type]


def kinds(actions: list[CallAction]) -> list[type]:
    return [type(a) for a in actions]


def logged(actions: list[CallAction]) -> dict[str, object]:
    records = [a.record.to_json() for a in actions if isinstance(a, LogCall)]
    assert len(records) == 1, actions
    return records[0]


def test_uk_blocked_caller_is_seized_on_caller_id_before_any_ring() -> None:
    m = machine()
    actions = m.caller_id(cid("01134960000"), at(0))
    assert kinds(actions)[0] is Seize  # seize comes first
    assert m.line is LineState.IN_CALL
    assert m.ring(at(0.3)) == []  # a RING already on its way does not count
    assert m.tick(at(1.4)) == []
    actions = m.tick(at(1.5))
    assert kinds(actions) == [Release, LogCall, AfterCall]
    record = logged(actions)
    assert record["verdict"] == "blocked" and record["answered"] is False
    assert record["number"] == BLOCKED and record["rings"] == 0
    assert m.line is LineState.IDLE


def test_allowed_caller_rings_through_untouched_and_ends_after_the_ring_gap() -> None:
    m = machine()
    actions = m.caller_id(cid("01707354000"), at(0))
    assert kinds(actions) == [Screened]
    for i in range(4):
        assert m.ring(at(0.5 + 3 * i)) == []
    assert m.tick(at(9.5 + 7.9)) == []
    record = logged(m.tick(at(9.5 + 8)))
    assert record["verdict"] == "allowed" and record["name"] == "Sue" and record["rings"] == 4
    assert record["answered"] is None and record["duration_s"] is None  # no line sensing


def test_unknown_caller_is_warned_not_blocked() -> None:
    m = machine()
    actions = m.caller_id(cid("02079460000"), at(0))
    assert kinds(actions) == [Screened, Warn]
    assert Seize not in kinds(actions)


def test_withheld_caller_is_screened_without_a_number() -> None:
    m = machine()
    actions = m.caller_id(cid(None, absence=Absence.WITHHELD), at(0))
    screened = actions[0]
    assert isinstance(screened, Screened) and screened.caller.category is Category.WITHHELD
    record = logged(m.tick(at(8)))
    assert record["number"] is None and record["category"] == "withheld"


def test_us_caller_id_after_the_first_ring_is_the_same_call() -> None:
    m = machine()
    assert m.ring(at(0)) == []
    assert m.line is LineState.RINGING
    actions = m.caller_id(cid("01134960000"), at(1.5))
    assert kinds(actions)[0] is Seize  # before the second ring
    record = logged(m.tick(at(3.0)))
    assert record["rings"] == 1 and record["caller_id"] is True


def test_rings_with_no_caller_id_are_decided_after_a_short_wait() -> None:
    m = machine()
    m.ring(at(0))
    assert m.tick(at(4.9)) == []
    actions = m.tick(at(5.0))
    screened = actions[0]
    assert isinstance(screened, Screened) and screened.caller.category is Category.UNAVAILABLE
    m.ring(at(6))
    record = logged(m.tick(at(14)))
    assert "no caller ID" in record["notes"]
    assert str(record["reason"]).startswith("No caller ID was received.")


def test_late_caller_id_is_adopted_and_can_still_block() -> None:
    m = machine()
    m.ring(at(0))
    m.tick(at(5))  # decided: no caller ID
    actions = m.caller_id(cid("01134960000"), at(6))
    assert kinds(actions)[0] is Seize
    record = logged(m.tick(at(7.5)))
    assert "caller ID arrived late" in record["notes"]


def test_ring_never_clears_caller_id_and_name_refines() -> None:
    m = machine()
    m.caller_id(cid("02079460000", name=None), at(0))
    m.ring(at(0.5))
    assert m.caller_id(cid("02079460000", name="J SMITH"), at(0.6)) == []  # same burst
    assert m.current is not None and m.current.name == "J SMITH"
    assert m.current.number == "+442079460000"


def test_name_markers_are_not_names() -> None:
    m = machine()
    m.caller_id(cid("02079460000", name="O"), at(0))
    assert m.current is not None and m.current.name is None


def test_a_new_call_ends_the_previous_one() -> None:
    m = machine()
    m.caller_id(cid("02079460000", burst=1), at(0))
    m.ring(at(0.5))
    actions = m.caller_id(cid("01134960000", burst=2), at(4))
    # the new call is seized first; the old one is logged and caller ID asserted after it
    assert kinds(actions)[:3] == [Seize, LogCall, AfterCall]
    assert logged(actions)["number"] == "+442079460000"


def test_modem_lost_mid_call_ends_it_with_a_note() -> None:
    m = machine()
    m.caller_id(cid("01134960000"), at(0))
    actions = m.modem_lost(at(0.5))
    # the seized line is released (the daemon keeps trying until the modem confirms, and the
    # transport's re-init says ATH0 first); no AfterCall: the transport re-initialises anyway
    assert kinds(actions) == [Release, LogCall]
    assert "the modem was lost during the call" in logged(actions)["notes"]
    assert m.line is LineState.IDLE and m.tick(at(10)) == []


def test_line_sensing_gives_answered_and_duration() -> None:
    m = machine(line_sensing=True)
    m.caller_id(cid("02079460000"), at(0))
    m.ring(at(0.5))
    m.line_off_hook(at(4))
    assert m.line is LineState.IN_CALL
    assert m.tick(at(100)) == []  # an answered call does not end for lack of rings
    record = logged(m.line_on_hook(at(4 + 20 * 60)))
    assert record["answered"] is True and record["duration_s"] == pytest.approx(1200.0)


def test_line_sensing_unanswered_call_is_answered_false() -> None:
    m = machine(line_sensing=True)
    m.caller_id(cid("02079460000"), at(0))
    m.ring(at(0.5))
    assert logged(m.tick(at(8.5)))["answered"] is False


def test_reset_after_a_fault_logs_the_call() -> None:
    m = machine()
    m.caller_id(cid("02079460000"), at(0))
    record = logged(m.reset(at(1), "the daemon hit an error handling this call"))
    assert "the daemon hit an error handling this call" in record["notes"]
    assert m.reset(at(2), "again") == []


def test_next_deadline_follows_the_phase() -> None:
    m = machine()
    assert m.next_deadline() is None
    m.ring(at(0))
    assert m.next_deadline() == at(5).timestamp()
    m.caller_id(cid("02079460000"), at(1))
    m.ring(at(3))
    assert m.next_deadline() == at(11).timestamp()


def test_answered_unknown_call_speaks_on_the_line_when_configured() -> None:
    m = machine(line_sensing=True, line_warning=True)
    m.caller_id(cid("02079460000"), at(0))
    m.ring(at(0.5))
    assert kinds(m.line_off_hook(at(4))) == [SpeakOnLine]
    assert "warning spoken down the line" in logged(m.line_on_hook(at(60)))["notes"]


@pytest.mark.parametrize(
    ("number", "line_warning"), [("01707354000", True), ("02079460000", False)]
)
def test_no_line_warning_for_allowed_callers_or_when_off(number: str, line_warning: bool) -> None:
    m = machine(line_sensing=True, line_warning=line_warning)
    m.caller_id(cid(number), at(0))
    assert m.line_off_hook(at(4)) == []


# -- the grooming alert (issue: spot grooming) -------------------------------------------------


def groomed(minutes: float = 15, **kw: object) -> CallMachine:
    return machine(line_sensing=True, grooming_minutes=minutes, **kw)


def test_a_20_minute_unknown_call_raises_the_alert_at_the_threshold() -> None:
    m = groomed(15)
    m.caller_id(cid("02079460000"), at(0))
    m.ring(at(0.5))
    m.line_off_hook(at(4))
    assert (
        m.next_deadline() == at(4 + 15 * 60).timestamp()
    )  # no waiting: the daemon sleeps until then
    assert m.tick(at(4 + 15 * 60 - 0.1)) == []
    actions = m.tick(at(4 + 15 * 60))
    assert kinds(actions) == [GroomingAlert]
    alert = actions[0]
    assert isinstance(alert, GroomingAlert) and alert.record.number == "+442079460000"
    assert m.tick(at(4 + 18 * 60)) == [] and m.next_deadline() is None  # once per call
    record = logged(m.line_on_hook(at(4 + 20 * 60)))
    assert record["grooming_alert"] is True and record["duration_s"] == pytest.approx(1200)


@pytest.mark.parametrize("minutes", [0.5, 15.0])
def test_fractions_of_a_minute(minutes: float) -> None:
    m = groomed(minutes)
    m.caller_id(cid(None, absence=Absence.WITHHELD), at(0))
    m.line_off_hook(at(3))
    assert kinds(m.tick(at(3 + minutes * 60))) == [GroomingAlert]


def test_an_allowed_caller_never_raises_the_alert() -> None:
    m = groomed(15)
    m.caller_id(cid("01707354000"), at(0))
    m.line_off_hook(at(4))
    assert m.next_deadline() is None
    assert m.tick(at(4 + 60 * 60)) == []
    assert logged(m.line_on_hook(at(4 + 60 * 60)))["grooming_alert"] is False


def test_no_alert_without_line_sensing_or_when_off() -> None:
    m = groomed(None)  # type: ignore[arg-type]
    m.caller_id(cid("02079460000"), at(0))
    m.line_off_hook(at(4))
    assert m.tick(at(4 + 60 * 60)) == []


def test_a_half_second_drop_is_not_the_end_of_the_call() -> None:
    m = groomed(15)
    sensor = Debouncer(hold_s=1.0)
    m.caller_id(cid("02079460000"), at(0))
    m.ring(at(0.5))
    actions: list[CallAction] = []
    t = 4.0
    # off-hook from 4 s; a 0.5 s drop at 600 s (a hook flash); back on-hook at 1204 s
    while t < 1210:
        off = 4.0 <= t < 1204.0 and not (600.0 <= t < 600.5)
        change = sensor.feed(t, off)
        if change is not None:
            when = at(change.at)
            actions += m.line_off_hook(when) if change.hook is Hook.OFF else m.line_on_hook(when)
        actions += m.tick(at(t))
        t = round(t + 0.1, 1)
    logs = [a.record for a in actions if isinstance(a, LogCall)]
    assert len(logs) == 1 and logs[0].duration_s == pytest.approx(1200, abs=0.2)
    assert kinds(actions).count(GroomingAlert) == 1


# -- impersonation: name claims and the call-back trap -------------------------------------------


def claim_screen(caller: Caller, now: dt.datetime, name: str | None = None) -> Verdict:
    if name and "POLICE" in name.upper():
        return Verdict(
            Action.WARN, "Warned: claims police.", caller.category, "name-claim", None, name
        )
    return fake_screen(caller, now, name)


def test_a_name_claim_after_the_number_rescreens_with_the_stronger_warning() -> None:
    m = CallMachine(claim_screen, timing=Timing())
    first = m.caller_id(cid("02079460000"), at(0))
    assert [a.strong for a in first if isinstance(a, Warn)] == [False]
    actions = m.caller_id(cid("02079460000", name="MET POLICE"), at(0.1))
    assert kinds(actions) == [Screened, Warn]
    warn = actions[1]
    assert isinstance(warn, Warn) and warn.strong and Seize not in kinds(actions)
    record = logged(m.tick(at(9)))
    assert record["name_claim"] is True and record["verdict"] == "warned"


@pytest.mark.parametrize(
    ("number", "trap"),
    [("02079460000", True), ("01632960999", True), ("01134960000", False), ("01707354000", False)],
)
def test_call_back_trap_after_suspicious_calls_only(number: str, trap: bool) -> None:
    m = machine(line_sensing=True)
    m.caller_id(cid(number), at(0))
    m.tick(at(1.5))  # a blocked call is released here
    m.tick(at(10))  # an unanswered call ends here
    assert m.line is LineState.IDLE
    assert m.wants_line_state(at(60)) is trap
    actions = m.line_off_hook(at(120))  # the resident picks up to ring "the bank"
    assert kinds(actions) == ([CallBackReminder] if trap else [])
    assert m.line_off_hook(at(130)) == []  # once


def test_call_back_trap_closes_after_five_minutes() -> None:
    m = machine(line_sensing=True)
    m.caller_id(cid("02079460000"), at(0))
    m.tick(at(10))
    assert not m.wants_line_state(at(10 + 5 * 60))
    assert m.line_off_hook(at(10 + 5 * 60 + 1)) == []


def test_no_call_back_trap_without_line_sensing() -> None:
    m = machine()
    m.caller_id(cid("02079460000"), at(0))
    m.tick(at(10))
    assert not m.wants_line_state(at(20))


# -- issue 11: no way out of "seized" leaves the line off-hook; deadlines on a monotonic clock --


def test_a_new_caller_id_while_a_block_is_held_releases_the_line_first() -> None:
    m = machine()
    assert kinds(m.caller_id(cid(BLOCKED), at(0))) == [Seize, Screened]
    actions = m.caller_id(cid(ALLOWED, burst=2), at(0.5))
    assert kinds(actions)[:2] == [Release, LogCall]  # the held call is let go, then logged
    assert m.line is LineState.RINGING  # and the new caller rings through


def test_a_new_blocked_caller_id_while_a_block_is_held_releases_then_seizes_at_once() -> None:
    m = machine()
    m.caller_id(cid(BLOCKED), at(0))
    actions = m.caller_id(cid(BLOCKED, burst=2), at(0.5))
    # the line is put down, then taken again for the new call before any other work
    assert kinds(actions) == [Release, Seize, LogCall, AfterCall, Screened]
    assert m.line is LineState.IN_CALL


def test_a_clock_stepped_back_during_a_hold_does_not_stretch_it() -> None:
    m = machine()
    start = Moment(100.0, T0)
    assert kinds(m.caller_id(cid(BLOCKED), start))[0] is Seize
    # NTP steps the wall clock back an hour 0.5 s into the 1.5 s hold
    assert m.tick(Moment(100.5, T0 - dt.timedelta(hours=1))) == []
    actions = m.tick(Moment(101.6, T0 - dt.timedelta(hours=1) + dt.timedelta(seconds=1.1)))
    assert kinds(actions)[0] is Release


def test_a_clock_stepped_forward_does_not_raise_grooming_early_or_bend_durations() -> None:
    m = machine(line_sensing=True, grooming_minutes=15)
    m.caller_id(cid("02079460000"), Moment(0.0, T0))
    m.line_off_hook(Moment(4.0, T0 + dt.timedelta(seconds=4)))
    # the wall clock jumps a day ahead (a Pi booting with no RTC, then NTP)
    later = T0 + dt.timedelta(days=1)
    assert m.tick(Moment(60.0, later)) == []
    record = logged(m.line_on_hook(Moment(64.0, later)))
    assert record["duration_s"] == 60.0 and record["grooming_alert"] is False


@pytest.mark.parametrize("marker", ["WITHHELD", "ANONYMOUS", "P", "O", "out-of-area"])
def test_an_absence_word_in_the_name_field_is_nobodys_name(marker: str) -> None:
    m = machine()
    m.caller_id(cid("02079460000", name=marker), at(0))
    assert logged(m.tick(at(9)))["name"] is None
