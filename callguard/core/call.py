"""The call state machine: modem events plus the time in, actions out. No I/O, no clock.

Theory of operation
-------------------
One :class:`CallMachine` follows the line. Every input carries ``now``, a :class:`Moment`: a
monotonic reading that every deadline and duration is measured on, and the wall clock at that
moment, used only for what is written down (``started``, ``ended``) and for quiet hours. A Pi
has no real-time clock and steps its wall clock when NTP syncs; a step must never stretch a
hold (the line left off-hook for the hour the clock went back) or shorten a grooming watch.
Every output is an action for the daemon to carry out. Screening is a pure function passed
in, so the machine can decide the moment the number is known.

The rules, in one place::

  state       input                 -> actions, next state
  ---------   -------------------   ------------------------------------------------------
  idle        caller ID             -> screen; BLOCK: Seize -> seized
                                               WARN: Warn  -> ringing ; ALLOW -> ringing
  idle        RING                  -> (no caller ID yet)                 -> awaiting_cid
  awaiting    caller ID             -> screen, as from idle (US: caller ID after ring 1)
  awaiting    cid_wait_s passes     -> screen a caller with no caller ID  -> ringing
  ringing     RING                  -> count it
  ringing     line off-hook         -> answered (line sensing, when configured)
  ringing     ring_gap_s, no RING   -> end: unanswered (or unknown without line sensing)
  ringing     line off-hook, WARN   -> SpeakOnLine (with warning.line)     -> in_call
  in_call     grooming.minutes pass -> GroomingAlert (callers not on the allow list, once)
  in_call     line on-hook          -> end: answered, with its duration
  ringing     NAME claims authority -> screen again: WARN (stronger), never a block for it
  idle        line off-hook within  -> CallBackReminder (after a warned or spoofed call,
              5 min of a suspicious    once; needs line sensing)
              call
  seized      hold_s passes         -> Release, end: blocked
  any call    new caller ID burst   -> end the current call, start the new one (a Seize
                                       comes before the ended call's LogCall and AfterCall)
  seized      any end               -> Release first: no path out of "seized" leaves the
                                       line off-hook (the daemon retries until it is down)
  any call    modem lost            -> end the call ("the modem was lost"); a seized line is
                                       put on-hook by the transport's re-init (ATH0 first)

Every end emits :class:`LogCall` with the call log record and :class:`AfterCall` (caller ID is
asserted again: some Conexant firmware forgets it). Caller ID is never cleared by RING, and the
number is screened on arrival: in the UK that is before the first ring, so a blocked caller is
seized before the phone rings. A NAME arriving later in the same burst updates the record.

Line sensing is optional: without it a call that stops ringing ends with ``answered: null``
and ``duration_s: null``, because RING alone cannot tell "answered" from "gave up".
"""

from __future__ import annotations

import datetime as dt
import enum
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field

from callguard.core.numbers import Caller, Category, from_caller_id
from callguard.core.record import CallRecord
from callguard.core.screening import Action as VerdictAction
from callguard.core.screening import Verdict
from callguard.modem.protocol import Absence, CallerId, absence_of

Screen = Callable[[Caller, dt.datetime, str | None], Verdict]
"""Screening as the machine uses it: the caller, the time, and the caller-ID NAME if any."""

CALL_BACK_WINDOW_S = 5 * 60.0
"""After a warned or spoofed call, picking the phone up within this long triggers the reminder."""


@dataclass(frozen=True)
class Moment:
    """A point in time as the machine needs it: ``mono`` (seconds on a monotonic clock, for
    every deadline and duration) and ``wall`` (the aware local time then, for records only)."""

    mono: float
    wall: dt.datetime

    def later(self, seconds: float) -> Moment:
        return Moment(self.mono + seconds, self.wall + dt.timedelta(seconds=seconds))


Instant = Moment | dt.datetime
"""What the inputs take. A bare datetime (tests, a replay) serves as both clocks."""


def moment(now: Instant) -> Moment:
    return now if isinstance(now, Moment) else Moment(now.timestamp(), now)


class LineState(enum.StrEnum):
    IDLE = "idle"
    RINGING = "ringing"
    IN_CALL = "in-call"


class Phase(enum.Enum):
    IDLE = "idle"
    AWAITING_CID = "awaiting caller ID"
    RINGING = "ringing"
    IN_CALL = "in call"
    SEIZED = "seized"


