"""What the family page says, worked out from the store's records: the unit's health in one
sentence, the grooming alert, and calls and list entries as a person reads them.

Plain functions of dicts and entries, no Flask: the app hands the results to the templates,
and the tests call them directly. The words follow the CLI's (``callguard status``, ``log`` and
``list``): a number as ``log`` shows it, durations by :func:`~callguard.texts.duration_words`.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from callguard.core.lists import LIST_TITLES, Entry, shown_note
from callguard.core.numbers import for_people
from callguard.core.record import is_unknown_caller
from callguard.store.state import so_far_s
from callguard.texts import duration_words, shown, unsafe


@dataclass(frozen=True)
class Health:
    sentence: str
    ok: bool
    """False when calls are not being screened: the page shows the sentence as a warning."""


def daemon_alive(status: Mapping[str, Any]) -> bool:
    """Whether the status was written by a daemon that is still running (as ``callguard
    status`` decides it: the status says running and its process exists)."""
    if status.get("daemon") != "running":
        return False
    try:
        os.kill(int(str(status.get("pid"))), 0)
    except PermissionError:
        return True  # alive, another user's
    except (OSError, ValueError, OverflowError):
        return False
    return True


def health(status: Mapping[str, Any] | None) -> Health:
    """The unit's health in one sentence, from the daemon's status file."""
    if status is None:
        return Health(
            "CallGuard has not started on this unit yet, so calls are not being screened. "
            "Ask your volunteer to check it.",
            ok=False,
        )
    if not daemon_alive(status):
        return Health(
            "CallGuard is not running, so calls are not being screened. Ask your volunteer to "
            "check it (on the Pi: sudo systemctl status callguard).",
            ok=False,
        )
    if status.get("modem") != "connected":
        detail = str((status.get("modem_detail") or {}).get("detail") or "").strip()
        why = f" ({shown(detail)})" if detail else ""
        return Health(
            f"CallGuard is running but cannot reach its modem{why}, so calls are not being "
            "screened. Check that the modem's USB cable is plugged in.",
            ok=False,
        )
    line = {
        "ringing": " The phone is ringing now.",
        "in-call": " The phone is in use now.",
    }.get(str(status.get("line")), "")
    clock = (
        " The Pi's clock is not set yet, so quiet hours are paused."
        if status.get("clock_synchronised") is False
        else ""
    )
    return Health(f"All is well: CallGuard is screening calls.{line}{clock}", ok=True)


# -- calls ----------------------------------------------------------------------------------

VERDICT_WORDS = {
    "allowed": "Rang through",
    "warned": "Rang, with a warning",
    "blocked": "Blocked",
}


@dataclass(frozen=True)
class CallRow:
    """One call as the page shows it."""

    number: str
    """E.164, a short code, or "" when the caller showed none (``log --json``'s number)."""
    who: str
    """As ``callguard log`` shows the caller: the number as dialled, or the kind of caller."""
    name: str
    when: str
    started: str
    verdict: str
    did: str
    why: str
    answered: str
    grooming_alert: bool
    unknown: bool
    """A caller on no list who rang or was answered: the page offers to allow or block it."""


def when_words(started: object, today: dt.date) -> str:
    """ "Today 09:30", "Yesterday 18:02", "Mon 3 Mar 09:30" (as the record gives the time)."""
    try:
        moment = dt.datetime.fromisoformat(str(started))
    except ValueError:
        return shown(str(started or "at an unknown time"))
    day = moment.date()
    clock = moment.strftime("%H:%M")
    if day == today:
        return f"Today {clock}"
    if day == today - dt.timedelta(days=1):
        return f"Yesterday {clock}"
    return f"{moment:%a} {day.day} {moment:%b} {clock}" + (
        f" {day.year}" if day.year != today.year else ""
    )


def call_row(call: Mapping[str, Any], today: dt.date) -> CallRow:
    answered = call.get("answered")
    seconds = call.get("duration_s")
    length = duration_words(seconds) if isinstance(seconds, int | float) else ""
    if answered is True:
        answered_words = f"Answered, {length}" if length else "Answered"
    elif answered is False:
        answered_words = "Not answered"
    else:
        answered_words = ""
    verdict = str(call.get("verdict") or "")
    return CallRow(
        number=str(call.get("number") or ""),
        who=shown(call.get("display") or call.get("number") or call.get("category") or "?"),
        name=shown(call.get("name") or ""),
        when=when_words(call.get("started"), today),
        started=shown(str(call.get("started") or "")),
        verdict=verdict,
        did=VERDICT_WORDS.get(verdict, shown(verdict or "Not screened")),
        why=shown(call.get("reason") or ""),
        answered=answered_words,
        grooming_alert=bool(call.get("grooming_alert")),
        unknown=is_unknown_caller(dict(call)),
    )


def call_rows(calls: Iterable[Mapping[str, Any]], today: dt.date) -> list[CallRow]:
    """Calls as rows, newest first (the store gives them oldest first)."""
    return [call_row(c, today) for c in reversed(list(calls))]


# -- the grooming alert -----------------------------------------------------------------------


@dataclass(frozen=True)
class AlertCall:
    who: str
    when: str
    how_long: str


def alert_rows(calls: Iterable[Mapping[str, Any]], today: dt.date) -> list[AlertCall]:
    return [
        AlertCall(
            who=shown(c.get("display") or c.get("number") or "a caller with no number"),
            when=when_words(c.get("started"), today),
            how_long=duration_words(so_far_s(c)),
        )
        for c in calls
    ]


# -- lists ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class EntryRow:
    key: str
    """The stored key (E.164, short code, ``prefix*``): what the remove button sends."""
    number: str
    name: str
    note: str
    added: str
    shipped: bool


def entry_rows(entries: Iterable[Entry], region: str, now: dt.datetime) -> list[EntryRow]:
    rows = sorted(entries, key=lambda e: (e.name.lower(), e.number))
    return [
        EntryRow(
            key=e.number,
            number=shown(for_people(e.number, region)),
            name=shown(e.name),
            note="Included with CallGuard" if e.extra.get("shipped") else shown(shown_note(e, now)),
            added=shown(e.added[:10]),
            shipped=bool(e.extra.get("shipped")),
        )
        for e in rows
    ]


LIST_INTROS = {
    "allow": "Calls from these numbers always ring through, with no warning.",
    "block": "Calls from these numbers are answered and put down before the phone rings.",
    "protect": (
        "Numbers that never ring anyone (999, 101, the number on the back of a bank card): a "
        "call showing one of them is a fake, and is blocked."
    ),
}
LISTS = tuple(LIST_TITLES)
LIST_HEADINGS = {name: title.capitalize() for name, title in LIST_TITLES.items()}


FORCE_LABEL = "Add it even so"
"""The page's --force: a checkbox on each add form."""
FORCE_MANY_LABEL = "Add them even so"
"""The Import page's --force."""


def for_the_page(message: str) -> str:
    """A message the store wrote for the command line, in the page's words."""
    for cli, page in (
        ("run the same command with --force", f"tick '{FORCE_LABEL}' and add it again"),
        ("add --force to move them", f"tick '{FORCE_LABEL}' to move them"),
        ("'callguard protect add \"0345 600 0000\"'", "0345 600 0000"),
        *((f"'callguard {n} list' shows what is", "the list below shows what is") for n in LISTS),
    ):
        message = message.replace(cli, page)
    return message


# -- carer alerts -----------------------------------------------------------------------------

_SCHEME = re.compile(r"[a-z][a-z0-9+.-]{0,19}")
_HOST_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")


def channel_label(url: str) -> str:
    """An alert channel's apprise URL as the page may show it: its scheme and its host, nothing
    that could be a password or a token ("mailto://…@gmail.com", "ntfy://ntfy.sh/…",
    "tgram://…").

    Apprise puts secrets anywhere: in the user part, the path, the query, and for some services
    in the host itself (Telegram's bot token, Discord's webhook id). So the host is shown only
    when it reads as a host name (dotted labels, ``localhost``) or an IP address, and
    everything else becomes "…".
    """
    scheme, sep, rest = str(url).strip().partition("://")
    scheme = scheme.lower()
    if not sep or not _SCHEME.fullmatch(scheme):
        return "(an address CallGuard cannot read)"
    netloc = re.split(r"[/?#]", rest, maxsplit=1)[0]
    more = len(netloc) < len(rest.rstrip("/"))
    user, at, hostport = netloc.rpartition("@")
    host = _host_shown(hostport)
    if host is None:
        return f"{scheme}://…"
    return f"{scheme}://{'…@' if at or user else ''}{host}{'/…' if more else ''}"


def host_of(url: str) -> str:
    """The host of an http(s) URL (the heartbeat's), or "" when it has none to show."""
    _, sep, rest = str(url).strip().partition("://")
    if not sep:
        return ""
    netloc = re.split(r"[/?#]", rest, maxsplit=1)[0]
    return _host_shown(netloc.rpartition("@")[2]) or ""


def _host_shown(hostport: str) -> str | None:
    """``host`` or ``host:port`` if it reads as a host name or an address, else None."""
    host, port = hostport, ""
    if hostport.startswith("["):  # [IPv6]:port
        inside, close, after = hostport[1:].partition("]")
        try:
            ipaddress.IPv6Address(inside)
        except ValueError:
            return None
        host, port = f"[{inside}]", after.removeprefix(":") if close else ""
        if after and not after.startswith(":"):
            return None
    elif ":" in hostport:
        host, _, port = hostport.partition(":")
    if port and not (port.isascii() and port.isdigit() and len(port) <= 5):
        return None
    if not host.startswith("["):
        host = host.lower()
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            labels = host.split(".")
            if host != "localhost" and (
                len(labels) < 2
                or not all(_HOST_LABEL.fullmatch(label) for label in labels)
                or labels[-1].isdigit()
                or len(host) > 253
            ):
                return None
    return f"{host}:{port}" if port else host


MAX_ACK_NAME = 40
"""Characters of the name a carer may give when clearing the alert."""


def ack_name(typed: str) -> tuple[str, str]:
    """The name typed beside the clear button, and a problem with it ("" when none): it is
    optional, at most :data:`MAX_ACK_NAME` characters of plain text on one line (the other
    carers read it in "cleared by Sarah at 14:02")."""
    name = re.sub(" +", " ", typed).strip()
    if not name:
        return "", ""
    if len(name) > MAX_ACK_NAME:
        return "", (
            f"That name is {len(name)} characters long; use at most {MAX_ACK_NAME} (a first "
            "name is enough). The alert was not cleared."
        )
    if any(unsafe(c) for c in name):
        return "", (
            f"That name has a character that cannot be shown ({shown(name)}); type it with "
            "letters, spaces and ordinary punctuation only. The alert was not cleared."
        )
    return name, ""


# -- the alert outbox -------------------------------------------------------------------------

ALERT_STATES = {
    "delivered": "Delivered",
    "pending": "Still trying",
    "expired": "Gave up (expired)",
    "no-channels": "Not sent: no channels were set up",
}


@dataclass(frozen=True)
class DeliveryRow:
    label: str
    state: str
    words: str
    """What happened on this channel, in a sentence."""


@dataclass(frozen=True)
class OutboxRow:
    """One carer alert as the Alerts page shows it."""

    id: int
    when: str
    created: str
    title: str
    body: str
    state: str
    state_words: str
    deliveries: tuple[DeliveryRow, ...]


def outbox_rows(alerts: Iterable[Any], today: dt.date) -> list[OutboxRow]:
    """The outbox's alerts (:class:`callguard.store.outbox.Alert`, newest first) as rows."""
    return [
        OutboxRow(
            id=int(a.id),
            when=when_words(a.created, today),
            created=shown(a.created),
            title=shown(a.title),
            body=shown(_no_urls(a.body), lines=True),
            state=str(a.state),
            state_words=ALERT_STATES.get(str(a.state), shown(a.state)),
            deliveries=tuple(_delivery_row(d, today) for d in a.deliveries),
        )
        for a in alerts
    ]


def _delivery_row(d: Any, today: dt.date) -> DeliveryRow:
    tries = f"{d.attempts} tr{'y' if d.attempts == 1 else 'ies'}"
    error = ""
    if d.last_error:
        error = " The last error: " + shown(_no_urls(d.last_error)).rstrip()
        error += "" if error.endswith((".", "!", "?")) else "."
    if d.state == "delivered":
        words = f"Delivered {when_words(d.delivered, today)}." if d.delivered else "Delivered."
        if d.attempts > 1:
            words = f"{words[:-1]}, after {tries}."
    elif d.state == "pending":
        done = f"{tries} so far" if d.attempts else "not tried yet"
        nxt = f", next try {when_words(d.next_try, today)}" if d.next_try else ""
        words = f"Still trying ({done}{nxt}).{error}"
    elif d.state == "expired":
        words = f"Gave up after {tries}.{error}"
    else:
        words = shown(d.state)
    return DeliveryRow(label=shown(_no_urls(d.label)), state=str(d.state), words=words)


_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]{0,19}://[^\s'\"<>]*[^\s'\"<>.,;:)]")


def _no_urls(text: object) -> str:
    """``text`` with any URL in it cut to what :func:`channel_label` shows (an error message
    may quote a channel's whole URL, password and all)."""
    return _URL.sub(lambda m: channel_label(m.group(0)), str(text or ""))
