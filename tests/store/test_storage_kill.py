"""Writers killed at random moments, and writers racing each other, never lose a saved write.

The writer is a child forked from this process (tinydb and callguard already imported), which
costs about a millisecond where a fresh interpreter costs 20-50 ms. SIGKILL models a crash or an
OOM kill, not a power cut: the page cache survives it. That the order of fsyncs and renames is
right for a power cut is checked in test_storage.py.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import select
import signal
import time
from collections.abc import Callable
from multiprocessing.synchronize import Event as MpEvent
from pathlib import Path

from tinydb import TinyDB

from callguard.store.files import StoreConflict
from callguard.store.jsonfile import AtomicJSONStorage, Recovery
from callguard.store.lock import locked

FORK = multiprocessing.get_context("fork")
ROUNDS = int(os.environ.get("CALLGUARD_KILL_ROUNDS", "200"))
SEED = int(os.environ.get("CALLGUARD_KILL_SEED", str(time.time_ns() % 1_000_000)))
MAX_DELAY_S = 0.030


def _write_forever(path: Path, first: int, ack_fd: int) -> None:
    db = TinyDB(path, storage=AtomicJSONStorage)
    n = first
    while True:
        db.insert({"n": n})
        os.write(ack_fd, b"%d\n" % n)  # only after insert returned: "reported success"
        n += 1


def _read_until(fd: int, buffer: bytearray, *, deadline: float, need_line: bool) -> bool:
    """Append what arrives on fd; stop at the first complete line (need_line) or at EOF."""
    while time.monotonic() < deadline:
        if need_line and b"\n" in buffer:
            return True
        ready, _, _ = select.select([fd], [], [], max(deadline - time.monotonic(), 0))
        if not ready:
            break
        chunk = os.read(fd, 65536)
        if not chunk:
            return not need_line
        buffer.extend(chunk)
    return need_line and b"\n" in buffer


def _run_round(path: Path, first: int, delay_s: float) -> set[int]:
    """Start a writer, kill it delay_s after its first acknowledgement; return what it acked."""
    read_fd, write_fd = os.pipe()
    child = FORK.Process(target=_write_forever, args=(path, first, write_fd), daemon=True)
    child.start()
    os.close(write_fd)
    buffer = bytearray()
    try:
        started = _read_until(read_fd, buffer, deadline=time.monotonic() + 10, need_line=True)
        assert started, "the writer acknowledged nothing within 10 s"
        time.sleep(delay_s)
        assert child.pid is not None
        os.kill(child.pid, signal.SIGKILL)
        child.join(10)
        assert child.exitcode == -signal.SIGKILL
        assert _read_until(read_fd, buffer, deadline=time.monotonic() + 10, need_line=False)
    finally:
        if child.is_alive():
            child.kill()
            child.join(10)
        os.close(read_fd)
    lines = bytes(buffer).split(b"\n")
    return {int(line) for line in lines[:-1]}  # a write to a pipe this short is never torn


def test_sigkilled_writer_never_loses_an_acknowledged_write(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    path = tmp_path / "lists.json"
    acked: set[int] = set()
    recoveries: list[Recovery] = []
    killed_mid_write = 0
    next_n = 0
    started = time.monotonic()
    for round_no in range(ROUNDS):
        context = f"round {round_no}, CALLGUARD_KILL_SEED={SEED}"
        new = _run_round(path, next_n, rng.uniform(0, MAX_DELAY_S))
        assert new and min(new) == next_n, context
        acked |= new
        leftovers = [p.name for p in tmp_path.iterdir() if ".tmp-" in p.name]
        killed_mid_write += bool(leftovers)
        assert len(leftovers) <= 2, f"{context}: temp files pile up: {leftovers}"

        db = TinyDB(path, storage=AtomicJSONStorage, on_recovery=recoveries.append)
        numbers = [doc["n"] for doc in db.all()]
        assert not recoveries, f"{context}: {recoveries[0].message()}"
        assert len(numbers) == len(set(numbers)), f"{context}: duplicates"
        missing = acked - set(numbers)
        assert not missing, f"{context}: acknowledged writes lost: {sorted(missing)[:10]}"
        next_n = max(numbers) + 1  # includes a write that finished but was never acknowledged

    elapsed_s = time.monotonic() - started
    assert not [p for p in tmp_path.iterdir() if ".corrupt-" in p.name]
    print(
        f"\n{ROUNDS} kills in {elapsed_s:.1f} s ({elapsed_s / max(ROUNDS, 1) * 1000:.0f} ms "
        f"each), {len(acked)} acknowledged writes, {killed_mid_write} kills left a temp file, "
        f"seed {SEED}"
    )
    if ROUNDS >= 100:  # the test only means something if many kills land inside a write
        assert killed_mid_write >= ROUNDS // 10, f"only {killed_mid_write} kills hit a write"


COUNT = 100


def _insert_under_lock(path: Path, who: str, go: MpEvent) -> None:
    go.wait(10)
    for i in range(COUNT):
        with locked(path, timeout_s=30):
            # A fresh TinyDB per operation: a Table caches its next document ID, which another
            # process's inserts make stale.
            TinyDB(path, storage=AtomicJSONStorage).insert({"who": who, "i": i})


def _insert_without_lock(path: Path, who: str, go: MpEvent) -> None:
    go.wait(10)
    conflicts = 0
    for i in range(COUNT):
        while True:
            try:
                TinyDB(path, storage=AtomicJSONStorage).insert({"who": who, "i": i})
                break
            except StoreConflict:
                conflicts += 1
            except ValueError as exc:  # TinyDB: the next ID it computed was taken meanwhile
                assert "already exists" in str(exc)
                conflicts += 1
    print(f"{who}: {conflicts} conflicts refused and retried")


def _race(path: Path, target: Callable[[Path, str, MpEvent], None]) -> list[dict[str, object]]:
    go = FORK.Event()
    children = [FORK.Process(target=target, args=(path, who, go)) for who in ("cli", "daemon")]
    for child in children:
        child.start()
    go.set()
    for child in children:
        child.join(60)
        assert child.exitcode == 0
    recoveries: list[Recovery] = []
    docs = TinyDB(path, storage=AtomicJSONStorage, on_recovery=recoveries.append).all()
    assert not recoveries
    return [dict(doc) for doc in docs]


def test_two_processes_inserting_under_the_lock_lose_nothing(tmp_path: Path) -> None:
    docs = _race(tmp_path / "lists.json", _insert_under_lock)
    assert sorted((d["who"], d["i"]) for d in docs) == sorted(
        (who, i) for who in ("cli", "daemon") for i in range(COUNT)
    )


def test_without_the_lock_a_stale_write_is_refused_not_lost(tmp_path: Path) -> None:
    docs = _race(tmp_path / "lists.json", _insert_without_lock)
    assert len(docs) == 2 * COUNT
    assert len({(d["who"], d["i"]) for d in docs}) == 2 * COUNT
