"""The simulated modem's firmware: a pure state machine, bytes in and bytes out.

Theory of operation
-------------------
`Firmware.receive(data, now)` takes whatever the client wrote and returns what the modem
writes back; `Firmware.tick(now)` returns output that is due because time passed (the end of
a voice playback, an answer attempt timing out, a playback buffer running dry). Nothing here
touches a file descriptor, a thread or the clock: `modem.py` owns the pty, the threads and the
lock, and passes `time.monotonic()` in. That keeps every rule in this file testable by feeding
bytes.

Modes:

* command: bytes are collected into a bounded line buffer until CR or LF. Like a Hayes modem,
  characters before "AT" are ignored, so a line without "AT" gets no answer at all. The line
  is echoed (if ATE1) and executed; basic commands chain (`ATE0V1Q0`), extended commands
  (`+`, `#`, `-`) run to `;` or the end of the line (ITU-T V.250). The first failing command
  stops the line with ERROR.
* voice transmit (after `AT+VTX` -> CONNECT, ITU-T V.253): every byte is audio until
  <DLE><ETX>; <DLE><DLE> is one 0x10 audio byte; other <DLE> pairs are ignored. A playback
  buffer drains at the sample rate: if it stays empty the modem sends <DLE>u (underrun), if it
  overflows audio is dropped, and OK comes only when the buffer has played out.
* draining: after <DLE><ETX>, waiting for the buffer to play; input is held until OK.
* answering (ATA in +FCLASS=0): off-hook, listening for a data carrier for S7 seconds; a human
  caller has none, so NO CARRIER and back on-hook. Any byte from the client aborts it.

While `hung` (a firmware lock-up) command lines are still collected and logged but nothing is
executed and nothing is written.

Which behaviour comes from where:

* ATI0 "56000" / ATI3, `AT-TRV` (tip/ring volts), `-STE`, +VSM formats 1/129/130/140/141 at
  8000 Hz, and forgetting `+VCID=1` after a voice session: Conexant CX93001 family (Zoom 3095,
  StarTech); from the Conexant AT command reference and field reports (DOMAIN.md).
* ATI0 "5601", +VSM formats 1 and 128..133 at 7200/8000 Hz, no `-TRV` (ERROR): USRobotics 5637.
* Result codes, S-registers, echo, V0/V1, Q0/Q1: Hayes / ITU-T V.250.
* +FCLASS, +VLS, +VTX, +VSM, DLE shielding, <DLE>u: ITU-T V.253.
* +VCID / #CID formatted caller ID: V.253 (+VCID) and the older Rockwell #CID.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

DLE = 0x10
ETX = 0x03
MAX_LINE_BYTES = 256
"""Longest command line kept (Conexant guarantees at least 50 characters); longer is ERROR."""
MAX_STORED_AUDIO_BYTES = 16_000_000
"""A voice session keeps at most this much audio (about 33 minutes at 8000 bytes/s)."""

ON_HOOK_VOLTS = 48.2
EXTENSION_OFF_HOOK_VOLTS = 8.3
MODEM_OFF_HOOK_VOLTS = 7.8
BOTH_OFF_HOOK_VOLTS = 6.4
DEAD_LINE_VOLTS = 0.0
"""No line voltage at all: the cable is cut, or the line has moved to the router's phone port."""

NUMERIC_CODES: dict[str, str] = {
    "OK": "0",
    "CONNECT": "1",
    "RING": "2",
    "NO CARRIER": "3",
    "ERROR": "4",
    "NO DIALTONE": "6",
    "BUSY": "7",
    "NO ANSWER": "8",
}

COUNTRIES: tuple[str, ...] = ("00", "09", "20", "3D", "42", "59", "B4", "B5")
"""ITU-T T.35 country codes accepted by +GCI (B4 United Kingdom, B5 United States)."""
FACTORY_COUNTRY = "B5"


@dataclass(frozen=True)
class VoiceFormat:
    cml: int
    name: str
    bits: int
    rates: tuple[int, ...]


@dataclass(frozen=True)
class Identity:
    """What distinguishes one modem family from another, as far as the daemon can see."""

    key: str
    info: dict[int, str]
    manufacturer: str
    model: str
    revision: str
    voice_formats: tuple[VoiceFormat, ...]
    default_vsm: tuple[int, int]
    line_voltage: bool
    forgets_vcid_after_voice: bool
    max_x: int


