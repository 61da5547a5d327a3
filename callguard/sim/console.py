"""The sim's command language: ring the simulated line by hand, one typed line at a time.

Theory of operation
-------------------
A person at the sim's terminal, or a script on its control socket (`control.py`), sends lines
such as ``call 01632 960123``, ``call withheld``, ``call 159 name POLICE``, ``answer``,
``hangup``, ``unplug``, ``replug``, ``line dead``, ``line live``, ``status``. Each line
gets exactly one reply line, ``ok: ...`` or ``error: ...``; blank lines and ``#`` comments
(a whole line, or the end of one) are not commands and get none.

`parse(text)` turns a line into a command value, or raises `CommandError` whose message names
the value and the fix. It is pure: no sim, no clock. `Console.execute(text)` parses and runs a
line against a `SimModem` and returns a `Reply`; it never raises for anything a person types,
so the sim keeps running. The line itself (ringing, answering, busy) is the modem's and the
call player's (`SimModem.place_call`, `answer`, `hang_up`): this module only reads words and
describes what they did. `describe(record)` and `record_json(record)` are pure too.

Commands (case does not matter)::

    call NUMBER|withheld|unavailable|none [name NAME] [rings N] [after-ring]
    answer | hangup | unplug | replug | line dead|live | status [json] | wait [SECONDS]
    help | quit

``line dead`` takes the line's voltage away (a cut cable, or a Digital Voice switch-over:
``AT-TRV`` reads 0 V and no call can be rung); ``line live`` gives it back.

A number may be typed with spaces or dashes (``01632 960123``) and a leading ``+``; the modem
shows it as digits. ``withheld`` is the network's ``P``, ``unavailable`` its ``O``, ``none`` a
call with no caller ID at all. By default caller ID comes before the first ring, as on a UK
line (BT SIN 227); ``after-ring`` sends it after the first ring, as some routers' phone ports
do. A name may be several words (``name DC SMITH``) or quoted (``name "DC SMITH"``).
"""

from __future__ import annotations

import json
import shlex
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from callguard.sim.modem import SimModem, SimModemError
from callguard.sim.script import Call, CallRecord
from callguard.texts import shown

MAX_LINE_CHARS = 300
MAX_NUMBER_DIGITS = 20
"""The longest caller-ID number sent: the field limit we read in ETSI EN 300 659-3 (check it
against the standard before relying on it elsewhere)."""
MAX_NAME_CHARS = 50
"""The longest caller-ID name sent: the field limit we read in ETSI EN 300 659-3 (likewise)."""
MAX_RINGS = 100
DEFAULT_RINGS = Call(None).rings
DEFAULT_WAIT_S = 60.0
MAX_WAIT_S = 3600.0

NUMBER_WORDS: dict[str, str | None] = {"withheld": "P", "unavailable": "O", "none": None}
"""Words for the caller IDs that carry no number, and what the network sends for each."""
CALL_OPTIONS = ("name", "rings", "after-ring")
NUMBER_SEPARATORS = " -.()"

CALL_USAGE = "call NUMBER|withheld|unavailable|none [name NAME] [rings N] [after-ring]"
USAGE = (
    f"commands: {CALL_USAGE} (ring the line); answer (the resident picks up); hangup (put the"
    " phone down, or the caller gives up); unplug / replug (the modem's USB cable); line dead /"
    " line live (take the line's voltage away, give it back); status"
    " [json]; wait [SECONDS] (until the last call is over); help; quit (stop the sim)"
)


class CommandError(ValueError):
    """A line the sim cannot act on; the message names the value and the fix."""


# ----------------------------------------------------------------------------- commands


@dataclass(frozen=True)
class PlaceCall:
    call: Call


@dataclass(frozen=True)
class Answer:
    pass


@dataclass(frozen=True)
class HangUp:
    pass


@dataclass(frozen=True)
class Unplug:
    pass


@dataclass(frozen=True)
class Replug:
    pass


@dataclass(frozen=True)
class LineDead:
    dead: bool


@dataclass(frozen=True)
class Status:
    as_json: bool = False


@dataclass(frozen=True)
class Wait:
    timeout_s: float = DEFAULT_WAIT_S


@dataclass(frozen=True)
class Help:
    pass


