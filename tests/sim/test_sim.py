"""Tests for callguard.sim: the simulated modem, driven over a real pty with pyserial.

Line timings run at `SCALE` (20x faster than life); audio runs at real speed. Waits poll with
a deadline rather than sleeping a fixed time.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Iterator

import pytest
import serial
from hypothesis import given, settings
from hypothesis import strategies as st

from callguard.sim import Call, CallRecord, Scenario, SimModem, VoiceSession, timeline
from callguard.sim.firmware import CONEXANT, USR, Firmware

SCALE = 0.05
DLE, ETX = b"\x10", b"\x03"


class Client:
    """The daemon's side of the port, reduced to what the tests need."""

    def __init__(self, port: str) -> None:
        self.s = serial.serial_for_url(port, exclusive=True, timeout=0.05)

    def close(self) -> None:
        self.s.close()

    def write(self, data: bytes) -> None:
        self.s.write(data)

    def read_until(self, token: bytes, timeout_s: float = 2.0) -> bytes:
        buf = b""
        deadline = time.monotonic() + timeout_s
        while token not in buf:
            if time.monotonic() > deadline:
                raise AssertionError(f"no {token!r} within {timeout_s} s; got {buf!r}")
            buf += self.s.read(max(1, self.s.in_waiting))
        return buf

    def cmd(self, line: str, final: bytes = b"", timeout_s: float = 2.0) -> bytes:
        """Send a command line; return everything up to its final result (OK, ERROR, `final`)."""
        self.write(line.encode("latin-1") + b"\r")
        finals = (b"\r\nOK\r\n", b"\r\nERROR\r\n") + ((final,) if final else ())
        buf = b""
        deadline = time.monotonic() + timeout_s
        while not buf.endswith(finals):
            if time.monotonic() > deadline:
                raise AssertionError(f"{line!r}: no final result within {timeout_s} s: {buf!r}")
            buf += self.s.read(max(1, self.s.in_waiting))
        return buf

    def silence(self, duration_s: float) -> bytes:
        """Everything received in `duration_s` (expected to be nothing)."""
        buf = b""
        deadline = time.monotonic() + duration_s
        while time.monotonic() < deadline:
            buf += self.s.read(max(1, self.s.in_waiting))
        return buf


def wait_until(predicate: object, timeout_s: float = 2.0) -> None:
    assert callable(predicate)
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.005)


@pytest.fixture(autouse=True)
def no_leaked_threads() -> Iterator[None]:
    yield
    leaked = [t.name for t in threading.enumerate() if t.name.startswith("simmodem-")]
    assert leaked == [], "SimModem.stop() must join every thread"


@pytest.fixture
def sim() -> Iterator[SimModem]:
    with SimModem("conexant", time_scale=SCALE) as modem:
        yield modem


@pytest.fixture
def client(sim: SimModem) -> Iterator[Client]:
    c = Client(sim.port)
    yield c
    c.close()


def quiet_client(sim: SimModem) -> Client:
    c = Client(sim.port)
    assert c.cmd("ATE0").endswith(b"\r\nOK\r\n")
    return c


# ----------------------------------------------------------------------------- commands


def test_echo_until_ate0(sim: SimModem, client: Client) -> None:
    assert client.cmd("AT") == b"AT\r\r\nOK\r\n"
    assert client.cmd("ATE0") == b"ATE0\r\r\nOK\r\n"
    assert client.cmd("AT") == b"\r\nOK\r\n"
    assert sim.echo is False
    assert [text for _, text in sim.commands] == ["AT", "ATE0", "AT"]


def test_line_endings_crlf_and_lf_and_case(client: Client) -> None:
    client.cmd("ATE0")
    client.write(b"at\r\n")
    assert client.read_until(b"OK\r\n") == b"\r\nOK\r\n"
    client.write(b"aT\n")
    assert client.read_until(b"OK\r\n") == b"\r\nOK\r\n"
    assert client.silence(0.05) == b""


