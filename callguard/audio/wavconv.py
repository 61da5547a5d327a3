"""WAV files in, 8 kHz 8-bit unsigned audio for the voice modem out: pure standard library.

Theory of operation
-------------------
:class:`Audio` is mono float samples in [-1.0, 1.0] (``array('f')``) at a sample rate.

Reading. :func:`read_wav` walks the RIFF chunks itself with :mod:`struct` (the :mod:`wave`
module refuses 32-bit float and WAVE_FORMAT_EXTENSIBLE files, which sox and Audacity write for
24-bit and multichannel audio). It takes PCM of 8 (unsigned) to 32 bits and 32/64-bit IEEE float,
1 to 8 channels averaged to mono, 4000 to 192000 Hz. Everything else (mu-law, ADPCM, MP3 in a
WAV, a truncated or empty file, not a WAV at all) is refused with an :class:`AudioFormatError`
naming the file, what is wrong, and a sox command that fixes it. A data chunk whose length is one
of the placeholders streaming writers leave (``espeak-ng --stdout``: 0x7FFFF000) runs to the end
of the file; any other data chunk longer than the file is a truncated copy and is refused.

Scaling. An n-bit code c is c / (2**(n-1) - 1), the same rule both ways, so writing and reading
back is exact for 8, 16 and 24 bits, and 8-bit output is the modem's round(x * 127) + 128. The
one code beyond full scale (-2**(n-1)) reads as -1.0.

Resampling. :func:`resample` is a polyphase windowed-sinc filter. Output sample n falls at input
position n * in / out = i + p / L, where L = out / gcd(in, out). The L phases p each get a table
of T coefficients: a sinc with its cutoff at 0.45 x the lower of the two rates, 16 zero
crossings each side, under a Kaiser window (beta 5.65, about 60 dB of stop band), normalised to
sum to 1 so every phase has unity gain at DC. Going to 8 kHz the pass band is flat to 0.015 dB
up to 3.2 kHz (-1.1 dB at 3.4 kHz, -6 dB at 3.6 kHz) and everything from 4 kHz up is at least
55 dB down (60 dB from 4.1 kHz): below the noise floor of 8-bit audio, so nothing folds back.
Sixteen zero crossings is what a 60 dB Kaiser design needs for a transition band of 3.2 to
4 kHz; fewer would let 4-4.5 kHz fold back to 3.5-4 kHz. Each output sample is then one dot
product of a table with a slice of the input, a loop in C: ``math.sumprod`` on Python 3.12+,
``sum(map(operator.mul, ...))`` on 3.11. Tables are cached per pair of rates. A ratio with too
many phases for a table of 2**17 coefficients (an odd rate such as 44101 Hz) rounds each
position to the nearest of as many phases as fit; that timing error is below -65 dB. Both ends
of the input are padded with silence, and the output is clipped to [-1.0, 1.0].

Writing. :func:`write_wav` writes mono PCM to a temp file beside the target, fsyncs it, renames
it over the target and fsyncs the folder, so a player never opens half a file, even after a
power cut.
"""

from __future__ import annotations

import array
import functools
import math
import os
import shlex
import struct
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from itertools import repeat
from operator import add, mul
from pathlib import Path

from callguard.errors import UsageError
from callguard.store.files import UnreadableFile, read_regular_file, write_atomically

MODEM_RATE_HZ = 8000
MIN_RATE_HZ = 4000
MAX_RATE_HZ = 192000
MAX_CHANNELS = 8
MAX_FILE_BYTES = 64 * 1024 * 1024
"""Larger files are refused before they are read: a Pi has no memory to waste on them."""

CUTOFF_FRACTION = 0.45
"""The low-pass cutoff, as a fraction of the lower of the two rates."""
ZERO_CROSSINGS = 16
"""Zero crossings of the sinc on each side of its centre."""
KAISER_BETA = 5.65
"""0.1102 * (60 - 8.7): about 60 dB of stop-band attenuation."""
MAX_TABLE_COEFFICIENTS = 1 << 17

