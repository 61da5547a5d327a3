"""Which CallGuard this is, and which pinned libraries it runs on.

Every unit installs its Python libraries from one lock file, ``requirements/callguard.txt``
(exact versions, sha256 hashes; ``make lock`` writes it). Two units with the same version and
the same lock digest run the same code. The lock is not part of the package, so it is found:

- in a source checkout (``make`` / an editable install): ``requirements/callguard.txt`` beside
  the ``callguard`` folder, the lock the checkout's code goes with;
- on an installed unit: ``<prefix>/callguard.lock`` (``/opt/callguard/callguard.lock``), the copy
  of the lock install.sh wrote after installing from it.

The digest is read once per process: it describes the code that is running, not a lock
installed since (install.sh restarts the service after an upgrade).
"""

from __future__ import annotations

import functools
import hashlib
import sys
import tomllib
from importlib import metadata
from pathlib import Path
from typing import TypedDict

DIST_NAME = "callguard"
INSTALLED_LOCK_NAME = "callguard.lock"
"""The lock's name in the program folder (sys.prefix); install.sh writes it."""
SOURCE_LOCK = Path("requirements") / "callguard.txt"
"""The lock's path in a source checkout, relative to the folder holding pyproject.toml."""
UNKNOWN_VERSION = "0+unknown"

_CHECKOUT = Path(__file__).resolve().parent.parent
"""The folder above the package: the checkout in development, site-packages when installed."""


class VersionInfo(TypedDict):
    version: str
    """CallGuard's version, e.g. "0.2.0" (the installed metadata's, as in pyproject.toml)."""
    lock_digest: str | None
    """The digest of the lock the libraries came from, "sha256:<64 hex>"; None if unknown."""


@functools.cache
def package_version() -> str:
    """CallGuard's version from the installed metadata (pip, or an editable install).

    Run from a checkout that was never installed, pyproject.toml's version; else "0+unknown".
    """
    try:
        return metadata.version(DIST_NAME)
    except metadata.PackageNotFoundError:
        pass
    try:
        with (_CHECKOUT / "pyproject.toml").open("rb") as f:
            project = tomllib.load(f)["project"]
        if project["name"] == DIST_NAME and isinstance(project["version"], str):
            return project["version"]
    except (OSError, tomllib.TOMLDecodeError, KeyError, TypeError):
        pass
    return UNKNOWN_VERSION


def lock_candidates() -> tuple[Path, ...]:
    """Where the lock is looked for, first found wins: the checkout's, then the installed copy."""
    return (_CHECKOUT / SOURCE_LOCK, Path(sys.prefix) / INSTALLED_LOCK_NAME)


def digest_of(path: Path) -> str:
    """The file's sha256 as "sha256:<hex>", the form pip's --hash uses."""
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


@functools.cache
def lock_digest() -> str | None:
    """The digest of the lock this CallGuard's libraries come from, or None if there is none."""
    for path in lock_candidates():
        try:
            return digest_of(path)
        except OSError:  # absent, or unreadable: try the next
            continue
    return None


def version_info() -> VersionInfo:
    """{"version": "0.2.0", "lock_digest": "sha256:…" or None}: for status --json."""
    return {"version": package_version(), "lock_digest": lock_digest()}


def version_line() -> str:
    """One line for ``callguard --version``: "callguard 0.2.0 (lock sha256:0123456789ab)"."""
    info = version_info()
    digest = info["lock_digest"]
    if digest is None:
        lock = "lock unknown: the libraries were not installed from a lock file"
    else:
        lock = "lock " + digest[: len("sha256:") + 12]
    return f"callguard {info['version']} ({lock})"
