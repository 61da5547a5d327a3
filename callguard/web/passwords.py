"""The family page's one password and its session key, kept in the storage folder.

Theory of operation
-------------------
The password is never stored: :func:`hash_password` keeps an scrypt hash (the standard
library's ``hashlib.scrypt``, so nothing is compiled on the Pi) with a random salt of its own
and the cost parameters beside it, in one line::

    scrypt$ln=14,r=8,p=1$<salt, base64>$<hash, base64>

so a later version can raise the cost and still check a password set today. ``ln=14, r=8``
takes 16 MiB and a fraction of a second on a Pi 3 per check; :func:`verify_password` compares
in constant time and refuses parameters far outside what CallGuard writes (a line edited to
ask for gigabytes must not take the Pi down).

Both files (``web-password`` and ``web-secret-key`` in ``storage.dir``) are readable by their
owner only (mode 0600): :func:`write_private` writes them whole or not at all (temp file, fsync,
rename, fsync the folder), never through a link, and a file written by root (``sudo callguard
web password``) is given to the folder's owner, the ``callguard`` user the page runs as. The
session key is made once, by the first page process to need it (:func:`secret_key`); two
starting at once agree on one (the second finds the first's file).
"""

from __future__ import annotations

import base64
import binascii
import errno
import hashlib
import hmac
import logging
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from callguard.errors import CallGuardError, UsageError
from callguard.store.files import (
    os_error_advice,
    read_store_file,
    refuse_odd_file,
    unlink_quietly,
    write_atomically,
)

log = logging.getLogger(__name__)

PASSWORD_FILE: Final = "web-password"
SECRET_KEY_FILE: Final = "web-secret-key"
PRIVATE_MODE: Final = 0o600

MIN_PASSWORD_CHARS: Final = 8
MAX_PASSWORD_CHARS: Final = 1024

SCRYPT_LN: Final = 14
SCRYPT_R: Final = 8
SCRYPT_P: Final = 1
_SALT_BYTES: Final = 16
_HASH_BYTES: Final = 32
_MAX_MEMORY: Final = 256 * 1024 * 1024
"""Refuse a stored line whose parameters would need more than this (128 * n * r * p)."""
_SECRET_BYTES: Final = 32


class PasswordError(CallGuardError):
    """The password file exists but cannot be used (the message says what to do)."""


# -- hashing --------------------------------------------------------------------------------


def check_new_password(password: str) -> None:
    """Refuse a password the family page will not take, saying why (:class:`UsageError`)."""
    if not password:
        raise UsageError("the password is empty; type one of at least 8 characters")
    if password != password.strip():
        raise UsageError(
            "the password starts or ends with a space, which is easy to get wrong on a phone; "
            "leave the spaces out at the ends"
        )
    if len(password) < MIN_PASSWORD_CHARS:
        raise UsageError(
            f"the password is {len(password)} characters; use at least {MIN_PASSWORD_CHARS} "
            "(three or four ordinary words are easy to type and hard to guess)"
        )
    if len(password) > MAX_PASSWORD_CHARS:
        raise UsageError(f"the password is longer than {MAX_PASSWORD_CHARS} characters")
    if any(ord(c) < 32 or ord(c) == 127 for c in password):
        raise UsageError("the password holds a control character; type ordinary characters")


def hash_password(password: str) -> str:
    """The line to store for ``password``: scrypt with a new random salt, parameters kept."""
    salt = secrets.token_bytes(_SALT_BYTES)
    digest = _scrypt(password, salt, SCRYPT_LN, SCRYPT_R, SCRYPT_P)
    return f"scrypt$ln={SCRYPT_LN},r={SCRYPT_R},p={SCRYPT_P}${_b64(salt)}${_b64(digest)}"


@dataclass(frozen=True)
class _Parsed:
    ln: int
    r: int
    p: int
    salt: bytes
    digest: bytes


def _parse(line: str) -> _Parsed:
    try:
        scheme, params, salt, digest = line.strip().split("$")
        if scheme != "scrypt":
            raise ValueError(f"scheme {scheme!r}")
        values = dict(part.split("=", 1) for part in params.split(","))
        ln, r, p = int(values["ln"]), int(values["r"]), int(values["p"])
        parsed = _Parsed(ln, r, p, _unb64(salt), _unb64(digest))
    except (ValueError, KeyError, binascii.Error) as exc:
        raise PasswordError(
            f"the stored password is not in a form CallGuard writes ({exc})"
        ) from None
    if not (1 <= parsed.ln <= 20 and 1 <= parsed.r <= 32 and 1 <= parsed.p <= 16):
        raise PasswordError("the stored password asks for scrypt parameters out of range")
    if 128 * (1 << parsed.ln) * parsed.r * parsed.p > _MAX_MEMORY:
        raise PasswordError("the stored password asks for more memory than this Pi can spare")
    if len(parsed.salt) < 8 or len(parsed.digest) < 16:
        raise PasswordError("the stored password's salt or hash is too short")
    return parsed


