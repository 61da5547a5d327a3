"""The one way the link and the hub read a password from a file named in the config."""

from __future__ import annotations

import os
import stat

from callguard.errors import CallGuardError
from callguard.store.files import UnreadableFile, read_regular_file


class SecretError(CallGuardError):
    """A secret file that cannot be used; the message names it, the key and the fix."""


def read_secret(path: str, key: str) -> str:
    """The first line of the file at ``path`` (named by the config key ``key``, e.g.
    ``"[fleet] password_file"``). Refuses a missing, unreadable, odd (a FIFO, a device), empty
    or world-readable file: a secret must be readable only by the service."""
    try:
        raw = read_regular_file(path, max_bytes=4096, what=f"{key} {path}")
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise SecretError(
            f"{key} {path} does not exist: put the password in it (one line), readable only by "
            "the service: sudo install -m 0640 -g callguard /dev/stdin " + path
        ) from None
    except (UnreadableFile, OSError) as exc:
        raise SecretError(
            f"{key} {path} cannot be read ({exc}): make it readable by the service's user "
            "(chgrp callguard, chmod 640)"
        ) from None
    if mode & stat.S_IROTH:
        raise SecretError(
            f"{key} {path} is readable by every user of this machine: make it private "
            f"(sudo chmod 640 {path}) and change the password at the broker if others saw it"
        )
    lines = raw.decode("utf-8", "replace").splitlines()
    password = lines[0].strip() if lines else ""
    if not password:
        raise SecretError(f"{key} {path} is empty: put the password in it (one line)")
    return password
