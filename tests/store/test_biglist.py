"""The community block list: the file of sorted numbers, its import, and the index over it.

Files are written by the real writer and then damaged on purpose; the index tests swap files
under a ListIndex and check what lookups see, before, during and after a reload.
"""

from __future__ import annotations

import gc
import hashlib
import json
import mmap
import os
import random
import struct
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callguard.cli import main
from callguard.core.lists import LIST_NAMES, target_for
from callguard.core.numbers import NumberError, parse_typed
from callguard.errors import UsageError
from callguard.store import biglist
from callguard.store.biglist import (
    HEADER,
    HEADER_SIZE,
    MAGIC,
    BigList,
    BigListError,
    NumberFile,
    NumberSetBuilder,
    community_path,
    encode,
    fast_e164,
    write_biglist,
)
from callguard.store.files import StoreError
from callguard.store.index import ListIndex
from callguard.store.lists import Store


def random_numbers(count: int, seed: int = 13) -> list[str]:
    """``count`` distinct E.164 numbers, mostly UK, some from elsewhere, in random order."""
    rng = random.Random(seed)
    values: set[int] = set()
    while len(values) < count:
        cc = rng.choice([44, 44, 44, 1, 33, 49, 234, 880])
        values.add(int(f"{cc}{rng.randrange(10**8, 10**10)}"))
    numbers = [f"+{v}" for v in values]
    rng.shuffle(numbers)
    return numbers


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "community-block.cgl"


@pytest.fixture
def opened() -> Iterator[Callable[..., BigList]]:
    lists: list[BigList] = []

    def open_(path: Path, **kwargs: Any) -> BigList:
        lists.append(BigList.open(path, **kwargs))
        return lists[-1]

    yield open_
    for big in lists:
        big.close()


# -- the file: round trip --------------------------------------------------------------------


