"""Very large block lists (the volunteer group's community list): a file of sorted numbers.

Theory of operation
-------------------
The family's own lists stay in TinyDB (:mod:`callguard.store.lists`), where every entry has a
name, a note and who added it. A community block list is different: hundreds of thousands to
millions of bare numbers, shared by a volunteer group, on a Pi Zero 2 W whose daemon must stay
under 40 MB. As a dict it would take about 100 bytes a number (100 MB for a million); here it
takes 8 bytes a number, on disk, and the daemon does not read it into memory: a lookup reads
the one page of the file that can hold the number.

The file (``community-block.cgl`` in ``storage.dir``, :data:`COMMUNITY_FILE`):

* a 96-byte header, little-endian (:data:`HEADER`): :data:`MAGIC` (8 bytes, PNG-style: a
  high-bit byte, CR LF, ^Z and LF, so a file mangled as text is recognised), the format
  :data:`VERSION`, the header's size, the count of numbers, when it was made (Unix seconds,
  UTC), its name (32 bytes of UTF-8, NUL-padded; ``"community"``) and the SHA-256 of the body;
* the body: ``count`` unsigned 64-bit little-endian integers, strictly increasing. A number is
  its E.164 digits as an integer: ``+441632960123`` is 441632960123. That is one to one, since
  E.164 has at most 15 digits (under 2**63) and never starts with 0 (country codes don't); the
  file holds only full E.164 numbers (a community list of caller IDs has no short codes, and a
  short code shown as a caller ID has its own setting, ``screening.short_code``).

A lookup is a binary search (:mod:`bisect`) in two steps: first over the *fences* (the first
number of every page of the file, about 16 KB for a million numbers, kept in memory), then over
the one page that can hold the number, read with ``pread`` and cast to ``'Q'``. So a lookup
costs one system call and at most one read from the SD card (rather than the twenty of a plain
binary search over a cold file), and the list costs the daemon 16 KB a million numbers: the
page cache holds the file, shared and dropped under memory pressure, never in the daemon's RSS.

Why not ``mmap``: a mapped file counts in the daemon's RSS for every page a lookup has touched,
so over months of calls a million numbers would add up to their 8 MB (a daemon of 33 MB would
pass the 40 MB budget), and a file cut short in place under a mapping (``cp`` over it) kills
the process with SIGBUS at the next lookup. A ``pread`` costs about what the page fault and the
``fstat`` guarding the mapping would, and a file cut short only gives a short read ("not on
the list" until the index opens the new file).

:meth:`BigList.open` refuses a damaged file with :class:`BigListError`, naming the file, what
is wrong and the fix: not a CallGuard list (magic), another format version, a size that does
not match the count (cut short or added to), a body whose SHA-256 differs from the header's
(changed on the card), numbers out of order. The open reads the whole body once, a chunk at a
time, to check the SHA-256 and to take the fences, and checks that the fences are strictly
increasing; the SHA-256 proves the body is what :func:`write_biglist` (which sorts) wrote, and
the fences catch a file from another writer that is out of order (unsorted, or the wrong byte
order). ``check_order=True`` checks every pair as well (about 50 ms a million numbers on a PC,
several times that on a Pi): ``callguard block list --community`` does, the daemon does not.

The file is only ever replaced whole (temp file, fsync, rename): an open list keeps reading
the file it opened until the last lookup that holds it is done, and the index opens the new one.

Writing (:func:`write_biglist`, :class:`NumberSetBuilder`) streams: numbers are collected in
sorted runs of packed integers (8 bytes a number, plus one run of Python ints), merged, freed
of duplicates and written a block at a time while the SHA-256 is taken; the header goes in last,
then fsync and rename, so a reader sees the old list or the new one, never a part.

Reading a list to import (:class:`NumberFile`) streams too, a line at a time. A line that is
already E.164 (``+442079460000``) takes a fast path (:func:`fast_e164`: phonenumbers' own
patterns for the country's number types and their lengths, one compiled expression per country
code, about 1 µs) instead of phonenumbers' full parse (about 50 µs: nearly a minute for a
million lines); anything else (``020 7946 0000``) is parsed as a person's typing is
(:func:`~callguard.core.numbers.parse_typed`).
"""

from __future__ import annotations

import bisect
import codecs
import contextlib
import dataclasses
import datetime as dt
import errno
import glob
import hashlib
import heapq
import io
import mmap
import operator
import os
import re
import secrets
import stat
import struct
import sys
import time
from array import array
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Final