_PCM = 0x0001
_IEEE_FLOAT = 0x0003
_EXTENSIBLE = 0xFFFE
_GUID_TAIL = bytes.fromhex("000010008000" + "00aa00389b71")
"""The last 12 bytes of every KSDATAFORMAT_SUBTYPE GUID; the first 4 are the format code."""
_CODECS = {
    0x0002: "Microsoft ADPCM",
    0x0006: "A-law",
    0x0007: "mu-law",
    0x0011: "IMA ADPCM",
    0x0031: "GSM 6.10",
    0x0040: "G.721 ADPCM",
    0x0050: "MPEG",
    0x0055: "MP3",
    0x0161: "Windows Media Audio",
    0x2000: "AC-3",
}
_STREAMED_SIZES = frozenset({0x7FFFF000, 0x7FFFFFFF, 0xFFFFFFFF})
"""Data chunk lengths left by writers that could not seek back: read to the end of the file."""
_MAGIC = {
    b"ID3": "an MP3 file",
    b"\xff\xfb": "an MP3 file",
    b"\xff\xf3": "an MP3 file",
    b"\xff\xf2": "an MP3 file",
    b"OggS": "an Ogg file",
    b"fLaC": "a FLAC file",
    b"FORM": "an AIFF file",
    b"RIFX": "a big-endian WAV (RIFX)",
    b"RF64": "an RF64 WAV",
    b"BW64": "an RF64 WAV",
}
_FLIP_SIGN = bytes(b ^ 0x80 for b in range(256))
_BIG_ENDIAN = sys.byteorder == "big"

_Dot = Callable[[Sequence[float], Sequence[float]], float]
_sumprod: _Dot | None = getattr(math, "sumprod", None)


class AudioFormatError(UsageError):
    """A WAV file that CallGuard cannot use: the message names it, the problem and the fix."""


@dataclass(frozen=True)
class Audio:
    """Mono audio: ``samples`` (``array('f')``, floats in [-1.0, 1.0]) at ``rate_hz``."""

    rate_hz: int
    samples: array.array[float]

    def __post_init__(self) -> None:
        if not isinstance(self.rate_hz, int) or self.rate_hz <= 0:
            raise ValueError(f"rate_hz must be a positive whole number of Hz, not {self.rate_hz!r}")
        if not isinstance(self.samples, array.array) or self.samples.typecode != "f":
            raise TypeError("samples must be an array.array('f')")

    @property
    def seconds(self) -> float:
        return len(self.samples) / self.rate_hz


# -- reading ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Format:
    code: int
    channels: int
    rate_hz: int
    width: int
    """Bytes per sample in the file (the container: 3 for 24-bit)."""


def read_wav(path: str | os.PathLike[str]) -> Audio:
    """Read any common WAV file as mono :class:`Audio`, or raise :class:`AudioFormatError`."""
    name = os.fspath(path)
    raw = _read_file(name)
    fmt, data = _parse(name, raw)
    frames = len(data) // (fmt.width * fmt.channels)
    if frames == 0:
        raise AudioFormatError(f"{name} has no audio in it (0 samples); record or export it again")
    data = data[: frames * fmt.width * fmt.channels]
    return Audio(fmt.rate_hz, _decode(name, fmt, data))


def _read_file(name: str) -> bytes:
    try:
        return read_regular_file(name, max_bytes=MAX_FILE_BYTES, what="the recording")
    except FileNotFoundError:
        raise AudioFormatError(f"{name}: no such file; check the name and the folder") from None
    except UnreadableFile as exc:
        if "bytes, more than" in str(exc):
            raise AudioFormatError(
                f"{name} is too big for CallGuard ({MAX_FILE_BYTES // (1024 * 1024)} MB at "
                f"most); trim it, or make it mono at 16 kHz: {_sox(name, '-c', '1', '-r', '16000')}"
            ) from None
        raise AudioFormatError(str(exc)) from None


def _sox(name: str, *options: str) -> str:
    """The sox command that turns ``name`` into a WAV this module reads."""
    stem = Path(name).stem or "audio"
    fixed = str(Path(name).with_name(f"{stem}-fixed.wav"))
    encoding = ("-e", "signed-integer", "-b", "16")
    return shlex.join(["sox", name, *options, *encoding, fixed])


