"""The call log: every call, appended, kept for ``storage.log_retention_days``."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable
from typing import Any

from callguard.store.folder import Clock, StoreFolder, now_local, rows
from callguard.store.jsonfile import Recovery


class CallLog(StoreFolder):
    """``calls.json`` in the store's folder."""

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        retention_days: int = 365,
        clock: Clock = now_local,
        on_recovery: Callable[[Recovery], None] | None = None,
    ) -> None:
        super().__init__(directory, clock=clock, on_recovery=on_recovery)
        self.retention_days = retention_days
        self.calls_path = self.dir / "calls.json"

    # -- call log ------------------------------------------------------------------------

    def append(self, call: dict[str, Any]) -> None:
        """Add one call to the log and drop calls older than the retention period."""
        cutoff = (self.clock() - dt.timedelta(days=self.retention_days)).isoformat()
        with self._db(self.calls_path) as db:
            table = db.table("calls")
            table.insert(call)
            stale = [d.doc_id for d in table.all() if str(d.get("started", "")) < cutoff]
            if stale:
                table.remove(doc_ids=stale)

    def read(self, limit: int | None = None) -> list[dict[str, Any]]:
        """The call log, oldest first; with ``limit``, the newest ``limit`` calls."""
        docs = [dict(d) for d in rows(self._tables(self.calls_path), "calls")]
        docs.sort(key=lambda d: str(d.get("started", "")))
        return docs[-limit:] if limit else docs
