"""CallGuard benchmarks: ``make bench``. Prints one line per measurement.

Figures are measured here, not asserted by tests: they go into the issue notes, and a
Raspberry Pi is several times slower than a developer machine.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from callguard.modem.protocol import ModemProtocol

BENCHMARKS: dict[str, Callable[[], list[str]]] = {}


def benchmark(fn: Callable[[], list[str]]) -> Callable[[], list[str]]:
    BENCHMARKS[fn.__name__] = fn
    return fn


UK_CALL = b"\r\nDATE = 1124\r\nTIME = 0930\r\nNMBR = 01707354000\r\n\r\n\r\nRING\r\n"


@benchmark
def parser_throughput() -> list[str]:
    """Bytes per second the sans-IO parser handles, and the latency of one caller-ID burst."""
    data = UK_CALL * 20_000
    proto = ModemProtocol()
    start = time.perf_counter()
    for i in range(0, len(data), 64):
        proto.receive_data(data[i : i + 64])
        proto.events()
    elapsed = time.perf_counter() - start
    burst_times = []
    for _ in range(2000):
        p = ModemProtocol()
        t0 = time.perf_counter()
        p.receive_data(UK_CALL)
        p.next_event()
        burst_times.append(time.perf_counter() - t0)
    median_us = statistics.median(burst_times) * 1e6
    return [
        f"parser: {len(data) / elapsed / 1e6:.2f} MB/s ({len(data) / 1e6:.1f} MB, {elapsed:.2f} s)",
        f"parser: one UK caller-ID burst in median {median_us:.0f} µs,"
        f" worst {max(burst_times) * 1e6:.0f} µs",
    ]


@benchmark
def import_time() -> list[str]:
    """Wall time of `import callguard.modem.transport` in a fresh interpreter (start-up cost)."""
    runs = []
    for _ in range(5):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import callguard.modem.transport"], check=True)
        runs.append(time.perf_counter() - t0)
    return [
        f"import callguard.modem.transport: median {statistics.median(runs) * 1000:.0f} ms (5 runs)"
    ]


def _bench_numbers(count: int) -> list[str]:
    """``count`` distinct valid London numbers, as a volunteer's CSV would have them."""
    return [f"020 7{i // 10000:03d} {i % 10000:04d}" for i in range(count)]


@benchmark
def list_import() -> list[str]:
    """`callguard block import` of a 100,000-line CSV (parse, validate, one locked write)."""
    import tempfile
    from pathlib import Path

    from callguard.store.contacts import parse_file
    from callguard.store.lists import Store

    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp) / "big.csv"
        csv.write_text("".join(f"{n},scam {i}\n" for i, n in enumerate(_bench_numbers(100_000))))
        store = Store(Path(tmp) / "state")
        t0 = time.perf_counter()
        items, problems = parse_file(csv, "GB")
        t1 = time.perf_counter()
        added, _ = store.add_many("block", items, by="bench")
        t2 = time.perf_counter()
        path = store.list_paths["block"]
        size = path.stat().st_size
    assert not problems and added == 100_000, (problems[:3], added)
    return [
        f"import 100,000 numbers: {t2 - t0:.2f} s (parse+validate {t1 - t0:.2f} s, "
        f"store {t2 - t1:.2f} s; {path.name} {size / 1e6:.1f} MB)"
    ]


_INDEX_BUILD = """
import sys
from pathlib import Path
from callguard.store.lists import Store
from callguard.core.lists import ImportItem, target_for
numbers = [f"020 7{i // 10000:03d} {i % 10000:04d}" for i in range(100_000)]
store = Store(Path(sys.argv[1]))
items = [ImportItem(i, target_for(n, "GB"), f"scam {i}") for i, n in enumerate(numbers)]
store.add_many("block", items)
store.add("block", target_for("0870", "GB", prefix=True))
"""

_INDEX_PROBE = """
import gc, sys, time, statistics
from pathlib import Path

def rss_mb(field="VmRSS:"):
    for line in open("/proc/self/status"):
        if line.startswith(field):
            return int(line.split()[1]) / 1024

from callguard.store.lists import Store

from callguard.store.index import ListIndex
from callguard.core.numbers import from_caller_id
from_caller_id("02079460000", "GB")  # phonenumbers metadata for GB loaded
base = rss_mb()
index = ListIndex(Store(Path(sys.argv[1])))
t0 = time.perf_counter(); index.refresh(); load = time.perf_counter() - t0
gc.collect()
loaded = rss_mb()
peak = rss_mb("VmHWM:")  # not ru_maxrss: Linux carries that over from the parent across exec
probes = ["+4420" + "7%03d%04d" % (i % 10, i) for i in range(20_000)] + ["+448701234567"] * 1000
times = []
for key in probes:
    t = time.perf_counter(); index.match("block", key); times.append(time.perf_counter() - t)
cid = []
for i in range(2000):
    t = time.perf_counter()
    c = from_caller_id("0207%03d%04d" % (i % 10, i), "GB")
    index.match("block", c.key)
    cid.append(time.perf_counter() - t)
times.sort(); cid.sort()
print(f"index of {sum(index.sizes().values()):,} entries: load {load:.2f} s;"
      f" RSS {base:.1f} MB before (Python + callguard + phonenumbers),"
      f" {loaded:.1f} MB with the index loaded, peak {peak:.1f} MB")
print(f"lookup among 100,001: median {statistics.median(times)*1e6:.1f} µs,"
      f" p99 {times[int(len(times)*.99)]*1e6:.1f} µs, worst {times[-1]*1e6:.0f} µs")
print(f"caller-ID string -> Caller -> lookup: median {statistics.median(cid)*1e6:.0f} µs,"
      f" worst {cid[-1]*1e6:.0f} µs")
"""


@benchmark
def list_lookup() -> list[str]:
    """Lookups among 100,000 entries, and the RSS of a fresh process holding that index."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-c", _INDEX_BUILD, tmp], check=True)
        proc = subprocess.run(
            [sys.executable, "-c", _INDEX_PROBE, tmp], check=True, capture_output=True, text=True
        )
    return proc.stdout.strip().splitlines()


_COMMUNITY_COUNT = 1_000_000


def _community_numbers(count: int = _COMMUNITY_COUNT, seed: int = 5) -> list[str]:
    """``count`` distinct valid London numbers (020 7xxx xxxx, 020 8xxx xxxx) in E.164, shuffled."""
    import random

    picks = random.Random(seed).sample(range(20_000_000), count)
    return [f"+4420{7 + i // 10_000_000}{i % 10_000_000:07d}" for i in picks]


_COMMUNITY_IMPORT = """
import sys, time
from callguard.cli import main
t0 = time.perf_counter()
code = main(["--config", sys.argv[1], "block", "import", "--community", sys.argv[2]])
elapsed = time.perf_counter() - t0
peak = [l for l in open("/proc/self/status") if l.startswith("VmHWM:")][0].split()[1]
print(code, elapsed, int(peak) / 1024)
"""

_COMMUNITY_PROBE = """
import os, random, statistics, sys, time
from pathlib import Path