from callguard.core.numbers import NumberError, parse_typed
from callguard.errors import UsageError
from callguard.store.files import (
    DEFAULT_FILE_MODE,
    SAFE_OPEN,
    Signature,
    StoreError,
    UnreadableFile,
    file_type,
    fsync_dir,
    give_to_folder_owner,
    not_a_regular_file,
    open_regular_file,
    os_error_advice,
    sibling,
    unlink_quietly,
)

__all__ = [
    "COMMUNITY_FILE",
    "HEADER",
    "MAGIC",
    "VERSION",
    "BigList",
    "BigListError",
    "NumberFile",
    "NumberSetBuilder",
    "community_path",
    "decode",
    "encode",
    "fast_e164",
    "write_biglist",
]

COMMUNITY_FILE: Final = "community-block.cgl"
"""The community block list's file in ``storage.dir``."""

MAGIC: Final = b"\x89CGL\r\n\x1a\n"
VERSION: Final = 1
HEADER: Final = struct.Struct("<8sIIQq32s32s")
"""magic, version, header size, count, created (Unix s), name (UTF-8, NUL-padded), SHA-256."""
HEADER_SIZE: Final = HEADER.size  # 96: a multiple of 8, so the body is aligned for 'Q'
_ITEM: Final = 8
_NAME_BYTES: Final = 32
_MAX_E164: Final = 10**15  # 15 digits
_E164_FORM: Final = re.compile(r"\+([1-9][0-9]{6,14})")  # ASCII digits only, unlike \d
_READ_CHUNK: Final = 1 << 20
_WRITE_ITEMS: Final = 1 << 16
_RUN_ITEMS: Final = 1 << 16


class BigListError(StoreError):
    """A number-list file that cannot be used (the message names the file and the fix)."""


def community_path(directory: str | os.PathLike[str]) -> Path:
    return Path(directory) / COMMUNITY_FILE


def encode(key: str) -> int | None:
    """A full E.164 number's digits as an integer (``+441632960123`` -> 441632960123), or None
    for anything else (a short code, a prefix rule, text)."""
    if len(key) < 2 or key[0] != "+" or key[1] == "0" or len(key) > 16:
        return None
    digits = key[1:]
    if not (digits.isascii() and digits.isdigit()):
        return None
    return int(digits)


def decode(value: int) -> str:
    return f"+{value}"


def _check_byte_order() -> None:
    if sys.byteorder != "little":  # the 'Q' cast reads native order; every Pi is little-endian
        raise BigListError(
            "number-list files are little-endian, and this machine is not; "
            "CallGuard's community block list needs a little-endian machine (a Raspberry Pi, x86)"
        )


# -- reading ---------------------------------------------------------------------------------


