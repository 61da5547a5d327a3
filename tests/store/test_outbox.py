"""The alert outbox: queued once, durable, retried on a schedule, expired, shared between
processes, and a damaged file kept aside."""

from __future__ import annotations

import datetime as dt
import logging
import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from callguard.store.files import StoreError
from callguard.store.outbox import OUTBOX_FILE, Alert, Outbox

UTC = dt.UTC
START = dt.datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
CHANNELS = [("aaaaaaaaaaaa", "json://host/"), ("bbbbbbbbbbbb", "mailto://x@example.org")]
DAY = dt.timedelta(hours=48)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **kwargs: float) -> None:
        self.now += dt.timedelta(**kwargs)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def outbox(tmp_path: Path, clock: Clock) -> Outbox:
    box = Outbox(tmp_path, clock=clock)
    yield box  # type: ignore[misc]
    box.close()


def add(box: Outbox, key: str = "grooming:1", **kwargs: object) -> Alert:
    alert = box.add(
        key,
        str(kwargs.get("kind", "grooming")),
        "Grooming alert",
        "A long call from an unknown number",
        channels=kwargs.get("channels", CHANNELS),  # type: ignore[arg-type]
        expires_after=kwargs.get("expires_after", DAY),  # type: ignore[arg-type]
    )
    assert alert is not None
    return alert


def at(iso: str | None) -> dt.datetime:
    assert iso is not None
    return dt.datetime.fromisoformat(iso)


def test_an_alert_is_queued_once_per_key_with_a_pending_delivery_per_channel(
    outbox: Outbox,
) -> None:
    alert = add(outbox)
    assert alert.state == "pending"
    assert (alert.kind, alert.title) == ("grooming", "Grooming alert")
    assert at(alert.created) == START and at(alert.expires) == START + DAY
    assert [(d.channel, d.label, d.state, d.attempts) for d in alert.deliveries] == [
        (c, label, "pending", 0) for c, label in CHANNELS
    ]
    assert outbox.add("grooming:1", "grooming", "again", "again", channels=CHANNELS,
                      expires_after=DAY) is None  # fmt: skip
    assert [a.title for a in outbox.alerts()] == ["Grooming alert"]


def test_an_alert_raised_with_no_channels_says_so(outbox: Outbox) -> None:
    alert = add(outbox, channels=[])
    assert alert.state == "no-channels" and alert.deliveries == ()
    assert outbox.due() == []


def test_a_new_alert_is_due_at_once_and_survives_a_reopen(tmp_path: Path, clock: Clock) -> None:
    box = Outbox(tmp_path, clock=clock)
    alert = add(box)
    box.close()
    again = Outbox(tmp_path, clock=clock)
    try:
        due = again.due()
        assert [(a.id, d.channel) for a, d in due] == [(alert.id, c) for c, _ in CHANNELS]
        assert again.add("grooming:1", "grooming", "t", "b", channels=CHANNELS,
                         expires_after=DAY) is None  # fmt: skip
    finally:
        again.close()


def test_it_is_on_disk_before_add_returns(tmp_path: Path, clock: Clock) -> None:
    """Another connection sees the alert while the writer's is still open."""
    box = Outbox(tmp_path, clock=clock)
    try:
        add(box)
        conn = sqlite3.connect(tmp_path / OUTBOX_FILE)
        try:
            assert conn.execute("SELECT key FROM alerts").fetchall() == [("grooming:1",)]
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        finally:
            conn.close()
    finally:
        box.close()


def test_a_failed_delivery_waits_for_its_retry_time_and_counts_its_tries(
    outbox: Outbox, clock: Clock
) -> None:
    alert = add(outbox)
    first, second = CHANNELS[0][0], CHANNELS[1][0]
    outbox.failed(alert.id, first, "HTTP 500", clock() + dt.timedelta(seconds=30))
    outbox.delivered(alert.id, second)
    assert outbox.due() == []
    clock.advance(seconds=29)
    assert outbox.due() == []
    clock.advance(seconds=1)
    [(due_alert, delivery)] = outbox.due()
    assert (due_alert.id, delivery.channel, delivery.attempts) == (alert.id, first, 1)
    assert delivery.last_error == "HTTP 500"
    assert at(delivery.next_try) == START + dt.timedelta(seconds=30)
    [shown] = outbox.alerts()
    assert shown.state == "pending"
    done = {d.channel: d for d in shown.deliveries}[second]
    assert (done.state, at(done.delivered), done.next_try) == ("delivered", START, None)
    outbox.delivered(alert.id, first)
    assert outbox.due() == []
    assert outbox.alerts()[0].state == "delivered"


def test_retry_all_now_makes_every_pending_delivery_due(outbox: Outbox, clock: Clock) -> None:
    alert = add(outbox)
    for channel, _ in CHANNELS:
        outbox.failed(alert.id, channel, "down", clock() + dt.timedelta(hours=1))
    assert outbox.due() == []
    outbox.retry_all_now()
    assert len(outbox.due()) == 2


def test_an_alert_past_its_expiry_is_given_up(outbox: Outbox, clock: Clock) -> None:
    alert = add(outbox, expires_after=dt.timedelta(hours=1))
    outbox.failed(alert.id, CHANNELS[0][0], "connection refused", clock())
    outbox.delivered(alert.id, CHANNELS[1][0])
    clock.advance(hours=1)
    assert outbox.due() == []  # expired, even before expire() records it
    assert outbox.expire() == 1
    assert outbox.expire() == 0
    [shown] = outbox.alerts()
    assert shown.state == "expired"
    gave_up = shown.deliveries[0]
    assert gave_up.state == "expired" and gave_up.next_try is None
    assert gave_up.last_error is not None and "connection refused" in gave_up.last_error
    assert "expired" in gave_up.last_error
    assert shown.deliveries[1].state == "delivered"