@pytest.mark.parametrize(("identity", "ati0"), [("conexant", b"56000"), ("usr", b"5601")])
def test_ati_per_identity(identity: str, ati0: bytes) -> None:
    with SimModem(identity, time_scale=SCALE) as sim:
        c = quiet_client(sim)
        assert c.cmd("ATI0") == b"\r\n" + ati0 + b"\r\n\r\nOK\r\n"
        ati3 = c.cmd("ATI3")
        assert ati3.endswith(b"\r\nOK\r\n") and len(ati3.strip()) > 10
        c.close()


def test_chained_commands(sim: SimModem, client: Client) -> None:
    assert client.cmd("ATE0V1Q0").endswith(b"\r\nOK\r\n")
    assert sim.echo is False
    assert client.cmd("AT&FE0") == b"\r\nOK\r\n"  # echo is decided when the line arrives
    assert sim.echo is False
    assert client.cmd("AT&F") == b"\r\nOK\r\n" and sim.echo is True
    assert client.cmd("ATE0") == b"ATE0\r\r\nOK\r\n"
    assert client.cmd("AT&C1&D2S0=0L0M0X4") == b"\r\nOK\r\n"
    assert client.cmd("AT+GCI=B4;+VCID=1") == b"\r\nOK\r\n"
    assert (sim.country, sim.vcid) == ("B4", True)
    assert client.cmd("AT+GCI?;+VCID?") == b"\r\n+GCI: B4\r\n\r\n1\r\n\r\nOK\r\n"
    assert client.cmd("ATS7=30S7?") == b"\r\n030\r\n\r\nOK\r\n"


@pytest.mark.parametrize(
    "line",
    ["ATJ", "AT+FOO", "AT+VCID=7", "ATE2", "AT+GCI=ZZ", "AT+FCLASS=3", "ATE0+BAD", "AT%Q"],
)
def test_unknown_or_bad_commands_are_error(client: Client, line: str) -> None:
    client.cmd("ATE0")
    assert client.cmd(line) == b"\r\nERROR\r\n"


def test_voice_commands_need_voice_mode(sim: SimModem, client: Client) -> None:
    client.cmd("ATE0")
    for line in ("AT+VSM=1,8000,0,0", "AT+VLS=1", "AT+VTX", "AT+VIT=10"):
        assert client.cmd(line) == b"\r\nERROR\r\n", line
    assert client.cmd("AT+FCLASS=8") == b"\r\nOK\r\n"
    assert client.cmd("AT+FCLASS?") == b"\r\n8\r\n\r\nOK\r\n"
    assert client.cmd("AT+VTX") == b"\r\nERROR\r\n"  # still on-hook
    assert client.cmd("AT+VSM=128,8000") == b"\r\nERROR\r\n"  # a USR format
    assert client.cmd("AT+VSM=130,8000,0,0") == b"\r\nOK\r\n"
    assert client.cmd("AT+VIT=10;+VGT=128;+VSD=128,50") == b"\r\nOK\r\n"
    assert sim.fclass == 8


def test_usr_voice_formats() -> None:
    with SimModem("usr", time_scale=SCALE) as sim:
        c = quiet_client(sim)
        c.cmd("AT+FCLASS=8")
        assert b'128,"8-BIT LINEAR"' in c.cmd("AT+VSM=?")
        assert c.cmd("AT+VSM=128,8000") == b"\r\nOK\r\n"
        assert c.cmd("AT+VSM=140,8000") == b"\r\nERROR\r\n"
        c.close()


def test_numeric_and_quiet_result_codes(sim: SimModem, client: Client) -> None:
    client.cmd("ATE0")
    client.write(b"ATV0\r")
    assert client.read_until(b"0\r") == b"0\r"
    client.write(b"ATJ\r")
    assert client.read_until(b"4\r") == b"4\r"
    client.write(b"ATV1Q1\r")
    assert client.silence(0.1) == b""
    assert client.cmd("ATQ0") == b"\r\nOK\r\n"


