"""The family's lists, in TinyDB on power-safe storage (with one handle on the call log and the
state files of the same folder: :mod:`callguard.store.calllog`, :mod:`callguard.store.state`).

Theory of operation
-------------------
One directory (``storage.dir``) holds ``lists.json`` (tables ``allow``, ``block``, ``protect``),
written through :class:`~callguard.store.jsonfile.AtomicJSONStorage` (temp file, fsync, rename,
one backup) and guarded by the advisory lock of :func:`~callguard.store.lock.locked`, which
every read-check-write here
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

import functools
import logging
import os
import tomllib
from collections.abc import Callable, Iterable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from tinydb import TinyDB

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
from callguard.errors import UsageError
from callguard.store.calllog import CallLog
from callguard.store.folder import Clock, StoreFolder, exists, now_local, rows, who
from callguard.store.jsonfile import AtomicJSONStorage, Recovery
from callguard.store.state import StateFiles

log = logging.getLogger(__name__)


class Store(StoreFolder):
    """The family's lists in ``directory`` (``lists.json``), with the call log (:attr:`log`) and
    the state files (:attr:`state`) of the same folder."""

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        region: str = "GB",
        retention_days: int = 365,
        runtime_dir: str = "",
        clock: Clock = now_local,
        on_recovery: Callable[[Recovery], None] | None = None,
    ) -> None:
        super().__init__(directory, clock=clock, on_recovery=on_recovery)
        self.region = region
        self.lists_path = self.dir / "lists.json"
        self.log = CallLog(
            directory, retention_days=retention_days, clock=clock, on_recovery=on_recovery
        )
        self.state = StateFiles(
            directory, runtime_dir=runtime_dir, clock=clock, on_recovery=on_recovery
        )

    # -- lists ---------------------------------------------------------------------------

    def entries(self, list_name: str) -> list[Entry]:
        check_list(list_name)
        return self.all_entries()[list_name]

    def all_entries(self) -> dict[str, list[Entry]]:
        """Every list, read in one go (the protect list with CallGuard's shipped numbers)."""
        tables = self._tables(self.lists_path)
        lists = {n: [Entry.from_doc(dict(d)) for d in rows(tables, n)] for n in LIST_NAMES}
        shipped = _shipped_active(rows(tables, SUPPRESSED), rows(tables, "protect"))
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
        if not exists(self.lists_path):
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
        return _found(number, lambda name: rows(tables, name))

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
                "added_by": old.added_by if old else (by or who()),
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
        author = by or who()
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
                        "added_by": author,
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

    # -- the call log and the state files (their own classes; here for one handle) -----------

    def append_call(self, call: dict[str, Any]) -> None:
        self.log.append(call)

    def calls(self, limit: int | None = None) -> list[dict[str, Any]]:
        return self.log.read(limit)

    @property
    def status_path(self) -> Path:
        return self.state.status_path

    def write_status(self, status: dict[str, Any]) -> None:
        self.state.write_status(status)

    def read_status(self) -> dict[str, Any] | None:
        return self.state.read_status()

    @property
    def alert_path(self) -> Path:
        return self.state.alert_path

    def raise_alert(self, call: dict[str, Any]) -> dict[str, Any]:
        return self.state.raise_alert(call)

    def read_alert(self) -> dict[str, Any] | None:
        return self.state.read_alert()

    def alert_active(self) -> bool:
        return self.state.alert_active()

    def ack_alert(self, by: str | None = None) -> dict[str, Any] | None:
        return self.state.ack_alert(by)


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