@dataclass(frozen=True)
class Quit:
    pass


Command = PlaceCall | Answer | HangUp | Unplug | Replug | LineDead | Status | Wait | Help | Quit

_BARE: dict[str, Command] = {
    "answer": Answer(),
    "hangup": HangUp(),
    "unplug": Unplug(),
    "replug": Replug(),
    "help": Help(),
    "quit": Quit(),
}


def _q(value: str) -> str:
    """A value typed by a person, quoted for a message (control characters written out)."""
    return "'" + shown(value) + "'"


def parse(text: str) -> Command | None:
    """One line -> a command; None for a blank line or a ``#`` comment.

    Raises `CommandError` (naming the value and the fix) for anything else it cannot act on.
    """
    if len(text) > MAX_LINE_CHARS:
        raise CommandError(
            f"the line is {len(text)} characters long; a command fits in {MAX_LINE_CHARS}"
        )
    stripped = text.strip()
    if not stripped or stripped.startswith("#"):
        return None
    try:
        words = shlex.split(stripped, comments=True)
    except ValueError as e:  # an unclosed quote
        raise CommandError(f"cannot read {_q(stripped)}: {e}; close the quote") from None
    if not words:
        return None
    verb, args = words[0].lower(), words[1:]
    if verb == "call":
        return PlaceCall(parse_call(args))
    if verb == "status":
        if [a.lower() for a in args] in ([], ["json"]):
            return Status(as_json=bool(args))
        raise CommandError(f"status takes nothing or 'json', not {_q(' '.join(args))}")
    if verb == "wait":
        return Wait(_wait_seconds(args))
    if verb == "line":
        if [a.lower() for a in args] in (["dead"], ["live"]):
            return LineDead(args[0].lower() == "dead")
        raise CommandError(f"line takes 'dead' or 'live', not {_q(' '.join(args))}")
    if verb in _BARE:
        if args:
            raise CommandError(f"{verb} takes nothing after it, not {_q(' '.join(args))}")
        return _BARE[verb]
    if verb in ("exit", "bye"):
        raise CommandError(f"{_q(words[0])} is not a command; quit stops the sim")
    raise CommandError(f"{_q(words[0])} is not a command; help lists them ({CALL_USAGE}, ...)")


def _wait_seconds(args: list[str]) -> float:
    if not args:
        return DEFAULT_WAIT_S
    if len(args) == 1:
        try:
            seconds = float(args[0])
        except ValueError:
            seconds = -1.0
        if 0 < seconds <= MAX_WAIT_S:
            return seconds
    raise CommandError(
        f"wait {_q(' '.join(args))}: give the most seconds to wait, above 0 and up to"
        f" {MAX_WAIT_S:g} (e.g. wait 30), or nothing for {DEFAULT_WAIT_S:g}"
    )


def parse_call(args: list[str]) -> Call:
    """The words after ``call`` -> the `Call` the line will play."""
    if not args:
        raise CommandError(f"call needs a number, e.g. call 01632 960123 ({CALL_USAGE})")
    i = 0
    number_words: list[str] = []
    while i < len(args) and args[i].lower() not in CALL_OPTIONS:
        number_words.append(args[i])
        i += 1
    number = _number(number_words)
    name: str | None = None
    rings: int | None = None
    after_ring = False
    seen: set[str] = set()
    while i < len(args):
        option = args[i].lower()
        if option not in CALL_OPTIONS:
            raise CommandError(
                f"call: {_q(args[i])} is not an option; after the number come"
                " name NAME, rings N, after-ring"
            )
        if option in seen:
            raise CommandError(f"call: {option} is given twice; give it once")
        seen.add(option)
        i += 1
        if option == "after-ring":
            after_ring = True
            continue
        value_words: list[str] = []
        while i < len(args) and args[i].lower() not in CALL_OPTIONS:
            value_words.append(args[i])
            i += 1
        if option == "name":
            name = _name(value_words)
        else:
            rings = _rings(value_words)
    if number is None and name is not None:
        raise CommandError(
            "call none sends no caller ID, so it cannot carry a name; drop 'name', or give a"
            " number (or withheld)"
        )
    return Call(
        number=number,
        name=name,
        style="us" if after_ring else "uk",
        rings=DEFAULT_RINGS if rings is None else rings,
    )