def test_atz_resets_defaults(sim: SimModem, client: Client) -> None:
    client.cmd("ATE0")
    client.cmd("AT+VCID=1;+GCI=B4")
    client.cmd("ATH1")
    assert sim.off_hook
    assert client.cmd("ATZ") == b"\r\nOK\r\n"
    assert (sim.echo, sim.vcid, sim.fclass, sim.off_hook) == (True, False, 0, False)
    assert sim.country == "B4"  # kept in NVRAM, like a Conexant
    assert [on for _, on in sim.hook_events] == [True, False]


# ----------------------------------------------------------------------------- calls


def test_uk_call_caller_id_only_after_vcid(sim: SimModem) -> None:
    c = quiet_client(sim)
    rec = sim.place_call(Call("01707354000", rings=2)).wait(2)
    assert rec.outcome == "unanswered" and rec.cid_sent_at is None and len(rec.rings) == 2
    assert b"NMBR" not in c.silence(0.05)

    c.cmd("AT+VCID=1")
    rec = sim.place_call(Call("01707354000", rings=3, date_time=("1124", "0930"))).wait(2)
    stream = c.read_until(b"RING\r\n\r\nRING\r\n\r\nRING\r\n")
    assert stream.startswith(
        b"\r\nDATE = 1124\r\nTIME = 0930\r\nNMBR = 01707354000\r\n\r\n\r\nRING\r\n"
    )
    assert rec.cid_sent_at is not None
    assert rec.rings[0] - rec.cid_sent_at >= 0.2 * SCALE
    gaps = [b - a for a, b in zip(rec.rings, rec.rings[1:], strict=False)]
    assert all(abs(g - 3.0 * SCALE) < 0.05 for g in gaps), gaps
    assert rec.outcome == "unanswered" and rec.seized_at is None
    c.close()


def test_cid_variants_and_no_cid() -> None:
    with SimModem("usr", time_scale=SCALE) as sim:
        c = quiet_client(sim)
        c.cmd("AT#CID=1")
        sim.place_call(Call("P", spaces=False, rings=1, date_time=("0101", "0000"))).wait(2)
        assert c.read_until(b"RING\r\n").startswith(b"\r\nDATE=0101\r\nTIME=0000\r\nNMBR=P\r\n\r\n")
        odd = ("NMBR = 0123", "NMBR = O")
        sim.place_call(Call(None, cid_lines=odd, rings=1)).wait(2)
        assert c.read_until(b"RING\r\n") == b"\r\nNMBR = 0123\r\nNMBR = O\r\n\r\n\r\nRING\r\n"
        rec = sim.place_call(Call(None, rings=1)).wait(2)
        assert c.read_until(b"RING\r\n") == b"\r\nRING\r\n" and rec.cid_sent_at is None
        c.close()


def test_us_call_rings_before_caller_id(sim: SimModem) -> None:
    c = quiet_client(sim)
    c.cmd("AT+VCID=1")
    rec = sim.place_call(Call("2025550143", name="JANE DOE", style="us", rings=2)).wait(3)
    stream = c.read_until(b"NAME = JANE DOE\r\n\r\n\r\nRING\r\n")
    assert stream.startswith(b"\r\nRING\r\n\r\nDATE = ")
    assert rec.cid_sent_at is not None
    assert rec.rings[0] < rec.cid_sent_at < rec.rings[1]
    assert rec.cid_sent_at - rec.rings[0] == pytest.approx(1.5 * SCALE, abs=0.04)
    assert rec.rings[1] - rec.rings[0] == pytest.approx(6.0 * SCALE, abs=0.04)
    c.close()


def test_seize_during_ringing_stops_rings(sim: SimModem) -> None:
    c = quiet_client(sim)
    handle = sim.place_call(Call("01707354000", rings=20))
    c.read_until(b"RING\r\n")
    assert c.cmd("ATH1") == b"\r\nOK\r\n"
    wait_until(lambda: handle.record.outcome == "seized")
    assert c.silence(4 * 3.0 * SCALE) == b""  # no RING while off-hook
    rec = handle.record
    seized_at = rec.seized_at
    assert seized_at is not None and all(t < seized_at for t in rec.rings)
    assert not handle.done
    assert c.cmd("ATH0") == b"\r\nOK\r\n"
    rec = handle.wait(1)
    assert rec.released_at is not None and rec.released_at > seized_at
    assert rec.answered_at is None and rec.outcome == "seized"
    c.close()


