"""The call log: every call, one row each, in SQLite (``calls.sqlite3``), kept for
``storage.log_retention_days``.

Theory of operation
-------------------
The log was a TinyDB file rewritten whole (and fsynced) on every call: 21.5 MB written per call
with 50,000 calls logged. It is now a table in ``calls.sqlite3`` (Python's own ``sqlite3``),
and a call costs one small append-only transaction: one row holding the record's JSON exactly as
given, plus the columns the reads need and their indexes:

- ``started_utc``, the call's start as seconds since the epoch (the TRUE instant: ISO strings
  with different offsets do not sort in time order; after the autumn clock change a call at
  01:30+01:00 came before one at 01:10+00:00), and ``id``, the insertion order, which breaks
  ties. Every read is ordered by ``(started_utc, id)``: oldest first; with a limit, the newest.
  ``calls_by_time`` serves the whole log and a day (a local date is within a day either side
  of the same UTC date, so a day reads that range of the index and keeps the rows whose
  ``day``, the local date as the record gives it, matches); ``calls_by_number`` a caller's
  calls. (Version 1 had a ``calls_by_day`` index too, one more page written per call; it is
  dropped when the log is first written.)

**Bytes per call.** An append writes the pages it changes to the WAL: the table's rightmost
leaf, a leaf of each index, now and then a parent and the header. A new database has 1 KiB
pages (:data:`PAGE_SIZE`; a record of about 400 bytes fills a good part of one), a quarter of
SQLite's default, so those frames are a quarter the size; a database made by an earlier version
keeps its 4 KiB pages (the size cannot change in WAL mode without a VACUUM). Measured on ext4
(``/proc/self/io``, 300 appends to a log of 50,000 calls): back to back, a median of 8 KiB per
append and a mean of 14 kB with the checkpoints, against 100 KiB and 116 kB when each append
opened and closed the database (see Connections); with the page cache written back between
appends (calls minutes apart) a mean of 42 kB against 108 kB, most of it the ``-shm`` pages each
commit changes (the WAL's index, a file the kernel writes back like any other).

**Connections.** The daemon's log (``keep_open=True``) keeps one connection for its appends,
opened when the daemon starts (:meth:`CallLog.open`, on its writer thread, so the database's
files are there before the lists are read and the storage folder does not change at the first
call) or else by the first append: opening and closing a connection
per append made the close checkpoint the WAL into the database every time, which wrote each
changed page twice and cost three fsyncs. With the connection kept, the WAL is checkpointed
every :data:`WAL_AUTOCHECKPOINT_PAGES` pages (about a hundred calls; each page the calls
changed is then written once to the database for all of them) and when :meth:`CallLog.close`
closes the connection (the daemon's writer calls it when it stops): the last connection to
close checkpoints the WAL and removes the ``-wal`` and ``-shm`` files, so a stopped daemon
leaves the log as one whole file. While it runs the newest calls are in the ``-wal`` file,
which readers see through ``-shm`` (see Reading). Any other log (``keep_open=False``, the
default: the CLI, tools, tests) closes its connection after each append, as before, and leaves
one whole file. The connection is used under a lock, so appends from several threads take
turns on it (``check_same_thread`` is off).
Before each append the database's file is checked: a connection whose file was moved, deleted or
replaced (or one a forked child inherited) is not used, a new one is opened, and the old
connection's WAL, which SQLite would otherwise apply to the new file, is kept aside as
``calls.sqlite3.orphaned-<UTC time>-wal`` (said in the log). After an error the connection is
closed and the next append opens a new one (the daemon retries).

**Durability.** The database is in WAL mode, so readers (the CLI, the family page) read while
an append is under way and never block it, and ``synchronous=FULL``: the commit fsyncs the WAL
before ``append`` returns, which is when the daemon drops the record from memory. ``NORMAL``
would not: in WAL mode it syncs only at a checkpoint, and with the connection kept open that is
about a hundred calls later, so a power cut would lose calls the daemon believed saved (the
database itself survives either way: recovery keeps the committed prefix of the WAL, whose frames
are checksummed). FULL costs one fsync per append.

**Retention** is a ``DELETE ... WHERE started_utc < cutoff`` in the transaction of an append, at
most once an hour (by the injected clock), not per insert. Calls with no readable start time
are kept (the old log deleted them at the next call).

**Reading needs no write access** (a card remounted read-only must still show the log) and
creates nothing. If the database is missing the log is empty (nothing is created). With no
``-wal`` file beside it the database is whole (the daemon is stopped, see Connections); it is
read with ``immutable=1`` (no lock, no ``-wal`` or ``-shm`` created), and the read is kept only
if no ``-wal`` appeared meanwhile and the file is unchanged (else it is read again the normal
way). With a ``-wal`` file (the daemon running, or killed) the database is opened ``mode=ro``,
which reads the WAL through its ``-shm`` index (read-only if need be). If ``-shm`` is missing
too and the folder cannot be written, the read falls back to ``immutable=1``, which cannot see
the calls still in the WAL (those since the last checkpoint), and says so in the log.

**Migration.** An upgraded unit's ``calls.json`` (TinyDB: ``{"calls": {"1": {...}, ...}}``) is
migrated the first time the log is opened for writing (the first append, or the first read
when the folder can be written), in one transaction, holding ``calls.json.lock`` (the lock
every earlier version took to write it); it is read through
:class:`~callguard.store.jsonfile.AtomicJSONStorage`, which recovers a damaged file from its
``.bak``. Then ``calls.json`` is renamed ``calls.json.migrated`` (kept, not deleted). Records
already in the database are not inserted twice (compared by their JSON text, counted), so a
migration interrupted between its commit and its rename, or a ``calls.json`` written again by
a daemon of the old version still running during the upgrade, is finished without
duplicates. On a read-only folder the log is read from ``calls.json`` and the database together.

**Damage.** A database SQLite calls corrupt or "not a database" (a truncated file, a file
that is not SQLite) when the daemon appends is moved aside as
``calls.sqlite3.corrupt-<UTC time>`` (with its ``-wal``), a new one is started, the call is
written to it, and the event is logged loudly and passed to ``on_recovery``. Only an append
does that (only the daemon appends): a reader (another process, while the daemon may have the
file open) never moves it, it raises :class:`~callguard.store.files.StoreError` saying so.
While the daemon runs, SQLite reads the pages the WAL holds from the WAL, so damage to the
file under them shows at the next checkpoint or start.

**Errors.** A failed append raises :class:`~callguard.store.files.StoreError` (a
CallGuardError) with the words of :func:`~callguard.store.files.os_error_advice` for a full,
read-only or refused card, so the daemon keeps the record in memory and tries again later.

**Links.** ``sudo callguard log`` runs as root in the service's folder: the database, its
``-wal``, ``-shm`` and ``-journal`` files are refused if they are symbolic links or anything
but ordinary files (SQLite would follow a link, and create its ``-wal`` beside the target). A
database created by root goes to the folder's owner, and SQLite gives the ``-wal`` and
``-shm`` files it creates as root to the database's owner.
"""

