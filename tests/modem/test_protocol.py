"""The sans-IO modem protocol: transcripts fed whole, byte by byte and in random chunks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callguard.modem.protocol import (
    DLE_ETX,
    MAX_LATE_RUN,
    MAX_LINE_BYTES,
    MAX_OWED,
    Absence,
    CallerId,
    Command,
    Connect,
    DleCode,
    DleMeaning,
    Echo,
    Error,
    Event,
    Info,
    LineVoltage,
    ModemProtocol,
    Ok,
    ProtocolError,
    Ring,
    Unsolicited,
    classify_number,
    decode_mesg,
    encode_command,
    shield,
    unshield,
)


def cid(number: str | None, **kw: object) -> CallerId:
    fields: dict[str, object] = {"number": number, "burst": 1}
    fields.update(kw)
    if "raw_number" not in fields:
        fields["raw_number"] = number or ""
    return CallerId(**fields)  # type: ignore[arg-type]


def sent(text: str, seq: int = 1) -> Command:
    """The command the parser numbered ``seq`` (the first one sent, by default)."""
    return Command(seq, text)


UK_CALL = b"\r\nDATE = 1124\r\nTIME = 0930\r\nNMBR = 01707354000\r\n\r\n\r\nRING\r\n\r\nRING\r\n"
US_CALL = (
    b"\r\nRING\r\n\r\nDATE = 1124\r\nTIME = 0930\r\nNMBR = 2025550143\r\nNAME = SMITH JOHN\r\n"
    b"\r\nRING\r\n"
)

# (name, command sent first or None, bytes from the modem, expected events)
TRANSCRIPTS: list[tuple[str, str | None, bytes, list[Event]]] = [
    (
        "uk: number before the first ring, no NAME, RING does not clear it",
        None,
        UK_CALL,
        [cid("01707354000", date="1124", time="0930"), Ring(), Ring()],
    ),
    (
        "us: ring, then number, then NAME refines the same call",
        None,
        US_CALL,
        [
            Ring(),
            cid("2025550143", date="1124", time="0930"),
            cid("2025550143", date="1124", time="0930", name="SMITH JOHN", refined=True),
            Ring(),
        ],
    ),
    (
        "no spaces around '='",
        None,
        b"DATE=1124\rTIME=0930\rNMBR=01707354000\r",
        [cid("01707354000", date="1124", time="0930")],
    ),
    (
        "withheld P",
        None,
        b"\r\nDATE = 1124\r\nTIME = 0930\r\nNMBR = P\r\n\r\nRING\r\n",
        [
            cid(None, absence=Absence.WITHHELD, raw_number="P", date="1124", time="0930"),
            Ring(),
        ],
    ),
    (
        "unavailable O",
        None,
        b"NMBR = O\r\n",
        [cid(None, absence=Absence.UNAVAILABLE, raw_number="O")],
    ),
    (
        "PRIVATE",
        None,
        b"NMBR = PRIVATE\n",
        [cid(None, absence=Absence.WITHHELD, raw_number="PRIVATE")],
    ),
    (
        "OUT-OF-AREA",
        None,
        b"NMBR = OUT-OF-AREA\n",
        [cid(None, absence=Absence.UNAVAILABLE, raw_number="OUT-OF-AREA")],
    ),
    (
        "WITHHELD",
        None,
        b"NMBR=WITHHELD\n",
        [cid(None, absence=Absence.WITHHELD, raw_number="WITHHELD")],
    ),
    (
        "ANONYMOUS",
        None,
        b"NMBR = ANONYMOUS\r\n",
        [cid(None, absence=Absence.WITHHELD, raw_number="ANONYMOUS")],
    ),
    ("empty", None, b"NMBR = \r\n", [cid(None, absence=Absence.UNAVAILABLE, raw_number="")]),
    (
        "empty, no space",
        None,
        b"NMBR=\r\n",
        [cid(None, absence=Absence.UNAVAILABLE, raw_number="")],
    ),
    (
        "unknown single letter keeps the raw value",
        None,
        b"NMBR = C\r\n",
        [cid(None, absence=Absence.OTHER, raw_number="C")],
    ),
    (
        "a number then NMBR = O keeps the number",
        None,
        b"DATE = 1124\r\nTIME = 0930\r\nNMBR = 01707354000\r\nNMBR = O\r\nRING\r\n",
        [cid("01707354000", date="1124", time="0930"), Ring()],
    ),
    (
        "NAME before NMBR is held until the number",
        None,
        b"DATE = 1124\r\nTIME = 0930\r\nNAME = J BLOGGS\r\nNMBR = 01707354000\r\n",
        [cid("01707354000", date="1124", time="0930", name="J BLOGGS")],
    ),
    (
        "MESG refines",
        None,
        b"NMBR = 01707354000\r\nMESG = 110101\r\n",
        [cid("01707354000"), cid("01707354000", mesg=("110101",), refined=True)],
    ),
    (
        "Rockwell DDN_NMBR",
        None,
        b"TIME = 1806\r\nNAME = O\r\nDDN_NMBR= 9196278340\r\n",
        [cid("9196278340", time="1806", name="O")],
    ),
    (
        "date and time but no number, ended by RING",
        None,
        b"DATE = 1124\r\nTIME = 0930\r\nRING\r\n",
        [cid(None, absence=Absence.MISSING, date="1124", time="0930"), Ring()],
    ),
    (
        "two calls: the second DATE starts a new burst",
        None,
        b"DATE = 1124\r\nNMBR = 0111\r\nDATE = 1124\r\nNMBR = 0222\r\n",
        [cid("0111", date="1124"), cid("0222", date="1124", burst=2)],
    ),
    (
        "international number keeps its plus",
        None,
        b"NMBR = +33 1 23 45 67 89\r\n",
        [cid("+33123456789", raw_number="+33 1 23 45 67 89")],
    ),
    (
        "echo on: the command comes back first",
        "ATI0",
        b"ATI0\r\r\n5601\r\n\r\nOK\r\n",
        [Echo("ATI0", sent("ATI0")), Info("ATI0", "5601", sent("ATI0")), Ok(sent("ATI0"))],
    ),
    (
        "echo off",
        "ATI0",
        b"\r\n56000\r\n\r\nOK\r\n",
        [Info("ATI0", "56000", sent("ATI0")), Ok(sent("ATI0"))],
    ),
    ("ERROR", "AT+FOO", b"\r\nERROR\r\n", [Error("ERROR", sent("AT+FOO"))]),
    (
        "+CME ERROR",
        "AT+FOO",
        b"\r\n+CME ERROR: 3\r\n",
        [Error("+CME ERROR: 3", sent("AT+FOO"))],
    ),
    ("NO CARRIER", "ATA", b"\r\nNO CARRIER\r\n", [Error("NO CARRIER", sent("ATA"))]),
    ("CONNECT", "AT+VTX", b"\r\nCONNECT\r\n", [Connect("", sent("AT+VTX"))]),
    ("CONNECT with speed", "ATA", b"\r\nCONNECT 33600\r\n", [Connect("33600", sent("ATA"))]),
    (
        "AT-TRV voltage (Conexant)",
        "AT-TRV",
        b"\r\n48.20\r\n\r\nOK\r\n",
        [LineVoltage(48.2, sent("AT-TRV")), Ok(sent("AT-TRV"))],
    ),
    (
        "AT-TRV with unit",
        "AT-TRV",
        b"\r\n7.5 V\r\nOK\r\n",
        [LineVoltage(7.5, sent("AT-TRV")), Ok(sent("AT-TRV"))],
    ),
    ("AT-TRV on a USR", "AT-TRV", b"\r\nERROR\r\n", [Error("ERROR", sent("AT-TRV"))]),
    (
        "a RING in the middle of a reply stays a RING",
        "ATI3",
        b"\r\nRING\r\n\r\nU.S. Robotics 56K FAX USB\r\n\r\nOK\r\n",
        [Ring(), Info("ATI3", "U.S. Robotics 56K FAX USB", sent("ATI3")), Ok(sent("ATI3"))],
    ),
    (
        "a reply in the middle of a caller-ID burst does not end it",
        "AT",
        b"DATE = 1124\r\nTIME = 0930\r\n\r\nOK\r\nNMBR = 01707354000\r\n",
        [Ok(sent("AT")), cid("01707354000", date="1124", time="0930")],
    ),
    (
        "unsolicited line when nothing is pending",
        None,
        b"\r\nNO DIAL TONE DETECTED\r\n\r\nVCON\r\n",
        [Unsolicited("NO DIAL TONE DETECTED"), Unsolicited("VCON")],
    ),
    ("LF only", None, b"RING\nRING\n", [Ring(), Ring()]),
    ("CR only", None, b"RING\rRING\r", [Ring(), Ring()]),
    ("LF CR", None, b"RING\n\rRING\n\r", [Ring(), Ring()]),
    ("NUL bytes are dropped", None, b"\x00RI\x00NG\r\n\x00", [Ring()]),
    (
        "non-ASCII in a name is kept, controls are dropped",
        None,
        "NMBR = 01707354000\r\nNAME = Zoë\x07 Brontë\r\n".encode(),
        [cid("01707354000"), cid("01707354000", name="Zoë Brontë", refined=True)],
    ),
    (
        "invalid UTF-8 does not break the line",
        None,
        b"\xff\xfeRING?\r\nRING\r\n",
        [Unsolicited("\ufffd\ufffdRING?"), Ring()],
    ),
    (
        "DLE codes in voice mode, even mid-line",
        None,
        b"\x10b\x10dAB\x10sC\r\n\x10H\x10h\x10P\x10u\x105\x10#\x10~",
        [
            DleCode("b", DleMeaning.BUSY),
            DleCode("d", DleMeaning.DIAL_TONE),
            DleCode("s", DleMeaning.SILENCE),
            Unsolicited("ABC"),
            DleCode("H", DleMeaning.HANDSET_OFF_HOOK),
            DleCode("h", DleMeaning.HANDSET_ON_HOOK),
            DleCode("P", DleMeaning.EXTENSION_PICKUP),
            DleCode("u", DleMeaning.TX_UNDERRUN),
            DleCode("5", DleMeaning.DTMF),
            DleCode("#", DleMeaning.DTMF),
            DleCode("~", DleMeaning.UNKNOWN),
        ],
    ),
    (
        "USR voice-mode ring is a RING too",
        None,
        b"\x10R",
        [Ring(), DleCode("R", DleMeaning.RING)],
    ),
    ("DLE DLE is a data byte, not an event", None, b"\x10\x10RING\r", [Ring()]),
    # -- dialects seen in the wild (issue 14) --
    (
        "Rockwell DDN = , a UK call",
        None,
        b"\r\nDATE = 1124\r\nTIME = 0930\r\nDDN = 01707354000\r\n\r\nRING\r\n",
        [cid("01707354000", date="1124", time="0930"), Ring()],
    ),
    (
        "NBR = , withheld",
        None,
        b"\r\nDATE = 1124\r\nTIME = 0930\r\nNBR = P\r\n\r\nRING\r\n",
        [cid(None, absence=Absence.WITHHELD, raw_number="P", date="1124", time="0930"), Ring()],
    ),
    (
        "Kortex: CID RING, one DATE TIME line, NBR=",
        None,
        b"\r\nCID RING\r\n\r\nDATE TIME=11/24 22:10\r\nNBR=01632960123\r\n\r\nRING\r\n",
        [Ring(), cid("01632960123", date="1124", time="2210"), Ring()],
    ),
    (
        "Kortex: a DATE TIME it cannot read is no date, the number still counts",
        None,
        b"DATE TIME=yesterday\r\nNBR=01632960123\r\n",
        [cid("01632960123")],
    ),
    (
        "ZyXEL: FM:<caller> TO:<called>",
        None,
        b"\r\nFM:01632960123 TO:01707354000\r\n\r\nRING\r\n",
        [cid("01632960123"), Ring()],
    ),
    (
        "ZyXEL: withheld, then a second call is a new burst",
        None,
        b"FM:P TO:01707354000\r\nRING\r\nFM:01632960124\r\n",
        [cid(None, absence=Absence.WITHHELD, raw_number="P"), Ring(), cid("01632960124", burst=2)],
    ),
]


def feed(chunks: list[bytes], command: str | None) -> list[Event]:
    proto = ModemProtocol()
    if command:
        proto.send_command(command)
    out: list[Event] = []
    for chunk in chunks:
        proto.receive_data(chunk)
        while (event := proto.next_event()) is not None:
            out.append(event)
    return out


IDS = [t[0] for t in TRANSCRIPTS]


@pytest.mark.parametrize(("name", "command", "data", "expected"), TRANSCRIPTS, ids=IDS)
def test_transcript_whole(
    name: str, command: str | None, data: bytes, expected: list[Event]
) -> None:
    assert feed([data], command) == expected


@pytest.mark.parametrize(("name", "command", "data", "expected"), TRANSCRIPTS, ids=IDS)
def test_transcript_byte_by_byte(
    name: str, command: str | None, data: bytes, expected: list[Event]
) -> None:
    assert feed([data[i : i + 1] for i in range(len(data))], command) == expected


@pytest.mark.parametrize(("name", "command", "data", "expected"), TRANSCRIPTS, ids=IDS)
def test_transcript_with_trailing_junk(
    name: str, command: str | None, data: bytes, expected: list[Event]
) -> None:
    """Junk after a transcript (no line end yet) adds nothing until its line ends."""
    assert feed([data + b"\x00garb"], command) == expected


@settings(max_examples=300, deadline=None)
@given(index=st.integers(0, len(TRANSCRIPTS) - 1), cuts=st.lists(st.integers(0, 400), max_size=12))
def test_transcript_random_chunks(index: int, cuts: list[int]) -> None:
    _, command, data, expected = TRANSCRIPTS[index]
    points = sorted({c % (len(data) + 1) for c in cuts})
    chunks = [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]
    assert feed(chunks, command) == expected


_MODEM_BYTES = st.lists(
    st.sampled_from(
        [b"\r", b"\n", b"\x10", b"\x00", b"RING", b"OK", b"NMBR = 0113496", b"DATE = 1124"]
    )
    | st.binary(max_size=40)
    | st.integers(MAX_LINE_BYTES - 3, MAX_LINE_BYTES + 3).map(lambda n: b"A" * n),
    max_size=20,
).map(b"".join)


@settings(max_examples=400, deadline=None)
@given(data=_MODEM_BYTES, cuts=st.lists(st.integers(0, 10_000), max_size=8))
def test_plain_text_a_line_at_a_time_is_the_same_as_byte_by_byte(
    data: bytes, cuts: list[int]
) -> None:
    """receive_data takes text with no DLE or NUL a line at a time (the seize path's parse);
    whatever the bytes and the chunking, the events are those of the byte-by-byte reference."""
    points = sorted({c % (len(data) + 1) for c in cuts})
    chunks = [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]
    fast, reference = ModemProtocol(), ModemProtocol()
    for chunk in chunks:
        fast.receive_data(chunk)
    reference._receive_bytes(data)
    assert fast.events() == reference.events()
    assert bytes(fast._line) == bytes(reference._line)
    assert fast._overflowed == reference._overflowed


def test_caller_id_is_delivered_before_the_line_after_it() -> None:
    """The number is an event as soon as its line ends: no waiting for NAME or RING."""
    proto = ModemProtocol()
    proto.receive_data(b"DATE = 1124\r\nTIME = 0930\r\nNMBR = 01707354000\r")
    event = proto.next_event()
    assert isinstance(event, CallerId) and event.number == "01707354000"


def test_endless_line_is_bounded_and_parser_recovers() -> None:
    proto = ModemProtocol()
    for _ in range(1000):
        proto.receive_data(b"A" * 1000)  # a megabyte with no line end
    assert len(proto._line) <= MAX_LINE_BYTES
    assert proto.next_event() is None
    proto.receive_data(b"\r\nRING\r\n")
    first = proto.next_event()
    assert isinstance(first, Unsolicited) and first.truncated
    assert len(first.text) == MAX_LINE_BYTES
    assert proto.next_event() == Ring()


def test_unread_events_are_bounded() -> None:
    proto = ModemProtocol()
    proto.receive_data(b"RING\r\n" * 10_000)
    assert len(proto.events()) <= 1024


def test_info_after_final_result_is_unsolicited() -> None:
    assert feed([b"OK\r\n5601\r\n"], "ATI0") == [Ok(sent("ATI0")), Unsolicited("5601")]


def test_cancel_command_stops_attributing_lines_but_keeps_the_command_owed() -> None:
    proto = ModemProtocol()
    proto.send_command("ATI0")
    command = proto.awaiting
    assert command == sent("ATI0")
    proto.cancel_command(command)
    assert proto.awaiting is None
    assert proto.outstanding == (command,)
    proto.receive_data(b"5601\r\nOK\r\n")
    assert proto.events() == [Unsolicited("5601"), Ok(command, late=True)]
    assert proto.outstanding == ()


# -- which command a reply answers --------------------------------------------------------------
#
# A script is what the host does (send a command, expect a final for a raw write, cancel a
# command it gave up on) interleaved with what the modem says; the expected events and the
# commands still owed at the end are checked, with the modem's bytes fed whole, byte by byte and
# in random chunks.


@dataclass(frozen=True)
class Send:
    command: str


@dataclass(frozen=True)
class Expect:
    label: str


@dataclass(frozen=True)
class Cancel:
    seq: int


@dataclass(frozen=True)
class Modem:
    data: bytes


Step = Send | Expect | Cancel | Modem
ETX = "<DLE><ETX>"


def raw(label: str, seq: int) -> Command:
    return Command(seq, label, line=False)


def _starved_script() -> tuple[str, list[Step], list[Event], tuple[Command, ...]]:
    """AT is never answered (echo off); each later command is answered at once but, until the
    bound, its answer is taken for the cancelled one before it and it times out in turn."""
    texts = ["AT", *(f"ATS{n}=0" for n in range(2, MAX_LATE_RUN + 2))]  # all different
    steps: list[Step] = [Send(texts[0]), Cancel(1)]
    expected: list[Event] = []
    for seq in range(2, MAX_LATE_RUN + 2):
        steps += [Send(texts[seq - 1]), Modem(b"\r\nOK\r\n"), Cancel(seq)]
        expected.append(Ok(sent(texts[seq - 2], seq - 1), late=True))
    last = MAX_LATE_RUN + 2
    steps += [Send("ATH0"), Modem(b"\r\nOK\r\n")]
    expected += [Ok(sent("ATH0", last))]
    return (
        f"a command never answered starves at most MAX_LATE_RUN ({MAX_LATE_RUN}) later ones",
        steps,
        expected,
        (),
    )


REPLY_SCRIPTS: list[tuple[str, list[Step], list[Event], tuple[Command, ...]]] = [
    (
        "a late OK after cancel is late, not the next command's",
        [Send("AT"), Cancel(1), Send("ATH0"), Modem(b"\r\nOK\r\n")],
        [Ok(sent("AT"), late=True)],
        (sent("ATH0", 2),),
    ),
    (
        "the next command's own OK completes it",
        [Send("AT"), Cancel(1), Send("ATH0"), Modem(b"\r\nOK\r\n\r\nOK\r\n")],
        [Ok(sent("AT"), late=True), Ok(sent("ATH0", 2))],
        (),
    ),
    (
        "a late OK before the next command is sent is late too",
        [Send("AT"), Cancel(1), Modem(b"\r\nOK\r\n"), Send("ATH0"), Modem(b"\r\nOK\r\n")],
        [Ok(sent("AT"), late=True), Ok(sent("ATH0", 2))],
        (),
    ),
    (
        "a late ERROR is not the next command's either",
        [Send("AT+VCID=1"), Cancel(1), Send("ATH0"), Modem(b"\r\nERROR\r\n\r\nOK\r\n")],
        [Error("ERROR", sent("AT+VCID=1"), late=True), Ok(sent("ATH0", 2))],
        (),
    ),
    (
        "a late CONNECT is not the next command's",
        [Send("AT+VTX"), Cancel(1), Send("ATH0"), Modem(b"\r\nCONNECT\r\n")],
        [Connect("", sent("AT+VTX"), late=True)],
        (sent("ATH0", 2),),
    ),
    (
        "late information lines are not the next command's",
        [
            Send("ATI3"),
            Cancel(1),
            Send("ATI0"),
            Modem(b"\r\nU.S. Robotics 56K\r\n\r\nOK\r\n\r\n5601\r\n\r\nOK\r\n"),
        ],
        [
            Unsolicited("U.S. Robotics 56K"),
            Ok(sent("ATI3"), late=True),
            Info("ATI0", "5601", sent("ATI0", 2)),
            Ok(sent("ATI0", 2)),
        ],
        (),
    ),
    (
        "echo of the cancelled command: it was heard, and is answered first",
        [Send("AT"), Cancel(1), Send("ATH0"), Modem(b"AT\r\r\nOK\r\nATH0\r\r\nOK\r\n")],
        [
            Echo("AT", sent("AT")),
            Ok(sent("AT"), late=True),
            Echo("ATH0", sent("ATH0", 2)),
            Ok(sent("ATH0", 2)),
        ],
        (),
    ),
    (
        "echo of the next command: the cancelled one was never heard",
        [Send("ATZ"), Cancel(1), Send("ATE0V1Q0"), Modem(b"ATE0V1Q0\r\r\nOK\r\n")],
        [Echo("ATE0V1Q0", sent("ATE0V1Q0", 2)), Ok(sent("ATE0V1Q0", 2))],
        (),
    ),
    (
        "an echo of a command not owed changes nothing",
        [Send("AT"), Cancel(1), Send("ATH0"), Modem(b"ATI0\r\r\nOK\r\n")],
        [Echo("ATI0"), Ok(sent("AT"), late=True)],
        (sent("ATH0", 2),),
    ),
    (
        "ATH0 again takes the answer, whichever ATH0 it was",
        [Send("ATH0"), Cancel(1), Send("ATH0"), Modem(b"\r\nOK\r\n")],
        [Ok(sent("ATH0", 2))],
        (),
    ),
    (
        "AT-TRV again takes the voltage too",
        [Send("AT-TRV"), Cancel(1), Send("AT-TRV"), Modem(b"\r\n48.20\r\nOK\r\n")],
        [LineVoltage(48.2, sent("AT-TRV", 2)), Ok(sent("AT-TRV", 2))],
        (),
    ),
    (
        "another command in between: ATH0 does not get an answer that may be AT's",
        [Send("ATH0"), Cancel(1), Send("AT"), Cancel(2), Send("ATH0"), Modem(b"\r\nOK\r\n")],
        [Ok(sent("ATH0"), late=True)],
        (sent("AT", 2), sent("ATH0", 3)),
    ),
    _starved_script(),
    (
        "a late answer with nothing newer waiting ends the late run",
        [
            Send("AT"),
            Cancel(1),
            Send("ATI3"),
            Modem(b"\r\nOK\r\n"),  # AT's, late, while ATI3 waits: a run of one
            Cancel(2),
            Modem(b"\r\nOK\r\n"),  # ATI3's, plainly late: the run ends
            Send("ATI0"),
            Cancel(3),
            Send("ATH0"),
            Modem(b"\r\nOK\r\n"),  # ATI0's, slow too: still not ATH0's
        ],
        [Ok(sent("AT"), True), Ok(sent("ATI3", 2), True), Ok(sent("ATI0", 3), True)],
        (sent("ATH0", 4),),
    ),
    (
        "<DLE><ETX>: a final result without a command line",
        [Expect(ETX), Modem(b"\r\nOK\r\n")],
        [Ok(raw(ETX, 1))],
        (),
    ),
    (
        "a second <DLE><ETX> takes the first one's OK",
        [Expect(ETX), Cancel(1), Expect(ETX), Modem(b"\r\nOK\r\n")],
        [Ok(raw(ETX, 2))],
        (),
    ),
    (
        "a late OK to <DLE><ETX> is not ATH0's",
        [Expect(ETX), Cancel(1), Send("ATH0"), Modem(b"\r\nOK\r\n")],
        [Ok(raw(ETX, 1), late=True)],
        (sent("ATH0", 2),),
    ),
    (
        "a late OK to ATH0 is not <DLE><ETX>'s",
        [Send("ATH0"), Cancel(1), Expect(ETX), Modem(b"\r\nOK\r\n")],
        [Ok(sent("ATH0"), late=True)],
        (raw(ETX, 2),),
    ),
    ("a final with nothing owed answers nothing", [Modem(b"\r\nOK\r\n")], [Ok()], ()),
    (
        "cancelling a command already answered changes nothing",
        [Send("AT"), Modem(b"OK\r\n"), Cancel(1), Send("ATH0"), Modem(b"OK\r\n")],
        [Ok(sent("AT")), Ok(sent("ATH0", 2))],
        (),
    ),
]

Chunker = Callable[[bytes], list[bytes]]


def whole(data: bytes) -> list[bytes]:
    return [data]


def byte_by_byte(data: bytes) -> list[bytes]:
    return [data[i : i + 1] for i in range(len(data))]


def run_script(steps: list[Step], chunks: Chunker) -> tuple[list[Event], ModemProtocol]:
    proto = ModemProtocol()
    numbered: dict[int, Command] = {}
    out: list[Event] = []
    for step in steps:
        if isinstance(step, Send):
            proto.send_command(step.command)
            command = proto.awaiting
            assert command is not None
            numbered[command.seq] = command
        elif isinstance(step, Expect):
            command = proto.expect_final(step.label)
            assert proto.awaiting == command
            numbered[command.seq] = command
        elif isinstance(step, Cancel):
            proto.cancel_command(numbered[step.seq])
        else:
            for chunk in chunks(step.data):
                proto.receive_data(chunk)
                out.extend(proto.events())
    return out, proto


REPLY_IDS = [t[0] for t in REPLY_SCRIPTS]


@pytest.mark.parametrize("chunks", [whole, byte_by_byte], ids=["whole", "byte by byte"])
@pytest.mark.parametrize(("name", "steps", "expected", "owed"), REPLY_SCRIPTS, ids=REPLY_IDS)
def test_reply_attribution(
    name: str,
    steps: list[Step],
    expected: list[Event],
    owed: tuple[Command, ...],
    chunks: Chunker,
) -> None:
    events, proto = run_script(steps, chunks)
    assert events == expected
    assert proto.outstanding == owed


@settings(max_examples=200, deadline=None)
@given(index=st.integers(0, len(REPLY_SCRIPTS) - 1), cuts=st.lists(st.integers(0, 80), max_size=6))
def test_reply_attribution_random_chunks(index: int, cuts: list[int]) -> None:
    _, steps, expected, owed = REPLY_SCRIPTS[index]

    def chunks(data: bytes) -> list[bytes]:
        points = sorted({c % (len(data) + 1) for c in cuts})
        return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]

    events, proto = run_script(steps, chunks)
    assert events == expected
    assert proto.outstanding == owed


def test_a_late_final_never_answers_the_awaited_command_within_the_bound() -> None:
    """However many commands time out in a row, a late answer is never reported as the awaited
    command's until MAX_LATE_RUN late answers have come while a newer command waited."""
    proto = ModemProtocol()
    proto.send_command("AT")
    first = proto.awaiting
    assert first is not None
    proto.cancel_command(first)
    for n in range(1, MAX_LATE_RUN + 1):
        proto.send_command("ATH0" if n % 2 else "AT+VCID=1")
        awaited = proto.awaiting
        assert awaited is not None
        proto.receive_data(b"OK\r\n")
        (event,) = proto.events()
        assert isinstance(event, Ok) and event.late and event.answers != awaited
        proto.cancel_command(awaited)


def test_commands_owed_are_bounded() -> None:
    proto = ModemProtocol()
    for _ in range(MAX_OWED * 4):
        proto.send_command("AT+VCID=1")
        proto.send_command("AT")
        command = proto.awaiting
        assert command is not None
        proto.cancel_command(command)
    assert len(proto.outstanding) == MAX_OWED
    assert proto.outstanding[-1].seq == MAX_OWED * 8


@pytest.mark.parametrize(
    ("command", "wire"),
    [("AT", b"AT\r"), ("ATI0", b"ATI0\r"), ("AT+VCID=1", b"AT+VCID=1\r"), ("at-trv", b"at-trv\r")],
)
def test_encode_command(command: str, wire: bytes) -> None:
    assert encode_command(command) == wire
    assert ModemProtocol().send_command(command) == wire


@pytest.mark.parametrize("bad", ["", "ATH0\rATH1", "HELLO", "AT+X=\u00e9", "AT\n", "ATD\x10"])
def test_encode_rejects_what_the_modem_cannot_take(bad: str) -> None:
    with pytest.raises(ProtocolError, match="printable ASCII"):
        encode_command(bad)


def test_shield_doubles_every_dle() -> None:
    audio = bytes([0x80, 0x10, 0x10, 0x7F, 0x03, 0x10])
    assert shield(audio) == bytes([0x80, 0x10, 0x10, 0x10, 0x10, 0x7F, 0x03, 0x10, 0x10])
    assert DLE_ETX not in shield(bytes(range(256)) * 4)


@given(st.binary(max_size=2000))
def test_shield_round_trip_and_never_contains_a_bare_dle_etx(audio: bytes) -> None:
    shielded = shield(audio)
    assert unshield(shielded) == audio
    # a DLE in shielded data is always followed by a second DLE: no accidental end of data
    i = 0
    while i < len(shielded):
        if shielded[i] == 0x10:
            assert shielded[i + 1] == 0x10
            i += 2
        else:
            i += 1


@pytest.mark.parametrize(
    ("raw", "number", "absence"),
    [
        ("01707354000", "01707354000", None),
        ("+441707354000", "+441707354000", None),
        ("0170 735-4000", "01707354000", None),
        ("P", None, Absence.WITHHELD),
        ("p", None, Absence.WITHHELD),
        ("O", None, Absence.UNAVAILABLE),
        ("Out-Of-Area", None, Absence.UNAVAILABLE),
        ("", None, Absence.UNAVAILABLE),
        ("X", None, Absence.OTHER),
        ("12AB", None, Absence.OTHER),
    ],
)
def test_classify_number(raw: str, number: str | None, absence: Absence | None) -> None:
    assert classify_number(raw) == (number, absence)


def test_decode_mesg_sin227_parameters() -> None:
    # call type 0x11 = 1 (voice), reason for absence 0x04 = "P"
    assert decode_mesg("110101 040150") == [(0x11, b"\x01"), (0x04, b"P")]
    assert decode_mesg("11FF01") == []  # length runs past the end
    assert decode_mesg("not hex") == []