def test_uk_seize_in_gap_before_first_ring() -> None:
    with SimModem("conexant", time_scale=0.5) as sim:  # 250 ms between caller ID and RING
        c = quiet_client(sim)
        c.cmd("AT+GCI=B4;+VCID=1")
        handle = sim.place_call(Call("07700900461"))
        c.read_until(b"NMBR = 07700900461\r\n\r\n")
        c.cmd("ATH1")
        c.cmd("ATH0")
        rec = handle.wait(1)
        assert rec.outcome == "seized" and rec.rings == []
        assert rec.seized_at is not None and rec.released_at is not None
        c.close()


def test_quick_off_on_hook_in_one_write_still_seizes(sim: SimModem) -> None:
    c = quiet_client(sim)
    handle = sim.place_call(Call("01707354000", rings=10))
    c.read_until(b"RING\r\n")
    c.write(b"ATH1\rATH0\r")
    c.read_until(b"OK\r\n\r\nOK\r\n")
    rec = handle.wait(1)
    assert rec.outcome == "seized" and rec.released_at is not None
    c.close()


def test_answer_with_ata_in_data_mode_gives_no_carrier(sim: SimModem) -> None:
    c = quiet_client(sim)
    c.cmd("ATS7=2")  # 2 s carrier wait, scaled to 0.1 s
    handle = sim.place_call(Call("01707354000", rings=10))
    c.read_until(b"RING\r\n")
    c.write(b"ATA\r")
    assert c.read_until(b"NO CARRIER\r\n") == b"\r\nNO CARRIER\r\n"
    rec = handle.wait(1)
    assert rec.outcome == "seized" and not sim.off_hook


def test_busy_line_and_validation(sim: SimModem) -> None:
    c = quiet_client(sim)
    c.cmd("ATH1")
    assert sim.place_call(Call("01707354000")).wait(1).outcome == "busy"
    c.cmd("ATH0")
    with pytest.raises(ValueError, match="answer_after_rings"):
        Call("1", rings=2, answer_after_rings=3)
    c.close()


def test_line_voltage_conexant_and_answer_elsewhere(sim: SimModem) -> None:
    c = quiet_client(sim)
    assert c.cmd("AT-TRV") == b"\r\n48.20\r\n\r\nOK\r\n"
    handle = sim.place_call(Call("01707354000", rings=5, answer_after_rings=1, talk_s=4.0))

    def volts() -> float:
        answer = re.search(rb"\r\n(\d+\.\d\d)\r\n", c.cmd("AT-TRV"))  # RINGs may interleave
        assert answer is not None
        return float(answer.group(1))

    wait_until(lambda: volts() < 20, timeout_s=2)
    assert handle.record.outcome == "answered" and sim.line_volts < 20
    rec = handle.wait(2)
    assert rec.answered_at is not None and rec.ended_at is not None
    assert rec.ended_at - rec.answered_at == pytest.approx(4.0 * SCALE, abs=0.05)
    assert len(rec.rings) == 1 and rec.seized_at is None
    assert volts() > 40
    assert b"RING" not in c.silence(0.1)
    c.cmd("ATH1")
    assert 5 < volts() < 12
    c.close()


def test_usr_has_no_trv() -> None:
    with SimModem("usr", time_scale=SCALE) as sim:
        c = quiet_client(sim)
        assert c.cmd("AT-TRV") == b"\r\nERROR\r\n"
        c.close()


def test_scenario_plays_in_order(sim: SimModem) -> None:
    c = quiet_client(sim)
    c.cmd("AT+VCID=1")
    scenario = Scenario(
        "t", [(2.0, Call("O", rings=1)), (0.0, Call("01707354000", rings=1, answer_after_rings=1))]
    )
    records = sim.play(scenario, wait=True, timeout_s=3)
    assert [r.outcome for r in records] == ["answered", "unanswered"]
    assert all(isinstance(r, CallRecord) for r in records)
    first, second = records
    assert first.started_at is not None and second.started_at is not None
    assert second.started_at - first.started_at == pytest.approx(2.0 * SCALE, abs=0.04)
    c.close()


