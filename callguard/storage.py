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
import fcntl
import json
import logging
import os
import secrets
import stat
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from tinydb.storages import Storage

from callguard.errors import CallGuardError

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

logger = logging.getLogger(__name__)

Tables = dict[str, dict[str, Any]]
Signature = tuple[int, int, int]
Pack = Callable[[dict[str, Any]], tuple[Any, ...]]
"""Turns one document into a tuple as soon as it is parsed (see :func:`parse_tables`)."""

DEFAULT_FILE_MODE: Final = 0o640
_LOCK_POLL_MAX_S: Final = 0.05
# Every file in the store's folder is opened with these: never through a symbolic link, never
# waiting (a FIFO planted there must not hang the daemon), never as a controlling terminal.
_SAFE_OPEN: Final = os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY


class StoreError(CallGuardError):
    """The data file could not be read or written (the message names the file and the fix)."""


class StoreLocked(StoreError):
    """The store's lock was not released within the timeout."""

    def __init__(self, lock_path: str, timeout_s: float, holder: str | None) -> None:
        self.lock_path = lock_path
        self.timeout_s = timeout_s
        self.holder = holder
        who = holder or "another CallGuard process"
        super().__init__(
            f"{lock_path}: the store is locked by {who} and it was not released within "
            f"{timeout_s:g} s. A lock ends when its holder exits, so that process is still "
            "running: wait for it to finish and try again, or stop it."
        )


class StoreConflict(StoreError):
    """Another process changed the data file between this storage's read and its write."""


def os_error_advice(exc: OSError) -> str:
    """What a failed read or write of the store's folder means and what to do, by ``errno``.

    A read-only card (ext4 remounts ``ro`` after an error), a full card and a permission
    problem need different fixes, so they get different words.
    """
    code = exc.errno
    if code == errno.EROFS:
        return (
            "the SD card is read-only (the system remounted it after an error): run "
            "`sudo dmesg` to see the error, check or replace the card, and reboot; until then "
            "no change can be saved"
        )
    if code in (errno.ENOSPC, errno.EDQUOT):
        return (
            "the SD card is full: run `df -h` to see how full it is, free some space (for "
            "example `sudo journalctl --vacuum-size=50M`) and try again"
        )
    if code in (errno.EACCES, errno.EPERM):
        return (
            "permission denied. Run the command as the callguard user "
            "(sudo -u callguard callguard ...) or as root, or point storage.dir in the config "
            "at a folder you can write"
        )
    if code == errno.EIO:
        return (
            "input/output error: the SD card may be failing; run `sudo dmesg` and replace the "
            "card if it reports errors"
        )
    where = f" ({exc.filename})" if exc.filename else ""
    return (
        f"{exc.strerror or exc}{where}. Check that storage.dir in the config names a folder "
        "(it is created if missing) and that the SD card is healthy (`sudo dmesg`)"
    )


def _short_reason(exc: BaseException) -> str:
    """A few words for why a repair could not be done, for :attr:`Recovery.in_place`."""
    cause = exc.__cause__ if isinstance(exc.__cause__, OSError) else exc
    if isinstance(cause, OSError):
        if cause.errno == errno.EROFS:
            return "the SD card is read-only (the system remounted it after an error)"
        if cause.errno in (errno.ENOSPC, errno.EDQUOT):
            return "the SD card is full"
        if cause.errno in (errno.EACCES, errno.EPERM):
            return "this user may not change the folder"
    return str(exc)


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
        return _sibling(self.path, ".bak")

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
        return _sibling(self._path, ".bak")

    @property
    def lock_path(self) -> Path:
        return Path(_lock_path(self._path))

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
                    "one). Hold callguard.storage.locked(path) around read-modify-write "
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
            if not _lexists(self.backup_path):
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
                if loaded is None and not _lexists(self.backup_path):
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
            in_place, result = self._read_in_place(progress, _short_reason(e))
            if in_place is None:
                return result
            recovery = in_place
        logger.error(recovery.message())
        if self._on_recovery is not None:
            try:
                self._on_recovery(recovery)
            except Exception:
                logger.exception("on_recovery callback failed for %s", self._path)
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
            moved_to = progress.moved_to = _move_aside(self._path)
        restored_from: Path | None = None
        backup_moved_to: Path | None = None
        backup_reason: str | None = None
        result: Tables | None = None
        if backup is not None and backup.problem is None:
            self._install(backup.raw, mode=_mode_of(self.backup_path))
            restored_from = self.backup_path
            result = backup.tables
        else:
            if backup is not None:
                backup_reason = backup.problem
                backup_moved_to = _move_aside(self.backup_path)
            _fsync_dir(self._path.parent)
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
        existing = _stat_or_none(self._path)
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
            _unlink_quietly(temp)
            raise
        self._remember(signature)
        _fsync_dir(self._path.parent)

    def _temp_name(self) -> Path:
        return _sibling(self._path, f".tmp-{os.getpid()}-{secrets.token_hex(4)}")

    def _write_temp(self, payload: bytes, *, mode: int, gid: int | None) -> tuple[Path, Signature]:
        temp = self._temp_name()
        # O_EXCL: a new file, never one (or a link) someone left under this name
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _SAFE_OPEN, mode)
        try:
            try:
                os.fchmod(fd, mode)  # the umask must not narrow the existing mode
                if gid is not None and gid != os.fstat(fd).st_gid:
                    with contextlib.suppress(OSError):
                        os.fchown(fd, -1, gid)
                _give_to_folder_owner(fd, self._path.parent)
                _write_all(fd, payload)
                os.fsync(fd)
                st = os.fstat(fd)
            finally:
                os.close(fd)
        except BaseException:
            _unlink_quietly(temp)
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
                raw, st = _read_store_file(self._path)
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
            _unlink_quietly(temp)
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
        raw, st = _read_store_file(path)
    except FileNotFoundError:
        return None
    tables, problem = parse_tables(raw, pack=pack)
    return _Loaded(raw, tables, problem, (st.st_ino, st.st_size, st.st_mtime_ns))


