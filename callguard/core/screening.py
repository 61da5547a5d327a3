"""Screening: who a caller is, against the family's lists and settings, becomes a :class:`Verdict`.

Theory of operation
-------------------
:func:`screen` is pure policy. It takes a :class:`~callguard.core.numbers.Caller`, something that
looks numbers up in the lists (:class:`Lookup`; the daemon's
:class:`~callguard.store.index.ListIndex` is one), the ``[screening]`` settings and the time, and
returns what to do with the call (:class:`Action`), why in one sentence a family member
understands, and which rule and list entry decided it. It does no I/O and never reads the
clock, so the call state machine and the tests can feed it anything.

The rules are applied in the order of :data:`POLICY` and its companion tables below, and the
first that has an answer decides. They are tried from the most certain knowledge to the
least: a protect-list number (one that never calls out) is proof of a fake; the allow and
block lists are what the family decided about this number; the community block list is what
their volunteer group learnt about it; the category settings are what they decided about a
kind of caller; the mode is what happens to everyone else; quiet hours can only turn a
non-allow-listed "ring" into a block.

Everything on this path is cheap: a handful of dict probes in the lists, and for an
international number phonenumbers' metadata for its country code. It never touches
:attr:`Caller.place` (a town needs the geocoder's lookup by number prefix). The reasons for an
international caller and for a whole country's prefix rule name the country
(:func:`~callguard.core.numbers.country_of`, from pycountry: about 6 MB, and 50 ms the first
time): :func:`warm_up` loads the names at start-up, so no call waits for them. The geocoder
(100 MB) is never needed here. The community block list, millions of numbers, is one binary
search (the daemon's reads one page of its file).

The ``[screening]`` settings are checked once, by :mod:`callguard.config`, against what this
module defines: the names in :data:`MODE_ACTIONS` and :data:`SETTING_ACTIONS`, and the quiet
hours as :func:`quiet_span` reads them. :func:`screen` trusts its config; a value the config
would have refused (a config made by hand) raises :class:`~callguard.errors.UsageError`
naming the key, never a bare KeyError.
"""

from __future__ import annotations

import datetime as dt
import enum
import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Protocol

from callguard.core.lists import ONCE_KEYS, expired
from callguard.core.numbers import Caller, Category, country_of, for_people, load_country_names
from callguard.errors import UsageError

if TYPE_CHECKING:
    from callguard.config import ScreeningConfig
    from callguard.core.lists import Match

__all__ = [
    "CATEGORY_SETTINGS",
    "COMMUNITY",
    "COMMUNITY_STEP",
    "MODE_ACTIONS",
    "POLICY",
    "SETTING_ACTIONS",
    "Action",
    "CommunityLookup",
    "ListStep",
    "Lookup",
    "Verdict",
    "describe_category",
    "in_quiet_hours",
    "quiet_span",
    "screen",
    "warm_up",
]


class Action(enum.StrEnum):
    """What happens to a call; the values are the call log's ``verdict`` field."""

    ALLOW = "allowed"
    WARN = "warned"
    BLOCK = "blocked"


@dataclass(frozen=True, slots=True)
class Verdict:
    """The decision about one call, with everything the log and the speaker need."""

    action: Action
    reason: str
    """One sentence a family member understands: "Allowed: ...", "Warned: ...", "Blocked: ..."."""
    category: Category
    """The caller's category, whatever decided the call."""
    rule: str
    """Which rule decided: ``protect``, ``allow``, ``block``, ``block-prefix``, ``community``,
    ``category:<name>``, ``mode:<mode>`` or ``quiet-hours``."""
    match: Match | None
    """The list entry that decided the call, if one did."""
    name: str | None
    """The deciding list entry's name (a protect entry's ``organisation`` first), else None."""

    @property
    def impersonation(self) -> bool:
        """The call showed a number that never calls out: whoever it was, they were pretending."""
        return self.rule == "protect" or (
            self.rule == "category:short_code" and self.action is Action.BLOCK
        )


class Lookup(Protocol):
    """Finds a caller's key in a list: the exact entry, else the longest prefix rule covering it.

    :class:`callguard.store.index.ListIndex` is one; tests can use a dict-backed fake.
    """

    def match(self, list_name: str, key: str | None) -> Match | None: ...


