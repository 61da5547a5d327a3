"""AtomicJSONStorage: round trips, write order, failed writes, damage recovery, the lock."""

from __future__ import annotations

import errno
import json
import logging
import multiprocessing
import os
import random
import re
import stat
import tempfile
import threading
from collections.abc import Callable, Iterator
from multiprocessing.synchronize import Event as MpEvent
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tinydb import Query, TinyDB
from tinydb.storages import MemoryStorage

from callguard.errors import CallGuardError
from callguard.store import files as files_module
from callguard.store.files import StoreConflict, StoreError, file_signature
from callguard.store.jsonfile import AtomicJSONStorage, Recovery, parse_tables
from callguard.store.lock import StoreLocked, holds_lock, locked

FORK = multiprocessing.get_context("fork")
CORRUPT_NAME = re.compile(r"^lists\.json\.corrupt-\d{8}T\d{6}(-\d+)?$")
BACKUP_CORRUPT_NAME = re.compile(r"^lists\.json\.bak\.corrupt-\d{8}T\d{6}(-\d+)?$")

ALICE = {"name": "Alice", "number": "+441632960001"}
BOB = {"name": "Bob", "number": "+441632960002"}


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "lists.json"


@pytest.fixture
def recoveries() -> list[Recovery]:
    return []


def open_db(path: Path, recoveries: list[Recovery] | None = None) -> TinyDB:
    on_recovery = None if recoveries is None else recoveries.append
    return TinyDB(path, storage=AtomicJSONStorage, on_recovery=on_recovery)


def temp_files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if ".tmp-" in p.name)


def seed(path: Path) -> tuple[bytes, bytes]:
    """Two writes: the backup holds Alice only, the data file Alice and Bob."""
    db = open_db(path)
    db.insert(ALICE)
    db.insert(BOB)
    return path.with_name("lists.json.bak").read_bytes(), path.read_bytes()


# -- round trips -----------------------------------------------------------------------------


def test_round_trip_through_tinydb(path: Path) -> None:
    db = open_db(path)
    alice = db.insert(ALICE)
    db.insert(BOB)
    blocked = db.table("blocked")
    blocked.insert({"number": "+441632960999", "why": "scam: \u201cyour bank\u201d"})
    db.update({"name": "Alice Smith"}, doc_ids=[alice])
    db.remove(Query().name == "Bob")
    db.table("calls").insert_multiple({"n": i} for i in range(3))
    db.close()

    again = open_db(path)
    assert again.tables() == {"_default", "blocked", "calls"}
    assert again.all() == [{"name": "Alice Smith", "number": "+441632960001"}]
    assert again.get(doc_id=alice) == {"name": "Alice Smith", "number": "+441632960001"}
    assert again.table("blocked").all()[0]["why"] == "scam: \u201cyour bank\u201d"
    assert [d["n"] for d in again.table("calls")] == [0, 1, 2]
    text = path.read_text(encoding="utf-8")
    assert "\u201cyour bank\u201d" in text  # ensure_ascii=False: readable on the card
    assert ", " not in text and ": " not in text.replace("scam: ", "")  # compact separators
    assert json.loads(text) == again.storage.read()


