"""Screening against the volunteer group's community block list.

Where it stands in the policy: after the family's protect, allow and block lists (whatever the
family decided wins), before the category settings and the mode. Pure tables against a fake
lookup; the last tests go through a real ListIndex with a community file on disk. UK examples
use Ofcom's drama ranges (07700 900xxx, 01632 960xxx) and London numbers (020 7946 0xxx).
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

import pytest

from callguard.config import ScreeningConfig
from callguard.core.lists import Entry, Match, target_for
from callguard.core.numbers import Caller, from_caller_id
from callguard.core.screening import COMMUNITY, Action, Verdict, screen
from callguard.store.biglist import community_path, write_biglist
from callguard.store.index import ListIndex
from callguard.store.lists import Store

NOON = dt.datetime(2025, 6, 10, 12, 0, tzinfo=dt.timezone(dt.timedelta(hours=1)))
REASON = "Blocked: on the community block list (shared by your volunteer group)."

SUE = "+447700900123"  # the family's allow list, and on the community list too
SCAMMER = "+442079460001"  # only on the community list
KNOWN = "+442079460002"  # the family's block list and the community list
RANGE = "+44207946"  # the family's prefix rule covers SCAMMER's neighbours
NOBODY = "+441632960999"


class Lookups:
    """ListIndex's contract over dicts, the community list included; records what was asked."""

    def __init__(self, community: set[str], **lists: list[Entry]) -> None:
        self.lists = {name: {e.number: e for e in entries} for name, entries in lists.items()}
        self.community = community
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

    def match_community(self, key: str) -> Match | None:
        self.asked.append((COMMUNITY, key))
        return Match(COMMUNITY, Entry(key), "exact") if key in self.community else None


def family(**lists: list[Entry]) -> Lookups:
    return Lookups({SUE, SCAMMER, KNOWN, "+443069990123"}, **lists)


def at(number: str, lists: Lookups, **settings: str) -> Verdict:
    return screen(from_caller_id(number), lists, ScreeningConfig(**settings), NOON)


def test_a_number_only_on_the_community_list_is_blocked_with_its_own_reason() -> None:
    verdict = at(SCAMMER, family())
    assert verdict.action is Action.BLOCK
    assert (verdict.rule, verdict.reason, verdict.name) == (COMMUNITY, REASON, None)
    assert verdict.match is not None and verdict.match.list_name == COMMUNITY
    assert not verdict.impersonation


@pytest.mark.parametrize("mode", ["open", "guarded", "allowlist-only"])
def test_the_community_list_blocks_in_every_mode(mode: str) -> None:
    verdict = at(SCAMMER, family(), mode=mode)
    assert (verdict.action, verdict.rule) == (Action.BLOCK, COMMUNITY)


def test_the_allow_list_beats_the_community_list() -> None:
    lists = family(allow=[Entry(SUE, "Sue (daughter)")])
    verdict = at(SUE, lists)
    assert (verdict.action, verdict.rule, verdict.name) == (Action.ALLOW, "allow", "Sue (daughter)")
    assert (COMMUNITY, SUE) not in lists.asked  # decided before the community list


def test_an_allow_prefix_rule_beats_the_community_list() -> None:
    verdict = at(SCAMMER, family(allow=[Entry(RANGE + "*", "the office", kind="prefix")]))
    assert (verdict.action, verdict.rule) == (Action.ALLOW, "allow")


def test_the_familys_own_block_entry_gives_the_reason() -> None:
    lists = family(block=[Entry(KNOWN, "Boiler scam", added="2025-05-03T10:00:00+01:00")])
    verdict = at(KNOWN, lists)
    assert (verdict.action, verdict.rule) == (Action.BLOCK, "block")
    assert verdict.reason == "Blocked: on the block list as 'Boiler scam', added 3 May."
    assert verdict.name == "Boiler scam"


def test_the_familys_block_prefix_rule_gives_the_reason() -> None:
    verdict = at(SCAMMER, family(block=[Entry(RANGE + "*", kind="prefix")]))
    assert (verdict.action, verdict.rule) == (Action.BLOCK, "block-prefix")
    assert verdict.reason == "Blocked: numbers starting 0207946 are on the block list."