CONEXANT = Identity(
    key="conexant",
    info={0: "56000", 1: "1F2E", 3: "CX93001-EIS_V0.2002-V92", 4: "ZOOM 3095 USB MODEM"},
    manufacturer="CONEXANT",
    model="CX93001-EIS_V0.2002-V92",
    revision="V0.2002-V92",
    voice_formats=(
        VoiceFormat(1, "UNSIGNED PCM", 8, (8000,)),
        VoiceFormat(129, "IMA ADPCM", 4, (8000,)),
        VoiceFormat(130, "UNSIGNED PCM", 8, (8000,)),
        VoiceFormat(140, "2 Bit ADPCM", 2, (8000,)),
        VoiceFormat(141, "4 Bit ADPCM", 4, (8000,)),
    ),
    default_vsm=(1, 8000),
    line_voltage=True,
    forgets_vcid_after_voice=True,
    max_x=4,
)

USR = Identity(
    key="usr",
    info={0: "5601", 1: "A3C1", 3: "U.S. Robotics 56K FAX USB V1.2.23", 4: "USR5637"},
    manufacturer="U.S. Robotics",
    model="USR5637",
    revision="V1.2.23",
    voice_formats=(
        VoiceFormat(1, "UNSIGNED PCM", 8, (7200, 8000)),
        VoiceFormat(128, "8-BIT LINEAR", 8, (7200, 8000)),
        VoiceFormat(129, "ADPCM", 4, (7200, 8000)),
        VoiceFormat(130, "UNSIGNED PCM", 8, (7200, 8000)),
        VoiceFormat(131, "ULAW", 8, (7200, 8000)),
        VoiceFormat(132, "ALAW", 8, (7200, 8000)),
        VoiceFormat(133, "LINEAR", 16, (7200, 8000)),
    ),
    default_vsm=(128, 8000),
    line_voltage=False,
    forgets_vcid_after_voice=False,
    max_x=7,
)

IDENTITIES: dict[str, Identity] = {"conexant": CONEXANT, "usr": USR}

DEFAULT_S_REGISTERS: dict[int, int] = {
    0: 0, 1: 0, 2: 43, 3: 13, 4: 10, 5: 8, 6: 2, 7: 50, 8: 2, 10: 14, 12: 50,
}  # fmt: skip


@dataclass(frozen=True)
class VoiceSession:
    """One `AT+VTX` playback as the modem received it.

    `data` is the audio after un-shielding (<DLE><DLE> -> 0x10); `nbytes` counts all of it even
    if `data` was capped. `chunks` is (arrival time, bytes) per read, for checking the pace.
    `underruns` counts <DLE>u sent; `dropped` counts bytes that overflowed the playback buffer.
    """

    started: float
    ended: float
    nbytes: int
    data: bytes
    vsm: str
    chunks: tuple[tuple[float, int], ...] = ()
    underruns: int = 0
    dropped: int = 0
    completed: bool = True

    @property
    def duration_s(self) -> float:
        return self.ended - self.started

    @property
    def bytes_per_s(self) -> float:
        return self.nbytes / self.duration_s if self.duration_s > 0 else float("inf")


class _CommandError(Exception):
    """A command on the line is unknown or has a bad value: the line ends with ERROR."""


Mode = Literal["command", "voice_tx", "draining", "answering"]
_EXTENDED_RE = re.compile(r"([+#\-%][A-Z][A-Z0-9!%\-._/]*)\s*(=\?|\?|=)?(.*)", re.S)