def test_timeline_is_pure_data() -> None:
    uk = timeline(Call("1", rings=2))
    assert uk == [(0.0, "cid"), (0.5, "ring"), (3.5, "ring"), (6.5, "give_up")]
    us = timeline(Call("1", style="us", rings=2, answer_after_rings=2))
    assert us == [(0.0, "ring"), (1.5, "cid"), (6.0, "ring"), (7.0, "answer")]
    assert timeline(Call(None, rings=1)) == [(0.5, "ring"), (3.5, "give_up")]


# ----------------------------------------------------------------------------- voice


def _shield(audio: bytes) -> bytes:
    return audio.replace(DLE, DLE + DLE)


@pytest.mark.parametrize(
    ("identity", "vsm", "forgets"),
    [("conexant", "1,8000,0,0", True), ("usr", "128,8000", False)],
)
def test_voice_transmit_round_trip(identity: str, vsm: str, forgets: bool) -> None:
    audio = bytes(range(256)) * 8  # 2048 bytes = 0.256 s, with eight 0x10 bytes
    with SimModem(identity, time_scale=SCALE) as sim:
        c = quiet_client(sim)
        for line in ("AT+VCID=1", "AT+FCLASS=8", f"AT+VSM={vsm}", "AT+VLS=1"):
            assert c.cmd(line) == b"\r\nOK\r\n", line
        assert c.cmd("AT+VTX", final=b"CONNECT\r\n") == b"\r\nCONNECT\r\n"
        start = time.monotonic()
        for i in range(0, len(audio), 256):  # paced at 8000 bytes/s
            c.write(_shield(audio[i : i + 256]))
            time.sleep(max(0.0, start + (i + 256) / 8000 - time.monotonic()))
        c.write(DLE + ETX)
        assert c.read_until(b"OK\r\n", timeout_s=2).endswith(b"\r\nOK\r\n")
        for line in ("ATH0", "AT+FCLASS=0"):
            assert c.cmd(line) == b"\r\nOK\r\n"
        [session] = sim.voice_sessions
        assert isinstance(session, VoiceSession)
        assert session.data == audio and session.nbytes == len(audio)
        assert session.vsm == vsm and session.completed and session.dropped == 0
        assert 6000 < session.bytes_per_s < 10000
        assert sim.vcid is (not forgets)
        assert c.cmd("AT+VCID?") == (b"\r\n0\r\n\r\nOK\r\n" if forgets else b"\r\n1\r\n\r\nOK\r\n")
        c.close()


def test_voice_underrun_and_unpaced_burst(sim: SimModem) -> None:
    c = quiet_client(sim)
    c.cmd("AT+FCLASS=8;+VLS=1")
    c.cmd("AT+VTX", final=b"CONNECT\r\n")
    assert c.read_until(DLE + b"u", timeout_s=1) == DLE + b"u"  # nothing sent: buffer empty
    c.write(b"\x80" * 24000 + DLE + ETX)  # 3 s of audio in one go: most overflows the buffer
    sent = time.monotonic()
    c.read_until(b"\r\nOK\r\n", timeout_s=3)
    assert time.monotonic() - sent > 0.5  # OK only after the (1 s) buffer played out
    [session] = sim.voice_sessions
    assert session.nbytes == 24000 and session.dropped > 10000 and session.underruns == 1
    assert session.bytes_per_s > 50000  # the test can see the client did not pace
    c.cmd("ATH0")
    c.close()


# ----------------------------------------------------------------------------- cable and faults


