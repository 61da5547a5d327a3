"""``allow once`` (issue 14): one expected caller rings through without a warning, then the
entry runs out by itself; and ``block last``, the resident's "block that caller"."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from helpers import SetClock

from callguard.cli import main
from callguard.config import ScreeningConfig
from callguard.core.lists import once_target, parse_duration, target_for
from callguard.core.numbers import from_caller_id
from callguard.core.record import last_unknown_caller
from callguard.core.screening import Action, screen
from callguard.errors import UsageError
from callguard.store.index import ListIndex
from callguard.store.lists import Store

BST = dt.timezone(dt.timedelta(hours=1))
NOON = dt.datetime(2026, 6, 10, 12, 0, tzinfo=BST)
HOSPITAL = "+441438314333"


@pytest.fixture
def clock() -> SetClock:
    return SetClock(NOON)


@pytest.fixture
def store(tmp_path: Path, clock: SetClock) -> Store:
    return Store(tmp_path / "state", clock=clock)


def verdict(store: Store, raw: str, now: dt.datetime, **settings: str):  # type: ignore[no-untyped-def]
    index = ListIndex(store)
    index.refresh()
    return screen(from_caller_id(raw), index, ScreeningConfig(**settings), now)


@pytest.mark.parametrize(
    ("text", "length"),
    [
        ("2h", dt.timedelta(hours=2)),
        ("90m", dt.timedelta(minutes=90)),
        ("1h30m", dt.timedelta(minutes=90)),
        ("3 days", dt.timedelta(days=3)),
        ("45 min", dt.timedelta(minutes=45)),
    ],
)
def test_lengths_people_type(text: str, length: dt.timedelta) -> None:
    assert parse_duration(text) == length


@pytest.mark.parametrize(
    ("text", "words"),
    [("", "not a length"), ("soon", "not a length"), ("0m", "too short"), ("8d", "too long")],
)
def test_bad_lengths_say_what_to_type(text: str, words: str) -> None:
    with pytest.raises(UsageError, match=words):
        parse_duration(text)


def test_a_withheld_call_rings_without_a_warning_until_it_runs_out(
    store: Store, clock: SetClock
) -> None:
    assert verdict(store, "P", NOON).action is Action.WARN  # withheld: warned by default
    store.allow_once(once_target("withheld", "GB"), NOON + dt.timedelta(hours=1), name="Lister")
    allowed = verdict(store, "P", NOON + dt.timedelta(minutes=59))
    assert allowed.action is Action.ALLOW and allowed.rule == "allow"
    assert "expected call ('Lister')" in allowed.reason and "until 13:00" in allowed.reason
    assert verdict(store, "P", NOON + dt.timedelta(hours=1)).action is Action.WARN
    assert verdict(store, "O", NOON).action is Action.WARN  # "unavailable" is not "withheld"


def test_a_blocked_number_let_through_once_is_blocked_again_after(store: Store) -> None:
    store.add("block", target_for("01438 314333", "GB"), name="rang twice")
    store.allow_once(target_for("01438 314333", "GB"), NOON + dt.timedelta(hours=2))
    assert verdict(store, "01438314333", NOON).action is Action.ALLOW
    assert store.find(HOSPITAL).keys() == {"allow", "block"}  # the block was not moved off
    later = verdict(store, "01438314333", NOON + dt.timedelta(hours=3))
    assert later.action is Action.BLOCK and later.rule == "block"


def test_quiet_hours_let_an_expected_caller_through(store: Store) -> None:
    night = NOON.replace(hour=23)
    store.allow_once(target_for("01438 314333", "GB"), night + dt.timedelta(hours=1))
    assert verdict(store, "01438314333", night, quiet_hours="21:00-08:00").action is Action.ALLOW


def test_a_protected_number_and_a_permanent_allow_entry_are_refused(store: Store) -> None:
    with pytest.raises(UsageError, match="protect list"):
        store.allow_once(target_for("999", "GB"), NOON + dt.timedelta(hours=1))
    store.add("allow", target_for("01707 354000", "GB"), name="Sue")
    with pytest.raises(UsageError, match="allow list already as 'Sue'"):
        store.allow_once(target_for("01707 354000", "GB"), NOON + dt.timedelta(hours=1))


def test_a_new_once_replaces_the_old_and_run_out_ones_are_cleared(
    store: Store, clock: SetClock
) -> None:
    store.allow_once(target_for("01438 314333", "GB"), NOON + dt.timedelta(hours=1))
    store.allow_once(once_target("withheld", "GB"), NOON + dt.timedelta(minutes=5))
    clock.now = NOON + dt.timedelta(minutes=30)
    store.allow_once(target_for("01438 314333", "GB"), NOON + dt.timedelta(hours=4))
    entries = {e.number: e.extra["expires"] for e in store.entries("allow")}
    assert entries == {HOSPITAL: "2026-06-10T15:00:00+00:00"}


def test_an_expiry_that_cannot_be_read_counts_as_run_out(store: Store) -> None:
    store.allow_once(target_for("01438 314333", "GB"), NOON + dt.timedelta(hours=1))
    path = store.list_paths["allow"]
    tables = json.loads(path.read_text())
    for doc in tables["allow"].values():
        doc["expires"] = "next Tuesday"
    path.write_text(json.dumps(tables))
    assert verdict(store, "01438314333", NOON).action is Action.WARN


CALLS = [
    {"number": "+441134960000", "verdict": "blocked", "rule": "block", "rings": 0},
    {"number": "+441707354000", "verdict": "allowed", "rule": "allow", "rings": 2},
    {"number": "+441632960123", "verdict": "warned", "rule": "mode:guarded", "rings": 3},
    {"number": None, "verdict": "warned", "rule": "category:withheld", "rings": 0},
]


def test_the_last_unknown_caller_is_one_that_rang_or_was_answered() -> None:
    newest_first = CALLS[::-1]
    assert last_unknown_caller(newest_first) == CALLS[2]  # the withheld one never rang
    assert last_unknown_caller(CALLS[:2]) is None


def test_block_last_blocks_the_last_unknown_caller(
    store: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tmp_path / "callguard.toml"
    cfg.write_text(f'[storage]\ndir = "{store.dir}"\n')
    assert main(["--config", str(cfg), "block", "last"]) == 2
    assert "no unknown caller" in capsys.readouterr().err
    for i, call in enumerate(CALLS):
        store.append_call({**call, "started": f"2026-06-10T1{i}:00:00+01:00", "call_id": i})
    assert main(["--config", str(cfg), "block", "last"]) == 0
    out = capsys.readouterr().out
    assert "now on the block list" in out and "block remove" in out
    assert store.find("+441632960123").keys() == {"block"}
    assert main(["--config", str(cfg), "block", "last"]) == 0
    assert "on the block list already" in capsys.readouterr().out
