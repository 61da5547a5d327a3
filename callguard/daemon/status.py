"""The status board: what ``callguard status`` shows, kept by the daemon and written when it
changes: a moment after the change (:data:`~callguard.daemon.actions.SETTLE_S`), never on the
seize path nor just after a call, when the next caller ID is likeliest.

It keeps what only the daemon knows (the modem's last report, the counts since start, the last
call) and reads the rest from the parts that own it when a snapshot is taken.
"""

from __future__ import annotations

import collections
import datetime as dt
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from callguard.core.call import LineState
from callguard.core.record import CallRecord
from callguard.modem.transport import TransportStatus
from callguard.version import version_info

RECENT_CALLS = 20
"""Calls the board remembers, for the button's "block the last caller"."""

UNKNOWN_LINE_VOLTAGE: dict[str, Any] = {
    "volts": None,
    "dead": None,
    "since": None,
    "checked": None,
    "detail": "not read",
}
"""``line_voltage`` when nothing has read it (no modem that answers ``AT-TRV``)."""


@dataclass(frozen=True)
class Live:
    """What the other parts of the daemon say at the moment of a snapshot."""

    line: LineState
    off_hook: bool
    on_hook_failures: int
    current_call: CallRecord | None
    grooming_alert: bool
    indicators: dict[str, Any]
    line_sense: dict[str, Any]
    lists: dict[str, int]
    unlogged_calls: int
    clock_synchronised: bool = True
    caller_id_timing: str = "unknown"
    line_voltage: dict[str, Any] = field(default_factory=lambda: dict(UNKNOWN_LINE_VOLTAGE))
    """Is the line alive: ``volts``, ``dead``, ``since``, ``checked`` (see
    :class:`callguard.hardware.linesense.LineVoltage`)."""


class CallerIdTiming:
    """Whether this line sends caller ID before or after the first ring, learnt from calls.

    UK lines (BT SIN 227) send it before the first ring, and CallGuard can then seize a blocked
    call before the phone rings; some router phone ports (Digital Voice) send it after, and
    then a blocked caller's first ring is heard. The verdict is the more common of the last
    :data:`REMEMBERED` calls' timings: ``before-first-ring``, ``after-first-ring``, or
    ``unknown`` before the first caller ID.
    """

    REMEMBERED = 5

    def __init__(self) -> None:
        self.seen: collections.deque[bool] = collections.deque(maxlen=self.REMEMBERED)

    def saw(self, call: CallRecord | None) -> bool:
        """A caller ID for ``call`` (the machine's call once it is taken in): True if the
        verdict may have changed."""
        if call is None:
            return False
        before = self.verdict()
        self.seen.append(call.rings == 0)
        return self.verdict() != before

    def verdict(self) -> str:
        if not self.seen:
            return "unknown"
        early = sum(self.seen)
        return "before-first-ring" if early * 2 >= len(self.seen) else "after-first-ring"


class StatusBoard:
    """Counts, the modem's state and the last call; :meth:`snapshot` gives the status JSON."""

    def __init__(self, clock: Callable[[], dt.datetime], port: str) -> None:
        self.clock = clock
        self.port = port
        self.started = clock()
        self.modem: TransportStatus | None = None
        self.last_call: CallRecord | None = None
        self._recent: collections.deque[CallRecord] = collections.deque(maxlen=RECENT_CALLS)
        self.counts = {"calls": 0, "blocked": 0, "warned": 0, "impersonations": 0}
        self.dirty = True

    def changed(self) -> None:
        """Something shown in the status changed: write it after this input is handled."""
        self.dirty = True

    def modem_changed(self, status: TransportStatus) -> None:
        self.modem = status
        self.dirty = True

    def recent_calls(self) -> list[CallRecord]:
        """The calls logged since the start (the last :data:`RECENT_CALLS`), newest first."""
        return list(reversed(self._recent))

    def call_logged(self, record: CallRecord) -> None:
        self.last_call = record
        self._recent.append(record)
        self.counts["calls"] += 1
        if record.suspicious and record.verdict is not None:
            self.counts[record.verdict.value] += 1
        if record.impersonation:
            self.counts["impersonations"] += 1
        self.dirty = True

    def line_text(self, live: Live) -> str:
        """One line for systemd's STATUS= (``systemctl status callguard``)."""
        modem = self.modem.detail if self.modem else "modem not found yet"
        held = "; LINE HELD OFF-HOOK, retrying" if live.on_hook_failures else ""
        dead = "; THE PHONE LINE IS DEAD (no line voltage)" if live.line_voltage.get("dead") else ""
        return f"{live.line.value}{held}{dead}; {modem}"

    def snapshot(self, state: str, live: Live) -> dict[str, Any]:
        modem = self.modem
        connected = bool(modem and modem.connected)
        return {
            "daemon": state,
            **version_info(),
            "pid": os.getpid(),
            "started": self.started.isoformat(timespec="seconds"),
            "updated": self.clock().isoformat(timespec="seconds"),
            "modem": "connected" if connected else "disconnected",
            "modem_detail": {
                "detail": modem.detail if modem else "not started",
                "port": self.port,
                "profile": modem.profile if modem else None,
                "identity": modem.identity if modem else None,
                "warnings": list(modem.warnings) if modem else [],
            },
            "line": live.line.value,
            "off_hook": live.off_hook,
            "current_call": _json(live.current_call),
            "last_call": _json(self.last_call),
            "grooming_alert": live.grooming_alert,
            "indicators": live.indicators,
            "line_sense": live.line_sense,
            "lists": live.lists,
            "counts_since_start": dict(self.counts),
            "unlogged_calls": live.unlogged_calls,
            "clock_synchronised": live.clock_synchronised,
            "caller_id_timing": live.caller_id_timing,
            "line_voltage": dict(live.line_voltage),
        }


def _json(record: CallRecord | None) -> dict[str, Any] | None:
    return record.to_json() if record is not None else None
