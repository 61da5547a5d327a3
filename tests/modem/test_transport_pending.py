"""Issue 12 item 4: a reply is only ever its own command's, on the simulated modem.

The parser owns which command the modem owes a final result; the transport completes a caller's
reply only with the final result for that caller's command. These tests make the modem answer
*late*: the reader is stalled (a FaultPlan ``block`` on read) so the modem's answer waits in the
pty until after the caller has timed out, and is released once the next command is written. The
headline case: a late ``OK`` to a timed-out command must not be taken for the ``OK`` of an
``ATH0`` that the modem never heard, or the daemon would believe the line on-hook while it is
off-hook.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from faults import Fault, FaultPlan, FaultySerialFactory
from helpers import wait_for

from callguard.modem.protocol import DLE_ETX, MAX_LATE_RUN
from callguard.modem.transport import CommandTimeout, ModemTransport
from callguard.sim import SimModem

pytestmark = pytest.mark.e2e

ETX_LABEL = "<DLE><ETX>"


class Rig:
    def __init__(self, sim: SimModem) -> None:
        self.sim = sim
        self.plan = FaultPlan()
        self.factory = FaultySerialFactory(self.plan)
        self.transports: list[ModemTransport] = []

    def transport(self, *, start: bool = True, **options: Any) -> ModemTransport:
        settings: dict[str, Any] = {"command_timeout_s": 1.0, "health_interval_s": 30.0}
        settings.update(options)
        transport = ModemTransport(self.sim.port, serial_factory=self.factory, **settings)
        self.transports.append(transport)
        if start:
            transport.start()
        return transport

    def connected(self, **options: Any) -> ModemTransport:
        transport = self.transport(**options)
        assert transport.wait_connected(5), transport.status
        return transport

    @contextmanager
    def late_answers(self, released_by: bytes, nth: int = 1) -> Iterator[Fault]:
        """Stall the reader: what the modem says waits in the pty, unread, until the host has
        written ``released_by`` (the next command; its ``nth`` write from now), and only then
        reaches the parser."""
        stall = self.plan.block("read")
        wait_for(stall.entered.is_set, 3, "the reader to be stalled")
        since = len(self.plan.writes)

        def release() -> None:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and self.plan.writes[since:].count(released_by) < nth:
                time.sleep(0.01)
            stall.gate.set()

        releaser = threading.Thread(target=release, name="test: release reader", daemon=True)
        releaser.start()
        try:
            yield stall
        finally:
            stall.gate.set()
            releaser.join(11)

    def never_hears(self, command: bytes, times: int | None = None) -> Fault:
        """The modem never hears writes of exactly ``command`` (swallowed on the way)."""
        return self.plan.add(Fault("write", action="swallow", containing=command, times=times))


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    sim = SimModem(identity="conexant", link_path=tmp_path / "modem", time_scale=0.2)
    sim.start()
    rig = Rig(sim)
    try:
        yield rig
    finally:
        rig.plan.clear()
        for transport in rig.transports:
            stopper = threading.Thread(target=transport.stop, daemon=True)
            stopper.start()
            stopper.join(10)
        sim.stop()


def test_a_late_ok_to_a_timed_out_command_does_not_answer_ath0(rig: Rig) -> None:
    """Fails before issue 12 item 4: the late OK to AT completed ATH0, and on_hook said True."""
    transport = rig.connected()
    assert transport.command("ATH1").ok
    assert rig.sim.off_hook
    with rig.late_answers(released_by=b"ATH0\r"):
        with pytest.raises(CommandTimeout):
            transport.command("AT", timeout_s=0.3)  # the modem said OK, but too late
        rig.never_hears(b"ATH0\r")
        confirmed = transport.on_hook(attempts=1, attempt_timeout_s=1.0)
    assert rig.sim.off_hook  # the modem never heard ATH0: the line is still off-hook ...
    assert confirmed is False  # ... and on_hook does not claim otherwise
    assert False in rig.plan.dtr  # it fell back to dropping DTR


def test_the_next_command_gets_its_own_reply_after_a_late_one(rig: Rig) -> None:
    """Fails before issue 12 item 4: ATI0 was answered by AT's late OK, with no lines."""
    transport = rig.connected()
    with rig.late_answers(released_by=b"ATI0\r"):
        with pytest.raises(CommandTimeout):
            transport.command("AT", timeout_s=0.3)
        reply = transport.command("ATI0", timeout_s=2.0)
    assert reply.ok and reply.lines == ["56000"]
    assert transport.command("ATI3").lines == ["CX93001-EIS_V0.2002-V92"]  # and in step after