def _parse(name: str, raw: bytes) -> tuple[_Format, bytes]:
    """The format and the audio bytes of a RIFF WAVE file."""
    if not raw:
        raise AudioFormatError(
            f"{name} is empty (0 bytes); copy it again from the original, or record it again"
        )
    if raw[:4] != b"RIFF" or raw[8:12] != b"WAVE":
        if raw[:4] == b"RIFF" and len(raw) < 12:
            raise _truncated(name)
        kind = next((k for magic, k in _MAGIC.items() if raw.startswith(magic)), None)
        if raw[:4] == b"RIFF":
            kind = "a RIFF file that holds no WAVE audio"
        found = kind or "not a WAV file"
        raise AudioFormatError(
            f"{name} is {found}; export it as a WAV, 16-bit PCM, e.g. with: {_sox(name)}"
        )
    fmt_chunk: bytes | None = None
    data: bytes | None = None
    pos = 12
    while pos + 8 <= len(raw):
        chunk_id, size = struct.unpack_from("<4sI", raw, pos)
        start = pos + 8
        available = len(raw) - start
        if chunk_id == b"data" and data is None:
            if size > available:
                if size not in _STREAMED_SIZES:
                    raise _truncated(name, size)
                size = available
            data = raw[start : start + size]
        elif size > available:
            if data is not None and fmt_chunk is not None:
                break  # a damaged chunk after the audio (tags, say) costs nothing
            raise _truncated(name)
        elif chunk_id == b"fmt " and fmt_chunk is None:
            fmt_chunk = raw[start : start + size]
        pos = _next_chunk(raw, start, size)
    if fmt_chunk is None:
        raise AudioFormatError(
            f"{name} is damaged: it has no 'fmt ' chunk saying how its audio is stored; "
            f"export it again as a WAV, 16-bit PCM, e.g. with: {_sox(name)}"
        )
    if data is None:
        raise AudioFormatError(
            f"{name} has no audio in it (no 'data' chunk; was it cut short?); "
            "record or export it again"
        )
    return _parse_fmt(name, fmt_chunk), data


def _next_chunk(raw: bytes, start: int, size: int) -> int:
    """Where the next chunk starts: after a pad byte if ``size`` is odd (and a writer put one)."""
    end = start + size
    if size % 2 == 0 or _looks_like_chunk_id(raw[end + 1 : end + 5]):
        return end + size % 2
    return end if _looks_like_chunk_id(raw[end : end + 4]) else end + 1


def _looks_like_chunk_id(chunk_id: bytes) -> bool:
    return len(chunk_id) == 4 and all(0x20 <= b < 0x7F for b in chunk_id)


def _truncated(name: str, promised_bytes: int | None = None) -> AudioFormatError:
    """The file ends inside a chunk; if that is the audio, sox can keep the part that is there."""
    problem = f"{name} is cut short: the file ends early (an interrupted copy or download?)"
    if promised_bytes is None:
        return AudioFormatError(f"{problem}; copy it again from the original")
    return AudioFormatError(
        f"{problem}: its header promises {promised_bytes} bytes of audio; copy it again from the "
        f"original, or keep the part that is there with: {_sox(name)}"
    )