def rss_mb(field="VmRSS:"):
    for line in open("/proc/self/status"):
        if line.startswith(field):
            return int(line.split()[1]) / 1024

def rss():
    return f"{rss_mb():.1f} MB (anon {rss_mb('RssAnon:'):.1f}, file {rss_mb('RssFile:'):.1f})"

import datetime as dt
from callguard.config import ScreeningConfig
from callguard.core import screening
from callguard.core.numbers import from_caller_id, warm_up
from callguard.store.biglist import BigList, community_path
from callguard.store.index import ListIndex
from callguard.store.lists import Store
warm_up("GB")  # as the daemon starts: phonenumbers and the home region's metadata
screening.warm_up()
store = Store(Path(sys.argv[1]))
path = community_path(store.dir)
hits = [line.strip() for line in open(sys.argv[2])]  # 21,000 numbers of the list
rng = random.Random(1)
misses = ["+4420%d%07d" % (rng.choice((7, 8)), rng.randrange(10**7)) for _ in range(20_000)]
times = [0.0] * 21_000
base = rss()
fd = os.open(path, os.O_RDONLY)
os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)  # out of the page cache: a cold open
os.close(fd)
index = ListIndex(store)
t0 = time.perf_counter(); index.refresh(); cold = time.perf_counter() - t0
opened = rss()
index.loaded = False
t0 = time.perf_counter(); index.refresh(); warm = time.perf_counter() - t0
t0 = time.perf_counter()
BigList.open(path, check_order=True).close()
full = time.perf_counter() - t0
def timed(keys):
    for i, key in enumerate(keys):
        t = time.perf_counter(); index.match_community(key); times[i] = time.perf_counter() - t
    return sorted(times[:len(keys)])
first = timed(hits[:1000])
after_1000 = rss()
hit = timed(hits[1000:])
miss = timed(misses)
after_all = rss()
now = dt.datetime(2025, 6, 10, 12, 0).astimezone()
cfg = ScreeningConfig()
screened = []
for key in hits[:2000]:
    raw = "0" + key[3:]
    t = time.perf_counter()
    verdict = screening.screen(from_caller_id(raw, "GB"), index.snapshot(), cfg, now)
    screened.append(time.perf_counter() - t)
    assert verdict.rule == "community", verdict
screened.sort()
us = lambda xs, q: xs[min(len(xs) - 1, int(len(xs) * q))] * 1e6
n = index.community_size()
print(f"community list of {n:,} numbers ({path.stat().st_size / 1e6:.1f} MB): open + check"
      f" (SHA-256, fences) {cold * 1000:.0f} ms out of the page cache, {warm * 1000:.0f} ms in"
      f" it; with every pair's order checked too {full * 1000:.0f} ms")
print(f"community lookup: hit median {statistics.median(hit) * 1e6:.1f} µs, p99 {us(hit, .99):.1f},"
      f" worst {hit[-1] * 1e6:.0f} µs (first 1,000: median"
      f" {statistics.median(first) * 1e6:.1f}, worst {first[-1] * 1e6:.0f} µs);"
      f" miss median {statistics.median(miss) * 1e6:.1f} µs, worst {miss[-1] * 1e6:.0f} µs")
print(f"caller-ID string -> Caller -> screen() -> community block: median"
      f" {statistics.median(screened) * 1e6:.0f} µs, p99 {us(screened, .99):.0f} µs,"
      f" worst {screened[-1] * 1e6:.0f} µs")
print(f"RSS: {base} before (Python + callguard + phonenumbers + country names + test data);"
      f" {opened} with the 1M list open; {after_1000} after 1,000 lookups;"
      f" {after_all} after 41,000; peak (VmHWM) {rss_mb('VmHWM:'):.1f} MB")
"""


@benchmark
def community_list() -> list[str]:
    """The community block list at 1,000,000 numbers: import, open, lookups, memory."""
    import tempfile
    from pathlib import Path

    from callguard.store.biglist import NumberFile, NumberSetBuilder, write_biglist

    lines: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        numbers = _community_numbers()
        source = Path(tmp) / "community.txt"
        source.write_text("".join(f"{n}\n" for n in numbers))
        state = Path(tmp) / "state"
        config = Path(tmp) / "callguard.toml"
        config.write_text(f'[storage]\ndir = "{state}"\n')
        t0 = time.perf_counter()
        write_biglist(Path(tmp) / "direct.cgl", numbers)
        direct = time.perf_counter() - t0
        proc = subprocess.run(
            [sys.executable, "-c", _COMMUNITY_IMPORT, str(config), str(source)],
            check=True,
            capture_output=True,
            text=True,
        )
        code, elapsed, peak = proc.stdout.splitlines()[-1].split()
        assert code == "0", proc.stderr
        lines.append(
            f"import --community of {len(numbers):,} E.164 lines: {float(elapsed):.1f} s"
            f" (the writer alone, sort + hash + write: {direct:.1f} s); import peak RSS"
            f" {float(peak):.1f} MB"
        )
        national = Path(tmp) / "national.txt"
        national.write_text("".join(f"0{n[3:6]} {n[6:10]} {n[10:]}\n" for n in numbers[:20_000]))
        t0 = time.perf_counter()
        builder = NumberSetBuilder()
        builder.extend(NumberFile(national, "GB"))
        slow = (time.perf_counter() - t0) / 20_000
        lines.append(
            f"lines not in E.164 (020 7946 0000) go through phonenumbers: {slow * 1e6:.0f} µs a"
            f" line, {slow * len(numbers):.0f} s for a million"
        )
        sample = Path(tmp) / "sample.txt"
        sample.write_text("".join(f"{n}\n" for n in numbers[:21_000]))  # shuffled already
        proc = subprocess.run(
            [sys.executable, "-c", _COMMUNITY_PROBE, str(state), str(sample)],
            check=True,
            capture_output=True,
            text=True,
        )
        lines.extend(proc.stdout.strip().splitlines())
    return lines


def _proc_fields(pid: int | str, name: str) -> dict[str, int]:
    """``/proc/<pid>/<name>`` (status or io) as {field: first number}; kB for status."""
    fields = {}
    with open(f"/proc/{pid}/{name}") as fh:
        for line in fh:
            key, _, value = line.partition(":")
            if value.split() and value.split()[0].isdigit():
                fields[key] = int(value.split()[0])
    return fields


def _memory_of(pid: int) -> dict[str, float]:
    """The process's VmRSS, VmHWM, RssAnon and RssFile in MB."""
    status = _proc_fields(pid, "status")
    return {k: status[k] / 1024 for k in ("VmRSS", "VmHWM", "RssAnon", "RssFile") if k in status}


