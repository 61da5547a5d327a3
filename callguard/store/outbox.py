"""The alert outbox: every carer alert, and its delivery to each channel, in SQLite
(``outbox.sqlite3`` in the store's folder).

Theory of operation
-------------------
``callguard link`` (its own process) notices an event, :meth:`Outbox.add` queues it with one
*delivery* per channel (an apprise URL, known here only by its id and a label with its secrets
masked) and returns once it is on the card; then the link's deliverer asks :meth:`Outbox.due`
what to send and records each try with :meth:`Outbox.delivered` or :meth:`Outbox.failed` (which
sets the next try). A restart loses nothing: what was queued is still pending, and
:meth:`Outbox.retry_all_now` makes it due at once. An alert is retried until it *expires*
(``expires``, set when it is queued); :meth:`Outbox.expire` then gives up on its pending
deliveries.

**Once only.** Each alert has a ``key`` naming the event (e.g. ``grooming:<call start>``):
a key already in the outbox is not queued again (:meth:`Outbox.add` returns None), so a watcher
that looks at the same event twice (after a restart, say) does not alert twice.

**States.** A delivery is ``pending``, ``delivered`` or ``expired``. An alert's state follows
from its deliveries: ``pending`` while any channel is still to go, else ``expired`` if any was
given up, else ``delivered``; ``no-channels`` if none was configured when it was raised.

**Times** are kept as UTC seconds since the epoch (they compare in time order whatever the
offset) and shown as ISO 8601 with the local offset. The clock is injected, so the tests move
time instead of sleeping.

**Marks** are a small key/value table in the same database for the event watcher's cursors,
so an event and the cursor past it can be kept together.

**Files.** As the call log (:mod:`callguard.store.calllog`): WAL mode, so the family page and
the CLI read while the link writes; ``synchronous=FULL``, so a commit is fsynced before the
call returns; a busy timeout; a new file has mode 0640 and goes to the folder's owner when root
makes it; SQLite's files are refused if they are links or anything but ordinary files.

**Reading needs no write access** and creates nothing: with no database :meth:`Outbox.alerts`
is empty. Only a change (or the link's own reads, :meth:`Outbox.due` and the marks) opens the
database for writing, creating it if need be.

**Damage.** A database SQLite calls corrupt or "not a database", met when opening it for a
change or during one, is moved aside as ``outbox.sqlite3.corrupt-<UTC time>`` (with its
``-wal``), a new one is started and the change is made there; it is logged loudly (the alerts
still queued in the old file are not sent). A reader never moves it: it raises
:class:`~callguard.store.files.StoreError` saying so.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import logging
import os
import sqlite3
import threading
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final, TypeVar

from callguard.store import sqlitedb
from callguard.store.files import StoreError, lexists, os_error_advice
from callguard.store.folder import now_local
from callguard.store.jsonfile import Recovery
from callguard.store.sqlitedb import Damaged, transaction

log = logging.getLogger(__name__)

OUTBOX_FILE: Final = "outbox.sqlite3"
SCHEMA_VERSION: Final = 1
BUSY_TIMEOUT_S: Final = 10.0
"""How long one process waits for another's lock (the link writing, a reader's WAL recovery)."""

PENDING: Final = "pending"
DELIVERED: Final = "delivered"
EXPIRED: Final = "expired"
NO_CHANNELS: Final = "no-channels"

_SCHEMA: Final = (
    """CREATE TABLE IF NOT EXISTS alerts (
        id INTEGER PRIMARY KEY,
        key TEXT NOT NULL UNIQUE,
        kind TEXT NOT NULL,
        created_utc REAL NOT NULL,
        title TEXT NOT NULL,
        body TEXT NOT NULL,
        expires_utc REAL NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS deliveries (
        alert_id INTEGER NOT NULL REFERENCES alerts (id),
        channel TEXT NOT NULL,
        label TEXT NOT NULL,
        state TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_try_utc REAL,
        delivered_utc REAL,
        last_error TEXT,
        PRIMARY KEY (alert_id, channel)
    )""",
    "CREATE INDEX IF NOT EXISTS deliveries_pending ON deliveries (state, next_try_utc)",
    "CREATE TABLE IF NOT EXISTS marks (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
    f"PRAGMA user_version = {SCHEMA_VERSION}",
)
_ALERT_COLUMNS: Final = "id, key, kind, created_utc, title, body, expires_utc"
_DELIVERY_COLUMNS: Final = (
    "channel, label, state, attempts, next_try_utc, delivered_utc, last_error"
)

T = TypeVar("T")


def _iso(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    return dt.datetime.fromtimestamp(seconds, dt.UTC).astimezone().isoformat(timespec="seconds")


@dataclass(frozen=True)
class Delivery:
    """One alert's delivery to one channel."""

    channel: str
    """The channel's id (:func:`callguard.link.delivery.channel_id` of its URL)."""
    label: str
    """The URL with its secrets masked, for people."""
    state: str
    """``pending``, ``delivered`` or ``expired``."""
    attempts: int
    next_try: str | None
    """ISO 8601 with offset, while pending."""
    delivered: str | None
    """ISO 8601 with offset, once delivered."""
    last_error: str | None
    """Why the last try failed (or why it was given up), in plain words."""


@dataclass(frozen=True)
class Alert:
    """One carer alert and its deliveries."""

    id: int
    key: str
    """Names the event: the same key is never queued twice."""
    kind: str
    """e.g. ``grooming``, ``cleared``, ``impersonation``, ``modem-missing``."""
    created: str
    title: str
    body: str
    expires: str
    state: str
    """``pending``, ``delivered``, ``expired`` or ``no-channels`` (see States)."""
    deliveries: tuple[Delivery, ...]

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["deliveries"] = [asdict(d) for d in self.deliveries]
        return out


def alert_state(deliveries: Sequence[Delivery]) -> str:
    """An alert's state from its deliveries' (see States)."""
    states = {d.state for d in deliveries}
    if not states:
        return NO_CHANNELS
    if PENDING in states:
        return PENDING
    if EXPIRED in states:
        return EXPIRED
    return DELIVERED


@dataclass(frozen=True)
class OutboxRecovery(Recovery):
    """The outbox's database was damaged: moved aside (``moved_to``), a new one started."""

    def message(self) -> str:
        return (
            f"CallGuard's alert outbox {self.path} was damaged ({self.reason}); it has been "
            f"kept as {self.moved_to} and a new, empty outbox has been started. Alerts still "
            "waiting in the old one will not be sent, and `callguard alerts list` no longer "
            "shows the alerts before this; screening is not affected. Delete the old file "
            "once you are satisfied."
        )


class Outbox:
    """``outbox.sqlite3`` in ``directory``; see the module docstring. Safe to share between
    threads (they take turns on one connection). :meth:`close` it when done."""

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        clock: Callable[[], dt.datetime] | None = None,
        on_recovery: Callable[[Recovery], None] | None = None,
    ) -> None:
        self.dir = Path(directory)
        self.path = self.dir / OUTBOX_FILE
        self._sqlite = sqlitedb.DatabaseFile(self.path, "alert outbox", sqlitedb.SQLiteError)
        self.clock = clock or now_local
        self.on_recovery = on_recovery
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None

    # -- changes -------------------------------------------------------------------------

    def add(
        self,
        key: str,
        kind: str,
        title: str,
        body: str,
        *,
        channels: Sequence[tuple[str, str]],
        expires_after: dt.timedelta,
    ) -> Alert | None:
        """Queue an alert with a pending delivery to each ``(id, label)`` channel, due now.
        Returns once it is on the card; None (and nothing changed) if ``key`` is queued
        already."""
        now = self._now()
        expires = now + expires_after.total_seconds()

        def insert(conn: sqlite3.Connection) -> int | None:
            with transaction(conn):
                cursor = conn.execute(
                    "INSERT OR IGNORE INTO alerts (key, kind, created_utc, title, body, "
                    "expires_utc) VALUES (?, ?, ?, ?, ?, ?)",
                    (key, kind, now, title, body, expires),
                )
                if cursor.rowcount != 1:
                    return None
                alert_id = cursor.lastrowid
                conn.executemany(
                    "INSERT OR IGNORE INTO deliveries (alert_id, channel, label, state, "
                    "next_try_utc) VALUES (?, ?, ?, ?, ?)",
                    [(alert_id, cid, label, PENDING, now) for cid, label in channels],
                )
                return alert_id

        alert_id = self._write(insert)
        if alert_id is None:
            return None
        return self._write(lambda conn: _alerts(conn, "WHERE id = ?", (alert_id,)))[0]

    def retry_all_now(self) -> None:
        """Make every pending delivery due now (a restarted link retries at once)."""
        now = self._now()
        self._change(
            "UPDATE deliveries SET next_try_utc = ? WHERE state = ? AND next_try_utc > ?",
            (now, PENDING, now),
        )

    def delivered(self, alert_id: int, channel: str) -> None:
        """The alert reached the channel (counted as a try). Recorded even if the delivery
        had expired meanwhile: it did arrive."""
        self._change(
            "UPDATE deliveries SET state = ?, attempts = attempts + 1, delivered_utc = ?, "
            "next_try_utc = NULL WHERE alert_id = ? AND channel = ? AND state != ?",
            (DELIVERED, self._now(), alert_id, channel, DELIVERED),
        )

    def failed(self, alert_id: int, channel: str, error: str, retry_at: dt.datetime) -> None:
        """A try failed because of ``error``; the next is due at ``retry_at``."""
        self._change(
            "UPDATE deliveries SET attempts = attempts + 1, last_error = ?, next_try_utc = ? "
            "WHERE alert_id = ? AND channel = ? AND state = ?",
            (error, retry_at.timestamp(), alert_id, channel, PENDING),
        )

    def give_up(self, alert_id: int, channel: str, reason: str) -> None:
        """Stop trying one pending delivery (e.g. its channel is no longer configured): it is
        ``expired`` with ``reason`` as its last error."""
        self._change(
            "UPDATE deliveries SET state = ?, last_error = ?, next_try_utc = NULL "
            "WHERE alert_id = ? AND channel = ? AND state = ?",
            (EXPIRED, reason, alert_id, channel, PENDING),
        )

    def expire(self) -> int:
        """Give up the pending deliveries of every alert past its expiry; how many."""
        now = self._now()

        def update(conn: sqlite3.Connection) -> int:
            with transaction(conn):
                cursor = conn.execute(
                    "UPDATE deliveries SET state = ?, next_try_utc = NULL, last_error = "
                    "coalesce(last_error || '; ', '') || 'not delivered before the alert "
                    "expired' WHERE state = ? AND alert_id IN "
                    "(SELECT id FROM alerts WHERE expires_utc <= ?)",
                    (EXPIRED, PENDING, now),
                )
                return int(cursor.rowcount)

        return self._write(update)

    def set_mark(self, name: str, value: str) -> None:
        self._change(
            "INSERT INTO marks (name, value) VALUES (?, ?) "
            "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            (name, value),
        )

    # -- the link's reads (through its connection: they create the database) ---------------

    def due(self) -> list[tuple[Alert, Delivery]]:
        """The pending deliveries due now of alerts not yet expired, oldest alert first."""
        now = self._now()

        def query(conn: sqlite3.Connection) -> list[tuple[Alert, Delivery]]:
            due = {
                (int(i), str(c))
                for i, c in conn.execute(
                    "SELECT d.alert_id, d.channel FROM deliveries d JOIN alerts a "
                    "ON a.id = d.alert_id WHERE d.state = ? AND d.next_try_utc <= ? "
                    "AND a.expires_utc > ?",
                    (PENDING, now, now),
                )
            }
            if not due:
                return []
            ids = tuple(sorted({i for i, _ in due}))
            marks = ",".join("?" * len(ids))
            found = _alerts(conn, f"WHERE id IN ({marks})", ids, oldest_first=True)
            return [(a, d) for a in found for d in a.deliveries if (a.id, d.channel) in due]

        return self._write(query)

    def get_mark(self, name: str) -> str | None:
        def query(conn: sqlite3.Connection) -> str | None:
            row = conn.execute("SELECT value FROM marks WHERE name = ?", (name,)).fetchone()
            return None if row is None else str(row[0])

        return self._write(query)

    # -- reading (anyone: creates nothing) ---------------------------------------------------

    def alerts(self, limit: int = 100) -> list[Alert]:
        """The newest ``limit`` alerts, newest first; [] if there is no outbox yet."""
        with self._lock:
            if self._conn is not None:
                return self._write(lambda conn: _alerts(conn, "", (), limit=limit))
        if not lexists(self.path):
            return []
        self._sqlite.refuse_links()
        try:
            conn = sqlitedb.connect(sqlitedb.uri(self.path, "mode=ro"), BUSY_TIMEOUT_S)
            try:
                return _alerts(conn, "", (), limit=limit)
            finally:
                conn.close()
        except sqlite3.Error as exc:
            if "no such table" in str(exc):
                return []  # an empty file: being created
            if sqlitedb.exc_code(exc) in sqlitedb.DAMAGED_CODES:
                raise StoreError(
                    f"{self.path}: the alert outbox is damaged ({exc}). `callguard link` keeps "
                    f"it as {self.path.name}.corrupt-<time> and starts a new one when it next "
                    "opens it; if it is not running, start it (sudo systemctl start "
                    "callguard-link)"
                ) from None
            raise self._failure(exc, "cannot read the alert outbox") from None

    def close(self) -> None:
        """Close the connection, if open (the last one checkpoints the WAL and removes the
        ``-wal`` and ``-shm`` files)."""
        with self._lock:
            self._close_connection()

    # -- the connection ----------------------------------------------------------------------

    def _now(self) -> float:
        return self.clock().timestamp()

    def _change(self, sql: str, params: tuple[Any, ...]) -> None:
        def run(conn: sqlite3.Connection) -> None:
            with transaction(conn):
                conn.execute(sql, params)

        self._write(run)

    def _write(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """``work`` on the writing connection; a damaged database is moved aside, a new one
        started and ``work`` done again there, once."""
        with self._lock:
            for again in (False, True):
                try:
                    conn = self._connection()
                    try:
                        return work(conn)
                    except sqlite3.Error as exc:
                        self._close_connection()
                        raise self._failure(exc, "cannot write the alert outbox") from None
                except Damaged as damage:
                    self._close_connection()
                    if again:
                        raise StoreError(
                            f"{self.path}: the new alert outbox is damaged at once "
                            f"({damage.reason}); the SD card may be failing: run "
                            "`sudo dmesg` and replace the card if it reports errors"
                        ) from None
                    self._start_anew(damage.reason)
            raise AssertionError("unreachable")

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            self._conn = self._open_for_writing()
        return self._conn

    def _close_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(sqlite3.Error):
                conn.close()

    def _open_for_writing(self) -> sqlite3.Connection:
        return self._sqlite.open_for_writing(
            lambda database_uri: sqlitedb.connect(database_uri, BUSY_TIMEOUT_S),
            self._failure,
            self._set_up,
        )

    def _set_up(self, conn: sqlite3.Connection) -> None:
        sqlitedb.use_wal(conn, self.path, "FULL", log)
        if conn.execute("PRAGMA user_version").fetchone()[0] < SCHEMA_VERSION:
            with transaction(conn):
                for statement in _SCHEMA:
                    conn.execute(statement)
        conn.execute("SELECT count(*) FROM alerts").fetchone()  # reads its pages once

    def _start_anew(self, reason: str) -> None:
        """Move the damaged database (and its WAL) aside and say so loudly."""
        moved_to = self._sqlite.move_aside(reason)
        recovery = OutboxRecovery(
            path=self.path, moved_to=moved_to, restored_from=None, reason=reason
        )
        recovery.report(self.on_recovery, log)

    def _failure(self, exc: sqlite3.Error, what: str) -> Damaged | StoreError:
        failure = self._sqlite.damaged_or_busy(exc, what, BUSY_TIMEOUT_S)
        if failure is not None:
            return failure
        code = sqlitedb.exc_code(exc)
        if code == sqlite3.SQLITE_FULL:
            return StoreError(f"{self.path}: {what}: {os_error_advice(OSError(errno.ENOSPC, ''))}")
        if code in (sqlite3.SQLITE_READONLY, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_PERM):
            advice = os_error_advice(OSError(errno.EACCES, os.strerror(errno.EACCES)))
            return StoreError(f"{self.path}: {what} ({exc}): {advice}")
        return StoreError(f"{self.path}: {what}: {exc}")


def _alerts(
    conn: sqlite3.Connection,
    where: str,
    params: tuple[Any, ...],
    *,
    limit: int | None = None,
    oldest_first: bool = False,
) -> list[Alert]:
    order = "ASC" if oldest_first else "DESC"
    sql = f"SELECT {_ALERT_COLUMNS} FROM alerts {where} ORDER BY created_utc {order}, id {order}"
    if limit is not None:
        sql += " LIMIT ?"
        params += (limit,)
    rows = conn.execute(sql, params).fetchall()
    if not rows:
        return []
    ids = [row[0] for row in rows]
    deliveries: dict[int, list[Delivery]] = {i: [] for i in ids}
    marks = ",".join("?" * len(ids))
    for alert_id, *d in conn.execute(
        f"SELECT alert_id, {_DELIVERY_COLUMNS} FROM deliveries WHERE alert_id IN ({marks}) "
        "ORDER BY alert_id, rowid",
        ids,
    ):
        channel, label, state, attempts, next_try, delivered, error = d
        deliveries[alert_id].append(
            Delivery(
                channel=channel,
                label=label,
                state=state,
                attempts=int(attempts),
                next_try=_iso(next_try),
                delivered=_iso(delivered),
                last_error=error,
            )
        )
    return [
        Alert(
            id=int(alert_id),
            key=key,
            kind=kind,
            created=_iso(created) or "",
            title=title,
            body=body,
            expires=_iso(expires) or "",
            state=alert_state(deliveries[alert_id]),
            deliveries=tuple(deliveries[alert_id]),
        )
        for alert_id, key, kind, created, title, body, expires in rows
    ]
