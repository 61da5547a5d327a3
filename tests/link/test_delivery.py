"""Delivering alerts through apprise to real local receivers (an HTTP server for json://, an
SMTP server for mailto://): delivered once, retried with backoff, expired, reasons in words."""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from receivers import HTTPReceiver, SMTPReceiver

from callguard.link.delivery import (
    TEST_TITLE,
    Channels,
    Deliverer,
    backoff,
    channel_id,
    channel_label,
    send_test,
)
from callguard.store.outbox import Outbox

pytest_plugins = ["receivers"]

START = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, delta: dt.timedelta) -> None:
        self.now += delta


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def outbox(tmp_path: Path, clock: Clock) -> Iterator[Outbox]:
    box = Outbox(tmp_path, clock=clock)
    yield box
    box.close()


def queue(outbox: Outbox, channels: Channels, key: str = "grooming:1") -> int:
    alert = outbox.add(
        key,
        "grooming",
        "Grooming alert at Mum's",
        "An unknown caller has been on the line for 16 minutes.",
        channels=channels.pairs(),
        expires_after=dt.timedelta(hours=48),
    )
    assert alert is not None
    return alert.id


def test_backoff_doubles_from_30_seconds_to_an_hour() -> None:
    waits = [backoff(n).total_seconds() for n in range(1, 10)]
    assert waits == [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]
    assert backoff(0) == dt.timedelta(seconds=30)
    assert backoff(10_000) == dt.timedelta(hours=1)


def test_channel_id_and_label_hide_the_secrets() -> None:
    url = "mailto://gran.carer:s3cret-app-pw@gmail.com"
    assert channel_id(url) == channel_id(url) and len(channel_id(url)) == 12
    assert channel_id(url) != channel_id(url + "x")
    assert "s3cret-app-pw" not in channel_label(url)
    assert "gmail.com" in channel_label(url)
    assert "abcdef123456" not in channel_label("tgram://123456789:abcdef123456/987654")
    assert "tok3nvalue" not in channel_label("ntfy://tok3nvalue@ntfy.sh/topic")
    assert channel_label("nonsense://secret@example.org/x") == "nonsense://example.org"


def test_an_alert_reaches_a_json_receiver(
    outbox: Outbox, http_receiver: HTTPReceiver, clock: Clock
) -> None:
    channels = Channels([http_receiver.url])
    queue(outbox, channels)
    assert Deliverer(outbox, channels, clock=clock).run_due() == 1
    [message] = http_receiver.messages
    assert message.title == "Grooming alert at Mum's"
    assert message.body == "An unknown caller has been on the line for 16 minutes."
    assert message.type == "info"
    [alert] = outbox.alerts()
    assert alert.state == "delivered" and alert.deliveries[0].attempts == 1
    assert Deliverer(outbox, channels, clock=clock).run_due() == 0
    assert len(http_receiver.messages) == 1


@pytest.mark.parametrize("trouble", ["fail", "down"])
def test_a_failing_receiver_is_retried_with_backoff_and_gets_it_exactly_once(
    outbox: Outbox, http_receiver: HTTPReceiver, clock: Clock, trouble: str
) -> None:
    channels = Channels([http_receiver.url])
    deliverer = Deliverer(outbox, channels, clock=clock)
    queue(outbox, channels)
    getattr(http_receiver, trouble)()
    assert deliverer.run_due() == 0
    [delivery] = outbox.alerts()[0].deliveries
    assert delivery.state == "pending" and delivery.attempts == 1
    assert delivery.last_error and (
        "500" in delivery.last_error or "onnection" in delivery.last_error
    )
    assert dt.datetime.fromisoformat(str(delivery.next_try)) == START + dt.timedelta(seconds=30)
    clock.advance(dt.timedelta(seconds=29))
    assert deliverer.run_due() == 0 and outbox.alerts()[0].deliveries[0].attempts == 1
    clock.advance(dt.timedelta(seconds=1))
    assert deliverer.run_due() == 0
    delivery = outbox.alerts()[0].deliveries[0]
    assert delivery.attempts == 2
    assert dt.datetime.fromisoformat(str(delivery.next_try)) == clock() + dt.timedelta(minutes=1)
    http_receiver.up()
    assert deliverer.run_due() == 0  # not due yet
    clock.advance(dt.timedelta(minutes=1))
    assert deliverer.run_due() == 1
    for _ in range(3):
        clock.advance(dt.timedelta(hours=1))
        assert deliverer.run_due() == 0
    assert len(http_receiver.messages) == 1
    assert outbox.alerts()[0].state == "delivered"


