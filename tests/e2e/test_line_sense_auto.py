"""``line_sense.source = "auto"``, the default, end to end: the real daemon on the simulated
Conexant senses the line with AT-TRV (asked once while the line is quiet, then polled only
during calls) and the grooming light works; on the simulated USRobotics 5637, which has no
AT-TRV, it says in its log and its status that nothing senses the line and how to fix it, and
``callguard selftest`` fails with that fix instead of "All checks passed"."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest
from helpers import DaemonUnit, wait_for

from callguard.sim import Call, SimModem

pytestmark = pytest.mark.e2e

QUIET = {"warning": {"room_command": ""}}  # and no [line_sense]: the default, "auto"


def trv_times(sim: SimModem) -> list[float]:
    return [t for t, c in sim.commands if c.strip().upper() == "AT-TRV"]


def test_auto_on_the_simulated_conexant_senses_the_line_with_at_trv(tmp_path: Path) -> None:
    unit = DaemonUnit(
        tmp_path,
        {**QUIET, "grooming": {"minutes": 0.1}},
        identity="conexant",
        grooming_minutes=0.01,  # 0.6 s, through the daemon's seam (see test_grooming.py)
    )
    with unit:
        chose = 'line sensing (line_sense.source = "auto") chose modem: the modem (Conexant'
        wait_for(lambda: chose in unit.log_text(), 10, "the daemon to choose")
        assert "reports the line voltage (AT-TRV: 4" in unit.log_text()
        asked = trv_times(unit.sim)
        assert len(asked) == 1  # the one question, before any call
        record, logged = unit.call(Call(number="02079460123", answer_after_rings=1, talk_s=4))
        assert record.answered_at is not None and record.ended_at is not None
        assert logged["answered"] is True and logged["grooming_alert"] is True
        truth = record.ended_at - record.answered_at
        assert abs(logged["duration_s"] - truth) < 2.0, (logged["duration_s"], truth)
        during = [t for t in trv_times(unit.sim) if record.started_at <= t <= record.ended_at]
        assert len(during) >= 2  # polled while the call was on
        assert record.cid_sent_at is not None and asked[0] < record.cid_sent_at
        status = unit.status()
        assert status["line_sense"]["source"] == "modem"
        assert status["line_sense"]["detail"].startswith(
            "line voltage from the modem (AT-TRV), off-hook below 20 V (auto: the modem ("
        )
        assert status["grooming_alert"] is True
    assert unit.proc is not None and unit.proc.returncode == 0


def test_auto_on_the_simulated_usr_is_none_and_selftest_fails_with_the_fix(
    tmp_path: Path,
) -> None:
    unit = DaemonUnit(tmp_path, QUIET, identity="usr")
    with unit:
        off = 'line sensing is off (line_sense.source = "auto"): the USRobotics 5637 cannot '
        wait_for(lambda: off in unit.log_text(), 10, "the daemon to choose")
        log_text = unit.log_text()
        assert "the grooming light cannot work; fit the line-sense module on GPIO 17" in log_text
        assert "WARNING" in next(line for line in log_text.splitlines() if off in line)
        record, logged = unit.call(Call(number="02079460123", answer_after_rings=1, talk_s=2))
        assert record.answered_at is not None  # answered, but nothing could see it
        assert logged["grooming_alert"] is False and logged["duration_s"] is None
        assert trv_times(unit.sim) == []  # a USR is never asked: its profile has no AT-TRV
        status = unit.status()
        assert status["line_sense"]["source"] == "none"
        detail = status["line_sense"]["detail"]
        assert "(auto: the USRobotics 5637 cannot report the line voltage (no AT-TRV)" in detail
        assert "to fix: fit the line-sense module on GPIO 17" in detail
        # The volunteer's next step in the README: stop the daemon, run the self-test.
        assert unit.proc is not None
        unit.proc.send_signal(signal.SIGTERM)
        assert unit.proc.wait(30) == 0
        result = unit.cli("selftest", "--json", "--no-sound", "--button-timeout", "0")
    assert result.returncode == 1, result.stdout + result.stderr
    checks = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    assert checks["modem"]["status"] == "pass"
    sensing = checks["line sensing"]
    assert sensing["status"] == "fail"
    assert sensing["detail"].startswith("auto: the USRobotics 5637 cannot report the line")
    assert sensing["fix"].startswith(
        "this modem cannot sense the line: fit the line-sense module on GPIO 17"
    )
    assert "see Wiring in the README" in sensing["fix"]
