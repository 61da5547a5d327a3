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
a leftover temp file that is ignored (and removed by the next write, or after a minute).

:meth:`~AtomicJSONStorage.read` needs no lock: it only ever opens a complete file. A data file
that is nonetheless damaged (a failing card, a hand edit gone wrong) is never deleted: it is
renamed aside with a UTC timestamp (``lists.json.corrupt-20261124T093000``), the backup is
restored in its place if it parses, and the event is logged loudly and passed to
``on_recovery`` as a :class:`Recovery`. With no usable backup the store starts empty, and that
is reported too.

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
    "Recovery",
    "Signature",
    "StoreConflict",
    "StoreError",
    "StoreLocked",
    "UnreadableFile",
    "file_signature",
    "holds_lock",
    "locked",
    "parse_tables",
    "read_regular_file",
]

logger = logging.getLogger(__name__)

Tables = dict[str, dict[str, Any]]
Signature = tuple[int, int, int]

DEFAULT_FILE_MODE: Final = 0o640
LEFTOVER_TEMP_AGE_S: Final = 60.0
_LOCK_POLL_MAX_S: Final = 0.05


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


@dataclass(frozen=True)
class Recovery:
    """What happened when a missing or damaged data file was found at load."""

    path: Path
    """The data file."""
    moved_to: Path | None
    """Where the damaged data file was moved; None if the data file was missing."""
    restored_from: Path | None
    """The backup restored as the data file, or None: the store started empty."""
    reason: str
    """What was wrong with the data file, e.g. ``not valid JSON at line 3 column 10: ...``."""
    backup_moved_to: Path | None = None
    """Where a damaged backup was moved (it would otherwise be overwritten by the next write)."""
    backup_reason: str | None = None
    """What was wrong with the backup, if it was damaged."""

    @property
    def backup_path(self) -> Path:
        return _sibling(self.path, ".bak")

    def message(self) -> str:
        """A loud plain-English account for logs and the CLI: the files and what to do."""
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


