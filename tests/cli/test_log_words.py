"""The plain call log as a family member reads it (issue 14, item 4): which call lit the alert
light, and how long each answered call lasted, in minutes and seconds."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from helpers import SetClock

from callguard.cli import main
from callguard.store.lists import Store
from callguard.texts import duration_words

BST = dt.timezone(dt.timedelta(hours=1))


@pytest.mark.parametrize(
    ("seconds", "words"),
    [
        (25, "25 s"),
        (24.6, "25 s"),
        (60, "1 min"),
        (245, "4 min 5 s"),
        (3720, "1 h 2 min"),
        (0, "0 s"),
        (None, ""),
        (float("nan"), ""),
        (-3, ""),
    ],
)
def test_durations_in_words(seconds: float | None, words: str) -> None:
    assert duration_words(seconds) == words


def test_the_log_marks_the_alerting_call_and_gives_seconds(
    cfg: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = Store(cfg.parent / "state")
    base = {"verdict": "warned", "reason": "Warned: a number on no list.", "answered": True}
    store.append_call(
        {
            **base,
            "call_id": 1,
            "started": "2026-06-10T10:00:00+01:00",
            "number": "+441632960001",
            "display": "01632 960001",
            "duration_s": 25.0,
            "grooming_alert": False,
        }
    )
    store.append_call(
        {
            **base,
            "call_id": 2,
            "started": "2026-06-10T11:00:00+01:00",
            "number": "+441632960002",
            "display": "01632 960002",
            "duration_s": 1265.0,
            "grooming_alert": True,
        }
    )
    store.append_call(
        {
            **base,
            "call_id": 3,
            "started": "2026-06-10T12:00:00+01:00",
            "number": "+441632960003",
            "display": "01632 960003",
            "duration_s": 7.0,
            "end_seen": False,
        }
    )
    assert main(["--config", str(cfg), "log"]) == 0
    first, second, third = capsys.readouterr().out.splitlines()
    assert first.endswith("answered, 25 s") and "alert" not in first
    assert "answered, 21 min 5 s" in second and second.endswith("lit the grooming alert")
    assert third.endswith("answered, at most 7 s (its end could not be seen)")


def test_status_names_every_alerting_call_since_the_last_ack(
    cfg: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = Store(cfg.parent / "state")
    clock = SetClock(dt.datetime(2026, 6, 10, 14, 20, tzinfo=BST))
    store.state.clock = clock
    first = {
        "call_id": 7,
        "number": "+441632960001",
        "display": "01632 960001",
        "started": "2026-06-10T14:02:00+01:00",
        "duration_s": None,
    }
    store.raise_alert(first)
    store.raise_alert(first)  # raised again for the same call (a restart): listed once
    clock.now = dt.datetime(2026, 6, 10, 16, 0, tzinfo=BST)
    store.raise_alert(
        {
            "call_id": 9,
            "number": None,
            "display": "withheld",
            "started": "2026-06-10T15:30:00+01:00",
            "duration_s": 1805.0,
        }
    )
    assert main(["--config", str(cfg), "status", "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["grooming_alert"] is True
    assert status["grooming_alerts"] == [
        {
            "number": "+441632960001",
            "display": "01632 960001",
            "started": "2026-06-10T14:02:00+01:00",
            "duration_s": 1080.0,
        },
        {
            "number": None,
            "display": "withheld",
            "started": "2026-06-10T15:30:00+01:00",
            "duration_s": 1805.0,
        },
    ]
    assert main(["--config", str(cfg), "status"]) == 0
    out = capsys.readouterr().out
    assert "ON - 01632 960001 called on 2026-06-10 at 14:02, on the line 18 min" in out
    assert "and withheld called on 2026-06-10 at 15:30, on the line 30 min 5 s" in out
    assert main(["--config", str(cfg), "ack", "--by", "Sarah"]) == 0
    capsys.readouterr()
    assert main(["--config", str(cfg), "status", "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["grooming_alert"] is False and status["grooming_alerts"] == []
    store.raise_alert({**first, "call_id": 11})
    assert [c["call_id"] for c in store.read_alert()["calls"]] == [11]  # a fresh list


def test_status_json_has_the_wave_2_fields_before_the_daemon_ever_ran(
    cfg: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--config", str(cfg), "status", "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["caller_id_timing"] == "unknown"
    assert status["clock_synchronised"] in (True, False)
    assert status["grooming_alert"] is False and status["grooming_alerts"] == []
