"""One folder of store files: read without a lock or write access, changed under the lock.

Every file here is a TinyDB document on :class:`~callguard.store.jsonfile.AtomicJSONStorage`
(temp file, fsync, rename, one backup). Reading needs no write access (a card the kernel has
remounted read-only must still give the daemon its lists): no folder, lock or temp file is
created and nothing moves, unless a damaged file is repaired. Only changes take the lock.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import getpass
import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from tinydb import TinyDB

from callguard.errors import CallGuardError
from callguard.store.files import os_error_advice
from callguard.store.jsonfile import AtomicJSONStorage, Recovery
from callguard.store.lock import locked

Clock = Callable[[], dt.datetime]


def now_local() -> dt.datetime:
    return dt.datetime.now().astimezone()


def who() -> str:
    """Who is making a change, for ``added_by`` and ``acknowledged_by``."""
    for var in ("SUDO_USER", "USER", "LOGNAME"):
        if os.environ.get(var):
            return os.environ[var]
    with contextlib.suppress(Exception):
        return getpass.getuser()
    return "unknown"


def exists(path: Path) -> bool:
    """A store file or its backup is there (reading an absent store must not create it).

    A symbolic link counts, so that reading it is refused with a message naming it.
    """
    return os.path.lexists(path) or os.path.lexists(path.with_name(path.name + ".bak"))


def storage_error(path: Path, exc: OSError) -> CallGuardError:
    """A failed change in the store's folder, in words that say what to do (by ``errno``:
    a read-only card, a full card and a permission problem have different fixes)."""
    return CallGuardError(f"cannot write to {path}: {os_error_advice(exc)}")


def rows(tables: Mapping[str, Mapping[str, Any]], name: str) -> list[Mapping[str, Any]]:
    """The documents of one table of a file read whole, in the file's order."""
    return [doc for doc in tables.get(name, {}).values() if isinstance(doc, Mapping)]


class StoreFolder:
    """Files in ``directory``; see the module docstring."""

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        clock: Clock = now_local,
        on_recovery: Callable[[Recovery], None] | None = None,
    ) -> None:
        self.dir = Path(directory)
        self.clock = clock
        self.on_recovery = on_recovery

    # -- opening -------------------------------------------------------------------------
    # Reading needs no write access (a card the kernel has remounted read-only must still
    # give the daemon its lists): no folder, lock or temp file is created and nothing moves,
    # unless a damaged file is repaired (see callguard.store.jsonfile). Only changes lock.

    def _tables(self, path: Path) -> dict[str, dict[str, Any]]:
        """Every table of a store file, read once, without the lock (the file is always whole)."""
        if not exists(path):
            return {}
        return AtomicJSONStorage(path, on_recovery=self.on_recovery).read() or {}

    def _prepare_write(self) -> None:
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise storage_error(self.dir, exc) from None

    @contextlib.contextmanager
    def _db(self, path: Path) -> Iterator[TinyDB]:
        """TinyDB on ``path`` for a change, under the store's lock from start to end."""
        self._prepare_write()
        try:
            with locked(path):
                db = TinyDB(path, storage=AtomicJSONStorage, on_recovery=self.on_recovery)
                try:
                    yield db
                finally:
                    db.close()
        except OSError as exc:
            raise storage_error(path, exc) from None