class AtomicJSONStorage(Storage):
    """A TinyDB storage that writes atomically and recovers damaged files from a backup.

    Use it as ``TinyDB(path, storage=AtomicJSONStorage)`` or ``TinyDB(storage=..., path=...)``.
    Keeps no file open between calls. ``lock_timeout_s`` bounds how long a write (or a recovery)
    waits for another process holding the store's lock before raising :class:`StoreLocked`.
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
        self._seen: Signature | None = None
        self._seen_known = False
        directory = self._path.parent
        if create_dirs:
            try:
                directory.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise StoreError(
                    f"{directory}: cannot create the directory for {self._path.name} "
                    f"({e.strerror}); create it by hand or check the permissions of its parent."
                ) from e
        elif not directory.is_dir():
            raise StoreError(
                f"{directory}: the directory for {self._path.name} does not exist; "
                "create it, or pass create_dirs=True."
            )
        self._remove_temp_files(older_than_s=LEFTOVER_TEMP_AGE_S)

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

    def read(self) -> Tables | None:
        loaded = _load(self._path)
        if loaded is None:
            if self.backup_path.exists():
                return self._recover()
            self._remember(None)
            return None
        if loaded.problem is not None:
            return self._recover()
        self._remember(loaded.signature)
        return loaded.tables

    def write(self, data: Tables) -> None:
        payload = self._serialise(data)
        with locked(self._path, timeout_s=self._lock_timeout_s):
            if not self._seen_known:
                self.read()  # recovers a damaged file first, so only a good file is backed up
            current = file_signature(self._path)
            if current != self._seen:
                raise StoreConflict(
                    f"{self._path}: the file was changed by another process after this one read "
                    "it, so this change was not saved (saving it would have undone the other "
                    "one). Hold callguard.storage.locked(path) around read-modify-write "
                    "operations, then retry."
                )
            self._remove_temp_files(older_than_s=0.0)
            try:
                self._replace_with(payload, make_backup=current is not None)
            except OSError as e:
                state = (
                    "the previous contents are unchanged"
                    if self._seen == current
                    else "the new contents are in place but may not survive a power cut"
                )
                raise StoreError(
                    f"{self._path}: could not save ({e.strerror or e}); {state}. Check that the "
                    "SD card is not full or read-only (df -h, dmesg) and that this user may "
                    f"write to {self._path.parent}."
                ) from e

    def close(self) -> None:
        """Nothing to close: no file is kept open between calls."""

    # -- internals ---------------------------------------------------------------------------

    def _remember(self, signature: Signature | None) -> None:
        self._seen = signature
        self._seen_known = True

    def _serialise(self, data: Tables) -> bytes:
        try:
            text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
            return (text + "\n").encode("utf-8")
        except (TypeError, ValueError) as e:
            raise StoreError(
                f"{self._path}: the data cannot be saved as JSON ({e}); store only strings, "
                "numbers, booleans, None, lists and dicts. The file is unchanged."
            ) from e

    def _recover(self) -> Tables | None:
        with locked(self._path, timeout_s=self._lock_timeout_s):
            # Look again under the lock: another process may have dealt with it already.
            loaded = _load(self._path)
            if loaded is not None and loaded.problem is None:
                self._remember(loaded.signature)
                return loaded.tables
            if loaded is None and not self.backup_path.exists():
                self._remember(None)
                return None
            try:
                recovery, result = self._recover_locked(loaded)
            except OSError as e:
                raise StoreError(
                    f"{self._path}: the file is damaged or missing and could not be recovered "
                    f"from {self.backup_path} ({e.strerror or e}). Nothing has been deleted; "
                    "check that the SD card is not full or read-only (df -h, dmesg) and that "
                    f"this user may write to {self._path.parent}."
                ) from e
        logger.error(recovery.message())
        if self._on_recovery is not None:
            try:
                self._on_recovery(recovery)
            except Exception:
                logger.exception("on_recovery callback failed for %s", self._path)
        return result

    def _recover_locked(self, loaded: _Loaded | None) -> tuple[Recovery, Tables | None]:
        reason = "the file is missing but its backup is present"
        moved_to: Path | None = None
        if loaded is not None:
            reason = loaded.problem or ""
            moved_to = _move_aside(self._path)
        restored_from: Path | None = None
        backup_moved_to: Path | None = None
        backup_reason: str | None = None
        result: Tables | None = None
        backup = _load(self.backup_path)
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

    def _replace_with(self, payload: bytes, *, make_backup: bool) -> None:
        """Steps 2-4 of the theory of operation."""
        existing = _stat_or_none(self._path)
        mode = DEFAULT_FILE_MODE if existing is None else existing.st_mode & 0o7777
        gid = None if existing is None else existing.st_gid
        self._install(payload, mode=mode, gid=gid, make_backup=make_backup)

    def _install(
        self, payload: bytes, *, mode: int, gid: int | None = None, make_backup: bool = False
    ) -> None:
        """Atomically make ``payload`` the data file, first backing up the current one if asked."""
        temp, signature = self._write_temp(payload, mode=mode, gid=gid)
        try:
            if make_backup:
                self._backup_current()
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
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
        try:
            with open(fd, "wb", closefd=True) as f:
                os.fchmod(f.fileno(), mode)  # the umask must not narrow the existing mode
                if gid is not None and gid != os.fstat(f.fileno()).st_gid:
                    with contextlib.suppress(OSError):
                        os.fchown(f.fileno(), -1, gid)
                _give_to_folder_owner(f.fileno(), self._path.parent)
                f.write(payload)
                f.flush()
                os.fsync(f.fileno())
                st = os.fstat(f.fileno())
        except BaseException:
            _unlink_quietly(temp)
            raise
        return temp, (st.st_ino, st.st_size, st.st_mtime_ns)

    def _backup_current(self) -> None:
        temp = self._temp_name()
        try:
            try:
                os.link(self._path, temp)
            except OSError as e:
                if e.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV):
                    raise
                with open(self._path, "rb") as f:
                    raw = f.read()
                temp, _ = self._write_temp(raw, mode=_mode_of(self._path), gid=None)
            os.replace(temp, self.backup_path)
        except BaseException:
            _unlink_quietly(temp)
            raise

    def _remove_temp_files(self, *, older_than_s: float) -> None:
        """Remove temp files left by killed writers (any age when called under the lock)."""
        prefix = self._path.name + ".tmp-"
        now = time.time()
        try:
            entries = list(os.scandir(self._path.parent))
        except OSError:
            return
        for entry in entries:
            if not entry.name.startswith(prefix):
                continue
            try:
                if older_than_s > 0 and now - entry.stat().st_mtime < older_than_s:
                    continue
                os.unlink(entry.path)
            except OSError:
                continue
            logger.info("removed %s, left by an interrupted write", entry.path)


@dataclass(frozen=True)
class _Loaded:
    raw: bytes
    tables: Tables | None
    problem: str | None
    signature: Signature


def _load(path: Path) -> _Loaded | None:
    """A file's bytes, parsed tables or what is wrong with them, and signature; None if missing."""
    try:
        with open(path, "rb") as f:
            st = os.fstat(f.fileno())
            raw = f.read()
    except FileNotFoundError:
        return None
    except OSError as e:
        raise StoreError(
            f"{path}: cannot read the file ({e.strerror or e}); check that this user may "
            "read it and that the SD card is healthy (dmesg)."
        ) from e
    tables, problem = parse_tables(raw)
    return _Loaded(raw, tables, problem, (st.st_ino, st.st_size, st.st_mtime_ns))


