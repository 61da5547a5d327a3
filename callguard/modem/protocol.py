"""The modem's AT protocol as a pure state machine: bytes in, events out.

Theory of operation
-------------------
Like h11 does for HTTP, this module never touches a serial port, a thread or a clock.
The transport calls :meth:`ModemProtocol.receive_data` with whatever bytes arrived and then
drains :meth:`ModemProtocol.next_event`; to send a command it calls
:meth:`ModemProtocol.send_command`, which returns the bytes to write and numbers the command
(:attr:`ModemProtocol.awaiting` is then that :class:`Command`). The parser is the one owner of
which commands the modem still owes a final result; see "Replies" below.

Framing rules (they hold for every modem family we know):

* A modem frames its output as lines. CR, LF, CRLF, LFCR and runs of them all end a line; empty
  lines carry nothing. Hayes/V.250 verbose result codes (``OK``, ``ERROR``, ``CONNECT`` ...) are
  single lines. With echo on (``ATE1``, the power-on default) the command comes back first.
* A line longer than :data:`MAX_LINE_BYTES` is cut there; the rest of it, up to the next line end,
  is dropped and reported once as a truncated :class:`Unsolicited`, so an endless stream without
  a line end cannot grow memory.
* NUL bytes are dropped (some USB modems pad with them). Other bytes are decoded as UTF-8, with
  invalid sequences replaced, and control characters removed.
* ``<DLE>`` (0x10) introduces a two-byte shielded code (ITU-T V.253 / IS-101 voice mode). It is
  recognised anywhere in the stream, including in the middle of a text line, and is split out as
  a :class:`DleCode` event. ``<DLE><DLE>`` stands for one 0x10 data byte (only meaningful in
  voice receive, which CallGuard does not use; it is dropped).

Caller ID (formatted, ``AT+VCID=1``; on older Rockwell/USR firmware ``AT#CID=1``):

* The modem prints ``DATE = MMDD``, ``TIME = HHMM``, ``NMBR = ...``, optionally ``NAME = ...``,
  and ``MESG = <hex>`` for parameters it does not decode. Spaces around ``=`` vary by firmware
  (USR 5637 writes ``NMBR = ``; some Conexant builds ``NMBR=``). Other firmware names the
  number ``DDN_NMBR`` or ``DDN`` (Rockwell) or ``NBR`` (Kortex). Kortex also gives the date and
  time on one line (``DATE TIME=11/24 22:10``) and rings as ``CID RING`` (a :class:`Ring`);
  ZyXEL gives the whole caller ID on one line, ``FM:<caller> TO:<the number called>``.
* In the UK (BT SIN 227 / ETSI EN 300 659) the burst comes *before* the first RING and usually
  without NAME; in the US (Bellcore GR-30) between the first and second RING. So a
  :class:`CallerId` event is produced **the moment the number line arrives**, never held back
  for NAME or RING, and a RING never clears it.
* A NAME, MESG or second NMBR line in the same burst refines the call: another
  :class:`CallerId` with the same ``burst`` number and ``refined=True``. A number followed by an
  absence marker (``NMBR = O``, seen on some networks) keeps the number.
* DATE/TIME alone are held until the number arrives. A burst that ends (on RING or an
  unsolicited line; replies to our own commands may interleave and do not end it) with fields
  but no NMBR produces a :class:`CallerId` with ``absence=Absence.MISSING``.
* Absence markers (SIN 227 "reason for absence": P = private/withheld, O = unavailable) and the
  words firmware prints for them are mapped to :class:`Absence`; an unknown value keeps its raw
  text with ``Absence.OTHER``.

Replies
-------
A V.250 modem executes one command line at a time and ends each with exactly one final result
(``OK``, ``ERROR``, ``CONNECT`` ...); it does not read (or echo) the next line until it has sent
that result. So the parser keeps the commands the modem still *owes* a final, oldest first, and
every final result event says which :class:`Command` it answers (``answers``) and whether that
command had been cancelled (``late``). A command is owed from :meth:`ModemProtocol.send_command`
(or :meth:`ModemProtocol.expect_final`, for a raw write such as ``<DLE><ETX>`` that ends in a
final result without a command line) until its final arrives or a rule below drops it. When
the host gives up waiting it calls :meth:`ModemProtocol.cancel_command`: the command stays owed,
because a slow modem will still answer it, and that late answer must not be taken for the next
command's (a late ``OK`` to ``AT`` must never say that a later ``ATH0`` was done).

The rules, in the order they are applied when a line arrives:

==  ======================  ====================================================================
1   echo                    An echoed command line (``ATE1``, the power-on default) that matches
                            an owed command (the newest with that text) shows the modem has
                            reached that line: every older owed command is dropped (the modem
                            never heard it, or has answered it already). Identical lines are
                            interchangeable here and in rule 2: an ``ATH0``'s answer is an
                            ``ATH0``'s answer, whichever of two it was.
2   same command again      If every owed command up to the oldest one still awaited has the
                            same text (``ATH0`` tried again, ``<DLE><ETX>`` sent again), the
                            answer goes to the awaited one and the cancelled ones are dropped:
                            whichever of them the modem answers, it is that command's answer.
3   bounded late run        After :data:`MAX_LATE_RUN` finals in a row were taken as late answers
                            to cancelled commands while a newer command was awaited, the next
                            answer goes to the awaited command and the cancelled ones before it
                            are dropped. A command the modem never heard (a modem just powered
                            on, echo off) would otherwise take the next command's answer, that
                            one time out and take the answer after it, and so on for ever; this
                            bounds the commands it starves to :data:`MAX_LATE_RUN`. The price: a
                            modem slower than the timeout that many times running, yet answering
                            each time, has its next late answer taken for the awaited command.
                            An answer to an awaited command, a matching echo, or a late final
                            with no newer command awaited (plainly late) ends the run.
4   in order                Otherwise a final result answers the oldest owed command: an awaited
                            one (``late=False``) or a cancelled one (``late=True``, for the host
                            to drop). A final when nothing is owed answers nothing
                            (``answers=None``).
5   information lines       Any other line answers the command rules 1-4 pick if it is awaited:
                            an :class:`Info` (for ``AT-TRV``, Conexant tip/ring voltage, a
                            numeric line is a :class:`LineVoltage`) naming it in ``answers``.
                            With no awaited command to answer it, a line that is neither RING
                            nor caller ID is :class:`Unsolicited`.
==  ======================  ====================================================================

At most :data:`MAX_OWED` commands are kept owed (the oldest are dropped), so a modem that never
answers cannot grow memory.
"""

