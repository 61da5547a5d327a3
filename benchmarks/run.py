"""CallGuard benchmarks: ``make bench``. Prints one line per measurement.

Figures are measured here, not asserted by tests: they go into the issue notes, and a
Raspberry Pi is several times slower than a developer machine.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

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
        size = store.lists_path.stat().st_size
    assert not problems and added == 100_000, (problems[:3], added)
    return [
        f"import 100,000 numbers: {t2 - t0:.2f} s (parse+validate {t1 - t0:.2f} s, "
        f"store {t2 - t1:.2f} s; lists.json {size / 1e6:.1f} MB)"
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


@benchmark
def seize_latency() -> list[str]:
    """Caller-ID line leaving the simulated modem -> ATH1 arriving back, 100,000 blocked numbers.

    The real daemon (`callguard run`, a subprocess) on the simulated line; BT SIN 227 leaves at
    least 200 ms between caller ID and the first ring.
    """
    import os
    import tempfile
    from pathlib import Path

    from callguard.sim import Call, SimModem
    from callguard.store.lists import Store

    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp) / "state"
        subprocess.run([sys.executable, "-c", _INDEX_BUILD, str(state)], check=True)
        link = Path(tmp) / "modem"
        config = Path(tmp) / "callguard.toml"
        config.write_text(
            f'[modem]\nport = "{link}"\n[storage]\ndir = "{state}"\n'
            '[warning]\nroom_command = ""\n[block]\nhold_s = 0.3\n'
        )
        with SimModem(identity="conexant", link_path=str(link), time_scale=0.3) as sim:
            daemon = subprocess.Popen(
                [sys.executable, "-m", "callguard", "--config", str(config), "run"],
                stderr=subprocess.DEVNULL,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
            try:
                store = Store(state)
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline:
                    status = store.read_status() if store.status_path.exists() else None
                    if status and status.get("modem") == "connected":
                        break
                    time.sleep(0.1)
                latencies = []
                for i in range(40):
                    number = f"0207{i % 10:03d}{i * 37 % 10000:04d}"
                    before = len(sim.commands)
                    record = sim.place_call(Call(number=number, rings=3)).wait(30)
                    seize = [t for t, c in sim.commands[before:] if c.upper() == "ATH1"]
                    if seize and record.cid_sent_at is not None:
                        latencies.append(seize[0] - record.cid_sent_at)
                rss = _rss_of(daemon.pid)
            finally:
                daemon.terminate()
                daemon.wait(20)
    latencies.sort()
    return [
        f"seize latency with 100,001 blocked numbers, {len(latencies)} calls: "
        f"median {statistics.median(latencies) * 1000:.1f} ms, "
        f"worst {latencies[-1] * 1000:.1f} ms (SIN 227 gap >= 200 ms)",
        f"daemon RSS with that list loaded: {rss:.1f} MB",
    ]


def _rss_of(pid: int) -> float:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


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


def _daemon_on_sim(state: str, numbers: list[str]) -> tuple[float, list[float], dict[str, float]]:
    """Start `callguard run` on the simulated line with ``state`` as storage.dir, call it from
    ``numbers`` (national format), and return (seconds to "connected", seize latencies of the
    calls it seized, the daemon's memory figures in MB from /proc)."""
    import os
    import tempfile
    from pathlib import Path

    from callguard.sim import Call, SimModem
    from callguard.store.lists import Store

    with tempfile.TemporaryDirectory() as tmp:
        link = Path(tmp) / "modem"
        config = Path(tmp) / "callguard.toml"
        config.write_text(
            f'[modem]\nport = "{link}"\n[storage]\ndir = "{state}"\n'
            '[warning]\nroom_command = ""\n[block]\nhold_s = 0.3\n'
        )
        store = Store(state)
        store.status_path.unlink(missing_ok=True)  # "connected" must be this daemon's
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
                    status = store.read_status() if store.status_path.exists() else None
                    if status and status.get("modem") == "connected":
                        started = time.monotonic() - t0
                        break
                    time.sleep(0.02)
                latencies = []
                for number in numbers:
                    before = len(sim.commands)
                    record = sim.place_call(Call(number=number, rings=3)).wait(30)
                    seize = [t for t, c in sim.commands[before:] if c.upper() == "ATH1"]
                    if seize and record.cid_sent_at is not None:
                        latencies.append(seize[0] - record.cid_sent_at)
                memory: dict[str, float] = {}
                with open(f"/proc/{daemon.pid}/status") as fh:
                    for line in fh:
                        key, _, value = line.partition(":")
                        if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
                            memory[key] = int(value.split()[0]) / 1024
            finally:
                daemon.terminate()
                daemon.wait(20)
    return started, sorted(latencies), memory


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


@benchmark
def memory() -> list[str]:
    """Peak RSS of this benchmark process after the above."""
    rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return [f"benchmark process peak RSS: {rss_kb / 1024:.1f} MB"]


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
