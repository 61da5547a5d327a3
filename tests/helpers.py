"""Shared by the tests: waiting with a deadline (never a bare sleep), the one writer of TOML
configs, and a unit under test (the daemon on the simulated modem, and the CLI)."""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import re
import signal
import subprocess
import sys
import threading
import time
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pytest

from callguard.cli import main
from callguard.config import Config, from_dict
from callguard.core.call import LineState, Timing
from callguard.daemon.app import Daemon, Observed
from callguard.daemon.status import Live
from callguard.modem import profiles
from callguard.modem.protocol import Error, Info, LineVoltage, Ok
from callguard.modem.transport import Reply
from callguard.sim import Call, CallRecord, SimModem
from callguard.store.lists import Store

SYSTEM_COMMANDS = (
    "apt-get",
    "apt-cache",
    "useradd",
    "groupadd",
    "usermod",
    "userdel",
    "groupdel",
    "chown",
    "systemctl",
    "udevadm",
    "getent",
)
"""What install.sh may run on a real system: its tests put failing stand-ins for these first
on PATH (a tripwire), so that its test mode is shown never to run them."""


class SetClock:
    """A wall clock a test sets (``clock.now = ...``): for the store's and screening's ``clock``."""

    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


def wait_for(predicate: Callable[[], Any], timeout_s: float = 5.0, what: str = "") -> Any:
    """Poll ``predicate`` until it returns something true, and return that; fail at the deadline.

    For what only shows in a file or another process; in-process, wait on an event
    (:meth:`Running.wait_seen`, ``wait_connected``, a queue) where there is one."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what or predicate}")


def warned_call(**fields: Any) -> dict[str, Any]:
    """A call record (``log --json``'s fields) from an unknown landline that was warned and
    rang unanswered; ``fields`` change it."""
    return {
        "call_id": 1,
        "started": "2026-11-25T09:30:00+00:00",
        "ended": None,
        "number": "+442079460123",
        "display": "020 7946 0123",
        "category": "landline",
        "name": None,
        "verdict": "warned",
        "rule": "mode:guarded",
        "reason": "Warned: not on any list (a landline).",
        "answered": False,
        "duration_s": None,
        "rings": 3,
        "caller_id": True,
        "impersonation": False,
        "grooming_alert": False,
        "name_claim": False,
        "notes": [],
        **fields,
    }


# -- configs ---------------------------------------------------------------------------------

ConfigData = Mapping[str, Mapping[str, Any]]
"""A config as data, ``{"section": {"key": value}}``: str, int, float, bool or list values."""

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\b": "\\b",
    "\t": "\\t",
    "\n": "\\n",
    "\f": "\\f",
    "\r": "\\r",
}


def _toml_string(text: str) -> str:
    out = []
    for char in text:
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def _toml_key(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else _toml_string(key)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):  # before int: a bool is an int
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)  # "0.1", "1e-05", "300.0": all TOML floats
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"a test config cannot hold {value!r} ({type(value).__name__})")


def toml_text(data: ConfigData) -> str:
    """``data`` as TOML text; :mod:`tomllib` reads it back as ``data`` (checked here)."""
    lines: list[str] = []
    for section, values in data.items():
        if not isinstance(values, Mapping):
            raise TypeError(f"[{section}] must be a table of keys, not {values!r}")
        lines.append(f"[{_toml_key(section)}]")
        lines += [f"{_toml_key(key)} = {_toml_value(value)}" for key, value in values.items()]
    text = "\n".join(lines) + "\n"
    expected = json.loads(json.dumps(data))  # tuples become lists, as TOML reads them
    read = tomllib.loads(text)
    assert read == expected or _has_nan(data), (text, data)  # NaN is not equal to itself
    return text


def _has_nan(value: Any) -> bool:
    if isinstance(value, float):
        return math.isnan(value)
    if isinstance(value, Mapping):
        return any(_has_nan(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(_has_nan(v) for v in value)
    return False


def write_config(path: Path, data: ConfigData) -> Path:
    """Write ``data`` to ``path`` as a TOML config and return ``path``: the one way the tests
    write a config (tests of broken TOML write their text themselves)."""
    path.write_text(toml_text(data))
    return path


def merged(base: ConfigData, extra: ConfigData | None = None) -> dict[str, dict[str, Any]]:
    """``base`` with each section of ``extra`` laid over it, key by key."""
    data = {section: dict(values) for section, values in base.items()}
    for section, values in (extra or {}).items():
        data.setdefault(section, {}).update(values)
    return data


# -- the daemon as a process -----------------------------------------------------------------

DAEMON = """
import sys
from callguard.daemon import app

config, ring_gap_s, grooming_minutes = sys.argv[1], float(sys.argv[2]), sys.argv[3]


class Daemon(app.Daemon):
    # `callguard run`, its waits matched to the sped-up line: the constructor's own seams
    def __init__(self, *args, **kw):
        kw.setdefault("ring_gap_s", ring_gap_s)
        super().__init__(*args, **kw)
        if grooming_minutes and self.machine.grooming_minutes is not None:
            self.machine.grooming_minutes = float(grooming_minutes)
        print(
            f"test timings: ring gap {self.ring_gap_s:g} s, "
            f"grooming alert after {self.machine.grooming_minutes} min",
            file=sys.stderr,
            flush=True,
        )


app.Daemon = Daemon  # before the CLI is imported: `run` builds this one
from callguard.cli import main

raise SystemExit(main(["--config", config, "run"]))
"""


def callguard_cli(config: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    """`callguard --config CONFIG ARGV...` as a subprocess, its output captured."""
    return subprocess.run(
        [sys.executable, "-m", "callguard", "--config", str(config), *argv],
        capture_output=True,
        text=True,
        timeout=60,
    )


def terminated(proc: subprocess.Popen[str] | None) -> int | None:
    """SIGTERM ``proc`` if it still runs, and its exit code (None for no process)."""
    if proc is None:
        return None
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    return proc.wait(30)


class DaemonUnit:
    """A unit under test: `callguard run` as a subprocess on a simulated modem, and the CLI
    pointed at the same config. ``extra`` is config sections laid over [modem] and [storage].

    The simulated line runs at ``scale`` times real time, so the daemon's ring gap (how long
    after the last RING a ringing call is over) is scaled with it, as ``callguard demo`` does.
    ``grooming_minutes`` sets the grooming threshold below what the config allows (0.1 min), for
    a test that cannot wait six seconds; the config file still says ``grooming.minutes``.
    """

    def __init__(
        self,
        tmp: Path,
        extra: ConfigData | None = None,
        *,
        identity: str = "conexant",
        scale: float = 0.5,
        grooming_minutes: float | None = None,
    ) -> None:
        self.tmp = tmp
        self.link = str(tmp / "modem")
        self.sim = SimModem(identity=identity, link_path=self.link, time_scale=scale)
        self.ring_gap_s = Timing().ring_gap_s * scale
        self.grooming_minutes = grooming_minutes
        self.data = merged(
            {"modem": {"port": self.link}, "storage": {"dir": str(tmp / "state")}}, extra
        )
        self.config = write_config(tmp / "callguard.toml", self.data)
        self.store = Store(tmp / "state")
        self.proc: subprocess.Popen[str] | None = None
        self._log: IO[str] | None = None

    def cli(self, *argv: str) -> subprocess.CompletedProcess[str]:
        return callguard_cli(self.config, *argv)

    def start(self) -> DaemonUnit:
        self.sim.start()
        self._log = open(self.tmp / "daemon.log", "w")  # noqa: SIM115 (closed in stop)
        grooming = "" if self.grooming_minutes is None else repr(self.grooming_minutes)
        self.proc = subprocess.Popen(
            [sys.executable, "-c", DAEMON, str(self.config), repr(self.ring_gap_s), grooming],
            stdout=subprocess.DEVNULL,
            stderr=self._log,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        wait_for(self._connected, 20, "the daemon to connect")
        assert self.status()["modem"] == "connected"
        assert "test timings: " in self.log_text(), self.log_text()  # the seam took
        return self

    def _connected(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"the daemon exited {self.proc.returncode}: {self.log_text()}")
        status = self.store.read_status() if self.store.status_path.exists() else None
        mine = bool(status and self.proc is not None and status.get("pid") == self.proc.pid)
        return mine and status is not None and status.get("modem") == "connected"

    def stop(self) -> int | None:
        """SIGTERM the daemon (if still running) and stop the modem; the daemon's exit code."""
        code = terminated(self.proc)
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
        """Place ``call``; the sim's record and the call as ``callguard log --json`` shows it."""
        before = len(self.store.calls())
        record = self.sim.place_call(call).wait(60)
        wait_for(lambda: len(self.store.calls()) > before, 30, "the call to be logged")
        logged = self.calls()[before:]
        assert logged, "the call is in the log file but `callguard log` does not show it"
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
with open(f"{out}/.partial", "w") as f:  # the time too; it comes last: the sign of a whole play
    f.write(repr(stamp))
