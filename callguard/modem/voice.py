"""Speaking down the line: play 8 kHz 8-bit unsigned audio through a voice modem.

Theory of operation
-------------------
The sequence is ITU-T V.253 / IS-101 voice transmit, as the USR 5637 and Conexant CX93010
firmware implement it:

1. ``AT+FCLASS=8`` (voice), ``AT+VSM=...`` (the profile's 8 kHz 8-bit unsigned format),
   ``AT+VLS=1`` (connect the modem to the line, off-hook), ``AT+VTX`` (answered ``CONNECT``).
2. The audio, DLE-shielded, paced at 8000 bytes/s with a small lead so the modem's buffer never
   runs dry (a modem that does reports ``<DLE>u``) and never overflows.
3. ``<DLE><ETX>``; the modem plays out its buffer and answers ``OK``. Conexant firmware has
   been seen to need it more than once, so it is repeated up to the profile's ``etx_repeats``.
4. ``ATH0``, then ``AT+FCLASS=0`` and caller ID asserted again (the Conexant forgets it).

Whatever happens in between (an ``ERROR``, a timeout, the caller hanging up (``<DLE>b`` busy or
``<DLE>d`` dial tone), the port vanishing), the ``finally`` path ends any transmission with
``<DLE><ETX>`` so the modem is back in command mode, then goes on-hook (``ATH0`` repeated, then
DTR dropped as a last resort). The whole session holds the transport's session lock so no other
command is interleaved with audio.

Going on-hook here only disconnects the *modem*: a resident who picked up a phone keeps the
call; CallGuard never cuts a call it joined to speak a warning.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from callguard.modem.protocol import DLE_ETX, DleCode, DleMeaning, Event, shield
from callguard.modem.transport import CommandTimeout, ModemError, ModemTransport, Reply

log = logging.getLogger(__name__)

SAMPLE_RATE_HZ = 8000
CHUNK_BYTES = 400  # 50 ms of audio per write
LEAD_S = 0.25  # how far ahead of real time the writes may run (the modem's buffer)

_HANG_UP_CODES = frozenset({DleMeaning.BUSY, DleMeaning.DIAL_TONE, DleMeaning.LOOP_BREAK})


class VoiceError(ModemError):
    """The modem refused a voice command; the line has been put back on-hook."""


@dataclass(frozen=True)
class PlaybackResult:
    """What happened during one playback."""

    bytes_sent: int
    seconds: float
    completed: bool
    """False when the far end hung up (busy or dial tone) before the end."""
    underruns: int
    on_hook: bool
    """True when the modem confirmed it is back on-hook."""


def _require(reply: Reply, what: str) -> Reply:
    if not (reply.ok or reply.connected):
        raise VoiceError(f"the modem refused {what} ({reply.describe()})")
    return reply


class VoicePlayer:
    """Plays audio down the line through ``transport``. Clock and sleep are injectable."""

    def __init__(
        self,
        transport: ModemTransport,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.transport = transport
        self._clock = clock
        self._sleep = sleep

    def play(self, audio: bytes) -> PlaybackResult:
        """Take the line, speak ``audio`` (8 kHz, 8-bit unsigned, mono), put the line down."""
        transport = self.transport
        hung_up = threading.Event()
        underruns = 0

        def listen(event: Event) -> None:
            nonlocal underruns
            if isinstance(event, DleCode):
                if event.meaning in _HANG_UP_CODES:
                    hung_up.set()
                elif event.meaning is DleMeaning.TX_UNDERRUN:
                    underruns += 1

        transmitting = False
        sent = 0
        started = self._clock()
        on_hook = False
        transport.add_listener(listen)
        try:
            with transport.session():
                try:
                    _require(transport.command("AT+FCLASS=8"), "voice mode (AT+FCLASS=8)")
                    self._set_format()
                    _require(transport.command("AT+VLS=1"), "the line (AT+VLS=1)")
                    _require(transport.command("AT+VTX"), "voice transmit (AT+VTX)")
                    transmitting = True
                    started = self._clock()
                    sent = self._send(audio, hung_up)
                    transmitting = not self._end_transmission()
                finally:
                    if transmitting:
                        with contextlib.suppress(ModemError):
                            self._end_transmission()
                    on_hook = transport.on_hook()
                    with contextlib.suppress(ModemError):
                        transport.after_call()
        finally:
            transport.remove_listener(listen)
        seconds = self._clock() - started
        log.info(
            "spoke %.1f s of audio down the line%s",
            sent / SAMPLE_RATE_HZ,
            " (the caller hung up)" if hung_up.is_set() else "",
        )
        return PlaybackResult(sent, seconds, not hung_up.is_set(), underruns, on_hook)

    def _set_format(self) -> None:
        profile = self.transport.profile
        formats = profile.voice_formats if profile else ("AT+VSM=128,8000",)
        reply = None
        for cmd in formats:
            reply = self.transport.command(cmd)
            if reply.ok:
                return
        assert reply is not None
        raise VoiceError(
            "the modem accepts none of the 8 kHz 8-bit formats CallGuard knows "
            f"({', '.join(formats)}); last answer: {reply.describe()}"
        )

    def _send(self, audio: bytes, hung_up: threading.Event) -> int:
        start = self._clock()
        sent = 0
        for offset in range(0, len(audio), CHUNK_BYTES):
            if hung_up.is_set():
                break
            chunk = audio[offset : offset + CHUNK_BYTES]
            due = start + sent / SAMPLE_RATE_HZ - LEAD_S
            delay = due - self._clock()
            if delay > 0:
                self._sleep(delay)
            self.transport.write_raw(shield(chunk))
            sent += len(chunk)
        return sent

    def _end_transmission(self) -> bool:
        """Send ``<DLE><ETX>`` until the modem answers; True once it has."""
        profile = self.transport.profile
        repeats = profile.etx_repeats if profile else 2
        for _ in range(max(1, repeats)):
            try:
                reply = self.transport.write_then_wait(DLE_ETX, "<DLE><ETX>", timeout_s=LEAD_S + 2)
            except CommandTimeout:
                continue
            if reply.final is not None:
                return True
        log.warning("the modem did not confirm the end of voice transmit")
        return False
