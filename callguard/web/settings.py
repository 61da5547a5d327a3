"""The Settings page's work: the few settings a family may change, checked as ``callguard
config check`` checks them and written into the config file keeping every comment.

Theory of operation
-------------------
The file is the one the page was started with (``Config.source``, as :func:`callguard.config.load`
named it). A save reads it afresh; each changed field is set with
:func:`callguard.config.set_value` (tomlkit: every other line, comment and blank line kept), which
runs :func:`callguard.config.from_dict`, the very check ``config check`` runs, on the result.
Each field is first tried alone against the file as it is, so every bad field gets its own
message next to it; only when all pass are they applied together, checked once more, and the
file written. Any problem, a bad value or a file the page may not write, writes nothing.

The write keeps the file's mode: it is atomic (temp, fsync, rename) where the page may create
files in the file's folder, and otherwise the file is rewritten in place (a folder such as
``/etc/callguard`` belongs to root, the file may be given to the service's group). The daemon
notices the change by itself and re-reads the file.
"""

from __future__ import annotations

import errno
import math
import os
import stat
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from callguard.config import (
    DEFAULT_PATH,
    MAX_CONFIG_BYTES,
    Config,
    ConfigError,
    from_dict,
    load,
    set_value,
)
from callguard.store.files import UnreadableFile, read_regular_file, write_all, write_atomically


@dataclass(frozen=True)
class Field:
    section: str
    key: str

    @property
    def name(self) -> str:
        return f"{self.section}.{self.key}"

    @property
    def form_name(self) -> str:
        return f"{self.section}_{self.key}"


FIELDS: Final = (
    Field("screening", "mode"),
    Field("screening", "quiet_hours"),
    Field("warning", "text"),
    Field("warning", "line"),
    Field("warning", "line_text"),
    Field("alerts", "grooming"),
    Field("alerts", "impersonation"),
    Field("alerts", "repeated_calls"),
    Field("alerts", "unit_problem_minutes"),
    Field("alerts", "weekly_summary"),
)

CHECKBOXES: Final = frozenset({"warning.line", "alerts.grooming", "alerts.impersonation"})
"""Fields the form shows as a checkbox: ticked sends ``on``, unticked sends nothing."""
NUMBERS: Final = {"alerts.repeated_calls": int, "alerts.unit_problem_minutes": float}
"""Fields typed as numbers; the form sends text, the config holds the number."""

MODES: Final = (
    (
        "open",
        "Open",
        "Every call rings as normal. Numbers on the block list are still blocked, but unknown "
        "callers get no warning.",
    ),
    (
        "guarded",
        "Guarded (recommended)",
        "Unknown callers ring, and a warning is spoken in the room first, so the resident "
        "knows to be careful.",
    ),
    (
        "allowlist-only",
        "Allow list only",
        "Only numbers on the allow list ring. Every other call is answered and put down "
        "before the phone rings.",
    ),
)

MAX_FIELD_CHARS: Final = 2000

DEFAULT_CONFIG: Final = DEFAULT_PATH
"""The file a volunteer edits when the page was started without one."""


class NotWritable(Exception):
    """The config file cannot be written by this process; the message says why and the fix."""


def config_path(config: Config) -> Path | None:
    """The file the page was started with, or None when it runs on the defaults (or on a
    config that came from no file)."""
    source = config.source
    if not source or source.startswith("("):
        return None
    path = Path(source)
    return path if path.is_file() else None


def read_text(path: Path) -> str:
    raw = read_regular_file(path, max_bytes=MAX_CONFIG_BYTES, what="the config file")
    return raw.decode("utf-8")


def current(path: Path | None, started: Config) -> tuple[Config, str | None]:
    """The config as the file says now (the daemon re-reads it), and a problem reading it."""
    if path is None:
        return started, None
    try:
        return load(str(path)), None
    except ConfigError as exc:
        return started, str(exc)


def values_of(config: Config) -> dict[str, Any]:
    return {f.name: getattr(getattr(config, f.section), f.key) for f in FIELDS}


def from_form(form: Mapping[str, str]) -> dict[str, Any]:
    """The submitted values, typed as the config holds them (text with Windows line ends made
    plain, checkboxes as true or false, numbers as numbers where they read as one; anything
    else is left as typed, for the config's check to say what is wrong with it)."""
    values: dict[str, Any] = {}
    for f in FIELDS:
        if f.name in CHECKBOXES:
            values[f.name] = form.get(f.form_name) == "on"
            continue
        text = form.get(f.form_name, "")[:MAX_FIELD_CHARS].replace("\r\n", "\n").strip()
        kind = NUMBERS.get(f.name)
        values[f.name] = text if kind is None else number_from(text, kind)
    return values


