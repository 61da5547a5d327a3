"""The index reloader: re-reads a changed lists file and builds its index off the main loop.

Building the index of 100,000 numbers takes hundreds of milliseconds (seconds on a Pi); a
blocked caller has about 200 ms before the first ring. So the main loop never reloads: this
thread looks at the file's signature every ``interval_s`` (one ``stat()``), and when it changed
(or :meth:`poke` says so), :meth:`~callguard.store.index.ListIndex.refresh` builds the new index
aside and swaps it in with one assignment. A call arriving meanwhile is screened against the
index in force; the daemon gives a reload already under way a short grace
(:meth:`IndexReloader.current_within`, tens of milliseconds), so a number the family added a
moment ago counts when the list is small, while a huge list never holds up a seizure.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from callguard.store.index import ListIndex

log = logging.getLogger(__name__)


class IndexReloader:
    def __init__(
        self, index: ListIndex, interval_s: float, *, on_reload: Callable[[], None]
    ) -> None:
        self.index = index
        self.interval_s = interval_s
        self.on_reload = on_reload
        self._wake = threading.Event()
        self._refreshed = threading.Condition()
        self._force = False
        self._stopping = False
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="index-reloader", daemon=True)
            self._thread.start()

    def poke(self, force: bool = False) -> None:
        """Look now (``force``: read the file again even if it looks unchanged)."""
        self._force = self._force or force
        self._wake.set()

    def current_within(self, budget_s: float) -> bool:
        """Wait up to ``budget_s`` for the index to match the files as they are now; True if
        it does. Returns at once when nothing changed (two stat()s)."""
        if self.index.is_current():
            return True
        self.poke()
        with self._refreshed:
            return self._refreshed.wait_for(self.index.is_current, budget_s)

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def _run(self) -> None:
        failing = False
        while not self._stopping:
            self._wake.wait(self.interval_s)
            self._wake.clear()
            if self._stopping:
                return
            try:
                if self._force:
                    self._force = False
                    self.index.loaded = False
                reloaded = self.index.refresh()
            except Exception:
                if not failing:  # said once, not every quarter of a second
                    log.exception("could not reload the lists; screening with the last good copy")
                failing = True
                continue
            finally:
                with self._refreshed:
                    self._refreshed.notify_all()
            failing = False
            if reloaded:
                self.on_reload()
