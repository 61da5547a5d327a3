"""Voice playback logic against a scripted transport, with an injected clock (no threads)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest

from callguard.modem import profiles
from callguard.modem.protocol import DLE_ETX, Connect, DleCode, DleMeaning, Error, Event, Ok
from callguard.modem.transport import CommandTimeout, ModemUnavailable, Reply
from callguard.modem.voice import SAMPLE_RATE_HZ, VoiceError, VoicePlayer


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class ScriptedTransport:
    """Answers commands from a table; records everything written."""

    def __init__(
        self, clock: FakeClock, profile: profiles.ModemProfile = profiles.CONEXANT
    ) -> None:
        self.profile = profile
        self.clock = clock
        self.sent: list[str] = []
        self.audio = bytearray()
        self.write_times: list[float] = []
        self.answers: dict[str, Event | None] = {"AT+VTX": Connect()}
        self.listeners: list = []
        self.fail_write_after: int | None = None
        self.on_hook_calls = 0
        self.after_calls = 0
        self.events_during_write: list[Event] = []

    @contextlib.contextmanager
    def session(self) -> Iterator[ScriptedTransport]:
        yield self

    def add_listener(self, fn) -> None:  # type: ignore[no-untyped-def]
        self.listeners.append(fn)

    def remove_listener(self, fn) -> None:  # type: ignore[no-untyped-def]
        self.listeners.remove(fn)

    def command(self, command: str, timeout_s: float | None = None) -> Reply:
        self.sent.append(command)
        final = self.answers.get(command, Ok())
        if final is None:
            raise CommandTimeout(command)
        return Reply(command, final=final)

    def write_then_wait(self, data: bytes, label: str, timeout_s: float | None = None) -> Reply:
        self.sent.append(label)
        final = self.answers.get(label, Ok())
        if final is None:
            raise CommandTimeout(label)
        return Reply(label, final=final)

    def write_raw(self, data: bytes) -> None:
        if self.fail_write_after is not None and len(self.audio) >= self.fail_write_after:
            raise ModemUnavailable("unplugged")
        assert DLE_ETX not in data.replace(b"\x10\x10", b"")
        self.audio += data
        self.write_times.append(self.clock.now)
        for event in self.events_during_write:
            for fn in list(self.listeners):
                fn(event)

    def on_hook(self, attempts: int = 3) -> bool:
        self.on_hook_calls += 1
        self.sent.append("ATH0")
        return True

    def after_call(self) -> None:
        self.after_calls += 1
        self.sent.append("after_call")


def make(
    profile: profiles.ModemProfile = profiles.CONEXANT,
) -> tuple[VoicePlayer, ScriptedTransport, FakeClock]:
    clock = FakeClock()
    transport = ScriptedTransport(clock, profile)
    return VoicePlayer(transport, clock=clock, sleep=clock.sleep), transport, clock  # type: ignore[arg-type]


def test_full_sequence_in_order() -> None:
    player, t, _ = make()
    result = player.play(bytes([0x80]) * 800)
    assert t.sent == [
        "AT+FCLASS=8",
        "AT+VSM=1,8000,0,0",
        "AT+VLS=1",
        "AT+VTX",
        "<DLE><ETX>",
        "ATH0",
        "after_call",
    ]
    assert result.completed and result.on_hook and result.bytes_sent == 800


def test_usr_format() -> None:
    player, t, _ = make(profiles.USR5637)
    player.play(b"\x80" * 10)
    assert "AT+VSM=128,8000" in t.sent


def test_format_falls_back_until_accepted() -> None:
    player, t, _ = make(profiles.GENERIC)
    t.answers["AT+VSM=1,8000,0,0"] = Error()
    player.play(b"\x80" * 10)
    assert t.sent[1:3] == ["AT+VSM=1,8000,0,0", "AT+VSM=128,8000"]


def test_audio_is_shielded_and_paced_at_real_time() -> None:
    player, t, clock = make()
    audio = bytes(range(256)) * 125  # 32,000 bytes = 4 s, with 0x10 bytes in it
    start = clock.now
    player.play(audio)
    assert t.audio.replace(b"\x10\x10", b"\x10") == audio
    assert t.audio.count(b"\x10") == 2 * audio.count(b"\x10")
    # never more than the lead ahead of real time
    for when, chunk_start in zip(t.write_times, range(0, len(audio), 400), strict=True):
        assert when >= start + chunk_start / SAMPLE_RATE_HZ - 0.25 - 1e-9
    elapsed = t.write_times[-1] - start
    assert 3.4 < elapsed < 4.0


def test_refused_vtx_still_goes_on_hook() -> None:
    player, t, _ = make()
    t.answers["AT+VTX"] = Error()
    with pytest.raises(VoiceError, match=r"AT\+VTX"):
        player.play(b"\x80" * 100)
    assert t.on_hook_calls == 1 and t.sent[-2:] == ["ATH0", "after_call"]
    assert "<DLE><ETX>" not in t.sent  # never entered transmit


def test_unplug_mid_playback_ends_transmission_and_goes_on_hook() -> None:
    player, t, _ = make()
    t.fail_write_after = 1200
    with pytest.raises(ModemUnavailable):
        player.play(b"\x80" * 8000)
    assert "<DLE><ETX>" in t.sent
    assert t.on_hook_calls == 1


def test_timeout_waiting_for_etx_reply_repeats_then_goes_on_hook() -> None:
    player, t, _ = make()
    t.answers["<DLE><ETX>"] = None  # never answered
    result = player.play(b"\x80" * 100)
    assert t.sent.count("<DLE><ETX>") >= profiles.CONEXANT.etx_repeats
    assert t.on_hook_calls == 1 and result.on_hook


def test_caller_hanging_up_stops_the_audio() -> None:
    player, t, _ = make()
    t.events_during_write = [DleCode("b", DleMeaning.BUSY)]
    result = player.play(b"\x80" * 8000)
    assert result.bytes_sent == 400 and not result.completed
    assert t.on_hook_calls == 1


def test_underruns_are_counted() -> None:
    player, t, _ = make()
    t.events_during_write = [DleCode("u", DleMeaning.TX_UNDERRUN)]
    result = player.play(b"\x80" * 800)
    assert result.underruns == 2
