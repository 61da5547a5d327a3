"""Shared by the end-to-end tests: polling with a deadline (never a bare sleep), and a unit
under test (the daemon on the simulated modem, and the CLI)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from callguard.config import Config, from_dict
from callguard.daemon.app import Daemon, Observed
from callguard.sim import Call, CallRecord, SimModem
from callguard.store.lists import Store


def wait_for(predicate: Callable[[], Any], timeout_s: float = 5.0, what: str = "") -> Any:
    """Poll ``predicate`` until it returns something true, and return that; fail at the deadline."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what or predicate}")


class DaemonUnit:
    """A unit under test: `callguard run` as a subprocess on a simulated modem, and the CLI
    pointed at the same config. ``config`` is the TOML after the [modem] and [storage] lines."""

    def __init__(
        self, tmp: Path, config: str = "", *, identity: str = "conexant", scale: float = 0.5
    ) -> None:
        self.tmp = tmp
        self.link = str(tmp / "modem")
        self.sim = SimModem(identity=identity, link_path=self.link, time_scale=scale)
        self.config = tmp / "callguard.toml"
        self.config.write_text(
            f'[modem]\nport = "{self.link}"\n[storage]\ndir = "{tmp / "state"}"\n' + config
        )
        self.proc: subprocess.Popen[str] | None = None
        self._log: IO[str] | None = None

    def cli(self, *argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "callguard", "--config", str(self.config), *argv],
            capture_output=True,
            text=True,
            timeout=60,
        )

    def start(self) -> DaemonUnit:
        self.sim.start()
        self._log = open(self.tmp / "daemon.log", "w")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "callguard", "--config", str(self.config), "run"],
            stdout=subprocess.DEVNULL,
            stderr=self._log,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        wait_for(lambda: self.status().get("modem") == "connected", 20, "the daemon to connect")
        return self

    def stop(self) -> int | None:
        """SIGTERM the daemon (if still running) and stop the modem; the daemon's exit code."""
        code = None
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
            code = self.proc.wait(30)
        self.sim.stop()
        if self._log is not None:
            self._log.close()
        return code

    def __enter__(self) -> DaemonUnit:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def status(self) -> dict[str, Any]:
        result = self.cli("status", "--json")
        return json.loads(result.stdout) if result.returncode == 0 and result.stdout else {}

    def calls(self) -> list[dict[str, Any]]:
        return list(json.loads(self.cli("log", "--json").stdout))

    def call(self, call: Call) -> tuple[CallRecord, dict[str, Any]]:
        before = len(self.calls())
        record = self.sim.place_call(call).wait(60)
        logged = wait_for(lambda: self.calls()[before:], 30, "the call to be logged")
        return record, logged[-1]

    def log_text(self) -> str:
        return (self.tmp / "daemon.log").read_text()


ROOM_PLAYER = """
import os, shutil, sys, time
wav, out = sys.argv[1], sys.argv[2]
stamp = time.monotonic()  # CLOCK_MONOTONIC: the same clock as the simulator's records
n = len([f for f in os.listdir(out) if f.endswith(".time")])
shutil.copy(wav, f"{out}/.partial")  # then renamed: a test never reads half a file
os.replace(f"{out}/.partial", f"{out}/played-{n}.wav")
open(f"{out}/played-{n}.time", "w").write(repr(stamp))
"""


def room_recorder(tmp: Path) -> tuple[str, Path]:
    """A ``warning.room_command`` that records what it was asked to play, and when.

    Returns the command and the folder it records into (see :func:`played`)."""
    folder = tmp / "played"
    folder.mkdir(exist_ok=True)
    script = tmp / "room_player.py"
    script.write_text(ROOM_PLAYER)
    return f"{sys.executable} {script} {{wav}} {folder}", folder


def played(folder: Path) -> list[tuple[Path, float]]:
    """What the recorder played, oldest first, with the CLOCK_MONOTONIC time it started."""
    return [
        (p, float(p.with_suffix(".time").read_text()))
        for p in sorted(folder.glob("played-*.wav"), key=lambda p: int(p.stem.split("-")[1]))
        if p.with_suffix(".time").exists()
    ]


class Running:
    """The daemon in-process (a thread) on a simulated modem, with an observer; ``daemon_kw``
    reaches the Daemon's constructor (clocks, a notifier, a transport factory)."""

    def __init__(self, tmp: Path, extra: dict[str, Any] | None = None, **daemon_kw: Any) -> None:
        self.daemon_kw = daemon_kw
        self.link = str(tmp / "modem")
        self.config_path = tmp / "callguard.toml"
        data: dict[str, Any] = {
            "modem": {"port": self.link},
            "storage": {"dir": str(tmp / "state")},
            "warning": {"room_command": ""},
        }
        for section, values in (extra or {}).items():
            data.setdefault(section, {}).update(values)
        self.config: Config = from_dict(data)
        self.write_config(data)
        self.store = Store(self.config.storage.dir)
        self.seen: list[Observed] = []
        self.sim = SimModem(identity="conexant", link_path=self.link, time_scale=0.25)

    def write_config(self, data: dict[str, Any]) -> None:
        lines = []
        for section, values in data.items():
            lines.append(f"[{section}]")
            lines += [f"{k} = {v!r}".replace("'", '"') for k, v in values.items()]
        self.config_path.write_text("\n".join(lines) + "\n")

    def __enter__(self) -> Running:
        self.sim.start()
        self.daemon = Daemon(
            self.config,
            config_path=str(self.config_path),
            observer=self.seen.append,
            ring_gap_s=2.0,
            **self.daemon_kw,
        )
        self.thread = threading.Thread(target=self.daemon.run, kwargs={"install_signals": False})
        self.thread.start()
        wait_for(lambda: self.daemon.status()["modem"] == "connected", 10, "the modem")
        return self

    def __exit__(self, *exc: object) -> None:
        self.daemon.stop()
        self.thread.join(20)
        self.sim.stop()
        assert not self.thread.is_alive()

    def call(self, call: Call) -> tuple[Any, dict[str, Any]]:
        before = len(self.store.calls())
        record = self.sim.place_call(call).wait(30)
        calls = wait_for(lambda: self.store.calls()[before:], 15, "the call log")
        return record, calls[-1]