def _number(words: list[str]) -> str | None:
    if not words:
        raise CommandError(
            "call needs a number before its options, e.g. call 01632 960123 name SMITH"
        )
    if len(words) == 1 and words[0].lower() in NUMBER_WORDS:
        return NUMBER_WORDS[words[0].lower()]
    typed = " ".join(words)
    digits = typed.translate({ord(c): None for c in NUMBER_SEPARATORS})
    plus = digits.startswith("+")
    body = digits[1:] if plus else digits
    bad = next((w for w in words if not _numeric(w)), None)
    if bad is not None or not body or not body.isascii() or not body.isdigit():
        culprit = bad if bad is not None else typed
        raise CommandError(
            f"call: {_q(culprit)} is not part of a phone number; give digits (e.g. call 01632"
            " 960123), or withheld, unavailable or none; options come after it: name NAME,"
            " rings N, after-ring"
        )
    if len(body) > MAX_NUMBER_DIGITS:
        raise CommandError(
            f"call: {_q(typed)} has {len(body)} digits; caller ID carries at most"
            f" {MAX_NUMBER_DIGITS}"
        )
    return ("+" if plus else "") + body


def _numeric(word: str) -> bool:
    rest = word[1:] if word.startswith("+") else word
    return all(c in NUMBER_SEPARATORS or ("0" <= c <= "9") for c in rest)


def _name(words: list[str]) -> str:
    name = " ".join(words)
    if not name:
        raise CommandError('call: name needs a value, e.g. name POLICE or name "DC SMITH"')
    if len(name) > MAX_NAME_CHARS:
        raise CommandError(
            f"call: the name {_q(name[:20])}... is {len(name)} characters; caller ID carries at"
            f" most {MAX_NAME_CHARS}"
        )
    if not name.isprintable():
        raise CommandError(
            f"call: the name {_q(name)} holds a control character; use letters, digits and spaces"
        )
    try:
        name.encode("latin-1")
    except UnicodeEncodeError:
        raise CommandError(
            f"call: the name {_q(name)} has characters a caller-ID name cannot carry; use"
            " Latin letters (accents such as é are fine)"
        ) from None
    return name


def _rings(words: list[str]) -> int:
    text = " ".join(words)
    if len(words) == 1 and words[0].isascii() and words[0].isdigit():
        rings = int(words[0])
        if rings <= MAX_RINGS:
            return rings
    raise CommandError(
        f"call: rings {_q(text)}: give how many times the phone rings before the caller gives"
        f" up, a whole number from 0 to {MAX_RINGS} (e.g. rings 4)"
    )


# ----------------------------------------------------------------------------- describing


def shown_number(call: Call) -> str:
    """The caller as a person would say it: the number, or withheld / unavailable / none."""
    words = {v: k for k, v in NUMBER_WORDS.items()}
    if call.number in words:
        return words[call.number]
    return shown(call.number)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def describe(record: CallRecord) -> str:
    """One line on what a call did so far: "01632960123 (UK caller ID): seized by the modem
    before the first ring; caller ID at +0.000 s, seized at +0.004 s, released at +1.506 s"."""
    call = record.call
    rings = len(record.rings)
    who = shown_number(call) + (f" name {_q(call.name)}" if call.name is not None else "")
    timing = "caller ID after the first ring" if call.style == "us" else "UK caller ID"
    head = f"{who} ({timing})"
    outcome = record.outcome
    if outcome == "pending":
        what = "waiting for the line"
    elif outcome == "ringing":
        what = f"ringing, {_plural(rings, 'ring')} so far"
    elif outcome == "seized":
        when = "before the first ring" if rings == 0 else f"after {_plural(rings, 'ring')}"
        what = f"seized by the modem {when}"
        if not record.done:
            what += ", line held"
    elif outcome == "answered":
        what = "answered " + (
            "before the first ring" if rings == 0 else f"after {_plural(rings, 'ring')}"
        )
        if not record.done:
            what += ", in conversation (hangup ends it)"
    elif outcome == "unanswered":
        what = f"not answered: the caller gave up after {_plural(rings, 'ring')}"
    elif outcome == "busy":
        what = "found the line busy"
    else:
        what = "cut short: the sim stopped"
    notes: list[str] = []
    t0 = record.started_at
    if t0 is not None:
        for label, at in (
            ("caller ID", record.cid_sent_at),
            ("seized", record.seized_at),
            ("released", record.released_at),
            ("answered", record.answered_at),
            ("ended", record.ended_at),
        ):
            if at is not None:
                notes.append(f"{label} at +{at - t0:.3f} s")
    if (
        call.style == "uk"
        and call.sends_cid
        and record.cid_sent_at is None
        and outcome not in ("pending", "busy", "aborted")
    ):
        notes.append("no caller ID reached the client (unplugged, or no AT+VCID=1)")
    return f"{head}: {what}" + (f"; {', '.join(notes)}" if notes else "")


