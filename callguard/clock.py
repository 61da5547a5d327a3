"""Whether the system clock can be trusted yet.

Theory of operation
-------------------
A Raspberry Pi has no battery-backed clock: after a power cut it starts from the time it last
saved (``fake-hwclock``) or from 1970, and is right only once NTP has synchronised it, which
needs the router up and the internet reachable. Until then quiet hours would block at the wrong
times and the call log would carry wrong dates, so the daemon asks :class:`SystemClock`:

1. the kernel's own view (``adjtimex(2)`` with no change asked for): ``TIME_ERROR`` means the
   clock is not synchronised; any other state means an NTP client (systemd-timesyncd, chrony,
   ntpd) has disciplined it. This is what ``timedatectl``'s "System clock synchronized" reads;
2. where the kernel cannot be asked (not Linux), systemd-timesyncd's flag file
   ``/run/systemd/timesync/synchronized``;
3. whatever those say, a clock that reads more than a year before this release is wrong (a
   Pi that lost its saved time starts in 1970).

Each check is a system call or a ``stat()``: cheap, never a subprocess, never the network.
"""

from __future__ import annotations

import ctypes
import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

SYNC_FLAG = Path("/run/systemd/timesync/synchronized")
RELEASED = dt.date(2026, 12, 1)
"""This release's date: a clock reading a year before it has surely not been set."""
TIME_ERROR = 5
"""adjtimex(2): the clock is not synchronised."""
_TIMEX_BYTES = 512
"""Room for struct timex on any Linux ABI (208 bytes on 64-bit); all zero asks for nothing."""


@dataclass(frozen=True)
class ClockState:
    synchronised: bool
    detail: str
    """Why, in words for the status and the journal."""


def kernel_synchronised() -> bool | None:
    """The kernel's view (see the module docstring), or None where it cannot be asked."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        adjtimex = libc.adjtimex
    except (OSError, AttributeError):
        return None
    buffer = ctypes.create_string_buffer(_TIMEX_BYTES)
    state = int(adjtimex(buffer))
    if state < 0:
        return None
    return state != TIME_ERROR


class SystemClock:
    """Asks whether the clock is right; every source injectable for tests."""

    def __init__(
        self,
        *,
        kernel: Callable[[], bool | None] = kernel_synchronised,
        flag: Path = SYNC_FLAG,
        wall: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.kernel = kernel
        self.flag = flag
        self.wall = wall

    def check(self) -> ClockState:
        now = self.wall()
        if now.date() < RELEASED - dt.timedelta(days=365):
            return ClockState(
                False,
                f"the clock says {now:%Y-%m-%d}, before this CallGuard was made: it has not "
                "been set since the power came back (it needs the internet)",
            )
        kernel = self.kernel()
        if kernel is True:
            return ClockState(True, "synchronised by NTP")
        if kernel is None and self.flag.exists():
            return ClockState(True, "synchronised by systemd-timesyncd")
        return ClockState(
            False,
            "not synchronised yet (after a power cut the Pi's clock is right only once it "
            "reaches a time server over the internet): quiet hours are off until it is",
        )