from __future__ import annotations

import enum
import re
from collections import deque
from dataclasses import dataclass, field

DLE = 0x10
ETX = 0x03
DLE_ETX = bytes([DLE, ETX])
"""End of voice data sent by the host (V.253 ``<DLE><ETX>``)."""

MAX_LINE_BYTES = 256
"""Longest line kept. Real modem lines are under 100 bytes; MESG of a long name stays under 200."""

MAX_PENDING_EVENTS = 1024
"""Events kept for a consumer that never drains; the oldest are dropped past this."""

MAX_LATE_RUN = 2
"""Finals in a row taken as late answers to cancelled commands while a newer command waits,
after which the next answer goes to the newer command (rule 3 in the module docstring)."""

MAX_OWED = 16
"""Commands kept owed a final result; the oldest is dropped past this."""


# --------------------------------------------------------------------------------------------
# Events
# --------------------------------------------------------------------------------------------


class Event:
    """Base class of everything the parser reports."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class Command:
    """One command the host sent, numbered by the parser: what a reply answers.

    ``seq`` counts commands since the parser started (1, 2, ...). ``text`` is the command line
    upper-cased (``ATH0``), or for a raw write that ends in a final result the label it was
    given (``<DLE><ETX>``); ``line`` is False then (nothing is echoed for it).
    """

    seq: int
    text: str
    line: bool = True


@dataclass(frozen=True, slots=True)
class Ok(Event):
    """Final result ``OK``. ``answers`` is the command it ends (None: none was owed); ``late``
    is True when that command had been cancelled, so the answer is nobody's reply."""

    answers: Command | None = None
    late: bool = False


