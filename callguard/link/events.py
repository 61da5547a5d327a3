"""What the family hears about: events found in the store, in words a worried relative
understands, with what to do.

``callguard link`` calls :meth:`Watcher.poll` every second or so. The watcher reads what the
screening daemon leaves in the store, never the daemon itself (which keeps the seize path to
itself): the grooming alert's file, the call log (followed by row id), and the live status. Each
event becomes a :class:`Message` with a key that names it for good (the same grooming call,
the same blocked call, the same week), so the outbox queues it once however often it is seen,
across restarts. Where the watcher is in the log, when it first saw the modem missing, and
which alert it last told the family about are kept in the outbox's marks, so a restart neither
repeats an alert nor misses one.

Events (each switched on or off in ``[alerts]``):

* ``grooming``: the grooming light came on (each call that lit it), and ``cleared`` when
  someone acknowledged it ("cleared by Sarah at 14:02");
* ``impersonation``: a call showing a number that never calls out (999, 101, the bank's card
  number) or a short code was blocked;
* ``repeated-calls``: one unknown number rang ``repeated_calls`` times within an hour;
* ``modem-missing`` / ``modem-back``, ``line-dead`` / ``line-back`` (no voltage on the line: a
  cut cable, or a Digital Voice switch-over) and ``screening-stopped`` / ``screening-back``: the
  unit in trouble for ``unit_problem_minutes``, and when it is well again;
* ``weekly-summary``: at ``weekly_summary`` ("Sun 18:00"), the week's calls.
"""

from __future__ import annotations

import collections
import contextlib
import datetime as dt
import logging
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Protocol

from callguard.config import Config, weekly_time
from callguard.store.calllog import CallLog
from callguard.store.state import StateFiles, alert_calls, so_far_s
from callguard.texts import duration_words

log = logging.getLogger(__name__)

IF_IN_DOUBT: Final = "If in doubt, ring 159: it puts you through to your bank's fraud team safely."
NEVER_ASK: Final = "Banks and the police never ask for a PIN, cash, cards or a transfer."
WINDOW: Final = dt.timedelta(hours=1)
"""The window of repeated calls."""
LOG_BATCH: Final = 500


@dataclass(frozen=True)
class Message:
    key: str
    """Names the event for good: the outbox queues a key once."""
    kind: str
    title: str
    body: str


class Marks(Protocol):
    """Where the watcher keeps its place (the outbox's marks)."""

    def get_mark(self, name: str) -> str | None: ...

    def set_mark(self, name: str, value: str) -> None: ...


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists (signal 0: nothing is sent)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: it exists
    except OSError:
        return False
    return True


def screening_state(status: Mapping[str, Any] | None, alive: Callable[[int], bool]) -> str:
    """What the daemon's status says of screening: "running", "stopped" (a clean stop), or
    "not running" (no status, or it says running but its process is gone: a kill -9)."""
    daemon = (status or {}).get("daemon")
    if daemon not in ("running", "stopped"):
        return "not running"
    pid = (status or {}).get("pid")
    if daemon == "running" and isinstance(pid, int) and not alive(pid):
        return "not running"
    return str(daemon)


def screening_runs(status: Mapping[str, Any] | None, alive: Callable[[int], bool]) -> bool:
    return screening_state(status, alive) == "running"


