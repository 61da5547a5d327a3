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
  awaiting    line off-hook         -> answered before caller ID: an unknown caller until
                                       it comes (SpeakOnLine with warning.line) -> in_call
  ringing     RING                  -> count it
  ringing     line off-hook         -> answered (line sensing, when configured)
  ringing     ring_gap_s, no RING   -> end: unanswered (or unknown without line sensing)
  ringing     line off-hook, WARN   -> SpeakOnLine (with warning.line)     -> in_call
  in_call     caller ID, none yet   -> who it was: screened again, never seized (the
              (within late_cid_s)      resident is talking; a BLOCK is logged as warned)
  in_call     cid_wait_s passes,    -> screen a caller with no caller ID, never seized
              no caller ID yet
  in_call     grooming.minutes pass -> GroomingAlert (callers not on the allow list, once)
  in_call     line on-hook          -> end: answered, with its duration
  in_call     LineHeld (CallGuard   -> remembered: an on-hook seen during it, or just after
              spoke on the line)       it, is logged as "at most" (below)
  seized      line off-hook that    -> the phone was answered before CallGuard took the
              began before the seize   line: Release at once -> in_call (warned, not blocked)
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

The grooming watch covers every answered call whose caller is not on the allow list (rule
``allow``): a caller the mode or a category setting lets ring is still unknown, and so is a
call answered before its caller ID arrived, or with none at all (no caller ID is itself
suspicious). It starts when the call is answered. A caller ID that arrives after the answer
says who it was: on the allow list, the watch is dropped; a number CallGuard would block is
not seized in the resident's face but logged as warned, and watched as any unknown caller.

How long a call lasted is the resident's conversation: from the line going off-hook to the
resident's phone going back on-hook, as line sensing saw them. ``duration_s`` is never shorter
than the call. When the end was not seen, the record says so (``end_seen`` false and a note):

* CallGuard itself held the line (speaking the warning: the modem off-hook looks exactly like
  a lifted phone, and line sensing is paused) and the on-hook was first seen during that hold
  or within :data:`HELD_LINE_GRACE_S` of its end (:class:`LineHeld`): the resident may have put
  the phone down at any time while the modem held the line, so ``duration_s`` is an upper
  bound ("the duration is at most ...").