class CommunityLookup(Lookup, Protocol):
    """A :class:`Lookup` that also knows the volunteer group's community block list.

    :func:`screen` asks :meth:`match_community` of any lookup that has it (the daemon's
    :class:`~callguard.store.index.ListIndex` does); a plain :class:`Lookup` has no community
    list.
    """

    def match_community(self, key: str) -> Match | None:
        """An entry for ``key`` (E.164) if the community block list holds it; whole numbers
        only, no prefix rules."""
        ...


@dataclass(frozen=True, slots=True)
class ListStep:
    """One list in :data:`POLICY`: the action it takes and the rule names it reports."""

    list_name: str
    action: Action
    exact_rule: str
    prefix_rule: str | None
    """The rule for a prefix match; None when the list's prefix rules are not used."""


# ---------------------------------------------------------------------------------------------
# The policy. screen() applies these tables top to bottom; the first that has an answer decides.
#
# 1. POLICY: the lists, in this order; a match here is final. The protect list comes first
#    because a number that never calls out can only be spoofed, so it is a fake even if it is
#    also on the allow list; it counts only exact numbers (a range of numbers that never call
#    out is not something a family keeps). The allow list comes before the block list, so one
#    friend can ring through a blocked prefix, and an allow-listed caller is never warned or
#    delayed, whatever their category or the time. Within a list an exact number beats the
#    longest prefix rule that covers it (Lookup.match does that). Then COMMUNITY_STEP: the
#    volunteer group's community block list (whole numbers only, possibly millions, asked of a
#    CommunityLookup), after the family's lists, so whatever the family decided about a number
#    beats it: their allow list lets it ring, and their own block entry gives the reason (with
#    the name and the date they gave it).
# 2. CATEGORY_SETTINGS: a kind of caller with its own [screening] key, set to "allow", "warn" or
#    "block" (SETTING_ACTIONS). "block" is final and "allow" is what the family chose. "warn"
#    means "at least warn": if the mode is stricter, the mode decides (rule "mode:<mode>"), so
#    allowlist-only keeps its promise that only allow-listed callers ring, even withheld ones.
#    Short codes on no list are blocked by default (screening.short_code): since May 2023 Ofcom
#    requires a caller ID to be a full 10- or 11-digit number, so one showing 999 or 150 lies.
# 3. MODE_ACTIONS: everyone else (landlines, mobiles, freephone and non-geographic numbers on
#    no list) gets the action of screening.mode.
# 4. Quiet hours: during screening.quiet_hours, a verdict from 2 or 3 that would let the phone
#    ring (ALLOW or WARN) becomes BLOCK, rule "quiet-hours".
# Callers with no number (withheld, unavailable, invalid) have no key and skip step 1.
# ---------------------------------------------------------------------------------------------

COMMUNITY: Final = "community"
"""The community block list: its step's list name and rule."""

POLICY: Final[tuple[ListStep, ...]] = (
    ListStep("protect", Action.BLOCK, exact_rule="protect", prefix_rule=None),
    ListStep("allow", Action.ALLOW, exact_rule="allow", prefix_rule="allow"),
    ListStep("block", Action.BLOCK, exact_rule="block", prefix_rule="block-prefix"),
)

COMMUNITY_STEP: Final = ListStep(COMMUNITY, Action.BLOCK, exact_rule=COMMUNITY, prefix_rule=None)

CATEGORY_SETTINGS: Final[dict[Category, str]] = {
    # category               ScreeningConfig field (screening.<field> in the TOML)
    Category.WITHHELD: "withheld",
    Category.UNAVAILABLE: "unavailable",
    Category.INTERNATIONAL: "international",
    Category.PREMIUM_RATE: "premium_rate",
    Category.INVALID: "invalid",
    Category.SHORT_CODE: "short_code",
}

SETTING_ACTIONS: Final[dict[str, Action]] = {
    "allow": Action.ALLOW,
    "warn": Action.WARN,
    "block": Action.BLOCK,
}

MODE_ACTIONS: Final[dict[str, Action]] = {
    "open": Action.ALLOW,
    "guarded": Action.WARN,
    "allowlist-only": Action.BLOCK,
}

_STRICTNESS: Final[dict[Action, int]] = {Action.ALLOW: 0, Action.WARN: 1, Action.BLOCK: 2}

_VERB: Final[dict[Action, str]] = {
    Action.ALLOW: "Allowed",
    Action.WARN: "Warned",
    Action.BLOCK: "Blocked",
}

