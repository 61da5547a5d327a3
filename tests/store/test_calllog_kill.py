"""A daemon killed at random moments while it logs calls never loses one it was told was saved,
and leaves a database that opens clean.

The writer is a child forked from this process (sqlite3 and callguard already imported; no
connection is open in this process at the fork). It appends calls as fast as it can and writes
each call's id to a pipe only after ``append`` returned: "acknowledged", which is when the daemon
drops the record from memory. SIGKILL models a crash or an OOM kill, not a power cut (the page
cache survives it); for a power cut SQLite's WAL with ``synchronous=FULL`` fsyncs every commit
before ``append`` returns (see callguard/store/calllog.py).

Each round, before anything else opens the database, the folder is looked at to see where the
kill landed (the writer keeps its connection, so a ``-wal`` file is always left): in the middle
of a transaction (frames of the current WAL generation after its last commit frame), or after a
commit but before the acknowledgement (a call in the log that was never acknowledged). Then the
log is read as ``callguard log`` reads it, and opened the way the next daemon opens it, which
recovers the WAL, and checked with ``PRAGMA integrity_check``.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import select
import signal
import sqlite3
import struct
import time
from pathlib import Path

from callguard.store.calllog import CallLog

FORK = multiprocessing.get_context("fork")
ROUNDS = int(os.environ.get("CALLGUARD_KILL_ROUNDS", "100"))
SEED = int(os.environ.get("CALLGUARD_KILL_SEED", str(time.time_ns() % 1_000_000)))
MAX_ACKS = 60  # a kill after 1..MAX_ACKS acknowledged calls of a fresh writer,
MAX_THEN_S = 0.001  # and then up to about two appends' time
PAD = "x" * 300  # about the size of a real record


def _append_forever(state: Path, first: int, ack_fd: int) -> None:
    log = CallLog(state, keep_open=True)  # as the daemon's
    n = first
    while True:
        log.append({"call_id": n, "started": f"2026-10-25T01:{n % 60:02d}:00+01:00", "pad": PAD})
        os.write(ack_fd, b"%d\n" % n)  # only after append returned: "reported saved"
        n += 1


def _read_acks(fd: int, buffer: bytearray, *, want: int, deadline: float) -> bool:
    """Read acknowledgements from fd until ``want`` lines (want=0: until EOF) or the deadline."""
    while time.monotonic() < deadline:
        if want and buffer.count(b"\n") >= want:
            return True
        ready, _, _ = select.select([fd], [], [], max(deadline - time.monotonic(), 0))
        if not ready:
            break
        chunk = os.read(fd, 65536)
        if not chunk:
            return not want
        buffer.extend(chunk)
    return bool(want) and buffer.count(b"\n") >= want


def _run_round(state: Path, first: int, acks_before_kill: int, then_s: float) -> set[int]:
    """Start a writer, kill it ``then_s`` after it has acknowledged ``acks_before_kill`` calls
    (somewhere in the next append or the one after); return what it acked."""
    read_fd, write_fd = os.pipe()
    child = FORK.Process(target=_append_forever, args=(state, first, write_fd), daemon=True)
    child.start()
    os.close(write_fd)
    buffer = bytearray()
    try:
        deadline = time.monotonic() + 10
        assert _read_acks(read_fd, buffer, want=acks_before_kill, deadline=deadline), (
            f"the writer acknowledged fewer than {acks_before_kill} calls within 10 s"
        )
        time.sleep(then_s)  # not a wait for anything: the random moment within an append
        assert child.pid is not None
        os.kill(child.pid, signal.SIGKILL)
        child.join(10)
        assert child.exitcode == -signal.SIGKILL
        assert _read_acks(read_fd, buffer, want=0, deadline=time.monotonic() + 10)
    finally:
        if child.is_alive():
            child.kill()
            child.join(10)
        os.close(read_fd)
    lines = bytes(buffer).split(b"\n")
    return {int(line) for line in lines[:-1]}  # a write to a pipe this short is never torn


def _wal_ends_inside_a_transaction(wal: Path) -> bool:
    """Whether the current generation of WAL frames (the header's salts) ends after its last
    commit frame: the writer was killed while it wrote a transaction."""
    try:
        data = wal.read_bytes()
    except FileNotFoundError:
        return False
    if len(data) < 32:
        return False
    page_size = struct.unpack(">I", data[8:12])[0]
    salts = data[16:24]
    last_commit = last_frame = -1
    offset, frame = 32, 0
    while offset + 24 <= len(data):
        header = data[offset : offset + 24]
        if header[8:16] != salts:
            break  # an older generation's frame: the current one ended before it
        last_frame = frame
        if struct.unpack(">I", header[4:8])[0] != 0:
            last_commit = frame
        offset += 24 + page_size
        frame += 1
    return last_frame > last_commit


def test_a_killed_writer_never_loses_an_acknowledged_call(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    state = tmp_path / "state"
    db = state / "calls.sqlite3"
    acked: set[int] = set()
    mid_transaction = committed_unacked = hit = 0
    next_n = 0
    started = time.monotonic()
    for round_no in range(ROUNDS):
        context = f"round {round_no}, CALLGUARD_KILL_SEED={SEED}"
        new = _run_round(state, next_n, rng.randint(1, MAX_ACKS), rng.uniform(0, MAX_THEN_S))
        assert new and min(new) == next_n, context
        acked |= new
        wal = state / "calls.sqlite3-wal"
        assert wal.exists(), context  # the connection is kept: its WAL is there
        inside = _wal_ends_inside_a_transaction(wal)
        mid_transaction += inside

        numbers = [c["call_id"] for c in CallLog(state).read()]  # as `callguard log` reads
        assert len(numbers) == len(set(numbers)), f"{context}: duplicates"
        missing = acked - set(numbers)
        assert not missing, f"{context}: acknowledged calls lost: {sorted(missing)[:10]}"
        unacked = max(numbers) > max(new)
        committed_unacked += unacked
        hit += inside or unacked

        check = sqlite3.connect(db)  # as the next daemon opens it: the WAL is recovered
        try:
            assert check.execute("PRAGMA integrity_check").fetchall() == [("ok",)], context
            assert check.execute("SELECT count(*) FROM calls").fetchone() == (len(numbers),)
        finally:
            check.close()
        next_n = max(numbers) + 1  # includes a call that was saved but never acknowledged

    elapsed_s = time.monotonic() - started
    assert not [p for p in state.iterdir() if ".corrupt-" in p.name]
    records = CallLog(state).read()
    assert records and all(r["pad"] == PAD for r in records)
    print(
        f"\n{ROUNDS} kills in {elapsed_s:.1f} s ({elapsed_s / max(ROUNDS, 1) * 1000:.0f} ms "
        f"each), {len(acked)} acknowledged calls; {mid_transaction} kills inside a "
        f"transaction, {committed_unacked} after a commit but before the acknowledgement; "
        f"seed {SEED}"
    )
    if ROUNDS >= 100:  # the test only means something if many kills land inside an append
        assert hit >= ROUNDS // 4, f"only {hit} kills hit an append"
