"""The family's lists and the call log, in TinyDB on power-safe storage.

Theory of operation
-------------------
One directory (``storage.dir``) holds ``lists.json`` (tables ``allow``, ``block``, ``protect``)
and ``calls.json`` (table ``calls``), each written through
:class:`~callguard.storage.AtomicJSONStorage` (temp file, fsync, rename, one backup) and guarded
by the advisory lock of :func:`~callguard.storage.locked`, which every read-check-write here
holds from start to end, so the CLI and the daemon never lose each other's writes. A plain
read (the lists, the daemon's index, the call log, the status, the alert) takes no lock and
needs no write access, so a card the kernel has remounted read-only still gives the daemon
every list; a write there fails with words that say so (the card is read-only, or full, or
the user may not write: three different fixes).

An entry's ``number`` is its key: E.164 (``+441707354000``), a short code's digits (``999``),
or a prefix rule written with a trailing star (``+44870*``). Adding a number that is there
already updates it; adding to the allow list a number that is on the block or protect list
(or the other way round) needs ``force``, and then moves it, since it cannot sensibly be on
both.

The daemon does not query TinyDB per call: :class:`ListIndex` keeps dicts of exact numbers and
of prefixes per list, rebuilt when the file's signature (inode, size, mtime) changes, so a
lookup is a handful of dict probes whatever the size of the lists.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import getpass
import logging
import os
import tomllib
from collections.abc import Callable, Iterable, Iterator, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from tinydb import TinyDB
from tinydb.table import Document

from callguard.core.lists import (
    CONFLICTS,
    LIST_NAMES,
    LIST_TITLES,
    WHY_CONFLICT,
    AddResult,
    Entry,
    ImportItem,
    Target,
    check_list,
    check_target,
    target_for,
)
from callguard.core.numbers import NumberError
from callguard.errors import CallGuardError, UsageError
from callguard.store.files import os_error_advice
from callguard.store.jsonfile import AtomicJSONStorage, Recovery
from callguard.store.lock import locked

log = logging.getLogger(__name__)

Clock = Callable[[], dt.datetime]


def now_local() -> dt.datetime:
    return dt.datetime.now().astimezone()


def _who() -> str:
    for var in ("SUDO_USER", "USER", "LOGNAME"):
        if os.environ.get(var):
            return os.environ[var]
    with contextlib.suppress(Exception):
        return getpass.getuser()
    return "unknown"


class Store:
    """The lists and the call log in ``directory``."""

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        region: str = "GB",
        retention_days: int = 365,
        clock: Clock = now_local,
        on_recovery: Callable[[Recovery], None] | None = None,
    ) -> None:
        self.dir = Path(directory)
        self.region = region
        self.retention_days = retention_days
        self.clock = clock
        self.on_recovery = on_recovery
        self.lists_path = self.dir / "lists.json"
        self.calls_path = self.dir / "calls.json"

    # -- opening -------------------------------------------------------------------------
    # Reading needs no write access (a card the kernel has remounted read-only must still
    # give the daemon its lists): no folder, lock or temp file is created and nothing moves,
    # unless a damaged file is repaired (see callguard.store.jsonfile). Only changes lock.

    def _tables(self, path: Path) -> dict[str, dict[str, Any]]:
        """Every table of a store file, read once, without the lock (the file is always whole)."""
        if not _exists(path):
            return {}
        return AtomicJSONStorage(path, on_recovery=self.on_recovery).read() or {}

    def _prepare_write(self) -> None:
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise _storage_error(self.dir, exc) from None

    @contextlib.contextmanager
    def _db(self, path: Path) -> Iterator[TinyDB]:
        """TinyDB on ``path`` for a change, under the store's lock from start to end."""
        self._prepare_write()
        try:
            with locked(path):
                db = TinyDB(path, storage=AtomicJSONStorage, on_recovery=self.on_recovery)
                try:
                    yield db
                finally:
                    db.close()
        except OSError as exc:
            raise _storage_error(path, exc) from None

    # -- lists ---------------------------------------------------------------------------

    def entries(self, list_name: str) -> list[Entry]:
        check_list(list_name)
        return self.all_entries()[list_name]

    def all_entries(self) -> dict[str, list[Entry]]:
        """Every list, read in one go (the protect list with CallGuard's shipped numbers)."""
        tables = self._tables(self.lists_path)
        lists = {n: [Entry.from_doc(dict(d)) for d in _rows(tables, n)] for n in LIST_NAMES}
        shipped = _shipped_active(_rows(tables, SUPPRESSED), _rows(tables, "protect"))
        lists["protect"] += shipped.values()
        return lists

    def read_packed(
        self, pack: Callable[[dict[str, Any]], tuple[str, str]]
    ) -> dict[str, list[tuple[str, str]]]:
        """Each list as [(number, pack(row)), ...], parsed lean for the daemon's index.

        Every row is packed as soon as the JSON parser has built it, so 100,000 rows never
        exist as dicts at once. The storage's own read does it, so the daemon and the CLI take
        one decision on whether the file is sound (:func:`~callguard.store.jsonfile.parse_tables`),
        and a damaged file is recovered from the backup (and reported) on both. Needs no
        write access, like every read here.
        """
        if not _exists(self.lists_path):
            return {}
        storage = AtomicJSONStorage(self.lists_path, on_recovery=self.on_recovery)
        tables = storage.read(pack=pack) or {}
        return {
            name: list(table.values())
            for name, table in tables.items()
            if name in LIST_NAMES or name == SUPPRESSED
        }

    def find(self, number: str) -> dict[str, Entry]:
        """Which lists hold exactly this key (E.164, short code, or ``prefix*``)."""
        tables = self._tables(self.lists_path)
        return _found(number, lambda name: _rows(tables, name))

    @staticmethod
    def _find(db: TinyDB, number: str) -> dict[str, Entry]:
        return _found(number, lambda name: db.table(name).all())

    @staticmethod
    def _unprotect(db: TinyDB, number: str) -> None:
        """Off the protect list: the family's entry removed, a shipped one marked removed."""
        db.table("protect").remove(lambda d: d.get("number") == number)
        removed = db.table(SUPPRESSED)
        if number in shipped_protected() and not removed.contains(
            lambda d: d.get("number") == number
        ):
            removed.insert({"number": number})

    def add(
        self,
        list_name: str,
        target: Target,
        *,
        name: str = "",
        note: str = "",
        by: str | None = None,
        force: bool = False,
        extra: dict[str, Any] | None = None,
    ) -> AddResult:
        """Add or update one entry. Conflicts with another list need ``force`` (then it moves)."""
        check_list(list_name)
        check_target(list_name, target)
        stamp = self.clock().isoformat(timespec="seconds")
        with self._db(self.lists_path) as db:
            found = self._find(db, target.number)
            conflicts = [c for c in CONFLICTS[list_name] if c in found]
            if conflicts and not force:
                raise UsageError(_conflict_message(list_name, target, conflicts, found))
            for other in conflicts:
                if other == "protect":
                    self._unprotect(db, target.number)
                else:
                    db.table(other).remove(lambda d: d.get("number") == target.number)
            if list_name == "protect":
                db.table(SUPPRESSED).remove(lambda d: d.get("number") == target.number)
            table = db.table(list_name)
            old = found.get(list_name)
            if old is not None and old.extra.get("shipped"):
                old = None  # the family's own entry for a shipped number: a new document
            doc: dict[str, Any] = {
                "number": target.number,
                "kind": target.kind,
                "name": name or (old.name if old else ""),
                "note": note or (old.note if old else ""),
                "added_by": old.added_by if old else (by or _who()),
                "added": old.added if old else stamp,
            }
            if extra:
                doc.update(extra)
            if old:
                doc["updated"] = stamp
                table.update(doc, lambda d: d.get("number") == target.number)
            else:
                table.insert(doc)
            return AddResult(
                Entry.from_doc(doc), updated=old is not None, moved_from=tuple(conflicts)
            )

    def remove(self, list_name: str, target: Target) -> Entry:
        check_list(list_name)
        with self._db(self.lists_path) as db:
            entry = self._find(db, target.number).get(list_name)
            if entry is None:
                raise UsageError(
                    f"{target.describe()} is not on the {LIST_TITLES[list_name]}; "
                    f"'callguard {list_name} list' shows what is"
                )
            if list_name == "protect":
                self._unprotect(db, target.number)  # a shipped number is marked removed too
            else:
                db.table(list_name).remove(lambda d: d.get("number") == target.number)
            return entry

    def add_many(
        self,
        list_name: str,
        items: Iterable[ImportItem],
        *,
        by: str | None = None,
        force: bool = False,
    ) -> tuple[int, int]:
        """Import: one read, then at most two writes. Returns (added, updated).

        Conflicts with another list are refused as a whole unless ``force``.
        """
        check_list(list_name)
        items = list(items)
        for item in items:
            check_target(list_name, item.target)
        stamp = self.clock().isoformat(timespec="seconds")
        who = by or _who()
        with self._db(self.lists_path) as db:
            where: dict[str, dict[str, int]] = {}
            for other in LIST_NAMES:
                where[other] = {str(d.get("number")): d.doc_id for d in db.table(other).all()}
            for number in _shipped_active(db.table(SUPPRESSED).all(), db.table("protect").all()):
                where["protect"].setdefault(number, -1)  # shipped: no document of ours
            problems = []
            moves: dict[str, list[int]] = {}
            for item in items:
                for other in CONFLICTS[list_name]:
                    doc_id = where[other].get(item.target.number)
                    if doc_id is not None:
                        problems.append(
                            f"line {item.line}: {item.target.describe()} is on the "
                            f"{LIST_TITLES[other]}"
                        )
                        moves.setdefault(other, []).append(doc_id)
            if problems and not force:
                raise UsageError(
                    "nothing imported; these numbers are on another list (add --force to move "
                    "them):\n  "
                    + "\n  ".join(problems[:20])
                    + (f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else "")
                )
            for other, ids in moves.items():
                db.table(other).remove(doc_ids=[i for i in ids if i >= 0])
            for item in items:
                if "protect" in moves and item.target.number in shipped_protected():
                    self._unprotect(db, item.target.number)
            table = db.table(list_name)
            existing = where[list_name]
            updates: dict[str, ImportItem] = {}
            inserts: dict[str, dict[str, Any]] = {}
            for item in items:
                number = item.target.number
                if number in existing:
                    updates[number] = item
                else:
                    inserts[number] = {
                        "number": number,
                        "kind": item.target.kind,
                        "name": item.name,
                        "note": item.note,
                        "added_by": who,
                        "added": stamp,
                    }
            if updates:

                def refresh(doc: Any) -> None:
                    item = updates[doc["number"]]
                    if item.name:
                        doc["name"] = item.name
                    if item.note:
                        doc["note"] = item.note
                    doc["updated"] = stamp

                table.update(refresh, doc_ids=[existing[n] for n in updates])
            if inserts:
                table.insert_multiple(inserts.values())
            return len(inserts), len(updates)

    # -- daemon status ---------------------------------------------------------------------

    @property
    def status_path(self) -> Path:
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
        if not _exists(self.alert_path):
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
                "acknowledged_by": by or _who(),
            }
            table.upsert(Document(acked, doc_id=1))
            return dict(doc)

    # -- call log ------------------------------------------------------------------------

    def append_call(self, call: dict[str, Any]) -> None:
        """Add one call to the log and drop calls older than the retention period."""
        cutoff = (self.clock() - dt.timedelta(days=self.retention_days)).isoformat()
        with self._db(self.calls_path) as db:
            table = db.table("calls")
            table.insert(call)
            stale = [d.doc_id for d in table.all() if str(d.get("started", "")) < cutoff]
            if stale:
                table.remove(doc_ids=stale)

    def calls(self, limit: int | None = None) -> list[dict[str, Any]]:
        """The call log, oldest first; with ``limit``, the newest ``limit`` calls."""
        docs = [dict(d) for d in _rows(self._tables(self.calls_path), "calls")]
        docs.sort(key=lambda d: str(d.get("started", "")))
        return docs[-limit:] if limit else docs