_CATEGORY_WORDS: Final[dict[Category, str]] = {
    Category.LANDLINE: "a landline",
    Category.MOBILE: "a mobile",
    Category.FREEPHONE: "a freephone number",
    Category.PREMIUM_RATE: "a premium-rate number",
    Category.NON_GEOGRAPHIC: "a non-geographic number",
    Category.INTERNATIONAL: "an international number",
    Category.SHORT_CODE: "a short code",
    Category.WITHHELD: "a withheld number",
    Category.UNAVAILABLE: "no number available",
    Category.INVALID: "a number that cannot exist",
}

_CLOCK: Final = re.compile(r"\s*([0-9]{1,2}):([0-9]{1,2})\s*")

_MONTHS: Final = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)  # not strftime's %B, which follows the locale


def screen(
    caller: Caller,
    lists: Lookup,
    config: ScreeningConfig,
    now: dt.datetime,
    name: str | None = None,
) -> Verdict:
    """What to do with a call from ``caller`` at ``now`` (the home's local time).

    ``name`` is the caller-ID NAME, if the network sent one. A caller on no list whose name
    claims to be the police, a bank, HMRC or a court (``screening.claim_words``) is warned with
    the stronger warning (rule ``name-claim``), never blocked for it: real police do call.

    ``config`` is trusted to be valid, as :func:`callguard.config.load` makes it; a value that
    it would reject raises :class:`~callguard.errors.UsageError` naming the key.
    """
    verdict = _screen(caller, lists, config, now)
    claim = claimed_authority(name, config.claim_words)
    if (
        claim
        and verdict.rule.startswith(("category:", "mode:"))
        and verdict.action is not Action.BLOCK
    ):
        return Verdict(
            Action.WARN,
            f"Warned: the caller ID name {name!r} claims to be {claim}, from a number on no "
            "list. Real police and banks never ask for your PIN, your cash or your cards.",
            caller.category,
            "name-claim",
            None,
            name,
        )
    return verdict


def blocks_outright(key: str, lists: Lookup, clock: Callable[[], dt.datetime]) -> bool:
    """Whether :func:`screen` is sure to block a caller whose key is ``key``, from whole-number
    entries alone: the seize path's first look, before the number is parsed.

    The same order as POLICY and COMMUNITY_STEP. A prefix rule leaves it undecided (False):
    a prefix covers numbers that may not exist, which screening keeps off the lists. False is
    always safe: the full screening follows, and seizes if it should. ``clock`` is read only
    for an entry that can run out (an ``allow once``): the seize path does not wait for it.
    """
    for step in POLICY:
        match = lists.match(step.list_name, key)
        if match is None or ("expires" in match.entry.extra and expired(match.entry, clock())):
            continue
        return match.how == "exact" and step.action is Action.BLOCK
    community: Callable[[str], Match | None] | None = getattr(lists, "match_community", None)
    return community is not None and community(key) is not None


def claimed_authority(name: str | None, claim_words: str) -> str | None:
    """The authority a caller-ID name claims ("the police", "a bank"...), or None."""
    if not name:
        return None
    words = set(re.findall(r"[a-z]+", name.lower()))
    for word in (w.strip().lower() for w in claim_words.split(",")):
        if word and (word in words or (" " in word and word in name.lower())):
            return _CLAIMS.get(word, f"'{word}'")
    return None


_CLAIMS = {
    "police": "the police",
    "constabulary": "the police",
    "met": "the police",
    "bank": "a bank",
    "hmrc": "HMRC",
    "tax": "HMRC",
    "court": "a court",
    "bailiff": "a court",
    "fraud": "a fraud team",
}