class BigList:
    """An open number-list file: ``key in biglist`` for an E.164 key; read-only, thread-safe.

    Open it with :meth:`open`. It holds the open file until it is garbage (or :meth:`close`),
    so whoever still holds it can keep looking numbers up after the file has been replaced.
    """

    __slots__ = (
        "_block",
        "_fences",
        "_file",
        "_shift",
        "count",
        "created",
        "name",
        "path",
        "sha256",
        "signature",
        "size",
        "source",
    )

    def __init__(
        self,
        path: Path,
        file: io.FileIO,
        st: os.stat_result,
        header: tuple[str, int, int, bytes],
        fences: array[int],
    ) -> None:
        self.path = path
        self.name, self.count, self.created, self.sha256 = header
        self.size = st.st_size
        self.signature: Signature = (st.st_ino, st.st_size, st.st_mtime_ns)
        self._file = file
        self._fences = fences
        self._block = mmap.PAGESIZE  # one page of the file is read per lookup
        self._shift = HEADER_SIZE // _ITEM  # the body starts this many numbers into page 0
        created = self.created_at.isoformat()
        self.source: dict[str, str] = {"list": self.name, "list_created": created}
        """What an entry found here says of where it came from (worked out once, not on every
        call the list blocks)."""

    @classmethod
    def open(cls, path: str | os.PathLike[str], *, check_order: bool = False) -> BigList:
        """Open and check ``path``. Raises FileNotFoundError if it is missing, otherwise
        :class:`BigListError` naming what is wrong and the fix."""
        _check_byte_order()
        path = Path(path)
        try:
            fd = os.open(path, os.O_RDONLY | SAFE_OPEN)
        except FileNotFoundError:
            raise
        except OSError as exc:
            if exc.errno == errno.ELOOP:  # O_NOFOLLOW met a symbolic link
                raise BigListError(not_a_regular_file(path, "a symbolic link")) from None
            raise BigListError(f"{path}: cannot read the file: {os_error_advice(exc)}") from None
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                kind = "a folder" if stat.S_ISDIR(st.st_mode) else file_type(st.st_mode)
                raise BigListError(not_a_regular_file(path, kind))
            file = io.FileIO(fd, "r", closefd=True)
        except BaseException:
            os.close(fd)
            raise
        try:
            header = _read_header(path, fd, st.st_size)
            fences = _check_body(path, fd, header, check_order)
            return cls(path, file, st, header, fences)
        except OSError as exc:
            file.close()
            raise BigListError(f"{path}: cannot read the file: {os_error_advice(exc)}") from None
        except BaseException:
            file.close()
            raise

    def __len__(self) -> int:
        return self.count

    def __contains__(self, key: object) -> bool:
        value = encode(key) if isinstance(key, str) else None
        if value is None or not self.count:
            return False
        page = bisect.bisect_right(self._fences, value) - 1
        if page < 0:
            return False
        block = self._block
        offset = page * block
        want = min(block, self.size - offset)
        try:
            data = os.pread(self._file.fileno(), want, offset)
        except (OSError, ValueError):  # closed, or the card failed: not a reason to block
            return False
        if len(data) != want:  # changed in place (cut short) since it was checked
            return False
        with memoryview(data) as view, view[HEADER_SIZE if page == 0 else 0 :].cast("Q") as page_:
            i = bisect.bisect_left(page_, value)
            return i < len(page_) and page_[i] == value

    def __iter__(self) -> Iterator[str]:
        """Every number, in order, as E.164 (reads the whole file: for checks, not lookups)."""
        fd = self._file.fileno()
        for offset in range(HEADER_SIZE, self.size, _READ_CHUNK):
            data = os.pread(fd, min(_READ_CHUNK, self.size - offset), offset)
            with memoryview(data) as view, view.cast("Q") as numbers:
                yield from (decode(value) for value in numbers)

    @property
    def created_at(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.created, dt.UTC)

    def close(self) -> None:
        """Close the file now (lookups answer False afterwards)."""
        self._file.close()


def _read_header(path: Path, fd: int, size: int) -> tuple[str, int, int, bytes]:
    again = "; import the list again (callguard block import --community FILE)"
    if size < HEADER_SIZE:
        if size >= len(MAGIC) and os.pread(fd, len(MAGIC), 0) != MAGIC:
            raise BigListError(f"{path} is not a CallGuard number list{again}")
        raise BigListError(
            f"{path} is {size} bytes, shorter than a number list's {HEADER_SIZE}-byte header: "
            f"it was cut short{again}"
        )
    raw = os.pread(fd, HEADER_SIZE, 0)
    if len(raw) != HEADER_SIZE:
        raise BigListError(f"{path} was cut short while it was read{again}")
    magic, version, header_size, count, created, name, digest = HEADER.unpack(raw)
    if magic != MAGIC:
        raise BigListError(
            f"{path} is not a CallGuard number list (it does not start with one's "
            f"signature bytes){again}"
        )
    if version != VERSION:
        raise BigListError(
            f"{path} is a number list of format version {version}, and this CallGuard reads "
            f"version {VERSION}: update CallGuard, or import the list again with this one"
        )
    if header_size != HEADER_SIZE:
        raise BigListError(f"{path} has a {header_size}-byte header, not {HEADER_SIZE}{again}")
    expected = HEADER_SIZE + count * _ITEM
    if size != expected:
        how = "cut short" if size < expected else "added to"
        raise BigListError(
            f"{path} is {size:,} bytes, but its header says {count:,} numbers "
            f"({expected:,} bytes): it was {how}{again}"
        )
    try:
        text = name.rstrip(b"\0").decode("utf-8")
    except UnicodeDecodeError:
        raise BigListError(f"{path} has a damaged header (its name is not text){again}") from None
    return text, count, created, digest


