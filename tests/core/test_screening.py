"""Screening: callers, lists, settings and the time in; a verdict with its reason out.

Pure tables against a dict-backed fake of ListIndex; one test goes through a real ListIndex.
Every test runs with places (towns) made unusable (see ``no_places``); country names come from
the geocoder, loaded once as the daemon's start-up does. UK examples use Ofcom's drama ranges
(01632 960xxx, 07700 900xxx, 0306 999 0xxx, 0808 157 0xxx).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from callguard import config as configuration
from callguard.config import ScreeningConfig
from callguard.core import numbers, screening
from callguard.core.lists import Entry, Match, target_for
from callguard.core.numbers import Caller, Category, from_caller_id, parse_typed
from callguard.core.screening import Action, Verdict, in_quiet_hours, quiet_span, screen
from callguard.errors import UsageError
from callguard.store.index import ListIndex
from callguard.store.lists import Store

BST = dt.timezone(dt.timedelta(hours=1))
NOON = dt.datetime(2025, 6, 10, 12, 0, tzinfo=BST)
NIGHT = dt.datetime(2025, 6, 10, 23, 30, tzinfo=BST)
QUIET = "21:00-08:00"


class FakeLists:
    """ListIndex's contract over dicts: exact entry first, else the longest prefix rule."""

    def __init__(self, **lists: list[Entry]) -> None:
        self.lists = {name: {e.number: e for e in entries} for name, entries in lists.items()}
        self.asked: list[tuple[str, str | None]] = []

    def match(self, list_name: str, key: str | None) -> Match | None:
        self.asked.append((list_name, key))
        entries = self.lists.get(list_name, {})
        if not key:
            return None
        if key in entries:
            return Match(list_name, entries[key], "exact")
        for length in range(len(key), 1, -1):
            rule = entries.get(key[:length] + "*")
            if rule is not None and key.startswith("+"):
                return Match(list_name, rule, "prefix")
        return None


def entry(number: str, name: str = "", added: str = "", **extra: Any) -> Entry:
    kind = "prefix" if number.endswith("*") else "number" if number.startswith("+") else "short"
    return Entry(number, name=name, added=added, kind=kind, extra=extra)


LISTS = FakeLists(
    protect=[
        entry("159", "Stop Scams UK line"),
        entry("999"),
        entry("+443069990123", "card number", organisation="Drama Bank plc"),  # also allowed
        entry("+44808*", "freephone, by mistake"),  # a prefix: protect counts exact numbers only
    ],
    allow=[
        entry("+447700900123", "Sue (daughter)"),
        entry("+443069990123", "Drama Bank"),
        entry("+448701234567", "the chemist"),  # inside the blocked 0870 prefix
        entry("+33123456789", "Pierre (cousin in Paris)"),  # international
        entry("+449098790123", "the quiz line"),  # premium rate
        entry("+441632960*", "the surgery's lines"),
        entry("118118"),  # no name
    ],
    block=[
        entry("+441632960666", "rang pretending to be the bank", "2025-05-03T10:12:00+01:00"),
        entry("+441632960*"),  # the allow list's prefix wins over this one
        entry("+447700900666", "", "2024-05-03T10:12:00+01:00"),
        entry("+447700900667", "pushy", ""),
        entry("+447700900668", "garbled date", "last Tuesday"),
        entry("+44870*", "all 0870 numbers"),
        entry("+448708*", "0870 8 numbers"),
        entry("+448709876543", "the one 0870 number we know"),
        entry("+234*", ""),
    ],
)


def config(**changes: str) -> ScreeningConfig:
    return ScreeningConfig(**changes)


@pytest.fixture(scope="module", autouse=True)
def geocoder_loaded() -> None:
    """As the daemon does at start-up, so no test pays for it inside a call."""
    screening.warm_up()


