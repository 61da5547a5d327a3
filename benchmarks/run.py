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