def number_from(text: str, kind: type) -> Any:
    """``text`` as a number of ``kind``: an int, a float (for an int field too, so the check
    says it must be whole), or the text itself when it is no finite number."""
    if kind is int:
        try:
            return int(text)
        except ValueError:
            pass
    try:
        number = float(text)
    except ValueError:
        return text
    if not math.isfinite(number):
        return text
    return number


def form_text(value: Any) -> str:
    """A value as its form field shows it: a whole float without its ``.0``."""
    if isinstance(value, bool):
        return "on" if value else ""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return str(value)


@dataclass
class Outcome:
    text: str | None
    """The new file's text, or None when nothing is to be written."""
    errors: dict[str, str]
    """By field name: config check's message."""
    general: list[str]
    changed: list[str]


def edit(text: str, source: str, old: Mapping[str, Any], new: Mapping[str, Any]) -> Outcome:
    """The file's text with the changed values, or the problems (nothing to write)."""
    changed = [f for f in FIELDS if new[f.name] != old[f.name]]
    errors: dict[str, str] = {}
    general: list[str] = []
    for f in changed:
        try:
            set_value(text, f.section, f.key, new[f.name], source)
        except ConfigError as exc:
            mine = [p for p in exc.problems if p.startswith(f"{f.name} ")]
            if mine:
                errors[f.name] = " ".join(mine)
            general += [p for p in exc.problems if p not in mine and p not in general]
    if errors or general or not changed:
        return Outcome(None, errors, general, [f.name for f in changed])
    result = text
    try:
        for f in changed:
            result, _ = set_value(result, f.section, f.key, new[f.name], source)
        from_dict(tomllib.loads(result), source)
    except ConfigError as exc:
        return Outcome(None, {}, list(exc.problems), [f.name for f in changed])
    return Outcome(result, {}, [], [f.name for f in changed])


def check_writable(path: Path) -> None:
    """Raise :class:`NotWritable` if this process cannot write ``path``, saying the fix."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0))
    except OSError as exc:
        raise NotWritable(_why_not(path, exc)) from None
    os.close(fd)


def write(path: Path, text: str) -> None:
    """Make ``text`` the file's content, keeping its mode (see the module docstring)."""
    check_writable(path)
    payload = text.encode("utf-8")
    st = os.stat(path)
    if os.access(path.parent, os.W_OK | os.X_OK) and st.st_uid == os.geteuid():
        try:
            write_atomically(path, payload, mode=stat.S_IMODE(st.st_mode))
            return
        except OSError:
            pass  # a read-only folder the access check did not see: write in place
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0))
        try:
            write_all(fd, payload)
            os.ftruncate(fd, len(payload))
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        raise NotWritable(_why_not(path, exc)) from None


def _why_not(path: Path, exc: OSError) -> str:
    if exc.errno == errno.EROFS:
        return (
            f"The family page is not allowed to change {path}: its service sees that folder "
            "as read-only. Nothing was saved. A volunteer can fix it on the Pi: add "
            f"ReadWritePaths={path.parent} to callguard-web.service (sudo systemctl edit "
            "callguard-web), then sudo systemctl restart callguard-web. Or change the setting "
            f"by hand: sudo nano {path}, then: sudo callguard config check"
        )
    if exc.errno in (errno.EACCES, errno.EPERM):
        return (
            f"The family page is not allowed to change {path} (it belongs to another user). "
            "Nothing was saved. A volunteer can fix it on the Pi: sudo chgrp callguard "
            f"{path} && sudo chmod g+w {path}. Or change the setting by hand: sudo nano {path}, "
            "then: sudo callguard config check"
        )
    if exc.errno == errno.ENOENT:
        return (
            f"The config file {path} is not there any more, so nothing was saved. A volunteer "
            "can put it back on the Pi (sudo callguard setup)."
        )
    return f"{path} cannot be written ({exc.strerror or exc}). Nothing was saved."


__all__ = [
    "CHECKBOXES",
    "DEFAULT_CONFIG",
    "FIELDS",
    "MODES",
    "NUMBERS",
    "NotWritable",
    "Outcome",
    "UnreadableFile",
    "check_writable",
    "config_path",
    "current",
    "edit",
    "form_text",
    "from_form",
    "number_from",
    "read_text",
    "values_of",
    "write",
]
