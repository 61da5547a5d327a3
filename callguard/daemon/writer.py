"""The writer: the daemon's disk writes, on their own thread, so the main loop never waits.

Theory of operation
-------------------
The main loop must be free for the next caller ID at every moment: a seizure has ~200 ms before
the first ring, and an SD card can take longer than that for one fsync. So the loop only hands
work over, and one thread writes:

* **call records**, in order, each kept until the card has taken it: a write that fails (a full
  or read-only card) is retried with a back-off (:data:`RETRY_S` doubling to
  :data:`RETRY_MAX_S`), the records waiting meanwhile (at most :data:`PENDING_MAX`; the oldest
  goes first when a flood would pass that) are counted in the status (``unlogged_calls``);
* **the status**, latest only: a newer status replaces one not yet written, and it is written at
  most every :data:`STATUS_EVERY_S`, so a flood of RINGs cannot become a flood of writes;
* **the grooming alert**, raised at once (it must survive a restart).

The writer's thread first calls ``open_log`` (the call log opens its database, so its files are
there from the start; :meth:`Writer.start` waits for that, bounded). :meth:`Writer.stop` writes
what is waiting (bounded by ``timeout_s``), then calls ``close_log`` on the writer's thread (the
call log keeps its database open between calls and closes it then), before it returns.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

RETRY_S = 0.5
RETRY_MAX_S = 30.0
STATUS_EVERY_S = 0.25
PENDING_MAX = 10_000


class Writer:
    """Writes call records, the status and the alert on its own thread (module docstring)."""

    def __init__(
        self,
        *,
        append_call: Callable[[dict[str, Any]], None],
        write_status: Callable[[dict[str, Any]], None],
        raise_alert: Callable[[dict[str, Any]], Any],
        open_log: Callable[[], None] = lambda: None,
        close_log: Callable[[], None] = lambda: None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._append_call = append_call
        self._open_log = open_log
        self._opened = threading.Event()
        self._close_log = close_log
        self._write_status = write_status
        self._raise_alert = raise_alert
        self._monotonic = monotonic
        self._cond = threading.Condition()
        self._calls: collections.deque[dict[str, Any]] = collections.deque(maxlen=PENDING_MAX)
        self._alerts: collections.deque[dict[str, Any]] = collections.deque()
        self._status: dict[str, Any] | None = None
        self._status_written_at = -1e9
        self._retry_at = 0.0
        self._retry_s = RETRY_S
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.failing: str | None = None
        """Why the last call record could not be written, or None while writes succeed."""

    # -- from the main loop (never blocks) ---------------------------------------------------------

    def log_call(self, record: dict[str, Any]) -> None:
        with self._cond:
            if len(self._calls) == self._calls.maxlen:
                log.error("%d call records wait to be written; the oldest is dropped", PENDING_MAX)
            self._calls.append(record)
            self._cond.notify()

    def status(self, status: dict[str, Any]) -> None:
        with self._cond:
            self._status = status
            self._cond.notify()

    def alert(self, call: dict[str, Any]) -> None:
        with self._cond:
            self._alerts.append(call)
            self._cond.notify()

    @property
    def unlogged(self) -> int:
        """Call records not yet on the card."""
        with self._cond:
            return len(self._calls)

    # -- the thread --------------------------------------------------------------------------------

    def start(self, wait_open_s: float = 0.0) -> None:
        """Start the thread; wait up to ``wait_open_s`` for its ``open_log`` (at start-up only:
        a migration of an old log may take longer, and carries on meanwhile)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="writer", daemon=True)
            self._thread.start()
        self._opened.wait(wait_open_s)

    def stop(self, timeout_s: float = 3.0) -> None:
        """Write what waits (for at most ``timeout_s``), close the log, then end the thread."""
        with self._cond:
            self._stopping = True
            self._retry_at = 0.0  # one last try for records waiting on a retry
            self._cond.notify()
        if self._thread is None:
            self._close()  # never started: nothing else can be using the log
        else:
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                log.error(
                    "the writer did not finish within %g s; %d call(s) unwritten",
                    timeout_s,
                    self.unlogged,
                )
            self._thread = None

    def flush(self) -> None:
        """Write everything now, on the caller's thread (tests, and stop without a thread)."""
        self._write_once(final=True)

    def _run(self) -> None:
        try:
            self._open_log()
        except Exception:
            log.exception("could not open the call log (the first call tries again)")
        finally:
            self._opened.set()
        while True:
            with self._cond:
                while not self._stopping and not self._due():
                    self._cond.wait(self._wait_s())
                stopping = self._stopping
            self._write_once(final=stopping)
            if stopping:
                self._close()
                return

    def _close(self) -> None:
        try:
            self._close_log()
        except Exception:
            log.exception("could not close the call log")

    def _due(self) -> bool:
        now = self._monotonic()
        calls_due = bool(self._calls) and now >= self._retry_at
        status_due = self._status is not None and now - self._status_written_at >= STATUS_EVERY_S
        return bool(self._alerts) or calls_due or status_due

    def _wait_s(self) -> float | None:
        now = self._monotonic()
        waits = []
        if self._calls:
            waits.append(max(0.0, self._retry_at - now))
        if self._status is not None:
            waits.append(max(0.0, self._status_written_at + STATUS_EVERY_S - now))
        return min(waits) + 0.001 if waits else None

    def _write_once(self, final: bool) -> None:
        with self._cond:
            alerts = list(self._alerts)
            self._alerts.clear()
        for call in alerts:
            try:
                self._raise_alert(call)
            except Exception:
                log.exception("could not write the grooming alert; it stays on in memory")
        self._write_calls(final)
        with self._cond:
            status = self._status
            now = self._monotonic()
            if status is None or (not final and now - self._status_written_at < STATUS_EVERY_S):
                status = None
            else:
                self._status = None
                self._status_written_at = now
        if status is not None:
            try:
                self._write_status(status)
            except Exception:
                log.exception("could not write the status file")

    def _write_calls(self, final: bool) -> None:
        while True:
            with self._cond:
                if not self._calls or (not final and self._monotonic() < self._retry_at):
                    return
                record = self._calls[0]
            try:
                self._append_call(record)
            except Exception as exc:
                with self._cond:
                    self.failing = str(exc)
                    self._retry_at = self._monotonic() + self._retry_s
                    self._retry_s = min(RETRY_MAX_S, self._retry_s * 2)
                    waiting = len(self._calls)
                log.error(
                    "could not write the call log (%s); %d call(s) kept in memory until it can",
                    exc,
                    waiting,
                )
                return
            with self._cond:
                if self._calls and self._calls[0] is record:
                    self._calls.popleft()
                self.failing = None
                self._retry_s = RETRY_S
