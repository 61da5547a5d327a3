"""The call log in SQLite (issue 13 item 1): ordered by the true instant, read without write
access, migrated from calls.json whole, damaged databases moved aside, errors the daemon can act on.

Read-only folders two ways: ``os.access`` saying "not writable" (how the log decides whether a
read may migrate), and a real read-only bind mount (or a tiny full tmpfs) in a private mount
namespace (``unshare -m``, or ``-rm`` for a non-root user), skipped where that is not possible.
"""

from __future__ import annotations

import collections
import contextlib
import datetime as dt
import json
import logging
import multiprocessing
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import write_config

import callguard
from callguard.cli import main
from callguard.core.numbers import Category
from callguard.core.record import CallRecord
from callguard.core.screening import Action
from callguard.errors import CallGuardError
from callguard.store import calllog as calllog_module
from callguard.store.calllog import CallLog, CallLogRecovery
from callguard.store.files import StoreError, file_signature
from callguard.store.jsonfile import Recovery
from callguard.store.lists import Store

UTC = dt.UTC
BST = dt.timezone(dt.timedelta(hours=1))
ROOT = os.geteuid() == 0


class Clock:
    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


NOW = dt.datetime(2026, 10, 25, 12, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture
def log(state: Path, clock: Clock) -> CallLog:
    return CallLog(state, clock=clock)


def record(
    call_id: int, started: str, number: str | None = "+441134960000", **extra: Any
) -> dict[str, Any]:
    return {"call_id": call_id, "started": started, "number": number, **extra}


def ids(calls: list[dict[str, Any]]) -> list[int]:
    return [c["call_id"] for c in calls]


def names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def cli(cfg: Path, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(["--config", str(cfg), *argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def cfg(tmp_path: Path, state: Path) -> Path:
    return write_config(tmp_path / "callguard.toml", {"storage": {"dir": str(state)}})


# -- order: the true instant, not the text -------------------------------------------------


def test_the_autumn_clock_change_orders_calls_by_the_instant_not_the_text(
    log: CallLog, cfg: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # 01:30 BST is 00:30 UTC; 01:10 GMT, after the clocks went back, is 01:10 UTC: later
    log.append(record(1, "2026-10-25T01:30:00+01:00"))
    log.append(record(2, "2026-10-25T01:10:00+00:00"))
    log.append(record(3, "2026-10-25T00:50:00+01:00"))  # 23:50 UTC the day before: logged late
    assert "2026-10-25T01:30:00+01:00" > "2026-10-25T01:10:00+00:00"  # the text sorts wrong
    assert ids(log.read()) == [3, 1, 2]
    assert ids(log.read(limit=1)) == [2]
    assert ids(log.read(limit=2)) == [1, 2]
    code, out, _ = cli(cfg, capsys, "log", "--json", "--limit", "1")
    assert code == 0 and ids(json.loads(out)) == [2]
    code, out, _ = cli(cfg, capsys, "log")
    assert out.splitlines()[-1].startswith("2026-10-25 01:10")


def test_equal_instants_keep_the_order_they_were_logged_in(log: CallLog) -> None:
    log.append(record(1, "2026-05-03T10:00:00+01:00"))
    log.append(record(2, "2026-05-03T09:00:00+00:00"))  # the same instant
    log.append(record(3, "2026-05-03T09:00:00Z"))
    log.append(record(4, "2026-05-03T08:59:59+00:00"))
    assert ids(log.read()) == [4, 1, 2, 3]
    assert ids(log.read(limit=2)) == [2, 3]


def test_a_call_without_a_readable_start_is_kept_and_counts_as_oldest(
    log: CallLog, clock: Clock
) -> None:
    log.append(record(1, "2026-05-03T10:00:00+01:00"))
    log.append({"call_id": 2, "number": None})
    log.append(record(3, "not a time"))
    clock.now += dt.timedelta(days=4000)  # every dated call is past retention now
    log.append(record(4, clock.now.isoformat()))
    assert ids(log.read()) == [2, 3, 4]
    assert ids(log.read(limit=1)) == [4]


def test_a_record_comes_back_exactly_as_it_was_given(log: CallLog, clock: Clock) -> None:
    given = CallRecord(
        call_id=7,
        started=NOW.astimezone(BST),
        ended=None,
        number=None,
        display="0800\x1b[2J\u202eKNAB RUOY\u202c",
        category=Category.INVALID,
        name="Café 李 😀 \udcff",  # a lone surrogate, as a decoded caller ID can hold
        verdict=Action.WARN,
        rule=None,
        reason='He said "it\'s the bank"\n',
        answered=None,
        duration_s=12.5,
        rings=3,
        caller_id=True,
        impersonation=True,
        grooming_alert=False,
        name_claim=True,
        notes=("a", "b"),
    ).to_json()
    log.append(given)
    (back,) = log.read()
    assert back == given and list(back) == list(given)  # the values and the key order
    assert json.dumps(back) == json.dumps(given)


def test_a_record_that_is_not_json_is_refused_before_anything_is_written(
    log: CallLog, state: Path
) -> None:
    with pytest.raises(StoreError, match="cannot be saved as JSON"):
        log.append({"started": "2026-05-03T10:00:00+01:00", "when": dt.datetime.now()})
    assert not state.exists()


def test_by_number_and_by_day(log: CallLog) -> None:
    log.append(record(1, "2026-10-24T23:30:00+01:00", "+441"))  # 22:30 UTC on the 24th
    log.append(record(2, "2026-10-25T00:30:00+01:00", "+442"))  # 23:30 UTC on the 24th
    log.append(record(3, "2026-10-25T09:00:00+00:00", "+441"))
    log.append(record(4, "2026-10-26T09:00:00+00:00", "+441"))
    log.append(record(5, "2026-10-25T01:50:00+01:00", None))
    assert ids(log.read_by_number("+441")) == [1, 3, 4]
    assert ids(log.read_by_number("+441", limit=2)) == [3, 4]
    assert log.read_by_number("+449") == []
    # the day as the unit's clock showed it, whatever the UTC date
    assert ids(log.read_day(dt.date(2026, 10, 25))) == [2, 5, 3]
    assert ids(log.read_day(dt.date(2026, 10, 24))) == [1]


def test_every_read_walks_an_index_in_order_and_never_sorts(log: CallLog) -> None:
    log.append(record(1, "2026-05-03T10:00:00+01:00"))
    queries = {
        "newest": "SELECT record FROM calls ORDER BY started_utc DESC, id DESC LIMIT 20",
        "all": "SELECT record FROM calls ORDER BY started_utc, id",
        "number": "SELECT record FROM calls WHERE number = '+4411' "
        "ORDER BY started_utc DESC, id DESC LIMIT 20",
        "day": "SELECT record FROM calls WHERE started_utc > 1 AND started_utc < 2 "
        "AND day = '2026-05-03' ORDER BY started_utc, id",
    }
    db = sqlite3.connect(log.path)
    try:
        plans = {
            k: " | ".join(r[3] for r in db.execute(f"EXPLAIN QUERY PLAN {q}"))
            for k, q in queries.items()
        }
        indexes = [n for (n,) in db.execute("SELECT name FROM sqlite_master WHERE type='index'")]
    finally:
        db.close()
    assert "calls_by_time" in plans["newest"] and "calls_by_time" in plans["all"]
    assert "calls_by_number" in plans["number"]
    assert "calls_by_time (started_utc>? AND started_utc<?)" in plans["day"]  # a range
    assert not [k for k, plan in plans.items() if "TEMP B-TREE" in plan], plans
    assert sorted(indexes) == ["calls_by_number", "calls_by_time"]  # one page each per call


def test_a_day_is_read_whole_at_any_offset_from_the_utc_date(log: CallLog) -> None:
    day = dt.date(2026, 10, 25)
    log.append(record(1, "2026-10-25T00:00:00+23:59"))  # 00:01 UTC on the 24th
    log.append(record(2, "2026-10-25T23:59:59-23:59"))  # 23:58:59 UTC on the 26th
    log.append(record(3, "2026-10-24T23:59:59-23:59"))  # the 24th, local: 23:58:59 UTC 25th
    log.append(record(4, "2026-10-25T12:00:00"))  # no offset: the unit's local time
    assert ids(log.read_day(day)) == [1, 4, 2]
    assert ids(log.read_day(dt.date(2026, 10, 24))) == [3]
    assert log.read_day(dt.date.min) == [] and log.read_day(dt.date.max) == []


V1_SCHEMA = (
    "PRAGMA page_size = 4096",
    "PRAGMA journal_mode = WAL",
    "CREATE TABLE calls (id INTEGER PRIMARY KEY, started_utc REAL, number TEXT, day TEXT, "
    "record TEXT NOT NULL)",
    "CREATE INDEX calls_by_time ON calls (started_utc)",
    "CREATE INDEX calls_by_number ON calls (number, started_utc)",
    "CREATE INDEX calls_by_day ON calls (day, started_utc)",
    "PRAGMA user_version = 1",
)


def test_a_new_log_has_small_pages_and_one_made_by_version_1_keeps_its_own(
    log: CallLog, state: Path, tmp_path: Path
) -> None:
    log.append(record(1, "2026-05-03T10:00:00+01:00"))
    old = tmp_path / "old"
    old.mkdir()
    db = sqlite3.connect(old / "calls.sqlite3", isolation_level=None)
    for statement in V1_SCHEMA:
        db.execute(statement)
    db.execute(calllog_module._INSERT, calllog_module._row(record(1, NOW.isoformat()), old))
    db.close()
    old_log = CallLog(old, clock=log.clock)
    old_log.append(record(2, NOW.isoformat()))
    assert ids(old_log.read()) == [1, 2] and ids(old_log.read_day(NOW.date())) == [1, 2]
    old_log.close()
    log.close()
    for folder, size in ((state, 1024), (old, 4096)):
        db = sqlite3.connect(folder / "calls.sqlite3")
        try:
            assert db.execute("PRAGMA page_size").fetchone() == (size,)
            assert db.execute("PRAGMA user_version").fetchone() == (2,)
            found = db.execute("SELECT name FROM sqlite_master WHERE type='index'").fetchall()
            assert sorted(found) == [("calls_by_number",), ("calls_by_time",)]  # day's dropped
        finally:
            db.close()


def test_every_append_commits_in_wal_mode_and_fsyncs(
    log: CallLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not observable without pulling the plug: the settings that make a call survive it."""
    seen: list[tuple[Any, ...]] = []
    real = calllog_module._transaction

    @contextlib.contextmanager
    def transaction(conn: sqlite3.Connection) -> Iterator[None]:
        with real(conn):
            yield
            mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
            synchronous = conn.execute("PRAGMA synchronous").fetchone()[0]
            seen.append((mode, synchronous, conn.execute("PRAGMA secure_delete").fetchone()[0]))

    monkeypatch.setattr(calllog_module, "_transaction", transaction)
    log.append(record(1, NOW.isoformat()))
    log.append(record(2, NOW.isoformat()))
    default = sqlite3.connect(":memory:")
    try:
        secure = default.execute("PRAGMA secure_delete").fetchone()[0]  # as SQLite was built
    finally:
        default.close()
    # 2: FULL, the WAL is fsynced at each commit
    assert seen and {(mode, synchronous) for mode, synchronous, _ in seen} == {("wal", 2)}
    # the appends erase pruned calls as SQLite would (only the schema's change does not)
    assert [s for _, _, s in seen[-2:]] == [secure, secure]


# -- retention: at most once an hour --------------------------------------------------------


def test_retention_runs_at_most_once_an_hour(state: Path, clock: Clock) -> None:
    log = CallLog(state, retention_days=30, clock=clock)
    old = (NOW - dt.timedelta(days=31)).isoformat()
    log.append(record(1, old))
    assert ids(log.read()) == []  # the first append of a process prunes, its own call too
    log.append(record(2, old))
    clock.now += dt.timedelta(minutes=59)
    log.append(record(3, clock.now.isoformat()))
    assert ids(log.read()) == [2, 3]  # not within the hour
    clock.now += dt.timedelta(minutes=1)
    log.append(record(4, (clock.now - dt.timedelta(days=30)).isoformat()))  # exactly 30 days
    assert ids(log.read()) == [4, 3]
    clock.now -= dt.timedelta(hours=2)  # the wall clock stepped back: prune again, not never
    log.append(record(5, old))
    assert ids(log.read()) == [4, 3]


# -- reading needs no write access and creates nothing ----------------------------------------


def test_reading_an_absent_log_creates_nothing(tmp_path: Path) -> None:
    log = CallLog(tmp_path / "missing")
    assert log.read() == [] and log.read(limit=3) == [] and log.read_day(NOW.date()) == []
    assert not (tmp_path / "missing").exists()
    (tmp_path / "empty").mkdir()
    assert CallLog(tmp_path / "empty").read() == [] and names(tmp_path / "empty") == []


def test_between_appends_the_log_is_one_file_and_reading_it_creates_nothing(
    log: CallLog, state: Path
) -> None:
    log.append(record(1, "2026-05-03T10:00:00+01:00"))
    assert names(state) == ["calls.sqlite3"]  # no -wal or -shm: every call is in the file
    before = os.stat(log.path)
    assert ids(CallLog(state).read()) == [1]
    assert names(state) == ["calls.sqlite3"]
    after = os.stat(log.path)
    assert (before.st_mtime_ns, before.st_size) == (after.st_mtime_ns, after.st_size)


def test_the_daemons_log_keeps_its_connection_and_once_closed_is_one_file(
    state: Path, clock: Clock
) -> None:
    log = CallLog(state, clock=clock, keep_open=True)
    log.append(record(1, "2026-05-03T10:00:00+01:00"))
    # between appends the connection stays open: the newest calls are in the WAL
    assert names(state) == ["calls.sqlite3", "calls.sqlite3-shm", "calls.sqlite3-wal"]
    assert ids(CallLog(state).read()) == [1]  # read through the WAL's index
    assert names(state) == ["calls.sqlite3", "calls.sqlite3-shm", "calls.sqlite3-wal"]
    log.close()
    assert names(state) == ["calls.sqlite3"]  # no -wal or -shm: every call is in the file
    before = os.stat(log.path)
    assert ids(CallLog(state).read()) == [1]
    assert names(state) == ["calls.sqlite3"]
    after = os.stat(log.path)
    assert (before.st_mtime_ns, before.st_size) == (after.st_mtime_ns, after.st_size)
    log.close()  # closing again does nothing
    log.append(record(2, "2026-05-03T10:05:00+01:00"))  # and the next append opens it again
    assert ids(CallLog(state).read()) == [1, 2]


def test_the_daemons_log_opened_at_start_has_its_files_before_the_first_call(
    state: Path, clock: Clock
) -> None:
    """The daemon opens its log when it starts, so the storage folder does not change at the
    first call (the seize path's first look trusts the lists while it is unchanged); a reader
    of the still-empty log sees no call."""
    log = CallLog(state, clock=clock, keep_open=True)
    log.open()
    assert names(state) == ["calls.sqlite3", "calls.sqlite3-shm", "calls.sqlite3-wal"]
    reader = CallLog(state)
    assert reader.last_row_id() == 0 and reader.read() == []
    folder = file_signature(state)
    log.append(record(1, "2026-05-03T10:00:00+01:00"))
    assert file_signature(state) == folder and reader.last_row_id() == 1
    log.close()
    CallLog(state).open()  # a log that closes after each append opens nothing
    assert names(state) == ["calls.sqlite3"]


def test_appends_share_one_connection_and_it_can_be_used_from_any_thread(
    state: Path, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = CallLog(state, clock=clock, keep_open=True)
    opened: list[str] = []
    real = calllog_module._connect

    def connect(uri: str) -> sqlite3.Connection:
        opened.append(uri)
        return real(uri)

    monkeypatch.setattr(calllog_module, "_connect", connect)
    log.append(record(1, "2026-05-03T10:00:00+01:00"))
    other = threading.Thread(target=log.append, args=(record(2, "2026-05-03T10:01:00+01:00"),))
    other.start()
    other.join(10)
    log.append(record(3, "2026-05-03T10:02:00+01:00"))
    assert [u for u in opened if "mode=rw" in u] == [opened[0]] and "mode=rw" in opened[0]
    assert ids(log.read()) == [1, 2, 3]


def _append_in_child(log: CallLog) -> None:
    parents = log._conn
    log.append(record(2, "2026-05-03T10:01:00+01:00"))
    assert parents is not None and log._conn is not parents  # never the parent's
    log.close()
    assert log._inherited == [parents]  # nor closed here


def test_a_forked_child_uses_its_own_connection_and_leaves_the_parents_alone(
    state: Path, clock: Clock
) -> None:
    log = CallLog(state, clock=clock, keep_open=True)
    log.append(record(1, "2026-05-03T10:00:00+01:00"))
    child = multiprocessing.get_context("fork").Process(target=_append_in_child, args=(log,))
    child.start()
    child.join(30)
    assert child.exitcode == 0
    log.append(record(3, "2026-05-03T10:02:00+01:00"))
    assert ids(log.read()) == [1, 2, 3]
    log.close()
    assert names(state) == ["calls.sqlite3"]


@pytest.mark.parametrize("how", ["deleted", "moved", "replaced"])
def test_a_database_moved_or_replaced_under_the_connection_gets_the_next_call(
    state: Path, clock: Clock, tmp_path: Path, how: str
) -> None:
    log = CallLog(state, clock=clock, keep_open=True)
    log.append(record(1, "2026-05-03T10:00:00+01:00"))
    if how == "deleted":
        log.path.unlink()
    elif how == "moved":
        log.path.rename(tmp_path / "kept.sqlite3")
    else:
        other = CallLog(tmp_path / "other")
        other.append(record(7, "2026-05-03T09:00:00+01:00"))
        other.close()
        os.replace(other.path, log.path)
    log.append(record(2, "2026-05-03T10:05:00+01:00"))
    # the old file's WAL is not applied to the file now there: it is kept aside
    assert ids(CallLog(state).read()) == {"deleted": [2], "moved": [2], "replaced": [7, 2]}[how]
    log.close()
    (kept,) = [n for n in names(state) if ".orphaned-" in n]
    assert names(state) == ["calls.sqlite3", kept] and kept.endswith("-wal")
    if how == "moved":  # with the file it belongs to, the WAL gives back the call before
        os.rename(state / kept, tmp_path / "kept.sqlite3-wal")
        assert ids(CallLog(tmp_path).read()) == []  # (no calls.sqlite3 of that name there)
        db = sqlite3.connect(tmp_path / "kept.sqlite3")
        try:
            assert db.execute("SELECT count(*) FROM calls").fetchone() == (1,)
        finally:
            db.close()


def test_an_append_writes_a_few_small_pages(state: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The bytes written per call (issue 13): frames appended to the WAL per append, with a
    thousand calls logged (a page is 1 KiB; every frame is also written once more at a
    checkpoint, shared by the calls of a hundred or so appends)."""
    calls = legacy_calls(1000)
    write_legacy(state, calls)
    log = CallLog(state, clock=Clock(NOW), keep_open=True)
    log.read(limit=1)  # migrates (and closes)
    monkeypatch.setattr(calllog_module, "WAL_AUTOCHECKPOINT_PAGES", 1_000_000)
    log.append(legacy_calls(1, seed=1)[0])  # the first append of a process also prunes
    wal = state / "calls.sqlite3-wal"
    before = wal.stat().st_size
    for call in legacy_calls(40, seed=2):
        log.append(call)
    per_append = (wal.stat().st_size - before) / 40
    assert per_append < 8 * 1024, per_append  # 4 KiB pages and three indexes wrote 20 KiB
    log.close()


def test_a_reader_sees_every_commit_and_is_never_blocked_by_a_writer(
    log: CallLog, state: Path
) -> None:
    log.append(record(1, "2026-05-03T10:00:00+01:00"))
    other = sqlite3.connect(log.path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # a writer in the middle of a transaction
        other.execute(
            "INSERT INTO calls (started_utc, record) VALUES (0, ?)", (json.dumps({"call_id": 9}),)
        )
        assert ids(CallLog(state).read()) == [1]  # at once, without the uncommitted row
        other.execute("COMMIT")
        assert ids(CallLog(state).read()) == [9, 1]
    finally:
        other.close()


@pytest.mark.parametrize("keep_open", [False, True])
def test_a_writer_held_up_past_the_timeout_raises_and_the_next_append_works(
    state: Path, clock: Clock, monkeypatch: pytest.MonkeyPatch, keep_open: bool
) -> None:
    log = CallLog(state, clock=clock, keep_open=keep_open)
    log.append(record(1, "2026-05-03T10:00:00+01:00"))
    monkeypatch.setattr(calllog_module, "BUSY_TIMEOUT_S", 0.05)
    other = sqlite3.connect(log.path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        with pytest.raises(CallGuardError, match="another process held it"):
            log.append(record(2, "2026-05-03T10:05:00+01:00"))
    finally:
        other.close()
    log.append(record(3, "2026-05-03T10:10:00+01:00"))  # what the daemon does: try again
    assert ids(log.read()) == [1, 3]


@pytest.mark.parametrize("keep_open", [False, True])
def test_appends_from_several_threads_are_all_kept(
    state: Path, clock: Clock, keep_open: bool
) -> None:
    log = CallLog(state, clock=clock, keep_open=keep_open)

    def append_many(who: int) -> None:
        for i in range(40):
            log.append(record(who * 100 + i, f"2026-05-03T10:{i:02d}:00+01:00"))

    threads = [threading.Thread(target=append_many, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(ids(log.read())) == sorted(w * 100 + i for w in range(4) for i in range(40))


# -- damage ---------------------------------------------------------------------------------


def _fill(log: CallLog, count: int) -> None:
    for i in range(count):
        log.append(record(i, (NOW - dt.timedelta(minutes=count - i)).isoformat()))


@pytest.mark.parametrize("damage", ["not sqlite", "truncated"])
def test_a_damaged_database_is_moved_aside_and_a_new_one_started(
    state: Path, clock: Clock, damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    log = CallLog(state, clock=clock)
    _fill(log, 300)
    log.close()  # the daemon stopped; its file was damaged while it was stopped
    if damage == "not sqlite":
        log.path.write_bytes(b'{"calls": {}}' * 100)
    else:
        with open(log.path, "r+b") as f:
            f.truncate(os.path.getsize(log.path) // 2)
    damaged = log.path.read_bytes()
    recoveries: list[Recovery] = []

    daemon_log = CallLog(state, clock=clock, on_recovery=recoveries.append, keep_open=True)
    with caplog.at_level(logging.ERROR, logger="callguard.store.calllog"):
        daemon_log.append(record(1000, NOW.isoformat()))

    assert ids(daemon_log.read()) == [1000]
    (aside,) = [p for p in state.iterdir() if ".corrupt-" in p.name]
    assert aside.name.startswith("calls.sqlite3.corrupt-") and aside.read_bytes() == damaged
    (recovery,) = recoveries
    assert isinstance(recovery, CallLogRecovery) and recovery.moved_to == aside
    message = recovery.message()
    assert str(log.path) in message and str(aside) in message and "call log" in message
    assert "allow list" not in message  # the lists are not what was lost
    assert message in caplog.text
    check = sqlite3.connect(log.path)
    try:
        assert check.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    finally:
        check.close()


def test_a_reader_reports_a_damaged_database_and_moves_nothing(
    log: CallLog, state: Path, cfg: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log.append(record(1, NOW.isoformat()))
    log.close()  # (with the daemon running, its WAL would hide the damage until a checkpoint)
    log.path.write_bytes(b"this is not a database" * 200)
    before = names(state)
    with pytest.raises(StoreError, match="damaged"):
        CallLog(state).read()
    code, _, err = cli(cfg, capsys, "log")
    assert code == 1 and "calls.sqlite3: the call log is damaged" in err
    assert names(state) == before


# -- errors the daemon can act on: raise, with words that say what to do ---------------------


def test_the_store_raises_for_a_write_it_cannot_make_so_the_daemon_keeps_the_call(
    tmp_path: Path,
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    store = Store(blocker / "state")
    with pytest.raises(CallGuardError, match="cannot write to"):
        store.append_call(record(1, NOW.isoformat()))
    assert store.calls() == []


# -- links and owners (sudo callguard ... in the service's folder) ----------------------------


@pytest.mark.parametrize("name", ["calls.sqlite3", "calls.sqlite3-wal", "calls.sqlite3-shm"])
def test_a_symlinked_database_file_is_refused_not_followed(
    log: CallLog, state: Path, tmp_path: Path, name: str
) -> None:
    log.append(record(1, NOW.isoformat()))
    target = tmp_path / "elsewhere.db"
    other = CallLog(tmp_path / "other")
    other.append(record(2, NOW.isoformat()))
    shutil.copy(other.path, target)
    original = target.read_bytes()
    link = state / name
    link.unlink(missing_ok=True)
    link.symlink_to(target)
    for action in (lambda: CallLog(state).read(), lambda: CallLog(state).append(record(3, "x"))):
        with pytest.raises(StoreError) as caught:
            action()
        assert str(link) in str(caught.value) and "symbolic link" in str(caught.value)
    assert target.read_bytes() == original and link.is_symlink()
    assert not (tmp_path / "elsewhere.db-wal").exists()


@pytest.mark.skipif(not ROOT, reason="needs root: the hazard is `sudo callguard ...`")
def test_files_root_creates_go_to_the_folder_owner(state: Path, clock: Clock) -> None:
    state.mkdir()
    os.chown(state, 65534, 65534)
    log = CallLog(state, clock=clock)
    log.append(record(1, NOW.isoformat()))
    assert (log.path.stat().st_uid, log.path.stat().st_gid) == (65534, 65534)
    reader = sqlite3.connect(log.path, isolation_level=None)  # keeps the WAL past the append
    try:
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM calls").fetchone()
        log.append(record(2, NOW.isoformat()))
        owners = {p.name: (p.stat().st_uid, p.stat().st_gid) for p in state.iterdir()}
    finally:
        reader.close()
    assert set(owners) == {"calls.sqlite3", "calls.sqlite3-wal", "calls.sqlite3-shm"}
    assert set(owners.values()) == {(65534, 65534)}


# -- migration from calls.json -----------------------------------------------------------------

OFFSETS = [dt.timedelta(hours=h) for h in (0, 1, -5, 5.5, 9, -3.5, 13)]


def legacy_calls(count: int, seed: int = 13) -> list[dict[str, Any]]:
    """CallRecord JSON as today's log holds it: varied offsets, so text order != time order."""
    rng = random.Random(seed)
    base = NOW - dt.timedelta(days=300)
    out = []
    for i in range(count):
        start = (base + dt.timedelta(minutes=7 * i + rng.randint(0, 400))).astimezone(
            dt.timezone(rng.choice(OFFSETS))
        )
        answered = rng.choice([True, False, None])
        out.append(
            CallRecord(
                call_id=i + 1,
                started=start,
                ended=start + dt.timedelta(seconds=rng.randint(5, 900)),
                number=rng.choice([None, f"+44113496{i % 9000:04d}", f"+4477009{i % 90000:05d}"]),
                display=rng.choice([None, "0113 496 0000", "Withheld"]),
                category=rng.choice(list(Category)),
                name=rng.choice([None, "Sue (daughter)", "Café 李 😀", "\u202eKNAB RUOY\u202c"]),
                verdict=rng.choice([*Action, None]),
                rule=rng.choice([None, "allow", "block", "unknown"]),
                reason=rng.choice(["Allowed: on the allow list.", "Blocked.", "Warned: unknown."]),
                answered=answered,
                duration_s=float(rng.randint(1, 900)) if answered else None,
                rings=rng.randint(0, 9),
                caller_id=rng.random() < 0.9,
                impersonation=rng.random() < 0.05,
                grooming_alert=rng.random() < 0.01,
                name_claim=rng.random() < 0.05,
                notes=tuple(rng.choice([[], ["caller ID after the first ring"]])),
            ).to_json()
        )
    return out


def write_legacy(state: Path, calls: list[dict[str, Any]]) -> Path:
    """calls.json exactly as TinyDB on AtomicJSONStorage writes it."""
    state.mkdir(parents=True, exist_ok=True)
    path = state / "calls.json"
    table = {str(i): call for i, call in enumerate(calls, 1)}
    path.write_bytes(
        (json.dumps({"calls": table}, ensure_ascii=False, separators=(",", ":")) + "\n").encode()
    )
    return path


def in_time_order(calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    order = sorted(
        range(len(calls)), key=lambda i: (dt.datetime.fromisoformat(calls[i]["started"]), i)
    )
    return [calls[i] for i in order]


def as_texts(calls: list[dict[str, Any]]) -> collections.Counter[str]:
    return collections.Counter(json.dumps(c, ensure_ascii=False) for c in calls)


def not_writable(monkeypatch: pytest.MonkeyPatch, folder: Path) -> None:
    real = os.access

    def access(path: Any, mode: int, **kwargs: Any) -> bool:
        if mode & os.W_OK and os.path.abspath(path) == os.path.abspath(folder):
            return False
        return real(path, mode, **kwargs)

    monkeypatch.setattr(os, "access", access)


def test_thirty_thousand_calls_migrate_whole_and_log_json_is_unchanged(
    state: Path, cfg: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = legacy_calls(30_000)
    legacy = write_legacy(state, calls)
    original = legacy.read_bytes()
    text_sorted = sorted(calls, key=lambda c: c["started"])
    assert ids(in_time_order(calls)) != ids(text_sorted)  # the offsets do make a difference

    with monkeypatch.context() as m:  # a read-only folder: read as it is, migrate nothing
        not_writable(m, state)
        code, before, _ = cli(cfg, capsys, "log", "--json")
        assert code == 0
        _, before_20, _ = cli(cfg, capsys, "log", "--json", "--limit", "20")
        assert names(state) == ["calls.json"]

    code, during, err = cli(cfg, capsys, "log", "--json")  # the first read that may migrate
    assert code == 0
    (note,) = err.splitlines()  # said once, on stderr; stdout is unchanged
    assert "INFO" in note and "30000 calls copied" in note and "calls.json.migrated" in note
    assert [n for n in names(state) if not n.endswith(("-wal", "-shm"))] == [
        "calls.json.lock",
        "calls.json.migrated",
        "calls.sqlite3",
    ]
    assert (state / "calls.json.migrated").read_bytes() == original  # kept, untouched
    _, after, _ = cli(cfg, capsys, "log", "--json")
    _, after_20, _ = cli(cfg, capsys, "log", "--json", "--limit", "20")

    assert before == during == after and before_20 == after_20
    shown = json.loads(after)
    assert shown == in_time_order(calls)
    assert as_texts(shown) == as_texts(calls)  # all 30,000, each identical
    assert json.loads(after_20) == in_time_order(calls)[-20:]


def test_the_first_append_migrates_and_the_old_calls_come_first(state: Path, clock: Clock) -> None:
    calls = legacy_calls(50)
    write_legacy(state, calls)
    log = CallLog(state, clock=clock)
    log.append(record(999, NOW.isoformat()))
    assert log.read() == [*in_time_order(calls), record(999, NOW.isoformat())]
    assert not (state / "calls.json").exists() and (state / "calls.json.migrated").exists()


def test_a_migration_is_one_transaction_all_or_nothing(
    state: Path, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = legacy_calls(100)
    legacy = write_legacy(state, calls)
    original = legacy.read_bytes()
    real_row = calllog_module._row

    def row(call: Any, where: Path) -> Any:
        out = real_row(call, where)
        return (*out[:3], None) if call.get("call_id") == 60 else out  # NOT NULL refuses it

    monkeypatch.setattr(calllog_module, "_row", row)
    with pytest.raises(StoreError):
        CallLog(state, clock=clock).append(record(999, NOW.isoformat()))
    monkeypatch.undo()
    assert legacy.read_bytes() == original
    check = sqlite3.connect(state / "calls.sqlite3")
    try:
        assert check.execute("SELECT count(*) FROM calls").fetchone() == (0,)
    finally:
        check.close()
    log = CallLog(state, clock=clock)
    log.append(record(999, NOW.isoformat()))
    assert len(log.read()) == 101


def test_an_interrupted_migration_and_a_calls_json_written_again_add_no_duplicates(
    state: Path, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = legacy_calls(40)
    calls.append(dict(calls[-1]))  # the same record twice in the old file: both kept
    write_legacy(state, calls)
    real_rename = os.rename

    def rename(src: Any, dst: Any) -> None:
        if str(src).endswith("calls.json"):
            raise OSError(28, "No space left on device")
        real_rename(src, dst)

    monkeypatch.setattr(os, "rename", rename)
    with pytest.raises(StoreError, match="SD card is full"):  # committed, not renamed
        CallLog(state, clock=clock).append(record(999, NOW.isoformat()))
    monkeypatch.undo()
    log = CallLog(state, clock=clock)
    assert as_texts(log.read()) == as_texts(calls)  # read: finishes the rename, no duplicate
    assert (state / "calls.json.migrated").exists() and not (state / "calls.json").exists()

    # an old daemon still running through the upgrade writes calls.json again
    newer = [*calls, record(41, NOW.isoformat())]
    write_legacy(state, newer)
    log.append(record(1000, NOW.isoformat()))
    assert as_texts(log.read()) == as_texts([*newer, record(1000, NOW.isoformat())])
    assert (state / "calls.json.migrated-1").exists() and not (state / "calls.json").exists()


def test_a_damaged_calls_json_is_migrated_from_its_backup(state: Path, clock: Clock) -> None:
    calls = legacy_calls(20)
    write_legacy(state, calls[:19])
    (state / "calls.json").rename(state / "calls.json.bak")
    write_legacy(state, calls)
    (state / "calls.json").write_bytes((state / "calls.json").read_bytes()[:-300])  # cut short
    recoveries: list[Recovery] = []
    log = CallLog(state, clock=clock, on_recovery=recoveries.append)
    assert log.read() == in_time_order(calls[:19])
    assert len(recoveries) == 1 and "ends too early" in recoveries[0].reason
    assert [p for p in state.iterdir() if p.name.startswith("calls.json.corrupt-")]


def test_a_symlinked_calls_json_is_refused(state: Path, tmp_path: Path) -> None:
    target = tmp_path / "secret.json"
    target.write_text(json.dumps({"calls": {"1": {"number": "ROOT SECRET"}}}))
    state.mkdir()
    (state / "calls.json").symlink_to(target)
    with pytest.raises(StoreError, match="symbolic link"):
        CallLog(state).append(record(1, NOW.isoformat()))
    assert (state / "calls.json").is_symlink()


# -- a real read-only card, and a full one --------------------------------------------------


def _namespace_prefix() -> list[str] | None:
    unshare = shutil.which("unshare")
    if unshare is None:
        return None
    prefix = [unshare, "-m"] if ROOT else [unshare, "-rm"]
    probe = subprocess.run([*prefix, "true"], capture_output=True, timeout=30)
    return prefix if probe.returncode == 0 else None


def _in_namespace(setup: str, script: str, *args: str) -> dict[str, Any]:
    """``setup`` (sh), then ``script`` (Python printing one JSON line), in a private mount
    namespace; skipped where this machine cannot."""
    prefix = _namespace_prefix()
    if prefix is None:
        pytest.skip("no private mount namespace here (unshare -m / -rm)")
    root = str(Path(callguard.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": root}
    shell = f'{setup} || exit 77; python="$0"; code="$1"; shift; exec "$python" -c "$code" "$@"'
    done = subprocess.run(
        [*prefix, "sh", "-c", shell, sys.executable, textwrap.dedent(script), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    if done.returncode == 77:
        pytest.skip(f"cannot mount here: {done.stderr.strip()}")
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


READ_ONLY_SCRIPT = """
import json, logging, os, sys
from callguard.errors import CallGuardError
from callguard.store.calllog import CallLog
logging.basicConfig(level=logging.WARNING)
state = sys.argv[1]
before = sorted(os.listdir(state))
log = CallLog(state)
out = {"ids": [c["call_id"] for c in log.read()], "newest": [c["call_id"] for c in log.read(2)]}
try:
    log.append({"call_id": 99, "started": "2026-10-25T12:00:00+00:00"})
    out["append"] = "written"
except CallGuardError as exc:
    out["append"] = str(exc)
out["created"] = sorted(set(os.listdir(state)) - set(before))
print(json.dumps(out))
"""

_MAKE_STATE = """
import os, signal, sqlite3, sys
from pathlib import Path
from callguard.store import calllog
state, how = sys.argv[1], sys.argv[2]
log = calllog.CallLog(state, keep_open=True)
for i in range(5):
    log.append({"call_id": i, "started": f"2026-10-25T01:{10 + i}:00+0{i % 2}:00"})
log.close()  # a daemon stopped: its calls are in the database file
if how == "closed":
    sys.exit(0)
# a writer killed with two more calls committed to the WAL, not yet checkpointed
db = sqlite3.connect(log.path, isolation_level=None)
for i in (5, 6):
    row = calllog._row({"call_id": i, "started": f"2026-10-25T02:0{i}:00+00:00"}, log.path)
    db.execute(calllog._INSERT, row)
if how == "no-shm":
    os.unlink(os.path.join(state, "calls.sqlite3-shm"))
os.kill(os.getpid(), signal.SIGKILL)
"""


def _read_only(state: Path) -> str:
    return f"mount --bind {state} {state} && mount -o remount,ro,bind {state}"


@pytest.mark.parametrize("how", ["closed", "crashed", "no-shm", "calls.json"])
def test_a_read_only_card_shows_the_log_and_refuses_the_append_in_words(
    state: Path, how: str
) -> None:
    if how == "calls.json":
        calls = legacy_calls(5)
        write_legacy(state, calls)
        expected = ids(in_time_order(calls))
    else:
        state.mkdir()
        root = str(Path(callguard.__file__).resolve().parents[1])
        env = {**os.environ, "PYTHONPATH": root}
        subprocess.run([sys.executable, "-c", _MAKE_STATE, str(state), how], env=env, timeout=60)
        expected = [1, 3, 0, 2, 4]  # 01:1x+01:00 before 01:1x+00:00
        if how == "crashed":
            expected += [5, 6]  # read from the WAL through its index, read-only
        assert "calls.sqlite3-wal" in names(state) or how == "closed"
    out = _in_namespace(_read_only(state), READ_ONLY_SCRIPT, str(state))
    assert out["created"] == []
    assert "read-only" in out["append"] and "sudo dmesg" in out["append"]
    # with no -shm a WAL cannot be read in a read-only folder: what is in the file is shown
    assert out["ids"] == expected and out["newest"] == expected[-2:]


FULL_SCRIPT = """
import json, sqlite3, sys
from callguard.errors import CallGuardError
from callguard.store.calllog import CallLog
state = sys.argv[1]
log = CallLog(state, keep_open=True)
acked, message = [], ""
for i in range(100000):
    try:
        log.append({"call_id": i, "started": "2026-10-25T12:00:00+00:00", "pad": "x" * 2000})
    except CallGuardError as exc:
        message = str(exc)
        break
    acked.append(i)
again = ""
try:
    log.append({"call_id": -1, "started": "2026-10-25T12:00:00+00:00", "pad": "x" * 2000})
except CallGuardError as exc:
    again = str(exc)
kept = [c["call_id"] for c in CallLog(state).read()]
db = sqlite3.connect(state + "/calls.sqlite3")
print(json.dumps({"acked": acked, "kept": kept, "message": message, "again": again,
                  "check": db.execute("PRAGMA integrity_check").fetchone()[0]}))
"""


def test_a_full_card_refuses_the_append_in_words_and_loses_nothing_saved(state: Path) -> None:
    state.mkdir()
    out = _in_namespace(f"mount -t tmpfs -o size=256k tmpfs {state}", FULL_SCRIPT, str(state))
    assert out["acked"], "not even one call fitted"
    assert "SD card is full" in out["message"] and "df -h" in out["message"]
    assert "SD card is full" in out["again"]  # the next try says the same, no crash
    assert out["kept"][: len(out["acked"])] == out["acked"] and -1 not in out["kept"]
    assert out["check"] == "ok"


# -- the facade the daemon and the CLI use ---------------------------------------------------


def test_the_store_delegates_and_log_keeps_its_output(
    state: Path, cfg: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = Store(state)
    first = record(1, "2026-10-25T01:30:00+01:00", display="0113 496 0000", verdict="allowed")
    first.update(reason="On the allow list.", answered=True, duration_s=120.0, name="Sue")
    second = record(2, "2026-10-25T01:10:00+00:00", verdict="blocked", reason="Blocked.")
    store.append_call(first)
    store.append_call(second)
    assert store.calls() == [first, second] and store.calls(limit=1) == [second]
    assert store.log.read_by_number("+441134960000") == [first, second]
    code, out, _ = cli(cfg, capsys, "log")
    assert code == 0
    assert out.splitlines() == [
        "2026-10-25 01:30  0113 496 0000 (Sue): allowed. On the allow list. answered, 2 min",
        "2026-10-25 01:10  +441134960000: blocked. Blocked.",
    ]
    code, out, _ = cli(cfg, capsys, "log", "--json", "--limit", "2")
    assert json.loads(out) == [first, second]