from __future__ import annotations

import collections
import contextlib
import datetime as dt
import errno
import json
import logging
import os
import sqlite3
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from callguard.store.files import fsync_dir, lexists, os_error_advice, sibling, stat_or_none
from callguard.store.folder import Clock, StoreFolder, now_local
from callguard.store.jsonfile import AtomicJSONStorage, Recovery
from callguard.store.lock import locked
from callguard.store.sqlitedb import (
    DAMAGED_CODES,
    Damaged,
    DatabaseFile,
    SQLiteError,
    connect,
    exc_code,
    uri,
    use_wal,
)
from callguard.store.sqlitedb import transaction as _transaction

log = logging.getLogger(__name__)

DB_NAME: Final = "calls.sqlite3"
LEGACY_NAME: Final = "calls.json"
MIGRATED_SUFFIX: Final = ".migrated"
SCHEMA_VERSION: Final = 2
PRUNE_EVERY: Final = dt.timedelta(hours=1)
SYNCHRONOUS: Final = "FULL"
"""Every commit is fsynced (see the module docstring: why FULL, and what NORMAL would risk)."""
BUSY_TIMEOUT_S: Final = 10.0
"""How long a reader or the writer waits for another's lock (a migration, a WAL recovery)."""
PAGE_SIZE: Final = 1024
"""The page size of a new database (an existing one keeps its own): see Bytes per call."""
WAL_AUTOCHECKPOINT_PAGES: Final = 500
"""Checkpoint when the WAL holds this many pages (about a hundred calls at 1 KiB pages)."""

