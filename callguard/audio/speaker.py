"""The room speaker: plays warnings through ``warning.room_command`` on its own thread."""

from __future__ import annotations

import logging
import queue
import shlex
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path

from callguard.audio.prompts import Prompts
from callguard.core.numbers import Caller
from callguard.texts import (
    DEFAULT_REMINDER,
)

log = logging.getLogger(__name__)

_STOP = object()


class RoomSpeaker:
    """Plays warnings in the room through ``command`` without blocking the caller."""

    def __init__(
        self,
        command: str,
        prompts: Prompts,
        *,
        on_played: Callable[[Path], None] | None = None,
        max_seconds: float = 60.0,
    ) -> None:
        self.argv = shlex.split(command) if command.strip() else []
        self.prompts = prompts
        self.on_played = on_played
        self.max_seconds = max_seconds
        self._jobs: queue.Queue[tuple[str, Caller | str | None] | object] = queue.Queue()
        self._current: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.argv)

    def set_command(self, command: str) -> None:
        """A new ``warning.room_command`` (SIGHUP); an empty one turns the speaker off."""
        self.argv = shlex.split(command) if command.strip() else []
        self.start()

    def start(self) -> None:
        if self.enabled and self._thread is None:
            self._thread = threading.Thread(target=self._work, name="room-speaker", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._jobs.put(_STOP)
            self._stop_current()
            self._thread.join(5)
            self._thread = None

    def warn(self, caller: Caller | None, strong: bool = False) -> None:
        """Queue a warning (returns at once). A newer one stops one still playing."""
        self._queue(("strong" if strong else "warning", caller))

    def remind(self) -> None:
        """The call-back reminder: wait five minutes or use another phone."""
        self._queue(("reminder", None))

    def say(self, sentence: str) -> None:
        """Say one sentence in the room (a confirmation: "the last caller is blocked")."""
        self._queue(("say", sentence))

    def _queue(self, job: tuple[str, Caller | str | None]) -> None:
        if not self.enabled:
            return
        self._stop_current()
        self._jobs.put(job)

    def play_now(self, path: Path) -> int:
        """Play ``path`` and wait (for selftest and the demo). Returns the command's exit code."""
        argv = self._argv(path)
        return subprocess.run(argv, capture_output=True, timeout=self.max_seconds).returncode

    def _argv(self, path: Path) -> list[str]:
        return [arg.replace("{wav}", str(path)) for arg in self.argv]

    def _stop_current(self) -> None:
        with self._lock:
            proc = self._current
        if proc is not None and proc.poll() is None:
            proc.terminate()

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            while job is not _STOP and not self._jobs.empty():  # only the newest one matters
                job = self._jobs.get()
            if job is _STOP:
                return
            assert isinstance(job, tuple)
            kind: str = job[0]
            what = job[1]
            try:
                if kind == "reminder":
                    path = self.prompts.speech(DEFAULT_REMINDER)
                elif kind == "say":
                    path = self.prompts.speech(str(what))
                else:
                    caller = what if isinstance(what, Caller) else None
                    path = self.prompts.room_wav(caller, strong=kind == "strong")
                self._play(path)
            except Exception:
                log.exception("could not play the warning in the room")

    def _play(self, path: Path) -> None:
        argv = self._argv(path)
        try:
            proc = subprocess.Popen(
                argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL
            )
        except FileNotFoundError:
            log.error(
                "warning.room_command: %r was not found; install it (aplay is in alsa-utils) or "
                "change warning.room_command",
                argv[0],
            )
            return
        with self._lock:
            self._current = proc
        if self.on_played is not None:
            self.on_played(path)
        try:
            _, err = proc.communicate(timeout=self.max_seconds)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
            log.error("warning.room_command ran for over %.0f s and was stopped", self.max_seconds)
        with self._lock:
            self._current = None
        if proc.returncode not in (0, -15):
            log.error(
                "warning.room_command %r failed (exit %s): %s",
                " ".join(argv),
                proc.returncode,
                err.decode(errors="replace").strip()[:200],
            )
