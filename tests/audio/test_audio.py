"""Prompts: espeak-ng rendering and its cache, the shipped fallback, and the room speaker."""

from __future__ import annotations

import logging
import os
import shutil
import stat
import sys
import time
from pathlib import Path

import pytest

from callguard.audio import prompts as prompts_module
from callguard.audio import wavconv
from callguard.audio.prompts import SHIPPED, Prompts, Voice, intro_text, shipped
from callguard.audio.speaker import RoomSpeaker
from callguard.core.numbers import from_caller_id
from callguard.texts import DEFAULT_WARNING

ESPEAK = shutil.which("espeak-ng")
needs_espeak = pytest.mark.skipif(
    ESPEAK is None, reason="espeak-ng is not installed (make test installs it where it can)"
)


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        ("P", "A call from a withheld number."),
        ("O", "A call from a number that is not available."),
        ("07700900123", "A call from an unknown mobile number."),
        ("01707354000", "A call from an unknown number in Welwyn Garden City."),
        ("0033123456789", "A call from abroad, from France."),
    ],
)
def test_intro_says_who_is_calling(raw: str, text: str) -> None:
    assert intro_text(from_caller_id(raw, "GB")) == text


def test_intro_without_place() -> None:
    caller = from_caller_id("01707354000", "GB")
    assert intro_text(caller, with_place=False) == "A call from an unknown number."


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_shipped_prompts_are_speech(name: str) -> None:
    audio = wavconv.read_wav(shipped(name))
    assert audio.seconds > (2.0 if name == "warning.wav" else 1.0)
    assert wavconv.rms(audio) > 0.02  # not silence
    if name == "warning.wav":
        assert audio.seconds < 15.0  # "short, calm, under 15 s"


@needs_espeak
def test_espeak_renders_the_warning_as_speech_and_caches_it(tmp_path: Path) -> None:
    prompts = Prompts(tmp_path, Voice())
    t0 = time.monotonic()
    first = prompts.speech(DEFAULT_WARNING)
    assert first.parent == tmp_path  # rendered, not the shipped copy
    audio = wavconv.read_wav(first)
    assert 2.0 < audio.seconds < 15.0 and wavconv.rms(audio) > 0.02
    mtime = first.stat().st_mtime_ns
    assert prompts.speech(DEFAULT_WARNING) == first and first.stat().st_mtime_ns == mtime
    assert time.monotonic() - t0 < 30
    other = Prompts(tmp_path, Voice(speed_wpm=120)).speech(DEFAULT_WARNING)
    assert other != first  # speed is part of the cache key
    assert wavconv.read_wav(other).seconds > audio.seconds  # slower is longer


def test_without_espeak_the_shipped_default_is_used(tmp_path: Path) -> None:
    prompts = Prompts(tmp_path, Voice(), espeak="")
    assert prompts.speech(DEFAULT_WARNING) == shipped("warning.wav")
    assert prompts.speech("A call from a withheld number.") == shipped("intro-withheld.wav")