def test_a_protected_number_on_the_community_list_is_still_called_a_fake() -> None:
    lists = family(protect=[Entry("+443069990123", "card", extra={"organisation": "Drama Bank"})])
    verdict = at("+443069990123", lists)
    assert (verdict.rule, verdict.name) == ("protect", "Drama Bank")
    assert verdict.impersonation


def test_lists_are_asked_in_order_the_community_list_last() -> None:
    lists = family()
    at(NOBODY, lists)
    assert lists.asked == [(n, NOBODY) for n in ("protect", "allow", "block", COMMUNITY)]
    verdict = at(NOBODY, family())
    assert verdict.rule == "mode:guarded"  # not on it: the mode decides, as before


def test_callers_without_a_number_never_reach_the_community_list() -> None:
    lists = family()
    for raw in ("P", "O", "", "12"):
        at(raw, lists)
    assert lists.asked == [
        ("allow", c) for c in ("withheld", "unavailable", "unavailable")
    ]  # allow once only


def test_a_short_code_is_asked_of_the_community_list_and_left_to_its_setting() -> None:
    lists = family()
    verdict = at("999", lists)
    assert lists.asked[-1] == (COMMUNITY, "999")
    assert verdict.rule == "category:short_code"


def test_a_name_claim_does_not_unblock_a_community_number() -> None:
    verdict = screen(from_caller_id(SCAMMER), family(), ScreeningConfig(), NOON, "POLICE")
    assert verdict.rule == COMMUNITY


def test_a_lookup_without_a_community_list_screens_as_before() -> None:
    class FamilyOnly:
        def match(self, list_name: str, key: str | None) -> Match | None:
            return None

    verdict = screen(from_caller_id(SCAMMER), FamilyOnly(), ScreeningConfig(), NOON)
    assert verdict.rule == "mode:guarded"


# -- through the daemon's real index -----------------------------------------------------------


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "state")


def screened(index: ListIndex, number: str) -> Verdict:
    caller: Caller = from_caller_id(number)
    return screen(caller, index.snapshot(), ScreeningConfig(), NOON)


def test_the_real_index_keeps_the_order(store: Store) -> None:
    store.add("allow", target_for(SUE, "GB"), name="Sue (daughter)")
    store.add("block", target_for(KNOWN, "GB"), name="Boiler scam")
    write_biglist(community_path(store.dir), [SUE, SCAMMER, KNOWN])
    index = ListIndex(store)
    assert index.refresh()
    assert (screened(index, SUE).rule, screened(index, SUE).action) == ("allow", Action.ALLOW)
    assert screened(index, KNOWN).rule == "block"
    assert "Boiler scam" in screened(index, KNOWN).reason
    community = screened(index, SCAMMER)
    assert (community.rule, community.reason) == (COMMUNITY, REASON)
    assert screened(index, NOBODY).rule == "mode:guarded"
    # screening the index itself (not a snapshot) answers the same
    verdict = screen(from_caller_id(SCAMMER), index, ScreeningConfig(), NOON)
    assert verdict.rule == COMMUNITY


def test_a_damaged_community_file_is_left_out_and_screening_goes_on(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    store.add("block", target_for(KNOWN, "GB"))
    path = community_path(store.dir)
    write_biglist(path, [SCAMMER])
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x01  # one bit flipped on the card
    path.write_bytes(bytes(data))
    index = ListIndex(store)
    with caplog.at_level(logging.ERROR, logger="callguard.store.index"):
        assert index.refresh() is True  # the family's lists load; no exception
    assert index.community is None
    assert index.community_problem is not None and str(path) in index.community_problem
    assert [r for r in caplog.records if "SHA-256" in r.getMessage()]
    assert screened(index, SCAMMER).rule == "mode:guarded"
    assert screened(index, KNOWN).rule == "block"
    caplog.clear()
    assert index.refresh() is False  # said once, not at every look
    assert not caplog.records
    write_biglist(path, [SCAMMER])  # imported again: picked up
    assert index.refresh() is True
    assert index.community_problem is None
    assert screened(index, SCAMMER).rule == COMMUNITY
