"""Calls and scenarios as data, and the player that puts them on the simulated line.

Theory of operation
-------------------
A `Call` describes what the telephone network does (caller ID, ring cadence) and what the
people on the line do (a phone elsewhere answers after N rings, talks, hangs up). `timeline()`
turns a call into a list of `(offset_s, event)` steps in nominal seconds; the player walks that
list in a thread, scaling every offset by the modem's `time_scale`.

The player holds the line's lock (a `threading.Condition`) at all times except while it waits,
so "is the modem off-hook?" and "write RING" are one atomic step: a RING is never written after
the modem has seized the line. It watches the modem's hook-event log rather than the current
hook state, so an `ATH1` followed at once by `ATH0` is still seen as a seize and a release.

Timings come from the standards (see DOMAIN.md):

* UK, BT SIN 227 / ETSI EN 300 659: caller ID is sent *before* the first ring, then at least
  200 ms of silence (we use 0.5 s), then RING every 3 s (UK cadence 0.4/0.2/0.4 on, 2.0 off).
* US, Telcordia (Bellcore) GR-30: first ring, caller ID in the silent interval (~1.5 s after
  RING is reported), then RING every 6 s (2 s on, 4 s off).

Caller ID lines reach the client only if the modem's firmware decodes them (`AT+VCID=1` or
`AT#CID=1`); the call still happens on the line either way.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

CallStyle = Literal["uk", "us"]
Outcome = Literal["pending", "ringing", "seized", "answered", "unanswered", "busy", "aborted"]

FINAL_OUTCOMES: frozenset[str] = frozenset({"seized", "answered", "unanswered", "busy", "aborted"})


@dataclass(frozen=True)
class CallTiming:
    """Nominal line timings in seconds (before `time_scale`); see the module docstring."""

    uk_cid_to_ring_s: float = 0.5
    uk_ring_period_s: float = 3.0
    us_ring_to_cid_s: float = 1.5
    us_ring_period_s: float = 6.0
    answer_delay_s: float = 1.0
    """How long after a RING a person elsewhere lifts the receiver (less than a ring period)."""


DEFAULT_TIMING = CallTiming()


@dataclass(frozen=True)
class Call:
    """One incoming call, as the network and the people in the house will play it.

    `number` is the raw NMBR value ("01707354000", "P" withheld, "O" unavailable, "PRIVATE");
    None means the network sends no caller ID at all. `cid_lines` overrides the formatted
    lines completely (for odd variants such as "NMBR=P" or a number followed by "NMBR = O").
    `date_time` is (MMDD, HHMM); by default it comes from the wall clock when the call starts.
    """

    number: str | None
    name: str | None = None
    style: CallStyle = "uk"
    rings: int = 5
    answer_after_rings: int | None = None
    talk_s: float = 0.0
    cid_lines: tuple[str, ...] | None = None
    spaces: bool = True
    date_time: tuple[str, str] | None = None

    def __post_init__(self) -> None:
        if self.style not in ("uk", "us"):
            raise ValueError(f"Call.style is {self.style!r}; expected 'uk' or 'us'")
        if self.rings < 0:
            raise ValueError(f"Call.rings is {self.rings}; expected 0 or more")
        if self.answer_after_rings is not None and not 1 <= self.answer_after_rings <= self.rings:
            raise ValueError(
                f"Call.answer_after_rings is {self.answer_after_rings}; expected 1..{self.rings}"
                " (the caller gives up after `rings` rings) or None"
            )
        if self.talk_s < 0:
            raise ValueError(f"Call.talk_s is {self.talk_s}; expected 0 or more")
        if self.cid_lines is not None and not isinstance(self.cid_lines, tuple):
            object.__setattr__(self, "cid_lines", tuple(self.cid_lines))

    @property
    def sends_cid(self) -> bool:
        return self.number is not None or bool(self.cid_lines)

    def caller_id_lines(self, now_struct: time.struct_time | None = None) -> tuple[str, ...]:
        """The formatted lines a modem prints for this call (`AT+VCID=1` style).

        Order DATE, TIME, NMBR, NAME follows the MDMF field order of both BT SIN 227 and
        Bellcore GR-30; UK calls usually carry no NAME.
        """
        if self.cid_lines is not None:
            return self.cid_lines
        if self.number is None:
            return ()
        if self.date_time is not None:
            mmdd, hhmm = self.date_time
        else:
            tm = now_struct or time.localtime()
            mmdd, hhmm = time.strftime("%m%d", tm), time.strftime("%H%M", tm)
        sep = " = " if self.spaces else "="
        lines = [f"DATE{sep}{mmdd}", f"TIME{sep}{hhmm}", f"NMBR{sep}{self.number}"]
        if self.name is not None:
            lines.append(f"NAME{sep}{self.name}")
        return tuple(lines)


@dataclass
class CallRecord:
    """What happened to one call, updated live by the player thread.

    Each field is written once (lists only grow), so a test may read it at any time. Times are
    `time.monotonic()`; `cid_sent_at` and `rings` are taken after the write to the pty returned,
    and only for output that actually went out (none while the modem is hung or unplugged).
    `seized_at` / `released_at` are the modem's own hook changes during this call;
    `answered_at` / `ended_at` a phone elsewhere picking up and hanging up (or, on a seized
    line, the caller hanging up: `SimModem.hang_up`); `finished_at` when the player let go of
    the line. `outcome` goes pending -> ringing -> one of seized, answered, unanswered, busy
    (line in use when the call came) or aborted (sim stopped).

    A person can steer a call while it plays (`SimModem.answer` / `SimModem.hang_up` set the
    two requests below under the line's lock): an answer request is taken at the next wait
    while it rings; a hang-up request makes a ringing caller give up, ends a conversation, or
    ends a seized call from the caller's side.
    """

    call: Call
    outcome: Outcome = "pending"
    started_at: float | None = None
    cid_sent_at: float | None = None
    rings: list[float] = field(default_factory=list)
    seized_at: float | None = None
    released_at: float | None = None
    answered_at: float | None = None
    ended_at: float | None = None
    finished_at: float | None = None
    _done: threading.Event = field(
        default_factory=threading.Event, init=False, repr=False, compare=False
    )
    _answer_asked: bool = field(default=False, init=False, repr=False, compare=False)
    _hang_up_asked: bool = field(default=False, init=False, repr=False, compare=False)

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def wait(self, timeout_s: float | None = None) -> CallRecord:
        if not self._done.wait(timeout_s):
            raise TimeoutError(
                f"call from {self.call.number!r} still {self.outcome} after {timeout_s} s;"
                " a seized call ends only when the modem goes back on-hook (ATH0 / AT+VLS=0)"
            )
        return self


class CallHandle:
    """Returned by `SimModem.place_call`: the live record and a way to wait for the end."""

    def __init__(self, record: CallRecord, thread: threading.Thread | None = None) -> None:
        self.record = record
        self._thread = thread

    @property
    def done(self) -> bool:
        return self.record.done

    def wait(self, timeout_s: float | None = None) -> CallRecord:
        """Block until the call is over; raises TimeoutError if it is not over in time."""
        return self.record.wait(timeout_s)


@dataclass(frozen=True)
class Scenario:
    """A named list of calls, each placed `offset_s` (nominal seconds) after the start."""

    name: str
    calls: tuple[tuple[float, Call], ...]

    def __init__(self, name: str, calls: Iterable[tuple[float, Call]]) -> None:
        ordered = tuple(sorted(((float(o), c) for o, c in calls), key=lambda oc: oc[0]))
        for offset, _ in ordered:
            if offset < 0:
                raise ValueError(f"scenario {name!r}: offset {offset} is negative")
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "calls", ordered)


EventKind = Literal["cid", "ring", "answer", "give_up"]


def timeline(call: Call, timing: CallTiming = DEFAULT_TIMING) -> list[tuple[float, EventKind]]:
    """The call's steps as (nominal offset in seconds, event), in order.

    "answer" means a phone elsewhere lifts the receiver; the call then lasts `talk_s`.
    "give_up" is the caller hanging up after the last unanswered ring's period.
    """
    steps: list[tuple[float, EventKind]] = []
    if call.style == "uk":
        first_ring, period = timing.uk_cid_to_ring_s, timing.uk_ring_period_s
        if call.sends_cid:
            steps.append((0.0, "cid"))
    else:
        first_ring, period = 0.0, timing.us_ring_period_s
    ring_times = [first_ring + i * period for i in range(call.rings)]
    for i, t in enumerate(ring_times):
        steps.append((t, "ring"))
        if call.style == "us" and i == 0 and call.sends_cid:
            steps.append((t + timing.us_ring_to_cid_s, "cid"))
        if call.answer_after_rings == i + 1:
            steps.append((t + timing.answer_delay_s, "answer"))
            steps.sort(key=lambda s: s[0])
            return [s for s in steps if s[0] <= t + timing.answer_delay_s]
    steps.append((first_ring + call.rings * period, "give_up"))
    steps.sort(key=lambda s: s[0])
    return steps


class Line(Protocol):
    """What the player needs from the modem it rings. Every method is called with `cond` held."""

    cond: threading.Condition
    time_scale: float

    def stopping(self) -> bool: ...

    def claim(self, record: CallRecord) -> bool:
        """Make `record` the call on the line; False if the line is busy."""
        ...

    def release(self, record: CallRecord) -> None: ...

    def hook_log(self) -> Sequence[tuple[float, bool]]:
        """The modem's hook changes so far (append-only)."""
        ...

    def modem_off_hook(self) -> bool: ...

    def decodes_cid(self, style: CallStyle) -> bool: ...

    def emit_cid(self, lines: Sequence[str]) -> float | None:
        """Write the caller ID block; the time after the write, or None if nothing went out."""
        ...

    def emit_ring(self) -> float | None: ...

    def set_extension_off_hook(self, off_hook: bool) -> None: ...


def play_call(line: Line, record: CallRecord, timing: CallTiming = DEFAULT_TIMING) -> None:
    """Play one call to the end (runs in its own thread)."""
    call = record.call
    with line.cond:
        try:
            record.started_at = t0 = time.monotonic()
            if not line.claim(record):
                record.outcome = "busy"
                return
            record.outcome = "ringing"
            line.cond.notify_all()
            seen = len(line.hook_log())
            for offset, kind in timeline(call, timing):
                seize = _wait_for_seize(line, record, t0 + offset * line.time_scale, seen)
                if seize is not None:
                    _hold_until_released(line, record, seize)
                    return
                if line.stopping():
                    record.outcome = "aborted"
                    return
                if record._hang_up_asked:
                    record.outcome = "unanswered"
                    return
                if record._answer_asked:
                    _talk(line, record, math.inf)
                    return
                if kind == "cid":
                    if line.decodes_cid(call.style):
                        sent = line.emit_cid(call.caller_id_lines())
                        if sent is not None:
                            record.cid_sent_at = sent
                elif kind == "ring":
                    sent = line.emit_ring()
                    if sent is not None:
                        record.rings.append(sent)
                elif kind == "answer":
                    _talk(line, record, call.talk_s * line.time_scale)
                    return
                else:
                    record.outcome = "unanswered"
                    return
        finally:
            line.release(record)
            record.finished_at = time.monotonic()
            if record.outcome not in FINAL_OUTCOMES:
                record.outcome = "aborted"
            record._done.set()
            line.cond.notify_all()


def _wait_for_seize(line: Line, record: CallRecord, due: float, seen: int) -> int | None:
    """Wait until `due` (or a person's request); return the hook-log index of an off-hook
    event if the modem seized."""
    while True:
        log = line.hook_log()
        for i in range(seen, len(log)):
            if log[i][1]:
                return i
        remaining = due - time.monotonic()
        if remaining <= 0 or line.stopping() or record._answer_asked or record._hang_up_asked:
            return None
        line.cond.wait(remaining)


def _hold_until_released(line: Line, record: CallRecord, index: int) -> None:
    log = line.hook_log()
    record.seized_at = log[index][0]
    record.outcome = "seized"
    line.cond.notify_all()
    while not line.stopping():
        log = line.hook_log()
        for t, off_hook in log[index + 1 :]:
            if not off_hook:
                record.released_at = t
                return
        if record._hang_up_asked:  # the caller hangs up; the modem may still hold the line
            record.ended_at = time.monotonic()
            return
        line.cond.wait(0.5)


def _talk(line: Line, record: CallRecord, talk_s: float) -> None:
    line.set_extension_off_hook(True)
    record.answered_at = time.monotonic()
    record.outcome = "answered"
    line.cond.notify_all()
    due = record.answered_at + talk_s
    while not line.stopping() and not record._hang_up_asked:
        remaining = due - time.monotonic()
        if remaining <= 0:
            break
        line.cond.wait(remaining if math.isfinite(remaining) else None)
    line.set_extension_off_hook(False)
    record.ended_at = time.monotonic()


# Ofcom reserves 01632 960xxx, 020 7946 0xxx and 07700 900xxx for drama: no real subscriber.
SCENARIOS: dict[str, Scenario] = {
    "morning": Scenario(
        "morning",
        [
            # A friend; the phone in the hall is answered on the second ring.
            (0.0, Call("01632960123", rings=6, answer_after_rings=2, talk_s=20.0)),
            # The GP surgery, which withholds its number; nobody home.
            (40.0, Call("P", rings=6)),
            # Courier fraud: "this is the police", from a mobile, rings a long time.
            (80.0, Call("07700900461", rings=8)),
            # An international call: number unavailable.
            (120.0, Call("O", rings=4)),
            # No caller ID at all (an old exchange, or a line without the service).
            (150.0, Call(None, rings=3)),
        ],
    ),
    "withheld": Scenario(
        "withheld",
        [
            (0.0, Call("P", rings=4)),
            (20.0, Call(None, cid_lines=("NMBR=P",), rings=4)),
            (40.0, Call("PRIVATE", rings=4)),
        ],
    ),
    "us": Scenario(
        "us",
        [(0.0, Call("2025550143", name="JANE DOE", style="us", rings=4))],
    ),
}
