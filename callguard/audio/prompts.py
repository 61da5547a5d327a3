"""The spoken prompts, and the speaker in the room.

Theory of operation
-------------------
:class:`Prompts` turns text into sound. Speech is rendered offline by espeak-ng (an ``en-gb``
voice at 150 words a minute, a little slower than its default 175, for older listeners) into a
WAV file in a cache folder, named by a hash of everything that shapes it (text, voice, speed),
so each sentence is rendered once and a changed text is rendered anew. A rendering is kept only
if it reads back as a WAV, and is written whole and fsynced like every file CallGuard keeps on
the card. A family member's own recording (``warning.recording``) replaces the spoken warning
text; any common WAV is accepted and converted. The modem gets the same prompts converted to
8 kHz 8-bit unsigned mono by :mod:`callguard.wavconv` (no audioop: it is gone from Python 3.13).

A unit without espeak-ng is never silent: the default warning and the short "who is calling"
openings ship pre-rendered in ``callguard/data``. A custom text then falls back to the shipped
default, with a warning in the log saying how to install espeak-ng.

:class:`RoomSpeaker` plays a warning through ``warning.room_command`` (``aplay -q {wav}`` by
default; the command is split like a shell would, but run without one, and ``{wav}`` is
replaced by the file's path). It works on its own thread, so the daemon's loop never waits for
rendering or playback; a newer warning stops one still playing.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from callguard.audio import wavconv
from callguard.audio.wavconv import Audio
from callguard.core.numbers import Caller, Category, place_of
from callguard.errors import UsageError
from callguard.store.files import write_atomically
from callguard.texts import (
    BLOCKED_LAST,
    DEFAULT_ANNOUNCEMENT,
    DEFAULT_CLAIM_WARNING,
    DEFAULT_LINE_WARNING,
    DEFAULT_REMINDER,
    DEFAULT_WARNING,
    NOTHING_TO_BLOCK,
)

log = logging.getLogger(__name__)

DEFAULT_VOICE = "en-gb"
DEFAULT_SPEED_WPM = 150
RENDER_VERSION = "1"  # bump to invalidate every cached rendering

# Openings that ship pre-rendered (file name -> text), for units without espeak-ng.
SHIPPED = {
    "warning.wav": DEFAULT_WARNING,
    "line-warning.wav": DEFAULT_LINE_WARNING,
    "blocked-last.wav": BLOCKED_LAST,
    "nothing-to-block.wav": NOTHING_TO_BLOCK,
    "intro-unknown.wav": "A call from an unknown number.",
    "intro-withheld.wav": "A call from a withheld number.",
    "intro-unavailable.wav": "A call from a number that is not available.",
    "intro-international.wav": "A call from abroad.",
    "announcement.wav": DEFAULT_ANNOUNCEMENT,
    "claim-warning.wav": DEFAULT_CLAIM_WARNING,
    "reminder.wav": DEFAULT_REMINDER,
}


def espeak_path() -> str | None:
    return shutil.which("espeak-ng")


def shipped(name: str) -> Path:
    return Path(str(resources.files("callguard") / "data" / name))


def intro_text(caller: Caller, *, with_place: bool = True) -> str:
    """Who is calling, in words: "A call from an unknown number in Welwyn Garden City.".

    The place (:func:`~callguard.core.numbers.place_of`) comes from a small table read once,
    not from phonenumbers' geocoder, so ``with_place`` costs no memory worth counting. Where
    the table names two towns ("Aboyne/Ballater") they are spoken as "Aboyne or Ballater".
    """
    if caller.category is Category.WITHHELD:
        return "A call from a withheld number."
    if caller.category is Category.UNAVAILABLE:
        return "A call from a number that is not available."
    place = None
    if with_place and caller.e164:
        with contextlib.suppress(Exception):  # a place is a nicety: never a reason to be silent
            place = place_of(caller)
    if place:
        place = place.replace("/", " or ")
    if caller.category is Category.INTERNATIONAL:
        return f"A call from abroad, from {place}." if place else "A call from abroad."
    if caller.category is Category.MOBILE:
        return "A call from an unknown mobile number."
    if place:
        return f"A call from an unknown number in {place}."
    return "A call from an unknown number."


def _shipped_intro(text: str) -> str | None:
    for name, shipped_text in SHIPPED.items():
        if name.startswith("intro-") and shipped_text == text:
            return name
    if text.startswith("A call from abroad"):
        return "intro-international.wav"
    if text.startswith("A call from an unknown"):
        return "intro-unknown.wav"
    return None


@dataclass(frozen=True)
class Voice:
    text: str = DEFAULT_WARNING
    line_text: str = DEFAULT_LINE_WARNING
    claim_text: str = DEFAULT_CLAIM_WARNING
    recording: str = ""
    voice: str = DEFAULT_VOICE
    speed_wpm: int = DEFAULT_SPEED_WPM
    say_who: bool = True
    say_place: bool = True


class Prompts:
    """Renders and caches the prompts. Safe to use from one worker thread at a time per file."""

    def __init__(
        self, cache_dir: str | os.PathLike[str], voice: Voice, espeak: str | None = None
    ) -> None:
        self.cache_dir = Path(cache_dir)
        self.voice = voice
        self.espeak = espeak if espeak is not None else espeak_path()
        self._warned_no_espeak = False

    # -- sentences ---------------------------------------------------------------------------

    def speech(self, text: str) -> Path:
        """A WAV of ``text`` spoken (cached); a shipped rendering when espeak-ng is missing.

        espeak-ng renders into a scratch file beside the cache, which must read back as a WAV;
        its bytes are then kept with :func:`~callguard.store.files.write_atomically` (fsynced,
        renamed, the folder fsynced), so a power cut never leaves half a rendering in the cache.
        A full or read-only card gives the shipped rendering instead, never silence.
        """
        key = self._key("speech", text, self.voice.voice, str(self.voice.speed_wpm))
        path = self.cache_dir / f"speech-{key}.wav"
        if path.exists():
            return path
        if self.espeak:
            try:
                self.cache_dir.mkdir(parents=True, exist_ok=True)
                with tempfile.NamedTemporaryFile(
                    dir=self.cache_dir, prefix=".render-", suffix=".wav", delete=False
                ) as tmp:
                    scratch = Path(tmp.name)
            except OSError as exc:
                log.error("cannot write the speech cache in %s: %s", self.cache_dir, exc)
                return self._fallback(text)
            try:
                subprocess.run(
                    [
                        self.espeak,
                        "-v",
                        self.voice.voice,
                        "-s",
                        str(self.voice.speed_wpm),
                        "-w",
                        str(scratch),
                        text,
                    ],
                    check=True,
                    capture_output=True,
                    timeout=60,
                )
                wavconv.read_wav(scratch)  # a rendering that does not read back is not kept
                write_atomically(path, scratch.read_bytes())
                return path
            except (OSError, subprocess.SubprocessError, UsageError) as exc:
                log.error("espeak-ng could not speak %r: %s", text[:40], exc)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    scratch.unlink()
        return self._fallback(text)

    def _fallback(self, text: str) -> Path:
        name = next((n for n, t in SHIPPED.items() if t == text), None)
        name = name or _shipped_intro(text)
        if name is None:
            name = "warning.wav"
            if not self._warned_no_espeak:
                self._warned_no_espeak = True
                log.warning(
                    "espeak-ng is not installed, so the warning text from the config cannot "
                    "be spoken: playing the default warning. Install it with: "
                    "sudo apt install espeak-ng"
                )
        return shipped(name)

    def _key(self, *parts: str) -> str:
        digest = hashlib.sha256("\x1f".join((RENDER_VERSION, *parts)).encode()).hexdigest()
        return digest[:20]

    # -- the prompts -------------------------------------------------------------------------

    def warning(self) -> Audio:
        """The warning itself: the family's recording, else the configured text spoken."""
        if self.voice.recording:
            try:
                return wavconv.read_wav(self.voice.recording)
            except UsageError as exc:
                log.error(
                    "warning.recording cannot be used, so the warning text is spoken instead: "
                    "%s (the service cannot read /home or /tmp: keep the recording in "
                    "/etc/callguard)",
                    exc,
                )
        return wavconv.read_wav(self.speech(self.voice.text))

    def room_wav(self, caller: Caller | None, strong: bool = False) -> Path:
        """One WAV for the room: who is calling (if known and wanted), then the warning.

        ``strong``: the caller's name claims authority; the stronger text is used (a family
        recording does not replace it). When the joined WAV cannot be written (a full or
        read-only SD card), the shipped warning is played: never silence.
        """
        try:
            return self._room_wav(caller, strong)
        except OSError as exc:
            fallback = shipped("claim-warning.wav" if strong else "warning.wav")
            log.error(
                "could not prepare the warning in %s (%s): playing the shipped %s instead",
                self.cache_dir,
                exc,
                fallback.name,
            )
            return fallback

    def _room_wav(self, caller: Caller | None, strong: bool) -> Path:
        intro = (
            intro_text(caller, with_place=self.voice.say_place)
            if caller is not None and self.voice.say_who
            else ""
        )
        if strong:
            path = self.speech(self.voice.claim_text)
            if not intro:
                return path
            return self._joined("room-strong", [self.speech(intro), path])
        source = self.voice.recording or self.voice.text
        stamp = ""
        if self.voice.recording:
            with contextlib.suppress(OSError):
                st = os.stat(self.voice.recording)
                stamp = f"{st.st_size}:{st.st_mtime_ns}"
        key = self._key("room", intro, source, stamp, self.voice.voice, str(self.voice.speed_wpm))
        path = self.cache_dir / f"room-{key}.wav"
        if path.exists():
            return path
        warning = self.warning()
        parts = [wavconv.read_wav(self.speech(intro))] if intro else []
        audio = wavconv.concat(*parts, warning, gap_s=0.4) if parts else warning
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        wavconv.write_wav(path, audio)
        return path

    def _joined(self, kind: str, parts: list[Path]) -> Path:
        key = self._key(kind, *(str(p) for p in parts))
        path = self.cache_dir / f"{kind}-{key}.wav"
        if not path.exists():
            audio = wavconv.concat(*(wavconv.read_wav(p) for p in parts), gap_s=0.4)
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            wavconv.write_wav(path, audio)
        return path

    def modem_bytes(self, kind: str = "warning") -> bytes:
        """8 kHz 8-bit unsigned audio for the line: ``warning`` (the short line warning,
        ``warning.line_text``) or ``announcement``."""
        text = self.voice.line_text if kind == "warning" else DEFAULT_ANNOUNCEMENT
        return wavconv.to_modem_bytes(wavconv.read_wav(self.speech(text)))
