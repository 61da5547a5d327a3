"""A TinyDB storage that survives power cuts: the allow list must never be lost.

Theory of operation
-------------------
TinyDB's own ``JSONStorage`` rewrites its file in place, so a Raspberry Pi losing power in the
middle of a write leaves half a file. :class:`AtomicJSONStorage` never modifies a file that
exists. Every :meth:`~AtomicJSONStorage.write`, holding the store's lock:

1. serialises the whole database to bytes (nothing on disk is touched if that fails);
2. writes them to a new temp file in the same directory (``lists.json.tmp-<pid>-<hex>``) and
   fsyncs it, so the new contents are on the card before any name points at them;
3. makes the current data file the backup: hard-links it to a temp name and renames that onto
   ``lists.json.bak`` (a copy where hard links are not supported), so a good data file exists
   at every moment;
4. renames the temp file onto ``lists.json`` (``os.replace`` is atomic), then fsyncs the
   directory so both renames are durable.

A power cut at any point leaves either the old or the new file under the data file's name, and
a leftover temp file that is ignored (and removed by the next write). A write that fails (a
full or read-only card) removes its temp file and leaves the data file and its backup as they
were; the error says what to do (:func:`os_error_advice`).

:meth:`~AtomicJSONStorage.read` needs no lock and no write access: it only ever opens a
complete file, and creates, removes and renames nothing while the file is sound. The daemon
keeps screening from a card the kernel has remounted read-only. A data file that is
nonetheless damaged (a failing card, a hand edit gone wrong) is never deleted: it is renamed
aside with a UTC timestamp (``lists.json.corrupt-20261124T093000``), the backup is restored in
its place if it parses, and the event is logged loudly and passed to ``on_recovery`` as a
:class:`Recovery`. With no usable backup the store starts empty, and that is reported too. If
the repair itself cannot be done (a read-only card, a full one), the backup is read where it
is, nothing is moved, and the :class:`Recovery` says so (``in_place``); the next read repairs
it once the folder can be written. Whether a file is sound is decided in one place,
:func:`parse_tables`, for TinyDB's reads and for the daemon's lean packed read alike.

Nothing here follows a symbolic link in the store's folder, or opens anything there but a
regular file: ``sudo callguard ...`` runs as root in a folder the service user owns, and a link
planted there must not make root read, overwrite or give away another file. Every file is
opened with ``O_NOFOLLOW`` (a link is refused with a message naming it), new files are created
with ``O_EXCL``, and only a file this process has just created is given to the folder's owner.

TinyDB reads the whole file, changes it, and writes it back, without a lock in between. Another
process writing in that gap would have its change silently overwritten, so the storage
remembers the file it last read (:func:`file_signature`) and :meth:`~AtomicJSONStorage.write`
raises :class:`StoreConflict` rather than clobber a file that changed since. Callers that
read-modify-write across processes hold :func:`locked` around the whole operation; the lock is
re-entrant, so the writes inside take it again for free. It is an ``flock`` on a separate
``lists.json.lock`` (the data file's inode changes on every write), released by the kernel when
its holder dies, so it can never go stale.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from tinydb.storages import Storage

from callguard.store.files import (
    DEFAULT_FILE_MODE,
    SAFE_OPEN,
    Signature,
    StoreConflict,
    StoreError,
    UnreadableFile,
    file_signature,
    fsync_dir,
    give_to_folder_owner,
    kind_of,
    lexists,
    mode_of,
    move_aside,
    os_error_advice,
    read_regular_file,
    read_store_file,
    short_reason,
    sibling,
    stat_or_none,
    unlink_quietly,
    write_all,
)
from callguard.store.lock import StoreLocked, holds_lock, lock_path_for, locked

logger = logging.getLogger(__name__)

__all__ = [
    "AtomicJSONStorage",
    "Pack",
    "Recovery",
    "Signature",
    "StoreConflict",
    "StoreError",
    "StoreLocked",
    "UnreadableFile",
    "file_signature",
    "holds_lock",
    "locked",
    "os_error_advice",
    "parse_tables",
    "read_regular_file",
]

Tables = dict[str, dict[str, Any]]
Pack = Callable[[dict[str, Any]], tuple[Any, ...]]
"""Turns one document into a tuple as soon as it is parsed (see :func:`parse_tables`)."""


@dataclass(frozen=True)
class Recovery:
    """What happened when a missing or damaged data file was found at load."""

    path: Path
    """The data file."""
    moved_to: Path | None
    """Where the damaged data file was moved; None if the data file was missing (or, with
    ``in_place``, could not be moved)."""
    restored_from: Path | None
    """The backup whose contents are in use (restored as the data file, or with ``in_place``
    read where it is), or None: the store is empty."""
    reason: str
    """What was wrong with the data file, e.g. ``not valid JSON at line 3 column 10: ...``."""
    backup_moved_to: Path | None = None
    """Where a damaged backup was moved (it would otherwise be overwritten by the next write)."""
    backup_reason: str | None = None
    """What was wrong with the backup, if it was damaged."""
    in_place: str | None = None
    """Why the repair could not be done (e.g. the card is read-only), if it could not: then
    nothing more was moved, the backup was only read, and the next read tries again."""

    @property
    def backup_path(self) -> Path:
        return sibling(self.path, ".bak")

    def report(self, on_recovery: Callable[[Recovery], None] | None, log: logging.Logger) -> None:
        """Say :meth:`message` loudly (an error in ``log``) and pass this to ``on_recovery``,
        whose own failure is logged, not raised."""
        log.error(self.message())
        if on_recovery is not None:
            try:
                on_recovery(self)
            except Exception:
                log.exception("on_recovery callback failed for %s", self.path)

    def message(self) -> str:
        """A loud plain-English account for logs and the CLI: the files and what to do."""
        if self.in_place is not None:
            return self._in_place_message()
        if self.moved_to is None:
            what = f"CallGuard's data file {self.path} was missing"
        else:
            what = (
                f"CallGuard's data file {self.path} was damaged ({self.reason}); "
                f"it has been kept as {self.moved_to}"
            )
        if self.restored_from is not None:
            after = (
                f" Delete {self.moved_to} once you are satisfied."
                if self.moved_to is not None
                else f" If {self.path.name} was deleted on purpose, delete {self.backup_path} too."
            )
            return (
                f"{what}. Its backup {self.restored_from} has been restored in its place, so the "
                "last change saved before this happened may be missing. Check the allow and "
                "block lists and re-add anything missing." + after
            )
        if self.backup_moved_to is not None:
            too = " too" if self.moved_to is not None else ""
            backup = (
                f"its backup was damaged{too} ({self.backup_reason}) and has been kept as "
                f"{self.backup_moved_to}"
            )
        else:
            backup = f"there was no backup ({self.backup_path} does not exist)"
        kept = " and ".join(str(p) for p in (self.moved_to, self.backup_moved_to) if p is not None)
        return (
            f"{what}, and {backup}. CallGuard has started with an EMPTY store: callers on the "
            "allow list are no longer recognised and may be blocked. Re-enter the allow list now"
            + (f"; the old entries may still be readable in {kept}." if kept else ".")
        )

    def _in_place_message(self) -> str:
        if self.moved_to is not None:
            what = (
                f"CallGuard's data file {self.path} was damaged ({self.reason}) and has been "
                f"kept as {self.moved_to}"
            )
        elif self.reason.startswith("the file is missing"):
            what = f"CallGuard's data file {self.path} is missing"
        else:
            what = f"CallGuard's data file {self.path} is damaged ({self.reason})"
        repair = (
            f"It could not be repaired because {self.in_place}, so nothing else was moved. "
            "Once the folder can be written again, the next read repairs it."
        )
        if self.restored_from is not None:
            return (
                f"{what}. {repair} Until then its backup {self.restored_from} is read in its "
                "place, so the last change saved before this happened may be missing, and no "
                "change can be saved."
            )
        if self.backup_reason is not None:
            backup = f"its backup {self.backup_path} is damaged too ({self.backup_reason})"
        else:
            backup = f"there is no backup ({self.backup_path} does not exist)"
        return (
            f"{what}, and {backup}. {repair} Until then CallGuard has an EMPTY store: callers "
            "on the allow list are not recognised and may be blocked."
        )


class AtomicJSONStorage(Storage):
    """A TinyDB storage that writes atomically and recovers damaged files from a backup.

    Use it as ``TinyDB(path, storage=AtomicJSONStorage)`` or ``TinyDB(storage=..., path=...)``.
    Keeps no file open between calls. ``lock_timeout_s`` bounds how long a write (or a recovery)
    waits for another process holding the store's lock before raising :class:`StoreLocked`.
    ``create_dirs`` creates a missing folder at the first write (reading creates nothing).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        create_dirs: bool = True,
        on_recovery: Callable[[Recovery], None] | None = None,
        lock_timeout_s: float = 10.0,
    ) -> None:
        super().__init__()
        self._path = Path(os.path.abspath(os.fspath(path)))
        self._on_recovery = on_recovery
        self._lock_timeout_s = lock_timeout_s
        self._create_dirs = create_dirs
        self._seen: Signature | None = None
        self._seen_known = False
        directory = self._path.parent
        if not create_dirs and not directory.is_dir():
            raise StoreError(
                f"{directory}: the directory for {self._path.name} does not exist; "
                "create it, or pass create_dirs=True."
            )

    @property
    def path(self) -> Path:
        return self._path

    @property
    def backup_path(self) -> Path:
        return sibling(self._path, ".bak")

    @property
    def lock_path(self) -> Path:
        return Path(lock_path_for(self._path))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self._path)!r})"

    # -- the TinyDB Storage contract ---------------------------------------------------------

    def read(self, pack: Pack | None = None) -> Tables | None:
        """The tables, or None for an absent store; each document ``pack``-ed if given.

        Needs no write access while the file is sound. A damaged or missing data file is
        recovered from the backup (see the module's docstring), in place if the folder
        cannot be written.
        """
        return self._read(pack, strict=False)

    def write(self, data: Tables) -> None:
        payload = self._serialise(data)
        self._make_dirs()
        with locked(self._path, timeout_s=self._lock_timeout_s):
            if not self._seen_known:
                # recovers a damaged file first, so only a good file is backed up
                self._read(None, strict=True)
            current = file_signature(self._path)
            if current != self._seen:
                raise StoreConflict(
                    f"{self._path}: the file was changed by another process after this one read "
                    "it, so this change was not saved (saving it would have undone the other "
                    "one). Hold callguard.store.lock.locked(path) around read-modify-write "
                    "operations, then retry."
                )
            try:
                self._remove_temp_files()
                self._replace_with(payload, current)
            except OSError as e:
                state = (
                    "the previous contents are unchanged"
                    if self._seen == current
                    else "the new contents are in place but may not survive a power cut"
                )
                raise StoreError(
                    f"{self._path}: could not save: {os_error_advice(e)}. ({state}.)"
                ) from e

    def close(self) -> None:
        """Nothing to close: no file is kept open between calls."""

    # -- internals ---------------------------------------------------------------------------

    def _read(self, pack: Pack | None, *, strict: bool) -> Tables | None:
        loaded = _load(self._path, pack)
        if loaded is None:
            if not lexists(self.backup_path):
                self._remember(None)
                return None
        elif loaded.problem is None:
            self._remember(loaded.signature)
            return loaded.tables
        tables = self._recover(strict=strict)
        if pack is None or tables is None:
            return tables
        return {name: {i: pack(doc) for i, doc in t.items()} for name, t in tables.items()}

    def _remember(self, signature: Signature | None) -> None:
        self._seen = signature
        self._seen_known = True

    def _forget(self) -> None:
        """The next write must read (and repair) the file again first."""
        self._seen = None
        self._seen_known = False

    def _make_dirs(self) -> None:
        if not self._create_dirs:
            return
        directory = self._path.parent
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StoreError(
                f"{directory}: cannot create the directory for {self._path.name}: "
                f"{os_error_advice(e)}"
            ) from e

    def _serialise(self, data: Tables) -> bytes:
        try:
            text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
            return (text + "\n").encode("utf-8")
        except (TypeError, ValueError, RecursionError) as e:
            raise StoreError(
                f"{self._path}: the data cannot be saved as JSON ({e}); store only strings, "
                "numbers, booleans, None, lists and dicts. The file is unchanged."
            ) from e

    def _recover(self, *, strict: bool) -> Tables | None:
        progress = _Progress()
        try:
            with locked(self._path, timeout_s=self._lock_timeout_s):
                # Look again under the lock: another process may have dealt with it already.
                loaded = _load(self._path)
                if loaded is not None and loaded.problem is None:
                    self._remember(loaded.signature)
                    return loaded.tables
                if loaded is None and not lexists(self.backup_path):
                    self._remember(None)
                    return None
                try:
                    recovery, result = self._recover_locked(loaded, progress)
                except OSError as e:
                    raise StoreError(
                        f"{self._path}: the file is damaged or missing and could not be "
                        f"recovered from {self.backup_path}: {os_error_advice(e)}. Nothing has "
                        "been deleted."
                    ) from e
        except StoreLocked:
            raise
        except StoreError as e:
            if strict:
                raise
            # The folder cannot be changed (a read-only or full card, a refused lock file):
            # read what can be read where it is, move nothing, and say so.
            in_place, result = self._read_in_place(progress, short_reason(e))
            if in_place is None:
                return result
            recovery = in_place
        recovery.report(self._on_recovery, logger)
        return result

    def _read_in_place(
        self, progress: _Progress, why: str
    ) -> tuple[Recovery | None, Tables | None]:
        """The backup's tables (or None), read without creating, moving or removing a file.

        No :class:`Recovery` if the data file is sound after all (another process repaired it
        meanwhile): then its own tables.
        """
        loaded = _load(self._path)
        if loaded is not None and loaded.problem is None:
            self._remember(loaded.signature)
            return None, loaded.tables
        backup = _load(self.backup_path)
        if loaded is None and backup is None and progress.moved_to is None:
            self._remember(None)  # both gone meanwhile: an absent store, nothing to report
            return None, None
        self._forget()
        if progress.reason is not None:
            reason = progress.reason
        elif loaded is not None:
            reason = loaded.problem or ""
        else:
            reason = "the file is missing but its backup is present"
        good = backup is not None and backup.problem is None
        recovery = Recovery(
            path=self._path,
            moved_to=progress.moved_to,
            restored_from=self.backup_path if good else None,
            reason=reason,
            backup_reason=None if backup is None else backup.problem,
            in_place=why,
        )
        return recovery, backup.tables if backup is not None else None

    def _recover_locked(
        self, loaded: _Loaded | None, progress: _Progress
    ) -> tuple[Recovery, Tables | None]:
        reason = "the file is missing but its backup is present"
        backup = _load(self.backup_path)  # before anything moves: it may be unreadable
        moved_to: Path | None = None
        if loaded is not None:
            reason = progress.reason = loaded.problem or ""
            moved_to = progress.moved_to = move_aside(self._path)
        restored_from: Path | None = None
        backup_moved_to: Path | None = None
        backup_reason: str | None = None
        result: Tables | None = None
        if backup is not None and backup.problem is None:
            self._install(backup.raw, mode=mode_of(self.backup_path))
            restored_from = self.backup_path
            result = backup.tables
        else:
            if backup is not None:
                backup_reason = backup.problem
                backup_moved_to = move_aside(self.backup_path)
            fsync_dir(self._path.parent)
            self._remember(None)
        recovery = Recovery(
            path=self._path,
            moved_to=moved_to,
            restored_from=restored_from,
            reason=reason,
            backup_moved_to=backup_moved_to,
            backup_reason=backup_reason,
        )
        return recovery, result

    def _replace_with(self, payload: bytes, current: Signature | None) -> None:
        """Steps 2-4 of the theory of operation (``current``: the data file, to back up)."""
        existing = stat_or_none(self._path)
        mode = DEFAULT_FILE_MODE if existing is None else existing.st_mode & 0o7777
        gid = None if existing is None else existing.st_gid
        self._install(payload, mode=mode, gid=gid, backup_of=current)

    def _install(
        self,
        payload: bytes,
        *,
        mode: int,
        gid: int | None = None,
        backup_of: Signature | None = None,
    ) -> None:
        """Atomically make ``payload`` the data file, first backing up the current one (the
        file ``backup_of`` describes) if given."""
        temp, signature = self._write_temp(payload, mode=mode, gid=gid)
        try:
            if backup_of is not None:
                self._backup_current(backup_of)
            os.replace(temp, self._path)
        except BaseException:
            unlink_quietly(temp)
            raise
        self._remember(signature)
        fsync_dir(self._path.parent)

    def _temp_name(self) -> Path:
        return sibling(self._path, f".tmp-{os.getpid()}-{secrets.token_hex(4)}")

    def _write_temp(self, payload: bytes, *, mode: int, gid: int | None) -> tuple[Path, Signature]:
        temp = self._temp_name()
        # O_EXCL: a new file, never one (or a link) someone left under this name
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | SAFE_OPEN, mode)
        try:
            try:
                os.fchmod(fd, mode)  # the umask must not narrow the existing mode
                if gid is not None and gid != os.fstat(fd).st_gid:
                    with contextlib.suppress(OSError):
                        os.fchown(fd, -1, gid)
                give_to_folder_owner(fd, self._path.parent)
                write_all(fd, payload)
                os.fsync(fd)
                st = os.fstat(fd)
            finally:
                os.close(fd)
        except BaseException:
            unlink_quietly(temp)
            raise
        return temp, (st.st_ino, st.st_size, st.st_mtime_ns)

    def _backup_current(self, expected: Signature) -> None:
        temp = self._temp_name()
        try:
            try:
                os.link(self._path, temp)
                st = os.lstat(temp)
            except OSError as e:
                if e.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV):
                    raise
                raw, st = read_store_file(self._path)
                temp, _ = self._write_temp(raw, mode=st.st_mode & 0o7777, gid=None)
            if (st.st_ino, st.st_size, st.st_mtime_ns) != expected:
                # Not the file this write checked (a link put there meanwhile links its
                # target): never make that the backup.
                raise StoreConflict(
                    f"{self._path}: the file was replaced by another process while this change "
                    "was being saved, so it was not saved; try again."
                )
            os.replace(temp, self.backup_path)
        except BaseException:
            unlink_quietly(temp)
            raise

    def _remove_temp_files(self) -> None:
        """Remove temp files left by killed writers (called under the lock: all are dead)."""
        prefix = self._path.name + ".tmp-"
        try:
            entries = list(os.scandir(self._path.parent))
        except OSError:
            return
        for entry in entries:
            if not entry.name.startswith(prefix):
                continue
            try:
                os.unlink(entry.path)
            except OSError:
                continue
            logger.info("removed %s, left by an interrupted write", entry.path)