def _read_store_file(path: Path) -> tuple[bytes, os.stat_result]:
    """The bytes of a regular file in the store's folder, never through a link.

    Raises FileNotFoundError for a missing file, else :class:`StoreError` naming the file.
    """
    try:
        fd = os.open(path, os.O_RDONLY | _SAFE_OPEN)
    except FileNotFoundError:
        raise
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise StoreError(_not_a_regular_file(path, "a symbolic link")) from e
        raise StoreError(f"{path}: cannot read the file: {os_error_advice(e)}") from e
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise StoreError(_not_a_regular_file(path, _file_type(st.st_mode)))
        chunks: list[bytes] = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
        return b"".join(chunks), st
    except OSError as e:
        raise StoreError(f"{path}: cannot read the file: {os_error_advice(e)}") from e
    finally:
        os.close(fd)


def _not_a_regular_file(path: Path | str, kind: str) -> str:
    return (
        f"{path} is {kind}, not an ordinary file. CallGuard does not follow links or open "
        "anything but ordinary files in its folder (a link there could make a command run as "
        f"root change another file). Remove it (sudo rm {path}) and try again"
        + (
            "; it is created again as needed."
            if str(path).endswith(".lock")
            else ", or put the file itself there."
        )
    )


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
        return None, f"top level is {_kind(value)}, not an object of tables"
    for name, table in value.items():
        if not isinstance(table, dict):
            return None, f"table {name!r} is {_kind(table)}, not an object of documents"
        for doc_id, document in table.items():
            if not isinstance(document, dict):
                return None, (
                    f"document {doc_id!r} in table {name!r} is {_kind(document)}, not an object"
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


def file_signature(path: str | os.PathLike[str]) -> Signature | None:
    """(st_ino, st_size, st_mtime_ns) of the file, or None if it is missing.

    Every write makes a new inode, so a changed signature means the file was rewritten: the
    daemon compares it to reload its index (and to clear TinyDB's query caches). A symbolic
    link is described as itself, never followed.
    """
    st = _stat_or_none(Path(path))
    return None if st is None else (st.st_ino, st.st_size, st.st_mtime_ns)


# -- locking ---------------------------------------------------------------------------------


class _Held:
    __slots__ = ("depth", "fd")

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.depth = 1


class _ThreadLocks(threading.local):
    def __init__(self) -> None:
        self.pid = os.getpid()
        self.held: dict[str, _Held] = {}


_thread_locks = _ThreadLocks()


def _held_by_this_thread() -> dict[str, _Held]:
    state = _thread_locks
    if state.pid != os.getpid():
        # A forked child inherits the parent's descriptors: the locks are the parent's. Closing
        # (never unlocking) our copies leaves the parent's lock alone.
        for held in state.held.values():
            with contextlib.suppress(OSError):
                os.close(held.fd)
        state.held = {}
        state.pid = os.getpid()
    return state.held


def _lock_path(path: str | os.PathLike[str]) -> str:
    # The directory's real path: one lock file, whichever symlink it is reached by, is also
    # one entry in the re-entrancy table (a second flock by the same thread would deadlock).
    directory, name = os.path.split(os.path.abspath(os.fspath(path)))
    return os.path.join(os.path.realpath(directory), name) + ".lock"


def holds_lock(path: str | os.PathLike[str]) -> bool:
    """Whether this thread holds :func:`locked` for the data file ``path``."""
    return _lock_path(path) in _held_by_this_thread()


@contextlib.contextmanager
def locked(path: str | os.PathLike[str], *, timeout_s: float = 10.0) -> Iterator[None]:
    """Hold the store's exclusive lock: ``flock`` on ``path + ".lock"``, never the data file.

    Re-entrant within one thread; other threads and processes wait. Polls until ``timeout_s``,
    then raises :class:`StoreLocked` naming the lock file and, where Linux can tell, its holder.
    The lock file is never followed through a symbolic link (a link or anything but an
    ordinary file there raises :class:`StoreError` naming it), and only a lock file this call
    creates is given to the folder's owner.
    """
    lock_path = _lock_path(path)
    held = _held_by_this_thread()
    mine = held.get(lock_path)
    if mine is not None:
        mine.depth += 1
        try:
            yield
        finally:
            mine.depth -= 1
        return
    fd = _acquire(lock_path, timeout_s)
    held[lock_path] = _Held(fd)
    try:
        yield
    finally:
        del held[lock_path]
        try:
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)