def _check_body(
    path: Path, fd: int, header: tuple[str, int, int, bytes], check_order: bool
) -> array[int]:
    """Check the body's SHA-256 and order, reading it a chunk at a time; its fences."""
    _, count, _, digest = header
    again = "; import the list again (callguard block import --community FILE)"
    per = mmap.PAGESIZE // _ITEM
    shift = HEADER_SIZE // _ITEM
    fences: array[int] = array("Q")
    sha = hashlib.sha256()
    buffer = bytearray(_READ_CHUNK)  # a multiple of the page size and of 8
    offset, index, previous = HEADER_SIZE, 0, -1
    out_of_order = False
    with memoryview(buffer) as whole:
        while index < count:
            want = min(_READ_CHUNK, (count - index) * _ITEM)
            got = os.preadv(fd, [whole[:want]], offset)
            if got != want:
                raise BigListError(f"{path} was cut short while it was read{again}")
            sha.update(whole[:want])
            with whole[:want].cast("Q") as chunk:
                n = len(chunk)
                # fences: the first number of every page (page p starts at index p*per - shift)
                start = (-(index + shift)) % per
                if index == 0:  # page 0 starts with the first number
                    fences.append(chunk[0])
                    start = start or per
                fences.extend(chunk[start::per])
                if n and chunk[0] <= previous:
                    out_of_order = True
                if check_order and not out_of_order and n > 1:
                    out_of_order = not all(map(operator.lt, chunk[:-1], chunk[1:]))
                previous = chunk[-1] if n else previous
            offset += want
            index += want // _ITEM
    if sha.digest() != digest:
        raise BigListError(
            f"{path} has changed since it was written (its SHA-256 does not match its "
            f"header: a failing SD card, or an edit){again}"
        )
    if out_of_order or any(map(operator.ge, fences[:-1], fences[1:])):
        raise BigListError(f"{path} is damaged: its numbers are not in order{again}")
    if count and (fences[0] < 1 or previous >= _MAX_E164):  # sorted: the least and the most
        raise BigListError(f"{path} is damaged: it holds values that are not numbers{again}")
    return fences


# -- writing ---------------------------------------------------------------------------------


class NumberSetBuilder:
    """Collects E.164 numbers (any order, duplicates allowed) and writes them as a list file.

    Memory: 8 bytes a number, plus one run of up to ``run_items`` Python ints being sorted.
    """

    def __init__(self, run_items: int = _RUN_ITEMS) -> None:
        self._run_items = run_items
        self._pending: list[int] = []
        self._runs: list[array[int]] = []
        self.added = 0
        """Numbers added, duplicates included."""

    def add(self, key: str) -> None:
        """Add a full E.164 number; ValueError for anything else."""
        value = encode(key)
        if value is None:
            raise ValueError(f"{key!r} is not a full E.164 number such as +441632960123")
        self._pending.append(value)
        self.added += 1
        if len(self._pending) >= self._run_items:
            self._flush()

    def extend(self, keys: Iterable[str]) -> None:
        for key in keys:
            self.add(key)

    def __len__(self) -> int:
        return self.added

    def _flush(self) -> None:
        if self._pending:
            self._runs.append(array("Q", sorted(set(self._pending))))
            self._pending = []

    def _sorted_unique(self) -> Iterator[int]:
        self._flush()
        runs, self._runs = self._runs, []
        merged: Iterable[int] = runs[0] if len(runs) == 1 else heapq.merge(*runs)
        previous = -1
        for value in merged:
            if value != previous:
                yield value
                previous = value

    def write(
        self,
        path: str | os.PathLike[str],
        *,
        name: str = "community",
        created: int | None = None,
        mode: int = DEFAULT_FILE_MODE,
    ) -> int:
        """Write the numbers to ``path`` whole or not at all; the count of distinct numbers.

        Raises :class:`~callguard.store.files.StoreError` naming the file and the fix if the
        folder cannot be written (read-only or full card, permissions). The builder is empty
        afterwards.
        """
        _check_byte_order()
        path = Path(path)
        label = name.encode("utf-8")
        if len(label) > _NAME_BYTES or b"\0" in label:
            raise ValueError(f"a list's name is at most {_NAME_BYTES} bytes of text: {name!r}")
        stamp = int(time.time()) if created is None else created
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            return self._write(path, label, stamp, mode)
        except OSError as exc:
            raise StoreError(f"cannot write {path}: {os_error_advice(exc)}") from None

    def _write(self, path: Path, label: bytes, created: int, mode: int) -> int:
        _remove_stale_temps(path)
        temp = sibling(path, f".tmp-{os.getpid()}-{secrets.token_hex(4)}")
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW
        fd = os.open(temp, flags, mode)
        try:
            give_to_folder_owner(fd, path.parent)
            with open(fd, "wb", closefd=True) as out:
                out.write(bytes(HEADER_SIZE))
                sha = hashlib.sha256()
                count = 0
                block: array[int] = array("Q")
                for value in self._sorted_unique():
                    block.append(value)
                    if len(block) >= _WRITE_ITEMS:
                        sha.update(block)
                        out.write(block)
                        count += len(block)
                        block = array("Q")
                sha.update(block)
                out.write(block)
                count += len(block)
                out.seek(0)
                out.write(
                    HEADER.pack(MAGIC, VERSION, HEADER_SIZE, count, created, label, sha.digest())
                )
                out.flush()
                os.fsync(out.fileno())
            os.replace(temp, path)
        except BaseException:
            unlink_quietly(temp)
            raise
        fsync_dir(path.parent)
        return count