SUPPRESSED = "protect_removed"
"""Shipped protected numbers the family took off the list (kept so they stay off)."""

PROTECTED_DATA = "protected.toml"


@functools.cache
def shipped_protected() -> dict[str, Entry]:
    """The numbers CallGuard ships on the protect list (``callguard/data/protected.toml``).

    Short codes and inbound-only numbers that never call anyone, each with its organisation
    and a source. They count as part of the protect list without being written to the
    family's file, so an upgrade can add to them; ``protect remove`` marks one as removed.
    """
    path = resources.files("callguard") / "data" / PROTECTED_DATA
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        log.error(
            "the shipped protected numbers could not be read (%s); only the family's are used", exc
        )
        return {}
    shipped: dict[str, Entry] = {}
    for item in data.get("number", []):
        try:
            target = target_for(str(item["number"]), "GB")
        except (NumberError, KeyError) as exc:
            log.error("skipping a shipped protected number %r: %s", item, exc)
            continue
        organisation = str(item.get("organisation", ""))
        shipped[target.number] = Entry(
            number=target.number,
            name=organisation,
            note=str(item.get("source", "")),
            added_by="CallGuard (shipped)",
            kind=target.kind,
            extra={"organisation": organisation, "shipped": True},
        )
    return shipped


Rows = Iterable[Mapping[str, Any]]