@dataclass
class _Running:
    """A `callguard run` subprocess on a simulated modem (see :func:`_running_daemon`)."""

    sim: Any
    pid: int
    started: float
    """Seconds from starting the process to its status saying the modem is connected."""
    config: Path
    store: Any


@contextlib.contextmanager
def _running_daemon(
    state: Path, runtime_dir: Path | None = None, extra: str = ""
) -> Iterator[_Running]:
    """The real daemon (`callguard run`, a subprocess) on a simulated Conexant modem at
    time_scale 0.3 (150 ms from caller ID to the first ring), with ``state`` as storage.dir
    and, if given, ``runtime_dir`` as storage.runtime_dir (where its status goes); ``extra``
    is more of the config (TOML sections)."""
    import json
    import os
    import tempfile

    from callguard.sim import SimModem
    from callguard.store.lists import Store

    with tempfile.TemporaryDirectory() as tmp:
        link = Path(tmp) / "modem"
        config = Path(tmp) / "callguard.toml"
        runtime = f"runtime_dir = {json.dumps(str(runtime_dir))}\n" if runtime_dir else ""
        config.write_text(
            f"[modem]\nport = {json.dumps(str(link))}\n"
            f"[storage]\ndir = {json.dumps(str(state))}\n{runtime}"
            '[warning]\nroom_command = ""\n[block]\nhold_s = 0.3\n' + extra
        )
        store = Store(state, runtime_dir=str(runtime_dir or ""))
        with SimModem(identity="conexant", link_path=str(link), time_scale=0.3) as sim:
            t0 = time.monotonic()
            daemon = subprocess.Popen(
                [sys.executable, "-m", "callguard", "--config", str(config), "run"],
                stderr=subprocess.DEVNULL,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
            try:
                started = float("nan")
                while time.monotonic() < t0 + 60:
                    # "connected" must be this daemon's: an earlier one's status is left there
                    # (as on a unit), and deleting it would bring back its .bak instead
                    status = store.read_status() if store.status_path.exists() else None
                    mine = bool(status) and status.get("pid") == daemon.pid
                    if mine and status.get("modem") == "connected":
                        started = time.monotonic() - t0
                        break
                    time.sleep(0.02)
                yield _Running(sim, daemon.pid, started, config, store)
            finally:
                daemon.terminate()
                daemon.wait(20)


@dataclass
class _Seizure:
    """One blocked call as the simulated line saw it."""

    latency: float | None
    """Caller ID leaving the modem -> the first ATH1 arriving back, seconds."""
    before_ring: bool
    """Seized before the first RING went out."""
    record: Any


def _blocked_call(sim: Any, number: str) -> _Seizure:
    """Place a 3-ring UK call from ``number`` and wait for it to end (released or given up)."""
    from callguard.sim import Call

    before = len(sim.commands)
    record = sim.place_call(Call(number=number, rings=3)).wait(30)
    seize = [t for t, c in sim.commands[before:] if c.upper() == "ATH1"]
    latency = seize[0] - record.cid_sent_at if seize and record.cid_sent_at is not None else None
    early = record.outcome == "seized" and (
        not record.rings or (record.seized_at is not None and record.seized_at < record.rings[0])
    )
    return _Seizure(latency, early, record)


def _daemon_on_sim(state: str, numbers: list[str]) -> tuple[float, list[float], dict[str, float]]:
    """Start `callguard run` on the simulated line with ``state`` as storage.dir, call it from
    ``numbers`` (national format), and return (seconds to "connected", seize latencies of the
    calls it seized, the daemon's memory figures in MB from /proc)."""
    with _running_daemon(Path(state)) as run:
        calls = [_blocked_call(run.sim, number) for number in numbers]
        memory = _memory_of(run.pid)
    latencies = sorted(c.latency for c in calls if c.latency is not None)
    return run.started, latencies, memory


@benchmark
def community_daemon() -> list[str]:
    """The real daemon on the simulated line, without and with a 1,000,000-number community
    list: time to "connected", seize latency for numbers on the list, memory."""
    import tempfile
    from pathlib import Path

    from callguard.store.biglist import community_path, write_biglist

    numbers = _community_numbers()
    callers = ["0" + n[3:] for n in numbers[:20]]
    lines = []
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp) / "state"
        state.mkdir()
        started, _, memory = _daemon_on_sim(str(state), callers[:3])
        lines.append(
            f"daemon without a community list: connected in {started:.2f} s; RSS"
            f" {memory['VmRSS']:.1f} MB (anon {memory['RssAnon']:.1f}, file"
            f" {memory['RssFile']:.1f}), peak {memory['VmHWM']:.1f} MB"
        )
        write_biglist(community_path(state), numbers)
        del numbers
        started, latencies, memory = _daemon_on_sim(str(state), callers)
    lines += [
        f"daemon with the 1,000,000-number community list: connected in {started:.2f} s; RSS"
        f" after {len(callers)} calls {memory['VmRSS']:.1f} MB (anon {memory['RssAnon']:.1f},"
        f" file {memory['RssFile']:.1f}), peak {memory['VmHWM']:.1f} MB",
        f"seize latency for numbers on the community list, {len(latencies)} of {len(callers)}"
        f" seized: median {statistics.median(latencies) * 1000:.1f} ms,"
        f" worst {latencies[-1] * 1000:.1f} ms",
    ]
    return lines


def _proc_io_written(pid: int | str = "self") -> int:
    """Bytes a process (this one by default) has sent, or will send, to the disk: write_bytes
    less those dirtied and then truncated or deleted before they were written back
    (cancelled_write_bytes)."""
    with open(f"/proc/{pid}/io") as f:
        fields = dict(line.split(": ") for line in f.read().splitlines())
    return int(fields["write_bytes"]) - int(fields["cancelled_write_bytes"])


def _bench_call(i: int, start: object) -> dict[str, object]:
    import datetime as dt

    assert isinstance(start, dt.datetime)
    when = start + dt.timedelta(minutes=10 * i)
    return {
        "call_id": i,
        "started": when.isoformat(timespec="seconds"),
        "ended": (when + dt.timedelta(seconds=95)).isoformat(timespec="seconds"),
        "number": f"+4411349{i % 60000:05d}",
        "display": f"0113 49{i % 60000:05d}",
        "category": "landline",
        "name": None,
        "verdict": "blocked",
        "rule": "block",
        "reason": "Blocked: the number is on the block list as 'scam'.",
        "answered": False,
        "duration_s": None,
        "rings": 1,
        "caller_id": True,
        "impersonation": False,
        "grooming_alert": False,
        "name_claim": False,
        "notes": [],
    }


