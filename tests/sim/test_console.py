"""Tests for callguard.sim.console: the typed command language that rings the simulated line.

`parse`, `describe` and `record_json` are pure: fed text and records with chosen times. The
`Console` runs against a real SimModem slowed down 100 times (the first ring is 50 s away), so
nothing on the line moves by itself during a test: every change is a command's, and every
command returns only once the line has acted on it. No sleeps.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import serial
from hypothesis import given
from hypothesis import strategies as st

from callguard.sim import Call, CallRecord, SimModem
from callguard.sim.console import (
    MAX_LINE_CHARS,
    USAGE,
    Answer,
    CommandError,
    Console,
    HangUp,
    PlaceCall,
    Quit,
    Replug,
    Status,
    Unplug,
    Wait,
    describe,
    parse,
    record_json,
)

STILL = 100.0  # time scale: caller ID at once, the first ring 50 s later


# ----------------------------------------------------------------------------- parse (pure)


@pytest.mark.parametrize(
    ("line", "call"),
    [
        ("call 01632 960123", Call("01632960123")),
        ("call 01632960123", Call("01632960123")),
        ("CALL 0161-496-0000", Call("01614960000")),
        ("call +44 (1632) 960.123", Call("+441632960123")),
        ("call withheld", Call("P")),
        ("call Unavailable", Call("O")),
        ("call none", Call(None)),
        ("call 159 name POLICE", Call("159", name="POLICE")),
        ("call 159 name DC SMITH rings 3", Call("159", name="DC SMITH", rings=3)),
        ('call 159 name "DC  SMITH" after-ring', Call("159", name="DC  SMITH", style="us")),
        ("call withheld rings 0 after-ring", Call("P", rings=0, style="us")),
        (
            "call 07700 900461 AFTER-RING NAME Élodie",
            Call("07700900461", name="Élodie", style="us"),
        ),
        ("call 1 rings 2  # the rest is a comment", Call("1", rings=2)),
        ('call 1 name "#1 FAN"', Call("1", name="#1 FAN")),
    ],
)
def test_parse_call(line: str, call: Call) -> None:
    assert parse(line) == PlaceCall(call)


@pytest.mark.parametrize(
    ("line", "command"),
    [
        ("answer", Answer()),
        ("HANGUP", HangUp()),
        ("unplug", Unplug()),
        ("replug", Replug()),
        ("status", Status()),
        ("status JSON", Status(as_json=True)),
        ("wait", Wait()),
        ("wait 2.5", Wait(2.5)),
        ("quit", Quit()),
        ("", None),
        ("   ", None),
        ("# a comment", None),
    ],
)
def test_parse_other_commands(line: str, command: object) -> None:
    assert parse(line) == command


@pytest.mark.parametrize(
    ("line", "says"),
    [
        ("call", "call needs a number, e.g. call 01632 960123"),
        ("call name POLICE", "call needs a number before its options"),
        ("call 0x", "'0x' is not part of a phone number; give digits"),
        ("call 01632 96O123", "'96O123' is not part of a phone number"),
        ("call +", "'+' is not part of a phone number"),
        ("call 1234567890 1234567890 1", "has 21 digits; caller ID carries at most 20"),
        ("call 01632 rings", "rings '': give how many times the phone rings"),
        ("call 01632 rings many", "rings 'many': give how many times"),
        ("call 01632 rings 101", "a whole number from 0 to 100"),
        ("call 01632 rings -1", "rings '-1'"),
        ("call 01632 name", "name needs a value, e.g. name POLICE"),
        ("call 01632 name A rings 2 name B", "name is given twice; give it once"),
        ("call 01632 after-ring after-ring", "after-ring is given twice"),
        ("call 01632 name " + "X" * 51, "is 51 characters; caller ID carries at most 50"),
        ("call 01632 name ЖУК", "'ЖУК' has characters a caller-ID name cannot carry"),
        ("call 01632 name A\x1b[31mB", "the name 'A\\x1b[31mB' holds a control character"),
        ("call none name X", "call none sends no caller ID, so it cannot carry a name"),
        ('call 1 name "DC SMITH', "No closing quotation; close the quote"),
        ("ring 01632 960123", "'ring' is not a command; help lists them"),
        ("exit", "'exit' is not a command; quit stops the sim"),
        ("answer now", "answer takes nothing after it, not 'now'"),
        ("status yes", "status takes nothing or 'json', not 'yes'"),
        ("wait soon", "wait 'soon': give the most seconds to wait"),
        ("wait 0", "above 0 and up to 3600"),
        ("wait 1 2", "wait '1 2'"),
        ("call 1" + " 1" * MAX_LINE_CHARS, f"a command fits in {MAX_LINE_CHARS}"),
    ],
)
def test_bad_input_is_named_with_the_fix(line: str, says: str) -> None:
    with pytest.raises(CommandError) as exc:
        parse(line)
    assert says in str(exc.value)
    assert "\n" not in str(exc.value)


@given(st.text(max_size=MAX_LINE_CHARS + 20))
def test_parse_never_fails_any_other_way(text: str) -> None:
    try:
        parse(text)
    except CommandError as e:
        assert str(e) and "\n" not in str(e) and "\x1b" not in str(e)


# ----------------------------------------------------------------------------- describe (pure)


def _record(call: Call, **times: float) -> CallRecord:
    record = CallRecord(call, outcome="seized", started_at=100.0)
    for name, at in times.items():
        setattr(record, name, at)
    record._done.set()
    return record


def test_describe_a_seizure_before_the_first_ring() -> None:
    record = _record(Call("01632960999"), cid_sent_at=100.0, seized_at=100.2, released_at=101.7)
    assert describe(record) == (
        "01632960999 (UK caller ID): seized by the modem before the first ring;"
        " caller ID at +0.000 s, seized at +0.200 s, released at +1.700 s"
    )
    data = record_json(record)
    assert data["outcome"] == "seized" and data["seized_before_first_ring"] is True
    assert data["rings"] == 0 and data["first_ring_at_s"] is None
    assert data["seized_at_s"] == 0.2 and data["released_at_s"] == 1.7
    assert data["caller_id"] == "before-first-ring" and data["done"] is True


def test_describe_after_rings_and_without_caller_id() -> None:
    record = _record(Call("P", style="us", name="GP SURGERY"), seized_at=107.6)
    record.rings = [100.0, 106.0]
    assert describe(record).startswith(
        "withheld name 'GP SURGERY' (caller ID after the first ring): seized by the modem"
        " after 2 rings; seized at +7.600 s"
    )
    assert record_json(record)["seized_before_first_ring"] is False
    uk = _record(Call("01632960123"))
    uk.outcome = "unanswered"
    assert describe(uk).endswith("no caller ID reached the client (unplugged, or no AT+VCID=1)")


def test_describe_never_lets_a_name_break_the_line() -> None:
    record = _record(Call("1", name="A\nB\x1b"))
    assert "\n" not in describe(record) and "\x1b" not in describe(record)


# ----------------------------------------------------------------------------- the console


@pytest.fixture
def sim() -> Iterator[SimModem]:
    with SimModem("conexant", time_scale=STILL) as modem:
        yield modem


@pytest.fixture
def console(sim: SimModem) -> Console:
    return Console(sim)


def run(console: Console, line: str) -> str:
    reply = console.execute(line)
    assert reply is not None, line
    assert "\n" not in reply.line
    return reply.line


def status(console: Console) -> dict[str, object]:
    line = run(console, "status json")
    assert line.startswith("ok: ")
    data = json.loads(line.removeprefix("ok: "))
    assert isinstance(data, dict)
    return data


def test_call_answer_hangup(console: Console, sim: SimModem) -> None:
    assert run(console, "call 01632 960123 name SUE") == (
        "ok: ringing: 01632960123 name 'SUE' (caller ID before the first ring, up to 5 rings)"
    )
    assert sim.active_call is not None and sim.active_call.outcome == "ringing"
    assert run(console, "answer").startswith("ok: answered: 01632960123 name 'SUE'")
    now = status(console)
    assert now["phone_off_hook"] is True and now["line_volts"] == 8.3
    assert isinstance(now["last_call"], dict) and now["last_call"]["outcome"] == "answered"
    assert run(console, "hangup").startswith("ok: the call is over: 01632960123")
    record = sim.calls[-1]
    assert record.done and record.answered_at is not None and record.ended_at is not None
    assert record.rings == [] and sim.line_volts == 48.2 and not sim.extension_off_hook
    assert run(console, "wait").startswith("ok: call over: 01632960123 name 'SUE'")


def test_hangup_while_ringing_is_the_caller_giving_up(console: Console, sim: SimModem) -> None:
    run(console, "call withheld after-ring rings 4")
    assert run(console, "hangup") == (
        "ok: the caller gave up: withheld (caller ID after the first ring): not answered:"
        " the caller gave up after 1 ring"
    )
    assert sim.calls[-1].outcome == "unanswered" and sim.active_call is None


def test_phone_off_the_hook_makes_the_line_busy(console: Console, sim: SimModem) -> None:
    assert run(console, "answer") == (
        "ok: the phone is off the hook with no call ringing; line 8.3 V"
    )
    assert run(console, "answer") == (
        "error: the phone is already off the hook; hangup puts it down"
    )
    assert run(console, "call 01632 960123") == (
        "error: the line is busy: the phone is off the hook (hangup puts it down); then call again"
    )
    assert sim.calls[-1].outcome == "busy"
    assert run(console, "hangup") == "ok: the phone is down; line 48.2 V"
    assert run(console, "hangup") == (
        "error: nothing to hang up: no call on the line and the phone is down"
    )
    assert run(console, "call 01632 960123").startswith("ok: ringing")
    assert run(console, "call 07700 900461").startswith(
        "error: the line is busy: a call from 01632960123 is on the line (hangup ends it)"
    )


def test_a_seized_call_and_the_caller_hanging_up(console: Console, sim: SimModem) -> None:
    port = serial.serial_for_url(sim.port, timeout=5)
    try:
        port.write(b"ATE0+VCID=1\r")
        assert port.read_until(b"OK\r\n").endswith(b"OK\r\n")
        run(console, "call 01632 960999")
        record = sim.calls[-1]
        assert port.read_until(b"NMBR = 01632960999\r\n").endswith(b"01632960999\r\n")
        port.write(b"ATH1\r")
        with sim.cond:
            assert sim.cond.wait_for(lambda: record.outcome == "seized", 5)
        t0, cid, seized = record.started_at, record.cid_sent_at, record.seized_at
        assert t0 is not None and cid is not None and seized is not None
        assert run(console, "status").endswith(
            "; line 7.8 V; last call 01632960999 (UK caller ID): seized by the modem before the"
            f" first ring, line held; caller ID at +{cid - t0:.3f} s,"
            f" seized at +{seized - t0:.3f} s"
        )
        assert status(console)["modem_off_hook"] is True
        line = run(console, "hangup")
        assert line.startswith("ok: the caller hung up: 01632960999")
        assert line.endswith("; the modem still holds the line")
        assert record.done and record.ended_at is not None and record.released_at is None
        port.write(b"ATH0\r")
    finally:
        port.close()


def test_unplug_and_replug(console: Console, sim: SimModem) -> None:
    port = sim.port
    assert run(console, "unplug") == f"ok: the modem is unplugged ({port} is gone)"
    assert status(console)["modem"] == "unplugged"
    assert run(console, "unplug") == (
        "error: the modem is already unplugged; replug plugs it back in"
    )
    assert run(console, "call 1").endswith("; the modem is unplugged, so the client hears nothing")
    assert run(console, "hangup") == (
        "ok: the caller gave up: 1 (UK caller ID): not answered: the caller gave up after 0"
        " rings; no caller ID reached the client (unplugged, or no AT+VCID=1)"
    )
    assert run(console, "replug").startswith("ok: the modem is plugged back in at /dev/")
    assert run(console, "replug").startswith("ok: the modem is unplugged and plugged back in")
    assert sim.plugged_in


def test_wait_help_quit_and_bad_lines(console: Console, sim: SimModem) -> None:
    assert run(console, "wait") == "error: no call to wait for; ring one with call NUMBER"
    run(console, "call 1")
    assert run(console, "wait 0.01").startswith(
        "error: after 0.01 s the call is not over: 1 (UK caller ID): ringing, 0 rings so far"
    )
    assert run(console, "help") == f"ok: {USAGE}"
    assert run(console, "call 0x").startswith("error: call: '0x' is not part of a phone number")
    assert console.execute("# nothing") is None and console.execute("") is None
    reply = console.execute("quit")
    assert reply is not None and reply.quit and reply.line == "ok: stopping the sim"
    assert sim.active_call is not None  # quit only asks; the sim's runner stops it


def test_a_stopped_sim_answers_with_an_error(sim: SimModem) -> None:
    console = Console(sim)
    sim.stop()
    assert run(console, "answer").startswith("error: the sim is not running")