_SCHEMA: Final = (
    """CREATE TABLE IF NOT EXISTS calls (
        id INTEGER PRIMARY KEY,
        started_utc REAL,
        number TEXT,
        day TEXT,
        record TEXT NOT NULL
    )""",
    # An index ends with the rowid (id), so each serves ORDER BY started_utc, id without a sort.
    "CREATE INDEX IF NOT EXISTS calls_by_time ON calls (started_utc)",
    "CREATE INDEX IF NOT EXISTS calls_by_number ON calls (number, started_utc)",
    "DROP INDEX IF EXISTS calls_by_day",  # version 1's; a day is a range of calls_by_time
    f"PRAGMA user_version = {SCHEMA_VERSION}",
)
_INSERT: Final = "INSERT INTO calls (started_utc, number, day, record) VALUES (?, ?, ?, ?)"
_CANNOT_WRITE: Final = (errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOSPC, errno.EDQUOT)

Row = tuple[float | None, str | None, str | None, str]
"""One call as stored: started_utc, number, day, the record's JSON."""
Found = tuple[float | None, int, str]
"""One call as read: started_utc, its order among equal instants, the record's JSON."""


class CallLogError(SQLiteError):
    """The call log could not be written (or read); ``os_errno`` says why where it is known."""


@dataclass(frozen=True)
class CallLogRecovery(Recovery):
    """The call log's database was damaged: moved aside (``moved_to``), a new one started."""

    def message(self) -> str:
        return (
            f"CallGuard's call log {self.path} was damaged ({self.reason}); it has been kept as "
            f"{self.moved_to} and a new, empty call log has been started, so `callguard log` "
            "no longer shows the calls before this. The lists, the alert and screening are not "
            f"affected. The old calls may still be readable with `sqlite3 {self.moved_to} "
            ".recover`; delete it once you are satisfied."
        )


