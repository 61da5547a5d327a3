"""Live state files: the daemon's status and the grooming alert.

The status changes with every call and is only true while the daemon runs, so it lives on
tmpfs (``storage.runtime_dir``, ``/run/callguard``: systemd's ``RuntimeDirectory``, kept after
a stop so ``callguard status`` still works) and costs the SD card nothing; where that folder
does not exist (a developer's machine, the demo, the tests) it lives in ``storage.dir/live``: a
folder of its own, so its writes (a rename each, several a second on a busy line) leave the
storage folder itself unchanged, which the seize path's first look reads as "the lists in force
are current" (:meth:`~callguard.store.index.ListIndex.folder_unchanged`). It is replaced
whole (a temp file renamed over it, under its lock, never through a link) and keeps no backup:
a status brought back from an older copy would be a lie, and could make a restarted daemon log
a call "cut short" that had ended long before. A missing status is no status; a damaged one is
reported and read as none. There is nothing to fsync: a power cut ends the daemon too.

The alert must survive a power cut: it is kept in ``storage.dir`` on the store's power-safe
storage (:class:`~callguard.store.jsonfile.AtomicJSONStorage`: fsynced, with a backup it is
recovered from), so ``callguard ack`` can clear it while the daemon runs (the daemon follows
the file's signature).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tinydb.table import Document

from callguard.store.files import (
    DEFAULT_FILE_MODE,
    StoreError,
    file_type,
    read_store_file,
    refuse_odd_file,
    sibling,
    unlink_quietly,
    write_atomically,
)
from callguard.store.folder import StoreFolder, exists, storage_error, who
from callguard.store.jsonfile import parse_tables
from callguard.store.lock import locked

log = logging.getLogger(__name__)

LIVE_DIR = "live"
"""The status's folder inside ``storage.dir`` where ``storage.runtime_dir`` does not exist."""


class StateFiles(StoreFolder):
    """``status.json`` (on tmpfs where there is one) and ``alert.json`` (on the card)."""

    def __init__(
        self, directory: str | os.PathLike[str], *, runtime_dir: str = "", **kw: Any
    ) -> None:
        super().__init__(directory, **kw)
        self.runtime_dir = Path(runtime_dir) if runtime_dir else None

    @property
    def status_path(self) -> Path:
        """In ``runtime_dir`` when that folder exists, else in :data:`LIVE_DIR` of the store's
        folder (module docstring)."""
        if self.runtime_dir is not None and self.runtime_dir.is_dir():
            return self.runtime_dir / "status.json"
        return self.dir / LIVE_DIR / "status.json"

    def write_status(self, status: dict[str, Any]) -> None:
        """Replace the daemon's status (one document, whole or not at all; no backup)."""
        path = self.status_path
        try:
            text = json.dumps({"status": {"1": status}}, ensure_ascii=False, separators=(",", ":"))
        except (TypeError, ValueError, RecursionError) as exc:
            raise StoreError(f"{path}: the status cannot be saved as JSON ({exc})") from None
        try:
            if path.parent.parent == self.dir:
                self._status_folder(path.parent)
            with locked(path):
                _replace(path, (text + "\n").encode("utf-8"))
        except OSError as exc:
            raise storage_error(path, exc) from None

    def _status_folder(self, folder: Path) -> None:
        """Make :data:`LIVE_DIR` in the store's folder if it is not there; never use one that
        is a link (or anything but a folder): the status would be written wherever it led."""
        self._prepare_write()
        with contextlib.suppress(FileExistsError):
            os.mkdir(folder)
        st = os.lstat(folder)
        if not stat.S_ISDIR(st.st_mode):
            kind = "a symbolic link" if stat.S_ISLNK(st.st_mode) else file_type(st.st_mode)
            raise StoreError(
                f"{folder} is {kind}, not a folder. CallGuard does not follow links in its "
                "folder (a link there could make it write somewhere else). Remove it "
                f"(sudo rm {folder}) and try again; it is made again as needed."
            )

    def read_status(self) -> dict[str, Any] | None:
        """The daemon's last status, or None if there is none (never an older copy)."""
        path = self.status_path
        try:
            raw, _ = read_store_file(path)
        except FileNotFoundError:
            return None
        tables, problem = parse_tables(raw)
        doc = (tables or {}).get("status", {}).get("1")
        if problem is not None or not isinstance(doc, dict):
            log.warning("%s is not a status (%s); read as none", path, problem or "no document")
            return None
        return dict(doc)

    # -- the grooming alert -----------------------------------------------------------------
    # Kept in its own file so that it survives a restart and `callguard ack` can clear it
    # while the daemon runs (the daemon watches the file's signature).

    @property
    def alert_path(self) -> Path:
        return self.dir / "alert.json"

    def raise_alert(self, call: dict[str, Any]) -> dict[str, Any]:
        """Raise the alert for ``call`` (a call record). Every call that raised it since the
        last acknowledgement is kept (``calls``, oldest first; ``call`` is the newest)."""
        raised = self.clock().isoformat(timespec="seconds")
        with self._db(self.alert_path) as db:
            table = db.table("alert")
            old = table.get(doc_id=1)
            calls: list[Any] = []
            if isinstance(old, dict) and old.get("active"):
                calls = [c for c in alert_calls(old) if _key(c) != _key(call)]
            alert = {
                "active": True,
                "raised": raised,
                "call": call,
                "calls": [*calls, {**call, "alert_raised": raised}],
            }
            table.upsert(Document(alert, doc_id=1))
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


def alert_calls(alert: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The calls an alert was raised for, oldest first (an alert from before the list was kept
    has only its ``call``)."""
    if not alert:
        return []
    calls = alert.get("calls")
    if isinstance(calls, list):
        return [c for c in calls if isinstance(c, dict)]
    call = alert.get("call")
    return [call] if isinstance(call, dict) else []


def so_far_s(call: Mapping[str, Any]) -> float | None:
    """How long an alerting call had lasted: its duration if it has ended, else the time from
    its start to the alert (for ``callguard status`` and the family page)."""
    duration = call.get("duration_s")
    if isinstance(duration, int | float):
        return float(duration)
    try:
        started = dt.datetime.fromisoformat(str(call.get("started")))
        raised = dt.datetime.fromisoformat(str(call.get("alert_raised")))
    except ValueError:
        return None
    return max(0.0, (raised - started).total_seconds())


def _key(call: dict[str, Any]) -> tuple[Any, Any]:
    return call.get("call_id"), call.get("started")


def _replace(path: Path, payload: bytes) -> None:
    """``payload`` as the content of ``path``, through a new temp file renamed over it (under
    the file's lock): never written through a link, never half written; live state on tmpfs,
    so not fsynced. The backup earlier versions kept is removed."""
    current = refuse_odd_file(path)
    mode = DEFAULT_FILE_MODE if current is None else current.st_mode & 0o7777
    unlink_quietly(sibling(path, ".tmp"))  # an earlier version's, left by a killed writer
    write_atomically(path, payload, mode, durable=False, to_folder_owner=True)
    unlink_quietly(sibling(path, ".bak"))
