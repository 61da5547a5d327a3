"""``callguard alerts list`` and ``alerts test``."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from helpers import run_cli
from receivers import HTTPReceiver, SMTPReceiver

from callguard.store.outbox import Outbox

pytest_plugins = ["receivers"]


def with_urls(cfg: Path, *urls: str) -> Path:
    cfg.write_text(cfg.read_text() + f"[alerts]\nurls = {json.dumps(list(urls))}\n")
    return cfg


def fill(state: Path) -> None:
    box = Outbox(state, clock=lambda: dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC))
    try:
        channels = [("aaaaaaaaaaaa", "json://127.0.0.1:8999/"), ("bbbbbbbbbbbb", "mailto://x")]
        first = box.add("modem:1", "modem-missing", "The modem is missing", "Unplugged?",
                        channels=channels, expires_after=dt.timedelta(hours=48))  # fmt: skip
        second = box.add("grooming:1", "grooming", "Grooming alert", "A long call",
                         channels=channels, expires_after=dt.timedelta(hours=48))  # fmt: skip
        assert first and second
        box.delivered(first.id, "aaaaaaaaaaaa")
        box.delivered(first.id, "bbbbbbbbbbbb")
        box.delivered(second.id, "aaaaaaaaaaaa")
        box.failed(second.id, "bbbbbbbbbbbb", "connection refused",
                   dt.datetime(2026, 3, 1, 9, 1, tzinfo=dt.UTC))  # fmt: skip
        box.add("summary:1", "weekly-summary", "This week", "3 calls", channels=[],
                expires_after=dt.timedelta(hours=48))  # fmt: skip
    finally:
        box.close()


def test_list_with_no_outbox_says_so(cfg: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(cfg, capsys, "alerts", "list") == (0, "No alerts yet.\n", "")
    code, out, _ = run_cli(cfg, capsys, "alerts", "list", "--json")
    assert (code, json.loads(out)) == (0, [])
    assert not (cfg.parent / "state").exists()


def test_list_shows_each_alert_and_where_it_got_to(
    cfg: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fill(cfg.parent / "state")
    code, out, _ = run_cli(cfg, capsys, "alerts", "list")
    assert code == 0
    assert "weekly-summary: This week [no-channels]" in out
    assert "no channels were in [alerts] urls" in out
    assert "grooming: Grooming alert [pending]" in out
    assert "retrying: 1 try failed" in out and "connection refused" in out
    assert "modem-missing: The modem is missing [delivered]" in out
    assert out.count("delivered 2026-03-01") == 3
    assert out.index("weekly-summary") < out.index("grooming") < out.index("modem-missing")


def test_list_json_has_every_field(cfg: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fill(cfg.parent / "state")
    code, out, _ = run_cli(cfg, capsys, "alerts", "list", "--json", "--limit", "2")
    assert code == 0
    alerts = json.loads(out)
    assert [a["kind"] for a in alerts] == ["weekly-summary", "grooming"]
    grooming = alerts[1]
    assert grooming["state"] == "pending" and grooming["key"] == "grooming:1"
    assert dt.datetime.fromisoformat(grooming["created"]).utcoffset() is not None
    assert grooming["deliveries"][1] == {
        "channel": "bbbbbbbbbbbb",
        "label": "mailto://x",
        "state": "pending",
        "attempts": 1,
        "next_try": grooming["deliveries"][1]["next_try"],
        "delivered": None,
        "last_error": "connection refused",
    }
    assert dt.datetime.fromisoformat(grooming["deliveries"][1]["next_try"]) == dt.datetime(
        2026, 3, 1, 9, 1, tzinfo=dt.UTC
    )


@pytest.mark.parametrize("limit", ["0", "-3", "ten"])
def test_a_bad_limit_exits_2_naming_it(
    cfg: Path, capsys: pytest.CaptureFixture[str], limit: str
) -> None:
    code, out, err = run_cli(cfg, capsys, "alerts", "list", "--limit", limit)
    assert code == 2 and out == ""
    assert repr(limit) in err and "whole number" in err


def test_test_with_no_channels_exits_2_naming_the_key(
    cfg: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli(cfg, capsys, "alerts", "test")
    assert code == 2
    assert "[alerts] urls" in err and "mailto://" in err


def test_test_sends_to_every_channel_and_exits_0(
    cfg: Path,
    capsys: pytest.CaptureFixture[str],
    http_receiver: HTTPReceiver,
    smtp_receiver: SMTPReceiver,
) -> None:
    with_urls(cfg, http_receiver.url, smtp_receiver.url)
    code, out, _ = run_cli(cfg, capsys, "alerts", "test")
    assert code == 0
    assert [line.rsplit(": ", 1)[1] for line in out.splitlines()] == ["ok", "ok"]
    assert len(http_receiver.messages) == 1 and len(smtp_receiver.messages) == 1
    assert not (cfg.parent / "state").exists()  # a test is not queued in the outbox


def test_test_exits_1_when_a_channel_fails(
    cfg: Path, capsys: pytest.CaptureFixture[str], http_receiver: HTTPReceiver
) -> None:
    with_urls(cfg, http_receiver.url, "json://user:hunter2@127.0.0.1:9/")
    http_receiver.fail()
    code, out, err = run_cli(cfg, capsys, "alerts", "test")
    assert code == 1
    lines = out.splitlines()
    assert len(lines) == 2 and all(": FAILED: " in line for line in lines)
    assert "500" in lines[0]
    assert "hunter2" not in out + err
    assert "2 of 2 channels failed" in err