class Watcher:
    """Turns what the store shows into :class:`Message` s; see the module docstring."""

    def __init__(
        self,
        config: Config,
        state: StateFiles,
        calls: CallLog,
        marks: Marks,
        *,
        clock: Callable[[], dt.datetime],
        alive: Callable[[int], bool] = pid_alive,
        on_blocked: Callable[[Mapping[str, Any]], None] | None = None,
    ) -> None:
        self.config = config
        self.state = state
        self.calls = calls
        self.marks = marks
        self.clock = clock
        self.alive = alive
        self.on_blocked = on_blocked
        """Told of each newly logged blocked call (the fleet's community reports)."""

    # -- the one entry point -------------------------------------------------------------

    def poll(self) -> list[Message]:
        """Every event since the last poll (each source on its own: one that fails is logged
        and tried again next time, the others still answer)."""
        out: list[Message] = []
        for source in (self._grooming, self._log, self._unit, self._weekly):
            try:
                out += source()
            except Exception:
                log.exception("could not look at %s for alerts", source.__name__.strip("_"))
        return out

    def _mark(self, name: str, value: str) -> None:
        """Set a mark only if it changes (no write to the card on every poll)."""
        if self.marks.get_mark(name) != value:
            self.marks.set_mark(name, value)

    # -- words -----------------------------------------------------------------------------

    @property
    def resident(self) -> str:
        return self.config.alerts.resident or "the resident"

    def _at(self, text: object) -> str:
        """A call's ISO time as "14:02" today, else "14:02 on Mon 7 Dec"."""
        try:
            when = dt.datetime.fromisoformat(str(text))
        except ValueError:
            return "an unknown time"
        now = self.clock()
        local = when.astimezone(now.tzinfo) if when.tzinfo and now.tzinfo else when
        if local.date() == now.date():
            return local.strftime("%H:%M")
        return f"{local:%H:%M} on {local:%a} {local.day} {local:%b}"

    # -- the grooming alert --------------------------------------------------------------

    def _grooming(self) -> list[Message]:
        alerts = self.config.alerts
        alert = self.state.read_alert()
        if not alerts.grooming or not alert:
            return []
        out: list[Message] = []
        raised = str(alert.get("raised") or "")
        if alert.get("active"):
            for call in alert_calls(alert):
                out.append(self._grooming_message(call))
            self._mark("alert-told", raised)
        elif alert.get("acknowledged") and self.marks.get_mark("alert-told") == raised:
            out.append(self._cleared_message(alert))
        return out

    def _grooming_message(self, call: Mapping[str, Any]) -> Message:
        who = _caller(call)
        lasted = duration_words(so_far_s(call)) or "a long time"
        name = self.resident
        return Message(
            key=f"grooming:{call.get('started')}:{call.get('call_id')}",
            kind="grooming",
            title=f"CallGuard: {name} has been on a long call with an unknown caller",
            body=(
                f"At {self._at(call.get('started'))} {name} answered a call from {who}, a "
                f"caller on no list, and was still on the line after {lasted}. Scammers who "
                "pretend to be the police or a bank keep people talking like this.\n\n"
                f"What to do now: ring {name} on another phone (a mobile, or a neighbour) and "
                "ask who called and what they wanted. If they were asked to move money, to "
                "withdraw cash or to hand over cards, ring the bank on 159 together. "
                f"{NEVER_ASK}\n\n"
                "When you have checked, clear the alert: the button on the unit, the family "
                "page, or `callguard ack --by YOUR-NAME`."
            ),
        )

    def _cleared_message(self, alert: Mapping[str, Any]) -> Message:
        how = cleared_how(str(alert.get("acknowledged_by") or ""))
        when = self._at(alert.get("acknowledged"))
        return Message(
            key=f"cleared:{alert.get('raised')}:{alert.get('acknowledged')}",
            kind="cleared",
            title=f"CallGuard: the grooming alert was cleared {how} at {when}",
            body=(
                f"The grooming alert on {self.resident}'s phone was cleared {how} at {when}: "
                "someone has checked. Nothing more to do unless you hear otherwise."
            ),
        )

    # -- the call log --------------------------------------------------------------------

    def _log(self) -> list[Message]:
        mark = self.marks.get_mark("log-row")
        if mark is None or not mark.isdigit():  # the first start: from now on, not history
            self._mark("log-row", str(self.calls.last_row_id()))
            return []
        out: list[Message] = []
        row = int(mark)
        rows = self.calls.read_after(row, LOG_BATCH)
        for row, call in rows:
            out += self._call_events(row, call)
        if rows:
            self.marks.set_mark("log-row", str(row))
        return out

    def _call_events(self, row: int, call: Mapping[str, Any]) -> list[Message]:
        alerts = self.config.alerts
        out: list[Message] = []
        if self.on_blocked is not None and call.get("verdict") == "blocked":
            try:
                self.on_blocked(call)
            except Exception:
                log.exception("could not pass on a blocked call")
        if alerts.impersonation and call.get("impersonation") and call.get("verdict") == "blocked":
            out.append(self._impersonation_message(row, call))
        if alerts.repeated_calls and _unknown(call) and call.get("number"):
            message = self._repeated_message(row, call, alerts.repeated_calls)
            if message is not None:
                out.append(message)
        return out

    def _impersonation_message(self, row: int, call: Mapping[str, Any]) -> Message:
        name = self.resident
        return Message(
            key=f"impersonation:{row}:{call.get('started')}",
            kind="impersonation",
            title="CallGuard blocked a caller pretending to be the police or a bank",
            body=(
                f"At {self._at(call.get('started'))} a call showing {_caller(call)} was "
                f"blocked before the phone rang. {call.get('reason') or ''}\n\n"
                "Scammers fake these numbers before asking for money or cards, and often try "
                f"again from another number. Ring {name} today to check all is well and to "
                f"remind them: {NEVER_ASK} {IF_IN_DOUBT}"
            ).replace("  ", " "),
        )

    def _repeated_message(self, row: int, call: Mapping[str, Any], times: int) -> Message | None:
        number = str(call.get("number"))
        started = _when(call.get("started"))
        if started is None:
            return None
        recent = [
            c
            for c in self.calls.read_by_number(number, limit=times + 1)
            if _unknown(c)
            and (w := _when(c.get("started"))) is not None
            and started - WINDOW < w <= started
        ]
        if len(recent) != times:  # told once, when it reaches the count
            return None
        blocked = sum(c.get("verdict") == "blocked" for c in recent)
        how = (
            "CallGuard blocked them all"
            if blocked == times
            else f"{times - blocked} of them rang"
            if blocked
            else "the phone rang each time"
        )
        return Message(
            key=f"repeated-calls:{number}:{row}",
            kind="repeated-calls",
            title=f"CallGuard: {_caller(call)} has called {times} times in an hour",
            body=(
                f"{_caller(call).capitalize()}, a number on no list, has called {self.resident}'s "
                f"phone {times} times within the hour up to {self._at(call.get('started'))} "
                f"({how}). Callers who keep ringing back are often scammers trying to wear "
                "someone down or to keep the line busy.\n\n"
                f"If you do not know the number, block it: `callguard block add {number}` or "
                "on the family page. If it may be a real caller (a hospital, a carer), add it "
                "to the allow list instead."
            ),
        )

    # -- the unit itself -------------------------------------------------------------------

    def _unit(self) -> list[Message]:
        minutes = self.config.alerts.unit_problem_minutes
        if not minutes:
            return []
        status = self.state.read_status()
        running = screening_runs(status, self.alive)
        out = self._problem(
            "screening",
            not running,
            minutes,
            "screening-stopped",
            f"CallGuard has stopped screening {self.resident}'s calls",
            "The CallGuard service on the unit has not been running for {lasted}: calls ring "
            "through with no screening and no warnings. Unplugging the unit's power for ten "
            "seconds and plugging it back in usually mends it; if not, ask the volunteer who "
            "fitted it.",
            "screening-back",
            f"CallGuard is screening {self.resident}'s calls again",
            "The CallGuard service is running again, after {lasted} without screening.",
        )
        modem_missing = running and status is not None and status.get("modem") != "connected"
        out += self._problem(
            "modem",
            modem_missing,
            minutes,
            "modem-missing",
            f"CallGuard cannot reach the phone line at {self.resident}'s",
            "The unit's modem has been missing or silent for {lasted}: calls ring through "
            "with no screening. Check that the modem's USB plug is in the unit and its phone "
            "cable in the wall socket (or the router's phone port). If a new router or "
            "broadband was fitted lately, the phone line may have moved: ask the volunteer.",
            "modem-back",
            f"CallGuard has the phone line at {self.resident}'s again",
            "The modem is back and calls are screened again, after {lasted} without.",
        )
        voltage = (status or {}).get("line_voltage")
        line_dead = running and isinstance(voltage, dict) and voltage.get("dead") is True
        out += self._problem(
            "line",
            line_dead and not modem_missing,
            minutes,
            "line-dead",
            f"The phone line at {self.resident}'s is dead",
            "The unit has found no voltage on the phone line for {lasted}: no call can come "
            "in or go out. Check that the phone cable is in the wall socket (or the router's "
            "phone port) and try the phone. If the phone company is moving the line to "
            "Digital Voice, the phone and the unit now plug into the router: ask the volunteer.",
            "line-back",
            f"The phone line at {self.resident}'s works again",
            "The phone line has its voltage back, after {lasted} without.",
        )
        return out

    def _problem(
        self,
        what: str,
        wrong: bool,
        minutes: float,
        kind: str,
        title: str,
        body: str,
        back_kind: str,
        back_title: str,
        back_body: str,
    ) -> list[Message]:
        """One condition that can go wrong and come right: told after ``minutes`` of it, and
        when it is over (only if it was told)."""
        now = self.clock()
        since_mark, told_mark = f"{what}-wrong-since", f"{what}-told"
        since = self.marks.get_mark(since_mark) or ""
        if wrong:
            if not since:
                self._mark(since_mark, now.isoformat(timespec="seconds"))
                return []
            began = _when(since)
            if began is None or self.marks.get_mark(told_mark) == since:
                return []
            if now - began < dt.timedelta(minutes=minutes):
                return []
            self._mark(told_mark, since)
            lasted = duration_words((now - began).total_seconds())
            return [Message(f"{kind}:{since}", kind, title, body.format(lasted=lasted))]
        if not since:
            return []
        self._mark(since_mark, "")
        began = _when(since)
        if self.marks.get_mark(told_mark) != since or began is None:
            return []
        lasted = duration_words((now - began).total_seconds())
        return [
            Message(f"{back_kind}:{since}", back_kind, back_title, back_body.format(lasted=lasted))
        ]

    # -- the weekly summary --------------------------------------------------------------

    def _weekly(self) -> list[Message]:
        when = weekly_time(self.config.alerts.weekly_summary)
        if when is None:
            return []
        now = self.clock()
        due = _last_due(now, *when)
        key = f"weekly-summary:{due.date().isoformat()}"
        told = self.marks.get_mark("weekly-told")
        if told is None:  # the first start: the first summary is the next one due
            self._mark("weekly-told", key)
            return []
        if now - due > dt.timedelta(days=1) or told == key:
            return []  # more than a day late (the unit was off): wait for next week's
        calls = [c for _, c in self._calls_between(due - dt.timedelta(days=7), due)]
        self.marks.set_mark("weekly-told", key)
        return [
            Message(
                key,
                "weekly-summary",
                f"CallGuard: {self.resident}'s calls this week",
                weekly_summary(calls, self.resident, due - dt.timedelta(days=7), due),
            )
        ]

    def _calls_between(
        self, start: dt.datetime, end: dt.datetime
    ) -> Iterable[tuple[dt.datetime, dict[str, Any]]]:
        days = (end.date() - start.date()).days
        for n in range(days + 1):
            for call in self.calls.read_day(start.date() + dt.timedelta(days=n)):
                when = _when(call.get("started"))
                if when is not None and start <= when < end:
                    yield when, call


