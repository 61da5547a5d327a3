"""What the store's SQLite databases (the call log, :mod:`callguard.store.calllog`, and the
alert outbox, :mod:`callguard.store.outbox`) do alike with their files and connections.

- A connection is opened by URI (:func:`uri`, :func:`connect`), in autocommit mode
  (``isolation_level=None``: each change is an explicit :func:`transaction`, ``BEGIN
  IMMEDIATE`` ... ``COMMIT``, rolled back on any error), with a busy timeout, and usable from
  any thread (``check_same_thread`` is off: the caller takes turns on it under its own lock).
- :meth:`DatabaseFile.open_for_writing` creates the folder and an empty database file made by
  this process (mode 0640; one made by root goes to the folder's owner), refusing SQLite's file
  names if they are symbolic links or anything but ordinary files (SQLite would follow a link,
  and create its ``-wal`` beside the target).
- :func:`use_wal` puts a database in WAL mode (readers read while the writer writes) with the
  given ``synchronous`` setting, and says so in the log if SQLite cannot use WAL there.
- A database SQLite calls corrupt or "not a database" is :class:`Damaged`;
  :meth:`DatabaseFile.move_aside` keeps it as ``<name>.corrupt-<UTC time>`` with its ``-wal``
  (SQLite pairs them by name) and removes the old WAL's ``-shm`` index, so a new database can be
  started under the name.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import stat
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Generic, TypeVar

from callguard.store.files import (
    DEFAULT_FILE_MODE,
    SAFE_OPEN,
    StoreError,
    file_type,
    fsync_dir,
    give_to_folder_owner,
    lexists,
    move_aside,
    not_a_regular_file,
    os_error_advice,
    sibling,
    stat_or_none,
)

DAMAGED_CODES: Final = (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB)
"""SQLite's result codes for a database that is corrupt or not a database."""
SQLITE_SUFFIXES: Final = ("", "-wal", "-shm", "-journal")
"""The database's file and the files SQLite keeps beside it."""


class SQLiteError(StoreError):
    """A store's SQLite database could not be written (or read); ``os_errno`` says why where it
    is known."""

    def __init__(self, message: str, os_errno: int | None = None) -> None:
        super().__init__(message)
        self.os_errno = os_errno


class Damaged(Exception):
    """SQLite says the database is corrupt or not a database (its words in ``reason``)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


E = TypeVar("E", bound=SQLiteError)


def exc_code(exc: sqlite3.Error) -> int:
    """SQLite's primary result code of an error (0 if unknown)."""
    return int(getattr(exc, "sqlite_errorcode", 0) or 0) & 0xFF


def uri(path: Path, query: str) -> str:
    """The ``file:`` URI of ``path`` with ``query`` (e.g. ``mode=ro``)."""
    return f"file:{urllib.parse.quote(os.path.abspath(path))}?{query}"


def connect(database_uri: str, timeout_s: float) -> sqlite3.Connection:
    """A connection to ``database_uri`` in autocommit mode, usable from any thread, waiting up
    to ``timeout_s`` for another's lock."""
    return sqlite3.connect(
        database_uri, uri=True, timeout=timeout_s, isolation_level=None, check_same_thread=False
    )


@contextlib.contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``; rolled back if anything is raised."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")
        raise


def use_wal(conn: sqlite3.Connection, path: Path, synchronous: str, log: logging.Logger) -> None:
    """WAL mode for ``path``'s connection (said in ``log`` if SQLite cannot use it here) and
    ``synchronous``."""
    mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if str(mode).lower() != "wal":
        log.warning("%s: SQLite cannot use WAL mode here (it uses %s)", path, mode)
    conn.execute(f"PRAGMA synchronous = {synchronous}")


@dataclass(frozen=True)
class DatabaseFile(Generic[E]):
    """One SQLite database file of the store, raising ``error`` in the words of ``name``
    (e.g. ``call log``)."""

    path: Path
    name: str
    error: type[E]

    @property
    def dir(self) -> Path:
        return self.path.parent

    def open_for_writing(
        self,
        connect: Callable[[str], sqlite3.Connection],
        failure: Callable[[sqlite3.Error, str], Exception],
        setup: Callable[[sqlite3.Connection], None],
    ) -> sqlite3.Connection:
        """A new ``mode=rw`` connection (from ``connect``), the folder and the database file
        created if need be, then ``setup`` done on it. A SQLite error is raised as
        ``failure`` makes it (e.g. :class:`Damaged`); an error raised by ``setup`` closes
        the connection."""
        what = f"cannot open the {self.name}"
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise self.os_failure(self.dir, exc) from None
        self.refuse_links()
        self.create()
        try:
            conn = connect(uri(self.path, "mode=rw"))
        except sqlite3.Error as exc:
            raise failure(exc, what) from None
        try:
            setup(conn)
        except sqlite3.Error as exc:
            conn.close()
            raise failure(exc, what) from None
        except BaseException:
            conn.close()
            raise
        return conn

    def create(self) -> None:
        """An empty database file made by this process (SQLite takes an empty file for a new
        database): mode 0640, and one made by root goes to the folder's owner."""
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | SAFE_OPEN, 0o600)
        except FileExistsError:
            return
        except OSError as exc:
            raise self.os_failure(self.path, exc) from None
        try:
            os.fchmod(fd, DEFAULT_FILE_MODE)
            give_to_folder_owner(fd, self.dir)
        finally:
            os.close(fd)

    def refuse_links(self) -> None:
        """No symbolic link (or anything but an ordinary file) under SQLite's file names."""
        for suffix in SQLITE_SUFFIXES:
            path = sibling(self.path, suffix)
            st = stat_or_none(path)
            if st is None or stat.S_ISREG(st.st_mode):
                continue
            kind = "a symbolic link" if stat.S_ISLNK(st.st_mode) else file_type(st.st_mode)
            raise self.error(not_a_regular_file(path, kind))

    def move_aside(self, reason: str) -> Path:
        """Move the damaged database (and its WAL) aside, to start anew; where it went."""
        try:
            moved_to = move_aside(self.path)
            wal = sibling(self.path, "-wal")
            if lexists(wal):
                os.rename(wal, sibling(moved_to, "-wal"))  # SQLite pairs them by name
            with contextlib.suppress(FileNotFoundError):
                os.unlink(sibling(self.path, "-shm"))  # the old WAL's index; rebuilt from it
            fsync_dir(self.dir)
        except OSError as exc:
            raise self.error(
                f"{self.path}: the {self.name} is damaged ({reason}) and could not be moved "
                f"aside: {os_error_advice(exc)}",
                exc.errno,
            ) from None
        return moved_to

    def damaged_or_busy(
        self, exc: sqlite3.Error, what: str, timeout_s: float
    ) -> Damaged | E | None:
        """A SQLite error as :class:`Damaged`, or as ``error`` if another process held the
        database past ``timeout_s``; None if it is neither."""
        code = exc_code(exc)
        if code in DAMAGED_CODES:
            return Damaged(str(exc))
        if code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
            return self.error(
                f"{self.path}: {what}: another process held it for more than "
                f"{timeout_s:g} s ({exc}); try again"
            )
        return None

    def os_failure(self, path: Path, exc: OSError) -> E:
        return self.error(f"cannot write to {path}: {os_error_advice(exc)}", exc.errno)
