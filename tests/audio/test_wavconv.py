"""wavconv: WAV reading and writing, band-limited resampling, 8 kHz 8-bit bytes for the modem."""

from __future__ import annotations

import array
import math
import os
import random
import struct
import wave
from collections.abc import Callable
from pathlib import Path

import pytest

from callguard.audio import wavconv
from callguard.audio.wavconv import (
    Audio,
    AudioFormatError,
    concat,
    dominant_frequency,
    peak,
    read_wav,
    resample,
    rms,
    to_modem_bytes,
    tone,
    write_wav,
)
from callguard.errors import UsageError

PCM, FLOAT, MULAW, ADPCM, MP3, EXTENSIBLE = 1, 3, 7, 2, 0x55, 0xFFFE
GUID_TAIL = bytes.fromhex("000010008000" + "00aa00389b71")


# -- helpers: WAV files built without wavconv --------------------------------------------------


def fmt_chunk(code: int, channels: int, rate_hz: int, bits: int) -> bytes:
    align = channels * ((bits + 7) // 8)
    return struct.pack("<HHIIHH", code, channels, rate_hz, rate_hz * align, align, bits)


def extensible_fmt(subformat: int, channels: int, rate_hz: int, bits: int) -> bytes:
    head = fmt_chunk(EXTENSIBLE, channels, rate_hz, bits)
    mask = (1 << channels) - 1
    return head + struct.pack("<HHI", 22, bits, mask) + struct.pack("<I", subformat) + GUID_TAIL


def chunk(chunk_id: bytes, body: bytes, *, size: int | None = None, pad: bool = True) -> bytes:
    header = struct.pack("<4sI", chunk_id, len(body) if size is None else size)
    return header + body + (b"\0" if pad and len(body) % 2 else b"")


def riff(*chunks: bytes) -> bytes:
    body = b"WAVE" + b"".join(chunks)
    return struct.pack("<4sI", b"RIFF", len(body)) + body


def pcm16(values: list[float]) -> bytes:
    return struct.pack(f"<{len(values)}h", *(round(v * 32767) for v in values))


def write_with_wave(path: Path, frames: bytes, *, channels: int, width: int, rate_hz: int) -> Path:
    """A WAV written by the standard library's own writer."""
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate_hz)
        w.writeframes(frames)
    return path


def from_modem(data: bytes) -> Audio:
    """The modem's bytes back as floats: (byte - 128) / 127."""
    return Audio(8000, array.array("f", [(b - 128) / 127 for b in data]))


def db(level: float, reference: float) -> float:
    return 20 * math.log10(level / reference)


def middle(audio: Audio, fraction: float = 0.1) -> Audio:
    """``audio`` without its first and last ``fraction`` (where the filter meets the padding)."""
    n = len(audio.samples)
    cut = int(n * fraction)
    return Audio(audio.rate_hz, audio.samples[cut : n - cut])


WavFile = Callable[..., Path]


@pytest.fixture
def wav_file(tmp_path: Path) -> WavFile:
    """Writes bytes to a file (``warning.wav`` unless named) and gives its path."""

    def make(content: bytes, name: str = "warning.wav") -> Path:
        path = tmp_path / name
        path.write_bytes(content)
        return path

    return make


# -- the issue: a 1 kHz tone survives the trip to the modem ------------------------------------


@pytest.mark.parametrize("rate_hz", [44100, 22050, 16000, 48000, 11025, 8000])
def test_1khz_tone_keeps_frequency_and_level_on_the_line(tmp_path: Path, rate_hz: int) -> None:
    original = tone(1000, 1.0, rate_hz, amplitude=0.5)
    path = tmp_path / f"tone-{rate_hz}.wav"
    write_wav(path, original)  # 16-bit
    line = from_modem(to_modem_bytes(read_wav(path)))
    assert dominant_frequency(line) == pytest.approx(1000, rel=0.01)
    assert abs(db(rms(line), rms(original))) < 0.5
    assert abs(len(line.samples) - 8000) <= 1