@pytest.fixture(autouse=True)
def no_places(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Screening never asks for a caller's town (a lookup by number prefix)."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the screening path asked for a place")

    monkeypatch.setattr(numbers, "place_of", refuse)  # Caller.place goes through it
    monkeypatch.setattr(numbers, "_place", refuse)
    yield


def call(raw: str, cfg: ScreeningConfig | None = None, now: dt.datetime = NOON) -> Verdict:
    return screen(from_caller_id(raw), LISTS, cfg or config(), now)


# --- the order: each step, and that earlier steps win --------------------------------------

ALLOW, WARN, BLOCK = Action.ALLOW, Action.WARN, Action.BLOCK


def case(
    raw: str,
    action: Action,
    rule: str,
    name: str | None = None,
    says: str = "",
    now: dt.datetime = NOON,
    **changes: str,
) -> Any:
    """One row: caller ID, the verdict expected, words the reason has; then time and settings."""
    return pytest.param(raw, changes, now, action, rule, name, says, id=f"{raw}-{rule}")


ORDER_CASES = [
    # 1. protect beats everything, the allow list included
    case("159", BLOCK, "protect", "Stop Scams UK line", "159 ('Stop Scams UK line')"),
    case("999", BLOCK, "protect", None, "showed 999, a number that never calls out"),
    case("03069990123", BLOCK, "protect", "Drama Bank plc", "0306 999 0123 ('Drama Bank plc')"),
    case("03069990123", BLOCK, "protect", "Drama Bank plc", now=NIGHT, mode="open"),
    # 2. the allow list beats the block list, the categories, the mode and quiet hours
    case("07700900123", ALLOW, "allow", "Sue (daughter)", "as 'Sue (daughter)'"),
    case("07700900123", ALLOW, "allow", "Sue (daughter)", now=NIGHT, quiet_hours=QUIET),
    case("07700900123", ALLOW, "allow", "Sue (daughter)", mode="allowlist-only"),
    case("08701234567", ALLOW, "allow", "the chemist", "on the allow list"),  # in blocked 0870
    case("+33123456789", ALLOW, "allow", "Pierre (cousin in Paris)", international="block"),
    case("09098790123", ALLOW, "allow", "the quiz line"),  # premium rate
    case("01632960123", ALLOW, "allow", "the surgery's lines", "starting 01632960 are on the"),
    case("01632960666", ALLOW, "allow", "the surgery's lines"),  # allowed prefix, blocked number
    case("118118", ALLOW, "allow", None, "Allowed: on the allow list.", NIGHT, quiet_hours=QUIET),
    # 3. the block list: exact, then the longest prefix
    case("07700900666", BLOCK, "block", None, "Blocked: on the block list, added 3 May 2024."),
    case("07700900667", BLOCK, "block", "pushy", "Blocked: on the block list as 'pushy'."),
    case("07700900668", BLOCK, "block", "garbled date", "as 'garbled date'."),
    case("08709876543", BLOCK, "block", "the one 0870 number we know"),
    case("08708123456", BLOCK, "block-prefix", "0870 8 numbers", "starting 08708 are"),
    case("08701112222", BLOCK, "block-prefix", "all 0870 numbers", premium_rate="allow"),
    case("+2348012345678", BLOCK, "block-prefix", None, "+234 (Nigeria)", international="allow"),
    # 4. then the category settings ...
    case("P", WARN, "category:withheld", None, "withheld their number"),
    case("09011234567", BLOCK, "category:premium_rate", None, "premium-rate", premium_rate="block"),
    case("09011234567", WARN, "category:premium_rate", None, "premium-rate"),  # the default
    # 5. ... then the mode; short codes on no list are unknown callers like any other
    case("07700900999", WARN, "mode:guarded", None, "not on any list (a mobile)"),
    case("150", BLOCK, "category:short_code", None, "no genuine caller shows"),  # Ofcom
    case("150", BLOCK, "mode:allowlist-only", mode="allowlist-only", short_code="warn"),
    # a prefix on the protect list is not used: 0808 falls through to the mode
    case("08081570123", WARN, "mode:guarded", None, "(a freephone number)"),
]


@pytest.mark.parametrize(("raw", "changes", "now", "action", "rule", "name", "says"), ORDER_CASES)
def test_order(
    raw: str,
    changes: dict[str, str],
    now: dt.datetime,
    action: Action,
    rule: str,
    name: str | None,
    says: str,
) -> None:
    verdict = call(raw, config(**changes), now)
    assert (verdict.action, verdict.rule, verdict.name) == (action, rule, name)
    verb = {ALLOW: "Allowed", WARN: "Warned", BLOCK: "Blocked"}[action]
    assert verdict.reason.startswith(f"{verb}: ")
    assert verdict.reason.endswith(".")
    assert says in verdict.reason
    assert verdict.category == from_caller_id(raw).category
    assert verdict.impersonation is (rule in ("protect", "category:short_code"))
    if rule in {"protect", "allow", "block", "block-prefix"}:
        assert verdict.match is not None
        assert verdict.match.list_name == rule.removesuffix("-prefix")
        assert verdict.match.how == ("prefix" if verdict.match.entry.is_prefix else "exact")
    else:
        assert verdict.match is None
    key = from_caller_id(raw).key
    if key is not None:  # the seize path's first look: sure only of whole-number blocks
        assert screening.blocks_outright(key, LISTS, lambda: now) is (rule in ("protect", "block"))


def test_the_reason_for_a_block_prefix_says_it_as_people_dial_it() -> None:
    assert call("08701112222").reason == (
        "Blocked: numbers starting 0870 are on the block list ('all 0870 numbers')."
    )


def test_the_reason_for_a_protected_number_says_the_caller_was_pretending() -> None:
    verdict = call("159")
    assert verdict.reason == (
        "Blocked: the call showed 159 ('Stop Scams UK line'), a number that never calls out, "
        "so the caller was pretending."
    )
    assert verdict.impersonation


def test_the_reason_for_a_blocked_number_gives_its_name_and_the_day_it_was_added() -> None:
    lists = FakeLists(
        block=[entry("+441632960666", "rang pretending to be the bank", "2025-05-03T10:12:00")]
    )
    verdict = screen(from_caller_id("01632960666"), lists, config(), NOON)
    assert verdict.reason == (
        "Blocked: on the block list as 'rang pretending to be the bank', added 3 May."
    )
    assert verdict.name == "rang pretending to be the bank"
    next_year = screen(from_caller_id("01632960666"), lists, config(), NOON.replace(year=2026))
    assert next_year.reason.endswith("added 3 May 2025.")


def test_names_are_one_line_in_reasons() -> None:
    lists = FakeLists(allow=[entry("+447700900123", "  Sue\n(daughter) ")])
    verdict = screen(from_caller_id("07700900123"), lists, config(), NOON)
    assert verdict.reason == "Allowed: on the allow list as 'Sue (daughter)'."
    assert verdict.name == "Sue (daughter)"


def test_a_protect_entry_without_organisation_gives_its_name() -> None:
    lists = FakeLists(protect=[entry("101", "police non-emergency", organisation="  ")])
    verdict = screen(parse_typed("101"), lists, config(), NOON)
    assert (verdict.rule, verdict.name) == ("protect", "police non-emergency")


def test_callers_without_a_number_are_looked_up_only_as_allow_once_entries() -> None:
    lists = FakeLists(allow=[entry("P", "never")])
    for raw in ("P", "O", "", "12"):
        verdict = screen(from_caller_id(raw), lists, config(), NOON)
        assert verdict.match is None
    assert lists.asked == [("allow", c) for c in ("withheld", "unavailable", "unavailable")]


def test_lists_are_asked_in_order_and_no_further_than_needed() -> None:
    lists = FakeLists(allow=[entry("+447700900123", "Sue")])
    screen(from_caller_id("07700900123"), lists, config(), NOON)
    assert [name for name, _ in lists.asked] == ["protect", "allow"]
    lists.asked.clear()
    screen(from_caller_id("07700900999"), lists, config(), NOON)
    assert lists.asked == [(n, "+447700900999") for n in ("protect", "allow", "block")]


# --- the category settings -------------------------------------------------------------------

CATEGORY_CALLERS = {
    "withheld": ("P", "the caller withheld their number"),
    "unavailable": ("O", "the caller's number was not available"),
    "international": ("+33612345678", "an international number (France)"),
    "premium_rate": ("09098790999", "a premium-rate number"),
    "invalid": ("12", "the number shown (12) cannot exist"),
}


@pytest.mark.parametrize("setting", ["allow", "warn", "block"])
@pytest.mark.parametrize("key", list(CATEGORY_CALLERS))
def test_category_settings(key: str, setting: str) -> None:
    raw, words = CATEGORY_CALLERS[key]
    verdict = call(raw, config(**{key: setting}))
    assert verdict.action is screening.SETTING_ACTIONS[setting]
    assert verdict.rule == f"category:{key}"
    assert (verdict.match, verdict.name) == (None, None)
    said = f' (screening.{key} = "{setting}")' if setting != "warn" else ""
    verb = {"allow": "Allowed", "warn": "Warned", "block": "Blocked"}[setting]
    assert verdict.reason == f"{verb}: {words}{said}."


def test_every_category_setting_is_a_config_key() -> None:
    keys = {f.name for f in dataclasses.fields(ScreeningConfig)}
    assert set(screening.CATEGORY_SETTINGS.values()) <= keys


@pytest.mark.parametrize(
    ("mode", "setting", "action", "rule"),
    [
        ("open", "warn", Action.WARN, "category:withheld"),  # warn is stricter than open
        ("guarded", "warn", Action.WARN, "category:withheld"),
        ("allowlist-only", "warn", Action.BLOCK, "mode:allowlist-only"),  # the mode is stricter
        ("allowlist-only", "allow", Action.ALLOW, "category:withheld"),  # the family chose it
        ("open", "block", Action.BLOCK, "category:withheld"),
    ],
)
def test_a_category_warning_is_at_least_a_warning(
    mode: str, setting: str, action: Action, rule: str
) -> None:
    verdict = call("P", config(mode=mode, withheld=setting))
    assert (verdict.action, verdict.rule) == (action, rule)
    if rule == "mode:allowlist-only":
        assert verdict.reason == (
            "Blocked: the caller withheld their number, and only allow-listed callers ring "
            'through (screening.mode = "allowlist-only").'
        )


def test_international_numbers_name_the_country() -> None:
    assert "Jamaica" in call("+18765550123").reason  # +1, but not the US
    assert "(Nigeria)" in call("+2348012345678", config(international="warn")).reason
    assert "(+800)" in call("+80012345678").reason  # international freephone: no country


SCREEN_AT_HOME = """
import datetime as dt, sys
from callguard.config import ScreeningConfig
from callguard.core import screening
from callguard.core.lists import Entry, Match
from callguard.core.numbers import from_caller_id

class Lists:
    def match(self, list_name, key):
        rule = Entry("+44870*", kind="prefix")
        return Match(list_name, rule, "prefix") if key.startswith("+44870") else None

now = dt.datetime(2025, 6, 10, 23, 30)
config = ScreeningConfig(quiet_hours="21:00-08:00")
for raw in ("01632960999", "07700900999", "08701234567", "P", "150"):
    screening.screen(from_caller_id(raw), Lists(), config, now)
assert "pycountry" not in sys.modules, "a caller at home loaded the country names"
screening.warm_up()
assert "pycountry" in sys.modules
verdict = screening.screen(from_caller_id("0033123456789"), Lists(), ScreeningConfig(), now)
assert "France" in verdict.reason, verdict.reason
assert "phonenumbers.geocoder" not in sys.modules, "screening loaded the 100 MB geocoder"
"""


def test_only_a_country_name_needs_the_names_and_never_the_geocoder() -> None:
    subprocess.run([sys.executable, "-c", SCREEN_AT_HOME], check=True, timeout=60)


# --- the mode --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        ("01632960999", "a landline"),
        ("07700900999", "a mobile"),
        ("08081570999", "a freephone number"),
        ("03069990999", "a non-geographic number"),
    ],
)
@pytest.mark.parametrize("mode", ["open", "guarded", "allowlist-only"])
def test_modes(raw: str, words: str, mode: str) -> None:
    verdict = screen(from_caller_id(raw), FakeLists(), config(mode=mode), NOON)
    assert verdict.rule == f"mode:{mode}"
    assert verdict.action is screening.MODE_ACTIONS[mode]
    assert (verdict.match, verdict.name) == (None, None)
    assert (
        verdict.reason
        == {
            "open": "Allowed: not on any list; screening mode is open.",
            "guarded": f"Warned: not on any list ({words}).",
            "allowlist-only": "Blocked: not on the allow list, and only allow-listed callers ring "
            'through (screening.mode = "allowlist-only").',
        }[mode]
    )


