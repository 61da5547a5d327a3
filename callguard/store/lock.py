"""The store's advisory lock: ``flock`` on ``<file>.lock``, re-entrant per thread, never stale."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Final

from callguard.store.files import (
    DEFAULT_FILE_MODE,
    SAFE_OPEN,
    StoreError,
    file_type,
    give_to_folder_owner,
    not_a_regular_file,
    os_error_advice,
)

_LOCK_POLL_MAX_S: Final = 0.05


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


def lock_path_for(path: str | os.PathLike[str]) -> str:
    # The directory's real path: one lock file, whichever symlink it is reached by, is also
    # one entry in the re-entrancy table (a second flock by the same thread would deadlock).
    directory, name = os.path.split(os.path.abspath(os.fspath(path)))
    return os.path.join(os.path.realpath(directory), name) + ".lock"


def holds_lock(path: str | os.PathLike[str]) -> bool:
    """Whether this thread holds :func:`locked` for the data file ``path``."""
    return lock_path_for(path) in _held_by_this_thread()


@contextlib.contextmanager
def locked(path: str | os.PathLike[str], *, timeout_s: float = 10.0) -> Iterator[None]:
    """Hold the store's exclusive lock: ``flock`` on ``path + ".lock"``, never the data file.

    Re-entrant within one thread; other threads and processes wait. Polls until ``timeout_s``,
    then raises :class:`StoreLocked` naming the lock file and, where Linux can tell, its holder.
    The lock file is never followed through a symbolic link (a link or anything but an
    ordinary file there raises :class:`StoreError` naming it), and only a lock file this call
    creates is given to the folder's owner.
    """
    lock_path = lock_path_for(path)
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
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_EXCL | SAFE_OPEN, DEFAULT_FILE_MODE)
    except FileExistsError:
        create_error: OSError | None = None
    except OSError as e:  # e.g. a read-only folder: the file may exist all the same
        create_error = e
    else:
        give_to_folder_owner(fd, Path(lock_path).parent)
        return fd
    fd = -1
    for flags in (os.O_RDWR, os.O_RDONLY):  # flock works on a read-only descriptor, and the
        try:  # file may belong to another user or sit on a read-only card
            fd = os.open(lock_path, flags | SAFE_OPEN)
            break
        except FileNotFoundError as e:
            raise _cannot_open(lock_path, create_error or e) from create_error or e
        except OSError as e:
            if e.errno == errno.ELOOP:
                raise StoreError(not_a_regular_file(lock_path, "a symbolic link")) from e
            if flags == os.O_RDONLY or e.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
                raise _cannot_open(lock_path, e) from e
    try:
        mode = os.fstat(fd).st_mode
    except OSError as e:
        os.close(fd)
        raise _cannot_open(lock_path, e) from e
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise StoreError(not_a_regular_file(lock_path, file_type(mode)))
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
