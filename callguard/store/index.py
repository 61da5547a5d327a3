"""The daemon's lookup: the family's lists as dicts, and the community block list in its file.

Theory of operation
-------------------
Everything a lookup reads is one immutable :class:`IndexState`: per family list a dict from
number (or prefix) to one packed string of the fields a screening reason needs, and the
community block list (:class:`~callguard.store.biglist.BigList`, a file of sorted numbers of
which a lookup reads one page) if there is one. :meth:`ListIndex.refresh` builds a new state
aside, reusing whatever did not change (the dicts when only the community file changed, the
open file when only the family's lists changed), and swaps it in with one assignment, so a
reload may run on another thread while the main loop screens: each lookup sees the old state
or the new one, never a mixture. An old state is never closed by hand: its open file is closed
when the last reference to it goes, so a lookup that started before a swap finishes on what it
started with. To see one state for a whole screening (all the lists of one call), screen
against :meth:`ListIndex.snapshot`.

The family's lists come from a file each (``allow.json``, ``block.json``, ``protect.json``, or
an older store's one ``lists.json``: :meth:`~callguard.store.lists.Store.sources`), the
community list from ``community-block.cgl`` in the same folder; each list is reloaded when its
file's signature (inode, size, mtime) changes, and only that list: the family adding the GP
surgery to the allow list costs a re-read of the allow list, not of a 100,000-number block list.
A community file that is damaged is refused, logged once (with what is wrong and the fix) and
left out: screening goes on with the family's lists.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import logging
import marshal
import os
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final

from callguard.core.lists import LIST_NAMES, Entry, Match
from callguard.core.screening import COMMUNITY
from callguard.store.biglist import BigList, BigListError, community_path
from callguard.store.files import (
    Signature,
    StoreError,
    file_signature,
    read_store_file,
    write_atomically,
)
from callguard.store.lists import SUPPRESSED, Store, shipped_protected

log = logging.getLogger(__name__)

_SEP = "\x1f"
BIG_LIST = 10_000
"""Rows read after which the parse's garbage is worth handing back to the OS at once."""

Packed = Mapping[str, Mapping[str, str]]


def _release_freed_memory() -> None:
    """Give the parse's garbage back to the OS (glibc keeps freed heap pages otherwise)."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def _empty() -> Packed:
    return {n: {} for n in LIST_NAMES}


@dataclass(frozen=True, slots=True)
class IndexState:
    """One consistent view of every list; never changed once built (a
    :class:`~callguard.core.screening.CommunityLookup`)."""

    exact: Packed = field(default_factory=_empty)
    prefixes: Packed = field(default_factory=_empty)
    max_prefix: int = 0
    sources: Mapping[str, Path] = field(default_factory=dict)
    """The file each family list was read from."""
    signatures: Mapping[Path, Signature | None] = field(default_factory=dict)
    """Those files' signatures when they were read (before the read: a racing write shows)."""
    loaded: bool = False
    """The family's lists have been read."""
    generation: int = 0
    """The reload request it answers (see :attr:`ListIndex.loaded`)."""
    community: BigList | None = None
    community_signature: Signature | None = None
    community_problem: str | None = None
    """Why the community file there is not used, when it is damaged."""
    folder_signature: Signature | None = None
    """The storage folder's signature, taken before the files were looked at: every write of
    a list (a temporary file renamed over it) changes it."""

    def sizes(self) -> dict[str, int]:
        return {n: len(self.exact[n]) + len(self.prefixes[n]) for n in LIST_NAMES}

    def match(self, list_name: str, key: str | None) -> Match | None:
        """The exact entry for ``key`` in a family list, else the longest prefix rule that
        covers it."""
        if not key:
            return None
        packed = self.exact[list_name].get(key)
        if packed is not None:
            return Match(list_name, _entry(key, packed), "exact")
        prefixes = self.prefixes[list_name]
        if prefixes and key.startswith("+"):
            for length in range(min(len(key), self.max_prefix), 1, -1):
                packed = prefixes.get(key[:length])
                if packed is not None:
                    return Match(list_name, _entry(key[:length] + "*", packed), "prefix")
        return None

    def match_community(self, key: str | None) -> Match | None:
        """An entry for ``key`` if the community block list holds it (whole numbers only)."""
        community = self.community
        if not key or community is None or key not in community:
            return None
        return Match(COMMUNITY, Entry(key, kind="number", extra=dict(community.source)), "exact")