@dataclass(frozen=True, slots=True)
class Error(Event):
    """A final result that means the command failed: ``ERROR``, ``+CME ERROR: n``, ``BUSY``,
    ``NO DIALTONE``, ``NO ANSWER``, ``NO CARRIER``. ``text`` is the line as sent; ``answers``
    and ``late`` as for :class:`Ok`."""

    text: str = "ERROR"
    answers: Command | None = None
    late: bool = False


@dataclass(frozen=True, slots=True)
class Connect(Event):
    """``CONNECT`` (in voice mode: the modem is ready for audio after ``AT+VTX``); ``answers``
    and ``late`` as for :class:`Ok`."""

    detail: str = ""
    answers: Command | None = None
    late: bool = False


@dataclass(frozen=True, slots=True)
class Ring(Event):
    """One ``RING`` result (or ``<DLE>R`` in voice mode on USR firmware)."""


class Absence(enum.Enum):
    """Why a caller-ID burst carries no number (SIN 227 'reason for absence of CLI')."""

    WITHHELD = "withheld"
    """``P``, ``PRIVATE``, ``WITHHELD``, ``ANONYMOUS``: the caller withheld it (141 in the UK)."""
    UNAVAILABLE = "unavailable"
    """``O``, ``OUT-OF-AREA``, ``UNAVAILABLE``, ``UNKNOWN`` or empty: the network cannot give it
    (international, payphone, some VoIP gateways)."""
    OTHER = "other"
    """A value that is neither a number nor a known marker (kept raw, for the log)."""
    MISSING = "missing"
    """DATE/TIME/NAME arrived but no NMBR line at all."""


@dataclass(frozen=True, slots=True)
class CallerId(Event):
    """Caller ID for one call, delivered as soon as the number line arrives.

    ``number`` is the digits as the network sent them (``01707354000``, ``+441707354000``), or
    None with ``absence`` saying why. ``raw_number`` is the NMBR value as printed.
    ``burst`` counts caller-ID bursts since the parser started; events with the same burst are
    the same call, later ones (``refined=True``) adding NAME or MESG.
    """

    number: str | None
    absence: Absence | None = None
    raw_number: str = ""
    name: str | None = None
    date: str | None = None
    time: str | None = None
    mesg: tuple[str, ...] = ()
    burst: int = 0
    refined: bool = False


@dataclass(frozen=True, slots=True)
class LineVoltage(Event):
    """Tip/ring voltage from Conexant ``AT-TRV`` (about 48 V on-hook, 5-12 V off-hook)."""

    volts: float
    answers: Command | None = None


class DleMeaning(enum.Enum):
    """Shielded codes a modem sends in voice mode (ITU-T V.253 section 9, IS-101)."""

    BUSY = "b"
    DIAL_TONE = "d"
    SILENCE = "s"
    QUIET = "q"
    HANDSET_ON_HOOK = "h"
    HANDSET_OFF_HOOK = "H"
    EXTENSION_PICKUP = "P"  # Conexant, with AT-STE telephony extension enabled
    LOOP_BREAK = "l"
    LOOP_POLARITY_REVERSAL = "L"
    RING = "R"  # USR 5637 reports rings this way while in voice mode
    TX_UNDERRUN = "u"
    RX_OVERRUN = "o"
    CALLING_TONE = "c"
    FAX_ANSWER_TONE = "a"
    DATA_CALLING_TONE = "e"
    ETX = "\x03"  # end of voice data
    DTMF = "dtmf"
    UNKNOWN = "?"


_DLE_BY_CHAR = {m.value: m for m in DleMeaning if len(m.value) == 1 and m is not DleMeaning.UNKNOWN}
_DTMF_CHARS = frozenset("0123456789*#ABCD")


@dataclass(frozen=True, slots=True)
class DleCode(Event):
    """A ``<DLE>x`` code from the modem. ``code`` is the character after DLE."""

    code: str
    meaning: DleMeaning


@dataclass(frozen=True, slots=True)
class Echo(Event):
    """The modem echoing a command back (``ATE1``, the power-on default). ``answers`` is the
    owed command it echoes, if any."""

    text: str
    answers: Command | None = None


@dataclass(frozen=True, slots=True)
class Info(Event):
    """An information line answering the awaited command (``ATI0`` -> ``5601``): ``command`` is
    its text, ``answers`` the command itself."""

    command: str
    text: str
    answers: Command | None = None


