"""The daemon's lookup: dicts of exact numbers and prefixes per list, rebuilt on change."""

from __future__ import annotations

import contextlib
import ctypes
import gc
from typing import Any

from callguard.core.lists import LIST_NAMES, Entry, Match
from callguard.store.files import file_signature
from callguard.store.lists import SUPPRESSED, Store, shipped_protected

_SEP = "\x1f"


def _release_freed_memory() -> None:
    """Give the parse's garbage back to the OS (glibc keeps freed heap pages otherwise)."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


class ListIndex:
    """In-memory index of the lists for the daemon; :meth:`refresh` reloads a changed file.

    Kept compact, since a volunteer's block list can hold 100,000 numbers on a Pi with little
    memory: per list, a dict from number (or prefix) to one packed string of the fields a
    screening reason needs. The full :class:`Entry` is rebuilt only for a match.
    """

    FIELDS = ("name", "note", "added", "added_by", "kind", "organisation")

    def __init__(self, store: Store) -> None:
        self.store = store
        self._signature: tuple[int, int, int] | None = None
        self._exact: dict[str, dict[str, str]] = {n: {} for n in LIST_NAMES}
        self._prefixes: dict[str, dict[str, str]] = {n: {} for n in LIST_NAMES}
        self._max_prefix = 0
        self.loaded = False

    def refresh(self) -> bool:
        """Reload if the lists file changed since the last load. True when it reloaded."""
        signature = file_signature(self.store.lists_path)
        if self.loaded and signature == self._signature:
            return False
        exact: dict[str, dict[str, str]] = {n: {} for n in LIST_NAMES}
        prefixes: dict[str, dict[str, str]] = {n: {} for n in LIST_NAMES}
        seen: dict[str, str] = {}  # shares identical packed values (imported lists repeat names)

        def pack(doc: dict[str, Any]) -> tuple[str, str]:
            fields = _SEP.join(str(doc.get(f) or "") for f in self.FIELDS)
            return str(doc.get("number", "")), seen.setdefault(fields, fields)

        removed: set[str] = set()
        for list_name, rows in self.store.read_packed(pack).items():
            if list_name == SUPPRESSED:
                removed.update(number for number, _ in rows)
                continue
            for number, packed in rows:
                if number.endswith("*"):
                    prefixes[list_name][number[:-1]] = packed
                else:
                    exact[list_name][number] = packed
        for number, entry in shipped_protected().items():
            if number not in removed and number not in exact["protect"]:
                exact["protect"][number] = pack(entry.to_json())[1]
        seen.clear()
        _release_freed_memory()
        self._exact, self._prefixes = exact, prefixes
        self._max_prefix = max((len(p) for d in prefixes.values() for p in d), default=0)
        # the signature from *before* the read: a write racing with it shows up next time
        self._signature = signature
        self.loaded = True
        return True

    def sizes(self) -> dict[str, int]:
        return {n: len(self._exact[n]) + len(self._prefixes[n]) for n in LIST_NAMES}

    def match(self, list_name: str, key: str | None) -> Match | None:
        """The exact entry for ``key``, else the longest prefix rule that covers it."""
        if not key:
            return None
        packed = self._exact[list_name].get(key)
        if packed is not None:
            return Match(list_name, self._entry(key, packed), "exact")
        prefixes = self._prefixes[list_name]
        if prefixes and key.startswith("+"):
            for length in range(min(len(key), self._max_prefix), 1, -1):
                packed = prefixes.get(key[:length])
                if packed is not None:
                    return Match(list_name, self._entry(key[:length] + "*", packed), "prefix")
        return None

    def _entry(self, number: str, packed: str) -> Entry:
        name, note, added, added_by, kind, organisation = packed.split(_SEP)
        extra = {"organisation": organisation} if organisation else {}
        return Entry(number, name, note, added_by, added, kind=kind or "number", extra=extra)