def test_keyword_construction_and_created_directories(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "lists.json"
    db = TinyDB(storage=AtomicJSONStorage, path=path)
    assert db.all() == []
    assert not path.exists()  # reading an empty store creates nothing
    db.insert(ALICE)
    assert TinyDB(str(path), storage=AtomicJSONStorage).all() == [ALICE]


def test_missing_directory_without_create_dirs_is_explained(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match=r"nowhere: the directory for lists\.json does not exist"):
        AtomicJSONStorage(tmp_path / "nowhere" / "lists.json", create_dirs=False)


def test_store_errors_are_callguard_errors() -> None:
    assert issubclass(StoreLocked, CallGuardError)
    assert issubclass(StoreConflict, StoreError)


# -- the write protocol ----------------------------------------------------------------------


def _fd_name(fd: int) -> str:
    target = os.readlink(f"/proc/self/fd/{fd}")
    return "<dir>" if os.path.isdir(target) else os.path.basename(target)


def test_write_order_temp_fsync_backup_replace_dir_fsync(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = open_db(path)
    db.insert(ALICE)
    old_inode = path.stat().st_ino
    calls: list[tuple[str, ...]] = []
    real_fsync, real_replace, real_link = os.fsync, os.replace, os.link

    def fsync(fd: int) -> None:
        calls.append(("fsync", _fd_name(fd)))
        real_fsync(fd)

    def replace(src: Any, dst: Any) -> None:
        calls.append(("replace", os.path.basename(src), os.path.basename(dst)))
        real_replace(src, dst)

    def link(src: Any, dst: Any) -> None:
        calls.append(("link", os.path.basename(src), os.path.basename(dst)))
        real_link(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    monkeypatch.setattr(os, "link", link)
    db.insert(BOB)
    monkeypatch.undo()

    def normal(name: str) -> str:
        return re.sub(r"\.tmp-\d+-[0-9a-f]+$", ".tmp", name)

    assert [tuple(normal(x) for x in call) for call in calls] == [
        ("fsync", "lists.json.tmp"),  # the new contents are on the card first
        ("link", "lists.json", "lists.json.tmp"),  # the current file, under a second name
        ("replace", "lists.json.tmp", "lists.json.bak"),  # ... becomes the backup
        ("replace", "lists.json.tmp", "lists.json"),  # the new file takes the name
        ("fsync", "<dir>"),  # both renames are durable
    ]
    assert calls[0][1] == calls[3][1]  # the file fsynced is the file installed
    assert calls[1][2] == calls[2][1] != calls[0][1]
    assert path.with_name("lists.json.bak").stat().st_ino == old_inode
    assert json.loads(path.with_name("lists.json.bak").read_text()) == {"_default": {"1": ALICE}}
    assert open_db(path).all() == [ALICE, BOB]
    assert temp_files(path.parent) == []


def test_first_write_has_nothing_to_back_up(path: Path) -> None:
    open_db(path).insert(ALICE)
    assert sorted(p.name for p in path.parent.iterdir()) == ["lists.json", "lists.json.lock"]


def test_new_file_mode_ignores_umask_and_existing_mode_is_kept(path: Path) -> None:
    old_umask = os.umask(0o077)
    try:
        db = open_db(path)
        db.insert(ALICE)
        assert stat.S_IMODE(path.stat().st_mode) == 0o640
        path.chmod(0o600)
        db.insert(BOB)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    finally:
        os.umask(old_umask)


def test_backup_is_a_copy_where_hard_links_are_not_supported(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = open_db(path)
    db.insert(ALICE)
    old = path.read_bytes()

    def no_links(src: Any, dst: Any) -> None:
        raise OSError(errno.EPERM, "Operation not permitted")  # vfat

    monkeypatch.setattr(os, "link", no_links)
    db.insert(BOB)
    assert path.with_name("lists.json.bak").read_bytes() == old
    assert open_db(path).all() == [ALICE, BOB]
    assert temp_files(path.parent) == []


def _raise_type_error(*args: object, **kwargs: object) -> str:
    raise TypeError("Object of type set is not JSON serializable")


def _raise_eio(*args: object, **kwargs: object) -> None:
    raise OSError(errno.EIO, "Input/output error")


FAILURES: dict[str, Callable[[pytest.MonkeyPatch, Path], None]] = {
    "serialise": lambda mp, path: mp.setattr(json, "dumps", _raise_type_error),
    "fsync the temp file": lambda mp, path: mp.setattr(os, "fsync", _raise_eio),
    "link the backup": lambda mp, path: mp.setattr(os, "link", _raise_eio),
    "replace the data file": lambda mp, path: mp.setattr(
        os,
        "replace",
        lambda src, dst, real=os.replace: (
            _raise_eio() if os.fspath(dst) == os.fspath(path) else real(src, dst)
        ),
    ),
}


@pytest.mark.parametrize("step", list(FAILURES))
def test_failed_write_leaves_old_file_and_no_temp(
    path: Path, monkeypatch: pytest.MonkeyPatch, step: str
) -> None:
    db = open_db(path)
    db.insert(ALICE)
    db.insert(BOB)
    before = path.read_bytes()
    FAILURES[step](monkeypatch, path)
    with pytest.raises(StoreError) as caught:
        db.insert({"name": "Carol"})
    monkeypatch.undo()
    assert str(path) in str(caught.value)
    assert "unchanged" in str(caught.value)
    assert path.read_bytes() == before
    assert temp_files(path.parent) == []
    db.insert({"name": "Dan"})  # the storage is not wedged
    assert [d["name"] for d in open_db(path).all()] == ["Alice", "Bob", "Dan"]


def test_failed_directory_fsync_says_the_new_file_is_in_place(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = open_db(path)
    db.insert(ALICE)
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            _raise_eio()
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(StoreError, match="new contents are in place but may not survive"):
        db.insert(BOB)
    monkeypatch.undo()
    db.insert({"name": "Carol"})  # no false StoreConflict: the storage knows what it wrote
    assert [d["name"] for d in open_db(path).all()] == ["Alice", "Bob", "Carol"]


def test_unserialisable_data_is_refused_before_touching_the_disk(path: Path) -> None:
    db = open_db(path)
    db.insert(ALICE)
    before = path.read_bytes()
    with pytest.raises(StoreError, match="cannot be saved as JSON"):
        db.insert({"tags": {"family"}})
    assert path.read_bytes() == before
    assert temp_files(path.parent) == []


def test_leftover_temp_files_are_ignored_then_cleaned(path: Path) -> None:
    db = open_db(path)
    db.insert(ALICE)
    old = path.with_name("lists.json.tmp-999-deadbeef")
    fresh = path.with_name("lists.json.tmp-998-cafef00d")
    old.write_text('{"_default": {"1": {"name": "half')
    fresh.write_text("{")
    os.utime(old, (0, 0))
    assert open_db(path).all() == [ALICE]  # a read needs no write access: it removes nothing
    assert temp_files(path.parent) == sorted([old.name, fresh.name])
    db.insert(BOB)  # a write holds the lock, so every temp file left is a dead writer's
    assert temp_files(path.parent) == []


# -- conflicts and TinyDB's caches -----------------------------------------------------------


def test_write_refuses_to_undo_another_process_change(path: Path) -> None:
    mine = AtomicJSONStorage(path)
    other = open_db(path)
    other.insert(ALICE)
    stale = mine.read() or {}
    other.insert(BOB)  # lands between this storage's read and its write
    stale.setdefault("_default", {})["9"] = {"name": "Mallory"}
    with pytest.raises(StoreConflict, match=r"lists\.json: the file was changed by another"):
        mine.write(stale)
    assert open_db(path).all() == [ALICE, BOB]
    assert mine.read() is not None
    mine.write({"_default": {}})  # after a fresh read the write goes ahead


def test_tinydb_hazard_next_id_is_cached_per_table(path: Path) -> None:
    """TinyDB caches the next document ID in each Table: a long-lived TinyDB collides with
    documents another process inserted. Open a fresh TinyDB under locked() to insert."""
    daemon, cli = open_db(path), open_db(path)
    daemon.insert(ALICE)  # the daemon's table now expects ID 2 next
    cli.insert(BOB)  # takes ID 2
    with pytest.raises(ValueError, match="Document with ID 2 already exists"):
        daemon.insert({"name": "Carol"})
    with locked(path):
        assert open_db(path).insert({"name": "Carol"}) == 3


def test_tinydb_hazard_query_cache_goes_stale(path: Path) -> None:
    """TinyDB caches search results per Table and only clears them on its own writes;
    file_signature() tells the daemon when to call clear_cache()."""
    daemon, cli = open_db(path), open_db(path)
    query = Query().name == "Bob"
    assert daemon.search(query) == []
    seen = file_signature(path)
    cli.insert(BOB)
    assert daemon.search(query) == []  # stale
    assert file_signature(path) != seen
    daemon.clear_cache()
    assert daemon.search(query) == [BOB]


def test_file_signature(path: Path) -> None:
    assert file_signature(path) is None
    db = open_db(path)
    db.insert(ALICE)
    first = file_signature(path)
    assert first is not None and first[0] == path.stat().st_ino
    db.all()
    assert file_signature(path) == first  # reads change nothing
    db.update({"name": "Alicia"})
    assert file_signature(path) not in (None, first)


# -- damaged files ---------------------------------------------------------------------------

GOOD = json.dumps({"_default": {"1": ALICE, "2": BOB}}).encode()

DAMAGE: dict[str, tuple[bytes, str]] = {
    "empty": (b"", r"^empty file$"),
    "only whitespace": (b"  \n", r"^empty file$"),
    "truncated half-way": (
        GOOD[: len(GOOD) // 2],
        r"^not valid JSON at line 1 column \d+: .*; it ends too early, as if cut short$",
    ),
    "random bytes": (
        random.Random(7).randbytes(300),
        r"^(not UTF-8 \(byte 0x[0-9a-f]{2} at offset \d+\)|not valid JSON at line)",
    ),
    "not UTF-8": (
        '{"_default": {"1": {"name": "Ren\xe9e"}}}'.encode("latin-1"),
        r"^not UTF-8 \(byte 0xe9 at offset 32\)$",
    ),
    "JSON list at top level": (b"[1, 2]", r"^top level is a list, not an object of tables$"),
    "table is a number": (
        b'{"_default": 5}',
        r"^table '_default' is a number, not an object of documents$",
    ),
    "document is a string": (
        b'{"_default": {"1": "Alice"}}',
        r"^document '1' in table '_default' is a string, not an object$",
    ),
    "null": (b"null", r"^top level is null, not an object of tables$"),
}


@pytest.mark.parametrize("kind", list(DAMAGE))
def test_damaged_file_is_kept_and_backup_restored(
    path: Path, recoveries: list[Recovery], caplog: pytest.LogCaptureFixture, kind: str
) -> None:
    damage, reason = DAMAGE[kind]
    backup, _ = seed(path)
    path.write_bytes(damage)

    with caplog.at_level(logging.ERROR, logger="callguard.store.jsonfile"):
        db = open_db(path, recoveries)
        assert db.all() == [ALICE]  # the backup: the last change (Bob) is what may be missing
        assert db.all() == [ALICE]  # and it is reported once, not on every read

    [recovery] = recoveries
    assert recovery.path == path
    assert recovery.moved_to is not None and CORRUPT_NAME.match(recovery.moved_to.name)
    assert recovery.moved_to.read_bytes() == damage  # nothing is lost
    assert recovery.restored_from == path.with_name("lists.json.bak")
    assert re.search(reason, recovery.reason), recovery.reason
    assert path.read_bytes() == backup
    message = recovery.message()
    assert str(path) in message and str(recovery.moved_to) in message
    assert str(recovery.restored_from) in message and "re-add" in message
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR] == [message]

    db.insert({"name": "Carol"})  # and the store carries on
    assert [d["name"] for d in open_db(path).all()] == ["Alice", "Carol"]


def test_damaged_file_and_damaged_backup_start_empty_keeping_both(
    path: Path, recoveries: list[Recovery]
) -> None:
    seed(path)
    path.write_bytes(b"[]")
    path.with_name("lists.json.bak").write_bytes(b'{"_default": {"1": {"na')

    db = open_db(path, recoveries)
    assert db.all() == []
    [recovery] = recoveries
    assert recovery.restored_from is None
    assert recovery.moved_to is not None and CORRUPT_NAME.match(recovery.moved_to.name)
    assert recovery.backup_moved_to is not None
    assert BACKUP_CORRUPT_NAME.match(recovery.backup_moved_to.name)
    assert recovery.moved_to.read_bytes() == b"[]"
    assert recovery.backup_moved_to.read_bytes() == b'{"_default": {"1": {"na'
    assert recovery.backup_reason is not None and "cut short" in recovery.backup_reason
    message = recovery.message()
    assert "EMPTY" in message
    assert str(recovery.moved_to) in message and str(recovery.backup_moved_to) in message

    db.insert({"name": "Carol"})
    db.insert({"name": "Dan"})  # this write makes a new backup; the damaged one is still kept
    assert recovery.backup_moved_to.exists() and recovery.moved_to.exists()
    assert len(recoveries) == 1


def test_damaged_file_without_backup_starts_empty(path: Path, recoveries: list[Recovery]) -> None:
    path.write_bytes(b"\x00\x00\x00\x00")
    assert open_db(path, recoveries).all() == []
    [recovery] = recoveries
    assert recovery.restored_from is None and recovery.backup_moved_to is None
    assert "does not exist" in recovery.message() and "EMPTY" in recovery.message()
    assert not path.exists()


def test_missing_file_with_backup_is_restored_and_reported(
    path: Path, recoveries: list[Recovery]
) -> None:
    backup, _ = seed(path)
    path.unlink()
    assert open_db(path, recoveries).all() == [ALICE]
    [recovery] = recoveries
    assert recovery.moved_to is None
    assert recovery.restored_from == path.with_name("lists.json.bak")
    assert "missing" in recovery.reason and "was missing" in recovery.message()
    assert path.read_bytes() == backup


def test_damage_twice_in_one_second_keeps_both_files(
    path: Path, recoveries: list[Recovery], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(files_module, "_utc_stamp", lambda: "20261124T093000")
    seed(path)
    path.write_bytes(b"first")
    open_db(path, recoveries).all()
    path.write_bytes(b"second")
    open_db(path, recoveries).all()
    assert [r.moved_to.name for r in recoveries if r.moved_to] == [
        "lists.json.corrupt-20261124T093000",
        "lists.json.corrupt-20261124T093000-1",
    ]
    assert path.with_name("lists.json.corrupt-20261124T093000").read_bytes() == b"first"


def test_failing_on_recovery_callback_is_logged_not_raised(
    path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    seed(path)
    path.write_bytes(b"")

    def broken(recovery: Recovery) -> None:
        raise RuntimeError("the display is unplugged")

    db = TinyDB(path, storage=AtomicJSONStorage, on_recovery=broken)
    with caplog.at_level(logging.ERROR, logger="callguard.store.jsonfile"):
        assert db.all() == [ALICE]
    assert any("on_recovery callback failed" in r.getMessage() for r in caplog.records)


def test_first_write_of_a_fresh_storage_recovers_before_backing_up(
    path: Path, recoveries: list[Recovery]
) -> None:
    backup, _ = seed(path)
    path.write_bytes(b"{")
    fresh = AtomicJSONStorage(path, on_recovery=recoveries.append)
    fresh.write({"_default": {"1": {"name": "Carol"}}})  # never read: checks the file first
    assert len(recoveries) == 1
    assert path.with_name("lists.json.bak").read_bytes() == backup  # not the damaged file


def test_parse_tables_accepts_sound_files() -> None:
    assert parse_tables(b"{}") == ({}, None)
    assert parse_tables('\ufeff{"t": {"1": {"a": "\u00e9"}}}'.encode()) == (
        {"t": {"1": {"a": "\u00e9"}}},
        None,
    )


# -- the lock --------------------------------------------------------------------------------


def test_lock_is_reentrant_in_one_thread_around_tinydb_writes(path: Path) -> None:
    db = open_db(path)
    assert not holds_lock(path)
    with locked(path, timeout_s=0):
        with locked(path, timeout_s=0):
            assert holds_lock(path)
        assert holds_lock(path)
        if not db.search(Query().name == "Alice"):  # read-check-write under one lock
            db.insert(ALICE)
    assert not holds_lock(path)
    assert path.with_name("lists.json.lock").exists()
    assert db.all() == [ALICE]


def test_lock_is_the_same_through_a_symlinked_directory(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    via_link = AtomicJSONStorage(tmp_path / "link" / "lists.json")
    assert via_link.lock_path == tmp_path / "real" / "lists.json.lock"
    with locked(tmp_path / "real" / "lists.json", timeout_s=0):
        via_link.write({"_default": {"1": ALICE}})  # re-entrant, not a second flock
    assert open_db(tmp_path / "real" / "lists.json").all() == [ALICE]


def _hold_lock(path: Path, ready: MpEvent, release: MpEvent) -> None:
    with locked(path):
        ready.set()
        release.wait(30)


@pytest.fixture
def held_by_child(path: Path) -> Iterator[multiprocessing.process.BaseProcess]:
    ready, release = FORK.Event(), FORK.Event()
    child = FORK.Process(target=_hold_lock, args=(path, ready, release))
    child.start()
    try:
        assert ready.wait(10), "the child never took the lock"
        yield child
    finally:
        release.set()
        child.join(10)


def test_lock_excludes_another_process_and_times_out_naming_the_lock_file(
    path: Path, held_by_child: multiprocessing.process.BaseProcess
) -> None:
    with pytest.raises(StoreLocked) as caught, locked(path, timeout_s=0.2):
        pass
    error = caught.value
    assert error.lock_path == f"{path}.lock"
    assert str(error).startswith(f"{path}.lock: the store is locked by pid {held_by_child.pid}")
    with pytest.raises(StoreLocked):
        AtomicJSONStorage(path, lock_timeout_s=0.1).write({})
    assert not path.exists()


def test_lock_is_free_again_when_the_holder_exits(path: Path) -> None:
    ready, release = FORK.Event(), FORK.Event()
    child = FORK.Process(target=_hold_lock, args=(path, ready, release))
    child.start()
    assert ready.wait(10)
    child.kill()  # not even a clean exit: the kernel drops the flock
    child.join(10)
    with locked(path, timeout_s=2):
        assert holds_lock(path)


def test_lock_excludes_another_thread(path: Path) -> None:
    errors: list[BaseException] = []

    def other() -> None:
        try:
            with locked(path, timeout_s=0.1):
                pass
        except BaseException as e:
            errors.append(e)

    with locked(path):
        thread = threading.Thread(target=other)
        thread.start()
        thread.join(10)
    assert len(errors) == 1 and isinstance(errors[0], StoreLocked)
    assert "another thread of this process" in str(errors[0])


def _try_lock_in_child(path: Path) -> None:
    try:
        with locked(path, timeout_s=0.1):
            os._exit(0)  # would mean the child shared its parent's lock
    except StoreLocked:
        os._exit(3)


def test_forked_child_does_not_inherit_the_parents_lock(path: Path) -> None:
    with locked(path):
        child = FORK.Process(target=_try_lock_in_child, args=(path,))
        child.start()
        child.join(10)
        assert child.exitcode == 3
        assert holds_lock(path)


# -- the in-memory twin ----------------------------------------------------------------------

OPERATIONS = st.lists(
    st.one_of(
        st.tuples(st.just("insert"), st.sampled_from(["_default", "calls"]), st.integers(0, 5)),
        st.tuples(st.just("update"), st.sampled_from(["_default", "calls"]), st.integers(0, 5)),
        st.tuples(st.just("remove"), st.sampled_from(["_default", "calls"]), st.integers(0, 5)),
        st.tuples(st.just("truncate"), st.sampled_from(["_default", "calls"]), st.just(0)),
    ),
    max_size=12,
)


@settings(max_examples=40, deadline=None)
@given(OPERATIONS)
def test_behaves_like_memory_storage(operations: list[tuple[str, str, int]]) -> None:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "lists.json"
        twin, db = TinyDB(storage=MemoryStorage), open_db(path)
        for op, table_name, value in operations:
            for target in (twin, db):
                table = target.table(table_name)
                if op == "insert":
                    table.insert({"v": value, "name": "\u00e9" * value})
                elif op == "update":
                    table.update({"v": value + 10}, Query().v == value)
                elif op == "remove":
                    table.remove(Query().v == value)
                else:
                    table.truncate()
        reopened = open_db(path)
        for name in ("_default", "calls"):
            expected = [(d.doc_id, dict(d)) for d in twin.table(name).all()]
            assert [(d.doc_id, dict(d)) for d in reopened.table(name).all()] == expected