def test_every_category_has_words() -> None:
    for category in Category:
        assert screening.describe_category(category)


# --- quiet hours -----------------------------------------------------------------------------


def at(clock: str, tz: dt.tzinfo | None = BST) -> dt.datetime:
    hours, minutes = clock.split(":")
    return dt.datetime(2025, 6, 10, int(hours), int(minutes), 30, tzinfo=tz)


@pytest.mark.parametrize(
    ("span", "clock", "quiet"),
    [
        (QUIET, "20:59", False),
        (QUIET, "21:00", True),  # the start is in
        (QUIET, "23:59", True),
        (QUIET, "00:00", True),  # past midnight
        (QUIET, "07:59", True),
        (QUIET, "08:00", False),  # the end is out
        (QUIET, "12:00", False),
        ("09:00-17:00", "08:59", False),
        ("09:00-17:00", "09:00", True),
        ("09:00-17:00", "16:59", True),
        ("09:00-17:00", "17:00", False),
        ("00:00-06:00", "00:00", True),
        ("22:00-00:00", "23:59", True),
        ("22:00-00:00", "00:00", False),
        (" 9:30 - 10:00 ", "09:30", True),
        ("", "03:00", False),
        ("22:00-22:00", "22:00", False),  # empty
    ],
)
def test_in_quiet_hours(span: str, clock: str, quiet: bool) -> None:
    assert in_quiet_hours(span, at(clock)) is quiet
    assert in_quiet_hours(span, at(clock, tz=None)) is quiet  # naive: taken as local already


