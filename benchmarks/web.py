"""The family page's cost (``make bench``, registered in run.py; or ``python benchmarks/web.py``).

`callguard web` is started as systemd starts it (a process of its own, waitress, 4 threads) on
a storage folder whose call log holds 50,000 calls, filled as run.py's ``call_log`` benchmark
fills it. Measured from outside over loopback, one keep-alive connection, a logged-in client:

- its memory (VmRSS, and VmHWM: the peak) just started, then after 1,000 requests of the pages
  a family uses (Today, Calls and its later pages, a search, Lists, the style sheet);
- the time of a whole request for Today and Calls (median and 95th percentile of 50 each), and
  for the searches, which read more of the log;
- beside a floor measured the same way in the same run: a bare waitress hello-world, and a bare
  Flask app under waitress (what Flask adds before any CallGuard code runs).

The time of a request includes the client's side of loopback HTTP, a few tenths of a
millisecond here; a Raspberry Pi is several times slower than a developer machine.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

CALLS = 50_000
REQUESTS = 1_000
SAMPLES = 50
PASSWORD = "benchmark password"
MIX = ("/", "/calls", "/calls?page=2", "/calls?page=40", "/lists", "/static/style.css")
"""The 1,000 requests, in turn: what a family member's phone asks for."""

WAITRESS_FLOOR = """
import sys
from waitress.server import create_server

def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "5")])
    return [b"hello"]

server = create_server(app, listen="127.0.0.1:0", threads=4)
print(f"listening on http://127.0.0.1:{server.effective_port}/", file=sys.stderr, flush=True)
server.run()
"""

FLASK_FLOOR = """
import sys
from flask import Flask, render_template_string
from waitress.server import create_server

app = Flask(__name__)

@app.get("/")
def hello():
    return render_template_string("<!doctype html><title>{{ t }}</title><p>{{ t }}</p>", t="hello")

server = create_server(app, listen="127.0.0.1:0", threads=4)
print(f"listening on http://127.0.0.1:{server.effective_port}/", file=sys.stderr, flush=True)
server.run()
"""


class Client:
    """One keep-alive HTTP connection with a cookie jar, as a phone's browser holds one."""

    def __init__(self, base: str) -> None:
        parts = urllib.parse.urlsplit(base)
        assert parts.hostname and parts.port
        self.origin = base.rstrip("/")
        self.conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
        self.cookies: dict[str, str] = {}

    def request(self, method: str, path: str, form: dict[str, str] | None = None) -> str:
        headers = {}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        body = None
        if form is not None:
            body = urllib.parse.urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            headers["Origin"] = self.origin
        self.conn.request(method, path, body=body, headers=headers)
        response = self.conn.getresponse()
        text = response.read().decode("utf-8", "replace")
        for line in response.headers.get_all("Set-Cookie") or []:
            name, _, rest = line.partition("=")
            self.cookies[name.strip()] = rest.split(";", 1)[0]
        if response.status >= 400:
            raise RuntimeError(f"{method} {path}: {response.status} {text[:300]}")
        return text

    def timed_get(self, path: str) -> float:
        t0 = time.perf_counter()
        self.request("GET", path)
        return time.perf_counter() - t0

    def log_in(self, password: str) -> None:
        page = self.request("GET", "/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page)
        assert token, page[:300]
        form = {"csrf_token": token.group(1), "password": password, "next": "/"}
        self.request("POST", "/login", form)
        assert "Log out" in self.request("GET", "/"), "the benchmark could not log in"

    def close(self) -> None:
        self.conn.close()


@contextlib.contextmanager
def _serving(argv: list[str], log: Path) -> Iterator[tuple[int, str]]:
    """A server process that says "listening on http://127.0.0.1:PORT/" on stderr: its pid and
    URL; terminated after."""
    with open(log, "w") as err:
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=err)
    try:
        deadline = time.monotonic() + 60
        while True:
            found = re.search(r"listening on (http://127\.0\.0\.1:\d+)/", log.read_text())
            if found:
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{argv} did not start: {log.read_text()}")
            time.sleep(0.02)
        time.sleep(0.5)  # settled: the first request is not served before this anyway
        yield proc.pid, found.group(1)
    finally:
        proc.terminate()
        proc.wait(20)


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def _spread(times: list[float]) -> str:
    times = sorted(times)
    p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
    return f"median {_ms(statistics.median(times))}, p95 {_ms(p95)}"


