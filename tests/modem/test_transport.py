"""The serial transport and voice playback against the simulated modem over a real pty."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import serial
from helpers import wait_for

from callguard.modem.protocol import CallerId, Event, Ring
from callguard.modem.transport import (
    LinkState,
    ModemTransport,
    ModemUnavailable,
    TransportStatus,
    _rest_of_burst,
)
from callguard.modem.voice import VoicePlayer
from callguard.sim import Call, SimModem

pytestmark = pytest.mark.e2e


class Recorder:
    """What the transport told its listeners. The transport publishes a status (``status``,
    ``wait_connected``) before it calls ``on_status``: to assert on what the listener was told,
    wait for it here (:meth:`wait_status`), not on the transport."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.statuses: list[TransportStatus] = []
        self.lock = threading.Condition()

    def event(self, event: Event) -> None:
        with self.lock:
            self.events.append(event)

    def status(self, status: TransportStatus) -> None:
        with self.lock:
            self.statuses.append(status)
            self.lock.notify_all()

    def of(self, kind: type) -> list[Event]:
        with self.lock:
            return [e for e in self.events if isinstance(e, kind)]

    def wait_status(
        self, found: Callable[[list[TransportStatus]], bool], timeout_s: float, what: str
    ) -> list[TransportStatus]:
        """Wait until ``found`` accepts the statuses told so far; return them."""
        with self.lock:
            if not self.lock.wait_for(lambda: found(list(self.statuses)), timeout_s):
                raise AssertionError(f"no {what} within {timeout_s} s: {self.statuses}")
            return list(self.statuses)


def lost(why: str, statuses: list[TransportStatus]) -> bool:
    """Was the listener told the modem is disconnected, saying ``why``?"""
    return any(not s.connected and why in s.detail for s in statuses)


@pytest.fixture
def link(tmp_path: Path) -> str:
    return str(tmp_path / "modem")


def make_transport(port: str, rec: Recorder, **kw: object) -> ModemTransport:
    options: dict[str, object] = {"command_timeout_s": 2.0, "health_interval_s": 30.0}
    options.update(kw)
    transport = ModemTransport(port, on_status=rec.status, **options)  # type: ignore[arg-type]
    transport.add_listener(rec.event)
    return transport


@pytest.fixture
def conexant(link: str) -> Iterator[SimModem]:
    with SimModem(
        identity="conexant", link_path=link, time_scale=0.2, cid_needs_country=True
    ) as sim:
        yield sim


def commands(sim: SimModem) -> list[str]:
    return [c.upper() for _, c in sim.commands]


def test_init_on_hook_first_country_and_caller_id(conexant: SimModem) -> None:
    rec = Recorder()
    with make_transport(conexant.port, rec) as transport:
        assert transport.wait_connected(5), transport.status
        sent = commands(conexant)
        assert sent[0] == "ATH0"
        assert sent.index("ATZ") < sent.index("AT+GCI=B4") < sent.index("AT+VCID=1")
        assert conexant.vcid and conexant.country == "B4" and not conexant.echo
        status = transport.status
        assert status.state is LinkState.CONNECTED
        assert status.profile == "conexant" and "56000" in (status.identity or "")
        assert transport.command("AT-TRV").volts == pytest.approx(conexant.line_volts, abs=0.5)


def test_usr_is_identified(link: str) -> None:
    rec = Recorder()
    with (
        SimModem(identity="usr", link_path=link) as sim,
        make_transport(sim.port, rec, profile="auto") as transport,
    ):
        assert transport.wait_connected(5)
        assert transport.status.profile == "usr5637"
        assert not transport.command("AT-TRV").ok  # USR has no line voltage


def test_uk_caller_id_reaches_listeners_before_the_first_ring(conexant: SimModem) -> None:
    rec = Recorder()
    with make_transport(conexant.port, rec) as transport:
        assert transport.wait_connected(5)
        conexant.place_call(Call(number="01707354000", rings=2)).wait(10)
        kinds = [type(e) for e in rec.events if isinstance(e, CallerId | Ring)]
        assert kinds[0] is CallerId and kinds.count(Ring) == 2
        first = rec.of(CallerId)[0]
        assert isinstance(first, CallerId) and first.number == "01707354000"