os.replace(f"{out}/.partial", f"{out}/played-{n}.time")
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


# -- the daemon in-process -------------------------------------------------------------------


class Running:
    """The daemon in-process (a thread) on a simulated modem, with an observer; ``daemon_kw``
    reaches the Daemon's constructor (clocks, a notifier, a transport factory).

    Everything the daemon observes lands in ``seen``; :meth:`wait_seen` waits for it there."""

    SCALE = 0.25

    def __init__(self, tmp: Path, extra: ConfigData | None = None, **daemon_kw: Any) -> None:
        self.daemon_kw = daemon_kw
        self.link = str(tmp / "modem")
        self.config_path = tmp / "callguard.toml"
        data = merged(
            {
                "modem": {"port": self.link},
                "storage": {"dir": str(tmp / "state")},
                "warning": {"room_command": ""},
            },
            extra,
        )
        self.config: Config = from_dict(data)
        self.write_config(data)
        self.store = Store(self.config.storage.dir)
        self.seen: list[Observed] = []
        self._seen_changed = threading.Condition()
        self.sim = SimModem(identity="conexant", link_path=self.link, time_scale=self.SCALE)

    def write_config(self, data: ConfigData) -> None:
        write_config(self.config_path, data)

    def _observe(self, observed: Observed) -> None:
        with self._seen_changed:
            self.seen.append(observed)
            self._seen_changed.notify_all()

    def wait_seen(
        self,
        kind: str,
        timeout_s: float = 5.0,
        *,
        since: int = 0,
        where: Callable[[Observed], bool] = lambda o: True,
    ) -> Observed:
        """The first observation of ``kind`` (from ``seen[since:]``) that ``where`` accepts;
        waits for it, and fails at the deadline."""
        deadline = time.monotonic() + timeout_s
        with self._seen_changed:
            while True:
                for observed in self.seen[since:]:
                    if observed.kind == kind and where(observed):
                        return observed
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out after {timeout_s} s waiting for {kind!r}")
                self._seen_changed.wait(left)

    def __enter__(self) -> Running:
        self.sim.start()
        self.daemon = Daemon(
            self.config,
            config_path=str(self.config_path),
            observer=self._observe,
            ring_gap_s=Timing().ring_gap_s * self.SCALE,
            **self.daemon_kw,
        )
        self.thread = threading.Thread(target=self.daemon.run, kwargs={"install_signals": False})
        self.thread.start()
        self.wait_seen("modem", 10, where=lambda o: o.detail.connected)
        assert self.daemon.status()["modem"] == "connected"
        return self

    def __exit__(self, *exc: object) -> None:
        self.daemon.stop()
        self.thread.join(20)
        self.sim.stop()
        assert not self.thread.is_alive()

    def call(self, call: Call) -> tuple[Any, dict[str, Any]]:
        """Place ``call``; the sim's record and the call as the log file has it."""
        before = len(self.store.calls())
        mark = len(self.seen)
        record = self.sim.place_call(call).wait(30)
        self.wait_seen("logged", 15, since=mark)
        # the writer thread puts it in the file a moment later
        calls = wait_for(lambda: self.store.calls()[before:], 5, "the call in the log file")
        return record, calls[-1]