def _mb(memory: dict[str, float]) -> str:
    return f"RSS {memory['VmRSS']:.1f} MB (peak {memory['VmHWM']:.1f} MB)"


def _floor(name: str, script: str, tmp: Path) -> str:
    from run import _memory_of

    with _serving([sys.executable, "-c", script], tmp / f"{name}.log") as (pid, base):
        idle = _memory_of(pid)
        client = Client(base)
        times = [client.timed_get("/") for _ in range(REQUESTS)]
        client.close()
        after = _memory_of(pid)
    return (
        f"  floor, {name}: idle RSS {idle['VmRSS']:.1f} MB; after {REQUESTS:,} requests "
        f"{_mb(after)}; GET /: {_spread(times)}"
    )


def family_page() -> list[str]:
    """`callguard web` with a 50,000-call log: memory idle and after 1,000 requests, the time of
    Today and Calls, and a bare waitress and Flask beside it."""
    import datetime as dt

    from run import _bench_call, _memory_of

    from callguard.store.calllog import CallLog
    from callguard.web.passwords import PasswordFile

    out: list[str] = []
    with tempfile.TemporaryDirectory(dir=os.environ.get("CALLGUARD_BENCH_DIR", ".")) as name:
        tmp = Path(name).resolve()
        state = tmp / "state"  # storage.dir must be an absolute path
        state.mkdir()
        start = dt.datetime.now().astimezone() - dt.timedelta(minutes=10 * CALLS)
        table = {str(i + 1): _bench_call(i, start) for i in range(CALLS)}
        (state / "calls.json").write_text(json.dumps({"calls": table}))
        CallLog(state).read(limit=1)  # the first read migrates it to calls.sqlite3
        PasswordFile(state).set(PASSWORD)
        config = tmp / "callguard.toml"
        config.write_text(
            f"[storage]\ndir = {json.dumps(str(state))}\nruntime_dir = "
            f'{json.dumps(str(tmp / "run"))}\n[web]\nhost = "127.0.0.1"\n'
        )
        web = [sys.executable, "-m", "callguard", "--config", str(config), "web", "--port", "0"]
        with _serving(web, tmp / "web.log") as (pid, base):
            idle = _memory_of(pid)
            client = Client(base)
            client.log_in(PASSWORD)
            logged_in = _memory_of(pid)  # checking the password (scrypt) takes 16 MiB
            number = str(_bench_call(CALLS - 1, start)["display"])
            found = client.request("GET", "/calls?" + urllib.parse.urlencode({"q": number}))
            assert "data-call=" in found, f"searching for {number} found nothing"
            timings = {
                "Today (10 calls)": [client.timed_get("/") for _ in range(SAMPLES)],
                "Calls, page 1 (25 calls)": [client.timed_get("/calls") for _ in range(SAMPLES)],
                "Calls, page 40": [client.timed_get("/calls?page=40") for _ in range(SAMPLES)],
                "Calls, a number searched (whole log, by index)": [
                    client.timed_get("/calls?" + urllib.parse.urlencode({"q": number}))
                    for _ in range(SAMPLES)
                ],
                "Calls, a name searched (no match: all the newest 5,000 calls read)": [
                    client.timed_get("/calls?q=Smith") for _ in range(SAMPLES)
                ],
            }
            served = 4 + SAMPLES * len(timings)  # the login's three, the search, the timed ones
            mixed = []
            for i in range(REQUESTS - served):
                mixed.append(client.timed_get(MIX[i % len(MIX)]))
            client.close()
            after = _memory_of(pid)
        out.append(
            f"family page (callguard web, {CALLS:,}-call log): idle {_mb(idle)}; logged in "
            f"{_mb(logged_in)}; after {REQUESTS:,} requests {_mb(after)}"
        )
        out.extend(f"  {what}: {_spread(times)}" for what, times in timings.items())
        out.append(f"  the rest of the {REQUESTS:,}, pages in turn: {_spread(mixed)}")
        out.append(_floor("bare waitress hello-world", WAITRESS_FLOOR, tmp))
        out.append(_floor("bare Flask on waitress", FLASK_FLOOR, tmp))
    return out


if __name__ == "__main__":
    for line in family_page():
        print(line, flush=True)