@dataclass(frozen=True, slots=True)
class Unsolicited(Event):
    """Any other line. ``truncated`` marks a line cut at :data:`MAX_LINE_BYTES`."""

    text: str
    truncated: bool = False


FINAL_EVENTS = (Ok, Error, Connect)
"""Events that end a command."""

FinalEvent = Ok | Error | Connect


# --------------------------------------------------------------------------------------------
# Commands
# --------------------------------------------------------------------------------------------


class ProtocolError(ValueError):
    """The host tried to send something the modem protocol cannot carry."""


_COMMAND_RE = re.compile(r"(?:AT|A/)[\x20-\x7e]*", re.IGNORECASE)


def encode_command(command: str) -> bytes:
    """Bytes for one AT command line (V.250: terminated by CR, S3 default 13).

    Raises :class:`ProtocolError` for text that is not one printable-ASCII AT command, since a
    stray CR or non-ASCII byte would split or corrupt what the modem executes.
    """
    if not _COMMAND_RE.fullmatch(command):
        raise ProtocolError(
            f"cannot send {command!r} to the modem: a command is one line of printable ASCII "
            "starting with AT"
        )
    return command.encode("ascii") + b"\r"


def shield(audio: bytes) -> bytes:
    """DLE-shield outgoing voice data: every 0x10 byte is sent twice (V.253 8.3)."""
    return audio.replace(b"\x10", b"\x10\x10")


def unshield(data: bytes) -> bytes:
    """Undo :func:`shield` (for tests and the simulator)."""
    return data.replace(b"\x10\x10", b"\x10")


def decode_mesg(hex_text: str) -> list[tuple[int, bytes]]:
    """Split a MESG hex string into SIN 227 / EN 300 659 parameters ``(type, value)``.

    Parameter types of interest: 0x01 date and time, 0x02 calling line identity, 0x04 reason
    for absence of CLI (``O``/``P``), 0x07 calling party name, 0x08 reason for absence of name,
    0x11 call type. Returns what decodes cleanly and stops at the first inconsistent length.
    """
    text = "".join(hex_text.split())
    try:
        data = bytes.fromhex(text)
    except ValueError:
        return []
    params: list[tuple[int, bytes]] = []
    i = 0
    while i + 2 <= len(data):
        ptype, length = data[i], data[i + 1]
        value = data[i + 2 : i + 2 + length]
        if len(value) != length:
            break
        params.append((ptype, value))
        i += 2 + length
    return params


# --------------------------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------------------------

_CID_FIELD_RE = re.compile(
    r"^\s*(DATE\s*TIME|DATE|TIME|DDN_NMBR|DDN|NMBR|NBR|NAME|MESG)\s*=\s?(.*?)\s*$",
    re.IGNORECASE,
)
_CID_KEYS: dict[str, str] = {"DDN_NMBR": "NMBR", "DDN": "NMBR", "NBR": "NMBR"}
"""Other firmware's names for the number line: Rockwell's ``DDN_NMBR`` and ``DDN``, Kortex's
(and some Conexant builds') ``NBR``."""
_DATE_TIME_RE = re.compile(r"^\s*(\d{1,2})/(\d{1,2})\s+(\d{1,2}):?(\d{2})\s*$")
"""Kortex's one ``DATE TIME=11/24 22:10`` line: month/day hour:minute."""
_ZYXEL_RE = re.compile(r"^\s*FM:\s*(.*?)(?:\s+TO:\s*(.*?))?\s*$", re.IGNORECASE)
"""ZyXEL's one-line caller ID, ``FM:<caller> TO:<the number called>``."""

ABSENCE_WORDS: dict[str, Absence] = {
    "P": Absence.WITHHELD,
    "PRIVATE": Absence.WITHHELD,
    "WITHHELD": Absence.WITHHELD,
    "ANONYMOUS": Absence.WITHHELD,
    "BLOCKED": Absence.WITHHELD,
    "RESTRICTED": Absence.WITHHELD,
    "O": Absence.UNAVAILABLE,
    "OUT-OF-AREA": Absence.UNAVAILABLE,
    "OUT OF AREA": Absence.UNAVAILABLE,
    "UNAVAILABLE": Absence.UNAVAILABLE,
    "UNKNOWN": Absence.UNAVAILABLE,
    "": Absence.UNAVAILABLE,
}