def test_quiet_hours_use_the_wall_clock_of_now() -> None:
    late = dt.datetime(2025, 6, 10, 21, 30, tzinfo=BST)  # 20:30 UTC
    assert in_quiet_hours(QUIET, late)
    assert not in_quiet_hours(QUIET, late.astimezone(dt.UTC))


@pytest.mark.parametrize("span", ["9pm-8am", "21:00", "25:00-08:00", "21:00-08:60", "1-2-3"])
def test_bad_quiet_hours_name_the_key(span: str) -> None:
    with pytest.raises(UsageError, match=r"screening\.quiet_hours"):
        in_quiet_hours(span, NOON)


@pytest.mark.parametrize(
    "span",
    [
        "21:00-08:00",
        " 9:30 - 10:00 ",
        "",
        "23:59-0:0",
        "9pm-8am",
        "24:00-08:00",
        "+9:00-10:00",  # int() takes a sign
        "1_0:00-11:00",  # and underscores
        "\u0662\u0661:00-08:00",  # and Arabic-Indic digits
        "21:00-08:00-",
        "21:00",
    ],
)
def test_the_config_and_screening_read_quiet_hours_alike(span: str) -> None:
    try:
        configuration.from_dict({"screening": {"quiet_hours": span}})
    except configuration.ConfigError as exc:
        assert "screening.quiet_hours" in str(exc) and "two times like '21:00-08:00'" in str(exc)
        with pytest.raises(ValueError, match="two times like"):
            quiet_span(span)
        with pytest.raises(UsageError, match=r"screening\.quiet_hours = .* two times like"):
            in_quiet_hours(span, NOON)
    else:
        in_quiet_hours(span, NOON)  # does not raise


