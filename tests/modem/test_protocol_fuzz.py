"""Fuzzing the parser: random and mutated modem output never raises and never wedges it.

``make test`` runs 100,000 lines; ``make fuzz`` sets CALLGUARD_FUZZ_LINES for a longer run.
"""

from __future__ import annotations

import os
import random

from callguard.modem.protocol import MAX_LINE_BYTES, CallerId, ModemProtocol, Ring

SEED_LINES = [
    b"RING",
    b"OK",
    b"ERROR",
    b"CONNECT",
    b"DATE = 1124",
    b"TIME = 0930",
    b"NMBR = 01707354000",
    b"NMBR=P",
    b"NMBR = O",
    b"NAME = SMITH JOHN",
    b"MESG = 110101",
    b"DDN_NMBR= 9196278340",
    b"48.20",
    b"+CME ERROR: 3",
    b"ATI0",
    b"\x10b\x10d\x10h",
]
ENDINGS = [b"\r\n", b"\r", b"\n", b"\n\r", b"", b"\r\n\r\n"]


def mutate(rng: random.Random, line: bytes) -> bytes:
    data = bytearray(line)
    for _ in range(rng.randint(0, 4)):
        op = rng.randint(0, 5)
        pos = rng.randint(0, len(data))
        if op == 0:
            data[pos:pos] = bytes([rng.randint(0, 255)])
        elif op == 1 and data:
            del data[min(pos, len(data) - 1)]
        elif op == 2:
            data[pos:pos] = b"\x10"
        elif op == 3:
            data[pos:pos] = b"\x00" * rng.randint(1, 5)
        elif op == 4:
            data[pos:pos] = b"=" * rng.randint(1, 3)
        else:
            data[pos:pos] = bytes(rng.randint(0x80, 0xFF) for _ in range(rng.randint(1, 4)))
    return bytes(data)


def random_line(rng: random.Random) -> bytes:
    kind = rng.random()
    if kind < 0.6:
        body = mutate(rng, rng.choice(SEED_LINES))
    elif kind < 0.95:
        body = bytes(rng.randint(0, 255) for _ in range(rng.randint(0, 60)))
    else:
        body = bytes(rng.randint(0x20, 0x7E) for _ in range(rng.randint(200, 3000)))
    return body + rng.choice(ENDINGS)


def test_fuzz_lines_raise_nothing_and_leave_the_parser_usable() -> None:
    lines = int(os.environ.get("CALLGUARD_FUZZ_LINES", "100000"))
    rng = random.Random(20261124)
    proto = ModemProtocol()
    if rng.random() < 0.5:
        proto.send_command("AT-TRV")
    batch = bytearray()
    for i in range(lines):
        batch += random_line(rng)
        if len(batch) > 4096 or i == lines - 1:
            # random cut points: the parser must not care where reads end
            cut = rng.randint(0, len(batch))
            proto.receive_data(bytes(batch[:cut]))
            proto.receive_data(bytes(batch[cut:]))
            batch.clear()
            for event in proto.events():
                text = getattr(event, "text", "")
                assert len(text) <= MAX_LINE_BYTES
        if i % 997 == 0:
            proto.send_command("ATI0")
    assert len(proto._line) <= MAX_LINE_BYTES

    # still usable: a clean UK call after a line end parses exactly
    proto.receive_data(b"\x03\r\n")  # close any half-read DLE code and line
    proto.events()
    proto.receive_data(b"\r\nDATE = 1124\r\nTIME = 0930\r\nNMBR = 01707354000\r\n\r\nRING\r\n")
    events = [e for e in proto.events() if isinstance(e, CallerId | Ring)]
    assert isinstance(events[0], CallerId)
    assert events[0].number == "01707354000"
    assert events[-1] == Ring()
