"""``line_voltage`` in the status (issue 16): its shape when nothing reads it, when the line is
live and when it is dead; systemd's status line; the plain ``callguard status`` sentence."""

from __future__ import annotations

import datetime as dt

from helpers import live

from callguard.cli.calls import _dead_line
from callguard.daemon.status import UNKNOWN_LINE_VOLTAGE, StatusBoard
from callguard.hardware.linesense import LineVoltage

T0 = dt.datetime(2026, 3, 2, 14, 2, 7, tzinfo=dt.UTC)


def board() -> StatusBoard:
    return StatusBoard(lambda: T0, "/dev/ttyACM0")


def test_unknown_when_nothing_reads_the_line_voltage() -> None:
    snap = board().snapshot("running", live())
    assert snap["line_voltage"] == {
        "volts": None,
        "dead": None,
        "since": None,
        "checked": None,
        "detail": "not read",
    }
    assert snap["line"] == "idle"
    assert UNKNOWN_LINE_VOLTAGE["dead"] is None


def test_a_dead_line_in_the_snapshot_and_systemds_status_line() -> None:
    dead = LineVoltage(0.04, True, T0, T0 + dt.timedelta(seconds=70), "dead").to_json()
    b = board()
    snap = b.snapshot("running", live(line_voltage=dead))
    assert snap["line_voltage"] == {
        "volts": 0.0,
        "dead": True,
        "since": "2026-03-02T14:02:07+00:00",
        "checked": "2026-03-02T14:03:17+00:00",
        "detail": "dead",
    }
    assert snap["line"] == "idle"  # the call's state, as before
    assert "THE PHONE LINE IS DEAD" in b.line_text(live(line_voltage=dead))
    alive = LineVoltage(48.2, False, None, T0, "48.2 V").to_json()
    assert "DEAD" not in b.line_text(live(line_voltage=alive))
    assert b.snapshot("running", live(line_voltage=alive))["line_voltage"]["volts"] == 48.2


def test_the_plain_status_sentence_only_for_a_running_daemon_with_a_dead_line() -> None:
    dead = LineVoltage(0.0, True, T0, T0, "dead").to_json()
    text = _dead_line({"daemon": "running", "line_voltage": dead})
    assert text is not None
    assert text.startswith("The phone line is dead: no voltage since 14:02, so no call can")
    assert "wall socket" in text and "router's phone port" in text and "Digital Voice" in text
    assert _dead_line({"daemon": "stopped", "line_voltage": dead}) is None
    assert _dead_line({"daemon": "running"}) is None  # an older daemon: no line_voltage
    unknown = LineVoltage().to_json()
    assert _dead_line({"daemon": "running", "line_voltage": unknown}) is None