@benchmark
def call_log() -> list[str]:
    """The call log (SQLite) holding 50,000 calls: migrating a calls.json that size, append
    latency and bytes written per append (/proc/self/io), `log --limit 20` in-process and as
    a CLI process. In a folder on the card (CALLGUARD_BENCH_DIR, default "."): /tmp may be a
    tmpfs, where nothing is written to a disk."""
    import datetime as dt
    import json
    import os
    import tempfile
    from pathlib import Path

    from callguard.store.calllog import CallLog

    count, appends = 50_000, 200
    out: list[str] = []
    with tempfile.TemporaryDirectory(dir=os.environ.get("CALLGUARD_BENCH_DIR", ".")) as tmp:
        state = Path(tmp).resolve() / "state"  # storage.dir must be an absolute path
        state.mkdir()
        start = dt.datetime.now().astimezone() - dt.timedelta(minutes=10 * (count + appends))
        table = {str(i + 1): _bench_call(i, start) for i in range(count)}
        Path(state, "calls.json").write_text(json.dumps({"calls": table}))
        t0 = time.perf_counter()
        CallLog(state).read(limit=1)  # the first read migrates
        size_mb = Path(state, "calls.sqlite3").stat().st_size / 1e6
        out.append(
            f"call log: {count:,} calls migrated from calls.json in "
            f"{time.perf_counter() - t0:.2f} s ({size_mb:.1f} MB)"
        )
        log = CallLog(state)
        log.append(_bench_call(count, start))  # the first append of a process also prunes
        times, written = [], []
        for i in range(appends):
            call = _bench_call(count + 1 + i, start)
            w0, t0 = _proc_io_written(), time.perf_counter()
            log.append(call)
            times.append(time.perf_counter() - t0)
            written.append(_proc_io_written() - w0)
        out.append(
            f"call log append with {count:,} calls: median "
            f"{statistics.median(times) * 1000:.2f} ms, worst {max(times) * 1000:.1f} ms; "
            f"written per append: median {statistics.median(written) / 1024:.0f} KiB, "
            f"worst {max(written) / 1024:.0f} KiB ({appends} appends)"
        )
        reads = []
        for _ in range(20):
            t0 = time.perf_counter()
            CallLog(state).read(limit=20)
            reads.append(time.perf_counter() - t0)
        config = Path(tmp, "callguard.toml")
        config.write_text(f"[storage]\ndir = {json.dumps(str(state))}\n")
        runs = []
        for _ in range(5):
            t0 = time.perf_counter()
            argv = ["--config", str(config), "log", "--limit", "20"]
            subprocess.run(
                [sys.executable, "-m", "callguard", *argv], check=True, capture_output=True
            )
            runs.append(time.perf_counter() - t0)
        out.append(
            f"call log read(limit=20) with {count + appends + 1:,} calls: median "
            f"{statistics.median(reads) * 1000:.2f} ms; `callguard log --limit 20`: median "
            f"{statistics.median(runs) * 1000:.0f} ms (5 runs, interpreter start included)"
        )
    return out


_FLOOR_LOOP = """
import sys

import serial

port = serial.Serial(sys.argv[1], 115200, timeout=None)
port.write(b"AT+VCID=1\\r")
held = False
while True:
    line = port.readline().strip()
    if line.startswith(b"NMBR"):
        port.write(b"ATH1\\r")
        held = True
    elif held and line == b"OK":
        held = False
        port.write(b"ATH0\\r")
"""


def _floor_seizures(numbers: list[str]) -> list[_Seizure]:
    """The same calls, answered by a bare pyserial loop (a subprocess, like the daemon) that
    writes ATH1 on the NMBR line and ATH0 on the OK after it: the floor for seize latency."""
    import tempfile

    from callguard.sim import SimModem

    with tempfile.TemporaryDirectory() as tmp:
        link = Path(tmp) / "modem"
        with SimModem(identity="conexant", link_path=str(link), time_scale=0.3) as sim:
            loop = subprocess.Popen([sys.executable, "-c", _FLOOR_LOOP, str(link)])
            try:
                deadline = time.monotonic() + 30
                while not sim.vcid and time.monotonic() < deadline:
                    time.sleep(0.02)
                return [_blocked_call(sim, number) for number in numbers]
            finally:
                loop.terminate()
                loop.wait(20)


def _fs_type(path: Path) -> str:
    """The file system a path is on (its mount in /proc/mounts with the longest prefix)."""
    import os

    real, best, kind = os.path.realpath(path), "", "?"
    with open("/proc/mounts") as fh:
        for line in fh:
            fields = line.split()
            point = fields[1].replace("\\040", " ")
            inside = real == point or real.startswith(point.rstrip("/") + "/")
            if inside and len(point) >= len(best):
                best, kind = point, fields[2]
    return kind


def _cli() -> list[str]:
    """The `callguard` a family member runs (the venv's script), else `python -m callguard`."""
    script = Path(sys.executable).with_name("callguard")
    return [str(script)] if script.exists() else [sys.executable, "-m", "callguard"]


def _wall(argv: list[str], runs: int = 5) -> list[float]:
    """Wall times of ``runs`` runs of a command (output captured, exit status checked)."""
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True)
        times.append(time.perf_counter() - t0)
    return sorted(times)


def _late(call: _Seizure) -> str:
    """What the line saw of a call that was not seized before its first ring."""
    record = call.record
    sent = record.cid_sent_at
    ath1 = "no ATH1" if call.latency is None else f"ATH1 {_ms(call.latency)} after caller ID"
    return (
        f"{record.call.number}: {record.outcome}, caller ID {'sent' if sent else 'not sent'},"
        f" {ath1}, {len(record.rings)} RING(s) sent"
        + (
            f", the first {_ms(record.rings[0] - sent)} after caller ID"
            if sent and record.rings
            else ""
        )
    )


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def _met(ok: bool) -> str:
    return "met" if ok else "MISSED"


def _logged_calls(state: Path) -> int:
    import sqlite3

    conn = sqlite3.connect(f"file:{state / 'calls.sqlite3'}?mode=ro", uri=True)
    try:
        return int(conn.execute("SELECT count(*) FROM calls").fetchone()[0])
    finally:
        conn.close()