def _parse_fmt(name: str, chunk: bytes) -> _Format:
    if len(chunk) < 16:
        raise AudioFormatError(
            f"{name} is damaged: its 'fmt ' chunk is {len(chunk)} bytes, not at least 16; "
            f"export it again as a WAV, 16-bit PCM, e.g. with: {_sox(name)}"
        )
    code, channels, rate_hz, _, block_align, bits = struct.unpack_from("<HHIIHH", chunk)
    if code == _EXTENSIBLE:
        if len(chunk) < 40:
            raise AudioFormatError(
                f"{name} is damaged: its extensible 'fmt ' chunk is {len(chunk)} bytes, not 40; "
                f"export it again as a WAV, 16-bit PCM, e.g. with: {_sox(name)}"
            )
        guid = chunk[24:40]
        code = struct.unpack_from("<I", guid)[0] if guid[4:] == _GUID_TAIL else -1
    if code not in (_PCM, _IEEE_FLOAT):
        codec = _CODECS.get(code, "an unknown encoding" if code < 0 else f"format 0x{code:04X}")
        raise AudioFormatError(
            f"{name} holds {codec} audio, which CallGuard cannot decode; convert it to 16-bit "
            f"PCM: {_sox(name)}"
        )
    if not 1 <= channels <= MAX_CHANNELS:
        raise AudioFormatError(
            f"{name} has {channels} channels; CallGuard takes 1 to {MAX_CHANNELS}: "
            f"{_sox(name, '-c', '1')}"
        )
    if not MIN_RATE_HZ <= rate_hz <= MAX_RATE_HZ:
        raise AudioFormatError(
            f"{name} has a sample rate of {rate_hz} Hz; CallGuard takes {MIN_RATE_HZ} to "
            f"{MAX_RATE_HZ} Hz: {_sox(name, '-r', '16000')}"
        )
    width = (bits + 7) // 8
    if not (width in (1, 2, 3, 4) if code == _PCM else bits in (32, 64)):
        kind = "PCM" if code == _PCM else "float"
        raise AudioFormatError(
            f"{name} has {bits}-bit {kind} samples, which CallGuard cannot decode; convert it "
            f"to 16-bit PCM: {_sox(name)}"
        )
    if block_align != width * channels:
        raise AudioFormatError(
            f"{name} is damaged: its header says {block_align} bytes per frame, but "
            f"{channels} channels of {bits} bits take {width * channels}; "
            f"export it again as a WAV, 16-bit PCM, e.g. with: {_sox(name)}"
        )
    return _Format(code, channels, rate_hz, width)