def _remove_stale_temps(path: Path) -> None:
    """Remove the temp files of writers that were killed (8 MB a million numbers, on an SD
    card); a temp file of a process still running is left alone."""
    for temp in path.parent.glob(f"{glob.escape(path.name)}.tmp-*"):
        pid = temp.name[len(path.name) + len(".tmp-") :].partition("-")[0]
        if not pid.isdigit():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            unlink_quietly(temp)
        except OSError:  # someone else's process, still running
            pass


def write_biglist(
    path: str | os.PathLike[str],
    keys: Iterable[str],
    *,
    name: str = "community",
    created: int | None = None,
) -> int:
    """Write the E.164 numbers ``keys`` (any order, duplicates allowed) to ``path``, atomically.
    Returns how many distinct numbers it holds."""
    builder = NumberSetBuilder()
    builder.extend(keys)
    return builder.write(path, name=name, created=created)


# -- reading a list to import ----------------------------------------------------------------


_TYPES: Final = (
    "fixed_line",
    "mobile",
    "toll_free",
    "premium_rate",
    "shared_cost",
    "personal_number",
    "voip",
    "pager",
    "uan",
    "voicemail",
)


def _pattern_check(cc: int) -> re.Pattern[str] | None:
    """For a country code, one pattern a valid national number matches: the union, over the
    code's regions (+1, +44 and +7 have several), of each number type's pattern, each with its
    possible lengths as a look-ahead. That is what phonenumbers' validity checks, in one
    compiled expression. None if no country has the code."""
    import phonenumbers  # here, not at the top: opening a list (the daemon, the CLI) needs none

    regions = phonenumbers.region_codes_for_country_code(cc)
    patterns: list[str] = []
    for region in regions:
        md = (
            phonenumbers.PhoneMetadata.metadata_for_nongeo_region(cc)
            if region == "001"
            else phonenumbers.PhoneMetadata.metadata_for_region(region)
        )
        if md is None or md.general_desc is None:
            continue
        general = tuple(md.general_desc.possible_length or ())
        for kind in _TYPES:
            desc = getattr(md, kind, None)
            if desc is None or not desc.national_number_pattern:
                continue
            lengths = [n for n in (desc.possible_length or general) if n > 0]
            ahead = "|".join(f"[0-9]{{{n}}}" for n in lengths)
            patterns.append(f"(?=(?:{ahead})\\Z)(?:{desc.national_number_pattern})")
    return re.compile("|".join(patterns)) if patterns else None


_CHECKS: dict[int, re.Pattern[str] | None] = {}


def fast_e164(text: str) -> str | None:
    """``text`` if it is already a valid full number in E.164 form, else None (then parse it
    with :func:`~callguard.core.numbers.parse_typed`, which also knows the other ways of
    writing a number, and says what is wrong).

    Valid as phonenumbers means it (a country code that exists, and a national number of a
    possible length matching one of its number types' patterns), checked with one compiled
    pattern per country code: about 1 µs, against the 40 µs of a full parse.
    """
    form = _E164_FORM.fullmatch(text)
    if form is None:
        return None
    digits = form[1]
    for size in (1, 2, 3):  # country codes are prefix-free: at most one of these is one
        cc = int(digits[:size])
        if cc not in _CHECKS:
            _CHECKS[cc] = _pattern_check(cc)
        check = _CHECKS[cc]
        if check is not None:
            return text if check.fullmatch(digits[size:]) else None
    return None