"""What networks send instead of a number (or a name): the one table of these words."""


def absence_of(text: str) -> Absence | None:
    """The absence that ``text`` stands for (``P``, ``PRIVATE``, ``O`` ...), or None for a value."""
    return ABSENCE_WORDS.get(text.strip().upper())


_NUMBER_RE = re.compile(r"^\+?[0-9][0-9 ()\-.]*$")
_VOLTS_RE = re.compile(r"^([+-]?\d{1,3}(?:\.\d+)?)\s*V?$", re.IGNORECASE)
_LINE_ENDS_RE = re.compile(rb"[\r\n]+")
_NOT_DIGIT_RE = re.compile(r"[^0-9]")
_SPACES_RE = re.compile(r"\s+")
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")

_FINAL_RESULTS: dict[str, type[Event]] = {
    "OK": Ok,
    "ERROR": Error,
    "NO CARRIER": Error,
    "BUSY": Error,
    "NO DIALTONE": Error,
    "NO DIAL TONE": Error,
    "NO ANSWER": Error,
}


def classify_number(raw: str) -> tuple[str | None, Absence | None]:
    """Split an NMBR value into (digits, None) or (None, why there is no number)."""
    value = raw.strip()
    word = value.upper()
    if word in ABSENCE_WORDS:
        return None, ABSENCE_WORDS[word]
    if _NUMBER_RE.match(value):
        digits = _NOT_DIGIT_RE.sub("", value)
        return ("+" + digits if value.startswith("+") else digits), None
    return None, Absence.OTHER


@dataclass(slots=True)
class _Owed:
    """A command the modem owes a final result; ``cancelled`` once the host stopped waiting."""

    command: Command
    cancelled: bool = False


@dataclass
class _Burst:
    """Caller-ID fields gathered for the call being announced."""

    number: str | None = None
    absence: Absence | None = None
    raw_number: str = ""
    name: str | None = None
    date: str | None = None
    time: str | None = None
    mesg: list[str] = field(default_factory=list)
    announced: bool = False
    fields: int = 0