def _acquire(lock_path: str, timeout_s: float) -> int:
    fd = _open_lock_file(lock_path)
    deadline = time.monotonic() + max(timeout_s, 0.0)
    pause_s = 0.001
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            remaining_s = deadline - time.monotonic()
            if remaining_s <= 0:
                holder = _lock_holder(fd)
                os.close(fd)
                raise StoreLocked(lock_path, timeout_s, holder) from None
            time.sleep(min(pause_s, remaining_s))
            pause_s = min(pause_s * 2, _LOCK_POLL_MAX_S)
        except BaseException:
            os.close(fd)
            raise


def _open_lock_file(lock_path: str) -> int:
    """A descriptor of the lock file: created by this call (then given to the folder's owner),
    or an existing ordinary file opened without following a link."""
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_EXCL | _SAFE_OPEN, DEFAULT_FILE_MODE)
    except FileExistsError:
        create_error: OSError | None = None
    except OSError as e:  # e.g. a read-only folder: the file may exist all the same
        create_error = e
    else:
        _give_to_folder_owner(fd, Path(lock_path).parent)
        return fd
    fd = -1
    for flags in (os.O_RDWR, os.O_RDONLY):  # flock works on a read-only descriptor, and the
        try:  # file may belong to another user or sit on a read-only card
            fd = os.open(lock_path, flags | _SAFE_OPEN)
            break
        except FileNotFoundError as e:
            raise _cannot_open(lock_path, create_error or e) from create_error or e
        except OSError as e:
            if e.errno == errno.ELOOP:
                raise StoreError(_not_a_regular_file(lock_path, "a symbolic link")) from e
            if flags == os.O_RDONLY or e.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
                raise _cannot_open(lock_path, e) from e
    try:
        mode = os.fstat(fd).st_mode
    except OSError as e:
        os.close(fd)
        raise _cannot_open(lock_path, e) from e
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise StoreError(_not_a_regular_file(lock_path, _file_type(mode)))
    return fd


def _cannot_open(lock_path: str, e: OSError) -> StoreError:
    error = StoreError(f"{lock_path}: cannot open the store's lock file: {os_error_advice(e)}")
    error.__cause__ = e
    return error


def _lock_holder(fd: int) -> str | None:
    """Who holds the flock on ``fd``'s file, from /proc/locks (Linux); None if unknown."""
    inode = os.fstat(fd).st_ino
    try:
        lines = Path("/proc/locks").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        fields = line.split()
        # "1: FLOCK  ADVISORY  WRITE 1234 b3:02:5678 0 EOF"; waiters have "->" after "1:"
        if len(fields) < 6 or fields[1] != "FLOCK" or not fields[5].endswith(f":{inode}"):
            continue
        pid = fields[4]
        if pid == str(os.getpid()):
            return f"another thread of this process (pid {pid})"
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return f"pid {pid}"
        command = cmdline.replace(b"\0", b" ").decode("utf-8", "replace").strip()
        if len(command) > 80:
            command = command[:77] + "..."
        return f"pid {pid} ({command})" if command else f"pid {pid}"
    return None


# -- small file helpers ----------------------------------------------------------------------


def _sibling(path: Path, suffix: str) -> Path:
    return path.with_name(path.name + suffix)