@dataclass
class _Playback:
    started: float
    vsm: str
    rate: int
    capacity: int
    data: bytearray = field(default_factory=bytearray)
    nbytes: int = 0
    chunks: list[tuple[float, int]] = field(default_factory=list)
    pending_dle: bool = False
    etx_seen: int = 0
    level: float = 0.0
    clock: float = 0.0
    empty_since: float | None = None
    underrun_reported: bool = False
    underruns: int = 0
    dropped: int = 0
    ended: float | None = None
    drain_due: float = 0.0

    def advance(self, now: float) -> None:
        """Play audio out of the buffer up to `now`."""
        dt = max(0.0, now - self.clock)
        played = min(self.level, dt * self.rate)
        if self.level > 0 and played >= self.level:
            self.empty_since = self.clock + self.level / self.rate
        self.level -= played
        self.clock = now

    def take(self, audio: bytes | bytearray, now: float) -> None:
        if not audio:
            return
        self.nbytes += len(audio)
        room = MAX_STORED_AUDIO_BYTES - len(self.data)
        if room > 0:
            self.data += audio[:room]
        self.chunks.append((now, len(audio)))
        accepted = min(len(audio), max(0, int(self.capacity - self.level)))
        self.dropped += len(audio) - accepted
        self.level += accepted
        if self.level > 0:
            self.empty_since = None
            self.underrun_reported = False

    def session(self, completed: bool) -> VoiceSession:
        return VoiceSession(
            started=self.started,
            ended=self.ended if self.ended is not None else self.clock,
            nbytes=self.nbytes,
            data=bytes(self.data),
            vsm=self.vsm,
            chunks=tuple(self.chunks),
            underruns=self.underruns,
            dropped=self.dropped,
            completed=completed,
        )