def _entry(number: str, packed: str) -> Entry:
    name, note, added, added_by, kind, organisation, expires = packed.split(_SEP)
    extra = {"organisation": organisation} if organisation else {}
    if expires:
        extra["expires"] = expires
    return Entry(number, name, note, added_by, added, kind=kind or "number", extra=extra)


CACHED_LISTS = ("allow", "block")
"""Lists whose built index may be cached (the protect list mixes in CallGuard's shipped
numbers, which an upgrade changes, and is never big)."""
CACHE_VERSION = 1


class IndexCache:
    """The built index of a big list, kept beside the lists so a restart does not parse the
    file again: a 100,000-number block list is 13 MB of JSON and half a second to build (seconds
    on a Pi), and 20 ms to load from here.

    Each entry records the list file's path and signature (inode, size, mtime: every write
    makes a new inode) and the packed fields, and is used only while they all still match.
    Written with :func:`marshal` (builtin types only: loading it runs no code) through a temp
    file and a rename, on a thread of its own, so nobody waits for it; a cache that cannot be
    written (a read-only card) or read back is simply not used.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def _path(self, list_name: str) -> Path:
        return self.folder / f"index-{list_name}.marshal"

    def _header(
        self, key: tuple[str, Signature]
    ) -> tuple[int, str, tuple[int, ...], tuple[str, ...], str]:
        return (CACHE_VERSION, key[0], tuple(key[1]), ListIndex.FIELDS, _SEP)

    def load(
        self, list_name: str, key: tuple[str, Signature]
    ) -> tuple[dict[str, str], dict[str, str]] | None:
        try:
            raw, _ = read_store_file(self._path(list_name))
            header, exact, prefixes = marshal.loads(raw)
        except (OSError, StoreError, ValueError, EOFError, TypeError):
            return None
        if header != self._header(key) or not isinstance(exact, dict):
            return None
        if not isinstance(prefixes, dict):
            return None
        log.info("the %s list's index was taken from %s", list_name, self._path(list_name))
        return exact, prefixes

    def save(
        self,
        list_name: str,
        key: tuple[str, Signature],
        exact: dict[str, str],
        prefixes: dict[str, str],
    ) -> None:
        payload = marshal.dumps((self._header(key), exact, prefixes))
        path = self._path(list_name)

        def write() -> None:
            try:
                self.folder.mkdir(parents=True, exist_ok=True)
                write_atomically(path, payload, mode=0o640)
            except OSError as exc:
                log.info("the %s list's index could not be cached in %s: %s", list_name, path, exc)

        threading.Thread(target=write, name="index-cache", daemon=True).start()


FOLDER_SETTLE_NS: Final = 20_000_000
"""A folder changed this recently is not trusted yet: file times tick in jiffies (up to 10 ms
on a Pi), so a rename in the same tick as the look would leave the same signature (20 ms: twice the
longest tick)."""


def _settled(signature: Signature | None) -> Signature | None:
    if signature is None or time.time_ns() - signature[2] < FOLDER_SETTLE_NS:
        return None
    return signature


class ListIndex:
    """The daemon's index of the lists; :meth:`refresh` reloads a changed file.

    Kept compact, since a volunteer's block list can hold 100,000 numbers on a Pi with little
    memory: per list, a dict from number (or prefix) to one packed string of the fields a
    screening reason needs; the full :class:`Entry` is rebuilt only for a match. The
    community list (millions of numbers) stays in its file.
    """

    FIELDS = ("name", "note", "added", "added_by", "kind", "organisation", "expires")

    def __init__(self, store: Store) -> None:
        self.store = store
        self.community_path: Path = community_path(store.dir)
        self._folder = os.fspath(store.dir)  # a str: looked at on the seize path
        self._state = IndexState()
        self._requested = 0
        self._refreshing = threading.Lock()
        self.cache = IndexCache(store.dir / "cache")

    # -- what lookups read: one attribute, replaced whole -----------------------------------

    def snapshot(self) -> IndexState:
        """The state in force: screen a call against it to see one version of every list."""
        return self._state

    def match(self, list_name: str, key: str | None) -> Match | None:
        return self._state.match(list_name, key)

    def match_community(self, key: str | None) -> Match | None:
        return self._state.match_community(key)

    def sizes(self) -> dict[str, int]:
        """Entries per family list (the community list: :meth:`community_size`)."""
        return self._state.sizes()

    def community_size(self) -> int:
        community = self._state.community
        return 0 if community is None else len(community)

    @property
    def community(self) -> BigList | None:
        return self._state.community

    @property
    def community_problem(self) -> str | None:
        return self._state.community_problem

    @property
    def loaded(self) -> bool:
        """Whether the lists have been read (and no reload was asked for since).

        Setting it False asks the next :meth:`refresh` to read every file again even if it
        looks unchanged (after SIGHUP): the request is remembered until a refresh that started
        after it has finished, so it is not lost to a refresh already under way.
        """
        state = self._state
        return state.loaded and state.generation == self._requested

    @loaded.setter
    def loaded(self, value: bool) -> None:
        if not value:
            self._requested += 1

    def folder_unchanged(self) -> bool:
        """Whether no file in the storage folder was renamed, created or removed since the
        state in force was read (one stat()): every write of a list or of the community list
        is a rename, so the seize path's first look trusts the lists on this. A file edited
        in place is seen by :meth:`is_current` (the reloader's own check) instead."""
        return self.trusted_snapshot() is not None

    def trusted_snapshot(self) -> IndexState | None:
        """The state in force if :meth:`folder_unchanged` (judged on that same state), else
        None. Safe from any thread: the state is swapped whole, never changed."""
        state = self._state
        signature = state.folder_signature  # None until loaded and settled
        if signature is None or file_signature(self._folder) != signature:
            return None
        return state

    def is_current(self) -> bool:
        """Whether the state in force was read from the files as they are now (a few stat()s)."""
        state = self._state
        return (
            state.loaded
            and self.store.sources() == state.sources
            and all(file_signature(p) == sig for p, sig in state.signatures.items())
            and file_signature(self.community_path) == state.community_signature
        )

    # -- reloading ---------------------------------------------------------------------------

    def refresh(self) -> bool:
        """Reload whatever changed since the last load. True when it swapped in a new state.

        Never waits: if another thread is refreshing already, returns False at once (a call
        is screened against the state in force). A damaged or unreadable community file is
        logged and left out, never raised; the family's lists raise
        :class:`~callguard.store.files.StoreError` if they cannot be read, after any new
        community state has been swapped in.
        """
        if not self._refreshing.acquire(blocking=False):
            return False
        try:
            return self._refresh()
        finally:
            self._refreshing.release()

    def _refresh(self) -> bool:
        old = self._state
        requested = self._requested
        forced = old.generation != requested or not old.loaded
        folder = _settled(file_signature(self._folder))  # before the files: a write shows
        sources = self.store.sources()
        signatures = {p: file_signature(p) for p in dict.fromkeys(sources.values())}
        stale = [
            n
            for n in LIST_NAMES
            if forced
            or old.sources.get(n) != sources[n]
            or old.signatures.get(sources[n]) != signatures[sources[n]]
        ]
        community_signature = file_signature(self.community_path)
        community_stale = forced or community_signature != old.community_signature
        if not (stale or community_stale):
            if folder != old.folder_signature:  # another file came or went: noted, no reload
                self._state = replace(old, folder_signature=folder)
            return False
        new = old
        if community_stale:
            community, problem = self._open_community(community_signature)
            new = replace(
                new,
                community=community,
                community_signature=community_signature,
                community_problem=problem,
            )
        if stale:
            try:
                exact, prefixes = self._read_lists(stale, sources, signatures)
            except BaseException:
                if new is not old:
                    self._state = new
                raise
            exact_all = {n: exact[n] if n in exact else old.exact[n] for n in LIST_NAMES}
            prefixes_all = {
                n: prefixes[n] if n in prefixes else old.prefixes[n] for n in LIST_NAMES
            }
            new = replace(
                new,
                exact=exact_all,
                prefixes=prefixes_all,
                max_prefix=max((len(p) for d in prefixes_all.values() for p in d), default=0),
                sources=sources,
                signatures=signatures,
                loaded=True,
                generation=requested,
            )
        # the one assignment that makes the new lists the ones in force
        self._state = replace(new, folder_signature=folder)
        return True

    def _open_community(self, signature: Signature | None) -> tuple[BigList | None, str | None]:
        if signature is None:
            if self._state.community is not None:
                log.info("the community block list %s is gone", self.community_path)
            return None, None
        try:
            community = BigList.open(self.community_path)
        except FileNotFoundError:  # removed between the stat and the open
            return None, None
        except BigListError as exc:
            log.error("%s. Screening goes on without the community block list.", exc)
            return None, str(exc)
        except Exception as exc:  # never stop screening over the community list
            log.exception("the community block list %s could not be opened", self.community_path)
            return None, f"{self.community_path} could not be opened: {exc}"
        log.info(
            "community block list %r: %s numbers, made %s",
            community.name,
            f"{len(community):,}",
            community.created_at.strftime("%Y-%m-%d %H:%M UTC"),
        )
        return community, None

    def _read_lists(
        self,
        list_names: list[str],
        sources: Mapping[str, Path],
        signatures: Mapping[Path, Signature | None],
    ) -> tuple[dict[str, dict[str, str]], dict[str, dict[str, str]]]:
        """The lists named, indexed (the others are not read). A big list whose built index is
        in the cache for its file as it is now is taken from there (see :class:`IndexCache`)."""
        exact: dict[str, dict[str, str]] = {n: {} for n in list_names}
        prefixes: dict[str, dict[str, str]] = {n: {} for n in list_names}
        keys: dict[str, tuple[str, Signature]] = {}
        if len(set(sources.values())) > 1:
            for name in list_names:  # a file per list: each can be cached on its own
                signature = signatures.get(sources[name])
                if name in CACHED_LISTS and signature is not None:
                    keys[name] = (str(sources[name]), signature)
        loaded = set()
        for name, key in list(keys.items()):
            cached = self.cache.load(name, key)
            if cached is not None:
                exact[name], prefixes[name] = cached
                loaded.add(name)
                del keys[name]
        list_names = [n for n in list_names if n not in loaded]
        seen: dict[str, str] = {}  # shares identical packed values (imported lists repeat names)

        def pack(doc: dict[str, Any]) -> tuple[str, str]:
            fields = _SEP.join(str(doc.get(f) or "") for f in self.FIELDS)
            return str(doc.get("number", "")), seen.setdefault(fields, fields)

        removed: set[str] = set()
        for list_name, rows in self.store.read_packed(pack, list_names).items():
            if list_name == SUPPRESSED:
                removed.update(number for number, _ in rows)
                continue
            for number, packed in rows:
                if number.endswith("*"):
                    prefixes[list_name][number[:-1]] = packed
                else:
                    exact[list_name][number] = packed
        if "protect" in exact:
            for number, entry in shipped_protected().items():
                if number not in removed and number not in exact["protect"]:
                    exact["protect"][number] = pack(entry.to_json())[1]
        seen.clear()
        if sum(map(len, exact.values())) + sum(map(len, prefixes.values())) > BIG_LIST:
            _release_freed_memory()  # a full collection holds the interpreter: only when it pays
        for name, key in keys.items():
            if len(exact[name]) + len(prefixes[name]) > BIG_LIST:
                self.cache.save(name, key, exact[name], prefixes[name])
        return exact, prefixes