def test_quiet_span_is_minutes_after_midnight() -> None:
    assert quiet_span(" 9:05 - 17:5 ") == (9 * 60 + 5, 17 * 60 + 5)
    assert quiet_span("23:59-00:00") == (23 * 60 + 59, 0)
    assert quiet_span("  ") is None


# (caller ID, config, action, rule) at night, with quiet hours set
QUIET_CASES = [
    ("07700900999", {}, Action.BLOCK, "quiet-hours"),  # guarded: would warn
    ("07700900999", {"mode": "open"}, Action.BLOCK, "quiet-hours"),  # would ring
    ("P", {}, Action.BLOCK, "quiet-hours"),  # category warn
    ("+33612345678", {"international": "allow"}, Action.BLOCK, "quiet-hours"),  # category allow
    ("09011234567", {"premium_rate": "block"}, Action.BLOCK, "category:premium_rate"),  # stays
    ("07700900999", {"mode": "allowlist-only"}, Action.BLOCK, "mode:allowlist-only"),
    ("01632960666", {}, Action.ALLOW, "allow"),  # allowed by prefix
    ("08709876543", {}, Action.BLOCK, "block"),
    ("159", {}, Action.BLOCK, "protect"),
]


@pytest.mark.parametrize(("raw", "changes", "action", "rule"), QUIET_CASES)
def test_quiet_hours(raw: str, changes: dict[str, str], action: Action, rule: str) -> None:
    verdict = call(raw, config(quiet_hours=QUIET, **changes), NIGHT)
    assert (verdict.action, verdict.rule) == (action, rule)
    if rule == "quiet-hours":
        assert verdict.reason == "Blocked: unknown caller during quiet hours (21:00-08:00)."
        assert (verdict.match, verdict.name) == (None, None)
        assert verdict.category == from_caller_id(raw).category
    daytime = call(raw, config(quiet_hours=QUIET, **changes), NOON)
    assert daytime.rule != "quiet-hours"


# --- odds and ends ---------------------------------------------------------------------------


def test_action_values_are_the_call_logs_verdicts() -> None:
    assert [a.value for a in Action] == ["allowed", "warned", "blocked"]