_FIRST_CELL: Final = re.compile(r"[^,;\t]*")
_MAX_LINE: Final = 1000
_KEPT_PROBLEMS: Final = 100


@dataclasses.dataclass
class NumberFile:
    """The numbers of a text or CSV file (one a line, or the first column), read a line at a
    time: iterate for the E.164 keys; bad lines are counted in :attr:`bad` and the first
    :data:`_KEPT_PROBLEMS` kept in :attr:`problems` as (line, message).

    Blank lines and lines starting with ``#`` are skipped, and so is a first line without a
    digit (a header). UTF-8 (with or without a byte-order mark) or UTF-16 with one; other bytes
    in a name column do not matter. Opening it raises :class:`~callguard.errors.UsageError` if
    it is missing, not an ordinary file, or not text.
    """

    path: Path
    region: str = "GB"
    problems: list[tuple[int, str]] = dataclasses.field(default_factory=list)
    bad: int = 0
    lines: int = 0
    fast: int = 0
    """Lines taken by the fast path (already E.164)."""

    def __iter__(self) -> Iterator[str]:
        with self._open() as text:
            while line := text.readline(_MAX_LINE):
                self.lines += 1
                if not line.endswith("\n") and len(line) >= _MAX_LINE:
                    while (rest := text.readline(_MAX_LINE)) and not rest.endswith("\n"):
                        pass
                    self._problem(f"a line longer than {_MAX_LINE} characters")
                    continue
                key = self._key(line.strip())
                if key is not None:
                    yield key

    def _key(self, line: str) -> str | None:
        if not line or line.startswith("#"):
            return None
        match = _FIRST_CELL.match(line)
        cell = (match[0] if match else "").strip().strip("\"'").strip()
        key = fast_e164(cell)
        if key is not None:
            self.fast += 1
            return key
        if self.lines == 1 and not any(ch.isdigit() for ch in line):
            return None  # a header
        if "\0" in cell:
            self._problem("NUL characters: this is not a text file (save it as CSV UTF-8)")
            return None
        if cell.endswith("*"):
            self._problem(
                f"{cell!r} is a prefix rule; the community block list holds whole numbers "
                "(put a prefix rule on the family's block list: callguard block add --prefix)"
            )
            return None
        try:
            caller = parse_typed(cell, self.region)
        except NumberError as exc:
            self._problem(str(exc) if cell else "no number in the first column")
            return None
        if caller.e164 is None:
            self._problem(
                f"{cell!r} is a short code; the community block list holds whole numbers "
                "(a call showing a short code is blocked anyway: screening.short_code)"
            )
            return None
        return caller.e164

    def _problem(self, message: str) -> None:
        self.bad += 1
        if len(self.problems) < _KEPT_PROBLEMS:
            self.problems.append((self.lines, message))

    @contextlib.contextmanager
    def _open(self) -> Iterator[io.TextIOWrapper]:
        name = self.path
        try:
            fd = open_regular_file(name, what="the file")
        except FileNotFoundError:
            raise UsageError(f"{name}: no such file; check the name and the folder") from None
        except UnreadableFile as exc:
            raise UsageError(str(exc)) from None
        try:
            raw = io.FileIO(fd, "r", closefd=True)
        except BaseException:
            os.close(fd)
            raise
        try:
            start = os.pread(fd, 4096, 0)
            if not start.strip():
                raise UsageError(f"{name} is empty; export the numbers again, one a line")
            utf16 = start.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))
            if not utf16 and b"\0" in start:
                raise UsageError(
                    f"{name}: the file has NUL characters, so it is not a text file (a "
                    "spreadsheet, or UTF-16 without a byte-order mark?). Save it as CSV UTF-8 "
                    "or as text, one number a line, and import that"
                )
            buffered = io.BufferedReader(raw, 1 << 16)
        except BaseException:
            raw.close()
            raise
        text = io.TextIOWrapper(
            buffered, encoding="utf-16" if utf16 else "utf-8-sig", errors="replace", newline=None
        )
        try:
            yield text
        except OSError as exc:
            raise UsageError(
                f"{name}: cannot be read ({exc.strerror or exc}); check the disk (dmesg)"
            ) from None
        finally:
            text.close()