def test_ath0_after_a_late_ok_still_gets_its_own_ok(rig: Rig) -> None:
    transport = rig.connected()
    assert transport.command("ATH1").ok
    with rig.late_answers(released_by=b"ATH0\r"):
        with pytest.raises(CommandTimeout):
            transport.command("AT", timeout_s=0.3)
        assert transport.on_hook(attempts=1, attempt_timeout_s=2.0)
    assert not rig.sim.off_hook


def _voice_transmit(transport: ModemTransport) -> None:
    assert transport.command("AT+FCLASS=8").ok
    assert transport.command("AT+VLS=1").ok
    assert transport.command("AT+VTX").connected


def test_a_late_ok_to_dle_etx_does_not_answer_ath0(rig: Rig) -> None:
    """Fails before issue 12 item 4: the end of a voice session whose <DLE><ETX> was answered
    late took that OK for ATH0's and reported the line on-hook."""
    transport = rig.connected()
    _voice_transmit(transport)
    with rig.late_answers(released_by=b"ATH0\r"):
        with pytest.raises(CommandTimeout):
            transport.write_then_wait(DLE_ETX, ETX_LABEL, timeout_s=0.3)
        rig.never_hears(b"ATH0\r")
        confirmed = transport.on_hook(attempts=1, attempt_timeout_s=1.0)
    assert rig.sim.off_hook
    assert confirmed is False


def test_dle_etx_sent_again_takes_the_first_ones_ok(rig: Rig) -> None:
    """The modem answers <DLE><ETX> once (a second one finds it in command mode): the retry
    gets that answer, and the ATH0 after it its own."""
    transport = rig.connected()
    _voice_transmit(transport)
    with rig.late_answers(released_by=DLE_ETX, nth=2):
        with pytest.raises(CommandTimeout):
            transport.write_then_wait(DLE_ETX, ETX_LABEL, timeout_s=0.3)
        reply = transport.write_then_wait(DLE_ETX, ETX_LABEL, timeout_s=2.0)
    assert reply.ok
    assert transport.on_hook(attempts=1, attempt_timeout_s=2.0)
    assert not rig.sim.off_hook


def test_a_command_eaten_at_power_on_costs_one_retry(rig: Rig) -> None:
    """A modem just powered on may eat the first ATH0; with its echo on (ATE1, the power-on
    default) the echo of the retry shows the first was never heard, so the retry gets its OK."""
    rig.never_hears(b"ATH0\r", times=1)
    transport = rig.transport()
    assert transport.wait_connected(6), transport.status
    writes = rig.plan.writes
    before_reset = writes[: writes.index(b"ATZ\r")]
    assert before_reset == [b"ATH0\r", b"ATH0\r"]


def test_a_command_never_heard_starves_at_most_max_late_run_commands(rig: Rig) -> None:
    """With echo off, an eaten command makes the next answers look late; after at most
    MAX_LATE_RUN lost replies a command gets its own reply again."""
    transport = rig.connected()
    rig.never_hears(b"AT\r", times=1)
    with pytest.raises(CommandTimeout):
        transport.command("AT", timeout_s=0.3)
    answers = {"ATI1": "1F2E", "ATI3": "CX93001-EIS_V0.2002-V92", "ATI4": "ZOOM 3095 USB MODEM"}
    assert len(answers) > MAX_LATE_RUN  # distinct commands: each answer is recognisably its own
    lost = 0
    for command, line in answers.items():
        try:
            reply = transport.command(command, timeout_s=1.0)
        except CommandTimeout:
            lost += 1
            continue
        assert reply.ok and reply.lines == [line]
        break
    else:
        pytest.fail(f"no command got its reply after {lost} timeouts")
    assert lost <= MAX_LATE_RUN
    assert transport.command("ATI0").lines == ["56000"]
