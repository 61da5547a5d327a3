"""Contacts files held between the Import page's preview and its confirm button.

Theory of operation
-------------------
The preview writes nothing to the lists, yet the confirm button must add exactly what the
preview showed. The page never trusts a list of numbers sent back by the browser: the file
itself is kept on the Pi, in ``storage.dir/cache/import/<token>.json`` (the file's bytes, its
name, the list it goes to, when it came and a hash of the session's CSRF token), mode 0600,
written whole (temp, fsync, rename). The form carries only the random token (32 URL-safe
characters), and the confirm reads the file again through the same importer and the same
store checks as ``callguard allow import``.

A held file belongs to the session that sent it (another session's token is "not found"),
is deleted after the confirm, and any held file older than :data:`HOLD_S` is deleted the next
time a file is sent or confirmed. A token that is not exactly what :func:`new_token` makes is
refused before any path is built from it.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import json
import os
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from callguard.store.files import unlink_quietly
from callguard.web.passwords import write_private

HOLD_S: Final = 3600.0
"""A file not confirmed within an hour is deleted."""
MAX_UPLOAD_BYTES: Final = 2 * 1024 * 1024
"""The largest contacts file the page takes (a phone's whole address book is far less)."""
_TOKEN: Final = re.compile(r"[A-Za-z0-9_-]{32}")


@dataclass(frozen=True)
class Held:
    token: str
    filename: str
    list_name: str
    data: bytes
    created: float


def new_token() -> str:
    return secrets.token_urlsafe(24)  # 32 characters


def _session_hash(session_key: str) -> str:
    return hashlib.sha256(session_key.encode("utf-8", "replace")).hexdigest()


class Uploads:
    """The held files of one storage folder."""

    def __init__(
        self, storage_dir: str | os.PathLike[str], *, clock: Callable[[], float] = time.time
    ):
        self.folder = Path(storage_dir) / "cache" / "import"
        self.clock = clock

    def path_for(self, token: str) -> Path | None:
        if not isinstance(token, str) or not _TOKEN.fullmatch(token):
            return None
        return self.folder / f"{token}.json"

    def hold(self, data: bytes, filename: str, list_name: str, session_key: str) -> Held:
        """Keep ``data`` for the confirm; returns it with its token."""
        self.sweep()
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        token = new_token()
        held = Held(token, filename, list_name, data, self.clock())
        payload = json.dumps(
            {
                "filename": filename,
                "list": list_name,
                "created": held.created,
                "session": _session_hash(session_key),
                "data": base64.b64encode(data).decode("ascii"),
            }
        ).encode("utf-8")
        write_private(self.folder / f"{token}.json", payload)  # 0600, whole, fsynced
        return held

    def get(self, token: str, session_key: str) -> Held | None:
        """The held file of ``token`` sent in this session, or None (unknown, another
        session's, out of date or damaged)."""
        path = self.path_for(token)
        if path is None:
            return None
        try:
            with open(path, "rb") as f:
                record = json.loads(f.read(4 * MAX_UPLOAD_BYTES))
            created = float(record["created"])
            if not hmac.compare_digest(str(record["session"]), _session_hash(session_key)):
                return None
            data = base64.b64decode(record["data"], validate=True)
            held = Held(token, str(record["filename"]), str(record["list"]), data, created)
        except (OSError, ValueError, KeyError, TypeError, binascii.Error):
            return None
        if not 0 <= self.clock() - created <= HOLD_S:
            unlink_quietly(path)
            return None
        return held

    def drop(self, token: str) -> None:
        path = self.path_for(token)
        if path is not None:
            unlink_quietly(path)

    def sweep(self) -> None:
        """Delete held files (and half-written ones) older than :data:`HOLD_S`."""
        now = self.clock()
        with contextlib.suppress(OSError), os.scandir(self.folder) as entries:
            for entry in entries:
                with contextlib.suppress(OSError):
                    if now - entry.stat(follow_symlinks=False).st_mtime > HOLD_S:
                        unlink_quietly(Path(entry.path))