def _decode(name: str, fmt: _Format, data: bytes) -> array.array[float]:
    """Mono floats from interleaved frames: the channels averaged, scaled to [-1.0, 1.0]."""
    codes: array.array[int] | array.array[float]
    if fmt.code == _IEEE_FLOAT:
        codes = array.array("f" if fmt.width == 4 else "d", data)
        full_scale = 1.0
    elif fmt.width == 1:
        codes = array.array("b", data.translate(_FLIP_SIGN))
        full_scale = 127.0
    elif fmt.width == 3:
        widened = bytearray(len(data) // 3 * 4)  # left-justified in 32 bits: code * 256
        for k in range(3):
            widened[k + 1 :: 4] = data[k::3]
        codes = array.array("i", widened)
        full_scale = 8388607.0 * 256
    else:
        codes = array.array("h" if fmt.width == 2 else "i", data)
        full_scale = 32767.0 if fmt.width == 2 else 2147483647.0
    if _BIG_ENDIAN and fmt.width > 1:
        codes.byteswap()
    if fmt.code == _IEEE_FLOAT and not all(map(math.isfinite, codes)):
        raise AudioFormatError(
            f"{name} has samples that are not numbers (NaN or infinite); export it again, "
            f"e.g. with: {_sox(name)}"
        )
    return _clipped(_mixdown(codes, fmt.channels, 1.0 / (full_scale * fmt.channels)))


def _mixdown(codes: Sequence[float], channels: int, scale: float) -> array.array[float]:
    if channels == 1:
        return array.array("f", map(mul, codes, repeat(scale)))
    total: Iterable[float] = codes[0::channels]
    for channel in range(1, channels):
        total = map(add, total, codes[channel::channels])
    return array.array("f", map(mul, total, repeat(scale)))


def _clipped(samples: array.array[float]) -> array.array[float]:
    """``samples`` limited to [-1.0, 1.0] (the same array when nothing is outside)."""
    if samples and (min(samples) < -1.0 or max(samples) > 1.0):
        return array.array("f", map(max, map(min, samples, repeat(1.0)), repeat(-1.0)))
    return samples


# -- resampling ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Plan:
    up: int
    """L: the output rate over gcd(in, out)."""
    down: int
    """M: the input rate over gcd(in, out)."""
    phases: int
    """L, or fewer when the table would be too big (positions are then rounded)."""
    taps: int
    first_tap: int
    """Offset from the input sample at or before an output position to the first tap (<= 0)."""
    table: tuple[tuple[float, ...], ...]


@functools.lru_cache(maxsize=16)
def _plan(in_hz: int, out_hz: int) -> _Plan:
    g = math.gcd(in_hz, out_hz)
    up, down = out_hz // g, in_hz // g
    cutoff = CUTOFF_FRACTION * min(in_hz, out_hz) / in_hz  # cycles per input sample
    half_width = ZERO_CROSSINGS / (2 * cutoff)  # input samples
    first_tap = math.floor(-half_width) + 1
    taps = math.ceil(half_width) - first_tap + 1
    phases = up if up * taps <= MAX_TABLE_COEFFICIENTS else max(1, MAX_TABLE_COEFFICIENTS // taps)
    window_norm = 1.0 / _bessel_i0(KAISER_BETA)

    def coefficient(offset: float) -> float:
        u = offset / half_width
        if u * u >= 1.0:
            return 0.0
        window = _bessel_i0(KAISER_BETA * math.sqrt(1.0 - u * u)) * window_norm
        x = 2.0 * cutoff * offset
        return window * (math.sin(math.pi * x) / (math.pi * x) if x else 1.0)

    table = []
    for phase in range(phases):
        frac = phase / phases
        row = [coefficient(frac - j) for j in range(first_tap, first_tap + taps)]
        gain = math.fsum(row)
        table.append(tuple(c / gain for c in row))
    return _Plan(up, down, phases, taps, first_tap, tuple(table))


def _bessel_i0(x: float) -> float:
    """The modified Bessel function of the first kind, order 0, by its power series."""
    total = term = 1.0
    quarter_x2 = x * x / 4.0
    k = 0
    while term > total * 1e-17:
        k += 1
        term *= quarter_x2 / (k * k)
        total += term
    return total


def resample(audio: Audio, rate_hz: int) -> Audio:
    """``audio`` at ``rate_hz``, band-limited to 0.45 x the lower rate (the same if unchanged)."""
    if not isinstance(rate_hz, int) or rate_hz <= 0:
        raise ValueError(f"rate_hz must be a positive whole number of Hz, not {rate_hz!r}")
    if rate_hz == audio.rate_hz:
        return audio
    plan = _plan(audio.rate_hz, rate_hz)
    n_in = len(audio.samples)
    n_out = (n_in * plan.up + plan.down // 2) // plan.down
    padded = [0.0] * -plan.first_tap + audio.samples.tolist() + [0.0] * (plan.taps + 1)
    table, taps, phases = plan.table, plan.taps, plan.phases
    step, half = plan.down * phases, plan.up // 2
    # Output n is at input position n * down / up = i + p / phases (rounded to a phase if
    # phases < up); its window starts first_tap samples before i, which is padded[i].
    where = (divmod((n * step + half) // plan.up, phases) for n in range(n_out))
    if _sumprod is None:
        out = [sum(map(mul, table[p], padded[i : i + taps])) for i, p in where]
    else:
        dot = _sumprod
        out = [dot(table[p], padded[i : i + taps]) for i, p in where]
    return Audio(rate_hz, _clipped(array.array("f", out)))


# -- output ----------------------------------------------------------------------------------


def to_modem_bytes(audio: Audio) -> bytes:
    """8 kHz 8-bit unsigned mono for the voice modem: round(x * 127) + 128, silence is 0x80."""
    return _pcm(resample(audio, MODEM_RATE_HZ).samples, 1)


def _pcm(samples: array.array[float], width: int) -> bytes:
    """Little-endian PCM codes round(x * (2**(8 * width - 1) - 1)), clipped; 8-bit unsigned."""
    full_scale = (1 << (8 * width - 1)) - 1
    codes = map(round, map(mul, samples, repeat(float(full_scale))))
    clipped = map(max, map(min, codes, repeat(full_scale)), repeat(-full_scale - 1))
    if width == 1:
        return bytes(map(add, clipped, repeat(128)))
    packed = array.array("h" if width == 2 else "i", clipped)
    if _BIG_ENDIAN:
        packed.byteswap()
    if width != 3:
        return packed.tobytes()
    wide = packed.tobytes()
    narrow = bytearray(len(samples) * 3)
    for k in range(3):
        narrow[k::3] = wide[k::4]
    return bytes(narrow)


def write_wav(path: str | os.PathLike[str], audio: Audio, *, sample_width: int = 2) -> None:
    """Write ``audio`` as a mono PCM WAV (``sample_width`` bytes: 1 is 8-bit unsigned).

    The file appears whole or not at all: a temp file beside it is written, fsynced and renamed.
    """
    if sample_width not in (1, 2, 3, 4):
        raise ValueError(f"sample_width must be 1, 2, 3 or 4 bytes, not {sample_width!r}")
    data = _pcm(audio.samples, sample_width)
    pad = b"\0" * (len(data) % 2)
    header = struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF",
        36 + len(data) + len(pad),
        b"WAVE",
        b"fmt ",
        16,
        _PCM,
        1,
        audio.rate_hz,
        audio.rate_hz * sample_width,
        sample_width,
        8 * sample_width,
        b"data",
        len(data),
    )
    write_atomically(Path(path), header + data + pad)


def concat(*parts: Audio, gap_s: float = 0.0) -> Audio:
    """The parts one after another, ``gap_s`` of silence between them.

    Parts at different rates are first resampled to the highest of them, so none loses its
    high frequencies.
    """
    if not parts:
        raise ValueError("concat needs at least one part")
    if not gap_s >= 0.0 or math.isinf(gap_s):
        raise ValueError(f"gap_s must be a number of seconds, 0 or more, not {gap_s!r}")
    rate_hz = max(part.rate_hz for part in parts)
    gap = array.array("f", bytes(4 * round(gap_s * rate_hz)))
    samples = array.array("f")
    for k, part in enumerate(parts):
        if k:
            samples += gap
        samples += resample(part, rate_hz).samples
    return Audio(rate_hz, samples)


# -- measuring -------------------------------------------------------------------------------


def rms(audio: Audio) -> float:
    """The root-mean-square level (0.0 for no samples; a full-scale sine is 0.707)."""
    samples = audio.samples
    return math.sqrt(math.fsum(map(mul, samples, samples)) / len(samples)) if samples else 0.0


def peak(audio: Audio) -> float:
    """The largest absolute sample (0.0 for no samples)."""
    samples = audio.samples
    return max(max(samples), -min(samples)) if samples else 0.0


def tone(freq_hz: float, seconds: float, rate_hz: int, amplitude: float = 0.5) -> Audio:
    """A sine of ``freq_hz``, ``amplitude`` x full scale, starting at 0, ``seconds`` long."""
    if not 0.0 <= amplitude <= 1.0:
        raise ValueError(f"amplitude must be from 0.0 to 1.0, not {amplitude!r}")
    if not seconds >= 0.0 or math.isinf(seconds):
        raise ValueError(f"seconds must be 0 or more, not {seconds!r}")
    if not isinstance(rate_hz, int) or rate_hz <= 0:
        raise ValueError(f"rate_hz must be a positive whole number of Hz, not {rate_hz!r}")
    step = 2.0 * math.pi * freq_hz / rate_hz
    phases = map(mul, range(round(seconds * rate_hz)), repeat(step))
    return Audio(rate_hz, array.array("f", map(mul, map(math.sin, phases), repeat(amplitude))))


def dominant_frequency(audio: Audio) -> float:
    """The frequency of a tone, from its interpolated rising zero crossings (0.0 if none).

    Good to well within 1% for a clean tone of a few cycles or more. The mean is removed first
    and a crossing counts only after the signal has gone below -10% of its peak, so noise near
    zero is not counted as crossings.
    """
    samples = audio.samples
    if len(samples) < 3:
        return 0.0
    mean = math.fsum(samples) / len(samples)
    threshold = 0.1 * max(max(samples) - mean, mean - min(samples))
    if threshold <= 0.0:
        return 0.0
    first = last = 0.0
    crossings = 0
    armed = False
    previous = 0.0
    for k, value in enumerate(map(add, samples, repeat(-mean))):
        if value < -threshold:
            armed = True
        elif armed and value >= 0.0:
            armed = False
            last = k - value / (value - previous)  # previous < 0 <= value
            if not crossings:
                first = last
            crossings += 1
        previous = value
    if crossings < 2:
        return 0.0
    return (crossings - 1) * audio.rate_hz / (last - first)