def test_unplug_reports_disconnected_and_replug_reconnects_within_5_s(conexant: SimModem) -> None:
    rec = Recorder()
    with make_transport(conexant.port, rec) as transport:
        assert transport.wait_connected(5)
        inits = commands(conexant).count("AT+GCI=B4")
        told = len(rec.statuses)
        conexant.unplug()
        rec.wait_status(lambda now: lost("lost the modem", now[told:]), 3, "disconnected")
        assert not transport.status.connected
        with pytest.raises(ModemUnavailable):
            transport.command("AT")
        # stays unplugged a while: the transport keeps trying, and finds no modem
        rec.wait_status(lambda now: lost("no modem at", now[told:]), 3, "a retry")
        conexant.replug()
        replugged = time.monotonic()
        assert transport.wait_connected(5), transport.status
        assert time.monotonic() - replugged < 5
        assert commands(conexant).count("AT+GCI=B4") >= 1  # a fresh modem: init ran again
        assert conexant.vcid
        assert inits >= 1
        # the listener is told after wait_connected returns: wait for what it was told
        statuses = rec.wait_status(
            lambda told: [s.state for s in told].count(LinkState.CONNECTED) >= 2, 2, "reconnected"
        )
        assert LinkState.DISCONNECTED in [s.state for s in statuses]


def test_locked_up_modem_is_caught_by_the_health_check(conexant: SimModem) -> None:
    rec = Recorder()
    with make_transport(
        conexant.port, rec, health_interval_s=0.5, command_timeout_s=0.5
    ) as transport:
        assert transport.wait_connected(5)
        told = len(rec.statuses)
        conexant.hang()
        rec.wait_status(lambda now: lost("stopped answering", now[told:]), 8, "the health check")
        assert not transport.status.connected
        conexant.unhang()
        assert transport.wait_connected(8), transport.status


def test_missing_port_is_reported_then_used_when_it_appears(link: str) -> None:
    rec = Recorder()
    with make_transport(link, rec) as transport:
        rec.wait_status(bool, 3, "a status")
        assert "no modem at" in transport.status.detail
        with SimModem(identity="conexant", link_path=link):
            assert transport.wait_connected(5), transport.status


def test_port_is_exclusive(conexant: SimModem) -> None:
    first, second = Recorder(), Recorder()
    with make_transport(conexant.port, first) as a:
        assert a.wait_connected(5)
        with make_transport(conexant.port, second) as b:
            second.wait_status(bool, 3, "a status")
            assert not b.status.connected
            assert "in use by another program" in b.status.detail


def test_stop_puts_the_line_on_hook(conexant: SimModem) -> None:
    rec = Recorder()
    transport = make_transport(conexant.port, rec)
    transport.start()
    assert transport.wait_connected(5)
    assert transport.command("ATH1").ok
    wait_for(lambda: conexant.off_hook, 2, "off-hook")
    transport.stop()
    assert not conexant.off_hook
    assert transport.status.state is LinkState.DISCONNECTED


def test_a_caller_id_burst_reaches_the_parser_in_one_piece(
    conexant: SimModem, monkeypatch: pytest.MonkeyPatch
) -> None:
    rec = Recorder()
    with make_transport(conexant.port, rec) as transport:
        assert transport.wait_connected(5)
        chunks: list[bytes] = []
        feed = transport._feed

        def parse(link: object, data: bytes) -> None:
            chunks.append(data)
            feed(link, data)  # type: ignore[arg-type]

        monkeypatch.setattr(transport, "_feed", parse)
        conexant.place_call(Call(number="01707354000", rings=1))
        wait_for(lambda: rec.of(CallerId), 5, "the caller ID")
        # the first byte wakes the read; the rest is taken with it, not a read later
        assert b"DATE" in chunks[0] and b"NMBR" in chunks[0], chunks