@dataclass
class _Progress:
    """How far a recovery got before it failed (so an in-place read can report it)."""

    reason: str | None = None
    moved_to: Path | None = None


@dataclass(frozen=True)
class _Loaded:
    raw: bytes
    tables: Tables | None
    problem: str | None
    signature: Signature


def _load(path: Path, pack: Pack | None = None) -> _Loaded | None:
    """A file's bytes, parsed tables or what is wrong with them, and signature; None if missing."""
    try:
        raw, st = read_store_file(path)
    except FileNotFoundError:
        return None
    tables, problem = parse_tables(raw, pack=pack)
    return _Loaded(raw, tables, problem, (st.st_ino, st.st_size, st.st_mtime_ns))


def parse_tables(raw: bytes, *, pack: Pack | None = None) -> tuple[Tables | None, str | None]:
    """(tables, None) for a sound TinyDB file, else (None, what is wrong in plain English).

    The one decision of whether a data file is sound, for every reader. With ``pack``, every
    document is handed to it as soon as the parser has built it (so 100,000 rows never exist
    as dicts at once) and the tables hold what it returns; that lean parse is only a faster
    route to the same verdict, and anything it cannot handle is decided by the plain parse.
    Nesting too deep for the parser is damage like any other, never an exception.
    """
    if not raw.strip():
        return None, "empty file"
    try:
        text = raw.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as e:
        return None, f"not UTF-8 (byte 0x{raw[e.start]:02x} at offset {e.start})"
    if pack is not None:
        lean = _parse_packed(text, pack)
        if lean is not None:
            return lean, None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        what = e.msg.removesuffix(" starting at")  # "Unterminated string starting at"
        reason = f"not valid JSON at line {e.lineno} column {e.colno}: {what[:1].lower()}{what[1:]}"
        if e.pos >= len(text.rstrip()) or what == "Unterminated string":
            reason += "; it ends too early, as if cut short"
        return None, reason
    except RecursionError:
        return None, "not usable JSON (nested too deeply)"
    except ValueError as e:
        return None, f"not usable JSON ({e})"
    if not isinstance(value, dict):
        return None, f"top level is {kind_of(value)}, not an object of tables"
    for name, table in value.items():
        if not isinstance(table, dict):
            return None, f"table {name!r} is {kind_of(table)}, not an object of documents"
        for doc_id, document in table.items():
            if not isinstance(document, dict):
                return None, (
                    f"document {doc_id!r} in table {name!r} is {kind_of(document)}, not an object"
                )
    if pack is not None:
        value = {name: {i: pack(doc) for i, doc in t.items()} for name, t in value.items()}
    return value, None


def _parse_packed(text: str, pack: Pack) -> Tables | None:
    """The lean parse, or None when only the plain parse can be sure.

    A list row is an object with a ``number`` and nothing but strings, numbers, booleans and
    nulls; the parser hands each one to ``pack`` as soon as it is built. Hooks cannot see how
    deep an object is, so the result is used only if every document was packed and nothing
    else was: then it is exactly what the plain parse and ``pack`` would give.
    """

    def hook(obj: dict[str, Any]) -> Any:
        if "number" in obj and all(isinstance(v, _SCALARS) for v in obj.values()):
            return pack(obj)
        return obj

    try:
        value = json.loads(text, object_hook=hook)
    except (ValueError, RecursionError):
        return None
    if not isinstance(value, dict):
        return None
    for table in value.values():
        if not isinstance(table, dict):
            return None  # e.g. a table (or the whole file) with a "number" key was packed
        for document in table.values():
            if not isinstance(document, tuple):  # JSON has no tuples: pack made it
                return None
    return value


_SCALARS: Final = (str, int, float, bool, type(None))