def test_6khz_at_44100_is_at_least_30_db_down_not_folded_to_2khz() -> None:
    original = tone(6000, 1.0, 44100, amplitude=0.5)
    out = resample(original, 8000)
    assert db(rms(out), rms(original)) < -30
    # What a filterless resampler would have produced: a loud 2 kHz tone.
    naive = Audio(8000, array.array("f", original.samples[:: 44100 // 8000]))
    assert db(rms(naive), rms(original)) > -3


@pytest.mark.parametrize(
    ("rate_hz", "freq_hz"),
    [
        *[(44100, 4200), (44100, 5000), (44100, 9000), (44100, 20000)],
        *[(22050, 7000), (48000, 12000), (16000, 4400), (16000, 7500), (11025, 5000)],
    ],
)
def test_everything_above_4khz_is_at_least_55_db_down(rate_hz: int, freq_hz: int) -> None:
    original = tone(freq_hz, 0.5, rate_hz, amplitude=0.9)
    assert db(rms(middle(resample(original, 8000))), rms(original)) < -55


@pytest.mark.parametrize("freq_hz", [100, 300, 1000, 2000, 3000, 3200])
def test_the_pass_band_is_flat(freq_hz: int) -> None:
    original = tone(freq_hz, 0.5, 44100, amplitude=0.5)
    assert abs(db(rms(middle(resample(original, 8000))), rms(original))) < 0.05


@pytest.mark.parametrize(
    ("in_hz", "out_hz"),
    [
        *[(44100, 8000), (22050, 8000), (11025, 8000), (48000, 8000), (16000, 8000)],
        *[(96000, 8000), (8000, 22050), (8000, 44100), (8000, 48000), (22050, 44100)],
        (44100, 48000),
        *[(44101, 8000), (7999, 22050)],  # too many phases for a table: positions are rounded
    ],
)
def test_a_resampled_tone_is_the_same_tone_at_the_new_rate(in_hz: int, out_hz: int) -> None:
    """In level, in frequency and in time (no delay), to -60 dB, both ways and odd ratios."""
    out = resample(tone(1000, 0.25, in_hz), out_hz)
    ideal = tone(1000, 0.25, out_hz)
    assert out.rate_hz == out_hz
    assert abs(len(out.samples) - len(ideal.samples)) <= 1  # 0.25 s may be a half sample
    error = array.array("f", map(float.__sub__, out.samples, ideal.samples))  # the shorter
    assert db(rms(middle(Audio(out_hz, error))), rms(ideal)) < -60


def test_same_rate_returns_the_input_unchanged() -> None:
    audio = tone(1000, 0.1, 8000)
    assert resample(audio, 8000) is audio


@pytest.mark.parametrize("n_in", [0, 1, 2, 5, 441, 1000, 44099])
def test_resampled_length_is_the_duration_at_the_new_rate(n_in: int) -> None:
    audio = Audio(44100, array.array("f", bytes(4 * n_in)))
    assert len(resample(audio, 8000).samples) == round(n_in * 8000 / 44100)


def test_resample_refuses_a_nonsense_rate() -> None:
    with pytest.raises(ValueError, match="rate_hz"):
        resample(tone(1000, 0.1, 8000), 0)


# -- bytes for the modem -----------------------------------------------------------------------


@pytest.mark.parametrize("rate_hz", [8000, 22050, 44100])
def test_silence_stays_0x80(rate_hz: int) -> None:
    silence = Audio(rate_hz, array.array("f", bytes(4 * rate_hz // 10)))
    assert set(to_modem_bytes(silence)) == {0x80}


def test_modem_bytes_are_round_x_times_127_plus_128_clipped() -> None:
    values = [0.0, 1.0, -1.0, 0.5, -0.5, 1.5, -1.5, 0.004, -0.004]
    audio = Audio(8000, array.array("f", values))
    assert list(to_modem_bytes(audio)) == [128, 255, 1, 192, 64, 255, 0, 129, 127]


def test_a_full_scale_square_wave_clips_instead_of_wrapping() -> None:
    """Resampling overshoots at the edges (Gibbs); the bytes clip at 0 and 255, never wrap."""
    square = [1.0 if (k // 50) % 2 else -1.0 for k in range(44100 // 2)]
    data = to_modem_bytes(Audio(44100, array.array("f", square)))
    assert max(data) == 255
    assert min(data) <= 2
    assert sum(b < 64 for b in data) == pytest.approx(len(data) / 2, rel=0.1)


@pytest.mark.parametrize("rate_hz", [8000, 11025, 16000, 22050, 44100, 48000, 96000])
@pytest.mark.parametrize("seconds", [0.1, 0.123457, 1.0])
def test_modem_length_is_the_duration_at_8khz(rate_hz: int, seconds: float) -> None:
    audio = tone(440, seconds, rate_hz)
    assert abs(len(to_modem_bytes(audio)) - round(audio.seconds * 8000)) <= 1


# -- writing and reading back ------------------------------------------------------------------


def sample_signal() -> Audio:
    values = [0.0, 1.0, -1.0, 0.5, -0.5, 1 / 3, -1e-6, 0.999999]
    return Audio(16000, array.array("f", values + list(tone(1234, 0.05, 16000).samples)))


@pytest.mark.parametrize("width", [1, 2, 3, 4])
def test_write_then_read_round_trips(tmp_path: Path, width: int) -> None:
    audio = sample_signal()
    path = tmp_path / "out.wav"
    write_wav(path, audio, sample_width=width)
    back = read_wav(path)
    assert back.rate_hz == 16000
    step = 1 / ((1 << (8 * width - 1)) - 1)
    tolerance = step / 2 + 1e-7
    assert max(map(abs, map(float.__sub__, back.samples, audio.samples))) <= tolerance
    write_wav(tmp_path / "again.wav", back, sample_width=width)
    if width < 4:  # float32 cannot hold every 32-bit code
        assert (tmp_path / "again.wav").read_bytes() == path.read_bytes()


@pytest.mark.parametrize("width", [1, 2, 3, 4])
def test_written_files_read_with_the_standard_library(tmp_path: Path, width: int) -> None:
    audio = tone(1000, 0.1, 22050)
    path = tmp_path / "out.wav"
    write_wav(path, audio, sample_width=width)
    with wave.open(str(path), "rb") as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, width, 22050)
        assert w.getnframes() == len(audio.samples)


def test_an_8bit_wav_holds_exactly_the_modem_bytes(tmp_path: Path) -> None:
    audio = tone(1000, 0.1, 8000, amplitude=0.8)
    write_wav(tmp_path / "line.wav", audio, sample_width=1)
    with wave.open(str(tmp_path / "line.wav"), "rb") as w:
        assert w.readframes(w.getnframes()) == to_modem_bytes(audio)


def test_an_odd_length_8bit_wav_is_padded_and_reads_back(tmp_path: Path) -> None:
    audio = Audio(8000, array.array("f", [0.5, -0.5, 0.25]))
    write_wav(tmp_path / "odd.wav", audio, sample_width=1)
    assert len((tmp_path / "odd.wav").read_bytes()) == 44 + 4
    assert len(read_wav(tmp_path / "odd.wav").samples) == 3


@pytest.mark.parametrize("width", [1, 2, 3, 4])
def test_reads_pcm_written_by_the_standard_library(tmp_path: Path, width: int) -> None:
    full_scale = (1 << (8 * width - 1)) - 1
    codes = [0, full_scale, -full_scale, full_scale // 2]
    if width == 1:
        frames = bytes(c + 128 for c in codes)
    else:
        frames = b"".join(c.to_bytes(width, "little", signed=True) for c in codes)
    path = write_with_wave(tmp_path / "in.wav", frames, channels=1, width=width, rate_hz=11025)
    audio = read_wav(path)
    assert audio.rate_hz == 11025
    assert list(audio.samples) == pytest.approx([0.0, 1.0, -1.0, 0.5], abs=0.5 / full_scale)


def test_the_code_beyond_full_scale_reads_as_minus_one(tmp_path: Path) -> None:
    path = write_with_wave(tmp_path / "in.wav", b"\x00\x80", channels=1, width=2, rate_hz=8000)
    assert list(read_wav(path).samples) == [-1.0]


def test_stereo_is_mixed_down_by_averaging(tmp_path: Path) -> None:
    left = tone(1000, 0.2, 44100, amplitude=0.8)
    frames = b"".join(struct.pack("<hh", round(v * 32767), 0) for v in left.samples)
    path = write_with_wave(tmp_path / "stereo.wav", frames, channels=2, width=2, rate_hz=44100)
    mono = read_wav(path)
    assert len(mono.samples) == len(left.samples)
    assert peak(mono) == pytest.approx(peak(left) / 2, abs=1e-4)
    assert rms(mono) == pytest.approx(rms(left) / 2, rel=1e-4)


def test_extensible_24bit_six_channels(wav_file: WavFile) -> None:
    """What sox writes for 24-bit or more than 2 channels: WAVE_FORMAT_EXTENSIBLE."""
    frame = b"".join(struct.pack("<i", c << 8)[1:] for c in (6000000, 0, 0, 0, 0, 0))
    data = frame + bytes(18)
    path = wav_file(riff(chunk(b"fmt ", extensible_fmt(PCM, 6, 48000, 24)), chunk(b"data", data)))
    audio = read_wav(path)
    assert audio.rate_hz == 48000
    assert list(audio.samples) == pytest.approx([6000000 / 8388607 / 6, 0.0], abs=1e-7)


@pytest.mark.parametrize(("bits", "code"), [(32, "f"), (64, "d")])
def test_float_wavs(wav_file: WavFile, bits: int, code: str) -> None:
    values = [0.0, 0.25, -0.5, 1.0, -1.0, 2.0, -3.0]
    data = array.array(code, values).tobytes()
    for fmt in (fmt_chunk(FLOAT, 1, 22050, bits), extensible_fmt(FLOAT, 1, 22050, bits)):
        audio = read_wav(wav_file(riff(chunk(b"fmt ", fmt), chunk(b"data", data))))
        assert list(audio.samples) == [0.0, 0.25, -0.5, 1.0, -1.0, 1.0, -1.0]  # clipped


def test_a_float_wav_with_nan_is_refused(wav_file: WavFile) -> None:
    data = array.array("f", [0.0, math.nan]).tobytes()
    path = wav_file(riff(chunk(b"fmt ", fmt_chunk(FLOAT, 1, 8000, 32)), chunk(b"data", data)))
    with pytest.raises(AudioFormatError, match="NaN"):
        read_wav(path)


def test_chunks_in_any_order_with_extras_and_odd_sizes(wav_file: WavFile) -> None:
    data = pcm16([0.5, -0.5])
    path = wav_file(
        riff(
            chunk(b"LIST", b"INFOodd"),  # odd size, padded
            chunk(b"data", data),
            chunk(b"JUNK", b"abc", pad=False),  # odd size, pad byte forgotten
            chunk(b"fmt ", fmt_chunk(PCM, 1, 16000, 16)),
        )
    )
    assert list(read_wav(path).samples) == pytest.approx([0.5, -0.5], abs=1e-4)


def test_a_streamed_wav_without_its_length_reads_to_the_end(
    wav_file: WavFile,
) -> None:
    """espeak-ng --stdout leaves 0x7FFFF000 as the data length."""
    body = chunk(b"fmt ", fmt_chunk(PCM, 1, 22050, 16)) + chunk(b"data", pcm16([0.5] * 5 + [0.0]))
    streamed = body[:-16] + struct.pack("<I", 0x7FFFF000) + body[-12:] + b"\x01"  # half a frame
    audio = read_wav(wav_file(b"RIFF" + struct.pack("<I", 0x7FFFF024) + b"WAVE" + streamed))
    assert len(audio.samples) == 6


def test_a_damaged_chunk_after_the_audio_is_ignored(wav_file: WavFile) -> None:
    good = riff(chunk(b"fmt ", fmt_chunk(PCM, 1, 8000, 16)), chunk(b"data", pcm16([0.25])))
    path = wav_file(good + chunk(b"LIST", b"INFO", size=1000))
    assert len(read_wav(path).samples) == 1


def test_read_wav_accepts_str_and_pathlike(tmp_path: Path) -> None:
    write_wav(tmp_path / "a.wav", tone(500, 0.01, 8000))
    assert read_wav(str(tmp_path / "a.wav")) == read_wav(tmp_path / "a.wav")


# -- files that are refused ----------------------------------------------------------------------

FMT16 = chunk(b"fmt ", fmt_chunk(PCM, 1, 16000, 16))
GOOD = riff(FMT16, chunk(b"data", pcm16([0.1] * 100)))
BAD_FILES = {
    "empty": (b"", "empty"),
    "random bytes": (random.Random(7).randbytes(3000), "not a WAV"),
    "RIFF header cut short": (GOOD[:20], "cut short"),
    "RIFF and nothing else": (b"RIFF\x10\x00", "cut short"),
    "audio cut short": (GOOD[:120], "cut short"),
    "0 frames": (riff(FMT16, chunk(b"data", b"")), "no audio"),
    "half a frame": (riff(FMT16, chunk(b"data", b"\x01")), "no audio"),
    "no data chunk": (riff(FMT16), "no audio"),
    "no fmt chunk": (riff(chunk(b"data", pcm16([0.1]))), "no 'fmt '"),
    "fmt too short": (riff(chunk(b"fmt ", b"\x01\x00"), chunk(b"data", b"\0\0")), "damaged"),
    "mu-law": (
        riff(chunk(b"fmt ", fmt_chunk(MULAW, 1, 8000, 8)), chunk(b"data", b"\xff")),
        "mu-law",
    ),
    "ADPCM": (riff(chunk(b"fmt ", fmt_chunk(ADPCM, 1, 8000, 4)), chunk(b"data", b"\0")), "ADPCM"),
    "MP3 in a WAV": (
        riff(chunk(b"fmt ", fmt_chunk(MP3, 2, 44100, 0)), chunk(b"data", b"\0")),
        "MP3",
    ),
    "extensible, unknown GUID": (
        riff(
            chunk(b"fmt ", extensible_fmt(PCM, 1, 8000, 16)[:-1] + b"\0"), chunk(b"data", b"\0\0")
        ),
        "unknown encoding",
    ),
    "12 channels": (riff(chunk(b"fmt ", fmt_chunk(PCM, 12, 8000, 16)), chunk(b"data", b"")), "12"),
    "2000 Hz": (riff(chunk(b"fmt ", fmt_chunk(PCM, 1, 2000, 16)), chunk(b"data", b"\0\0")), "2000"),
    "40-bit PCM": (
        riff(chunk(b"fmt ", fmt_chunk(PCM, 1, 8000, 40)), chunk(b"data", b"\0" * 5)),
        "40",
    ),
    "16-bit float": (
        riff(chunk(b"fmt ", fmt_chunk(FLOAT, 1, 8000, 16)), chunk(b"data", b"")),
        "16",
    ),
    "wrong block align": (
        riff(
            chunk(b"fmt ", fmt_chunk(PCM, 1, 8000, 16)[:12] + b"\x03\x00\x10\x00"),
            chunk(b"data", b"\0" * 6),
        ),
        "bytes per frame",
    ),
    "an MP3 renamed": (b"ID3\x04\x00" + bytes(200), "MP3"),
    "a FLAC renamed": (b"fLaC" + bytes(200), "FLAC"),
    "RIFX (big-endian)": (b"RIFX" + bytes(200), "big-endian"),
    "RIFF but AVI": (b"RIFF\x00\x01\x00\x00AVI " + bytes(200), "no WAVE"),
}


@pytest.mark.parametrize("case", BAD_FILES, ids=list(BAD_FILES))
def test_bad_files_are_refused_naming_the_file_and_the_fix(wav_file: WavFile, case: str) -> None:
    content, problem = BAD_FILES[case]
    path = wav_file(content, "grandma's warning.wav")
    with pytest.raises(AudioFormatError) as exc:
        read_wav(path)
    message = str(exc.value)
    assert isinstance(exc.value, UsageError)
    assert str(path) in message
    assert problem in message
    assert "sox " in message or "again" in message


def test_the_fix_is_a_command_that_can_be_pasted(wav_file: WavFile) -> None:
    path = wav_file(BAD_FILES["mu-law"][0], "grandma's warning.wav")
    with pytest.raises(AudioFormatError) as exc:
        read_wav(path)
    fixed = path.with_name("grandma's warning-fixed.wav")
    assert f"sox '{path.parent}/grandma'\"'\"'s warning.wav' -e signed-integer -b 16" in str(
        exc.value
    )
    assert str(fixed).replace("'", "'\"'\"'") in str(exc.value)


def test_missing_unreadable_and_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(AudioFormatError, match="no such file"):
        read_wav(tmp_path / "missing.wav")
    with pytest.raises(AudioFormatError, match="is a folder"):
        read_wav(tmp_path)

    locked = tmp_path / "locked.wav"
    locked.write_bytes(b"RIFF")
    real_open = os.open

    def refuse(path: str, *args: int) -> int:
        if str(path) == str(locked):
            raise PermissionError(13, "Permission denied")
        return real_open(path, *args)

    monkeypatch.setattr(os, "open", refuse)
    with pytest.raises(AudioFormatError, match=r"cannot be opened \(Permission denied\)"):
        read_wav(locked)


def test_a_device_or_a_pipe_is_refused_without_reading_it(tmp_path: Path) -> None:
    with pytest.raises(AudioFormatError, match="character device, not an ordinary file"):
        read_wav("/dev/zero")  # would otherwise be read until memory ran out
    fifo = tmp_path / "warning.wav"
    os.mkfifo(fifo)
    with pytest.raises(AudioFormatError, match="pipe"):
        read_wav(fifo)  # would otherwise wait for a writer for ever


def test_a_huge_file_is_refused_before_it_is_read(
    wav_file: WavFile, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(wavconv, "MAX_FILE_BYTES", 100)
    with pytest.raises(AudioFormatError, match="trim it"):
        read_wav(wav_file(GOOD))


# -- writing safely ----------------------------------------------------------------------------


def test_write_replaces_and_leaves_no_temp_files(tmp_path: Path) -> None:
    path = tmp_path / "room.wav"
    write_wav(path, tone(1000, 0.1, 8000))
    write_wav(path, tone(500, 0.2, 8000))
    assert os.listdir(tmp_path) == ["room.wav"]
    assert read_wav(path).seconds == pytest.approx(0.2)


def test_a_failed_write_keeps_the_old_file_and_cleans_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "room.wav"
    write_wav(path, tone(1000, 0.1, 8000))
    before = path.read_bytes()

    def power_cut(src: object, dst: object) -> None:
        raise OSError("power cut")

    monkeypatch.setattr(os, "replace", power_cut)
    with pytest.raises(OSError, match="power cut"):
        write_wav(path, tone(500, 0.2, 8000))
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["room.wav"]


def test_write_refuses_an_unknown_sample_width(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="sample_width"):
        write_wav(tmp_path / "x.wav", tone(1000, 0.1, 8000), sample_width=5)
    assert not os.listdir(tmp_path)


# -- concat, measuring, the Audio type ---------------------------------------------------------


def test_concat_with_a_gap_of_silence() -> None:
    a, b = tone(1000, 0.5, 8000), tone(500, 0.25, 8000)
    joined = concat(a, b, gap_s=0.4)
    assert joined.rate_hz == 8000
    assert len(joined.samples) == 4000 + 3200 + 2000
    assert joined.samples[:4000] == a.samples
    assert set(joined.samples[4000:7200]) == {0.0}
    assert joined.samples[7200:] == b.samples


def test_concat_resamples_to_the_highest_rate() -> None:
    joined = concat(tone(1000, 0.5, 8000), tone(1000, 0.5, 22050), gap_s=0.1)
    assert joined.rate_hz == 22050
    assert len(joined.samples) == 11025 + 2205 + 11025
    first = Audio(22050, joined.samples[:11025])
    assert dominant_frequency(first) == pytest.approx(1000, rel=0.001)


def test_concat_needs_parts_and_a_sensible_gap() -> None:
    with pytest.raises(ValueError, match="at least one"):
        concat()
    with pytest.raises(ValueError, match="gap_s"):
        concat(tone(1000, 0.1, 8000), gap_s=-1)
    assert concat(tone(1000, 0.1, 8000)) == tone(1000, 0.1, 8000)


@pytest.mark.parametrize("rate_hz", [8000, 22050, 44100])
@pytest.mark.parametrize("freq_hz", [60.0, 300.0, 1000.0, 3333.3])
def test_dominant_frequency_of_a_clean_tone(rate_hz: int, freq_hz: float) -> None:
    assert dominant_frequency(tone(freq_hz, 0.5, rate_hz)) == pytest.approx(freq_hz, rel=0.001)


def test_dominant_frequency_ignores_dc_and_noise_near_zero() -> None:
    noisy = random.Random(1)
    values = [0.2 + v + noisy.uniform(-0.01, 0.01) for v in tone(440, 0.5, 16000).samples]
    assert dominant_frequency(Audio(16000, array.array("f", values))) == pytest.approx(
        440, rel=0.01
    )


def test_dominant_frequency_of_silence_is_zero() -> None:
    assert dominant_frequency(Audio(8000, array.array("f", bytes(4000)))) == 0.0
    assert dominant_frequency(Audio(8000, array.array("f"))) == 0.0


def test_levels() -> None:
    sine = tone(1000, 1.0, 8000, amplitude=0.5)
    assert rms(sine) == pytest.approx(0.5 / math.sqrt(2), rel=1e-4)
    assert peak(sine) == pytest.approx(0.5, rel=1e-4)
    assert peak(Audio(8000, array.array("f", [0.1, -0.7]))) == pytest.approx(0.7)
    empty = Audio(8000, array.array("f"))
    assert (rms(empty), peak(empty), empty.seconds) == (0.0, 0.0, 0.0)
    assert tone(1000, 1.5, 8000).seconds == 1.5


def test_audio_checks_its_fields() -> None:
    with pytest.raises(ValueError, match="rate_hz"):
        Audio(0, array.array("f"))
    with pytest.raises(TypeError, match="array"):
        Audio(8000, array.array("d"))
    with pytest.raises(ValueError, match="amplitude"):
        tone(1000, 1.0, 8000, amplitude=2.0)
