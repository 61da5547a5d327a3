"""The store: lists, the daemon's index, and the call log (injected clock)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from helpers import SetClock

from callguard.core.lists import ImportItem, target_for
from callguard.errors import UsageError
from callguard.store.index import ListIndex
from callguard.store.lists import Store, shipped_protected

UTC = dt.UTC


@pytest.fixture
def clock() -> SetClock:
    return SetClock(dt.datetime(2026, 5, 3, 9, 30, tzinfo=UTC))


@pytest.fixture
def store(tmp_path: Path, clock: SetClock) -> Store:
    return Store(tmp_path / "state", clock=clock, retention_days=30)


def t(text: str, prefix: bool = False):  # type: ignore[no-untyped-def]
    return target_for(text, "GB", prefix)


def test_index_exact_then_longest_prefix(store: Store) -> None:
    store.add("block", t("0870", True), name="all 0870")
    store.add("block", t("08708", True), name="08708 range")
    store.add("block", t("0870 123 4567"), name="that one")
    index = ListIndex(store)
    index.refresh()
    exact = index.match("block", "+448701234567")
    assert exact is not None and exact.how == "exact" and exact.entry.name == "that one"
    longest = index.match("block", "+448708000000")
    assert longest is not None and longest.how == "prefix" and longest.entry.name == "08708 range"
    shorter = index.match("block", "+448700000000")
    assert shorter is not None and shorter.entry.name == "all 0870"
    assert index.match("block", "+441707354000") is None
    assert index.match("allow", "+448701234567") is None
    assert index.match("block", None) is None


def test_index_matches_short_codes_exactly_only(store: Store) -> None:
    store.add("protect", t("111"))
    index = ListIndex(store)
    index.refresh()
    assert index.match("protect", "111") is not None
    assert index.match("protect", "1110") is None


def test_index_reloads_when_the_file_changes(store: Store) -> None:
    index = ListIndex(store)
    assert index.refresh() is True
    assert index.match("block", "+441134960000") is None
    assert index.refresh() is False  # unchanged: no reload
    store.add("block", t("0113 496 0000"))
    assert index.refresh() is True
    assert index.match("block", "+441134960000") is not None
    assert index.sizes() == {"allow": 0, "block": 1, "protect": len(shipped_protected())}


def test_reading_an_absent_store_creates_nothing(tmp_path: Path) -> None:
    store = Store(tmp_path / "state")
    assert store.entries("allow") == [] and store.calls() == []
    assert not (tmp_path / "state" / "lists.json").exists()


def test_add_keeps_added_date_and_by_on_update(store: Store, clock: SetClock) -> None:
    first = store.add("allow", t("01707 354000"), name="Sue", by="sue")
    clock.now += dt.timedelta(days=2)
    second = store.add("allow", t("01707354000"), name="Sue S", by="volunteer")
    assert second.updated and second.entry.added == first.entry.added
    assert second.entry.added_by == "sue" and second.entry.name == "Sue S"
    assert second.entry.to_json()["updated"].startswith("2026-05-05")


def test_unknown_list_name(store: Store) -> None:
    with pytest.raises(UsageError, match="'alow' is not a list"):
        store.entries("alow")


def test_add_many_counts_and_updates(store: Store) -> None:
    store.add("block", t("0113 496 0000"), name="old")
    items = [
        ImportItem(1, t("0113 496 0000"), "new name"),
        ImportItem(2, t("0113 496 0001"), "x"),
        ImportItem(3, t("0113 496 0001"), "duplicate line"),
    ]
    assert store.add_many("block", items) == (1, 1)
    names = {e.number: e.name for e in store.entries("block")}
    assert names == {"+441134960000": "new name", "+441134960001": "duplicate line"}


def test_call_log_order_limit_and_retention(store: Store, clock: SetClock) -> None:
    for day in range(40):
        clock.now = dt.datetime(2026, 5, 1, tzinfo=UTC) + dt.timedelta(days=day)
        store.append_call({"started": clock.now.isoformat(), "number": f"+44113496{day:04d}"})
    calls = store.calls()
    assert len(calls) == 31  # 30 days kept, counting today
    assert calls[0]["started"] < calls[-1]["started"]
    last = store.calls(limit=3)
    assert [c["number"] for c in last] == [f"+44113496{d:04d}" for d in (37, 38, 39)]


def test_reading_creates_takes_and_removes_nothing(store: Store) -> None:
    store.add("allow", t("01707 354000"), name="Sue")
    store.append_call({"started": "2026-05-03T09:30:00", "number": "+441707354000"})
    store.write_status({"state": "idle"})
    store.raise_alert({"number": "+441134960000"})
    for lock in store.dir.glob("*.lock"):
        lock.unlink()  # reading must not need the lock files: a read-only card has none
    leftover = store.dir / "lists.json.tmp-999-deadbeef"
    leftover.write_text("{")
    before = sorted(p.name for p in store.dir.iterdir())

    index = ListIndex(store)
    index.refresh()
    assert index.match("allow", "+441707354000") is not None
    assert [e.name for e in store.entries("allow")] == ["Sue"]
    assert store.find("+441707354000").keys() == {"allow"}
    assert len(store.calls()) == 1 and store.read_status() == {"state": "idle"}
    assert store.alert_active()

    assert sorted(p.name for p in store.dir.iterdir()) == before