def _screen(caller: Caller, lists: Lookup, config: ScreeningConfig, now: dt.datetime) -> Verdict:
    if caller.key is None and caller.category.value in ONCE_KEYS:
        # `allow once withheld`: the family expects a call with no number (a hospital)
        allow = POLICY[1]
        verdict = _list_verdict(
            allow, lists.match("allow", caller.category.value), caller, config, now
        )
        if verdict is not None:
            return verdict
    if caller.key is not None:
        for step in POLICY:
            match = lists.match(step.list_name, caller.key)
            verdict = _list_verdict(step, match, caller, config, now)
            if verdict is not None:
                return verdict
        community: Callable[[str], Match | None] | None = getattr(lists, "match_community", None)
        if community is not None:  # getattr, not isinstance: a Protocol check costs 7 µs
            verdict = _list_verdict(COMMUNITY_STEP, community(caller.key), caller, config, now)
            if verdict is not None:
                return verdict
    verdict = _category_verdict(caller, config)
    if verdict is None or verdict.action is Action.WARN:
        verdict = _mode_verdict(caller, config, verdict)
    if verdict.action is not Action.BLOCK and in_quiet_hours(config.quiet_hours, now):
        return Verdict(
            Action.BLOCK,
            f"Blocked: unknown caller during quiet hours ({config.quiet_hours.strip()}).",
            caller.category,
            "quiet-hours",
            None,
            None,
        )
    return verdict


def in_quiet_hours(quiet_hours: str, now: dt.datetime) -> bool:
    """Whether ``now``'s wall-clock time falls in ``quiet_hours`` ("21:00-08:00"; "" = never).

    The start minute is in, the end minute is out; a start after the end wraps past midnight.
    Equal start and end make an empty range. Only the hour and minute of ``now`` count, in
    whatever time zone ``now`` is in (pass local time). Raises
    :class:`~callguard.errors.UsageError` if ``quiet_hours`` is not two HH:MM times.
    """
    try:
        span = quiet_span(quiet_hours)
    except ValueError as exc:
        raise UsageError(f"screening.quiet_hours = {quiet_hours!r} {exc}") from None
    if span is None:
        return False
    start, end = span
    minute = now.hour * 60 + now.minute
    if start <= end:
        return start <= minute < end
    return minute >= start or minute < end


def describe_category(category: Category) -> str:
    """The category in words for a sentence: "a landline", "a freephone number" ..."""
    return _CATEGORY_WORDS[category]


@functools.lru_cache(maxsize=16)
def quiet_span(quiet_hours: str) -> tuple[int, int] | None:
    """``"21:00-08:00"`` as (start, end) in minutes after midnight; None for ``""`` (no quiet
    hours). The one reader of ``screening.quiet_hours``: the config's check uses it too.

    Two 24-hour ``H:MM`` or ``HH:MM`` times joined by ``-``, spaces allowed around each.
    Raises :class:`ValueError` whose text says what a good value looks like.
    """
    text = quiet_hours.strip()
    if not text:
        return None
    clocks = [_CLOCK.fullmatch(part) for part in text.split("-")]
    minutes = [
        int(c[1]) * 60 + int(c[2]) for c in clocks if c and int(c[1]) < 24 and int(c[2]) < 60
    ]
    if len(clocks) != 2 or len(minutes) != 2:
        raise ValueError("must be two times like '21:00-08:00', or '' for none")
    return minutes[0], minutes[1]


def warm_up() -> None:
    """Load what naming a caller's country needs now, rather than on the first such call."""
    load_country_names()


# -- the steps -------------------------------------------------------------------------------


def _list_verdict(
    step: ListStep, match: Match | None, caller: Caller, config: ScreeningConfig, now: dt.datetime
) -> Verdict | None:
    if match is None or expired(match.entry, now):
        return None
    is_prefix = match.how == "prefix"
    rule = step.prefix_rule if is_prefix else step.exact_rule
    if rule is None:
        return None
    entry = match.entry
    name = _clean(entry.name)
    if step.list_name == "protect":
        organisation = entry.extra.get("organisation")
        if isinstance(organisation, str) and _clean(organisation):
            name = _clean(organisation)
    verb = _VERB[step.action]
    title = f"{step.list_name} list"
    if rule == COMMUNITY:
        return Verdict(
            step.action,
            f"{verb}: on the community block list (shared by your volunteer group).",
            caller.category,
            rule,
            match,
            None,
        )
    if rule == "protect":
        shown = f"{caller.display} ('{name}')" if name else caller.display
        reason = (
            f"{verb}: the call showed {shown}, a number that never calls out, "
            "so the caller was pretending."
        )
    elif "expires" in entry.extra:
        label = f" ('{name}')" if name else ""
        until = _until(str(entry.extra["expires"]), now)
        reason = f"{verb}: an expected call{label}, let through once until {until}."
    elif is_prefix:
        start = for_people(entry.prefix, config.region)
        label = f" ('{name}')" if name else ""
        reason = f"{verb}: numbers starting {start} are on the {title}{label}."
    else:
        label = f" as '{name}'" if name else ""
        added = _day_added(entry.added, now) if step.action is Action.BLOCK else None
        when = f", added {added}" if added else ""
        reason = f"{verb}: on the {title}{label}{when}."
    return Verdict(step.action, reason, caller.category, rule, match, name or None)


