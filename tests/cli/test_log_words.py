"""The plain call log as a family member reads it (issue 14, item 4): which call lit the alert
light, and how long each answered call lasted, in minutes and seconds."""

from __future__ import annotations

from pathlib import Path

import pytest

from callguard.cli import main
from callguard.store.lists import Store
from callguard.texts import duration_words


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
    assert main(["--config", str(cfg), "log"]) == 0
    first, second = capsys.readouterr().out.splitlines()
    assert first.endswith("answered, 25 s") and "alert" not in first
    assert "answered, 21 min 5 s" in second and second.endswith("lit the grooming alert")