class CallLog(StoreFolder):
    """``calls.sqlite3`` in the store's folder; see the module docstring. Safe to share
    between threads (appends from one process take turns on one connection). With
    ``keep_open``, :meth:`close` it when done appending."""

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        retention_days: int = 365,
        clock: Clock = now_local,
        on_recovery: Callable[[Recovery], None] | None = None,
        keep_open: bool = False,
    ) -> None:
        super().__init__(directory, clock=clock, on_recovery=on_recovery)
        self.retention_days = retention_days
        self.keep_open = keep_open
        """Keep the appends' connection open between appends, until :meth:`close` (the
        daemon's log: see Connections); else close it after each append."""
        self.path = self.dir / DB_NAME
        self._sqlite = DatabaseFile(self.path, "call log", CallLogError)
        self.calls_path = self.dir / LEGACY_NAME
        """The TinyDB log of earlier versions, migrated into :attr:`path` when found."""
        self._lock = threading.Lock()
        self._pruned_at: dt.datetime | None = None
        self._conn: sqlite3.Connection | None = None
        """The appends' connection (see Connections), used and changed only under the lock."""
        self._conn_file: tuple[int, int] | None = None
        """(st_dev, st_ino) of the database file :attr:`_conn` opened."""
        self._conn_pid = 0
        self._wal_file: tuple[int, int] | None = None
        """(st_dev, st_ino) of the WAL the last append wrote to."""
        self._inherited: list[sqlite3.Connection] = []
        """A parent's connections a forked child found: kept, never used or closed."""

    # -- writing -------------------------------------------------------------------------

    def append(self, call: dict[str, Any]) -> None:
        """Add one call to the log and, at most once an hour, drop the calls older than the
        retention period. Returns once the call is on the card; raises
        :class:`CallLogError` (a CallGuardError) if it could not be written."""
        row = _row(call, self.path)  # nothing is touched if the record cannot be stored
        with self._lock:
            try:
                self._insert_or_start_anew(row)
            finally:
                if not self.keep_open:
                    self._close_connection()

    def _insert_or_start_anew(self, row: Row) -> None:
        try:
            self._insert(row)
        except Damaged as damage:
            self._close_connection()
            self._start_anew(damage.reason)
            try:
                self._insert(row)
            except Damaged as again:
                self._close_connection()
                raise CallLogError(
                    f"{self.path}: the new call log is damaged at once ({again.reason}); "
                    "the SD card may be failing: run `sudo dmesg` and replace the card if "
                    "it reports errors",
                    errno.EIO,
                ) from None

    def open(self) -> None:
        """Open the appends' connection now, when the log keeps it open (see Connections),
        migrating ``calls.json`` if one is there. A problem is left to the first append, which
        recovers from it (a damaged database started anew) or reports it."""
        if not self.keep_open:
            return
        with self._lock:
            try:
                self._connection()
            except (Damaged, CallLogError) as exc:
                self._close_connection()
                log.warning("the call log is not open yet (the first call tries again): %s", exc)

    def close(self) -> None:
        """Close the appends' connection, if open: as the last one it checkpoints the WAL and
        removes the ``-wal`` and ``-shm`` files. The next append opens a new one."""
        with self._lock:
            self._close_connection()

    def _insert(self, row: Row) -> None:
        now = self.clock()
        prune = self._pruned_at is None or abs(now - self._pruned_at) >= PRUNE_EVERY
        conn = self._connection()
        try:
            with _transaction(conn):
                conn.execute(_INSERT, row)
                if prune:
                    cutoff = (now - dt.timedelta(days=self.retention_days)).timestamp()
                    conn.execute("DELETE FROM calls WHERE started_utc < ?", (cutoff,))
        except sqlite3.Error as exc:
            self._close_connection()  # the next append starts afresh
            raise self._failure(exc, "cannot write the call log") from None
        self._wal_file = _identity(sibling(self.path, "-wal"))
        if prune:
            self._pruned_at = now

    def _connection(self) -> sqlite3.Connection:
        """The appends' connection, opened if there is none or its file is no longer the
        database (see Connections), with ``calls.json`` migrated if one is there. Called with
        the lock held. Raises :class:`Damaged` or :class:`CallLogError`."""
        if self._conn_pid != os.getpid():
            self._close_connection()  # a forked child's copy of its parent's is not used
        conn = self._conn
        if conn is not None:
            try:
                self._sqlite.refuse_links()
            except CallLogError:
                self._close_connection()
                raise
            if _identity(self.path) != self._conn_file:
                self._let_go_of_a_moved_database()
                conn = None
        if conn is None:
            conn = self._open_for_writing()
            self._conn, self._conn_file = conn, _identity(self.path)
            self._conn_pid = os.getpid()
        elif lexists(self.calls_path):  # written again by an old daemon during the upgrade
            try:
                self._migrate(conn)
            except sqlite3.Error as exc:
                self._close_connection()
                raise self._failure(exc, "cannot write the call log") from None
        return conn

    def _let_go_of_a_moved_database(self) -> None:
        """The database file was moved, deleted or replaced under the connection. SQLite
        does not checkpoint into such a file, and the WAL it leaves under the old name would
        be applied to whatever database is there next: close the connection and keep that
        WAL (the calls since the last checkpoint) aside, under a name SQLite pairs with no
        database."""
        wal, shm = sibling(self.path, "-wal"), sibling(self.path, "-shm")
        ours = self._wal_file is not None and _identity(wal) == self._wal_file
        self._close_connection()
        if not ours or not lexists(wal):
            return
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
        kept = sibling(self.path, f".orphaned-{stamp}-wal")
        try:
            os.rename(wal, kept)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(shm)  # that WAL's index
            fsync_dir(self.dir)
        except OSError as exc:
            raise self._sqlite.os_failure(wal, exc) from None
        log.error(
            "%s was moved, deleted or replaced while the daemon was writing to it; a new log "
            "is used from now on. The calls of the old one not yet written into its file are "
            "in %s (to see them, put it beside that file, named as the file with -wal after "
            "it, and open it with sqlite3)",
            self.path,
            kept,
        )

    def _close_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        if self._conn_pid != os.getpid():
            self._inherited.append(conn)  # a parent's: closing it here could disturb it
            return
        with contextlib.suppress(sqlite3.Error):
            conn.close()  # the last connection checkpoints the WAL and removes it

    def _open_for_writing(self) -> sqlite3.Connection:
        """A new connection for changes: the database created if need be (with
        :data:`PAGE_SIZE` pages), the schema in place, ``calls.json`` migrated. Raises
        :class:`Damaged` or :class:`CallLogError`."""
        return self._sqlite.open_for_writing(_connect, self._failure, self._set_up)

    def _set_up(self, conn: sqlite3.Connection) -> None:
        conn.execute(f"PRAGMA page_size = {PAGE_SIZE}")  # only a new database takes it
        use_wal(conn, self.path, SYNCHRONOUS, log)
        conn.execute(f"PRAGMA wal_autocheckpoint = {WAL_AUTOCHECKPOINT_PAGES}")
        if conn.execute("PRAGMA user_version").fetchone()[0] < SCHEMA_VERSION:
            # secure_delete (on in Debian's SQLite) would zero every page of the index
            # version 1 had: 21 MB written with 50,000 calls, against 0.1 MB without
            secure = conn.execute("PRAGMA secure_delete").fetchone()[0]
            conn.execute("PRAGMA secure_delete = OFF")
            with _transaction(conn):
                for statement in _SCHEMA:
                    conn.execute(statement)
            conn.execute(f"PRAGMA secure_delete = {int(secure)}")
        if lexists(self.calls_path):
            self._migrate(conn)

    def _start_anew(self, reason: str) -> None:
        """Move the damaged database (and its WAL) aside and report it loudly."""
        moved_to = self._sqlite.move_aside(reason)
        recovery = CallLogRecovery(
            path=self.path, moved_to=moved_to, restored_from=None, reason=reason
        )
        recovery.report(self.on_recovery, log)

    # -- migrating calls.json ----------------------------------------------------------------

    def _migrate(self, conn: sqlite3.Connection) -> None:
        """Copy ``calls.json`` into the database in one transaction, then rename it
        ``calls.json.migrated``, holding the lock earlier versions took to write it."""
        with locked(self.calls_path):
            if not lexists(self.calls_path):
                return  # another process has just done it
            legacy = self._legacy_rows()
            with _transaction(conn):
                present = collections.Counter(
                    text for (text,) in conn.execute("SELECT record FROM calls")
                )
                new = _not_in(legacy, present)
                conn.executemany(_INSERT, new)
            target = sibling(self.calls_path, MIGRATED_SUFFIX)
            n = 1
            while lexists(target):
                target = sibling(self.calls_path, f"{MIGRATED_SUFFIX}-{n}")
                n += 1
            try:
                os.rename(self.calls_path, target)
                fsync_dir(self.dir)
            except OSError as exc:
                raise CallLogError(
                    f"{self.calls_path}: its calls are now in {self.path}, but it could not "
                    f"be renamed {target.name}: {os_error_advice(exc)}",
                    exc.errno,
                ) from None
        log.info(
            "the call log is now %s: %d calls copied from %s (%d were there already), "
            "which is kept as %s",
            self.path,
            len(new),
            self.calls_path,
            len(legacy) - len(new),
            target.name,
        )

    def _legacy_rows(self) -> list[Row]:
        """The calls of ``calls.json`` in its order (recovered from its backup if need be)."""
        tables = AtomicJSONStorage(self.calls_path, on_recovery=self.on_recovery).read() or {}
        table = tables.get("calls", {})
        ids = sorted(table, key=lambda k: (0, int(k), "") if k.isdigit() else (1, 0, k))
        return [_row(dict(table[i]), self.calls_path) for i in ids if isinstance(table[i], Mapping)]

    def _migrate_or_read_legacy(self) -> list[Row]:
        """Migrate ``calls.json`` if the folder can be written (then []), else its calls."""
        if os.access(self.dir, os.W_OK):
            try:
                with self._lock:
                    held = self._conn is not None
                    self._connection()
                    if not held:
                        self._close_connection()  # a reader keeps no connection
                return []
            except Damaged as damage:
                raise _damaged_for_reader(self.path, damage.reason) from None
            except CallLogError as exc:
                if exc.os_errno not in _CANNOT_WRITE:
                    raise
                log.warning("%s cannot be migrated yet (%s); reading it", self.calls_path, exc)
        return self._legacy_rows()

    # -- reading -------------------------------------------------------------------------

    def read(self, limit: int | None = None) -> list[dict[str, Any]]:
        """The call log, oldest first; with ``limit``, the newest ``limit`` calls."""
        return self._query(None, None, limit)

    def read_by_number(self, number: str, limit: int | None = None) -> list[dict[str, Any]]:
        """The calls from ``number``, oldest first; with ``limit``, the newest ``limit``."""
        return self._query("number", number, limit)

    def read_day(self, day: dt.date) -> list[dict[str, Any]]:
        """The calls of one local day (the date ``started`` gives), oldest first."""
        return self._query("day", day.isoformat(), None)

    def read_after(self, row_id: int, limit: int = 500) -> list[tuple[int, dict[str, Any]]]:
        """Calls logged after the row ``row_id`` (in the order they were logged), each with its
        row id: how ``callguard link`` follows the log. ``read_after(-1, 1)`` and the last
        row's id is :meth:`last_row_id`."""
        found = self._fetch(
            "SELECT started_utc, id, record FROM calls WHERE id > ? ORDER BY id LIMIT ?",
            (row_id, limit),
        )
        return [(i, json.loads(text)) for _, i, text in found]

    def last_row_id(self) -> int:
        """The newest row's id (0 for an empty or missing log)."""
        found = self._fetch("SELECT NULL, COALESCE(MAX(id), 0), '' FROM calls", ())
        return int(found[0][1] or 0) if found else 0

    def _query(
        self, column: str | None, value: str | None, limit: int | None
    ) -> list[dict[str, Any]]:
        legacy = self._migrate_or_read_legacy() if lexists(self.calls_path) else []
        where, params = _where(column, value)
        if limit and not legacy:  # with calls.json read too, all are merged, then cut
            order = "ORDER BY started_utc DESC, id DESC LIMIT ?"
            params += (limit,)
        else:
            order = "ORDER BY started_utc, id"
        found = self._fetch(f"SELECT started_utc, id, record FROM calls {where} {order}", params)
        if legacy:
            index = {"number": 1, "day": 2}.get(column or "")
            wanted = [r for r in legacy if index is None or r[index] == value]
            extra = _not_in(wanted, collections.Counter(text for _, _, text in found))
            top = max((i for _, i, _ in found), default=0)
            found += [(r[0], top + n, r[3]) for n, r in enumerate(extra, 1)]
            found.sort(key=lambda f: (f[0] is not None, f[0] or 0.0, f[1]))  # SQL's order
            found = found[-limit:] if limit else found
        elif limit:
            found.reverse()  # the newest, read newest first
        return [json.loads(text) for _, _, text in found]

    def _fetch(self, sql: str, params: tuple[Any, ...]) -> list[Found]:
        """Run a query read-only; [] (and nothing created) if there is no database."""
        if not lexists(self.path):
            return []
        self._sqlite.refuse_links()
        wal = sibling(self.path, "-wal")
        try:
            for _ in range(3):
                if lexists(wal):
                    break
                before = stat_or_none(self.path)
                found = _run(uri(self.path, "immutable=1"), sql, params)
                if not lexists(wal) and _same(before, stat_or_none(self.path)):
                    return found
            return self._fetch_wal(sql, params)
        except sqlite3.Error as exc:
            if "no such table" in str(exc):
                return []  # an empty database file: being created, or created and left
            failure = self._failure(exc, "cannot read the call log")
            if isinstance(failure, Damaged):
                raise _damaged_for_reader(self.path, failure.reason) from None
            raise failure from None

    def _fetch_wal(self, sql: str, params: tuple[Any, ...]) -> list[Found]:
        try:
            return _run(uri(self.path, "mode=ro"), sql, params)
        except sqlite3.OperationalError as exc:
            if exc_code(exc) in DAMAGED_CODES or os.access(self.dir, os.W_OK):
                raise
            # A WAL reader needs the -shm index, and it cannot be made in a read-only folder.
            log.warning(
                "%s: cannot read the newest calls (%s; the folder is read-only): showing "
                "those saved before the last checkpoint",
                self.path,
                exc,
            )
        return _run(uri(self.path, "immutable=1"), sql, params)

    # -- helpers -------------------------------------------------------------------------

    def _failure(self, exc: sqlite3.Error, what: str) -> Damaged | CallLogError:
        """A SQLite error as :class:`Damaged`, or in the words of :func:`os_error_advice`."""
        failure = self._sqlite.damaged_or_busy(exc, what, BUSY_TIMEOUT_S)
        if failure is not None:
            return failure
        os_error = _as_os_error(exc_code(exc), self.dir, exc)
        return CallLogError(f"{self.path}: {what}: {os_error_advice(os_error)}", os_error.errno)


