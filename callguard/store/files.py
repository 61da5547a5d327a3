"""Files on an SD card that may lose power, fill up or turn read-only.

Atomic writes (temp, fsync, rename, fsync the folder), bounded reads of regular files only,
no symlink followed, and the words that say what an OS error means for a volunteer.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import secrets
import stat
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from callguard.errors import CallGuardError

logger = logging.getLogger(__name__)
Signature = tuple[int, int, int]

DEFAULT_FILE_MODE: Final = 0o640
# Every file in the store's folder is opened with these: never through a symbolic link, never
# waiting (a FIFO planted there must not hang the daemon), never as a controlling terminal.
SAFE_OPEN: Final = os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY


class StoreError(CallGuardError):
    """The data file could not be read or written (the message names the file and the fix)."""


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


def short_reason(exc: BaseException) -> str:
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


def read_store_file(path: Path) -> tuple[bytes, os.stat_result]:
    """The bytes of a regular file in the store's folder, never through a link.

    Raises FileNotFoundError for a missing file, else :class:`StoreError` naming the file.
    """
    try:
        fd = os.open(path, os.O_RDONLY | SAFE_OPEN)
    except FileNotFoundError:
        raise
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise StoreError(not_a_regular_file(path, "a symbolic link")) from e
        raise StoreError(f"{path}: cannot read the file: {os_error_advice(e)}") from e
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise StoreError(not_a_regular_file(path, file_type(st.st_mode)))
        chunks: list[bytes] = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
        return b"".join(chunks), st
    except OSError as e:
        raise StoreError(f"{path}: cannot read the file: {os_error_advice(e)}") from e
    finally:
        os.close(fd)


def not_a_regular_file(path: Path | str, kind: str) -> str:
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


def file_signature(path: str | os.PathLike[str]) -> Signature | None:
    """(st_ino, st_size, st_mtime_ns) of the file, or None if it is missing.

    Every write makes a new inode, so a changed signature means the file was rewritten: the
    daemon compares it to reload its index (and to clear TinyDB's query caches). A symbolic
    link is described as itself, never followed.
    """
    try:  # no Path made: the seize path's first look asks this of the storage folder
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


# -- small file helpers ----------------------------------------------------------------------


def sibling(path: Path, suffix: str) -> Path:
    return path.with_name(path.name + suffix)


def stat_or_none(path: Path) -> os.stat_result | None:
    """The file's own status (a link's, not its target's), or None if it is missing."""
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None


def lexists(path: Path) -> bool:
    return os.path.lexists(path)


def mode_of(path: Path) -> int:
    st = stat_or_none(path)
    return DEFAULT_FILE_MODE if st is None else st.st_mode & 0o7777


def _utc_stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S")


def move_aside(path: Path) -> Path:
    """Rename a damaged file to ``<name>.corrupt-<UTC time>`` (never over an existing file)."""
    base = sibling(path, f".corrupt-{_utc_stamp()}")
    target = base
    n = 1
    while lexists(target):
        target = base.with_name(f"{base.name}-{n}")
        n += 1
    os.rename(path, target)
    return target


def give_to_folder_owner(fd: int, folder: Path) -> None:
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


def write_all(fd: int, payload: bytes) -> None:
    view = memoryview(payload)
    while view:
        view = view[os.write(fd, view) :]


def write_atomically(
    path: Path,
    payload: bytes,
    mode: int = 0o644,
    *,
    durable: bool = True,
    to_folder_owner: bool = False,
    exclusive: bool = False,
) -> None:
    """Make ``payload`` the content of ``path`` whole or not at all: a new temp file beside it
    (mode ``mode`` whatever the umask), then a rename onto ``path`` — or, ``exclusive``, a link
    that fails with FileExistsError if ``path`` is there. For files that need no backup or
    lock: rendered audio, the live status, the family page's password and key.

    ``durable``: the file and the folder are fsynced (off for tmpfs, where there is no disk).
    ``to_folder_owner``: written by root, the new file goes to the folder's owner
    (:func:`give_to_folder_owner`). The temp file is always new (``O_EXCL``), so nothing is
    ever written through a link planted there.
    """
    temp = sibling(path, f".tmp-{os.getpid()}-{secrets.token_hex(4)}")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | SAFE_OPEN, mode)
    try:
        try:
            os.fchmod(fd, mode)
            if to_folder_owner:
                give_to_folder_owner(fd, path.parent)
            write_all(fd, payload)
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        if exclusive:
            os.link(temp, path)
        else:
            os.replace(temp, path)
    finally:
        unlink_quietly(temp)  # gone already after a rename; after a link, the extra name
    if durable:
        fsync_dir(path.parent)


def refuse_odd_file(path: Path) -> os.stat_result | None:
    """``path``'s lstat if it is an ordinary file, None if it is missing; :class:`StoreError`
    naming it if it is anything else (a link is never written through)."""
    current = stat_or_none(path)
    if current is not None and not stat.S_ISREG(current.st_mode):
        kind = "a symbolic link" if stat.S_ISLNK(current.st_mode) else file_type(current.st_mode)
        raise StoreError(not_a_regular_file(path, kind))
    return current


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    except OSError as e:
        if e.errno != errno.EINVAL:  # a filesystem that cannot sync directories
            raise
    finally:
        os.close(fd)


def unlink_quietly(path: Path) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


def kind_of(value: object) -> str:
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


def open_regular_file(path: str | os.PathLike[str], *, what: str) -> int:
    """A read-only descriptor of a regular file named by a person, opened without blocking.

    ``/dev/zero``, a FIFO, a folder or a device are refused by their type before anything is
    read (``O_NONBLOCK``: opening a FIFO cannot wait for a writer). Raises
    :class:`FileNotFoundError` for a missing file and :class:`UnreadableFile` for the rest,
    naming ``what`` (e.g. ``"the config file"``). The caller closes the descriptor.
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
                f"{name}: {what} is {file_type(st.st_mode)}, not an ordinary file; "
                "give the path of a file saved on disk"
            )
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_regular_file(path: str | os.PathLike[str], *, max_bytes: int, what: str) -> bytes:
    """The bytes of a regular file of at most ``max_bytes``, read without ever blocking.

    ``/dev/zero``, a FIFO, a folder or a device would make a plain read grow without end or
    wait for ever; they are refused by their type before anything is read (``O_NONBLOCK`` so
    opening a FIFO cannot wait for a writer). ``what`` names the file for the message, e.g.
    ``"the config file"``. Raises :class:`FileNotFoundError` for a missing file (callers say
    what that means in their own words) and :class:`UnreadableFile` for everything else.
    """
    name = os.fspath(path)
    fd = open_regular_file(name, what=what)
    try:
        st = os.fstat(fd)
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


def file_type(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a pipe (FIFO)"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"