def cleared_how(by: str) -> str:
    """Who or what cleared the alert, as the other carers read it: "by Sarah", "with the
    button on the unit", "on the family page", "from the volunteers' dashboard"."""
    if by == "the button":
        return "with the button on the unit"
    if by.startswith("family page"):
        return "on the family page"
    if by.startswith("the fleet"):
        return "from the volunteers' dashboard"
    return f"by {by}" if by else "by someone"


def weekly_summary(
    calls: list[dict[str, Any]], resident: str, start: dt.datetime, end: dt.datetime
) -> str:
    """The week's calls in a few lines: counts by verdict, the longest unknown calls, what was
    blocked, and anything that needs a look."""
    by = collections.Counter(str(c.get("verdict")) for c in calls)
    lines = [
        f"{start:%a} {start.day} {start:%b} to {end:%a} {end.day} {end:%b}: "
        f"{len(calls)} call{'s' if len(calls) != 1 else ''} to {resident}'s phone.",
        f"  {by['allowed']} from people on the allow list, {by['warned']} from unknown "
        f"callers (warned), {by['blocked']} blocked before the phone rang.",
    ]
    impersonations = [c for c in calls if c.get("impersonation")]
    if impersonations:
        lines.append(
            f"  {len(impersonations)} of the blocked calls pretended to be the police, a bank "
            "or another number that never calls out."
        )
    alerts = [c for c in calls if c.get("grooming_alert")]
    if alerts:
        times = "once" if len(alerts) == 1 else f"{len(alerts)} times"
        lines.append(f"  The grooming light came on {times}: a long call with an unknown caller.")
    unknown = sorted(
        (c for c in calls if _unknown(c) and isinstance(c.get("duration_s"), int | float)),
        key=lambda c: -float(c["duration_s"]),
    )[:3]
    if unknown:
        lines.append("The longest calls with unknown callers:")
        lines += [
            f"  {_short_when(c)}  {_caller(c)}, {duration_words(c['duration_s'])}" for c in unknown
        ]
    blocked = collections.Counter(
        _caller(c) for c in calls if c.get("verdict") == "blocked"
    ).most_common(5)
    if blocked:
        lines.append("Blocked most:")
        lines += [f"  {who}: {n} call{'s' if n != 1 else ''}" for who, n in blocked]
    if not calls:
        lines.append(
            "No calls at all this week: if that is unusual, check that the phone line works "
            "(a new router or broadband can move it)."
        )
    lines.append("See every call on the family page, or with `callguard log`.")
    return "\n".join(lines)


