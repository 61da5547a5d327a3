"""A dead line (issue 16): the modem still plugged in, but no voltage on the line (a cut cable,
a Digital Voice switch-over). The real daemon (in-process) on the simulated line, reading the
line voltage every few tenths of a second through its ``line_check_s`` seam: the status says
the line is dead within a couple of checks and live again when the voltage is back; the
checks never ask during a call and never cost a blocked caller its seizure before the first
ring."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from helpers import Running, wait_for

from callguard.cli import main
from callguard.core.lists import target_for
from callguard.sim import Call, SimModem
from callguard.sim.modem import SimModemError
from callguard.store.lists import Store

pytestmark = pytest.mark.e2e

SCAM = "01134960000"
CHECK_S = 0.3


def trv_times(sim: SimModem) -> list[float]:
    return [t for t, c in sim.commands if c.strip().upper() == "AT-TRV"]


def line_voltage(r: Running) -> dict[str, Any] | None:
    """``line_voltage`` as the written status (what ``callguard link`` reads) has it."""
    status = r.store.read_status() or {}
    voltage = status.get("line_voltage")
    return voltage if isinstance(voltage, dict) else None


def test_the_line_killed_is_dead_within_a_couple_of_checks_and_live_when_it_is_back(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with Running(tmp_path, line_check_s=CHECK_S) as r:  # source "auto": its answer comes first
        live = wait_for(
            lambda: (v := line_voltage(r)) and v["dead"] is False and v, 10, "a live line"
        )
        assert live["volts"] == pytest.approx(48.2, abs=0.1)
        assert live["since"] is None and live["checked"] is not None
        assert set(live) >= {"volts", "dead", "since", "checked"}
        assert r.store.read_status()["line"] == "idle"  # "line" is still the call's state

        r.sim.set_line_dead(True)
        killed = time.monotonic()
        dead = wait_for(lambda: (v := line_voltage(r)) and v["dead"] and v, 10, "a dead line")
        assert time.monotonic() - killed < 4 * CHECK_S + 2.0  # two checks, and the write
        assert dead["volts"] == pytest.approx(0.0) and dead["since"] is not None
        with pytest.raises(SimModemError, match="the line is dead"):
            r.sim.place_call(Call(number="02079460123"))

        capsys.readouterr()
        assert main(["--config", str(r.config_path), "status", "--json"]) == 0
        shown = json.loads(capsys.readouterr().out)
        assert shown["line_voltage"]["dead"] is True
        assert shown["line_voltage"]["since"] == dead["since"]
        assert main(["--config", str(r.config_path), "status"]) == 0
        text = capsys.readouterr().out
        assert f"The phone line is dead: no voltage since {dead['since'][11:16]}" in text
        assert "router's phone port" in text and "Digital Voice" in text
        assert "THE PHONE LINE IS DEAD" in r.daemon._status_line()

        r.sim.set_line_dead(False)
        back = wait_for(lambda: (v := line_voltage(r)) and v["dead"] is False and v, 10, "back")
        assert back["since"] is None and back["volts"] == pytest.approx(48.2, abs=0.1)
        assert main(["--config", str(r.config_path), "status"]) == 0
        assert "The phone line is dead" not in capsys.readouterr().out
        record = r.sim.place_call(Call(number="02079460123", rings=1)).wait(30)
        assert record.outcome == "unanswered"  # calls come in again


def test_blocked_callers_arriving_while_checks_run_are_seized_before_the_first_ring_and_no_check_is_made_during_a_call(  # noqa: E501
    tmp_path: Path,
) -> None:
    Store(tmp_path / "state").add("block", target_for(SCAM, "GB"), name="scam")
    # source "none": the checks are then the only AT-TRV the daemon sends (the modem's line
    # sensing polls AT-TRV during calls, by design), and they still run: the modem answers it
    extra = {"line_sense": {"source": "none"}, "block": {"hold_s": 0.3}}
    with Running(tmp_path, extra, line_check_s=0.1) as r:
        records = []
        for number, rings in ((SCAM, 3), ("02079460123", 1), (SCAM, 3), (SCAM, 3)):
            # a check has just been made: the checks are running when the caller arrives
            before = len(trv_times(r.sim))
            wait_for(lambda b=before: len(trv_times(r.sim)) > b, 10, "the next check")
            record = r.sim.place_call(Call(number=number, rings=rings)).wait(30)
            records.append(record)
            if number == SCAM:
                assert record.outcome == "seized" and record.rings == []
            wait_for(lambda: r.daemon.machine.current is None, 10, "the call to end")
        asked = trv_times(r.sim)
        for record in records:
            assert record.cid_sent_at is not None and record.finished_at is not None
            # one AT-TRV may be in flight as a caller ID lands (the module docstring's race: the
            # check began before the daemon heard it, which on a loaded machine can be tens of
            # ms after the modem sent it); none begins once it is heard, until the call is over,
            # so any AT-TRV in the call reached the modem before the seizure or the first ring
            during = [t for t in asked if record.cid_sent_at <= t <= record.finished_at]
            acted = record.seized_at if record.seized_at is not None else record.rings[0]
            assert len(during) <= 1 and all(t < acted for t in during), (during, record)
        voltage = r.daemon.status()["line_voltage"]
        assert voltage["dead"] is False and voltage["volts"] == pytest.approx(48.2, abs=0.1)
