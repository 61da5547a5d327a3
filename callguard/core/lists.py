"""The family's lists as values: entries, what a person typed (a target), a match.

Pure: no files, no clock.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any

from callguard.core.numbers import (
    Caller,
    Category,
    for_people,
    parse_prefix,
    parse_typed,
    prefix_scope,
)
from callguard.errors import UsageError

LIST_NAMES = ("allow", "block", "protect")
LIST_TITLES = {"allow": "allow list", "block": "block list", "protect": "protect list"}
CONFLICTS = {"allow": ("block", "protect"), "block": ("allow",), "protect": ("allow",)}
WHY_CONFLICT = {
    "block": "calls from it are blocked",
    "protect": "it is a number that never calls out, so a call showing it is a fake",
    "allow": "the family wants calls from it to ring through",
}


@dataclass(frozen=True)
class Entry:
    """One row of a list, as stored and as ``list --json`` prints it."""

    number: str
    name: str = ""
    note: str = ""
    added_by: str = ""
    added: str = ""
    updated: str = ""
    kind: str = "number"  # number, short-code or prefix
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def is_prefix(self) -> bool:
        return self.kind == "prefix"

    @property
    def prefix(self) -> str:
        return self.number.rstrip("*")

    def to_json(self) -> dict[str, Any]:
        doc = {
            "number": self.number,
            "name": self.name,
            "note": self.note,
            "kind": self.kind,
            "added_by": self.added_by,
            "added": self.added,
        }
        if self.updated:
            doc["updated"] = self.updated
        doc.update(self.extra)
        return doc

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Entry:
        known = {"number", "name", "note", "added_by", "added", "updated", "kind"}
        return cls(
            number=str(doc.get("number", "")),
            name=str(doc.get("name") or ""),
            note=str(doc.get("note") or ""),
            added_by=str(doc.get("added_by") or ""),
            added=str(doc.get("added") or ""),
            updated=str(doc.get("updated") or ""),
            kind=str(doc.get("kind") or "number"),
            extra={k: v for k, v in doc.items() if k not in known},
        )


@dataclass(frozen=True)
class Target:
    """What a person asked to add or remove: a number, a short code or a prefix rule."""

    number: str
    kind: str
    caller: Caller | None
    region: str = "GB"
    """The home region it was typed in: prefix rules are shown as dialled from there."""

    def describe(self) -> str:
        if self.kind == "prefix":
            return f"numbers starting {for_people(self.number.rstrip('*'), self.region)}"
        if self.kind in ONCE_KEYS:
            return f"{self.kind} callers"
        assert self.caller is not None
        place = f" ({self.caller.place})" if self.caller.place else ""
        return f"{self.caller.display}{place}"


ONCE_KEYS = {"withheld": Category.WITHHELD, "unavailable": Category.UNAVAILABLE}
"""What ``allow once`` takes besides a number: a caller with no number, by category."""


def once_target(text: str, region: str) -> Target:
    """What ``allow once`` was given: a number, or ``withheld`` / ``unavailable`` (a call-back
    from a hospital often shows no number)."""
    word = text.strip().lower()
    if word in ONCE_KEYS:
        return Target(word, word, None, region)
    return target_for(text, region)


def expired(entry: Entry, now: dt.datetime) -> bool:
    """Whether a temporary entry (``allow once``) has run out at ``now``; never for others. An
    expiry that cannot be read counts as run out (a temporary entry must never become
    permanent)."""
    expires = entry.extra.get("expires")
    if not expires:
        return False
    try:
        until = dt.datetime.fromisoformat(str(expires))
    except ValueError:
        return True
    if until.tzinfo is None or now.tzinfo is None:
        return True
    return now >= until


def shown_note(entry: Entry, now: dt.datetime) -> str:
    """An entry's note as a list shows it; for an ``allow once`` entry, until when it lets the
    caller through (the CLI's ``allow list`` and the family page's Lists)."""
    if not entry.extra.get("expires"):
        return entry.note
    if expired(entry, now):  # also an expiry that cannot be read
        return "let through once: ran out"
    until = dt.datetime.fromisoformat(str(entry.extra["expires"])).astimezone(now.tzinfo)
    return f"let through once, until {until:%H:%M on %d %b}"


ONCE_DEFAULT = dt.timedelta(hours=2)
ONCE_LONGEST = dt.timedelta(days=7)
_DURATION = re.compile(
    r"\s*(?:(?P<d>\d+)\s*d(?:ays?)?)?\s*(?:(?P<h>\d+)\s*h(?:ours?|rs?)?)?"
    r"\s*(?:(?P<m>\d+)\s*m(?:in(?:ute)?s?)?)?\s*",
    re.IGNORECASE,
)


def parse_duration(text: str) -> dt.timedelta:
    """``2h``, ``90m``, ``1h30m``, ``3 days``: how long ``allow once`` lasts (1 minute to 7
    days); anything else is a :class:`UsageError` naming the value and the forms."""
    found = _DURATION.fullmatch(text)
    if not text.strip() or found is None or not any(found.groupdict().values()):
        raise UsageError(f"{text!r} is not a length of time; write it like 2h, 90m, 1h30m or 3d")
    parts = {k: int(v or 0) for k, v in found.groupdict().items()}
    length = dt.timedelta(days=parts["d"], hours=parts["h"], minutes=parts["m"])
    if not dt.timedelta(minutes=1) <= length <= ONCE_LONGEST:
        raise UsageError(
            f"{text!r} is {'too short' if length < dt.timedelta(minutes=1) else 'too long'}: "
            "allow once lasts from 1 minute to 7 days (for longer, use 'allow add')"
        )
    return length


def target_for(text: str, region: str, prefix: bool = False) -> Target:
    """Parse what a person typed; :class:`NumberError` (exit 2) names the value and the fix."""
    if prefix or text.strip().endswith("*"):
        return Target(parse_prefix(text, region) + "*", "prefix", None, region)
    caller = parse_typed(text, region)
    assert caller.key is not None
    kind = "short-code" if caller.category is Category.SHORT_CODE else "number"
    return Target(caller.key, kind, caller, region)


@dataclass(frozen=True)
class AddResult:
    entry: Entry
    updated: bool
    moved_from: tuple[str, ...] = ()


@dataclass(frozen=True)
class ImportItem:
    """One good line of an import file."""

    line: int
    target: Target
    name: str = ""
    note: str = ""


def check_list(name: str) -> None:
    if name not in LIST_NAMES:
        raise UsageError(f"{name!r} is not a list; use one of {', '.join(LIST_NAMES)}")


def check_target(list_name: str, target: Target, *, force: bool = False) -> None:
    """Refuse what cannot go on ``list_name``: a prefix on the protect list; on the allow list, a
    prefix that would let a whole country or a whole type of number through (unless
    ``force``)."""
    if list_name == "protect" and target.kind == "prefix":
        raise UsageError(
            f"the protect list takes whole numbers, not prefix rules ({target.describe()}): "
            "a protected number is matched exactly. Add each number, e.g. "
            "'callguard protect add \"0345 600 0000\"', or put the prefix on the block list"
        )
    if list_name == "allow" and target.kind == "prefix" and not force:
        scope = prefix_scope(target.number, target.region or "GB")
        if scope is not None:
            raise UsageError(
                f"{target.describe()} on the allow list would let through {scope}, scammers' "
                "calls included, with no warning. Allow the numbers you know one by one, or a "
                "narrower prefix (such as 01707 for one exchange); if you really mean all of "
                "them, run the same command with --force"
            )


MAX_NAME = 60
MAX_NOTE = 200


def check_text(what: str, value: str, limit: int) -> None:
    """A name or note: at most ``limit`` characters, and nothing that is not printable (a
    control character would garble the log, the page and the spoken warning)."""
    bad = next((c for c in value if not c.isprintable()), None)
    if bad is not None:
        raise UsageError(
            f"the {what} {value!r} has a control character ({bad!r}) in it; type it again "
            "with letters, digits, spaces and punctuation only"
        )
    if len(value) > limit:
        raise UsageError(
            f"the {what} {value[:20]!r}... is {len(value)} characters long; keep it to {limit} "
            f"(e.g. {value[: min(limit, 30)].rstrip()!r})"
        )


# -- the daemon's index ----------------------------------------------------------------------


@dataclass(frozen=True)
class Match:
    list_name: str
    entry: Entry
    how: str  # "exact" or "prefix"