# -- actions ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Seize:
    """Take the line off-hook now (answers the call, so the phones stop ringing)."""

    call_id: int


@dataclass(frozen=True)
class Release:
    """Put the line back on-hook (ends a seized call)."""

    call_id: int


@dataclass(frozen=True)
class Warn:
    """Speak the warning in the room: an unknown caller is ringing."""

    call_id: int
    caller: Caller
    verdict: Verdict

    @property
    def strong(self) -> bool:
        """The caller-ID name claims authority: the stronger warning."""
        return self.verdict.rule == "name-claim"


@dataclass(frozen=True)
class CallBackReminder:
    """The phone was picked up soon after a warned or spoofed call: remind the resident to
    wait five minutes or use another phone before ringing "their bank" back."""

    after_call_id: int


@dataclass(frozen=True)
class SpeakOnLine:
    """An unknown caller's call was just answered: join the line and speak the warning."""

    call_id: int


@dataclass(frozen=True)
class GroomingAlert:
    """An unknown caller has kept the resident on the line for ``grooming.minutes``."""

    call_id: int
    record: CallRecord


@dataclass(frozen=True)
class Screened:
    """A verdict was reached (for the status and the narration)."""

    call_id: int
    caller: Caller
    verdict: Verdict


@dataclass(frozen=True)
class LogCall:
    """Append this record to the call log."""

    record: CallRecord


@dataclass(frozen=True)
class AfterCall:
    """The call is over: re-assert caller ID and return the modem to command state."""

    call_id: int


CallAction = (
    Seize
    | Release
    | Warn
    | SpeakOnLine
    | GroomingAlert
    | CallBackReminder
    | Screened
    | LogCall
    | AfterCall
)


# -- the machine ------------------------------------------------------------------------------


def _real_name(name: str | None) -> str | None:
    """A caller-ID NAME, or None for the absence markers some networks send there (O, P)."""
    if not name or absence_of(name) is not None:  # NAME = WITHHELD is nobody's name
        return None
    return name.strip()


@dataclass
class _Call:
    call_id: int
    started: Moment
    caller: Caller | None = None
    verdict: Verdict | None = None
    name: str | None = None
    burst: int | None = None
    had_caller_id: bool = False
    rings: int = 0
    last_ring: Moment | None = None
    seized_at: Moment | None = None
    answered_at: Moment | None = None
    alerted: bool = False
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Timing:
    """How long the machine waits for things; defaults fit UK (3 s) and US (6 s) cadences."""

    cid_wait_s: float = 5.0
    """After a RING with no caller ID: how long to wait for it (US sends it after ring 1)."""
    ring_gap_s: float = 8.0
    """No RING for this long ends a ringing call (UK rings every 3 s, US every 6 s)."""
    hold_s: float = 1.5
    """How long a blocked call is held off-hook before release."""


