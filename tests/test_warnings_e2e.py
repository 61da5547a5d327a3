"""End to end: spoken warnings in the room and down the line, `callguard run` on the simulator."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import wait_for

from callguard import wavconv
from callguard.sim import Call, SimModem

pytestmark = pytest.mark.e2e

# The room "speaker": records when it was asked to play, and what.
PLAYER = """
import shutil, sys, time
wav, out = sys.argv[1], sys.argv[2]
stamp = time.monotonic()  # CLOCK_MONOTONIC: the same clock as the simulator's records
n = len([f for f in __import__("os").listdir(out) if f.endswith(".time")])
shutil.copy(wav, f"{out}/.partial")  # then renamed: the test never reads half a file
__import__("os").replace(f"{out}/.partial", f"{out}/played-{n}.wav")
open(f"{out}/played-{n}.time", "w").write(repr(stamp))
"""

SHORT_WARNING = "This is CallGuard. Police and banks never ask for your PIN."


class Unit:
    def __init__(self, tmp: Path, extra: str = "") -> None:
        self.tmp = tmp
        self.played = tmp / "played"
        self.played.mkdir()
        player = tmp / "player.py"
        player.write_text(PLAYER)
        self.sim = SimModem(identity="conexant", link_path=str(tmp / "modem"), time_scale=0.5)
        self.config = tmp / "callguard.toml"
        self.config.write_text(
            f'[modem]\nport = "{tmp / "modem"}"\n'
            f'[storage]\ndir = "{tmp / "state"}"\n'
            "[warning]\n"
            f'room_command = "{sys.executable} {player} {{wav}} {self.played}"\n'
            f'text = "{SHORT_WARNING}"\n'
            "say_place = false\n" + extra
        )

    def cli(self, *argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "callguard", "--config", str(self.config), *argv],
            capture_output=True,
            text=True,
            timeout=60,
        )

    def __enter__(self) -> Unit:
        self.sim.start()
        self.log = open(self.tmp / "daemon.log", "w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "callguard", "--config", str(self.config), "run"],
            stdout=subprocess.DEVNULL,
            stderr=self.log,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        wait_for(lambda: self.status().get("modem") == "connected", 20, "the daemon")
        time.sleep(1.0)  # let the prompts warm up (rendered once, then cached)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(30)
        self.sim.stop()
        self.log.close()

    def status(self) -> dict[str, Any]:
        out = self.cli("status", "--json")
        return json.loads(out.stdout) if out.returncode == 0 and out.stdout else {}

    def calls(self) -> list[dict[str, Any]]:
        return json.loads(self.cli("log", "--json").stdout)

    def plays(self) -> list[tuple[Path, float]]:
        return [
            (p, float(p.with_suffix(".time").read_text()))
            for p in sorted(self.played.glob("played-*.wav"))
            if p.with_suffix(".time").exists()
        ]


@pytest.fixture
def unit(tmp_path: Path) -> Iterator[Unit]:
    with Unit(tmp_path) as u:
        yield u


def test_unknown_call_plays_a_warning_in_the_room_within_1_s(unit: Unit) -> None:
    handle = unit.sim.place_call(Call(number="P", rings=2))
    played = wait_for(unit.plays, 10, "the room command to run")
    record = handle.wait(30)
    path, when = played[0]
    assert record.cid_sent_at is not None
    assert 0 <= when - record.cid_sent_at < 1.0, when - record.cid_sent_at
    audio = wavconv.read_wav(path)
    assert audio.seconds > 2.0 and wavconv.rms(audio) > 0.01  # speech, not silence


def test_allowed_call_plays_nothing(unit: Unit) -> None:
    assert unit.cli("allow", "add", "01707 354000").returncode == 0
    before = len(unit.calls())
    unit.sim.place_call(Call(number="01707354000", rings=2)).wait(30)
    wait_for(lambda: len(unit.calls()) > before, 20, "the call in the log")
    assert unit.plays() == []


def test_answered_unknown_call_hears_the_warning_on_the_line(tmp_path: Path) -> None:
    extra = '[line_sense]\nsource = "modem"\n'
    with Unit(tmp_path, extra.replace("[line_sense]", "line = true\n[line_sense]")) as u:
        handle = u.sim.place_call(Call(number="02079460123", answer_after_rings=1, talk_s=24))
        session = wait_for(lambda: u.sim.voice_sessions, 20, "the modem to speak on the line")[0]
        record = handle.wait(60)
        assert session.nbytes >= 2 * 8000
        rate = session.nbytes / (session.ended - session.started)
        assert 7000 < rate < 9000, rate  # paced at real time, not dumped
        # the modem left the line; the resident's call went on to its natural end
        assert record.outcome == "answered" and record.ended_at is not None
        assert record.ended_at > session.ended + 1.0
        hooks_after = [on for t, on in u.sim.hook_events if t >= session.ended]
        assert hooks_after and hooks_after[-1] is False
        logged = wait_for(u.calls, 20, "the call in the log")[-1]
        assert logged["answered"] is True and "warning spoken down the line" in logged["notes"]