@benchmark
def targets() -> list[str]:
    """Issue 13's targets, each beside a floor measured in the same run (printed, not asserted).

    The floor of seize latency is a bare pyserial loop (a subprocess) on the same simulated
    modem. One state folder grows through the run: 100,001 family-blocked numbers (scenario a),
    plus a 1,000,000-number community list (b, c, d; memory also with that list alone), plus
    50,000 calls in the log (e: seize latency, disk bytes per call, CLI times). One daemon
    subprocess per scenario, each on its own simulated modem at time_scale 0.3 (150 ms from
    caller ID to the first ring, stricter than SIN 227's 200 ms). The state folder is on the
    disk (CALLGUARD_BENCH_DIR, default "."); storage.runtime_dir, where the status goes, is a
    folder on /dev/shm (tmpfs), as /run/callguard is on a unit.
    """
    import datetime as dt
    import json
    import os
    import shutil
    import tempfile

    from callguard.sim import Call
    from callguard.store.biglist import community_path, write_biglist
    from callguard.store.calllog import CallLog

    out: list[str] = []
    summary: list[tuple[str, str, str, str]] = []  # what, measured, target, met
    # on the 100,000-number block list (020 7000 0000 .. 020 7009 9999), as seize_latency had
    family = [f"0207{i % 10:03d}{i * 37 % 10000:04d}" for i in range(40)]
    shm = Path("/dev/shm")
    bench_dir = os.environ.get("CALLGUARD_BENCH_DIR", ".")
    with (
        tempfile.TemporaryDirectory(dir=bench_dir) as tmp,
        tempfile.TemporaryDirectory(dir=shm if shm.is_dir() else None) as rt,
    ):
        state, runtime = Path(tmp).resolve() / "state", Path(rt)
        subprocess.run([sys.executable, "-c", _INDEX_BUILD, str(state)], check=True)
        places = (
            f"storage.dir on {_fs_type(state)}, storage.runtime_dir (the status) in {runtime}"
            f" on {_fs_type(runtime)}, as /run/callguard on a unit"
        )

        floor = _floor_seizures(family[:20])
        with _running_daemon(state, runtime) as run:
            scenario_a = [_blocked_call(run.sim, n) for n in family[:20]]
            starts = {"a": run.started}
            spaced = []  # the same daemon with the line quiet for 0.5 s before each call
            for n in family[20:30]:
                time.sleep(0.5)
                spaced.append(_blocked_call(run.sim, n))

        numbers = _community_numbers()
        write_biglist(community_path(state), numbers)
        community = ["0" + n[3:] for n in numbers[:40] if not n.startswith("+4420700")][:10]
        del numbers
        alone = Path(tmp) / "community-only"
        alone.mkdir()
        shutil.copyfile(community_path(state), community_path(alone))
        with _running_daemon(alone.resolve(), runtime) as run:
            unknown_alone = run.sim.place_call(Call(number="01707354000", rings=1)).wait(30)
            time.sleep(0.3)  # the call logged and the status written
            memory_alone = _memory_of(run.pid)
        with _running_daemon(state, runtime) as run:
            starts["b"] = run.started
            scenario_b = []
            for mine, theirs in zip(family[20:30], community, strict=True):
                scenario_b += [_blocked_call(run.sim, mine), _blocked_call(run.sim, theirs)]
            unknown = run.sim.place_call(Call(number="01707354000", rings=1)).wait(30)
            time.sleep(0.3)  # the call logged and the status written
            memory = _memory_of(run.pid)

        with _running_daemon(state, runtime) as run:
            starts["c"] = run.started
            scenario_c, adds = [], []
            for i in range(8):
                t0 = time.perf_counter()
                argv = ["--config", str(run.config), "allow", "add", f"0113 496 {i:04d}"]
                subprocess.run([*_cli(), *argv, "--by", "bench"], check=True, capture_output=True)
                adds.append(time.perf_counter() - t0)
                time.sleep(0.1)
                scenario_c.append(_blocked_call(run.sim, family[30 + i]))
            time.sleep(1.5)  # the last reload done and shown
            shown = (run.store.read_status() or {}).get("lists", {})
        stopped = Path(tmp) / "callguard.toml"  # the daemon's config went with it
        stopped.write_text(
            f"[storage]\ndir = {json.dumps(str(state))}\nruntime_dir = {json.dumps(rt)}\n"
        )
        adds_alone = []  # the same with no daemon re-reading the lists at the same time
        for i in range(8, 13):
            t0 = time.perf_counter()
            argv = ["--config", str(stopped), "allow", "add", f"0113 496 {i:04d}", "--by", "bench"]
            subprocess.run([*_cli(), *argv], check=True, capture_output=True)
            adds_alone.append(time.perf_counter() - t0)

        with _running_daemon(state, runtime) as run:
            starts["d"] = run.started
            scenario_d, gaps = [_blocked_call(run.sim, family[0])], []
            for _ in range(7):
                released = scenario_d[-1].record.released_at
                if released is not None:
                    time.sleep(max(0.0, released + 0.1 - time.monotonic()))
                scenario_d.append(_blocked_call(run.sim, family[0]))
                sent = scenario_d[-1].record.cid_sent_at
                if released is not None and sent is not None:
                    gaps.append(sent - released)

        count = 50_000
        t0 = time.perf_counter()
        start = dt.datetime.now().astimezone() - dt.timedelta(minutes=10 * (count + 1))
        table = {str(i + 1): _bench_call(i, start) for i in range(count)}
        (state / "calls.json").write_text(json.dumps({"calls": table}))
        del table
        CallLog(state).read(limit=1)  # the first read migrates calls.json
        prefill = time.perf_counter() - t0
        with _running_daemon(state, runtime) as run:
            starts["e"] = run.started
            time.sleep(1.0)  # start-up's own writes (the prompts' cache, the first status) done
            logged_before = _logged_calls(state)
            w0 = _proc_io_written(run.pid)
            scenario_e = [_blocked_call(run.sim, n) for n in family[:20]]
            time.sleep(1.0)  # the writer has logged the last call
            written = _proc_io_written(run.pid) - w0
            logged_after = _logged_calls(state)
            config = ["--config", str(run.config)]
            python_alone = _wall([sys.executable, "-c", "pass"])
            status = _wall([*_cli(), *config, "status"])
            log_20 = _wall([*_cli(), *config, "log", "--limit", "20"])

    # -- 1 and 2: seize latency beside the floor
    fl = sorted(c.latency for c in floor if c.latency is not None)
    floor_median = statistics.median(fl) if fl else float("nan")
    out.append(
        f"seize floor: bare pyserial loop on the same simulated modem, {len(floor)} calls:"
        f" {sum(c.before_ring for c in floor)} of {len(floor)} seized before the first ring;"
        f" floor (bare pyserial) median {_ms(floor_median)}, worst {_ms(fl[-1]) if fl else '-'}"
    )
    # The median target is for the big lists, (a) and (b); the moments (c), (d), (e)
    # must have every call seized before the first ring, worst < 20 ms (their ratio is shown
    # too). (a') is ours: the same daemon after a quiet line, where caches have gone cold.
    scenarios = [
        ("a", "100,001 family-blocked numbers, each call as soon as the last ended", scenario_a),
        ("a'", "the same daemon, the line quiet for 0.5 s before each call", spaced),
        ("b", "plus the 1,000,000-number community list (10 family, 10 community)", scenario_b),
        ("c", "0.1 s after each `callguard allow add` (8 edits)", scenario_c),
        ("d", "a redial 0.1 s after the seizure ends, 8 in a row", scenario_d),
        ("e", f"with {logged_before:,} calls in the log, back to back", scenario_e),
    ]
    median_target = {"a", "b"}
    for key, what, calls in scenarios:
        lat = sorted(c.latency for c in calls if c.latency is not None)
        early = sum(c.before_ring for c in calls)
        late = [_late(c) for c in calls if not c.before_ring]
        if not lat:
            out.append(f"seize ({key}) {what}: {early} of {len(calls)} seized; no ATH1 seen")
            summary.append((f"seize ({key})", "none seized", "", "MISSED"))
            continue
        median, worst = statistics.median(lat), lat[-1]
        ratio = median / floor_median
        ok = early == len(calls) and worst < 0.020
        target = "all before the ring, worst < 20 ms"
        if key in median_target:
            ok = ok and ratio <= 3
            target = "all before the ring, median <= 3x floor, worst < 20 ms"
        out.append(
            f"seize ({key}) {what}: {early} of {len(calls)} seized before the first ring;"
            f" median {_ms(median)}, worst {_ms(worst)}; {ratio:.1f}x the floor's median"
            f" [target: {target}: {_met(ok)}]"
        )
        out += [f"  ({key}) not seized before the first ring: {text}" for text in late]
        summary.append(
            (
                f"seize ({key}) median / worst",
                f"{early}/{len(calls)} early, {_ms(median)} ({ratio:.1f}x) / {_ms(worst)}",
                "<= 3x floor / < 20 ms" if key in median_target else "all early / < 20 ms",
                _met(ok),
            )
        )
    if gaps:
        out.append(
            f"  (d) the redial's caller ID left the modem median {_ms(statistics.median(gaps))}"
            f" (least {_ms(min(gaps))}) after the line went back on-hook"
        )
    out.append(
        f"  (c) the daemon's status afterwards shows {shown.get('allow')} allowed numbers"
        f" (8 added), {shown.get('block')} blocked, community {shown.get('community')}"
    )
    summary.insert(
        0, ("seize floor median / worst", f"{_ms(floor_median)} / {_ms(fl[-1])}", "", "")
    )

    # -- 3: disk bytes per screened call
    per_call = written / len(scenario_e)
    out.append(
        f"disk written per screened call with {logged_before:,} calls logged:"
        f" {per_call / 1000:.1f} kB ({per_call / 1024:.1f} KiB) a call over {len(scenario_e)}"
        f" blocked calls ({logged_after - logged_before} logged), /proc/<daemon>/io write_bytes"
        f" - cancelled_write_bytes; {places} [target < 16 kB: {_met(per_call < 16_000)}]"
    )
    out.append(f"  (the 50,000 calls went in through the calls.json migration in {prefill:.1f} s)")
    summary.append(
        (
            "disk written per blocked call",
            f"{per_call / 1000:.1f} kB",
            "< 16 kB",
            _met(per_call < 16_000),
        )
    )

    # -- 4: memory after the first unknown caller
    for what, mem, call, judged in (
        ("the 1,000,000-number community list alone", memory_alone, unknown_alone, True),
        ("it and 100,001 family-blocked numbers (b)", memory, unknown, False),
    ):
        rss, hwm = mem["VmRSS"], mem["VmHWM"]
        verdict = f"target < 40 MB: {_met(max(rss, hwm) < 40)}" if judged else "no target"
        out.append(
            f"daemon memory after the first unknown caller ({call.outcome}), {what}: VmRSS"
            f" {rss:.1f} MB (anon {mem['RssAnon']:.1f}, file {mem['RssFile']:.1f}), VmHWM"
            f" {hwm:.1f} MB [{verdict}]"
        )
    summary += [
        (
            "daemon VmRSS / VmHWM, 1M community",
            f"{memory_alone['VmRSS']:.1f} / {memory_alone['VmHWM']:.1f} MB",
            "< 40 MB",
            _met(max(memory_alone["VmRSS"], memory_alone["VmHWM"]) < 40),
        ),
        (  # the target is for the community list; this shows what 100k family cost
            "  the same plus 100k family (b)",
            f"{memory['VmRSS']:.1f} / {memory['VmHWM']:.1f} MB",
            "(shown, no target)",
            "",
        ),
    ]

    # -- 5: CLI wall times
    py = statistics.median(python_alone)
    cli = [
        ("callguard status", statistics.median(status), 0.150, "5 runs"),
        ("callguard log --limit 20", statistics.median(log_20), 0.150, "5 runs"),
        ("callguard allow add, 100,001 listed", statistics.median(adds_alone), 0.300, "5 runs"),
    ]
    out.append(
        f"CLI wall time (a subprocess each; status and log with the daemon running and"
        f" {logged_after:,} calls logged): floor `python -c pass` median {py * 1000:.0f} ms"
    )
    for name, median, target, runs in cli:
        out.append(
            f"  {name}: median {median * 1000:.0f} ms ({runs}; {median / py:.1f}x python alone)"
            f" [target < {target * 1000:.0f} ms: {_met(median < target)}]"
        )
        summary.append(
            (name, f"{median * 1000:.0f} ms", f"< {target * 1000:.0f} ms", _met(median < target))
        )
    out.append(
        f"  (allow add above with no daemon running; in (c), the daemon running and re-reading"
        f" the lists after each add: median {statistics.median(adds) * 1000:.0f} ms, 8 runs)"
    )
    summary.append(("python -c pass (floor)", f"{py * 1000:.0f} ms", "", ""))

    # -- 6: start-up to ready
    full = [starts[k] for k in "bcde"]
    out.append(
        f"start-up to ready (process start -> status says the modem is connected) with 100,001"
        f" family numbers and the 1,000,000-number community list: {starts['b']:.2f} s"
        f" (the four starts: {', '.join(f'{s:.2f}' for s in full)} s; with the family list"
        f" alone {starts['a']:.2f} s) [target < 1 s: {_met(max(full) < 1)}]"
    )
    summary.append(
        ("start-up to ready (worst of 4)", f"{max(full):.2f} s", "< 1 s", _met(max(full) < 1))
    )

    width = max(len(row[0]) for row in summary)
    wide = max(len(row[1]) for row in summary)
    out.append("issue 13 targets, measured in this run:")
    out += [
        f"  {what:<{width}}  {measured:<{wide}}  {target:<22}  {met}".rstrip()
        for what, measured, target, met in summary
    ]
    return out