def test_unplug_fails_client_and_replug_reopens_link(tmp_path: object) -> None:
    link = os.path.join(str(tmp_path), "ttyCG0")
    with SimModem("conexant", link_path=link, time_scale=SCALE) as sim:
        assert sim.port == link and os.path.islink(link)
        first = os.readlink(link)
        c = quiet_client(sim)
        c.cmd("AT+VCID=1")
        sim.unplug()
        assert not os.path.lexists(link)
        with pytest.raises(serial.SerialException):
            c.s.read(1)
        c.close()
        with pytest.raises(serial.SerialException):
            serial.serial_for_url(link, exclusive=True)
        sim.replug()
        assert os.path.islink(link) and sim.port == link
        c = Client(link)
        assert c.cmd("AT") == b"AT\r\r\nOK\r\n"  # echo back on: power-on defaults
        assert sim.vcid is False
        c.close()
        assert os.readlink(link) != first or os.path.exists(first)
    assert not os.path.lexists(link)


def test_unplug_without_link_fails_write_too(sim: SimModem, client: Client) -> None:
    client.cmd("AT")
    sim.unplug()
    with pytest.raises(serial.SerialException):
        client.s.write(b"AT\r")
        client.s.read(1)
    sim.replug()
    c2 = Client(sim.port)
    assert c2.cmd("AT").endswith(b"\r\nOK\r\n")
    c2.close()


def test_unplug_releases_a_seized_call(sim: SimModem) -> None:
    c = quiet_client(sim)
    handle = sim.place_call(Call("01707354000", rings=10))
    c.read_until(b"RING\r\n")
    c.cmd("ATH1")
    sim.unplug()
    rec = handle.wait(1)
    assert rec.outcome == "seized" and rec.released_at is not None and not sim.off_hook
    c.close()


def test_client_can_close_and_reopen(sim: SimModem) -> None:
    for _ in range(3):
        c = Client(sim.port)
        with pytest.raises(serial.SerialException):
            serial.serial_for_url(sim.port, exclusive=True)  # the sim itself holds no lock
        assert c.cmd("AT").endswith(b"\r\nOK\r\n")
        c.close()


def test_hang_gives_no_reply(sim: SimModem, client: Client) -> None:
    client.cmd("ATE0")
    sim.hang()
    client.write(b"AT\r")
    assert client.silence(0.3) == b""
    assert sim.commands[-1][1] == "AT"
    rec = sim.place_call(Call("01707354000", rings=2)).wait(2)
    assert rec.rings == [] and client.silence(0.05) == b""
    sim.unhang()
    assert client.cmd("AT") == b"\r\nOK\r\n"


def test_garbage_does_not_kill_the_modem(sim: SimModem, client: Client) -> None:
    client.cmd("ATE0")
    client.write(bytes(range(256)) * 4)
    client.write(b"\x00" * 1000 + b"A" * 5000 + b"\r")  # an over-long line: ERROR
    client.write(b"\xff\xfe\r\n\r\n+++\r")
    client.silence(0.2)
    assert client.cmd("AT") == b"\r\nOK\r\n"
    assert all(len(text) <= 256 for _, text in sim.commands)


# ----------------------------------------------------------------------------- firmware, no pty


@settings(max_examples=200, deadline=None)
@given(
    chunks=st.lists(
        st.one_of(
            st.binary(max_size=64),
            st.sampled_from(
                [b"AT+FCLASS=8\r", b"AT+VLS=1\r", b"AT+VTX\r", b"\x10\x03", b"ATA\r", b"ATH\r"]
            ),
        ),
        max_size=30,
    ),
    usr=st.booleans(),
)
def test_firmware_survives_any_input(chunks: list[bytes], usr: bool) -> None:
    fw = Firmware(USR if usr else CONEXANT, time_scale=0.01)
    now = 0.0
    for chunk in chunks:
        now += 0.01
        assert isinstance(fw.receive(chunk, now), bytes)
        assert isinstance(fw.tick(now), bytes)
    fw.power_off(now + 1)
    assert fw.mode == "command" and not fw.off_hook
    # the input may have switched to numeric replies (ATV0) or quiet (ATQ1): set them back,
    # then the firmware must still answer
    fw.receive(b"\rATE0V1Q0\r", now + 1)
    assert fw.receive(b"AT\r", now + 1).endswith(b"\r\nOK\r\n")