# -- helpers -----------------------------------------------------------------------------------


def _caller(call: Mapping[str, Any]) -> str:
    display = call.get("display") or call.get("number")
    name = call.get("name")
    if not display:
        category = str(call.get("category") or "")
        return {"withheld": "a withheld number", "unavailable": "an unknown number"}.get(
            category, "a caller with no number"
        )
    return f"{display} ('{name}')" if name else str(display)


def _unknown(call: Mapping[str, Any]) -> bool:
    """A caller on no family list (what the family has not vouched for)."""
    return call.get("verdict") != "allowed" and call.get("rule") not in {"allow", "protect"}


def _when(text: object) -> dt.datetime | None:
    with contextlib.suppress(ValueError, TypeError):
        when = dt.datetime.fromisoformat(str(text))
        return when if when.tzinfo else None
    return None


def _short_when(call: Mapping[str, Any]) -> str:
    when = _when(call.get("started"))
    return f"{when:%a} {when:%H:%M}" if when else "?"


def _last_due(now: dt.datetime, weekday: int, hour: int, minute: int) -> dt.datetime:
    """The latest moment at or before ``now`` with this weekday and time (local)."""
    today = now.replace(hour=hour, minute=minute, second=0, microsecond=0)
    back = (now.weekday() - weekday) % 7
    due = today - dt.timedelta(days=back)
    return due if due <= now else due - dt.timedelta(days=7)
