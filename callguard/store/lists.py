"""The family's lists, in TinyDB on power-safe storage (with one handle on the call log and the
state files of the same folder: :mod:`callguard.store.calllog`, :mod:`callguard.store.state`).

Theory of operation
-------------------
One directory (``storage.dir``) holds one TinyDB file per list: ``allow.json``, ``block.json``
and ``protect.json`` (which also keeps ``protect_removed``, the shipped numbers the family took
off), each written through :class:`~callguard.store.jsonfile.AtomicJSONStorage` (temp file,
fsync, rename, one backup). A file per list because a list can be big (a volunteer's block list
of 100,000 numbers is 13 MB of JSON): adding the GP surgery to the allow list rewrites, and the
daemon re-reads, only the allow list. Every change to any list holds one advisory lock
(``lists.json.lock``, :func:`~callguard.store.lock.locked`) from its first read to its last
write, so the CLI and the daemon never lose each other's writes. A plain read (the lists, the
daemon's index, the call log, the status, the alert) takes no lock and needs no write access,
so a card the kernel has remounted read-only still gives the daemon every list; a write there
fails with words that say so (the card is read-only, or full, or the user may not write: three
different fixes).

An older CallGuard kept the three lists in one file, ``lists.json``. While that file (or its
backup) is there, every read takes the lists from it; the first change splits it into the
three files (each written power-safely) and only then renames it, and its backup first, to
``lists.json.migrated`` (``lists.json.bak.migrated``): a cut at any moment leaves a store that
reads whole, and the next change finishes the job.

An entry's ``number`` is its key: E.164 (``+441707354000``), a short code's digits (``999``),
or a prefix rule written with a trailing star (``+44870*``). Adding a number that is there
already updates it; adding to the allow list a number that is on the block or protect list
(or the other way round) needs ``force``, and then moves it, since it cannot sensibly be on
both: the list it goes to is written first, so a cut between the two writes leaves it on both
(the allow list wins at screening) rather than on neither. Looking a number up in a big list
reads the file's bytes and parses them only if the number's text is in them.

The daemon does not query TinyDB per call: :class:`~callguard.store.index.ListIndex` keeps
dicts of exact numbers and of prefixes per list, rebuilding a list's when its file's signature
(inode, size, mtime) changes, so a lookup is a handful of dict probes whatever the size of the
lists.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import json
import logging
import os
import tomllib
from collections.abc import Callable, Iterable, Iterator, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from tinydb import TinyDB

from callguard.core.lists import (
    CONFLICTS,
    LIST_NAMES,
    LIST_TITLES,
    MAX_NAME,
    MAX_NOTE,
    WHY_CONFLICT,
    AddResult,
    Entry,
    ImportItem,
    Target,
    check_list,
    check_target,
    check_text,
    expired,
    target_for,
)
from callguard.core.numbers import NumberError
from callguard.errors import UsageError
from callguard.store.calllog import CallLog
from callguard.store.files import StoreError, fsync_dir, read_store_file, sibling
from callguard.store.folder import (
    Clock,
    StoreFolder,
    exists,
    now_local,
    rows,
    storage_error,
    who,
)
from callguard.store.jsonfile import AtomicJSONStorage, Recovery
from callguard.store.lock import locked
from callguard.store.state import StateFiles

log = logging.getLogger(__name__)


LEGACY_LISTS = "lists.json"
"""The one file an older CallGuard kept every list in (also the name of the lists' lock)."""


def list_file(list_name: str) -> str:
    """The file a list lives in, in the store's folder (``allow.json``)."""
    return f"{list_name}.json"


Tables = dict[str, dict[str, Any]]


class _HeldStorage(AtomicJSONStorage):
    """The storage of one list file during a change: the lists' lock is held throughout, so
    nobody else can change the file, and TinyDB's many reads of it cost one parse."""

    _held: Tables | None = None
    _known = False

    def read(self, pack: Any = None) -> Tables | None:
        if pack is not None:
            return super().read(pack)
        if not self._known:
            self._held, self._known = super().read(), True
        return self._held

    def write(self, data: Tables) -> None:
        super().write(data)
        self._held, self._known = data, True


class _Change:
    """The list files of one change, each opened in TinyDB when first needed."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._dbs: dict[str, TinyDB] = {}

    def table(self, name: str) -> Any:
        """A TinyDB table: a list, or ``protect_removed`` (kept in ``protect.json``)."""
        list_name = "protect" if name == SUPPRESSED else name
        db = self._dbs.get(list_name)
        if db is None:
            path = self.store.list_paths[list_name]
            db = TinyDB(path, storage=_HeldStorage, on_recovery=self.store.on_recovery)
            self._dbs[list_name] = db
        return db.table(name)

    def close(self) -> None:
        for db in self._dbs.values():
            db.close()


class Store(StoreFolder):
    """The family's lists in ``directory`` (a file per list), with the call log (:attr:`log`)
    and the state files (:attr:`state`) of the same folder."""

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
        self.lists_path = self.dir / LEGACY_LISTS
        """An older CallGuard's file of every list; its lock guards every change to a list."""
        self.list_paths = {n: self.dir / list_file(n) for n in LIST_NAMES}
        self.log = CallLog(
            directory, retention_days=retention_days, clock=clock, on_recovery=on_recovery
        )
        self.state = StateFiles(
            directory, runtime_dir=runtime_dir, clock=clock, on_recovery=on_recovery
        )

    # -- where each list is -------------------------------------------------------------

    def unsplit(self) -> bool:
        """Whether the lists are still in an older CallGuard's one ``lists.json``."""
        return exists(self.lists_path)

    def sources(self) -> dict[str, Path]:
        """The file each list is read from now (all ``lists.json`` until the first change)."""
        if self.unsplit():
            return dict.fromkeys(LIST_NAMES, self.lists_path)
        return dict(self.list_paths)

    def _read(self, list_names: Iterable[str]) -> dict[str, Tables]:
        """The tables of each list's file, each file read once (no lock, no write access)."""
        sources = self.sources()
        by_path: dict[Path, Tables] = {}
        out = {}
        for name in list_names:
            path = sources[name]
            if path not in by_path:
                by_path[path] = self._tables(path)
            out[name] = by_path[path]
        return out

    # -- lists ---------------------------------------------------------------------------

    def entries(self, list_name: str) -> list[Entry]:
        """One list (the protect list with CallGuard's shipped numbers); reads only its file."""
        check_list(list_name)
        tables = self._read([list_name])[list_name]
        entries = [Entry.from_doc(dict(d)) for d in rows(tables, list_name)]
        if list_name == "protect":
            entries += _shipped_active(rows(tables, SUPPRESSED), rows(tables, "protect")).values()
        return entries

    def all_entries(self) -> dict[str, list[Entry]]:
        """Every list (the protect list with CallGuard's shipped numbers)."""
        tables = self._read(LIST_NAMES)
        lists = {n: [Entry.from_doc(dict(d)) for d in rows(tables[n], n)] for n in LIST_NAMES}
        protect = tables["protect"]
        lists["protect"] += _shipped_active(
            rows(protect, SUPPRESSED), rows(protect, "protect")
        ).values()
        return lists

    def read_packed(
        self,
        pack: Callable[[dict[str, Any]], tuple[str, str]],
        list_names: Iterable[str] = LIST_NAMES,
    ) -> dict[str, list[tuple[str, str]]]:
        """The lists asked for, each as [(number, pack(row)), ...], parsed lean for the daemon's
        index (with ``protect_removed`` when the protect list is asked for).

        Every row is packed as soon as the JSON parser has built it, so 100,000 rows never
        exist as dicts at once. The storage's own read does it, so the daemon and the CLI take
        one decision on whether a file is sound (:func:`~callguard.store.jsonfile.parse_tables`),
        and a damaged file is recovered from the backup (and reported) on both. Needs no
        write access, like every read here.
        """
        wanted = set(list_names)
        if "protect" in wanted:
            wanted.add(SUPPRESSED)
        sources = self.sources()
        out: dict[str, list[tuple[str, str]]] = {}
        for path in dict.fromkeys(sources[n] for n in LIST_NAMES if n in wanted):
            if not exists(path):
                continue
            storage = AtomicJSONStorage(path, on_recovery=self.on_recovery)
            for name, table in (storage.read(pack=pack) or {}).items():
                if name in wanted:
                    out[name] = list(table.values())
        return out

    def find(self, number: str) -> dict[str, Entry]:
        """Which lists hold exactly this key (E.164, short code, or ``prefix*``).

        A list's file is parsed only if the key's text is in its bytes (the block list may be
        13 MB of JSON; looking for one number in it takes milliseconds, parsing it a second).
        """
        sources = self.sources()
        cache: dict[Path, Tables] = {}

        def rows_of(name: str) -> Rows:
            path = sources["protect" if name == SUPPRESSED else name]
            if path not in cache:
                if name != SUPPRESSED and not _may_hold(path, number):
                    return []
                cache[path] = self._tables(path)
            return rows(cache[path], name)

        return _found(number, rows_of)

    @contextlib.contextmanager
    def _change(self) -> Iterator[_Change]:
        """The list files for a change, under the lists' lock from start to end (an older
        store's ``lists.json`` split first)."""
        self._prepare_write()
        try:
            with locked(self.lists_path):
                if self.unsplit():
                    self._split()
                change = _Change(self)
                try:
                    yield change
                finally:
                    change.close()
        except OSError as exc:
            raise storage_error(self.lists_path, exc) from None

    def _split(self) -> None:
        """An older CallGuard's ``lists.json`` into a file per list (lock held). Each new file
        is written power-safely before the old one is renamed, its backup first (a backup
        left alone would be taken for a damaged ``lists.json`` and restored)."""
        tables = self._tables(self.lists_path)  # a damaged file is recovered from its backup
        for name in LIST_NAMES:
            content: Tables = {name: dict(tables.get(name, {}))}
            if name == "protect" and SUPPRESSED in tables:
                content[SUPPRESSED] = dict(tables[SUPPRESSED])
            storage = AtomicJSONStorage(self.list_paths[name], on_recovery=self.on_recovery)
            storage.read()  # what a split cut short left there is replaced, not refused
            storage.write(content)
        for old in (sibling(self.lists_path, ".bak"), self.lists_path):
            if os.path.lexists(old):
                os.replace(old, sibling(old, ".migrated"))
        fsync_dir(self.dir)
        log.info(
            "the lists were moved from %s into %s (the old file is kept as %s.migrated)",
            self.lists_path,
            ", ".join(p.name for p in self.list_paths.values()),
            self.lists_path.name,
        )

    @staticmethod
    def _unprotect(change: _Change, number: str) -> None:
        """Off the protect list: the family's entry removed, a shipped one marked removed."""
        change.table("protect").remove(lambda d: d.get("number") == number)
        removed = change.table(SUPPRESSED)
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
        """Add or update one entry. Conflicts with another list need ``force`` (then it moves:
        the list it goes to is written first)."""
        check_list(list_name)
        check_target(list_name, target, force=force)
        check_text("name", name, MAX_NAME)
        check_text("note", note, MAX_NOTE)
        stamp = self.clock().isoformat(timespec="seconds")
        with self._change() as change:
            found = self.find(target.number)
            conflicts = [c for c in CONFLICTS[list_name] if c in found]
            if conflicts and not force:
                raise UsageError(_conflict_message(list_name, target, conflicts, found))
            old = found.get(list_name)
            shipped = shipped_protected().get(target.number)
            if list_name == "protect" and shipped is not None:
                if old is not None and old.extra.get("shipped"):
                    raise UsageError(
                        f"{target.describe()} is protected already: CallGuard ships it as "
                        f"{old.name!r}, and it is left as it is. To protect a bank's number, "
                        "type the number on the back of the card"
                    )
                if old is None:  # the family had taken it off: CallGuard's entry comes back
                    change.table(SUPPRESSED).remove(lambda d: d.get("number") == target.number)
                    return AddResult(shipped, updated=False, moved_from=())
            if list_name == "protect":
                change.table(SUPPRESSED).remove(lambda d: d.get("number") == target.number)
            table = change.table(list_name)
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
            for other in conflicts:
                if other == "protect":
                    self._unprotect(change, target.number)
                else:
                    change.table(other).remove(lambda d: d.get("number") == target.number)
            return AddResult(
                Entry.from_doc(doc), updated=old is not None, moved_from=tuple(conflicts)
            )

    def allow_once(
        self, target: Target, until: dt.datetime, *, name: str = "", by: str | None = None
    ) -> AddResult:
        """Let ``target`` (a number, or ``withheld``/``unavailable``) ring through until ``until``
        (an aware time): a temporary allow-list entry, which screening ignores once it has run
        out. A protected number is refused (a call showing it is a fake). A number on the block
        list stays there: the allow list wins until the entry runs out, then the block is back.
        Entries that have run out are cleared at the same time."""
        check_text("name", name, MAX_NAME)
        now = self.clock()
        with self._change() as change:
            found = self.find(target.number)
            if "protect" in found:
                raise UsageError(
                    f"{target.describe()} is on the protect list: it never calls anyone, so a "
                    "call showing it is a fake and is always blocked"
                )
            old = found.get("allow")
            if old is not None and "expires" not in old.extra:
                raise UsageError(
                    f"{target.describe()} is on the allow list already"
                    + (f" as {old.name!r}" if old.name else "")
                    + ": it rings through every time"
                )
            table = change.table("allow")
            table.remove(
                lambda d: (
                    bool(d.get("expires"))
                    and (d.get("number") == target.number or expired(Entry.from_doc(dict(d)), now))
                )
            )
            doc: dict[str, Any] = {
                "number": target.number,
                "kind": target.kind,
                "name": name,
                "note": "",
                "added_by": by or who(),
                "added": now.isoformat(timespec="seconds"),
                "expires": until.astimezone(dt.UTC).isoformat(timespec="seconds"),
            }
            table.insert(doc)
            return AddResult(Entry.from_doc(doc), updated=old is not None, moved_from=())

    def remove(self, list_name: str, target: Target) -> Entry:
        check_list(list_name)
        with self._change() as change:
            entry = self.find(target.number).get(list_name)
            if entry is None:
                raise UsageError(
                    f"{target.describe()} is not on the {LIST_TITLES[list_name]}; "
                    f"'callguard {list_name} list' shows what is"
                )
            if list_name == "protect":
                self._unprotect(change, target.number)  # a shipped number is marked removed too
            else:
                change.table(list_name).remove(lambda d: d.get("number") == target.number)
            return entry

    def add_many(
        self,
        list_name: str,
        items: Iterable[ImportItem],
        *,
        by: str | None = None,
        force: bool = False,
    ) -> tuple[int, int]:
        """Import: one read of each list, then a write of each list that changes. Returns
        (added, updated).

        Conflicts with another list are refused as a whole unless ``force`` (then the numbers
        move: the list they go to is written first).
        """
        check_list(list_name)
        items = list(items)
        for item in items:
            try:
                check_target(list_name, item.target, force=force)
                check_text("name", item.name, MAX_NAME)
                check_text("note", item.note, MAX_NOTE)
            except UsageError as exc:
                raise UsageError(f"nothing imported; line {item.line}: {exc}") from None
        stamp = self.clock().isoformat(timespec="seconds")
        author = by or who()
        with self._change() as change:
            where: dict[str, dict[str, int]] = {}
            for other in (list_name, *CONFLICTS[list_name]):
                where[other] = {str(d.get("number")): d.doc_id for d in change.table(other).all()}
            if "protect" in where:
                shipped = _shipped_active(
                    change.table(SUPPRESSED).all(), change.table("protect").all()
                )
                for number in shipped:
                    where["protect"].setdefault(number, -1)  # shipped: no document of ours
                if list_name == "protect":  # CallGuard's own entries are never overwritten
                    items = [i for i in items if i.target.number not in shipped]
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
            table = change.table(list_name)
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
            for other, ids in moves.items():
                change.table(other).remove(doc_ids=[i for i in ids if i >= 0])
            for item in items:
                if "protect" in moves and item.target.number in shipped_protected():
                    self._unprotect(change, item.target.number)
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
    if (
        "protect" not in found
        and number in shipped_protected()
        and number in (active := _shipped_active(rows(SUPPRESSED), rows("protect")))
    ):
        found["protect"] = active[number]
    return found


def _may_hold(path: Path, key: str) -> bool:
    """False only if the list file at ``path`` surely has no row whose number is ``key``: it
    is whole (an object, ending as the store writes it) and the key's JSON text is nowhere in
    it (nor any ``\\u`` escape that could spell it). Anything else is for the full read to
    decide (which also recovers a damaged file)."""
    try:
        raw, _ = read_store_file(path)
    except FileNotFoundError:
        return exists(path)  # a backup alone: the full read restores it
    except StoreError:
        return True  # the full read says what is wrong with it
    if not raw.startswith(b"{") or not raw.rstrip().endswith(b"}") or b"\\u" in raw:
        return True
    return json.dumps(key, ensure_ascii=False).encode("utf-8") in raw


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
