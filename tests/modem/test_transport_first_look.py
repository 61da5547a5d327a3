"""The transport's first look (issue 13): the reader takes the line itself for a caller ID the
daemon's predicate blocks outright, before any listener hears of it; the next ``ATH1`` adopts
that reply, anything else waits it out; a busy modem or a failing predicate leaves the call to
the daemon's loop."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from faults import Fault, FaultPlan, FaultySerialFactory
from helpers import wait_for

from callguard.modem.protocol import CallerId, Event
from callguard.modem.transport import ModemTransport
from callguard.sim import Call, SimModem

pytestmark = pytest.mark.e2e

SCAM = "01134960000"


class Heard:
    """What the listeners heard, and whether the line was already asked for by then."""

    def __init__(self, plan: FaultPlan) -> None:
        self.plan = plan
        self.caller_ids: list[CallerId] = []
        self.seized_before: list[bool] = []
        self.lock = threading.Lock()

    def __call__(self, event: Event) -> None:
        if isinstance(event, CallerId):
            with self.lock:
                self.caller_ids.append(event)
                self.seized_before.append(b"ATH1\r" in self.plan.writes)


@pytest.fixture
def plan() -> FaultPlan:
    return FaultPlan()


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[SimModem]:
    with SimModem(identity="conexant", link_path=tmp_path / "modem", time_scale=0.2) as sim:
        yield sim


@pytest.fixture
def transport(sim: SimModem, plan: FaultPlan) -> Iterator[ModemTransport]:
    transport = ModemTransport(
        sim.port,
        serial_factory=FaultySerialFactory(plan),
        command_timeout_s=1.0,
        health_interval_s=30.0,
    )
    transport.start()
    try:
        assert transport.wait_connected(5), transport.status
        yield transport
    finally:
        transport.stop()


@pytest.fixture
def heard(transport: ModemTransport, plan: FaultPlan) -> Heard:
    """A listener on the transport, which looks first for SCAM (a test may look otherwise)."""
    heard = Heard(plan)
    transport.add_listener(heard)
    transport.set_first_look(scam_only)
    return heard


def ath1s(sim: SimModem) -> int:
    return [c.upper() for _, c in sim.commands].count("ATH1")


def scam_only(event: CallerId) -> bool:
    return event.number == SCAM


def caller_id(heard: Heard) -> CallerId:
    wait_for(lambda: heard.caller_ids, 10, "the caller ID")
    return heard.caller_ids[0]


def test_the_reader_takes_the_line_before_any_listener_hears(
    sim: SimModem, transport: ModemTransport, plan: FaultPlan, heard: Heard
) -> None:
    call = sim.place_call(Call(number=SCAM, rings=3))
    event = caller_id(heard)
    assert heard.seized_before == [True]
    assert transport.claim_first_look(event)
    assert not transport.claim_first_look(event)  # claimed once
    assert transport.command("ATH1", timeout_s=2.0).ok  # adopts the reader's reply ...
    assert ath1s(sim) == 1  # ... instead of saying ATH1 again
    assert sim.off_hook
    assert transport.on_hook()
    record = call.wait(10)
    assert record.outcome == "seized" and record.rings == []


def test_a_caller_the_look_passes_rings(
    sim: SimModem, transport: ModemTransport, plan: FaultPlan, heard: Heard
) -> None:
    looked: list[str | None] = []
    transport.set_first_look(lambda e: looked.append(e.number) or scam_only(e))
    record = sim.place_call(Call(number="01707354000", name="SUE", rings=1)).wait(10)
    assert len(record.rings) == 1 and record.seized_at is None
    assert looked == ["01707354000"]  # once a call: the NAME that refines it is not looked at
    assert len(heard.caller_ids) == 2 and heard.caller_ids[1].refined
    assert not transport.claim_first_look(heard.caller_ids[0])
    assert ath1s(sim) == 0


def test_any_other_command_waits_out_the_readers_ath1(
    sim: SimModem, transport: ModemTransport, plan: FaultPlan, heard: Heard
) -> None:
    """The modem answers one command at a time: a command sent while the reader's ATH1 is
    owed its reply is not written until that reply came or its time was up; the late reply
    is then not taken for the command's own."""
    stalls: list[Fault] = []

    def stall_after_the_seize(event: Event) -> None:  # on the reader, after its ATH1
        if isinstance(event, CallerId) and not stalls:
            stalls.append(plan.block("read"))  # the modem's OK waits, unread

    transport.add_listener(stall_after_the_seize)
    call = sim.place_call(Call(number=SCAM, rings=2))
    event = caller_id(heard)
    stall = stalls[0]
    wait_for(stall.entered.is_set, 5, "the reader to be stalled")

    def release_once_at_is_written() -> None:
        deadline = time.monotonic() + 10
        while b"AT\r" not in plan.writes and time.monotonic() < deadline:
            time.sleep(0.01)
        stall.gate.set()

    releaser = threading.Thread(target=release_once_at_is_written, daemon=True)
    releaser.start()
    t0 = time.monotonic()
    assert transport.command("AT", timeout_s=0.5).ok  # its own OK, the ATH1's late one dropped
    assert time.monotonic() - t0 >= 0.5  # AT waited for the ATH1's reply until its time was up
    releaser.join(10)
    assert plan.writes.index(b"ATH1\r") < plan.writes.index(b"AT\r")
    assert plan.writes.count(b"ATH1\r") == 1 and sim.off_hook
    # the daemon, claiming it, says ATH1 again (nothing is owed now to adopt)
    assert transport.claim_first_look(event)
    assert transport.command("ATH1", timeout_s=2.0).ok
    assert plan.writes.count(b"ATH1\r") == 2
    assert transport.on_hook()
    assert call.wait(10).outcome == "seized"