def _category_verdict(caller: Caller, config: ScreeningConfig) -> Verdict | None:
    key = CATEGORY_SETTINGS.get(caller.category)
    if key is None:
        return None
    setting: str = getattr(config, key)
    action = _setting(SETTING_ACTIONS, key, setting)
    said = f' (screening.{key} = "{setting}")' if action is not Action.WARN else ""
    reason = f"{_VERB[action]}: {_what_the_caller_was(caller)}{said}."
    return Verdict(action, reason, caller.category, f"category:{key}", None, None)


def _mode_verdict(caller: Caller, config: ScreeningConfig, category: Verdict | None) -> Verdict:
    """The mode's verdict, or ``category``'s WARN if the mode is not stricter than that."""
    mode = config.mode
    action = _setting(MODE_ACTIONS, "mode", mode)
    if category is not None and _STRICTNESS[category.action] >= _STRICTNESS[action]:
        return category
    if action is Action.ALLOW:
        reason = f"Allowed: not on any list; screening mode is {mode}."
    elif action is Action.WARN:
        reason = f"Warned: not on any list ({_CATEGORY_WORDS[caller.category]})."
    else:
        who = _what_the_caller_was(caller) if category is not None else "not on the allow list"
        reason = (
            f"Blocked: {who}, and only allow-listed callers ring through "
            f'(screening.mode = "{mode}").'
        )
    return Verdict(action, reason, caller.category, f"mode:{mode}", None, None)


# -- words -----------------------------------------------------------------------------------


def _what_the_caller_was(caller: Caller) -> str:
    """The caller's category as the start of a reason: "the caller withheld their number"."""
    category = caller.category
    if category is Category.SHORT_CODE:
        return (
            f"the call showed the short code {caller.display}, which no genuine caller shows "
            "(Ofcom's caller ID rules: a full number), so the caller was pretending"
        )
    if category is Category.WITHHELD:
        return "the caller withheld their number"
    if category is Category.UNAVAILABLE:
        return "the caller's number was not available"
    if category is Category.INVALID:
        return f"the number shown ({caller.display}) cannot exist"
    if category is Category.INTERNATIONAL:
        where = _country_of(caller)
        return f"an international number ({where})" if where else "an international number"
    return _CATEGORY_WORDS[category]


def _country_of(caller: Caller) -> str | None:
    """The country of an international number, or its +code; never a town."""
    if caller.e164 is None:
        return None
    import phonenumbers  # only for a call from abroad: the CLI never pays for it

    try:
        number = phonenumbers.parse(caller.e164)
    except phonenumbers.NumberParseException:
        return None
    return country_of(caller.e164) or f"+{number.country_code}"


def _setting(table: dict[str, Action], key: str, value: str) -> Action:
    """The action a ``[screening]`` setting names; a value the config refuses raises."""
    action = table.get(value)
    if action is None:
        raise UsageError(
            f'screening.{key} = "{value}" must be one of '
            + ", ".join(f'"{name}"' for name in table)
            + "; check the config with 'callguard config check'"
        )
    return action


def _until(expires: str, now: dt.datetime) -> str:
    """An ``allow once`` expiry as the family would say it: "15:30", or "15:30 on 4 May"."""
    try:
        until = dt.datetime.fromisoformat(expires).astimezone(now.tzinfo)
    except (ValueError, TypeError):
        return expires
    if until.date() == now.date():
        return until.strftime("%H:%M")
    return f"{until:%H:%M} on {until.day} {_MONTHS[until.month - 1]}"


def _day_added(added: str, now: dt.datetime) -> str | None:
    """An entry's ISO ``added`` stamp as "3 May", with the year if it is not this year."""
    try:
        day = dt.date.fromisoformat(added[:10])
    except ValueError:
        return None
    year = "" if day.year == now.year else f" {day.year}"
    return f"{day.day} {_MONTHS[day.month - 1]}{year}"


def _clean(text: str) -> str:
    """A name as one line: a list entry's name may hold newlines or runs of spaces."""
    return " ".join(text.split())
