"""Carer alerts end to end (issue 16): the real daemon on the simulated line, `callguard link` as
its own process, and real local receivers: an HTTP server taking apprise's json:// posts and an
SMTP server (aiosmtpd) taking mailto://."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from helpers import DaemonUnit, LinkProcess, wait_for
from receivers import HTTPReceiver, Received, SMTPReceiver

from callguard.sim import Call

pytestmark = pytest.mark.e2e
pytest_plugins = ["receivers"]

BANK = "03069990123"  # a drama number standing for the bank's card line


def unit_with_alerts(tmp: Path, urls: list[str], **alerts: Any) -> DaemonUnit:
    extra = {
        "alerts": {"urls": urls, "resident": "Mum", "unit_problem_minutes": 0.05, **alerts},
        "warning": {"room_command": ""},
    }
    return DaemonUnit(tmp, extra, scale=0.5, grooming_minutes=0.03)


def bank_protected(unit: DaemonUnit) -> LinkProcess:
    """The bank's card number on the protect list, and the link started."""
    assert unit.cli("protect", "add", BANK, "--name", "Drama Bank card line").returncode == 0
    return LinkProcess(unit).start()


def arrived(receiver: HTTPReceiver | SMTPReceiver, words: str) -> list[Received]:
    return [m for m in receiver.messages if words in m.title]


def test_a_long_unknown_call_reaches_the_carers_and_so_does_who_cleared_it(
    tmp_path: Path, http_receiver: HTTPReceiver, smtp_receiver: SMTPReceiver
) -> None:
    with unit_with_alerts(tmp_path, [http_receiver.url, smtp_receiver.url]) as unit:
        link = LinkProcess(unit).start()
        try:
            unit.sim.place_call(
                Call(number="02079460123", rings=2, answer_after_rings=1, talk_s=8)
            ).wait(60)
            wait_for(lambda: arrived(http_receiver, "long call"), 30, "the grooming alert")
            wait_for(lambda: arrived(smtp_receiver, "long call"), 30, "the grooming e-mail")
            [message] = arrived(http_receiver, "long call")
            assert "020 7946 0123" in message.body and "ring Mum" in message.body
            assert "020 7946 0123" in arrived(smtp_receiver, "long call")[0].body
            assert unit.cli("ack", "--by", "Sarah").returncode == 0
            wait_for(lambda: arrived(http_receiver, "cleared by Sarah"), 30, "the all-clear")
            wait_for(lambda: arrived(smtp_receiver, "cleared by Sarah"), 30, "the all-clear")
            assert len(arrived(http_receiver, "long call")) == 1
            shown = {a["kind"]: a for a in link.alerts()}
            assert shown["grooming"]["state"] == shown["cleared"]["state"] == "delivered"
        finally:
            assert link.stop() == 0


def test_a_spoofed_bank_number_is_an_impersonation_alert(
    tmp_path: Path, http_receiver: HTTPReceiver
) -> None:
    with unit_with_alerts(tmp_path, [http_receiver.url]) as unit:
        link = bank_protected(unit)
        try:
            record = unit.sim.place_call(Call(number=BANK, rings=3)).wait(60)
            assert record.outcome == "seized" and record.rings == []
            wait_for(lambda: arrived(http_receiver, "pretending"), 30, "the impersonation alert")
            [message] = arrived(http_receiver, "pretending")
            assert "0306 999 0123" in message.body and "159" in message.body
        finally:
            link.stop()


def test_an_alert_raised_while_the_receiver_is_down_arrives_once_after_a_restart(
    tmp_path: Path, http_receiver: HTTPReceiver
) -> None:
    with unit_with_alerts(tmp_path, [http_receiver.url]) as unit:
        link = bank_protected(unit)
        http_receiver.down()
        try:
            unit.sim.place_call(Call(number=BANK, rings=3)).wait(60)

            def tried() -> bool:
                return any(
                    d["attempts"] >= 1 and d["state"] == "pending"
                    for a in link.alerts()
                    for d in a["deliveries"]
                )

            wait_for(tried, 30, "a failed delivery, to be retried")
            assert link.stop() == 0
            http_receiver.up()
            link.start()
            wait_for(lambda: arrived(http_receiver, "pretending"), 30, "the alert after restart")
            wait_for(lambda: link.alerts()[0]["state"] == "delivered", 10, "delivered")
            link.stop()
            link.start()  # and once more: nothing is sent twice
            unit.sim.place_call(Call(number="999", rings=1)).wait(60)
            wait_for(lambda: len(arrived(http_receiver, "pretending")) == 2, 30, "999 told")
            assert [BANK in m.body.replace(" ", "") for m in http_receiver.messages] == [
                True,
                False,
            ]
        finally:
            link.stop()


def test_the_modem_unplugged_beyond_the_threshold_and_back(
    tmp_path: Path, http_receiver: HTTPReceiver
) -> None:
    with unit_with_alerts(tmp_path, [http_receiver.url]) as unit:
        link = LinkProcess(unit).start()
        try:
            unit.sim.unplug()
            wait_for(lambda: arrived(http_receiver, "cannot reach"), 40, "the modem alert")
            [missing] = arrived(http_receiver, "cannot reach")
            assert "USB" in missing.body
            unit.sim.replug()
            wait_for(lambda: arrived(http_receiver, "again"), 40, "the modem back")
            assert len(arrived(http_receiver, "cannot reach")) == 1
        finally:
            link.stop()