def _where(column: str | None, value: str | None) -> tuple[str, tuple[Any, ...]]:
    """The WHERE clause (and its parameters) of a read of the whole log, a number or a day."""
    if column == "number":
        return "WHERE number = ?", (value,)
    if column == "day":
        # the day's calls as calls_by_time holds them: a local date, at any offset, lies
        # within a day either side of the same UTC date
        midnight = dt.datetime.fromisoformat(f"{value}T00:00:00+00:00").timestamp()
        first, end = midnight - _DAY_S, midnight + 2 * _DAY_S
        return "WHERE started_utc > ? AND started_utc < ? AND day = ?", (first, end, value)
    return "", ()


_DAY_S: Final = 86_400.0


def _row(call: Mapping[str, Any], where: Path) -> Row:
    try:
        text = json.dumps(call, separators=(",", ":"))  # ASCII: any str round-trips
    except (TypeError, ValueError, RecursionError) as exc:
        raise CallLogError(
            f"{where}: the call cannot be saved as JSON ({exc}); it was not saved"
        ) from None
    instant: float | None = None
    day: str | None = None
    started = call.get("started")
    if isinstance(started, str):
        try:
            when = dt.datetime.fromisoformat(started)
            instant = when.timestamp()  # an offset-less time is the unit's local time
            day = when.date().isoformat()
        except (ValueError, OverflowError, OSError):
            pass
    number = call.get("number")
    return instant, number if isinstance(number, str) else None, day, text