def record_json(record: CallRecord) -> dict[str, Any]:
    """A call as data, times in seconds from its start (null when it did not happen)."""
    t0 = record.started_at

    def since(at: float | None) -> float | None:
        return None if at is None or t0 is None else round(at - t0, 3)

    call = record.call
    return {
        "number": call.number,
        "caller": shown_number(call),
        "name": call.name,
        "caller_id": "after-first-ring" if call.style == "us" else "before-first-ring",
        "outcome": record.outcome,
        "done": record.done,
        "rings": len(record.rings),
        "seized_before_first_ring": record.seized_at is not None and not record.rings,
        "caller_id_at_s": since(record.cid_sent_at),
        "first_ring_at_s": since(record.rings[0]) if record.rings else None,
        "seized_at_s": since(record.seized_at),
        "released_at_s": since(record.released_at),
        "answered_at_s": since(record.answered_at),
        "ended_at_s": since(record.ended_at),
    }


# ----------------------------------------------------------------------------- running


@dataclass(frozen=True)
class Reply:
    ok: bool
    text: str
    quit: bool = False

    @property
    def line(self) -> str:
        """The reply as sent: one line, control characters written out."""
        return ("ok: " if self.ok else "error: ") + shown(self.text)


class Console:
    """Runs typed lines against a running `SimModem`; safe to call from several threads.

    Commands run one at a time, except `wait`, which waits without holding the others up.
    """

    def __init__(self, sim: SimModem) -> None:
        self.sim = sim
        self._lock = threading.Lock()
        self._handlers: dict[type, Callable[[Any], Reply]] = {
            PlaceCall: self._call,
            Answer: self._answer,
            HangUp: self._hang_up,
            Unplug: self._unplug,
            Replug: self._replug,
            LineDead: self._line_dead,
            Status: self._status,
            Help: lambda _: Reply(True, USAGE),
            Quit: lambda _: Reply(True, "stopping the sim", quit=True),
        }

    def execute(self, text: str) -> Reply | None:
        """Run one line; None for a blank line or a comment."""
        try:
            command = parse(text)
        except CommandError as e:
            return Reply(False, str(e))
        if command is None:
            return None
        if isinstance(command, Wait):
            return self._wait(command)
        with self._lock:
            try:
                return self._handlers[type(command)](command)
            except SimModemError as e:
                return Reply(False, str(e))
            except OSError as e:
                return Reply(False, f"the sim could not do that: {e.strerror or e}")

    def _line_busy_because(self) -> str:
        sim = self.sim
        active = sim.active_call
        if active is not None:
            return f"a call from {shown_number(active.call)} is on the line (hangup ends it)"
        if sim.extension_off_hook:
            return "the phone is off the hook (hangup puts it down)"
        if sim.off_hook:
            return "the modem holds the line off-hook (the client has seized it)"
        return "the line was in use"

    def _call(self, command: PlaceCall) -> Reply:
        sim = self.sim
        record = sim.place_call(command.call, wait_for_line=True).record
        if record.outcome == "busy":
            return Reply(False, f"the line is busy: {self._line_busy_because()}; then call again")
        call = command.call
        when = "after the first ring" if call.style == "us" else "before the first ring"
        cid = "no caller ID" if not call.sends_cid else f"caller ID {when}"
        note = "" if sim.plugged_in else "; the modem is unplugged, so the client hears nothing"
        return Reply(
            True,
            f"ringing: {shown_number(call)}"
            + (f" name {_q(call.name)}" if call.name is not None else "")
            + f" ({cid}, up to {_plural(call.rings, 'ring')}){note}",
        )

    def _answer(self, _: Answer) -> Reply:
        ringing = self.sim.active_call
        result = self.sim.answer()
        if result == "already-off-hook":
            return Reply(False, "the phone is already off the hook; hangup puts it down")
        volts = f"line {self.sim.line_volts:.1f} V"
        if result == "answered" and ringing is not None:
            return Reply(True, f"answered: {describe(ringing)}; {volts}")
        return Reply(True, f"the phone is off the hook with no call ringing; {volts}")

    def _hang_up(self, _: HangUp) -> Reply:
        on_line = self.sim.active_call
        result = self.sim.hang_up()
        if result == "nothing":
            return Reply(False, "nothing to hang up: no call on the line and the phone is down")
        volts = f"line {self.sim.line_volts:.1f} V"
        if result == "put-down":
            return Reply(True, f"the phone is down; {volts}")
        done = describe(on_line) if on_line is not None else "the call is over"
        if result == "caller-gave-up":
            return Reply(True, f"the caller gave up: {done}")
        if result == "caller-hung-up":
            modem = "; the modem still holds the line" if self.sim.off_hook else ""
            return Reply(True, f"the caller hung up: {done}{modem}")
        return Reply(True, f"the call is over: {done}; {volts}")

    def _unplug(self, _: Unplug) -> Reply:
        if not self.sim.plugged_in:
            return Reply(False, "the modem is already unplugged; replug plugs it back in")
        self.sim.unplug()
        return Reply(True, f"the modem is unplugged ({self.sim.port} is gone)")

    def _replug(self, _: Replug) -> Reply:
        was_in = self.sim.plugged_in
        self.sim.replug()
        again = "unplugged and plugged back in" if was_in else "plugged back in"
        return Reply(True, f"the modem is {again} at {self.sim.port} (power-on settings)")

    def _line_dead(self, command: LineDead) -> Reply:
        sim = self.sim
        if command.dead == sim.line_dead:
            now = "dead (line live gives it back)" if command.dead else "live"
            return Reply(False, f"the line is already {now}")
        sim.set_line_dead(command.dead)
        if command.dead:
            return Reply(True, f"the line is dead: {sim.line_volts:.1f} V, no call can come in")
        return Reply(True, f"the line is live again: {sim.line_volts:.1f} V")

    def status_json(self) -> dict[str, Any]:
        sim = self.sim
        calls = sim.calls
        return {
            "modem": "plugged-in" if sim.plugged_in else "unplugged",
            "port": sim.port,
            "modem_off_hook": sim.off_hook,
            "phone_off_hook": sim.extension_off_hook,
            "line_volts": round(sim.line_volts, 2),
            "line_dead": sim.line_dead,
            "calls": len(calls),
            "last_call": record_json(calls[-1]) if calls else None,
        }

    def _status(self, command: Status) -> Reply:
        if command.as_json:
            return Reply(True, json.dumps(self.status_json(), separators=(",", ":")))
        sim = self.sim
        modem = (
            f"modem plugged in at {sim.port} ({'off' if sim.off_hook else 'on'}-hook)"
            if sim.plugged_in
            else "modem unplugged"
        )
        phone = "phone off the hook" if sim.extension_off_hook else "phone down"
        calls = sim.calls
        last = f"last call {describe(calls[-1])}" if calls else "no calls yet"
        dead = " (dead: no call can come in)" if sim.line_dead else ""
        return Reply(True, f"{modem}; {phone}; line {sim.line_volts:.1f} V{dead}; {last}")

    def _wait(self, command: Wait) -> Reply:
        calls = self.sim.calls
        if not calls:
            return Reply(False, "no call to wait for; ring one with call NUMBER")
        record = calls[-1]
        try:
            record.wait(command.timeout_s)
        except TimeoutError:
            fix = "" if record.outcome == "answered" else "; hangup ends it"
            return Reply(
                False,
                f"after {command.timeout_s:g} s the call is not over: {describe(record)}{fix}",
            )
        return Reply(True, f"call over: {describe(record)}")