def _rows(tables: Mapping[str, Mapping[str, Any]], name: str) -> list[Mapping[str, Any]]:
    """The documents of one table of a file read whole, in the file's order."""
    return [doc for doc in tables.get(name, {}).values() if isinstance(doc, Mapping)]


def _found(number: str, rows: Callable[[str], Rows]) -> dict[str, Entry]:
    found = {}
    for list_name in LIST_NAMES:
        for doc in rows(list_name):
            if doc.get("number") == number:
                found[list_name] = Entry.from_doc(dict(doc))
                break
    if "protect" not in found and number in (
        active := _shipped_active(rows(SUPPRESSED), rows("protect"))
    ):
        found["protect"] = active[number]
    return found


def _shipped_active(removed_rows: Rows, protect_rows: Rows) -> dict[str, Entry]:
    """Shipped protected numbers not removed by the family and not overridden by their entry."""
    removed = {str(d.get("number")) for d in removed_rows}
    own = {str(d.get("number")) for d in protect_rows}
    return {n: e for n, e in shipped_protected().items() if n not in removed and n not in own}


def _exists(path: Path) -> bool:
    """A store file or its backup is there (reading an absent store must not create it).

    A symbolic link counts, so that reading it is refused with a message naming it.
    """
    return os.path.lexists(path) or os.path.lexists(path.with_name(path.name + ".bak"))


def _conflict_message(
    list_name: str, target: Target, conflicts: list[str], found: dict[str, Entry]
) -> str:
    where = " and ".join(LIST_TITLES[c] for c in conflicts)
    first = found[conflicts[0]]
    label = f" as {first.name!r}" if first.name else ""
    why = WHY_CONFLICT[conflicts[0]]
    return (
        f"{target.describe()} is on the {where}{label}: {why}. To put it on the "
        f"{LIST_TITLES[list_name]} instead, run the same command with --force; it will be "
        f"taken off the {where}."
    )


def _storage_error(path: Path, exc: OSError) -> CallGuardError:
    """A failed change in the store's folder, in words that say what to do (by ``errno``:
    a read-only card, a full card and a permission problem have different fixes)."""
    return CallGuardError(f"cannot write to {path}: {os_error_advice(exc)}")