class Firmware:
    """The AT command interpreter, hook relay, caller ID formatter and voice playback.

    All methods must be called by one thread at a time (modem.py holds a lock).
    """

    def __init__(
        self,
        identity: Identity,
        *,
        time_scale: float = 1.0,
        forget_vcid_after_voice: bool | None = None,
        cid_needs_country: bool = False,
        voice_buffer_s: float = 1.0,
        underrun_grace_s: float = 0.25,
        etx_required: int = 1,
    ) -> None:
        self.identity = identity
        self.time_scale = time_scale
        self.forget_vcid_after_voice = (
            identity.forgets_vcid_after_voice
            if forget_vcid_after_voice is None
            else forget_vcid_after_voice
        )
        self.cid_needs_country = cid_needs_country
        self.voice_buffer_s = voice_buffer_s
        self.underrun_grace_s = underrun_grace_s
        self.etx_required = max(1, etx_required)
        self.commands: list[tuple[float, str]] = []
        self.hook_events: list[tuple[float, bool]] = []
        self.voice_sessions: list[VoiceSession] = []
        self.country: str | None = None  # NVRAM: survives ATZ, AT&F and power cycles
        self.extension_off_hook = False
        self.line_dead = False  # the line, not the modem: survives resets and power cycles
        self.hung = False
        self.off_hook = False
        self._line = bytearray()
        self._overflow = False
        self._held = bytearray()
        self._playback: _Playback | None = None
        self._answer_due = 0.0
        self._reset_settings()
        self.mode: Mode = "command"

    # ----------------------------------------------------------------- power and reset

    def _reset_settings(self) -> None:
        self.echo = True
        self.verbose = True
        self.quiet = False
        self.vcid = False
        self.fclass = 0
        self.vsm = ",".join(str(v) for v in self.identity.default_vsm)
        self._vsm_values = (*self.identity.default_vsm, 0, 0)
        self.s_registers = dict(DEFAULT_S_REGISTERS)
        self._voice_used = False

    def _reset(self, now: float) -> None:
        """ATZ / AT&F: settings back to defaults and the line released."""
        self._reset_settings()
        self._set_hook(False, now)

    def power_on(self, now: float) -> None:
        """A fresh USB plug-in: power-on defaults, command mode, empty buffers."""
        self.power_off(now)
        self._reset_settings()

    def power_off(self, now: float) -> None:
        """The cable is pulled: any playback is cut short and the hook relay drops."""
        if self._playback is not None:
            self._playback.ended = now
            self.voice_sessions.append(self._playback.session(completed=False))
            self._playback = None
        self.mode = "command"
        self.hung = False
        self._line.clear()
        self._overflow = False
        self._held.clear()
        self._set_hook(False, now)

    def _set_hook(self, off_hook: bool, now: float) -> None:
        if off_hook != self.off_hook:
            self.off_hook = off_hook
            self.hook_events.append((now, off_hook))

    # ----------------------------------------------------------------- line state

    def line_volts(self) -> float:
        """Tip/ring DC voltage: ~48 V idle or ringing, ~8 V with any phone off-hook, 0 V on a
        dead line."""
        if self.line_dead:
            return DEAD_LINE_VOLTS
        if self.off_hook and self.extension_off_hook:
            return BOTH_OFF_HOOK_VOLTS
        if self.off_hook:
            return MODEM_OFF_HOOK_VOLTS
        if self.extension_off_hook:
            return EXTENSION_OFF_HOOK_VOLTS
        return ON_HOOK_VOLTS

    def decodes_cid(self, style: str) -> bool:
        """Would this modem print caller ID for a call of `style` ("uk" or "us") right now?

        Needs +VCID=1 / #CID=1. With `cid_needs_country`, a UK (V.23 FSK before the first ring)
        call also needs +GCI=B4, and a US (Bell 202 after the first ring) call a US country.
        """
        if not self.vcid or self.hung:
            return False
        if not self.cid_needs_country:
            return True
        country = self.country or FACTORY_COUNTRY
        return (country == "B4") == (style == "uk")

    # ----------------------------------------------------------------- output formatting

    def result(self, code: str) -> bytes:
        """A result code as the client sees it (ATV1 "\\r\\nOK\\r\\n", ATV0 "0\\r", ATQ1 none)."""
        if self.quiet:
            return b""
        if self.verbose:
            return f"\r\n{code}\r\n".encode("latin-1")
        return (NUMERIC_CODES.get(code, "4") + "\r").encode("latin-1")

    def _info(self, lines: list[str]) -> bytes:
        if not lines:
            return b""
        text = "\r\n".join(lines) + "\r\n"
        return (("\r\n" + text) if self.verbose else text).encode("latin-1", "replace")

    def unsolicited_ring(self) -> bytes:
        return self.result("RING")

    def cid_block(self, lines: tuple[str, ...] | list[str]) -> bytes:
        """Formatted caller ID: "\\r\\nDATE = 1124\\r\\nTIME = 0930\\r\\nNMBR = ...\\r\\n\\r\\n"."""
        if not lines:
            return b""
        return ("\r\n" + "".join(f"{ln}\r\n" for ln in lines) + "\r\n").encode("latin-1", "replace")

    # ----------------------------------------------------------------- input

    def receive(self, data: bytes, now: float) -> bytes:
        """Take bytes from the client; return the modem's answer."""
        out = bytearray()
        i = 0
        while i < len(data):
            if self.hung:
                self._collect(data[i:], now, out, execute=False)
                break
            if self.mode == "voice_tx":
                i += self._voice_bytes(data, i, now, out)
            elif self.mode == "draining":
                room = MAX_LINE_BYTES * 4 - len(self._held)
                self._held += data[i : i + max(0, room)]
                break
            elif self.mode == "answering":
                self._set_hook(False, now)
                self.mode = "command"
                out += self.result("NO CARRIER")
                i += 1
            else:
                i += self._collect(data[i:], now, out, execute=True)
        return bytes(out)

    def tick(self, now: float) -> bytes:
        """Output that is due because time passed."""
        if self.hung:
            return b""
        out = bytearray()
        if self.mode == "answering" and now >= self._answer_due:
            self._set_hook(False, now)
            self.mode = "command"
            out += self.result("NO CARRIER")
        pb = self._playback
        if self.mode == "voice_tx" and pb is not None:
            pb.advance(now)
            if (
                pb.level <= 0
                and not pb.underrun_reported
                and now - (pb.empty_since if pb.empty_since is not None else pb.started)
                >= self.underrun_grace_s
            ):
                pb.underrun_reported = True
                pb.underruns += 1
                out += bytes((DLE, ord("u")))
        if self.mode == "draining" and pb is not None and now >= pb.drain_due:
            self._playback = None
            self.mode = "command"
            out += self.result("OK")
            held, self._held = bytes(self._held), bytearray()
            out += self.receive(held, now)
        return bytes(out)

    def wants_ticks(self) -> bool:
        return self.mode != "command" and not self.hung

    def _collect(self, data: bytes, now: float, out: bytearray, *, execute: bool) -> int:
        """Gather command-line bytes; run each complete line. Returns bytes consumed."""
        for n, b in enumerate(data):
            if b in (0x0D, 0x0A):
                if self._line or self._overflow:
                    out += self._end_line(now, execute)
                    if execute and self.mode != "command":
                        return n + 1
            elif b in (0x08, 0x7F):
                if self._line:
                    self._line.pop()
            elif b == 0x00:
                continue
            elif len(self._line) < MAX_LINE_BYTES:
                self._line.append(b)
            else:
                self._overflow = True
        return len(data)

    def _end_line(self, now: float, execute: bool) -> bytes:
        raw = bytes(self._line)
        overflow = self._overflow
        self._line.clear()
        self._overflow = False
        text = raw.decode("latin-1")
        self.commands.append((now, text))
        if not execute:
            return b""
        out = raw + b"\r" if self.echo else b""
        upper = raw.upper()  # bytes.upper() is ASCII-only, as in modem firmware
        at = upper.find(b"AT")
        if overflow:
            return out + self.result("ERROR")
        if at < 0:
            return out  # no "AT": a Hayes modem is still hunting for the attention sequence
        return out + self._execute(upper[at + 2 :].decode("latin-1"), now)

    # ----------------------------------------------------------------- command execution

    def _execute(self, body: str, now: float) -> bytes:
        chunks: list[bytes] = []
        try:
            final = self._run(body, now, chunks)
        except _CommandError:
            final = "ERROR"
        return b"".join(chunks) + (self.result(final) if final else b"")

    def _run(self, body: str, now: float, chunks: list[bytes]) -> str:
        """Run every command on the line; return the final result code ("" for none yet)."""
        pos, n = 0, len(body)
        while pos < n:
            c = body[pos]
            if c in " \t;":
                pos += 1
                continue
            if c in "+#-%":
                end = body.find(";", pos)
                end = n if end < 0 else end
                info, final = self._extended(body[pos:end].strip(), now)
                chunks.append(self._info(info))
                if final is not None:
                    return final
                pos = end + 1
                continue
            if c == "&":
                letter = body[pos + 1 : pos + 2]
                pos, value = _digits(body, pos + 2)
                info = self._ampersand(letter, value, now)
                chunks.append(self._info(info))
                continue
            if c == "S":
                pos = self._s_register(body, pos + 1, chunks)
                continue
            if c == "D":
                return "NO CARRIER"  # dialling out is not modelled
            if c == "A":
                return self._answer(now)
            if c == "Z":
                _digits(body, pos + 1)
                self._reset(now)
                return "OK"  # V.250: the rest of the line after Z is ignored
            if not "A" <= c <= "Z":
                raise _CommandError(body[pos:])
            pos, value = _digits(body, pos + 1)
            info, final = self._basic(c, value, now)
            chunks.append(self._info(info))
            if final is not None:
                return final
        return "OK"

    def _basic(self, letter: str, value: int | None, now: float) -> tuple[list[str], str | None]:
        v = 0 if value is None else value

        def check(top: int) -> None:
            if not 0 <= v <= top:
                raise _CommandError(f"{letter}{v}")

        if letter == "E":
            check(1)
            self.echo = v == 1
        elif letter == "V":
            check(1)
            self.verbose = v == 1
        elif letter == "Q":
            check(1)
            self.quiet = v == 1
        elif letter == "H":
            check(1)
            self._set_hook(v == 1, now)
        elif letter == "I":
            check(9)
            text = self.identity.info.get(v)
            return ([text] if text else []), None
        elif letter in "LM":
            check(3)
        elif letter == "X":
            check(self.identity.max_x)
        elif letter == "W":
            check(2)
        elif letter == "B":
            check(1)
        elif letter in "PT":
            pass
        elif letter == "O":
            return [], "NO CARRIER"
        else:
            raise _CommandError(letter)
        return [], None

    def _ampersand(self, letter: str, value: int | None, now: float) -> list[str]:
        v = 0 if value is None else value
        if letter == "F":
            self._reset(now)
        elif letter == "V":
            return [
                f"E{int(self.echo)} Q{int(self.quiet)} V{int(self.verbose)}"
                f" +FCLASS={self.fclass} +VCID={int(self.vcid)}",
                " ".join(f"S{k:02d}:{val:03d}" for k, val in sorted(self.s_registers.items())),
            ]
        elif letter in "CDKSRHBNGYWAQ" and letter and v <= 9:
            pass
        else:
            raise _CommandError(f"&{letter}{v}")
        return []

    def _s_register(self, body: str, pos: int, chunks: list[bytes]) -> int:
        pos, reg = _digits(body, pos)
        if reg is None or reg > 255:
            raise _CommandError("S")
        if body[pos : pos + 1] == "?":
            chunks.append(self._info([f"{self.s_registers.get(reg, 0):03d}"]))
            return pos + 1
        if body[pos : pos + 1] == "=":
            pos, value = _digits(body, pos + 1)
            if value is None or value > 255:
                raise _CommandError(f"S{reg}=")
            self.s_registers[reg] = value
            return pos
        raise _CommandError(f"S{reg}")

    def _answer(self, now: float) -> str:
        self._set_hook(True, now)
        if self.fclass == 8:
            return "OK"
        self.mode = "answering"
        self._answer_due = now + self.s_registers.get(7, 50) * self.time_scale
        return ""

    # ----------------------------------------------------------------- extended commands

    def _extended(self, cmd: str, now: float) -> tuple[list[str], str | None]:
        m = _EXTENDED_RE.fullmatch(cmd)
        if not m:
            raise _CommandError(cmd)
        name, op, arg = m.group(1), m.group(2) or "", m.group(3).strip()
        if op == "" and arg:
            raise _CommandError(cmd)
        handler = self._extended_handlers().get(name)
        if handler is None:
            raise _CommandError(cmd)
        return handler(op, arg, now)

    def _extended_handlers(
        self,
    ) -> dict[str, Callable[[str, str, float], tuple[list[str], str | None]]]:
        handlers: dict[str, Callable[[str, str, float], tuple[list[str], str | None]]] = {
            "+GCI": self._gci,
            "+VCID": self._vcid,
            "#CID": self._vcid,
            "+FCLASS": self._fclass,
            "+VSM": self._vsm,
            "+VLS": self._vls,
            "+VTX": self._vtx,
            "+GMI": lambda op, arg, now: ([self.identity.manufacturer], None),
            "+GMM": lambda op, arg, now: ([self.identity.model], None),
            "+GMR": lambda op, arg, now: ([self.identity.revision], None),
            "+IFC": self._accept,
            "+IPR": self._accept,
            "+ICF": self._accept,
        }
        for name in ("+VIT", "+VGT", "+VGR", "+VSD", "+VRA", "+VRN", "+VTD", "+VNH", "+VIP"):
            handlers[name] = self._voice_setting
        if self.identity.line_voltage:
            handlers["-TRV"] = self._trv
            handlers["-STE"] = self._accept
        return handlers

    def _accept(self, op: str, arg: str, now: float) -> tuple[list[str], str | None]:
        """Settings the sim accepts and ignores (flow control, port rate, -STE)."""
        return (["0"] if op == "?" else []), None

    def _need_voice(self) -> None:
        if self.fclass != 8:
            raise _CommandError("not in voice mode (+FCLASS=8)")

    def _voice_setting(self, op: str, arg: str, now: float) -> tuple[list[str], str | None]:
        self._need_voice()
        return (["0"] if op == "?" else []), None

    def _gci(self, op: str, arg: str, now: float) -> tuple[list[str], str | None]:
        if op == "?":
            return [f"+GCI: {self.country or FACTORY_COUNTRY}"], None
        if op == "=?":
            return [f"+GCI: ({','.join(COUNTRIES)})"], None
        if op == "=" and arg in COUNTRIES:
            self.country = arg
            return [], None
        raise _CommandError(f"+GCI={arg}")

    def _vcid(self, op: str, arg: str, now: float) -> tuple[list[str], str | None]:
        if op == "?":
            return [str(int(self.vcid))], None
        if op == "=?":
            return ["(0,1)"], None
        if op == "=" and arg in ("0", "1"):
            self.vcid = arg == "1"
            return [], None
        raise _CommandError(f"+VCID={arg}")

    def _fclass(self, op: str, arg: str, now: float) -> tuple[list[str], str | None]:
        if op == "?":
            return [str(self.fclass)], None
        if op == "=?":
            return ["0,8"], None
        if op == "=" and arg in ("0", "8"):
            self.fclass = int(arg)
            if self.fclass == 0 and self._voice_used:
                self._voice_used = False
                if self.forget_vcid_after_voice:
                    self.vcid = False  # Conexant quirk: +VCID=1 lost after a voice session
            return [], None
        raise _CommandError(f"+FCLASS={arg}")

    def _vsm(self, op: str, arg: str, now: float) -> tuple[list[str], str | None]:
        self._need_voice()
        if op == "?":
            return [",".join(str(v) for v in self._vsm_values)], None
        if op == "=?":
            return [
                f'{f.cml},"{f.name}",{f.bits},0,({",".join(map(str, f.rates))}),(0),(0)'
                for f in self.identity.voice_formats
            ], None
        if op != "=":
            raise _CommandError("+VSM")
        parts = [p.strip() for p in arg.split(",")]
        if not 2 <= len(parts) <= 4 or not all(_is_decimal(p) for p in parts):
            raise _CommandError(f"+VSM={arg}")
        cml, rate, *rest = (int(p) for p in parts)
        fmt = next((f for f in self.identity.voice_formats if f.cml == cml), None)
        if fmt is None or rate not in fmt.rates or any(r != 0 for r in rest):
            raise _CommandError(f"+VSM={arg}")
        self.vsm = arg
        self._vsm_values = (cml, rate, 0, 0)
        return [], None

    def _vls(self, op: str, arg: str, now: float) -> tuple[list[str], str | None]:
        self._need_voice()
        if op == "?":
            return [str(int(self.off_hook))], None
        if op == "=?":
            return ["0,1"], None
        if op == "=" and arg in ("0", "1"):
            self._set_hook(arg == "1", now)
            return [], None
        raise _CommandError(f"+VLS={arg}")

    def _vtx(self, op: str, arg: str, now: float) -> tuple[list[str], str | None]:
        self._need_voice()
        if op or not self.off_hook:
            raise _CommandError("+VTX needs +FCLASS=8 and the line off-hook (+VLS=1)")
        rate = self._vsm_values[1]
        self._playback = _Playback(
            started=now,
            vsm=self.vsm,
            rate=rate,
            capacity=max(1, int(self.voice_buffer_s * rate)),
            clock=now,
        )
        self._voice_used = True
        self.mode = "voice_tx"
        return [], "CONNECT"

    def _trv(self, op: str, arg: str, now: float) -> tuple[list[str], str | None]:
        if op:
            raise _CommandError("-TRV")
        return [f"{self.line_volts():.2f}"], None

    # ----------------------------------------------------------------- voice transmit

    def _voice_bytes(self, data: bytes, start: int, now: float, out: bytearray) -> int:
        """Un-shield audio from data[start:]; returns how many bytes were consumed."""
        pb = self._playback
        assert pb is not None
        pb.advance(now)
        audio = bytearray()
        i = start
        while i < len(data):
            b = data[i]
            i += 1
            if pb.pending_dle:
                pb.pending_dle = False
                if b == DLE:
                    audio.append(DLE)
                elif b == ETX:
                    pb.etx_seen += 1
                    if pb.etx_seen >= self.etx_required:
                        pb.take(audio, now)
                        self._end_playback(now)
                        return i - start
            elif b == DLE:
                pb.pending_dle = True
            else:
                audio.append(b)
        pb.take(audio, now)
        return i - start

    def _end_playback(self, now: float) -> None:
        pb = self._playback
        assert pb is not None
        pb.ended = now
        pb.drain_due = now + pb.level / pb.rate
        self.voice_sessions.append(pb.session(completed=True))
        self.mode = "draining"


def _is_decimal(text: str) -> bool:
    return bool(text) and all("0" <= ch <= "9" for ch in text)


def _digits(body: str, pos: int) -> tuple[int, int | None]:
    """Read up to five ASCII digits at `pos`: (position after them, value or None)."""
    end = pos
    while end < len(body) and "0" <= body[end] <= "9" and end - pos < 5:
        end += 1
    return end, (int(body[pos:end]) if end > pos else None)