* the call ended for another reason (the modem was lost, a fault, CallGuard stopped, a new
  call's caller ID): nothing bounds it, so ``duration_s`` is null and a note gives how long it
  had lasted at least.

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
import math
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

HELD_LINE_GRACE_S = 1.5
"""An on-hook first seen this soon after CallGuard let go of the line may have happened while it
held it: line sensing takes its first reading after the hold within a sampling interval (the
modem's AT-TRV is asked at once, the GPIO sensor every 0.1 s), plus a busy Pi's slack."""

ANSWERED_BEFORE_CID = "answered before caller ID arrived"
"""The note on a call answered before its caller ID arrived (or with none at all)."""

NOT_TAKEN = "the resident had already answered, so CallGuard did not take the line"


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
    """An unknown caller's call was just answered: join the line and speak the warning. The
    daemon reports the time it held the line back as a :class:`LineHeld`."""

    call_id: int


@dataclass(frozen=True)
class LineHeld:
    """An input, not an action: CallGuard itself held the line off-hook for call ``call_id``
    from ``since`` to ``until`` (monotonic seconds, the clock of :attr:`Moment.mono`), to
    speak the warning. Line sensing could not see the resident meanwhile (the modem off-hook
    looks like a lifted phone; sensing is paused). Reported before sensing resumes, so it
    comes before any on-hook seen after the hold. ``caller_hung_up``: the modem heard the far
    end go (busy or dial tone) before the warning was over."""

    call_id: int
    since: float
    until: float
    caller_hung_up: bool = False


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


class _End(enum.Enum):
    """How the end of an answered call was known (see the module docstring)."""

    SEEN = "seen"
    """Line sensing saw the phone put down: the duration is true to a sampling interval."""
    AT_MOST = "at most"
    """Put down while CallGuard held the line, or just after: the duration is an upper bound."""
    UNSEEN = "unseen"
    """Ended for another reason (modem lost, fault, stop, a new call): no duration."""


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
    cid_at: Moment | None = None
    """When the caller ID arrived (None: not yet, or never)."""
    cid_missing: bool = False
    """The wait for caller ID ran out with none (cleared if it arrives late)."""
    answered_before_cid: bool = False
    provisional: bool = False
    """The verdict is the stand-in for a call answered before its caller ID arrived."""
    unblocked: Verdict | None = None
    """Screening said BLOCK, but the resident was already talking: logged as warned."""
    held: LineHeld | None = None
    end: _End | None = None
    """How the end of an answered call was known; None while it goes on."""
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
    late_cid_s: float = 15.0
    """A caller ID arriving this long after the first RING of a call answered with none yet is
    still that call's (a router may send it late); later, with a phone off-hook, it is
    another call's."""


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
        if self.phase is Phase.IN_CALL:
            due = [d for d in (self._cid_due(call), self._grooming_due(call)) if d is not None]
            return min(due) if due else None
        return None

    def _cid_due(self, call: _Call) -> float | None:
        """When an answered call with no caller ID yet is taken to have none."""
        if call.had_caller_id or call.cid_missing:
            return None
        return call.started.mono + self.timing.cid_wait_s

    def _grooming_due(self, call: _Call) -> float | None:
        """When the grooming alert is due: an answered call from someone not on the allow
        list (whatever let it ring), not yet alerted."""
        if (
            self.grooming_minutes is None
            or call.answered_at is None
            or call.alerted
            or call.verdict is None
            or call.verdict.rule == "allow"
        ):
            return None
        return call.answered_at.mono + self.grooming_minutes * 60.0

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
            and (
                self.phase in (Phase.AWAITING_CID, Phase.RINGING)
                or (
                    self.phase is Phase.IN_CALL
                    and now.mono - call.started.mono <= self.timing.late_cid_s
                )
            )
        )
        if call is not None and not late_for_this_call:
            ended = self._end(now, note="a new call arrived")
            call = None
        if call is None:
            call = self._start(now)
        elif call.cid_missing:
            call.cid_missing = False
            call.notes.remove("no caller ID")
            call.notes.append("caller ID arrived late")
        call.burst = event.burst
        call.had_caller_id = True
        call.cid_at = now
        call.name = _real_name(event.name)
        absence = event.absence.value if isinstance(event.absence, Absence) else None
        caller = from_caller_id(event.number, self.region, absence=absence)
        if event.number is None and event.raw_number and absence == "other":
            call.notes.append(f"caller ID said {event.raw_number!r}")
        if self.phase is Phase.IN_CALL:  # answered before it came: who it was, never a seizure
            return [*ended, *self._refine(call, caller, now)]
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
        if call is None:
            return []
        if self.phase is Phase.SEIZED:
            return self._answered_before_the_seizure(call, now)
        if self.phase not in (Phase.RINGING, Phase.AWAITING_CID):
            return []
        call.answered_at = now
        actions: list[CallAction] = []
        if call.verdict is None:  # answered before caller ID arrived: unknown until it does
            call.answered_before_cid = call.provisional = True
            call.notes.append(ANSWERED_BEFORE_CID)
            call.caller = from_caller_id(None, self.region, absence="missing")
            call.verdict = Verdict(
                VerdictAction.WARN,
                "Warned: answered before caller ID arrived, so the caller is not known.",
                call.caller.category,
                "answered-before-caller-id",
                None,
                None,
            )
            actions.append(Screened(call.call_id, call.caller, call.verdict))
        elif call.cid_at is not None and now.mono < call.cid_at.mono:
            # line sensing confirms a lift a moment after it began: caller ID came in between
            call.answered_before_cid = True
            call.notes.append(ANSWERED_BEFORE_CID)
        self.phase = Phase.IN_CALL
        if call.verdict.action is VerdictAction.WARN and self.line_warning:
            call.notes.append("warning spoken down the line")
            actions.append(SpeakOnLine(call.call_id))
        return actions

    def _answered_before_the_seizure(self, call: _Call, now: Moment) -> list[CallAction]:
        """Seized, and line sensing now reports a lift that began before the seizure (its
        confirmation was queued behind the caller ID): the resident was already talking, so
        let go at once and follow the call as answered. A lift that began after the seizure
        is CallGuard's own off-hook (line sensing is paused then): nothing."""
        if call.seized_at is None or now.mono >= call.seized_at.mono or call.verdict is None:
            return []
        call.seized_at = None
        call.answered_at = now
        if call.cid_at is not None and now.mono < call.cid_at.mono:
            call.answered_before_cid = True
            call.notes.append(ANSWERED_BEFORE_CID)
        call.notes.append("the phone had been answered before CallGuard took the line: let go")
        self.phase = Phase.IN_CALL
        assert call.caller is not None
        call.unblocked = call.verdict
        call.verdict = _not_blocked(call.verdict)
        actions: list[CallAction] = [
            Release(call.call_id),
            Screened(call.call_id, call.caller, call.verdict),
        ]
        if self.line_warning:
            call.notes.append("warning spoken down the line")
            actions.append(SpeakOnLine(call.call_id))
        return actions

    def line_on_hook(self, at: Instant) -> list[CallAction]:
        """Line sensing: every phone is back on the hook."""
        now = moment(at)
        call = self._call
        if call is None or self.phase is not Phase.IN_CALL:
            return []
        held = call.held
        if held is not None and held.since <= now.mono <= held.until + HELD_LINE_GRACE_S:
            assert call.answered_at is not None
            upper = _up_to_tenth(now.mono - call.answered_at.mono)
            into = max(0.0, held.until - call.answered_at.mono)
            call.notes.append(
                "the end of the call could not be seen: CallGuard held the line to speak the "
                f"warning until {into:.0f} s into the call, so the duration is at most {upper:g} s"
            )
            return self._end(now, end=_End.AT_MOST)
        return self._end(now, end=_End.SEEN)

    def line_held(self, held: LineHeld, at: Instant) -> list[CallAction]:
        """CallGuard held the line itself (see :class:`LineHeld`); returns no actions."""
        call = self._call
        if call is None or call.call_id != held.call_id or self.phase is not Phase.IN_CALL:
            return []  # that call is over (its end did not come from line sensing)
        call.held = held
        if held.caller_hung_up:
            call.notes.append("the caller hung up while CallGuard was speaking the warning")
        return []

    def tick(self, at: Instant) -> list[CallAction]:
        now = moment(at)
        call = self._call
        deadline = self.next_deadline()
        if call is None or deadline is None or now.mono < deadline:
            return []
        if self.phase is Phase.AWAITING_CID:
            call.cid_missing = True
            call.notes.append("no caller ID")
            caller = from_caller_id(None, self.region, absence="missing")
            return self._decide(call, caller, now)
        if self.phase is Phase.SEIZED:
            return self._end(now)  # Release first
        if self.phase is Phase.IN_CALL:
            actions: list[CallAction] = []
            cid_due = self._cid_due(call)
            if cid_due is not None and now.mono >= cid_due:  # answered, and none ever came
                call.cid_missing = True
                call.notes.append("no caller ID")
                caller = from_caller_id(None, self.region, absence="missing")
                actions += self._refine(call, caller, now)
            grooming_due = self._grooming_due(call)
            if grooming_due is not None and now.mono >= grooming_due:
                call.alerted = True
                minutes = f"{self.grooming_minutes:g}"
                call.notes.append(
                    f"grooming alert: an unknown caller kept the line over {minutes} min"
                )
                actions.append(GroomingAlert(call.call_id, self._record(call, now, ended=False)))
            return actions
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

    def _refine(self, call: _Call, caller: Caller, now: Moment) -> list[CallAction]:
        """Who an answered call came from, learnt after the answer: screened, never seized."""
        verdict = self._screen(caller, now.wall, call.name)
        if verdict.action is VerdictAction.BLOCK:
            call.unblocked, verdict = verdict, _not_blocked(verdict)
        call.caller, call.verdict, call.provisional = caller, verdict, False
        return [Screened(call.call_id, caller, verdict)]

    def _end(
        self,
        now: Moment,
        note: str | None = None,
        after: bool = True,
        end: _End = _End.UNSEEN,
    ) -> list[CallAction]:
        call = self._call
        assert call is not None
        # whatever ends a seized call (its hold is up, a new caller ID, a fault, a stop), the
        # line is put down first
        actions: list[CallAction] = [Release(call.call_id)] if self.phase is Phase.SEIZED else []
        if note:
            call.notes.append(note)
        if call.answered_at is not None:
            call.end = end
            if end is _End.UNSEEN:
                lasted = max(0.0, now.mono - call.answered_at.mono)
                call.notes.append(
                    f"the end of the call could not be seen: it lasted at least {lasted:.0f} s"
                )
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
        end_seen: bool | None = None
        if verdict is not None and verdict.action is VerdictAction.BLOCK:
            answered = False  # the resident never spoke to a blocked caller
        elif call.answered_at is not None:
            answered = True
            if ended:
                end_seen = call.end is _End.SEEN
                lasted = max(0.0, now.mono - call.answered_at.mono)
                if call.end is _End.SEEN:
                    duration = round(lasted, 1)
                elif call.end is _End.AT_MOST:
                    duration = _up_to_tenth(lasted)  # an upper bound: never shorter than the call
        elif self.line_sensing and ended:
            answered = False
        else:
            answered = None
        reason = verdict.reason if verdict else "Screening..."
        if call.cid_missing:
            reason = "No caller ID was received. " + reason
        if call.answered_before_cid and not call.provisional:
            reason = "Answered before caller ID arrived. " + reason
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
            impersonation=bool(
                (verdict and verdict.impersonation)
                or (call.unblocked and call.unblocked.impersonation)
            ),
            grooming_alert=call.alerted,
            name_claim=bool(verdict and verdict.rule == "name-claim"),
            notes=tuple(call.notes),
            end_seen=end_seen,
        )


def _up_to_tenth(seconds: float) -> float:
    """``seconds`` rounded up to a tenth (an upper bound stays one)."""
    return math.ceil(round(max(0.0, seconds) * 10, 6)) / 10


def _not_blocked(verdict: Verdict) -> Verdict:
    """A BLOCK verdict for a call the resident had already answered: warned instead (the line
    is not taken in their face), keeping the rule, the entry and the name that decided it."""
    said = verdict.reason.removeprefix("Blocked: ").rstrip(".")
    return Verdict(
        VerdictAction.WARN,
        f"Warned, not blocked: {said}; {NOT_TAKEN}.",
        verdict.category,
        verdict.rule,
        verdict.match,
        verdict.name,
    )
