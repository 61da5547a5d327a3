"""Live state files: the daemon's status and the grooming alert.

The status changes with every call and is only true while the daemon runs, so it lives on
tmpfs (``storage.runtime_dir``, ``/run/callguard``: systemd's ``RuntimeDirectory``, kept after
a stop so ``callguard status`` still works) and costs the SD card nothing; where that folder
does not exist (a developer's machine, the tests) it lives in ``storage.dir``. The alert must
survive a power cut: it is kept in ``storage.dir``, so ``callguard ack`` can clear it while the
daemon runs (the daemon follows the file's signature).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from tinydb.table import Document

from callguard.store.folder import StoreFolder, exists, who


class StateFiles(StoreFolder):
    """``status.json`` (on tmpfs where there is one) and ``alert.json`` (on the card)."""

    def __init__(
        self, directory: str | os.PathLike[str], *, runtime_dir: str = "", **kw: Any
    ) -> None:
        super().__init__(directory, **kw)
        self.runtime_dir = Path(runtime_dir) if runtime_dir else None

    @property
    def status_path(self) -> Path:
        """In ``runtime_dir`` when that folder exists, else in the store's folder."""
        if self.runtime_dir is not None and self.runtime_dir.is_dir():
            return self.runtime_dir / "status.json"
        return self.dir / "status.json"

    def write_status(self, status: dict[str, Any]) -> None:
        """Replace the daemon's status (one document, written atomically)."""
        with self._db(self.status_path) as db:
            table = db.table("status")
            table.upsert(Document(status, doc_id=1))

    def read_status(self) -> dict[str, Any] | None:
        doc = self._tables(self.status_path).get("status", {}).get("1")
        return dict(doc) if doc else None

    # -- the grooming alert -----------------------------------------------------------------
    # Kept in its own file so that it survives a restart and `callguard ack` can clear it
    # while the daemon runs (the daemon watches the file's signature).

    @property
    def alert_path(self) -> Path:
        return self.dir / "alert.json"

    def raise_alert(self, call: dict[str, Any]) -> dict[str, Any]:
        alert = {"active": True, "raised": self.clock().isoformat(timespec="seconds"), "call": call}
        with self._db(self.alert_path) as db:
            db.table("alert").upsert(Document(alert, doc_id=1))
        return alert

    def read_alert(self) -> dict[str, Any] | None:
        """The last alert (active or acknowledged), or None if there never was one."""
        doc = self._tables(self.alert_path).get("alert", {}).get("1")
        return dict(doc) if isinstance(doc, dict) else None

    def alert_active(self) -> bool:
        alert = self.read_alert()
        return bool(alert and alert.get("active"))

    def ack_alert(self, by: str | None = None) -> dict[str, Any] | None:
        """Clear the alert; returns it as it was, or None if none was active."""
        if not exists(self.alert_path):
            return None
        with self._db(self.alert_path) as db:
            table = db.table("alert")
            doc = table.get(doc_id=1)
            if not isinstance(doc, dict) or not doc.get("active"):
                return None
            acked = {
                **doc,
                "active": False,
                "acknowledged": self.clock().isoformat(timespec="seconds"),
                "acknowledged_by": by or who(),
            }
            table.upsert(Document(acked, doc_id=1))
            return dict(doc)