class LinkProcess:
    """`callguard link` as a subprocess on the unit's config."""

    def __init__(self, unit: DaemonUnit) -> None:
        self.unit = unit
        self.proc: subprocess.Popen[str] | None = None
        self._log: IO[str] | None = None
        self.starts = 0

    def start(self) -> LinkProcess:
        self.starts += 1
        self._log = open(self.unit.tmp / f"link-{self.starts}.log", "w")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "callguard", "--config", str(self.unit.config), "link"],
            stdout=subprocess.DEVNULL,
            stderr=self._log,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        wait_for(lambda: "callguard link:" in self.log_text(), 20, "the link to start")
        return self

    def log_text(self) -> str:
        return "".join(
            (self.unit.tmp / f"link-{n}.log").read_text() for n in range(1, self.starts + 1)
        )

    def stop(self) -> int | None:
        code = terminated(self.proc)
        self.proc = None
        if self._log is not None:
            self._log.close()
        return code

    def alerts(self) -> list[dict[str, Any]]:
        result = self.unit.cli("alerts", "list", "--json")
        assert result.returncode == 0, result.stderr
        return list(json.loads(result.stdout))


def run_cli(cfg: Path, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """``callguard --config cfg argv...`` in-process: its exit code, stdout and stderr."""
    capsys.readouterr()
    try:
        code = main(["--config", str(cfg), *argv])
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


def live(**kw: object) -> Live:
    """What the daemon tells the status board about the line: idle, nothing going on;
    ``kw`` change it."""
    values: dict[str, object] = {
        "line": LineState.IDLE,
        "off_hook": False,
        "on_hook_failures": 0,
        "current_call": None,
        "grooming_alert": False,
        "indicators": {},
        "line_sense": {},
        "lists": {},
        "unlogged_calls": 0,
    }
    values.update(kw)
    return Live(**values)  # type: ignore[arg-type]


@dataclass
class ScriptedStatus:
    connected: bool = True


ScriptItem = float | str | Exception | Callable[[], float]
"""What a :class:`ScriptedTransport` answers one command with: volts, a line of text,
``"ERROR"``, an exception to raise, or a function giving volts (something happening while the
command is in flight)."""


class ScriptedTransport:
    """What the line-sense sources use of ModemTransport (no thread, no modem): replies come
    from ``script``, one an ``AT-TRV``; RING and caller ID come from :meth:`hear`."""

    def __init__(self, *script: ScriptItem, profile: str = "conexant") -> None:
        self.script = list(script)
        self.sent: list[str] = []
        self.timeouts: list[float | None] = []
        self.status = ScriptedStatus()
        self.profile = profiles.PROFILES[profile]
        self.command_timeout_s = 0.5
        self.listeners: list[Callable[[object], None]] = []

    def add_listener(self, listener: Callable[[object], None]) -> None:
        self.listeners.append(listener)

    def remove_listener(self, listener: Callable[[object], None]) -> None:
        if listener in self.listeners:
            self.listeners.remove(listener)

    def hear(self, event: object) -> None:
        """As the reader thread passes on what the modem said."""
        for listener in list(self.listeners):
            listener(event)

    def command(self, command: str, timeout_s: float | None = None) -> Reply:
        self.sent.append(command)
        self.timeouts.append(timeout_s)
        item = self.script.pop(0)
        if isinstance(item, Exception):
            raise item
        if callable(item):
            item = item()
        if item == "ERROR":
            return Reply(command, final=Error("ERROR"))
        if isinstance(item, str):
            return Reply(command, [Info(command, item)], Ok())
        return Reply(command, [LineVoltage(item)], Ok())