class CallMachine:
    """Follows calls on one line. Feed it inputs; it returns actions. See the module docstring."""

    def __init__(
        self,
        screen: Screen,
        *,
        region: str = "GB",
        timing: Timing | None = None,
        line_sensing: bool = False,
        line_warning: bool = False,
        grooming_minutes: float | None = None,
    ) -> None:
        self._screen = screen
        self.line_warning = line_warning
        self.grooming_minutes = grooming_minutes
        self.region = region
        self.timing = timing or Timing()
        self.line_sensing = line_sensing
        self._ids = itertools.count(1)
        self._call: _Call | None = None
        self.phase = Phase.IDLE
        self._trap: tuple[int, float] | None = None  # (call id, until: monotonic seconds)

    # -- what the daemon shows ---------------------------------------------------------------

    @property
    def line(self) -> LineState:
        if self.phase in (Phase.AWAITING_CID, Phase.RINGING):
            return LineState.RINGING
        if self.phase in (Phase.IN_CALL, Phase.SEIZED):
            return LineState.IN_CALL
        return LineState.IDLE

    @property
    def current(self) -> CallRecord | None:
        call = self._call
        if call is None:
            return None
        return self._record(call, call.started, ended=False)

    def next_deadline(self) -> float | None:
        """When :meth:`tick` next has something to do, in monotonic seconds (None: nothing)."""
        call = self._call
        if call is None:
            return None
        if self.phase is Phase.AWAITING_CID:
            return call.started.mono + self.timing.cid_wait_s
        if self.phase is Phase.RINGING:
            return (call.last_ring or call.started).mono + self.timing.ring_gap_s
        if self.phase is Phase.SEIZED and call.seized_at is not None:
            return call.seized_at.mono + self.timing.hold_s
        if self.phase is Phase.IN_CALL and self._grooming_watch(call):
            assert call.answered_at is not None and self.grooming_minutes is not None
            return call.answered_at.mono + self.grooming_minutes * 60.0
        return None

    def _grooming_watch(self, call: _Call) -> bool:
        """An answered call from someone not on the allow list, not yet alerted."""
        return (
            self.grooming_minutes is not None
            and call.answered_at is not None
            and not call.alerted
            and call.verdict is not None
            and call.verdict.action is not VerdictAction.ALLOW
        )

    # -- inputs ------------------------------------------------------------------------------

    def caller_id(self, event: CallerId, at: Instant) -> list[CallAction]:
        now = moment(at)
        call = self._call
        if call is not None and call.burst == event.burst:
            name = _real_name(event.name)
            if not name or name == call.name:
                return []
            call.name = name  # NAME after NMBR in the same burst: screen again with it
            if call.caller is None or call.verdict is None or self.phase is not Phase.RINGING:
                return []
            verdict = self._screen(call.caller, now.wall, name)
            if verdict.rule != "name-claim" or call.verdict.rule == "name-claim":
                return []
            call.verdict = verdict
            return [
                Screened(call.call_id, call.caller, verdict),
                Warn(call.call_id, call.caller, verdict),
            ]
        ended: list[CallAction] = []
        late_for_this_call = (
            call is not None
            and not call.had_caller_id
            and self.phase in (Phase.AWAITING_CID, Phase.RINGING)
        )
        if call is not None and not late_for_this_call:
            ended = self._end(now, note="a new call arrived")
            call = None
        if call is None:
            call = self._start(now)
        elif "no caller ID" in call.notes:
            call.notes.remove("no caller ID")
            call.notes.append("caller ID arrived late")
        call.burst = event.burst
        call.had_caller_id = True
        call.name = _real_name(event.name)
        absence = event.absence.value if isinstance(event.absence, Absence) else None
        caller = from_caller_id(event.number, self.region, absence=absence)
        if event.number is None and event.raw_number and absence == "other":
            call.notes.append(f"caller ID said {event.raw_number!r}")
        decided = self._decide(call, caller, now)
        # the new call's seizure before the old call's log and after-call work (every
        # millisecond counts), but after its release: the line is put down, then taken again
        first = [a for a in [*ended, *decided] if isinstance(a, Release | Seize)]
        return first + [a for a in [*ended, *decided] if not isinstance(a, Release | Seize)]

    def ring(self, at: Instant) -> list[CallAction]:
        now = moment(at)
        call = self._call
        if call is None:
            call = self._start(now)
            self.phase = Phase.AWAITING_CID
        if self.phase is Phase.SEIZED:
            return []  # a RING already on its way when the line was seized
        call.rings += 1
        call.last_ring = now
        return []

    def wants_line_state(self, at: Instant) -> bool:
        """Whether line sensing is needed now: a call is on, or the call-back window is open."""
        return self._call is not None or (
            self._trap is not None and moment(at).mono < self._trap[1]
        )

    def line_off_hook(self, at: Instant) -> list[CallAction]:
        """Line sensing: a phone in the house was picked up."""
        now = moment(at)
        call = self._call
        if call is None and self._trap is not None:
            after, until = self._trap
            self._trap = None
            if now.mono < until:  # the resident is dialling out soon after a suspicious call
                return [CallBackReminder(after)]
        if call is None or self.phase is Phase.SEIZED:
            return []
        if self.phase in (Phase.RINGING, Phase.AWAITING_CID):
            call.answered_at = now
            self.phase = Phase.IN_CALL
            warned = call.verdict is not None and call.verdict.action is VerdictAction.WARN
            if warned and self.line_warning:
                call.notes.append("warning spoken down the line")
                return [SpeakOnLine(call.call_id)]
        return []

    def line_on_hook(self, at: Instant) -> list[CallAction]:
        """Line sensing: every phone is back on the hook."""
        if self._call is not None and self.phase is Phase.IN_CALL:
            return self._end(moment(at))
        return []

    def tick(self, at: Instant) -> list[CallAction]:
        now = moment(at)
        call = self._call
        deadline = self.next_deadline()
        if call is None or deadline is None or now.mono < deadline:
            return []
        if self.phase is Phase.AWAITING_CID:
            call.notes.append("no caller ID")
            caller = from_caller_id(None, self.region, absence="missing")
            return self._decide(call, caller, now)
        if self.phase is Phase.SEIZED:
            return self._end(now)  # Release first
        if self.phase is Phase.IN_CALL:  # the grooming threshold has passed
            call.alerted = True
            minutes = f"{self.grooming_minutes:g}"
            call.notes.append(f"grooming alert: an unknown caller kept the line over {minutes} min")
            return [GroomingAlert(call.call_id, self._record(call, now, ended=False))]
        return self._end(now)

    def modem_lost(self, at: Instant) -> list[CallAction]:
        if self._call is None:
            return []
        return self._end(moment(at), note="the modem was lost during the call", after=False)

    def reset(self, at: Instant, note: str) -> list[CallAction]:
        """Abandon the current call after a fault (logged with ``note``)."""
        if self._call is None:
            return []
        return self._end(moment(at), note=note)

    # -- internals ---------------------------------------------------------------------------

    def _start(self, now: Moment) -> _Call:
        self._call = _Call(next(self._ids), now)
        self.phase = Phase.RINGING
        return self._call

    def _decide(self, call: _Call, caller: Caller, now: Moment) -> list[CallAction]:
        verdict = self._screen(caller, now.wall, call.name)
        call.caller, call.verdict = caller, verdict
        actions: list[CallAction] = [Screened(call.call_id, caller, verdict)]
        if verdict.action is VerdictAction.BLOCK:
            call.seized_at = now
            self.phase = Phase.SEIZED
            actions.insert(0, Seize(call.call_id))  # first: every millisecond counts
            return actions
        if self.phase is not Phase.IN_CALL:
            self.phase = Phase.RINGING
        if verdict.action is VerdictAction.WARN:
            actions.append(Warn(call.call_id, caller, verdict))
        return actions

    def _end(self, now: Moment, note: str | None = None, after: bool = True) -> list[CallAction]:
        call = self._call
        assert call is not None
        # whatever ends a seized call (its hold is up, a new caller ID, a fault, a stop), the
        # line is put down first
        actions: list[CallAction] = [Release(call.call_id)] if self.phase is Phase.SEIZED else []
        if note:
            call.notes.append(note)
        if call.verdict is None:  # ended before a verdict: screen what we know, for the log
            call.caller = call.caller or from_caller_id(None, self.region, absence="missing")
            call.verdict = self._screen(call.caller, now.wall, call.name)
        record = self._record(call, now, ended=True)
        self._call = None
        self.phase = Phase.IDLE
        suspicious = call.verdict.action is VerdictAction.WARN or call.verdict.impersonation
        if suspicious and self.line_sensing:
            self._trap = (call.call_id, now.mono + CALL_BACK_WINDOW_S)
        actions.append(LogCall(record))
        if after:
            actions.append(AfterCall(call.call_id))
        return actions

    def _record(self, call: _Call, now: Moment, ended: bool) -> CallRecord:
        caller, verdict = call.caller, call.verdict
        answered: bool | None
        duration: float | None = None
        if verdict is not None and verdict.action is VerdictAction.BLOCK:
            answered = False  # the resident never spoke to a blocked caller
        elif call.answered_at is not None:
            answered = True
            if ended:
                duration = round(max(0.0, now.mono - call.answered_at.mono), 1)
        elif self.line_sensing and ended:
            answered = False
        else:
            answered = None
        reason = verdict.reason if verdict else "Screening..."
        if "no caller ID" in call.notes:
            reason = "No caller ID was received. " + reason
        return CallRecord(
            call_id=call.call_id,
            started=call.started.wall,
            ended=now.wall if ended else None,
            number=caller.key if caller else None,
            display=caller.display if caller else None,
            category=caller.category if caller else Category.UNAVAILABLE,
            name=call.name or (verdict.name if verdict else None),
            verdict=verdict.action if verdict else None,
            rule=verdict.rule if verdict else None,
            reason=reason,
            answered=answered,
            duration_s=duration,
            rings=call.rings,
            caller_id=call.had_caller_id,
            impersonation=bool(verdict and verdict.impersonation),
            grooming_alert=call.alerted,
            name_claim=bool(verdict and verdict.rule == "name-claim"),
            notes=tuple(call.notes),
        )