def _not_in(rows: list[Row], present: collections.Counter[str]) -> list[Row]:
    """``rows`` less those ``present`` already (as many times as they are there)."""
    new = []
    for row in rows:
        if present[row[3]] > 0:
            present[row[3]] -= 1
        else:
            new.append(row)
    return new


def _identity(path: Path) -> tuple[int, int] | None:
    st = stat_or_none(path)
    return None if st is None else (st.st_dev, st.st_ino)


def _connect(database_uri: str) -> sqlite3.Connection:
    return connect(database_uri, BUSY_TIMEOUT_S)  # read when called: the tests change it


def _run(database_uri: str, sql: str, params: tuple[Any, ...]) -> list[Found]:
    conn = _connect(database_uri)
    try:
        return [(t, int(i), str(text)) for t, i, text in conn.execute(sql, params)]
    finally:
        conn.close()


def _same(before: os.stat_result | None, after: os.stat_result | None) -> bool:
    if before is None or after is None:
        return False
    return (before.st_ino, before.st_size, before.st_mtime_ns) == (
        after.st_ino,
        after.st_size,
        after.st_mtime_ns,
    )


def _damaged_for_reader(path: Path, reason: str) -> CallLogError:
    return CallLogError(
        f"{path}: the call log is damaged ({reason}). The daemon keeps it as "
        f"{path.name}.corrupt-<time> and starts a new log at the next call; if it is not "
        "running, start it (sudo systemctl start callguard)",
        errno.EIO,
    )


