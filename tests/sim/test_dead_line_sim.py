"""The simulated line with no voltage (issue 16): the firmware's AT-TRV reads 0 V, no call can
be placed (clearly refused), the modem still answers, and the console and control socket can
kill the line and give it back."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from callguard.sim import Call, SimModem
from callguard.sim.console import CommandError, Console, LineDead, parse
from callguard.sim.control import ControlServer, send
from callguard.sim.firmware import CONEXANT, ON_HOOK_VOLTS, Firmware
from callguard.sim.modem import SimModemError
from callguard.sim.script import Scenario

STILL = 100.0  # nothing on the line moves by itself during a test


def test_firmware_dead_line_reads_zero_volts_and_survives_a_power_cycle() -> None:
    fw = Firmware(CONEXANT)
    fw.receive(b"ATE0\r", 0.0)
    assert fw.receive(b"AT-TRV\r", 0.0) == b"\r\n48.20\r\n\r\nOK\r\n"
    fw.line_dead = True
    assert fw.receive(b"AT-TRV\r", 0.1) == b"\r\n0.00\r\n\r\nOK\r\n"
    fw.extension_off_hook = True  # a phone lifted on a dead line: still nothing
    assert fw.line_volts() == 0.0
    fw.power_off(1.0)
    fw.power_on(2.0)  # the modem is replugged: the line is the line
    assert fw.line_dead and fw.line_volts() == 0.0
    fw.line_dead = False
    fw.extension_off_hook = False
    assert fw.line_volts() == ON_HOOK_VOLTS


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[SimModem]:
    with SimModem("conexant", link_path=tmp_path / "modem", time_scale=STILL) as modem:
        yield modem


def test_a_call_cannot_be_placed_on_a_dead_line(sim: SimModem) -> None:
    sim.set_line_dead(True)
    assert sim.line_dead and sim.line_volts == 0.0
    with pytest.raises(SimModemError, match=r"the line is dead .*set_line_dead\(False\)"):
        sim.place_call(Call(number="01632960123"))
    assert sim.calls == []
    (record,) = sim.play(Scenario("dead", ((0.0, Call(number="01632960123")),)), timeout_s=5)
    assert record.outcome == "aborted" and record.cid_sent_at is None
    sim.set_line_dead(False)
    assert sim.line_volts == ON_HOOK_VOLTS
    handle = sim.place_call(Call(number="01632960123", rings=1), wait_for_line=True)
    assert handle.record.outcome == "ringing"
    assert sim.hang_up() == "caller-gave-up"


@pytest.mark.parametrize(
    ("line", "command"),
    [
        ("line dead", LineDead(True)),
        ("LINE Live", LineDead(False)),
        ("line dead # cut", LineDead(True)),
    ],
)
def test_parse_line_dead_and_live(line: str, command: LineDead) -> None:
    assert parse(line) == command


@pytest.mark.parametrize("line", ["line", "line off", "line dead now"])
def test_parse_line_needs_dead_or_live(line: str) -> None:
    with pytest.raises(CommandError, match="line takes 'dead' or 'live'"):
        parse(line)


def test_console_kills_the_line_and_gives_it_back(sim: SimModem) -> None:
    console = Console(sim)

    def run(line: str) -> str:
        reply = console.execute(line)
        assert reply is not None
        return reply.line

    assert run("line dead") == "ok: the line is dead: 0.0 V, no call can come in"
    assert run("line dead") == "error: the line is already dead (line live gives it back)"
    assert run("call 01632 960123").startswith("error: the line is dead (no line voltage)")
    status = json.loads(run("status json").removeprefix("ok: "))
    assert status["line_dead"] is True and status["line_volts"] == 0.0
    assert "line 0.0 V (dead: no call can come in)" in run("status")
    assert run("line live") == "ok: the line is live again: 48.2 V"
    assert run("line live") == "error: the line is already live"
    assert "line dead / line live" in run("help")


def test_control_socket_kills_the_line(sim: SimModem, tmp_path: Path) -> None:
    console = Console(sim)
    path = tmp_path / "modem.ctl"
    with ControlServer(path, console.execute):
        replies = send(path, ["line dead", "status json", "line live"])
    assert replies[0] == "ok: the line is dead: 0.0 V, no call can come in"
    assert json.loads(replies[1].removeprefix("ok: "))["line_dead"] is True
    assert replies[2] == "ok: the line is live again: 48.2 V"
    assert not sim.line_dead
