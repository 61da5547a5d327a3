"""Talking to systemd: readiness and watchdog notifications, and logs the journal understands.

Theory of operation
-------------------
**Notifications.** With ``Type=notify`` systemd passes ``NOTIFY_SOCKET`` in the environment: the
address of a Unix datagram socket, either a path (``/run/systemd/notify``) or, when it starts
with ``@``, a name in the abstract namespace (the ``@`` stands for a leading NUL byte). A
notification is one datagram of newline-separated ``KEY=value`` assignments, such as
``READY=1\\nSTATUS=Listening``. The kernel attaches the sender's credentials, so systemd knows
which process spoke (``NotifyAccess=main`` ignores everyone but the daemon itself). That is the
whole protocol: :class:`Notifier` sends these datagrams itself, no libsystemd needed.

Every send is best effort. A daemon guarding a telephone line must not die because systemd was
being re-executed or the socket was briefly missing, so :meth:`Notifier.send` catches every
``OSError``, logs the first of a run of failures at debug level (the next success re-arms it)
and reports ``False``. The socket has a short send timeout, so a systemd that is not reading
cannot stall the caller for long either. A lock makes sends safe from any thread (the watchdog
usually pings from its own).

Values are sanitised: a newline inside a status text would start a new assignment, so a caller
name containing ``\\nREADY=1`` could otherwise forge a notification. Control characters become
spaces.

**Watchdog.** With ``WatchdogSec=`` systemd sets ``WATCHDOG_USEC`` (the deadline) and
``WATCHDOG_PID`` (the process it applies to; a child that inherited the environment must not
take it for its own). :attr:`Notifier.watchdog_interval_s` is half the deadline, as
``sd_watchdog_enabled(3)`` recommends, or ``None`` when there is no watchdog for this process.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import threading
import time
from collections.abc import Mapping
from typing import Final

__all__ = [
    "Notifier",
    "parse_notify_address",
]

log = logging.getLogger(__name__)

SEND_TIMEOUT_S: Final = 1.0
"""The longest a notification may block when systemd is not reading its socket."""

_CONTROL_CHARS_RE: Final = re.compile(r"[\x00-\x1f\x7f]")


def parse_notify_address(value: str) -> str | bytes | None:
    """The ``sendto`` address for a ``NOTIFY_SOCKET`` value, or ``None`` if it is not usable.

    ``/run/systemd/notify`` is a path; ``@name`` is ``name`` in the abstract namespace (returned
    as bytes starting with NUL). Other forms (``vsock:``, relative paths) are not for us.
    """
    if value.startswith("/"):
        return value
    if value.startswith("@") and len(value) > 1:
        return b"\0" + value[1:].encode()
    return None


def _clean(text: str) -> str:
    return _CONTROL_CHARS_RE.sub(" ", text)


class Notifier:
    """Sends ``sd_notify`` messages to systemd; does nothing when not run by systemd.

    ``environ`` defaults to ``os.environ``; it is read once, here.
    """

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        self.socket_path: str = env.get("NOTIFY_SOCKET", "")
        self._address = parse_notify_address(self.socket_path)
        self.enabled: bool = self._address is not None
        self.watchdog_usec: int | None = _watchdog_usec(env)
        self.watchdog_interval_s: float | None = (
            None if self.watchdog_usec is None else self.watchdog_usec / 2 / 1_000_000
        )
        self._lock = threading.Lock()
        self._socket: socket.socket | None = None
        self._failing = False
        if self.socket_path and not self.enabled:
            log.debug("NOTIFY_SOCKET=%r is not a path or @name; not notifying", self.socket_path)

    def __repr__(self) -> str:
        return (
            f"Notifier(socket={self.socket_path!r}, enabled={self.enabled}, "
            f"watchdog_interval_s={self.watchdog_interval_s})"
        )

    def ready(self, status: str = "") -> None:
        """Start-up (or a reload) is complete; ``status`` becomes the unit's status line."""
        self.send("READY=1", f"STATUS={status}" if status else None)

    def status(self, text: str) -> None:
        """A one-line status shown by ``systemctl status``."""
        self.send(f"STATUS={text}")

    def watchdog(self) -> None:
        """Still alive: call every :attr:`watchdog_interval_s` seconds."""
        self.send("WATCHDOG=1")

    def reloading(self, monotonic_usec: int | None = None) -> None:
        """A reload has begun; send :meth:`ready` when it is done.

        ``MONOTONIC_USEC`` is the ``CLOCK_MONOTONIC`` time of the request, which systemd 253+
        needs to pair a reload with its ``READY=1``; older versions ignore it.
        """
        usec = time.monotonic_ns() // 1000 if monotonic_usec is None else monotonic_usec
        self.send("RELOADING=1", f"MONOTONIC_USEC={usec}")

    def stopping(self) -> None:
        """Shutdown has begun."""
        self.send("STOPPING=1")

    def extend_timeout(self, usec: int) -> None:
        """Ask for ``usec`` more microseconds to finish starting or stopping (a slow modem)."""
        self.send(f"EXTEND_TIMEOUT_USEC={usec}")

    def send(self, *assignments: str | None) -> bool:
        """Send ``KEY=value`` assignments (``None`` skipped) as one datagram; never raises.

        Control characters in each assignment become spaces, so none can smuggle in another.
        Returns whether the datagram was sent: ``False`` when disabled or on any error.
        """
        if self._address is None:
            return False
        message = "\n".join(_clean(a) for a in assignments if a is not None)
        data = message.encode("utf-8", "replace")
        with self._lock:
            try:
                if self._socket is None:
                    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                    sock.settimeout(SEND_TIMEOUT_S)
                    self._socket = sock
                self._socket.sendto(data, self._address)
            except (OSError, ValueError) as exc:
                self._close_locked()
                if not self._failing:
                    self._failing = True
                    log.debug("systemd notification to %s failed: %s", self.socket_path, exc)
                return False
            if self._failing:
                self._failing = False
                log.debug("systemd notifications to %s work again", self.socket_path)
            return True

    def close(self) -> None:
        """Close the socket; a later send opens a new one."""
        with self._lock:
            self._close_locked()

    def _close_locked(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None


def _watchdog_usec(env: Mapping[str, str]) -> int | None:
    pid = env.get("WATCHDOG_PID")
    if pid is not None and pid.strip() != str(os.getpid()):
        return None
    try:
        usec = int(env.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    return usec if usec > 0 else None


# ---------------------------------------------------------------------------------- logging