def test_custom_text_without_espeak_falls_back_loudly(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    prompts = Prompts(tmp_path, Voice(text="Hello, this is Mum's phone guard."), espeak="")
    with caplog.at_level(logging.WARNING):
        audio = prompts.warning()
    assert audio.seconds > 10  # the default warning
    assert "apt install espeak-ng" in caplog.text


def test_room_wav_is_intro_then_warning_and_cached(tmp_path: Path) -> None:
    prompts = Prompts(tmp_path, Voice(say_place=False), espeak="")
    withheld = from_caller_id("P", "GB")
    path = prompts.room_wav(withheld)
    audio = wavconv.read_wav(path)
    intro = wavconv.read_wav(shipped("intro-withheld.wav")).seconds
    warning = wavconv.read_wav(shipped("warning.wav")).seconds
    assert audio.seconds == pytest.approx(intro + warning + 0.4, abs=0.1)
    assert prompts.room_wav(withheld) == path
    assert prompts.room_wav(None) != path  # no intro: a different file


def test_family_recording_replaces_the_text(tmp_path: Path) -> None:
    recording = tmp_path / "mum.wav"
    wavconv.write_wav(recording, wavconv.tone(440, 3.0, 44100))
    prompts = Prompts(tmp_path / "cache", Voice(recording=str(recording), say_who=False), espeak="")
    assert prompts.warning().seconds == pytest.approx(3.0, abs=0.01)
    # the line has its own short warning (warning.line_text), not the room's recording
    modem = prompts.modem_bytes()
    assert 3 * 8000 < len(modem) < 6 * 8000


def test_the_line_warning_is_its_own_short_text(tmp_path: Path) -> None:
    prompts = Prompts(tmp_path / "cache", Voice(), espeak="")
    room = prompts.warning().seconds
    line = len(prompts.modem_bytes()) / 8000
    assert line < 6 and room > 2 * line


def test_room_speaker_runs_the_command_without_blocking(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    script = tmp_path / "play.py"
    script.write_text(  # copy, then rename: the test never sees half a file
        "import os, shutil, sys, time; time.sleep(0.3)\n"
        "shutil.copy(sys.argv[1], sys.argv[2] + '/.partial')\n"
        "os.replace(sys.argv[2] + '/.partial', sys.argv[2] + '/played.wav')\n"
    )
    prompts = Prompts(tmp_path / "cache", Voice(say_place=False), espeak="")
    played: list[Path] = []
    speaker = RoomSpeaker(
        f"{sys.executable} {script} {{wav}} {out}", prompts, on_played=played.append
    )
    speaker.start()
    try:
        t0 = time.monotonic()
        speaker.warn(from_caller_id("P", "GB"))
        assert time.monotonic() - t0 < 0.1  # returns at once
        deadline = time.monotonic() + 10
        while not (out / "played.wav").exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        copies = list(out.glob("*.wav"))
        assert len(copies) == 1 and wavconv.read_wav(copies[0]).seconds > 2
        assert played and played[0].name.startswith("room-")
    finally:
        speaker.stop()


def test_room_speaker_reports_a_missing_player(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    prompts = Prompts(tmp_path, Voice(say_place=False), espeak="")
    speaker = RoomSpeaker("no-such-player-xyz {wav}", prompts)
    speaker.start()
    try:
        with caplog.at_level(logging.ERROR):
            speaker.warn(None)
            deadline = time.monotonic() + 10
            while "not found" not in caplog.text and time.monotonic() < deadline:
                time.sleep(0.02)
        assert "no-such-player-xyz" in caplog.text and "warning.room_command" in caplog.text
    finally:
        speaker.stop()


def test_empty_room_command_turns_the_speaker_off(tmp_path: Path) -> None:
    speaker = RoomSpeaker("", Prompts(tmp_path, Voice(), espeak=""))
    assert not speaker.enabled
    speaker.warn(None)  # a no-op, not an error


def test_a_recording_the_service_cannot_read_falls_back_to_the_text(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    prompts = Prompts(tmp_path, Voice(recording=str(tmp_path / "gone.wav")), espeak="")
    with caplog.at_level(logging.ERROR):
        audio = prompts.warning()
    assert audio.seconds > 10  # the spoken (shipped) warning, not silence
    assert "warning.recording cannot be used" in caplog.text and "/etc/callguard" in caplog.text


@pytest.mark.parametrize("espeak", [None, "/bin/false"])
def test_a_full_card_still_warns_with_the_shipped_audio(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, espeak: str | None
) -> None:
    """Disk full: nothing can be cached, so the shipped warning is played, never silence."""

    def full(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(wavconv, "write_wav", full)
    monkeypatch.setattr(Path, "mkdir", full)
    monkeypatch.setattr("tempfile.NamedTemporaryFile", full)
    prompts = Prompts(tmp_path / "cache", Voice(), espeak=espeak or "")
    caller = from_caller_id("01707354000", "GB")
    path = prompts.room_wav(caller)
    assert path == shipped("warning.wav") and wavconv.read_wav(path).seconds > 5
    assert prompts.room_wav(caller, strong=True) == shipped("claim-warning.wav")


def fake_espeak(tmp_path: Path, output: bytes) -> str:
    """An espeak-ng that writes ``output`` where ``-w`` says, as the real one writes a WAV."""
    made = tmp_path / "espeak-output"
    made.write_bytes(output)
    script = tmp_path / "espeak-ng"
    script.write_text(
        f"#!{sys.executable}\n"
        "import shutil, sys\n"
        f"shutil.copyfile({str(made)!r}, sys.argv[sys.argv.index('-w') + 1])\n"
    )
    script.chmod(0o755)
    return str(script)


def a_wav(tmp_path: Path) -> bytes:
    wav = tmp_path / "tone.wav"
    wavconv.write_wav(wav, wavconv.tone(440, 1.0, 16000))
    return wav.read_bytes()


def test_a_rendering_is_fsynced_and_renamed_into_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A power cut must not leave half a rendering that later plays as noise or silence."""
    rendered = a_wav(tmp_path)
    synced: list[os.stat_result] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append(os.fstat(fd))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    cache = tmp_path / "cache"
    path = Prompts(cache, Voice(), espeak=fake_espeak(tmp_path, rendered)).speech("Hello.")
    assert path.parent == cache and path.read_bytes() == rendered
    kept = path.stat()
    assert any((st.st_dev, st.st_ino) == (kept.st_dev, kept.st_ino) for st in synced)
    folder = cache.stat()
    assert any(
        stat.S_ISDIR(st.st_mode) and (st.st_dev, st.st_ino) == (folder.st_dev, folder.st_ino)
        for st in synced
    )  # the rename itself is on the card
    assert sorted(p.name for p in cache.iterdir()) == [path.name]  # no scratch file left


def test_a_rendering_that_is_not_a_wav_is_not_kept(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cache = tmp_path / "cache"
    prompts = Prompts(cache, Voice(), espeak=fake_espeak(tmp_path, b"RIFF\0\0\0\0junk"))
    with caplog.at_level(logging.ERROR):
        assert prompts.speech(DEFAULT_WARNING) == shipped("warning.wav")
    assert "espeak-ng could not speak" in caplog.text
    assert list(cache.iterdir()) == []


def test_a_card_that_fills_while_keeping_a_rendering_falls_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(prompts_module, "write_atomically", full)
    cache = tmp_path / "cache"
    prompts = Prompts(cache, Voice(), espeak=fake_espeak(tmp_path, a_wav(tmp_path)))
    assert prompts.speech(DEFAULT_WARNING) == shipped("warning.wav")
    assert list(cache.iterdir()) == []  # the scratch rendering is gone too