@pytest.mark.parametrize("page_size", [mmap.PAGESIZE, 16384, 65536])
def test_every_number_written_is_found_and_no_other(
    path: Path, opened: Callable[..., BigList], page_size: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Page sizes of 16 and 64 KB (a Pi 5 kernel, some arm64 ones) move the fences."""
    monkeypatch.setattr(biglist.mmap, "PAGESIZE", page_size)
    numbers = random_numbers(10_000)
    count = write_biglist(path, numbers + numbers[:500], name="community", created=1_750_000_000)
    assert count == 10_000
    big = opened(path, check_order=True)
    assert (len(big), big.name, big.created) == (10_000, "community", 1_750_000_000)
    assert all(n in big for n in numbers)
    written = {encode(n) for n in numbers}
    neighbours = [f"+{v + d}" for n in numbers for d in (-1, 1) if (v := encode(n)) is not None]
    absent = [n for n in neighbours if encode(n) not in written]
    assert len(absent) > 19_000
    assert not any(n in big for n in absent)
    values = sorted(v for v in written if v is not None)
    assert f"+{values[0] - 1}" not in big and f"+{values[-1] + 1}" not in big
    assert list(big) == [f"+{v}" for v in values]  # sorted, one of each
    body = path.read_bytes()[HEADER_SIZE:]
    assert big.sha256 == hashlib.sha256(body).digest()
    assert path.stat().st_size == HEADER_SIZE + 8 * 10_000


def test_many_sorted_runs_merge_to_the_same_file(path: Path, tmp_path: Path) -> None:
    numbers = random_numbers(5_000)
    builder = NumberSetBuilder(run_items=300)  # 17 runs, duplicates across them
    builder.extend(numbers + numbers[::7])
    assert builder.write(path, created=1) == 5_000
    other = tmp_path / "one-run.cgl"
    write_biglist(other, numbers, created=1)
    assert path.read_bytes() == other.read_bytes()


def test_an_empty_list_and_a_list_of_one(path: Path, opened: Callable[..., BigList]) -> None:
    assert write_biglist(path, []) == 0
    empty = opened(path, check_order=True)
    assert len(empty) == 0 and "+441632960123" not in empty
    write_biglist(path, ["+441632960123"])
    one = opened(path)
    assert "+441632960123" in one
    assert "+441632960122" not in one and "+441632960124" not in one


@pytest.mark.parametrize(
    "key",
    ["999", "", "+", "441632960123", "+0441632960123", "+44 1632 960123", "+44163296012٣",
     "+1234567890123456", "+44870*"],
)  # fmt: skip
def test_keys_that_are_not_full_numbers_are_never_found(
    path: Path, opened: Callable[..., BigList], key: str
) -> None:
    write_biglist(path, ["+441632960123", "+999"])
    assert key not in opened(path)


def test_the_writer_refuses_what_is_not_a_full_number(path: Path) -> None:
    with pytest.raises(ValueError, match="999"):
        write_biglist(path, ["+441632960123", "999"])
    assert not path.exists()


def test_a_failed_write_leaves_the_old_list_and_no_temp_file(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_biglist(path, ["+441632960123"])
    before = path.read_bytes()

    def full_card(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(biglist.os, "fsync", full_card)
    with pytest.raises(StoreError, match="full"):
        write_biglist(path, random_numbers(1000))
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]


def test_a_killed_writers_temp_file_is_removed_by_the_next_write(path: Path) -> None:
    dead = subprocess.Popen(["true"])  # a process id that has ended
    dead.wait()
    path.parent.mkdir(parents=True)
    stale = path.with_name(f"{path.name}.tmp-{dead.pid}-0a0b0c0d")
    running = path.with_name(f"{path.name}.tmp-{os.getpid()}-0a0b0c0d")
    other = path.with_name("lists.json.tmp-1-0a0b0c0d")
    for temp in (stale, running, other):
        temp.write_bytes(b"half a list")
    write_biglist(path, ["+441632960123"])
    assert not stale.exists()
    assert running.exists() and other.exists()


def test_an_open_list_keeps_its_numbers_when_the_file_is_replaced(
    path: Path, opened: Callable[..., BigList]
) -> None:
    write_biglist(path, ["+441632960123"])
    old = opened(path)
    write_biglist(path, ["+447700900123"])
    assert "+441632960123" in old and "+447700900123" not in old
    new = opened(path)
    assert "+447700900123" in new and "+441632960123" not in new


def test_a_file_cut_short_in_place_answers_no_and_does_not_fail(
    path: Path, opened: Callable[..., BigList]
) -> None:
    """``cp`` over the file truncates it in place; a lookup must neither fail nor find."""
    numbers = random_numbers(2000)
    write_biglist(path, numbers)
    big = opened(path)
    assert numbers[-1] in big
    with open(path, "r+b") as f:
        f.truncate(HEADER_SIZE + 8)
    assert not any(n in big for n in numbers[:200])


def test_a_closed_list_answers_no(path: Path) -> None:
    write_biglist(path, ["+441632960123"])
    big = BigList.open(path)
    big.close()
    assert "+441632960123" not in big


# -- the file: damaged files are refused -----------------------------------------------------


def rewrite(path: Path, values: list[int], **header: Any) -> None:
    """A file as another writer might make it: these values in this order, a matching hash."""
    body = struct.pack(f"<{len(values)}Q", *values)
    fields = {
        "magic": MAGIC,
        "version": 1,
        "header_size": HEADER_SIZE,
        "count": len(values),
        "created": 0,
        "name": b"community",
        "sha256": hashlib.sha256(body).digest(),
    }
    fields.update(header)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(HEADER.pack(*fields.values()) + body)


def sorted_values(count: int = 3000) -> list[int]:
    return sorted(v for n in random_numbers(count) if (v := encode(n)) is not None)


def flip(offset: int) -> Callable[[bytearray], None]:
    def damage(data: bytearray) -> None:
        data[offset] ^= 0x10

    return damage


DAMAGE: dict[str, tuple[Callable[[bytearray], Any], str]] = {
    "magic": (flip(0), "is not a CallGuard number list"),
    "version": (flip(8), "format version 17"),
    "header size": (flip(12), "header, not 96"),
    "count": (flip(16), "its header says"),
    "name": (lambda d: d.__setitem__(slice(40, 42), b"\xff\xfe"), "name is not text"),
    "a body bit": (flip(HEADER_SIZE + 8 * 1234 + 3), "SHA-256 does not match"),
    "the digest": (flip(HEADER_SIZE - 1), "SHA-256 does not match"),
    "cut short": (lambda d: d.__delitem__(slice(-8, None)), "it was cut short"),
    "cut mid-number": (lambda d: d.__delitem__(slice(-3, None)), "it was cut short"),
    "added to": (lambda d: d.extend(b"\0" * 8), "it was added to"),
    "header only half": (lambda d: d.__delitem__(slice(50, None)), "shorter than"),
    "empty": (lambda d: d.clear(), "shorter than"),
    "text": (lambda d: d.__setitem__(slice(None), b"+441632960123\n" * 20), "not a CallGuard"),
}


@pytest.mark.parametrize("what", DAMAGE)
def test_a_damaged_file_is_refused_naming_the_file_and_what_is_wrong(path: Path, what: str) -> None:
    write_biglist(path, random_numbers(3000))
    data = bytearray(path.read_bytes())
    damage, words = DAMAGE[what]
    damage(data)
    path.write_bytes(bytes(data))
    with pytest.raises(BigListError) as refused:
        BigList.open(path)
    assert str(path) in str(refused.value) and words in str(refused.value)


@pytest.mark.parametrize(
    "order",
    [
        pytest.param(lambda v: v[::-1], id="reversed"),
        pytest.param(lambda v: random.Random(1).sample(v, len(v)), id="shuffled"),
        pytest.param(lambda v: [int.from_bytes(x.to_bytes(8, "little")) for x in v], id="endian"),
    ],
)
def test_numbers_out_of_order_are_refused(
    path: Path, order: Callable[[list[int]], list[int]]
) -> None:
    rewrite(path, order(sorted_values()))  # a hash that matches: only the order is wrong
    with pytest.raises(BigListError, match="not in order"):
        BigList.open(path)


@pytest.mark.parametrize(
    "order",
    [
        pytest.param(lambda v: [*v[:1000], v[1001], v[1000], *v[1002:]], id="one swap"),
        pytest.param(lambda v: [*v[:1000], v[1000], *v[1000:-1]], id="one repeat"),
        pytest.param(lambda v: v[:1500] + v[1400:2900], id="overlapping halves"),
    ],
)
def test_the_full_check_finds_a_single_pair_out_of_order(
    path: Path, order: Callable[[list[int]], list[int]]
) -> None:
    rewrite(path, order(sorted_values()))
    with pytest.raises(BigListError, match="not in order"):
        BigList.open(path, check_order=True)


@pytest.mark.parametrize("values", [[0, 441632960123], [441632960123, 10**15]])
def test_a_value_that_is_no_number_is_refused(path: Path, values: list[int]) -> None:
    rewrite(path, values)
    with pytest.raises(BigListError, match="values that are not numbers"):
        BigList.open(path)


def test_a_link_a_pipe_or_a_folder_is_refused_without_waiting(path: Path, tmp_path: Path) -> None:
    write_biglist(tmp_path / "real.cgl", ["+441632960123"])
    path.parent.mkdir(exist_ok=True)
    path.symlink_to(tmp_path / "real.cgl")
    with pytest.raises(BigListError, match="symbolic link"):
        BigList.open(path)
    path.unlink()
    os.mkfifo(path)  # opened without O_NONBLOCK this would wait for a writer for ever
    with pytest.raises(BigListError, match="pipe"):
        BigList.open(path)
    path.unlink()
    path.mkdir()
    with pytest.raises(BigListError):
        BigList.open(path)


def test_a_missing_file_is_file_not_found(path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        BigList.open(path)


# -- the fast path for numbers already in E.164 ----------------------------------------------


def example_numbers() -> list[str]:
    found = []
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        for kind in range(11):
            number = phonenumbers.example_number_for_type(region, kind)
            if number is not None:
                found.append(
                    phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
                )
    return found


def slow_key(text: str) -> str | None:
    try:
        return parse_typed(text, "GB").e164
    except NumberError:
        return None


def test_the_fast_path_takes_valid_numbers_of_every_country_as_the_full_parse_does() -> None:
    examples = example_numbers()
    assert len(examples) > 1000
    taken = [n for n in examples if fast_e164(n) is not None]
    assert len(taken) >= 0.99 * len(examples)  # the fast path is the one used
    assert all(fast_e164(n) == n == slow_key(n) for n in taken)


@settings(max_examples=3000, deadline=None)
@given(
    st.sampled_from(sorted(phonenumbers.COUNTRY_CODE_TO_REGION_CODE) + [44] * 50),
    st.text("0123456789", min_size=4, max_size=13),
)
def test_what_the_fast_path_takes_the_full_parse_takes_as_the_same_number(
    cc: int, rest: str
) -> None:
    text = f"+{cc}{rest}"
    fast = fast_e164(text)
    if fast is not None:
        assert fast == text
        # an allocated number: the same key; an unallocated one never matches a caller anyway
        assert slow_key(text) in (text, None)


@pytest.mark.parametrize(
    "text",
    ["+4401632960123", "+44 1632 960123", "01632 960123", "+44163296012", "+99912345678",
     "+44163296012345678", "441632960123",
     "+44\uff11\uff16\uff13\uff12\uff19\uff16\uff10\uff11\uff12\uff13"],  # full-width
)  # fmt: skip
def test_anything_else_is_left_to_the_full_parse(text: str) -> None:
    assert fast_e164(text) is None


# -- reading a list to import ----------------------------------------------------------------


def read(tmp_path: Path, data: bytes, region: str = "GB") -> tuple[list[str], NumberFile]:
    source = tmp_path / "list.csv"
    source.write_bytes(data)
    numbers = NumberFile(source, region)
    return list(numbers), numbers


def test_numbers_one_a_line_or_the_first_column(tmp_path: Path) -> None:
    data = (
        b"number,reported\r\n"
        b"+442079460000,12 times\r\n"
        b"\r\n"
        b"# from the hub\r\n"
        b'"020 7946 0001";"twice"\r\n'
        b"07700 900123\twhatever\r\n"
        b"  +33 1 23 45 67 89  \r\n"
    )
    keys, numbers = read(tmp_path, data)
    assert keys == ["+442079460000", "+442079460001", "+447700900123", "+33123456789"]
    assert (numbers.bad, numbers.lines, numbers.fast) == (0, 7, 1)


def test_bad_lines_are_counted_with_their_line_numbers(tmp_path: Path) -> None:
    lines = ["+441632960123", "999", "+44870*", "hello", "", "0123", "+447700900123,x"]
    keys, numbers = read(tmp_path, "\r".join(lines).encode())  # old Mac line ends
    assert keys == ["+441632960123", "+447700900123"]
    assert [line for line, _ in numbers.problems] == [2, 3, 4, 6]
    messages = dict(numbers.problems)
    assert "short code" in messages[2] and "prefix rule" in messages[3]
    assert "letters" in messages[4]


def test_a_header_counts_only_on_the_first_line(tmp_path: Path) -> None:
    keys, numbers = read(tmp_path, b"phone\n+441632960123\nphone\n")
    assert keys == ["+441632960123"] and [line for line, _ in numbers.problems] == [3]


def test_utf16_with_a_byte_order_mark_and_windows_1252_names(tmp_path: Path) -> None:
    keys, _ = read(tmp_path, "number\tname\n01632 960123\tJosé\n".encode("utf-16"))
    assert keys == ["+441632960123"]
    keys, numbers = read(tmp_path, "+441632960123,Ren\xe9e\n".encode("cp1252"))
    assert keys == ["+441632960123"] and numbers.bad == 0


def test_an_endless_line_is_one_bad_line(tmp_path: Path) -> None:
    keys, numbers = read(tmp_path, b"+441632960123\n" + b"9" * 100_000 + b"\n+447700900123\n")
    assert keys == ["+441632960123", "+447700900123"]
    assert numbers.problems == [(2, "a line longer than 1000 characters")]


def test_only_the_first_hundred_problems_are_kept_all_are_counted(tmp_path: Path) -> None:
    keys, numbers = read(tmp_path, b"nonsense 1\n" * 5000 + b"+441632960123\n")
    assert keys == ["+441632960123"]
    assert numbers.bad == 5000 and len(numbers.problems) == 100
    assert numbers.problems[-1][0] == 100


@pytest.mark.parametrize(
    ("data", "words"),
    [(b"", "empty"), (b"  \n\n", "empty"), (b"+\x004\x004\x00", "NUL characters")],
)
def test_a_file_that_is_not_a_list_is_a_usage_error(
    tmp_path: Path, data: bytes, words: str
) -> None:
    with pytest.raises(UsageError, match=words):
        read(tmp_path, data)


def test_a_missing_file_a_folder_or_a_pipe_is_a_usage_error(tmp_path: Path) -> None:
    for name, make in (("missing", None), ("folder", os.mkdir), ("pipe", os.mkfifo)):
        target = tmp_path / name
        if make is not None:
            make(target)
        with pytest.raises(UsageError, match=str(target)):
            list(NumberFile(target))


# -- callguard block import --community / block list --community -------------------------------


@pytest.fixture
def cfg(tmp_path: Path) -> Path:
    config = tmp_path / "callguard.toml"
    config.write_text(f'[storage]\ndir = "{tmp_path / "state"}"\n')
    return config


def run(cfg: Path, *argv: str) -> int:
    return main(["--config", str(cfg), *argv])


def community_of(cfg: Path) -> list[str]:
    big = BigList.open(community_path(cfg.parent / "state"), check_order=True)
    try:
        return list(big)
    finally:
        big.close()


def test_import_writes_the_community_list_and_says_how_many(
    cfg: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "hub.csv"
    source.write_text("number\n+442079460001\n020 7946 0002\n+442079460001\n+33123456789\n")
    assert run(cfg, "block", "import", "--community", str(source)) == 0
    out = capsys.readouterr().out
    assert "3 numbers" in out and "1 repeated" in out
    assert community_of(cfg) == ["+33123456789", "+442079460001", "+442079460002"]
    assert not (cfg.parent / "state" / "lists.json").exists()  # the family's lists untouched
    # a second import replaces the list; it does not add to it
    source.write_text("+447700900123\n")
    assert run(cfg, "block", "import", "--community", str(source)) == 0
    assert community_of(cfg) == ["+447700900123"]


def test_bad_lines_exit_2_naming_file_and_line_and_nothing_is_written(
    cfg: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "hub.csv"
    source.write_text("+447700900123\n")
    assert run(cfg, "block", "import", "--community", str(source)) == 0
    before = community_path(cfg.parent / "state").read_bytes()
    source.write_text("+442079460001\n999\n+44 20 7946 0002\n12345\n")
    capsys.readouterr()
    assert run(cfg, "block", "import", "--community", str(source)) == 2
    err = capsys.readouterr().err
    assert f"{source}:2: '999' is a short code" in err and f"{source}:4: " in err
    assert f"{source}:1:" not in err and f"{source}:3:" not in err
    assert "2 bad line(s)" in err and "nothing was imported" in err
    assert community_path(cfg.parent / "state").read_bytes() == before
    assert run(cfg, "block", "import", "--community", "--skip-invalid", str(source)) == 0
    assert "skipped 2 bad line(s)" in capsys.readouterr().out
    assert community_of(cfg) == ["+442079460001", "+442079460002"]


def test_a_flood_of_bad_lines_is_reported_in_part(
    cfg: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "hub.csv"
    source.write_text("+442079460001\n" + "0\n" * 500)
    assert run(cfg, "block", "import", "--community", str(source)) == 2
    err = capsys.readouterr().err
    assert err.count(f"{source}:") == 51 and "and 450 more bad line(s)" in err
    assert "500 bad line(s)" in err


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--prefix"], "--prefix does not go with --community"),
        (["--force"], "--force does not go with --community"),
        (["--by", "sue"], "--by does not go with --community"),
    ],
)
def test_options_of_the_familys_import_are_refused_with_community(
    cfg: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], words: str
) -> None:
    source = tmp_path / "hub.csv"
    source.write_text("+442079460001\n")
    assert run(cfg, "block", "import", "--community", *argv, str(source)) == 2
    assert words in capsys.readouterr().err
    assert not (cfg.parent / "state").exists()


def test_a_file_without_numbers_or_no_file_exits_2(
    cfg: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "hub.csv"
    source.write_text("number\n# nothing yet\n")
    assert run(cfg, "block", "import", "--community", str(source)) == 2
    assert "has no numbers to import" in capsys.readouterr().err
    assert run(cfg, "block", "import", "--community", str(tmp_path / "nope.csv")) == 2
    assert "no such file" in capsys.readouterr().err
    assert not (cfg.parent / "state").exists()


def test_only_the_block_list_has_a_community_list(cfg: Path, tmp_path: Path) -> None:
    source = tmp_path / "hub.csv"
    source.write_text("+442079460001\n")
    with pytest.raises(SystemExit) as exited:
        run(cfg, "allow", "import", "--community", str(source))
    assert exited.value.code == 2


def test_list_community_shows_the_count_and_date_or_what_is_wrong(
    cfg: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(cfg, "block", "list", "--community") == 0
    assert "There is no community block list" in capsys.readouterr().out
    assert run(cfg, "block", "list", "--community", "--json") == 0
    assert json.loads(capsys.readouterr().out) is None
    path = community_path(cfg.parent / "state")
    write_biglist(path, random_numbers(1234), created=1_750_000_000)
    assert run(cfg, "block", "list", "--community") == 0
    out = capsys.readouterr().out
    assert "1,234 numbers" in out and "2025-06-15 15:06 UTC" in out
    assert run(cfg, "block", "list", "--community", "--json") == 0
    shown = json.loads(capsys.readouterr().out)
    assert (shown["count"], shown["name"]) == (1234, "community")
    assert shown["created"] == "2025-06-15T15:06:40+00:00" and shown["file"] == str(path)
    values = sorted_values(100)
    rewrite(path, [*values[:50], values[51], values[50], *values[52:]])  # one swap
    assert run(cfg, "block", "list", "--community") == 1  # the full check finds it
    assert "not in order" in capsys.readouterr().err


# -- the daemon's index ----------------------------------------------------------------------


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "state")


A, B, C = "+442079460001", "+442079460002", "+442079460003"


def test_the_index_opens_the_community_file_and_follows_its_changes(store: Store) -> None:
    index = ListIndex(store)
    assert index.refresh() is True
    assert index.community is None and index.match_community(A) is None
    write_biglist(index.community_path, [A, B])
    assert index.refresh() is True
    found = index.match_community(A)
    assert found is not None and (found.list_name, found.entry.number) == ("community", A)
    assert index.match_community(C) is None and index.community_size() == 2
    assert index.refresh() is False  # unchanged: nothing read again
    write_biglist(index.community_path, [C])
    assert index.refresh() is True
    assert index.match_community(A) is None and index.match_community(C) is not None
    index.community_path.unlink()
    assert index.refresh() is True
    assert index.community is None and index.match_community(C) is None


def test_each_file_is_read_again_only_when_it_changed(store: Store) -> None:
    store.add("block", target_for(B, "GB"))
    write_biglist(community_path(store.dir), [A])
    index = ListIndex(store)
    index.refresh()
    first = index.snapshot()
    write_biglist(index.community_path, [C])
    assert index.refresh() is True
    second = index.snapshot()
    assert second.exact is first.exact  # the family's lists were not read again
    assert second.community is not first.community
    store.add("block", target_for(A, "GB"))
    assert index.refresh() is True
    assert index.snapshot().community is second.community  # nor the community file
    assert index.match("block", A) is not None


def test_a_reload_is_one_assignment(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another thread may reload while the main loop screens: a refresh changes the index by
    replacing one attribute, so each lookup sees the old lists or the new ones."""
    index = ListIndex(store)
    index.refresh()
    store.add("block", target_for(B, "GB"))
    write_biglist(index.community_path, [A])
    assigned: list[str] = []
    real = ListIndex.__setattr__

    def spy(self: ListIndex, name: str, value: object) -> None:
        assigned.append(name)
        real(self, name, value)

    monkeypatch.setattr(ListIndex, "__setattr__", spy)
    assert index.refresh() is True
    assert assigned == ["_state"]
    with pytest.raises(AttributeError):
        index.snapshot().community = None  # type: ignore[misc]


class SlowStore(Store):
    """A store whose read of the lists runs ``during`` in the middle of the reload."""

    during: Callable[[], None] = staticmethod(lambda: None)

    def read_packed(self, pack: Any, list_names: Any = LIST_NAMES) -> Any:
        self.during()
        return super().read_packed(pack, list_names)


def test_while_a_reload_builds_lookups_see_the_old_lists_and_after_it_the_new(
    tmp_path: Path,
) -> None:
    store = SlowStore(tmp_path / "state")
    store.add("block", target_for(A, "GB"))
    write_biglist(community_path(store.dir), [A])
    index = ListIndex(store)
    index.refresh()
    before = index.snapshot()
    store.add("block", target_for(B, "GB"))
    write_biglist(index.community_path, [B])
    seen: list[tuple[bool, bool, bool, bool, bool]] = []

    def look() -> None:
        seen.append(
            (
                index.match("block", B) is None,
                index.match_community(A) is not None,
                index.match_community(B) is None,
                index.refresh() is False,  # a second reload at once does not wait, or build
                index.loaded,
            )
        )

    store.during = look
    assert index.refresh() is True
    assert seen == [(True, True, True, True, True)]
    assert index.match("block", B) is not None and index.match_community(B) is not None
    # what was in force before is unchanged, and still answers after the swap
    assert before.match("block", B) is None and before.match_community(A) is not None


def test_an_old_state_keeps_its_open_file_after_the_swap(store: Store) -> None:
    numbers = random_numbers(3000)
    write_biglist(community_path(store.dir), numbers)
    index = ListIndex(store)
    index.refresh()
    held = index.snapshot()
    write_biglist(index.community_path, [A])
    index.refresh()
    gc.collect()
    assert all(held.match_community(n) is not None for n in numbers[:500])
    assert index.match_community(numbers[0]) is None


def test_a_reload_asked_for_during_a_reload_is_not_lost(tmp_path: Path) -> None:
    store = SlowStore(tmp_path / "state")
    write_biglist(community_path(store.dir), [A])
    index = ListIndex(store)
    index.refresh()
    opened_first = index.community

    def ask_again() -> None:
        index.loaded = False  # SIGHUP arrives while the reloader is reading

    store.during = ask_again
    index.loaded = False
    assert index.refresh() is True
    assert index.community is not opened_first  # forced: the unchanged file opened again
    assert index.loaded is False  # the second request is still owed
    store.during = lambda: None
    assert index.refresh() is True and index.loaded is True
    assert index.refresh() is False


def test_the_community_list_is_swapped_in_even_if_the_familys_lists_cannot_be_read(
    store: Store,
) -> None:
    index = ListIndex(store)
    index.refresh()
    store.dir.mkdir(parents=True, exist_ok=True)
    store.lists_path.symlink_to(store.dir / "elsewhere.json")
    write_biglist(index.community_path, [A])
    with pytest.raises(StoreError, match="symbolic link"):
        index.refresh()
    assert index.match_community(A) is not None
    store.lists_path.unlink()
    store.add("block", target_for(B, "GB"))
    assert index.refresh() is True and index.loaded
    assert index.match("block", B) is not None and index.match_community(A) is not None


def test_lookups_on_one_thread_while_another_reloads_never_fail(store: Store) -> None:
    lists = [random_numbers(2000, seed) for seed in range(2)]
    index = ListIndex(store)
    write_biglist(index.community_path, lists[0])
    index.refresh()
    done = threading.Event()
    failures: list[BaseException] = []

    def reload() -> None:
        try:
            for i in range(60):
                write_biglist(index.community_path, lists[(i + 1) % 2])
                assert index.refresh() is True
        except BaseException as exc:  # reported by the main thread
            failures.append(exc)
        finally:
            done.set()

    thread = threading.Thread(target=reload)
    thread.start()
    probes = lists[0][:50] + lists[1][:50]
    looked = 0
    while not done.is_set() or looked == 0:
        state = index.snapshot()
        found = {n for n in probes if state.match_community(n) is not None}
        assert found in ({*lists[0][:50]}, {*lists[1][:50]})  # one whole list, never a mix
        looked += 1
    thread.join()
    assert not failures