def test_other_alerts_to_a_channel_that_just_failed_wait_without_a_try(
    outbox: Outbox, http_receiver: HTTPReceiver, clock: Clock
) -> None:
    channels = Channels([http_receiver.url])
    for n in range(3):
        queue(outbox, channels, key=f"k{n}")
    http_receiver.fail()
    assert Deliverer(outbox, channels, clock=clock).run_due() == 0
    assert http_receiver.requests == 1
    assert {a.deliveries[0].attempts for a in outbox.alerts()} == {1}
    http_receiver.up()
    outbox.retry_all_now()
    assert Deliverer(outbox, channels, clock=clock).run_due() == 3
    assert [m.title for m in http_receiver.messages] == ["Grooming alert at Mum's"] * 3


def test_an_undelivered_alert_expires(
    outbox: Outbox, http_receiver: HTTPReceiver, clock: Clock
) -> None:
    channels = Channels([http_receiver.url])
    deliverer = Deliverer(outbox, channels, clock=clock)
    queue(outbox, channels)
    http_receiver.down()
    deliverer.run_due()
    clock.advance(dt.timedelta(hours=48))
    http_receiver.up()
    assert deliverer.run_due() == 0
    assert http_receiver.messages == []
    [alert] = outbox.alerts()
    assert alert.state == "expired" and alert.deliveries[0].state == "expired"


def test_a_channel_taken_out_of_the_config_is_given_up(
    outbox: Outbox, http_receiver: HTTPReceiver, clock: Clock
) -> None:
    old = Channels([http_receiver.url, "json://127.0.0.1:9/"])
    queue(outbox, old)
    now = Channels([http_receiver.url])
    assert Deliverer(outbox, now, clock=clock).run_due() == 1
    [alert] = outbox.alerts()
    removed = [d for d in alert.deliveries if d.state == "expired"]
    assert len(removed) == 1 and removed[0].last_error == "no longer in [alerts] urls"
    assert now.send(channel_id("json://127.0.0.1:9/"), "t", "b") == "no longer in [alerts] urls"


def test_an_alert_reaches_the_smtp_receiver(
    outbox: Outbox, smtp_receiver: SMTPReceiver, clock: Clock
) -> None:
    channels = Channels([smtp_receiver.url])
    queue(outbox, channels)
    assert Deliverer(outbox, channels, clock=clock).run_due() == 1
    [mail] = smtp_receiver.messages
    assert mail.title == "Grooming alert at Mum's"
    assert "An unknown caller has been on the line for 16 minutes." in mail.body
    assert mail.sender == "callguard@example.org" and mail.to == ("carer@example.org",)


def test_send_test_reports_every_channel(
    http_receiver: HTTPReceiver, smtp_receiver: SMTPReceiver
) -> None:
    closed = HTTPReceiver()
    closed.down()
    results = send_test([http_receiver.url, smtp_receiver.url, closed.url, "nonsense://x"])
    assert [reason is None for _, reason in results] == [True, True, False, False]
    assert results[0][0].startswith("json://127.0.0.1:")
    assert "onnection" in str(results[2][1])
    assert "cannot read this URL" in str(results[3][1]) and "[alerts] urls" in str(results[3][1])
    assert [m.title for m in http_receiver.messages] == [TEST_TITLE]
    assert [m.title for m in smtp_receiver.messages] == [TEST_TITLE]


@pytest.mark.parametrize("url", ["nonsense://x", "json://", "mailto://", "not a url at all"])
def test_a_url_apprise_cannot_read_is_a_reason_not_an_exception(url: str) -> None:
    channels = Channels([url])
    [(cid, label)] = channels.pairs()
    reason = channels.send(cid, "t", "b")
    assert reason is not None and "cannot read this URL" in reason
    assert label


def test_a_reason_does_not_give_away_the_password() -> None:
    channels = Channels(
        ["bogus://carer:hunter2@example.org/x", "json://carer:hunter2@127.0.0.1:9/"]
    )
    for cid, label in channels.pairs():
        reason = channels.send(cid, "t", "b")
        assert reason and "hunter2" not in reason and "hunter2" not in label


def test_the_cli_can_import_delivery_without_apprise() -> None:
    import subprocess

    code = (
        "import sys, callguard.link.delivery, callguard.cli.alerts\nprint('apprise' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "False"