def test_give_up_ends_one_channel_only(outbox: Outbox) -> None:
    alert = add(outbox)
    outbox.give_up(alert.id, CHANNELS[0][0], "no longer in [alerts] urls")
    [shown] = outbox.alerts()
    assert shown.state == "pending"  # the other channel is still to go
    assert shown.deliveries[0].last_error == "no longer in [alerts] urls"
    outbox.delivered(alert.id, CHANNELS[1][0])
    assert outbox.alerts()[0].state == "expired"


def test_alerts_are_newest_first_and_limited(outbox: Outbox, clock: Clock) -> None:
    for n in range(5):
        add(outbox, key=f"k{n}")
        clock.advance(minutes=1)
    assert [a.key for a in outbox.alerts()] == ["k4", "k3", "k2", "k1", "k0"]
    assert [a.key for a in outbox.alerts(limit=2)] == ["k4", "k3"]


def test_to_json_has_every_field(outbox: Outbox) -> None:
    data = add(outbox).to_json()
    assert set(data) == {
        "id", "key", "kind", "created", "title", "body", "expires", "state", "deliveries"
    }  # fmt: skip
    assert set(data["deliveries"][0]) == {
        "channel", "label", "state", "attempts", "next_try", "delivered", "last_error"
    }  # fmt: skip


def test_times_are_shown_with_the_local_offset(outbox: Outbox) -> None:
    created = at(add(outbox).created)
    assert created.utcoffset() == dt.datetime.now().astimezone().utcoffset()


def test_marks_are_kept_across_reopens(tmp_path: Path) -> None:
    box = Outbox(tmp_path)
    assert box.get_mark("calls") is None
    box.set_mark("calls", "41")
    box.set_mark("calls", "42")
    box.close()
    again = Outbox(tmp_path)
    assert again.get_mark("calls") == "42"
    again.close()


def test_reading_creates_nothing(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "state")
    assert box.alerts() == []
    assert not (tmp_path / "state").exists()


def test_the_file_is_0640(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        box = Outbox(tmp_path)
        add(box)
        box.close()
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / OUTBOX_FILE).stat().st_mode) == 0o640


@pytest.mark.parametrize(
    "content",
    [b"this is not a database at all, just text" * 200, b"SQLite format 3\x00" + b"\xff" * 5000],
)
def test_a_damaged_file_is_kept_aside_and_a_new_one_started(
    tmp_path: Path, clock: Clock, content: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / OUTBOX_FILE).write_bytes(content)
    reader = Outbox(tmp_path, clock=clock)
    with pytest.raises(StoreError, match="damaged"):
        reader.alerts()  # a reader never moves it
    assert (tmp_path / OUTBOX_FILE).read_bytes() == content
    recoveries = []
    box = Outbox(tmp_path, clock=clock, on_recovery=recoveries.append)
    with caplog.at_level(logging.ERROR):
        box.retry_all_now()  # the link's first change
        add(box)
    box.close()
    kept = list(tmp_path.glob(f"{OUTBOX_FILE}.corrupt-*"))
    assert len(kept) == 1 and kept[0].read_bytes() == content
    assert len(recoveries) == 1 and recoveries[0].moved_to == kept[0]
    assert "damaged" in caplog.text and str(kept[0]) in caplog.text
    assert [a.key for a in Outbox(tmp_path).alerts()] == ["grooming:1"]


def test_a_symbolic_link_is_refused(tmp_path: Path) -> None:
    (tmp_path / "elsewhere").write_bytes(b"")
    (tmp_path / OUTBOX_FILE).symlink_to(tmp_path / "elsewhere")
    with pytest.raises(StoreError, match="not an ordinary file"):
        Outbox(tmp_path).add("k", "grooming", "t", "b", channels=CHANNELS, expires_after=DAY)


READER = """
import sys
from callguard.store.outbox import Outbox
box = Outbox(sys.argv[1])
print(",".join(a.key for a in box.alerts()))
"""


def test_another_process_reads_while_the_writer_holds_its_connection(tmp_path: Path) -> None:
    writer = Outbox(tmp_path)
    try:
        for n in range(3):
            add(writer, key=f"k{n}")
            seen = subprocess.run(
                [sys.executable, "-c", READER, str(tmp_path)],
                capture_output=True,
                text=True,
                check=True,
                timeout=60,
            ).stdout.strip()
            assert seen.split(",") == [f"k{i}" for i in range(n, -1, -1)]
        assert (tmp_path / f"{OUTBOX_FILE}-wal").exists()  # the reader read through the WAL
    finally:
        writer.close()
    assert not (tmp_path / f"{OUTBOX_FILE}-wal").exists()


def test_a_reader_in_the_same_process_sees_a_transaction_only_once_committed(
    tmp_path: Path,
) -> None:
    writer = Outbox(tmp_path)
    add(writer, key="first")
    conn = sqlite3.connect(tmp_path / OUTBOX_FILE, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(
            "INSERT INTO alerts (key, kind, created_utc, title, body, expires_utc) "
            "VALUES ('second', 'grooming', 0, 't', 'b', 0)"
        )
        assert [a.key for a in Outbox(tmp_path).alerts()] == ["first"]
        conn.execute("COMMIT")
        assert {a.key for a in Outbox(tmp_path).alerts()} == {"first", "second"}
    finally:
        conn.close()
        writer.close()