@pytest.mark.parametrize(
    ("prefix", "says"),
    [
        ("+44870*", "numbers starting 0870 are"),
        ("+441632960*", "numbers starting 01632960 are"),
        ("+234*", "numbers starting +234 (Nigeria) are"),
        ("+1*", "numbers starting +1 are"),  # the US, Canada and the Caribbean
        ("+3361*", "numbers starting +3361 are"),
    ],
)
def test_a_prefix_rule_is_said_as_people_dial_it(prefix: str, says: str) -> None:
    lists = FakeLists(block=[entry(prefix)])
    digits = prefix.rstrip("*") + "0" * (12 - len(prefix))
    verdict = screen(Caller(digits, digits, Category.LANDLINE, "x", ""), lists, config(), NOON)
    assert verdict.rule == "block-prefix" and says in verdict.reason


@pytest.mark.parametrize(
    "changes",
    [{"mode": "gaurded"}, {"withheld": "blok"}, {"quiet_hours": "after nine"}],
)
def test_invalid_settings_raise_naming_the_key(changes: dict[str, str]) -> None:
    key = next(iter(changes))
    with pytest.raises(UsageError, match=re.escape(f"screening.{key} =")):
        call("P" if key == "withheld" else "07700900999", config(**changes), NOON)


def test_a_caller_made_by_hand_needs_no_place() -> None:
    caller = Caller("+441632960999", "+441632960999", Category.LANDLINE, "01632 960999", "")
    assert screen(caller, FakeLists(), config(), NOON).action is Action.WARN


def test_a_real_list_index(tmp_path: Path) -> None:
    added = dt.datetime(2025, 5, 3, 10, 12, tzinfo=BST)
    store = Store(tmp_path, clock=lambda: added)
    store.add("allow", target_for("07700 900123", "GB"), name="Sue (daughter)")
    store.add("block", target_for("01632 960666", "GB"), name="rang pretending to be the bank")
    store.add("block", target_for("0870*", "GB"), name="all 0870 numbers")
    store.add("protect", target_for("0306 999 0123", "GB"), name="Drama Bank plc")
    index = ListIndex(store)
    index.refresh()
    lists: screening.Lookup = index

    def verdict(raw: str) -> Verdict:
        return screen(from_caller_id(raw), lists, config(), NOON)

    assert verdict("07700900123").reason == "Allowed: on the allow list as 'Sue (daughter)'."
    assert verdict("01632960666").reason == (
        "Blocked: on the block list as 'rang pretending to be the bank', added 3 May."
    )
    assert verdict("08701234567").reason == (
        "Blocked: numbers starting 0870 are on the block list ('all 0870 numbers')."
    )
    assert verdict("159").impersonation  # shipped
    assert verdict("03069990123").impersonation
    assert verdict("01632960123").rule == "mode:guarded"


def test_a_protect_entrys_organisation_survives_the_list_index(tmp_path: Path) -> None:
    store = Store(tmp_path)
    bank = target_for("0306 999 0123", "GB")
    store.add("protect", bank, name="card number", extra={"organisation": "Drama Bank"})
    index = ListIndex(store)
    index.refresh()
    assert screen(parse_typed("03069990123"), index, config(), NOON).name == "Drama Bank"


def test_a_short_code_caller_id_is_blocked_as_impersonation_by_default() -> None:
    verdict = screen(from_caller_id("150"), FakeLists(), config(), NOON)
    assert verdict.action is Action.BLOCK and verdict.impersonation
    assert "Ofcom" in verdict.reason and "150" in verdict.reason


# --- the seize path's first look -------------------------------------------------------------


def test_blocks_outright_skips_a_run_out_allow_once_and_sees_the_block_under_it() -> None:
    lists = FakeLists(
        allow=[entry("+447700900666", "Lister", expires="2025-06-10T11:00:00+01:00")],
        block=[entry("+447700900666", "pushy")],
    )
    assert not screening.blocks_outright("+447700900666", lists, lambda: NOON.replace(hour=10))
    assert screening.blocks_outright("+447700900666", lists, lambda: NOON)
    assert screen(from_caller_id("07700900666"), lists, config(), NOON).action is BLOCK


def test_blocks_outright_asks_the_community_list_last() -> None:
    class WithCommunity(FakeLists):
        def match_community(self, key: str | None) -> Match | None:
            return Match("community", entry(key or ""), "exact") if key == "+441632960777" else None

    lists = WithCommunity(allow=[entry("+441632960*", "the surgery")])
    assert not screening.blocks_outright("+441632960777", lists, lambda: NOON)  # the family's allow
    assert screening.blocks_outright("+441632960777", WithCommunity(), lambda: NOON)
    assert not screening.blocks_outright("+441632960778", WithCommunity(), lambda: NOON)