def verify_password(password: str, line: str) -> bool:
    """Whether ``password`` is the one ``line`` (from :func:`hash_password`) was made from.

    Constant time in the password; raises :class:`PasswordError` for a line that cannot be a
    hash this module wrote.
    """
    parsed = _parse(line)
    too_long = len(password) > MAX_PASSWORD_CHARS  # never set, so never right; costs the same
    candidate = _scrypt(
        password[:MAX_PASSWORD_CHARS],
        parsed.salt,
        parsed.ln,
        parsed.r,
        parsed.p,
        len(parsed.digest),
    )
    return hmac.compare_digest(candidate, parsed.digest) and not too_long


def fingerprint(line: str) -> str:
    """A short, non-secret name of a stored password: sessions carry it, so setting a new
    password ends every session made with the old one."""
    return hashlib.sha256(b"callguard-web-session\0" + line.strip().encode()).hexdigest()[:32]


def _scrypt(
    password: str, salt: bytes, ln: int, r: int, p: int, length: int = _HASH_BYTES
) -> bytes:
    return hashlib.scrypt(
        password.encode("utf-8", "surrogatepass"),
        salt=salt,
        n=1 << ln,
        r=r,
        p=p,
        maxmem=_MAX_MEMORY + 1024 * 1024,
        dklen=length,
    )


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)


# -- the files ------------------------------------------------------------------------------


class PasswordFile:
    """``web-password`` in the storage folder: read (cached by the file's identity), set."""

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)
        self.path = self.folder / PASSWORD_FILE
        self._cached: tuple[tuple[int, int, int], str] | None = None

    def read(self) -> str | None:
        """The stored line, or None if no password has been set."""
        try:
            raw, st = read_store_file(self.path)
        except FileNotFoundError:
            self._cached = None
            return None
        stamp = (st.st_ino, st.st_size, st.st_mtime_ns)
        if self._cached is not None and self._cached[0] == stamp:
            return self._cached[1]
        line = raw.decode("utf-8", "replace").strip()
        if not line:
            return None
        self._cached = (stamp, line)
        return line

    def is_set(self) -> bool:
        return self.read() is not None

    def set(self, password: str) -> None:
        """Check, hash and store ``password`` (replacing any before it)."""
        check_new_password(password)
        write_private(self.path, (hash_password(password) + "\n").encode("ascii"))

    def check(self, password: str) -> bool:
        line = self.read()
        return line is not None and verify_password(password, line)


def write_private(path: Path, payload: bytes) -> None:
    """``payload`` as the content of ``path`` (mode 0600), whole or not at all, never through a
    link; written by root, the file goes to the folder's owner. Raises :class:`CallGuardError`
    naming the file and the fix."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        refuse_odd_file(path)
        write_atomically(path, payload, PRIVATE_MODE, to_folder_owner=True)
    except OSError as exc:
        raise CallGuardError(f"cannot write {path}: {os_error_advice(exc)}") from None


def secret_key(folder: str | os.PathLike[str]) -> bytes:
    """The key that signs session cookies: ``web-secret-key``, made once (0600).

    If the folder cannot be written (a card remounted read-only) a key for this process only is
    used, and said in the log: everyone logs in again after a restart.
    """
    path = Path(folder) / SECRET_KEY_FILE
    for _ in range(3):
        try:
            raw, _st = read_store_file(path)
        except FileNotFoundError:
            pass
        else:
            key = raw.strip()
            if len(key) >= _SECRET_BYTES:
                return key
            log.warning("%s is too short to be a session key; making a new one", path)
            unlink_quietly(path)
        key = secrets.token_hex(_SECRET_BYTES).encode("ascii")
        try:
            _create_private(path, key + b"\n")
        except FileExistsError:
            continue  # another process made it first: use theirs
        except OSError as exc:
            if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOSPC):
                log.warning(
                    "cannot keep the family page's session key in %s (%s): using one for this "
                    "run only, so everyone must log in again after a restart",
                    path,
                    os_error_advice(exc),
                )
                return key
            raise CallGuardError(f"cannot write {path}: {os_error_advice(exc)}") from None
        return key
    raise CallGuardError(f"{path} keeps changing; stop other copies of 'callguard web'")


def _create_private(path: Path, payload: bytes) -> None:
    """Create ``path`` with ``payload`` only if it does not exist (FileExistsError if it does):
    written to a temp file first and linked into place, so nobody reads it half written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, payload, PRIVATE_MODE, to_folder_owner=True, exclusive=True)
