"""The call record: what happened on one call, as the log, the status, the alert and the CLI
show it. One type, one :meth:`CallRecord.to_json`, so the fields are written in one place."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from callguard.core.numbers import Category
from callguard.core.screening import Action


@dataclass(frozen=True)
class CallRecord:
    """One call. ``ended`` is None while it goes on; ``answered`` None when nothing could tell
    (no line sensing).

    ``duration_s`` is the resident's conversation, from the line going off-hook to their phone
    going back on-hook, for an answered call that has ended; it is never shorter than the call.
    ``end_seen`` says how to read it: True, line sensing saw the phone put down (true to a
    sampling interval); False, it could not (a note says why): ``duration_s`` is then an upper
    bound when the phone was put down while CallGuard itself held the line to speak the
    warning, or null when nothing bounds it (the modem was lost, a fault, CallGuard stopped).
    None for a call that was not answered or has not ended."""

    call_id: int
    started: dt.datetime
    ended: dt.datetime | None
    number: str | None
    display: str | None
    category: Category
    name: str | None
    verdict: Action | None
    rule: str | None
    reason: str
    answered: bool | None
    duration_s: float | None
    rings: int
    caller_id: bool
    impersonation: bool
    grooming_alert: bool
    name_claim: bool
    notes: tuple[str, ...]
    end_seen: bool | None = None

    @property
    def suspicious(self) -> bool:
        """Blocked or warned: a call the family may want to look at."""
        return self.verdict in (Action.BLOCK, Action.WARN)

    def to_json(self) -> dict[str, Any]:
        """The record as ``log --json``, ``status --json`` and the alert file give it."""
        return {
            "call_id": self.call_id,
            "started": self.started.isoformat(timespec="seconds"),
            "ended": self.ended.isoformat(timespec="seconds") if self.ended else None,
            "number": self.number,
            "display": self.display,
            "category": self.category.value,
            "name": self.name,
            "verdict": self.verdict.value if self.verdict else None,
            "rule": self.rule,
            "reason": self.reason,
            "answered": self.answered,
            "duration_s": self.duration_s,
            "rings": self.rings,
            "caller_id": self.caller_id,
            "impersonation": self.impersonation,
            "grooming_alert": self.grooming_alert,
            "name_claim": self.name_claim,
            "notes": list(self.notes),
            "end_seen": self.end_seen,
        }


def is_unknown_caller(call: dict[str, Any]) -> bool:
    """Whether a logged call (``log --json``'s fields) came from a caller on no list that rang
    or was answered: what the resident means by "the last caller" when they ask to block it.
    A call the allow list let through, one CallGuard blocked, and one that never rang are not."""
    if call.get("verdict") == "blocked" or call.get("rule") in {"allow", "protect", "block"}:
        return False
    return bool(call.get("rings")) or bool(call.get("answered"))


def last_unknown_caller(calls: Iterable[dict[str, Any]]) -> dict[str, Any] | None:
    """The newest unknown caller (see :func:`is_unknown_caller`) among ``calls``, newest first."""
    return next((c for c in calls if is_unknown_caller(c)), None)