benchmark(__import__("web").family_page)  # benchmarks/web.py: the family page (issue 15)


@benchmark
def memory() -> list[str]:
    """Peak RSS of this benchmark process after the above."""
    rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return [f"benchmark process peak RSS: {rss_kb / 1024:.1f} MB"]


_SLOW_RECEIVER = """
import sys, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        time.sleep(0.5)  # a slow network
        self.send_response(200)
        self.end_headers()
        print("got", flush=True)

    def log_message(self, *args):
        pass

server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
"""


@benchmark
def alerts() -> list[str]:
    """Issue 16: the daemon's seize latency with no alert sender, then while `callguard link`
    sends an alert for every blocked call (each a spoofed bank number: an impersonation alert)
    to a receiver that takes 0.5 s to answer; the link's memory beside a bare Python's."""
    import os
    import tempfile
    import threading

    from callguard.core.lists import target_for
    from callguard.store.lists import Store

    numbers = [f"0306999{i:04d}" for i in range(20)]
    receiver = subprocess.Popen(
        [sys.executable, "-c", _SLOW_RECEIVER], stdout=subprocess.PIPE, text=True
    )
    assert receiver.stdout is not None
    port = int(receiver.stdout.readline())
    got: list[float] = []

    def count() -> None:
        assert receiver.stdout is not None
        for _ in receiver.stdout:
            got.append(time.monotonic())

    threading.Thread(target=count, daemon=True).start()
    out: list[str] = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            state = Path(tmp) / "state"
            store = Store(state)
            for n in numbers:
                store.add("protect", target_for(n, "GB"), name="Drama Bank card line")
            extra = f'[alerts]\nurls = ["json://127.0.0.1:{port}/"]\n'
            with _running_daemon(state, extra=extra) as run:
                quiet = [_blocked_call(run.sim, n) for n in numbers[:10]]
                log_path = Path(tmp) / "link.log"
                with open(log_path, "w") as log_file:
                    link = subprocess.Popen(
                        [sys.executable, "-m", "callguard", "--config", str(run.config), "link"],
                        stderr=log_file,
                        env={**os.environ, "PYTHONUNBUFFERED": "1"},
                    )
                    try:
                        deadline = time.monotonic() + 30
                        while "callguard link:" not in log_path.read_text():
                            if time.monotonic() > deadline:
                                raise RuntimeError("callguard link did not start")
                            time.sleep(0.05)
                        idle = _memory_of(link.pid)
                        t0 = time.monotonic()
                        busy = [_blocked_call(run.sim, n) for n in numbers[10:]]
                        while len(got) < 10 and time.monotonic() < t0 + 60:
                            time.sleep(0.05)
                        sending = _memory_of(link.pid)
                        daemon = _memory_of(run.pid)
                    finally:
                        link.terminate()
                        link.wait(20)
        floor = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3)"])
        time.sleep(1)
        bare = _memory_of(floor.pid)
        floor.wait()
    finally:
        receiver.terminate()
        receiver.wait(10)
    for what, calls in (("no alert sender", quiet), ("while the link sends alerts", busy)):
        lat = sorted(c.latency for c in calls if c.latency is not None)
        early = sum(c.before_ring for c in calls)
        out.append(
            f"alerts: seize latency, {what}: {early} of {len(calls)} seized before the first"
            f" ring; median {_ms(statistics.median(lat))}, worst {_ms(lat[-1])}"
        )
    out.append(
        f"alerts: {len(got)} of 10 impersonation alerts delivered to a receiver taking 0.5 s"
        f" each, the last {got[-1] - t0:.1f} s after the first call"
        if got
        else "alerts: none"
    )
    out.append(
        f"alerts: callguard link VmRSS {idle['VmRSS']:.1f} MB idle, {sending['VmRSS']:.1f} MB"
        f" after sending (VmHWM {sending['VmHWM']:.1f} MB); the daemon meanwhile"
        f" {daemon['VmRSS']:.1f} MB; floor: a bare python process {bare['VmRSS']:.1f} MB"
    )
    return out