def _stat_or_none(path: Path) -> os.stat_result | None:
    """The file's own status (a link's, not its target's), or None if it is missing."""
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None


def _lexists(path: Path) -> bool:
    return os.path.lexists(path)


def _mode_of(path: Path) -> int:
    st = _stat_or_none(path)
    return DEFAULT_FILE_MODE if st is None else st.st_mode & 0o7777


def _utc_stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S")


def _move_aside(path: Path) -> Path:
    """Rename a damaged file to ``<name>.corrupt-<UTC time>`` (never over an existing file)."""
    base = _sibling(path, f".corrupt-{_utc_stamp()}")
    target = base
    n = 1
    while _lexists(target):
        target = base.with_name(f"{base.name}-{n}")
        n += 1
    os.rename(path, target)
    return target


def _give_to_folder_owner(fd: int, folder: Path) -> None:
    """Run as root (``sudo callguard allow add ...``), a new file goes to the folder's owner.

    The daemon runs as the ``callguard`` user, which owns ``/var/lib/callguard``; a lists file
    left owned by root with mode 0640 would be unreadable to it, and screening would run with
    no lists at all. Only ever called with a file the caller has just created (``O_EXCL``):
    giving away a file that was already there could hand root's files to the service user.
    """
    if os.geteuid() != 0:
        return
    with contextlib.suppress(OSError):
        st = os.stat(folder)
        if (st.st_uid, st.st_gid) != (0, 0):
            os.fchown(fd, st.st_uid, st.st_gid)


def _write_all(fd: int, payload: bytes) -> None:
    view = memoryview(payload)
    while view:
        view = view[os.write(fd, view) :]


def write_atomically(path: Path, payload: bytes, mode: int = 0o644) -> None:
    """Make ``payload`` the content of ``path`` whole or not at all (temp, fsync, rename, fsync
    the folder). For files that need no backup or lock, such as rendered audio."""
    temp = _sibling(path, f".tmp-{os.getpid()}-{secrets.token_hex(4)}")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
    try:
        with open(fd, "wb", closefd=True) as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, path)
    except BaseException:
        _unlink_quietly(temp)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    except OSError as e:
        if e.errno != errno.EINVAL:  # a filesystem that cannot sync directories
            raise
    finally:
        os.close(fd)


def _unlink_quietly(path: Path) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "an object"


class UnreadableFile(CallGuardError):
    """A file named by a person (a config, an import, a recording) that cannot be used."""


def read_regular_file(path: str | os.PathLike[str], *, max_bytes: int, what: str) -> bytes:
    """The bytes of a regular file of at most ``max_bytes``, read without ever blocking.

    ``/dev/zero``, a FIFO, a folder or a device would make a plain read grow without end or
    wait for ever; they are refused by their type before anything is read (``O_NONBLOCK`` so
    opening a FIFO cannot wait for a writer). ``what`` names the file for the message, e.g.
    ``"the config file"``. Raises :class:`FileNotFoundError` for a missing file (callers say
    what that means in their own words) and :class:`UnreadableFile` for everything else.
    """
    name = os.fspath(path)
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
    except FileNotFoundError:
        raise
    except IsADirectoryError:
        raise UnreadableFile(f"{name}: {what} is a folder; give the file inside it") from None
    except OSError as e:
        raise UnreadableFile(
            f"{name}: {what} cannot be opened ({e.strerror or e}); check its permissions"
        ) from None
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise UnreadableFile(f"{name}: {what} is a folder; give the file inside it")
        if not stat.S_ISREG(st.st_mode):
            raise UnreadableFile(
                f"{name}: {what} is {_file_type(st.st_mode)}, not an ordinary file; "
                "give the path of a file saved on disk"
            )
        if st.st_size > max_bytes:
            raise UnreadableFile(
                f"{name}: {what} is {st.st_size:,} bytes, more than the {max_bytes:,} allowed; "
                "check that this is the right file"
            )
        chunks: list[bytes] = []
        size = 0
        while True:  # the file may grow after fstat: never read past the limit
            chunk = os.read(fd, min(1 << 20, max_bytes + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
            if size > max_bytes:
                raise UnreadableFile(
                    f"{name}: {what} grew past the {max_bytes:,} bytes allowed while it was "
                    "read; check that this is the right file"
                )
        return b"".join(chunks)
    except OSError as e:
        raise UnreadableFile(
            f"{name}: {what} cannot be read ({e.strerror or e}); check the SD card (dmesg)"
        ) from None
    finally:
        os.close(fd)


def _file_type(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a pipe (FIFO)"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"
