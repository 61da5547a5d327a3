"""Impersonation: the shipped protect list, name claims, and the call-back trap end to end."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Any

import pytest
from helpers import DaemonUnit, played, room_recorder, wait_for

from callguard.audio import wavconv
from callguard.config import ScreeningConfig
from callguard.core.lists import target_for
from callguard.core.numbers import from_caller_id, parse_typed
from callguard.core.screening import Action, claimed_authority, screen
from callguard.sim import Call
from callguard.store.index import ListIndex
from callguard.store.lists import Store, shipped_protected

NOON = dt.datetime(2026, 11, 24, 12, 0, tzinfo=dt.UTC)
SHIPPED = sorted(shipped_protected().items())


def test_the_shipped_protect_list_has_the_short_codes_that_never_call() -> None:
    numbers = set(shipped_protected())
    assert {"999", "112", "101", "159"} <= numbers
    for entry in shipped_protected().values():
        assert entry.extra["organisation"] and entry.note  # every number has its source


@pytest.mark.parametrize(("number", "entry"), SHIPPED, ids=[n for n, _ in SHIPPED])
def test_each_shipped_protected_number_is_blocked_as_impersonation(
    tmp_path: Path, number: str, entry: Any
) -> None:
    index = ListIndex(Store(tmp_path))
    index.refresh()
    caller = parse_typed(number)
    assert caller.key == number
    verdict = screen(caller, index, ScreeningConfig(), NOON)
    assert verdict.action is Action.BLOCK and verdict.impersonation
    assert entry.extra["organisation"] in verdict.reason


def test_a_shipped_number_needs_force_to_be_allowed_and_can_be_removed(tmp_path: Path) -> None:
    from callguard.errors import UsageError

    store = Store(tmp_path)
    with pytest.raises(UsageError, match=r"never calls out.*--force"):
        store.add("allow", target_for("101", "GB"))
    store.remove("protect", target_for("159", "GB"))
    assert "159" not in {e.number for e in store.entries("protect")}
    index = ListIndex(store)
    index.refresh()
    assert index.match("protect", "159") is None  # stays off after a reload
    store.add("protect", target_for("159", "GB"), name="Stop Scams UK")
    assert "159" in {e.number for e in store.entries("protect")}
    store.add("allow", target_for("101", "GB"), force=True)  # moved, as asked
    assert "101" not in {e.number for e in store.entries("protect")}


@pytest.mark.parametrize(
    ("name", "claim"),
    [
        ("MET POLICE", "the police"),
        ("Hsbc Fraud Team", "a fraud team"),
        ("Barclays Bank", "a bank"),
        ("HMRC", "HMRC"),
        ("County Court", "a court"),
        ("J SMITH", None),
        (None, None),
        ("BANKS J", None),
    ],
)
def test_claimed_authority(name: str | None, claim: str | None) -> None:
    assert claimed_authority(name, ScreeningConfig().claim_words) == claim


def test_a_name_claim_warns_more_strongly_and_never_blocks(tmp_path: Path) -> None:
    index = ListIndex(Store(tmp_path))
    index.refresh()
    caller = from_caller_id("02079460123", "GB")
    for mode in ("guarded", "open"):
        verdict = screen(caller, index, ScreeningConfig(mode=mode), NOON, "MET POLICE")
        assert verdict.action is Action.WARN and verdict.rule == "name-claim"
        assert "claims to be the police" in verdict.reason
    strict = screen(caller, index, ScreeningConfig(mode="allowlist-only"), NOON, "POLICE")
    assert strict.action is Action.BLOCK  # a stricter rule is not weakened by the claim
    Store(tmp_path).add("allow", target_for("020 7946 0123", "GB"), name="PC Jones")
    index.refresh()
    assert screen(caller, index, ScreeningConfig(), NOON, "MET POLICE").action is Action.ALLOW


@pytest.mark.e2e
def test_spoofed_bank_number_is_seized_and_a_call_back_gets_the_reminder(tmp_path: Path) -> None:
    command, folder = room_recorder(tmp_path)
    unit = DaemonUnit(
        tmp_path, {"warning": {"room_command": command}, "line_sense": {"source": "modem"}}
    )
    added = unit.cli("protect", "add", "0306 999 0123", "--name", "Barclays card services")
    assert added.returncode == 0
    with unit:
        record, logged = unit.call(Call(number="03069990123", rings=3))
        assert record.outcome == "seized" and record.rings == []  # before the first ring
        assert logged["verdict"] == "blocked" and logged["impersonation"] is True
        assert "Barclays card services" in logged["reason"]
        assert unit.status()["counts_since_start"]["impersonations"] == 1
        # soon after, the resident picks up the phone to ring "the bank" back
        lifted = time.monotonic()
        unit.sim.set_extension_off_hook(True)
        path, when = wait_for(lambda: played(folder), 15, "the reminder")[-1]
        assert when > lifted
        assert wavconv.read_wav(path).seconds > 5  # "... wait five minutes first ..."
        unit.sim.set_extension_off_hook(False)
    assert unit.proc is not None and unit.proc.returncode == 0
