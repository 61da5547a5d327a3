"""Property tests of the call machine (hypothesis): whatever the line, the modem and the clocks
do, a seized line is released within ``hold_s`` and an allowed caller is never seized."""

from __future__ import annotations

import datetime as dt
import os

from hypothesis import given, settings
from hypothesis import strategies as st

from callguard.core.call import (
    CallAction,
    CallMachine,
    LogCall,
    Moment,
    Release,
    Screened,
    Seize,
    Timing,
)
from callguard.core.numbers import Caller
from callguard.core.screening import Action, Verdict
from callguard.modem.protocol import Absence, CallerId

T0 = dt.datetime(2026, 11, 24, 9, 30, tzinfo=dt.UTC)
HOLD_S = 1.5
ALLOWED = "01707354000"
BLOCKED = "01134960000"
NUMBERS = [ALLOWED, BLOCKED, "02079460000", "07700900123", "999", None]


def screen(caller: Caller, now: dt.datetime, name: str | None = None) -> Verdict:
    if caller.key == "+441707354000":
        return Verdict(Action.ALLOW, "Allowed.", caller.category, "allow", None, "Sue")
    if caller.key in ("+441134960000", "999"):
        return Verdict(Action.BLOCK, "Blocked.", caller.category, "block", None, None)
    return Verdict(Action.WARN, "Warned.", caller.category, "mode:guarded", None, None)


step = st.one_of(
    st.tuples(
        st.just("cid"),
        st.sampled_from(NUMBERS),
        st.booleans(),  # a new burst (a new call) or more of the same burst
        st.sampled_from([None, "POLICE", "P", "Sue"]),
    ),
    st.tuples(st.sampled_from(["ring", "off", "on", "tick", "lost", "reset"])),
)
timed_step = st.tuples(
    step,
    st.floats(min_value=0.0, max_value=12.0, allow_nan=False),  # monotonic seconds that pass
    st.sampled_from([0.0, 0.0, 0.0, -3600.0, 3600.0, -86400.0]),  # the wall clock steps
)


class Line:
    """What the daemon does with the actions: holds the line from Seize to Release."""

    def __init__(self) -> None:
        self.held_since: float | None = None
        self.seizures = 0

    def carry_out(self, actions: list[CallAction], now: Moment) -> None:
        screened = [a for a in actions if isinstance(a, Screened)]
        for action in actions:
            if isinstance(action, Seize):
                assert self.held_since is None, "seized twice without a release"
                verdict = next(s.verdict for s in screened if s.call_id == action.call_id)
                assert verdict.action is Action.BLOCK
                assert verdict.rule != "allow"  # an allowed caller is never seized
                self.held_since = now.mono
                self.seizures += 1
            elif isinstance(action, Release):
                assert self.held_since is not None, "released a line that was not held"
                assert now.mono - self.held_since <= HOLD_S + 1e-9
                self.held_since = None


@settings(max_examples=int(os.environ.get("CALLGUARD_CHAOS_EXAMPLES", "300")), deadline=None)
@given(st.lists(timed_step, max_size=40))
def test_any_sequence_releases_every_seizure_in_time_and_never_seizes_an_allowed_caller(
    steps: list[tuple[tuple[object, ...], float, float]],
) -> None:
    m = CallMachine(
        screen,
        timing=Timing(cid_wait_s=5, ring_gap_s=8, hold_s=HOLD_S),
        line_sensing=True,
        line_warning=True,
        grooming_minutes=0.5,
    )
    line = Line()
    mono, wall, burst = 1000.0, T0, 0

    def at() -> Moment:
        return Moment(mono, wall)

    for (kind, *args), advance, wall_step in steps:
        target = mono + advance
        # the daemon sleeps until the machine's next deadline, never past it
        for _ in range(100):
            deadline = m.next_deadline()
            if deadline is None or deadline > target:
                break
            wall += dt.timedelta(seconds=max(0.0, deadline - mono))
            mono = max(mono, deadline)
            line.carry_out(m.tick(at()), at())
        wall += dt.timedelta(seconds=target - mono) + dt.timedelta(seconds=wall_step)
        mono = target
        now = at()
        actions: list[CallAction]
        if kind == "cid":
            number, new_burst, name = args
            burst += 1 if new_burst else 0
            absence = Absence.WITHHELD if number is None else None
            event = CallerId(
                number=number,  # type: ignore[arg-type]
                absence=absence,
                raw_number=str(number or "P"),
                burst=burst,
                name=name,  # type: ignore[arg-type]
            )
            actions = m.caller_id(event, now)
        elif kind == "ring":
            actions = m.ring(now)
        elif kind == "off":
            actions = m.line_off_hook(now)
        elif kind == "on":
            actions = m.line_on_hook(now)
        elif kind == "lost":
            actions = m.modem_lost(now)
        elif kind == "reset":
            actions = m.reset(now, "a fault")
        else:
            actions = []
        actions += m.tick(now)  # as the daemon does after every input
        line.carry_out(actions, now)
        if line.held_since is not None:
            assert now.mono - line.held_since < HOLD_S
        for action in actions:
            if isinstance(action, LogCall):
                duration = action.record.duration_s
                assert duration is None or duration >= 0  # a wall step never bends durations
    line.carry_out(m.reset(at(), "stopped"), at())
    assert line.held_since is None  # nothing leaves the line off-hook at the end