def test_after_call_asserts_caller_id_again_and_gives_way_to_a_call(
    conexant: SimModem, monkeypatch: pytest.MonkeyPatch
) -> None:
    rec = Recorder()
    with make_transport(conexant.port, rec) as transport:
        assert transport.wait_connected(5)
        before = len(commands(conexant))
        assert transport.after_call(step_aside_after=transport.line_events)
        assert commands(conexant)[before:] == ["AT+FCLASS=0", "AT+VCID=1"]

        # a caller ID arrives while AT+FCLASS=0 is under way: nothing more is sent after it
        mark = transport.line_events
        command = transport.command

        def call_comes_in(text: str, timeout_s: float | None = None) -> object:
            reply = command(text, timeout_s)
            conexant.place_call(Call(number="01707354000", rings=1))
            wait_for(lambda: transport.line_events != mark, 5, "the caller ID")
            return reply

        monkeypatch.setattr(transport, "command", call_comes_in)
        before = len(commands(conexant))
        assert not transport.after_call(step_aside_after=mark)
        assert commands(conexant)[before:] == ["AT+FCLASS=0"]
        monkeypatch.undo()
        # and one that finds a call has come in since its mark sends nothing at all
        before = len(commands(conexant))
        assert not transport.after_call(step_aside_after=mark)
        assert commands(conexant)[before:] == []


def test_commands_from_a_listener_are_refused(conexant: SimModem) -> None:
    rec = Recorder()
    errors: list[BaseException] = []
    with make_transport(conexant.port, rec) as transport:

        def bad_listener(event: Event) -> None:
            if isinstance(event, Ring):
                try:
                    transport.command("ATH1")
                except RuntimeError as exc:
                    errors.append(exc)

        transport.add_listener(bad_listener)
        assert transport.wait_connected(5)
        conexant.place_call(Call(number="01707354000", rings=1)).wait(10)
        assert errors and "listener" in str(errors[0])
        assert transport.command("AT").ok  # and the transport still works


def test_voice_playback_on_the_simulator(conexant: SimModem) -> None:
    rec = Recorder()
    with make_transport(conexant.port, rec) as transport:
        assert transport.wait_connected(5)
        audio = bytes(range(256)) * 31  # just under 1 s at 8 kHz, with DLE bytes in it
        result = VoicePlayer(transport).play(audio)
        assert result.completed and result.on_hook
        session = conexant.voice_sessions[-1]
        assert session.data == audio
        seconds = session.ended - session.started
        assert 0.6 < seconds < 2.0, seconds  # paced at about 8000 bytes/s, not dumped at once
        assert not conexant.off_hook and conexant.fclass == 0
        assert conexant.vcid  # the Conexant forgets caller ID after voice: asserted again
        sent = commands(conexant)
        tail = sent[sent.index("AT+FCLASS=8") :]
        assert tail[:4] == ["AT+FCLASS=8", "AT+VSM=1,8000,0,0", "AT+VLS=1", "AT+VTX"]


def test_voice_playback_survives_an_unplug_mid_audio(conexant: SimModem) -> None:
    rec = Recorder()
    with make_transport(conexant.port, rec) as transport:
        assert transport.wait_connected(5)
        timer = threading.Timer(0.4, conexant.unplug)
        timer.start()
        with pytest.raises(ModemUnavailable):
            VoicePlayer(transport).play(b"\x80" * 16000)
        timer.join()
        conexant.replug()
        assert transport.wait_connected(5)
        assert not conexant.off_hook  # a fresh modem at power-on is on-hook; init said ATH0 first


def test_the_reader_takes_the_rest_of_a_burst_in_one_read() -> None:
    """A plain port: what arrived after the byte that woke the reader, in one read of the
    descriptor, and nothing (no wait) when nothing more came; any other port through pyserial."""
    master, slave = os.openpty()
    port = serial.Serial(os.ttyname(slave), timeout=1)
    try:
        rest = _rest_of_burst(port)
        assert rest() == b""  # nothing waiting: at once, empty
        os.write(master, b"\r\nNMBR = 01134960000\r\n")
        assert port.read(1) == b"\r"
        wait_for(lambda: port.in_waiting >= 20, 2, "the burst in the pty")
        assert rest() == b"\nNMBR = 01134960000\r\n"
        assert rest() == b""
    finally:
        port.close()
        os.close(master)
        os.close(slave)
    loop = serial.serial_for_url("loop://", timeout=1)
    loop.write(b"OK\r\n")
    assert loop.read(1) == b"O"
    assert _rest_of_burst(loop)() == b"K\r\n"