def test_a_busy_modem_leaves_the_seize_to_the_daemon(
    sim: SimModem, transport: ModemTransport, plan: FaultPlan, heard: Heard
) -> None:
    with transport.session():  # a command or voice session in progress on another thread
        call = sim.place_call(Call(number=SCAM, rings=1))
        event = caller_id(heard)
    assert heard.seized_before == [False]
    assert not transport.claim_first_look(event)
    assert call.wait(10).rings and ath1s(sim) == 0


def test_a_failing_look_is_logged_and_the_listeners_still_hear(
    sim: SimModem,
    transport: ModemTransport,
    plan: FaultPlan,
    heard: Heard,
    caplog: pytest.LogCaptureFixture,
) -> None:

    def broken(event: CallerId) -> bool:
        raise KeyError("a bug")

    transport.set_first_look(broken)
    with caplog.at_level(logging.ERROR, logger="callguard.modem.transport"):
        record = sim.place_call(Call(number=SCAM, rings=1)).wait(10)
    assert record.rings and ath1s(sim) == 0
    assert len(heard.caller_ids) == 1 and heard.seized_before == [False]
    assert "the first look" in caplog.text and "screens it as usual" in caplog.text
    assert transport.command("AT").ok


def test_once_stopping_the_reader_takes_no_line(
    sim: SimModem, transport: ModemTransport, plan: FaultPlan, heard: Heard
) -> None:
    """A blocked caller ID arriving while stop() says its last ATH0: the reader leaves the line
    alone, so nothing can take it after that ATH0 and before the port closes."""
    on_hook = transport.on_hook

    def last_on_hook(*args: Any, **kwargs: Any) -> bool:
        confirmed = on_hook(*args, **kwargs)
        if transport._closing:  # the supervisor's stop-time ATH0 has been said
            sim.place_call(Call(number=SCAM, rings=1))
            caller_id(heard)
        return confirmed

    transport.on_hook = last_on_hook  # type: ignore[method-assign]
    transport.stop()
    assert heard.caller_ids and heard.seized_before == [False]
    line = [w for w in plan.writes if w in (b"ATH0\r", b"ATH1\r")]
    assert line[-1] == b"ATH0\r" and b"ATH1\r" not in line
    assert not sim.off_hook