def parse_tables(raw: bytes) -> tuple[Tables | None, str | None]:
    """(tables, None) for a sound TinyDB file, else (None, what is wrong in plain English)."""
    if not raw.strip():
        return None, "empty file"
    try:
        text = raw.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as e:
        return None, f"not UTF-8 (byte 0x{raw[e.start]:02x} at offset {e.start})"
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        what = e.msg.removesuffix(" starting at")  # "Unterminated string starting at"
        reason = f"not valid JSON at line {e.lineno} column {e.colno}: {what[:1].lower()}{what[1:]}"
        if e.pos >= len(text.rstrip()) or what == "Unterminated string":
            reason += "; it ends too early, as if cut short"
        return None, reason
    except (ValueError, RecursionError) as e:
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
    return value, None


def file_signature(path: str | os.PathLike[str]) -> Signature | None:
    """(st_ino, st_size, st_mtime_ns) of the file, or None if it is missing.

    Every write makes a new inode, so a changed signature means the file was rewritten: the
    daemon compares it to reload its index (and to clear TinyDB's query caches).
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
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, DEFAULT_FILE_MODE)
        _give_to_folder_owner(fd, Path(lock_path).parent)
    except PermissionError:
        try:  # flock works on a read-only descriptor; the file may belong to another user
            fd = os.open(lock_path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as e:
            raise _cannot_open(lock_path, e) from e
    except OSError as e:
        raise _cannot_open(lock_path, e) from e
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


def _cannot_open(lock_path: str, e: OSError) -> StoreError:
    return StoreError(
        f"{lock_path}: cannot open the store's lock file ({e.strerror or e}); check that its "
        "directory exists and that this user may write to it."
    )


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
    try:
        return os.stat(path)
    except FileNotFoundError:
        return None


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
    while target.exists():
        target = base.with_name(f"{base.name}-{n}")
        n += 1
    os.rename(path, target)
    return target


def _give_to_folder_owner(fd: int, folder: Path) -> None:
    """Run as root (``sudo callguard allow add ...``), a new file goes to the folder's owner.

    The daemon runs as the ``callguard`` user, which owns ``/var/lib/callguard``; a lists file
    left owned by root with mode 0640 would be unreadable to it, and screening would run with
    no lists at all.
    """
    if os.geteuid() != 0:
        return
    with contextlib.suppress(OSError):
        st = os.stat(folder)
        if (st.st_uid, st.st_gid) != (0, 0):
            os.fchown(fd, st.st_uid, st.st_gid)


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