def _cpu_s(pid: int) -> float:
    """User plus system CPU seconds a process has used."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class _UnitClient:
    """One simulated unit on the broker: a paho client driven by the benchmark's own epoll
    loop (paho's loop_start uses select(), which takes no descriptor above 1,024, and each
    client holds three), sending what callguard link sends: the Last Will, availability, the
    Home Assistant discovery configs (FleetLink's own), state, events and community reports."""

    def __init__(self, name: str, password: str, port: int, selector: Any, link: Any) -> None:
        import paho.mqtt.client as mqtt

        self.name, self.link, self.selector = name, link, selector
        self.ready = False
        c = self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=f"callguard-{name}"
        )
        c.username_pw_set(name, password)
        c.will_set(f"callguard/{name}/availability", "offline", qos=1, retain=True)
        c.on_connect = self._connected
        c.on_socket_open = lambda cl, ud, sock: selector.register(sock, 1, self)
        c.on_socket_close = lambda cl, ud, sock: selector.unregister(sock)
        c.on_socket_register_write = lambda cl, ud, sock: selector.modify(sock, 3, self)
        c.on_socket_unregister_write = lambda cl, ud, sock: selector.modify(sock, 1, self)
        c.connect("127.0.0.1", port, keepalive=60)

    def _connected(self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        import json

        client.publish(f"callguard/{self.name}/availability", "online", qos=1, retain=True)
        for topic, config in self.link.discovery():
            client.publish(topic, json.dumps(config), qos=1, retain=True)
        client.subscribe(f"callguard/{self.name}/cmd/#", qos=1)
        self.ready = True

    def publish(self, topic: str, payload: str, retain: bool = False) -> None:
        self.client.publish(f"callguard/{self.name}/{topic}", payload, qos=1, retain=retain)


@benchmark
def fleet() -> list[str]:
    """Issue 17: FLEET_UNITS (500) unit links on one Mosquitto (one process, a client each on
    one epoll loop, the group's ACL, a login each) for FLEET_MINUTES (10), with `callguard hub`
    beside it. Each unit publishes its state every 30 s (a call), an event every 5 min and a
    community report every 10 min from a pool of 200 scam numbers; a volunteer's client reads
    everything. Broker and hub memory and CPU, and message rates, beside the idle broker's."""
    import json
    import random
    import selectors
    import tempfile

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    import paho.mqtt.client as mqtt
    from broker import Broker, mosquitto  # tests/broker.py: the group's ACL

    from callguard.config import from_dict
    from callguard.link.fleet import FleetLink
    from callguard.store.state import StateFiles

    if mosquitto() is None:
        return ["fleet: skipped, mosquitto is not installed (make broker)"]
    count = int(os.environ.get("FLEET_UNITS", "500"))
    minutes = float(os.environ.get("FLEET_MINUTES", "10"))
    names = [f"unit-{n:04d}" for n in range(count)]
    pool = [f"+4416329{n:05d}" for n in range(200)]
    selector = selectors.DefaultSelector()
    units: list[_UnitClient] = []

    def pump(seconds: float) -> None:
        """Run the clients' network for ``seconds``."""
        until = time.monotonic() + seconds
        while True:
            left = until - time.monotonic()
            if left <= 0:
                return
            for key, mask in selector.select(min(left, 0.2)):
                unit = key.data
                if mask & 1:
                    unit.client.loop_read()
                if mask & 2:
                    unit.client.loop_write()

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "broker"
        folder.mkdir()
        broker = Broker(folder, [*names, "hub", "admin", "volunteer"]).start()
        assert broker.proc is not None
        hub_proc = None
        try:
            bare = _memory_of(broker.proc.pid)
            hub_config = Path(tmp) / "hub.toml"
            hub_config.write_text(
                f'[hub]\nbroker = "{broker.url}"\nusername = "hub"\n'
                f'password_file = "{broker.password_file("hub")}"\ndir = "{Path(tmp) / "hub"}"\n'
            )
            cli = [sys.executable, "-m", "callguard", "--config", str(hub_config)]
            subprocess.run([*cli, "hub", "key"], check=True, capture_output=True)
            hub_proc = subprocess.Popen([*cli, "hub"], stderr=subprocess.DEVNULL)
            received = [0]
            lists: list[int] = []

            def on_message(client: Any, userdata: Any, message: Any) -> None:
                received[0] += 1
                if message.topic == "callguard/community/list":
                    lists.append(len(json.loads(message.payload)["list"]["numbers"]))

            volunteer = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-volunteer")
            volunteer.username_pw_set("volunteer", broker.passwords["volunteer"])
            volunteer.on_message = on_message
            volunteer.on_connect = lambda c, u, f, rc, p: c.subscribe("callguard/#", qos=0)
            volunteer.connect("127.0.0.1", broker.port)
            volunteer.loop_start()

            t0 = time.monotonic()
            state = StateFiles(tmp)
            for name in names:
                config = from_dict(
                    {"storage": {"dir": tmp}, "fleet": {"broker": broker.url, "unit_id": name}}
                )
                link = FleetLink(config, state)  # not started: its discovery configs only
                units.append(_UnitClient(name, broker.passwords[name], broker.port, selector, link))
                pump(0.005)
            deadline = time.monotonic() + 60
            while not all(u.ready for u in units) and time.monotonic() < deadline:
                pump(0.1)
            connected = sum(u.ready for u in units)
            connect_s = time.monotonic() - t0
            pump(2.0)
            broker_cpu0, hub_cpu0 = _cpu_s(broker.proc.pid), _cpu_s(hub_proc.pid)
            received[0] = 0
            start = time.monotonic()
            end = start + minutes * 60
            rng = random.Random(17)
            tick = sent = 0
            while time.monotonic() < end:
                tick += 1  # a second a tick, each unit on its own phase
                for n, unit in enumerate(units):
                    phase = (tick + n) % 600
                    if phase % 30 == 0:
                        state_doc = {"modem": "connected", "line": "idle", "last_call": tick}
                        unit.publish("state", json.dumps(state_doc), retain=True)
                        sent += 1
                    if phase % 300 == 0:
                        unit.publish("events", json.dumps({"kind": "impersonation", "at": tick}))
                        sent += 1
                    if phase == 0:
                        report = {"number": rng.choice(pool), "reason": "family-blocked"}
                        unit.publish("report", json.dumps(report))
                        sent += 1
                    if n % 50 == 0:
                        pump(0)
                for unit in units:
                    unit.client.loop_misc()  # keepalive pings
                pump(max(0.0, start + tick - time.monotonic()))
            elapsed = time.monotonic() - start
            pump(2.0)
            broker_mem, hub_mem = _memory_of(broker.proc.pid), _memory_of(hub_proc.pid)
            broker_cpu = _cpu_s(broker.proc.pid) - broker_cpu0
            hub_cpu = _cpu_s(hub_proc.pid) - hub_cpu0
            volunteer.loop_stop()
            volunteer.disconnect()
        finally:
            for unit in units:
                unit.client.disconnect()
            if hub_proc is not None:
                hub_proc.terminate()
                hub_proc.wait(20)
            broker.stop()
    return [
        f"fleet: {connected} of {count} unit links connected (a login each, no TLS) in"
        f" {connect_s:.1f} s; then {elapsed / 60:.1f} min of traffic",
        f"fleet: the units sent {sent:,} messages ({sent / elapsed:.1f}/s); the volunteer's"
        f" client received {received[0]:,} ({received[0] / elapsed:.1f}/s)",
        f"fleet: mosquitto VmRSS {broker_mem['VmRSS']:.1f} MB (VmHWM {broker_mem['VmHWM']:.1f})"
        f" with {count} units, CPU {broker_cpu / elapsed * 100:.2f}% of one core;"
        f" floor: the same broker with no clients {bare['VmRSS']:.1f} MB",
        f"fleet: callguard hub VmRSS {hub_mem['VmRSS']:.1f} MB (VmHWM {hub_mem['VmHWM']:.1f}),"
        f" CPU {hub_cpu / elapsed * 100:.2f}% of one core; the community list published"
        f" {len(lists)} times, the last with {lists[-1] if lists else 0} numbers",
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("names", nargs="*", help=f"some of: {', '.join(BENCHMARKS)}")
    args = parser.parse_args()
    unknown = [n for n in args.names if n not in BENCHMARKS]
    if unknown:
        print(
            f"unknown benchmark {unknown[0]!r}; choose from {', '.join(BENCHMARKS)}",
            file=sys.stderr,
        )
        return 2
    for name in args.names or list(BENCHMARKS):
        for line in BENCHMARKS[name]():
            print(line, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
