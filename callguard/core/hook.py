"""The hook state of the line, and the debouncer that turns raw readings into changes.

Pure: readings and times in, changes out; no clock, no threads.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

_TIME_SLACK_S = 1e-9


class Hook(enum.StrEnum):
    """Whether any phone on the line is lifted."""

    ON = "on-hook"
    OFF = "off-hook"


@dataclass(frozen=True)
class HookChange:
    """The line changed to ``hook``; ``at`` (``time.monotonic()`` by default) is when the new
    state began, not when it was confirmed, so durations are true to within one sample."""

    hook: Hook
    at: float


class Debouncer:
    """Pure (no clock, no threads): samples in, a :class:`HookChange` out when a new state has
    held for at least ``hold_s``. Shorter drops (a hook flash, the caller-ID polarity reversal,
    ringing) are not changes. ``None`` samples (no reading) change nothing.

    >>> d = Debouncer(hold_s=1.0)
    >>> d.feed(10.0, True), d.feed(10.6, True)
    (None, None)
    >>> d.feed(11.0, True)
    HookChange(hook=<Hook.OFF: 'off-hook'>, at=10.0)
    """

    def __init__(self, hold_s: float = 1.0, initial: Hook = Hook.ON) -> None:
        if hold_s < 0:
            raise ValueError(f"hold_s is {hold_s}; expected 0 or more seconds")
        self.hold_s = hold_s
        self.state = initial
        self._pending: Hook | None = None
        self._since = 0.0

    @property
    def pending(self) -> tuple[Hook, float] | None:
        """The state seen but not yet held for ``hold_s``, and when it was first seen."""
        return None if self._pending is None else (self._pending, self._since)

    def feed(self, now: float, off_hook: bool | None) -> HookChange | None:
        """One sample at ``now`` (seconds); the change it confirms, if any."""
        if off_hook is None:
            return None
        seen = Hook.OFF if off_hook else Hook.ON
        if seen is self.state:
            self._pending = None
            return None
        if self._pending is not seen:
            self._pending, self._since = seen, now
        if now - self._since + _TIME_SLACK_S < self.hold_s:
            return None
        self.state, self._pending = seen, None
        return HookChange(seen, self._since)

    def discard_pending(self) -> None:
        """Forget a change not yet confirmed: readings stopped, so it may not have held."""
        self._pending = None
