"""Logging for every CallGuard command: one handler, journald's format under systemd.

Under systemd, stderr is a stream into journald, which sets ``JOURNAL_STREAM`` to
that stream's ``device:inode`` and reads a ``<N>`` syslog-priority prefix at the start of each
line (``SyslogLevelPrefix=yes``, the default). :func:`setup_logging` then writes
``<3>callguard.modem: message`` with no timestamp (the journal adds its own), so
``journalctl -p warning`` shows exactly the warnings. Elsewhere it writes
``2026-11-24 09:30:00 WARNING callguard.modem: message``.

journald cuts a stream into entries at every newline, whatever the indentation, so a traceback
necessarily becomes several journal entries. Each record is nevertheless written in one
``write()`` under the handler's lock (lines of concurrent records never interleave), its
continuation lines are indented so they read as one record, and under the journal every line
carries the record's priority: a traceback of an error is filed as an error, all of it, instead
of its first line alone. The journal stream is only believed when ``JOURNAL_STREAM`` names the
very stream being written to, as ``systemd.exec(5)`` asks: a child whose stderr was redirected
to a file inherits the variable but must not write ``<6>`` prefixes into that file.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from typing import Final, TextIO

_INDENT: Final = "    "
_PLAIN_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_JOURNAL_FORMAT: Final = "%(name)s: %(message)s"
_DATE_FORMAT: Final = "%Y-%m-%d %H:%M:%S"


def journal_priority(levelno: int) -> int:
    """The syslog priority for a logging level: DEBUG 7, INFO 6, WARNING 4, ERROR 3, CRITICAL 2.

    Levels in between take the priority of the standard level below them.
    """
    if levelno >= logging.CRITICAL:
        return 2
    if levelno >= logging.ERROR:
        return 3
    if levelno >= logging.WARNING:
        return 4
    if levelno >= logging.INFO:
        return 6
    return 7


class JournalFormatter(logging.Formatter):
    """One record as lines: the first as formatted, the rest indented.

    With ``journal=True`` there is no timestamp and every line starts with the record's
    ``<N>`` syslog priority; otherwise lines start with a local timestamp and the level name.
    """

    def __init__(self, *, journal: bool) -> None:
        super().__init__(_JOURNAL_FORMAT if journal else _PLAIN_FORMAT, _DATE_FORMAT)
        self.journal = journal

    def format(self, record: logging.LogRecord) -> str:
        lines = super().format(record).splitlines() or [""]
        while len(lines) > 1 and not lines[-1].strip():
            lines.pop()
        out = [lines[0]] + [_INDENT + line if line.strip() else "" for line in lines[1:]]
        if self.journal:
            prefix = f"<{journal_priority(record.levelno)}>"
            out = [prefix + line for line in out]
        return "\n".join(out)


def stream_is_journal(stream: TextIO, environ: Mapping[str, str]) -> bool:
    """Whether ``stream`` is the journal stream named by ``JOURNAL_STREAM`` (``device:inode``).

    A stream without a file descriptor (a ``StringIO``) cannot be checked and is taken at the
    variable's word, which is what a test that passes one means.
    """
    value = environ.get("JOURNAL_STREAM", "")
    device, sep, inode = value.partition(":")
    if not sep or not device.isdigit() or not inode.isdigit():
        return False
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):
        return True
    try:
        st = os.fstat(fd)
    except OSError:
        return False
    return (st.st_dev, st.st_ino) == (int(device), int(inode))


class _CallGuardHandler(logging.StreamHandler[TextIO]):
    """The handler :func:`setup_logging` installs; its class marks it for replacement."""


class _StderrHandler(_CallGuardHandler):
    """Writes to whatever ``sys.stderr`` is when a record comes, not the one it was made with:
    a caller that swaps stderr (a test's capture, then closed) never leaves it writing to a
    closed file."""

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass


def setup_logging(
    level: int = logging.INFO,
    *,
    stream: TextIO | None = None,
    environ: Mapping[str, str] | None = None,
) -> None:
    """Send every log record to ``stream`` (default stderr) in the journal's format or plain.

    Configures the root logger. Calling it again replaces the handler it installed before, so
    records are never written twice.
    """
    out = sys.stderr if stream is None else stream
    env = os.environ if environ is None else environ
    handler = _StderrHandler() if stream is None else _CallGuardHandler(out)
    handler.setFormatter(JournalFormatter(journal=stream_is_journal(out, env)))
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _CallGuardHandler)]:
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(level)
