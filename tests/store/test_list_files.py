"""A file per list: an edit rewrites, and the daemon re-reads, only the list it changes; an older
store's one ``lists.json`` is read as it is and split at the first change."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from callguard.core.lists import LIST_NAMES, target_for
from callguard.errors import CallGuardError, UsageError
from callguard.store import jsonfile
from callguard.store.index import ListIndex
from callguard.store.lists import Store

DAUGHTER = "+441707354000"
SCAM = "+441134960000"
GP = "+441134960999"

LEGACY = {
    "allow": {"1": {"number": DAUGHTER, "kind": "number", "name": "Daughter"}},
    "block": {
        "1": {"number": SCAM, "kind": "number", "name": "scam"},
        "2": {"number": "+44870*", "kind": "prefix", "name": "0870 numbers"},
    },
    "protect": {"1": {"number": "159", "kind": "short-code", "name": "Stop Scams UK"}},
    "protect_removed": {"1": {"number": "999"}},
}


def t(text: str, prefix: bool = False):  # type: ignore[no-untyped-def]
    return target_for(text, "GB", prefix)


def names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def numbers(store: Store, list_name: str) -> set[str]:
    return {e.number for e in store.entries(list_name)}


@pytest.fixture
def legacy(tmp_path: Path) -> Store:
    """A store as an older CallGuard left it: every list in lists.json, with its backup."""
    folder = tmp_path / "state"
    folder.mkdir()
    (folder / "lists.json").write_text(json.dumps(LEGACY))
    (folder / "lists.json.bak").write_text(json.dumps({"allow": LEGACY["allow"]}))
    return Store(folder)


def test_an_older_store_is_read_as_it_is_without_writing(legacy: Store) -> None:
    before = names(legacy.dir)
    assert numbers(legacy, "allow") == {DAUGHTER}
    assert numbers(legacy, "block") == {SCAM, "+44870*"}
    assert "159" in numbers(legacy, "protect") and "999" not in numbers(legacy, "protect")
    assert legacy.find(SCAM).keys() == {"block"}
    index = ListIndex(legacy)
    assert index.refresh() is True
    assert index.match("block", "+448701234567") is not None
    assert index.match("protect", "999") is None  # the family's removal honoured
    assert names(legacy.dir) == before


def test_the_first_change_splits_it_keeping_every_entry_and_the_old_file(legacy: Store) -> None:
    index = ListIndex(legacy)
    index.refresh()
    legacy.add("allow", t("0113 496 0999"), name="GP")
    assert numbers(legacy, "allow") == {DAUGHTER, GP}
    assert numbers(legacy, "block") == {SCAM, "+44870*"}
    assert "999" not in numbers(legacy, "protect")
    assert not legacy.unsplit()
    found = set(names(legacy.dir))
    assert {"allow.json", "block.json", "protect.json"} <= found
    assert {"lists.json.migrated", "lists.json.bak.migrated"} <= found
    assert not {"lists.json", "lists.json.bak"} & found
    assert json.loads((legacy.dir / "lists.json.migrated").read_text()) == LEGACY
    assert json.loads((legacy.dir / "protect.json").read_text())["protect_removed"] == {
        "1": {"number": "999"}
    }
    assert index.refresh() is True  # the daemon follows the move
    assert index.match("allow", GP) is not None and index.match("block", SCAM) is not None


def test_a_split_cut_short_leaves_the_old_file_in_force_and_the_next_change_finishes_it(
    legacy: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = os.replace

    def cut(src: Any, dst: Any) -> None:
        if str(dst).endswith(".migrated"):
            raise OSError(5, "Input/output error")  # power gone before the old file moved
        real(src, dst)

    monkeypatch.setattr(os, "replace", cut)
    with pytest.raises(CallGuardError):
        legacy.add("allow", t("0113 496 0999"), name="GP")
    monkeypatch.undo()
    assert legacy.unsplit()  # lists.json still says what the lists are
    assert numbers(legacy, "allow") == {DAUGHTER}
    legacy.add("block", t("0113 496 0001"))
    assert numbers(legacy, "allow") == {DAUGHTER}
    assert numbers(legacy, "block") == {SCAM, "+44870*", "+441134960001"}
    assert not legacy.unsplit()


def test_allow_add_rewrites_only_the_allow_list_and_never_parses_a_big_block_list(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = Store(tmp_path / "state")
    store.add("block", t("0113 496 0000"), name="scam")
    store.add("protect", t("0306 999 0123"))
    block = os.stat(store.list_paths["block"])
    parsed: list[int] = []
    real = jsonfile.parse_tables

    def spy(raw: bytes, **kwargs: Any) -> Any:
        parsed.append(len(raw))
        return real(raw, **kwargs)

    monkeypatch.setattr(jsonfile, "parse_tables", spy)
    store.add("allow", t("0113 496 0999"), name="GP")
    after = os.stat(store.list_paths["block"])
    assert (after.st_ino, after.st_mtime_ns) == (block.st_ino, block.st_mtime_ns)
    assert os.path.getsize(store.list_paths["block"]) not in parsed
    with pytest.raises(UsageError, match="block list"):  # a conflict is still found
        store.add("allow", t("0113 496 0000"))
    assert os.path.getsize(store.list_paths["block"]) in parsed


@pytest.mark.parametrize(
    "text",
    [
        '{"block":{"1":{"number":"\\u002b441134960000","kind":"number"}}}\n',  # escaped
        '{"block": {"1": {"number" : "+441134960000"}}}',  # spaced, by hand
    ],
    ids=["escaped", "hand-written"],
)
def test_a_number_written_another_way_is_still_found(tmp_path: Path, text: str) -> None:
    store = Store(tmp_path / "state")
    store.add("allow", t("01707 354000"))
    store.list_paths["block"].write_text(text)
    assert store.find(SCAM).keys() == {"block"}
    with pytest.raises(UsageError, match="block list"):
        store.add("allow", t("0113 496 0000"))


def test_a_damaged_big_list_is_recovered_not_taken_as_empty(tmp_path: Path) -> None:
    store = Store(tmp_path / "state")
    store.add("block", t("0113 496 0000"))
    store.add("block", t("0113 496 0001"))  # the backup holds the first
    store.list_paths["block"].write_bytes(b'{"block":{"1":{"number":"+4411349')  # cut short
    assert store.find(SCAM).keys() == {"block"}  # from the backup, restored


def test_a_move_writes_the_list_it_goes_to_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = Store(tmp_path / "state")
    store.add("block", t("0113 496 0000"), name="was a scam")
    real = jsonfile.AtomicJSONStorage.write

    def failing_block(self: jsonfile.AtomicJSONStorage, data: Any) -> None:
        if self.path.name == "block.json":
            raise OSError(28, "No space left on device")
        real(self, data)

    monkeypatch.setattr(jsonfile.AtomicJSONStorage, "write", failing_block)
    with pytest.raises(CallGuardError, match="full"):
        store.add("allow", t("0113 496 0000"), name="the bank after all", force=True)
    monkeypatch.undo()
    # cut between the two writes: on both lists, and the allow list wins at screening
    assert store.find(SCAM).keys() == {"allow", "block"}


def lists_read(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """From now on, which lists each read of the list files asks for (``Store.read_packed``)."""
    asked: list[list[str]] = []
    real = Store.read_packed

    def spy(self: Store, pack: Any, list_names: Any = LIST_NAMES) -> Any:
        asked.append(list(list_names))
        return real(self, pack, list_names)

    monkeypatch.setattr(Store, "read_packed", spy)
    return asked


def test_the_index_rereads_only_the_list_that_changed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = Store(tmp_path / "state")
    store.add("block", t("0113 496 0000"))
    store.add("allow", t("01707 354000"))
    index = ListIndex(store)
    index.refresh()
    block = index.snapshot().exact["block"]
    asked = lists_read(monkeypatch)
    assert index.is_current()
    store.add("allow", t("0113 496 0999"))
    assert not index.is_current()
    assert index.refresh() is True
    assert asked == [["allow"]]
    assert index.snapshot().exact["block"] is block  # not rebuilt
    assert index.match("allow", GP) is not None and index.match("block", SCAM) is not None
    assert index.is_current() and index.refresh() is False
    store.remove("protect", t("999"))
    assert index.refresh() is True and asked[-1] == ["protect"]
    assert index.match("protect", "999") is None


def test_a_big_lists_index_is_cached_and_used_only_while_its_file_is_unchanged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from helpers import wait_for

    from callguard.store import index as index_mod

    monkeypatch.setattr(index_mod, "BIG_LIST", 2)  # "big" from three entries
    store = Store(tmp_path / "state")
    for n in ("0113 496 0000", "0113 496 0001", "0113 496 0002"):
        store.add("block", t(n), name="scam")
    store.add("block", t("0870", True), name="0870 numbers")
    first = ListIndex(store)
    first.refresh()
    cache = store.dir / "cache" / "index-block.marshal"
    wait_for(cache.exists, 5, "the cached index")
    asked = lists_read(monkeypatch)
    second = ListIndex(store)  # a restart
    second.refresh()
    assert all("block" not in names for names in asked)  # taken from the cache
    for key in (SCAM, "+448701234567"):
        got, want = second.match("block", key), first.match("block", key)
        assert got is not None and got == want
    assert second.match("block", "+441134960009") is None

    store.add("block", t("0113 496 0009"))  # the file changes: the cache no longer fits
    third = ListIndex(store)
    third.refresh()
    assert "block" in asked[-1] and third.match("block", "+441134960009") is not None

    wait_for(lambda: ListIndex(store).cache.load("block", key_of(store)) is not None, 5, "recache")
    cache.write_bytes(b"\x00garbage")  # a damaged cache is not used, the file is read
    asked.clear()
    fourth = ListIndex(store)
    fourth.refresh()
    assert "block" in asked[-1] and fourth.match("block", "+441134960009") is not None


def key_of(store: Store) -> Any:
    from callguard.store.files import file_signature

    path = store.list_paths["block"]
    return (str(path), file_signature(path))