class ModemProtocol:
    """Sans-IO parser and encoder for one modem connection.

    >>> p = ModemProtocol()
    >>> p.receive_data(b"\\r\\nDATE = 1124\\r\\nTIME = 0930\\r\\nNMBR = 01707354000\\r\\n")
    >>> p.next_event().number
    '01707354000'
    """

    def __init__(self) -> None:
        self._line = bytearray()
        self._overflowed = False
        self._after_dle = False
        self._events: deque[Event] = deque(maxlen=MAX_PENDING_EVENTS)
        self._owed: deque[_Owed] = deque()
        self._sent = 0
        self._late_run = 0
        self._burst: _Burst | None = None
        self._bursts = 0

    # -- outgoing ---------------------------------------------------------------------------

    def send_command(self, command: str) -> bytes:
        """Bytes to write for ``command``, which is owed a final result from now on and is
        :attr:`awaiting` until it gets it or is cancelled."""
        data = encode_command(command)
        self._owe(command.upper(), line=True)
        return data

    def expect_final(self, label: str) -> Command:
        """Owe a final result to a raw write that is not a command line (``<DLE><ETX>`` at the
        end of voice transmit, answered ``OK``); ``label`` names it in events and logs."""
        return self._owe(label, line=False)

    @property
    def awaiting(self) -> Command | None:
        """The newest command sent that is neither answered nor cancelled."""
        for owed in reversed(self._owed):
            if not owed.cancelled:
                return owed.command
        return None

    @property
    def outstanding(self) -> tuple[Command, ...]:
        """Every command the modem still owes a final result, oldest first, cancelled or not."""
        return tuple(owed.command for owed in self._owed)

    def cancel_command(self, command: Command) -> None:
        """The host gave up waiting for ``command``. It stays owed: its final result, when it
        comes, is reported ``late`` instead of answering a newer command. Nothing happens if
        it has been answered (or dropped) already."""
        for owed in self._owed:
            if owed.command == command:
                owed.cancelled = True

    def _owe(self, text: str, line: bool) -> Command:
        self._sent += 1
        command = Command(self._sent, text, line)
        self._owed.append(_Owed(command))
        while len(self._owed) > MAX_OWED:
            self._owed.popleft()
        return command

    def _answering(self) -> _Owed | None:
        """The owed command the modem's next answer belongs to: rules 2 to 4 (rules 2 and 3
        drop the cancelled commands they skip)."""
        owed = self._owed
        if not owed or not owed[0].cancelled:
            return owed[0] if owed else None
        awaited = next((i for i, o in enumerate(owed) if not o.cancelled), None)
        if awaited is None:
            return owed[0]
        text = owed[awaited].command.text
        same = all(owed[i].command.text == text for i in range(awaited))
        if same or self._late_run >= MAX_LATE_RUN:
            for _ in range(awaited):
                owed.popleft()
        return owed[0]

    # -- incoming ---------------------------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        """Feed bytes exactly as they came from the modem, in any chunking."""
        if self._after_dle or b"\x10" in data or b"\x00" in data:
            self._receive_bytes(data)
            return
        # plain text (all of command mode: a caller ID burst, RING, replies): a line at a time,
        # the same as byte by byte, which a caller ID arriving on the seize path cannot wait for
        # (a run of line ends is one: the empty lines between them say nothing)
        *ended, rest = _LINE_ENDS_RE.split(data)
        for part in ended:
            if part or self._line:
                self._append(part)
                self._end_line()
        self._append(rest)

    def _append(self, part: bytes) -> None:
        room = MAX_LINE_BYTES - len(self._line)
        if len(part) > room:
            self._line += part[:room]
            self._overflowed = True
        else:
            self._line += part

    def _receive_bytes(self, data: bytes) -> None:
        """Byte by byte: DLE codes, NULs and all (the reference :meth:`receive_data` keeps to)."""
        for byte in data:
            if self._after_dle:
                self._after_dle = False
                self._dle(byte)
            elif byte == DLE:
                self._after_dle = True
            elif byte in (0x0D, 0x0A):
                self._end_line()
            elif byte == 0x00:
                continue
            elif len(self._line) < MAX_LINE_BYTES:
                self._line.append(byte)
            else:
                self._overflowed = True

    def next_event(self) -> Event | None:
        """The next parsed event, or None when everything fed so far has been reported."""
        return self._events.popleft() if self._events else None

    def events(self) -> list[Event]:
        """All pending events, oldest first."""
        out = list(self._events)
        self._events.clear()
        return out

    # -- internals --------------------------------------------------------------------------

    def _dle(self, byte: int) -> None:
        if byte == DLE:
            return  # a shielded 0x10 data byte: voice receive data, not used here
        char = chr(byte)
        if char in _DTMF_CHARS:
            meaning = DleMeaning.DTMF
        else:
            meaning = _DLE_BY_CHAR.get(char, DleMeaning.UNKNOWN)
        if meaning is DleMeaning.RING:
            self._end_burst()
            self._events.append(Ring())
        self._events.append(DleCode(char, meaning))

    def _end_line(self) -> None:
        raw = bytes(self._line)
        truncated = self._overflowed
        self._line.clear()
        self._overflowed = False
        text = _CONTROL_RE.sub("", raw.decode("utf-8", errors="replace")).strip()
        if text:
            self._line_received(text, truncated)

    def _line_received(self, text: str, truncated: bool) -> None:
        if truncated:
            self._end_burst()
            self._events.append(Unsolicited(text, truncated=True))
            return
        upper = text.upper()
        if upper in ("RING", "CID RING"):  # Kortex rings as "CID RING" when caller ID is on
            self._end_burst()
            self._events.append(Ring())
            return
        cid = _CID_FIELD_RE.match(text)
        if cid:
            key = _SPACES_RE.sub(" ", cid.group(1).upper())
            if key == "DATE TIME":
                self._date_time(cid.group(2))
            else:
                self._cid_field(_CID_KEYS.get(key, key), cid.group(2))
            return
        zyxel = _ZYXEL_RE.match(text)
        if zyxel:
            if self._burst is not None and self._burst.announced:
                self._end_burst()  # a new call
            self._cid_field("NMBR", zyxel.group(1))
            return
        if upper.startswith("AT") or upper.startswith("A/"):
            self._events.append(Echo(text, self._echoed(upper)))
            return
        final = _FINAL_RESULTS.get(upper)
        if final is None and upper.startswith("+CME ERROR"):
            final = Error
        if final is Ok:
            answers, late = self._answered()
            self._events.append(Ok(answers, late))
            return
        if final is Error:
            answers, late = self._answered()
            self._events.append(Error(text, answers, late))
            return
        if upper == "CONNECT" or upper.startswith("CONNECT "):
            answers, late = self._answered()
            self._events.append(Connect(text[7:].strip(), answers, late))
            return
        owed = self._answering()
        if owed is not None and not owed.cancelled:
            command = owed.command
            if command.text.endswith("-TRV"):
                volts = _VOLTS_RE.match(text)
                if volts:
                    self._events.append(LineVoltage(float(volts.group(1)), command))
                    return
            self._events.append(Info(command.text, text, command))
            return
        self._end_burst()
        self._events.append(Unsolicited(text))

    def _echoed(self, upper: str) -> Command | None:
        """Rule 1: the owed command this echo is of (the newest with its text); older ones go."""
        owed = self._owed
        for i in range(len(owed) - 1, -1, -1):
            command = owed[i].command
            if command.line and command.text.strip() == upper:
                for _ in range(i):
                    owed.popleft()
                self._late_run = 0
                return command
        return None

    def _answered(self) -> tuple[Command | None, bool]:
        """A final result arrived: the command it ends and whether that one was cancelled."""
        owed = self._answering()
        if owed is None:
            return None, False
        self._owed.popleft()
        if not owed.cancelled:
            self._late_run = 0
        elif any(not o.cancelled for o in self._owed):
            self._late_run += 1  # a newer command waits: this answer may have been its
        else:
            self._late_run = 0  # nothing newer waits: plainly a late answer
        return owed.command, owed.cancelled

    def _cid_field(self, key: str, value: str) -> None:
        burst = self._burst
        if burst is not None and key in ("DATE", "TIME") and burst.announced:
            self._end_burst()  # a new call's header after a complete burst
            burst = None
        if burst is None:
            self._bursts += 1
            burst = self._burst = _Burst()
        burst.fields += 1
        refine = False
        if key == "DATE":
            burst.date = value or None
        elif key == "TIME":
            burst.time = value or None
        elif key == "NAME":
            burst.name = value or None
            refine = True
        elif key == "MESG":
            burst.mesg.append(value)
            refine = True
        else:  # NMBR (or another firmware's name for it)
            number, absence = classify_number(value)
            if burst.number is not None and number is None:
                return  # "a number then NMBR = O": keep the number
            if burst.announced and number == burst.number and absence == burst.absence:
                return
            burst.number, burst.absence, burst.raw_number = number, absence, value
            refine = True
        if refine and (burst.announced or key == "NMBR"):
            self._announce(burst)

    def _date_time(self, value: str) -> None:
        """Kortex's ``DATE TIME=11/24 22:10``: the DATE (MMDD) and TIME (HHMM) of one burst."""
        found = _DATE_TIME_RE.match(value)
        if found is None:
            self._cid_field("DATE", "")  # a burst starts; a date it cannot read is no date
            return
        month, day, hour, minute = (int(g) for g in found.groups())
        self._cid_field("DATE", f"{month:02d}{day:02d}")
        self._cid_field("TIME", f"{hour:02d}{minute:02d}")

    def _announce(self, burst: _Burst) -> None:
        self._events.append(
            CallerId(
                number=burst.number,
                absence=burst.absence,
                raw_number=burst.raw_number,
                name=burst.name,
                date=burst.date,
                time=burst.time,
                mesg=tuple(burst.mesg),
                burst=self._bursts,
                refined=burst.announced,
            )
        )
        burst.announced = True

    def _end_burst(self) -> None:
        burst = self._burst
        self._burst = None
        if burst is not None and not burst.announced:
            burst.absence = Absence.MISSING
            self._announce(burst)