def _as_os_error(code: int, folder: Path, exc: sqlite3.Error) -> OSError:
    """The OSError a SQLite failure most likely stands for (SQLite does not give errno)."""
    if code == sqlite3.SQLITE_FULL:
        number = errno.ENOSPC
    elif _read_only_fs(folder):
        number = errno.EROFS
    elif code in (sqlite3.SQLITE_IOERR, sqlite3.SQLITE_CANTOPEN) and _full(folder):
        number = errno.ENOSPC  # e.g. the -shm file could not be grown
    elif code in (
        sqlite3.SQLITE_READONLY,
        sqlite3.SQLITE_CANTOPEN,
        sqlite3.SQLITE_PERM,
        sqlite3.SQLITE_AUTH,
    ):
        number = errno.EACCES
    elif code == sqlite3.SQLITE_IOERR:
        number = errno.EIO
    else:
        return OSError(0, str(exc))
    return OSError(number, os.strerror(number))


def _full(folder: Path) -> bool:
    """Less than 64 KiB free for this user in the folder's file system."""
    try:
        st = os.statvfs(folder)
    except OSError:
        return False
    free = st.f_bfree if os.geteuid() == 0 else st.f_bavail
    return free * st.f_frsize < 64 * 1024


def _read_only_fs(folder: Path) -> bool:
    try:
        return bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except OSError:
        return False
