"""What CallGuard says out loud, and how it shows other people's text on a screen.

Spoken texts: plain British English, short, calm, and under 15 seconds.

Shown texts: a caller-ID name, a list entry's note or an import file's line comes from outside,
and a terminal obeys what is in it. A control character moves the cursor, rewrites earlier lines
or changes the title (``\\x1b[...``, or the one-character C1 form ``\\x9b``); a bidi control such
as U+202E RIGHT-TO-LEFT OVERRIDE makes ``KNAB RUOY`` read as ``YOUR BANK``; a line separator or a
newline forges a second log line; a zero-width character hides inside a name. :func:`shown` is
the one place that makes such text safe to show a person: every character of those kinds is
written out visibly (``\\x1b``, ``\\u202e``), everything else is left as it is.
:func:`shown_json` does the same for JSON output, with JSON's own ``\\uXXXX`` escapes, so the
text a program reads back is exactly the original.
"""

from __future__ import annotations

import json
import unicodedata
from typing import Any

BLOCKED_LAST = "Done. The last caller is blocked. They will not ring again."
"""Said in the room after the button's long press has blocked the last caller."""
NOTHING_TO_BLOCK = "There is no caller to block."
"""Said in the room after a long press when there was no unknown caller with a number."""

DEFAULT_LINE_WARNING = "This caller is not on your list. Police and banks never ask for your PIN."
"""Spoken down the line when an unknown call is answered: short (5 s at 150 words a minute),
so the resident is not kept waiting and the modem leaves the line quickly."""
LINE_WARNING_MAX_CHARS = 100
"""About 6 seconds spoken: the most ``warning.line_text`` may hold."""

DEFAULT_WARNING = (
    "This is CallGuard. Police and banks will never ask for your PIN, ask you to take out cash, "
    "or send a courier to collect it. If in doubt, hang up, and call one five nine from another "
    "phone."
)
"""Spoken in the room while an unknown caller rings (the line has its own, shorter one).
"one five nine", not "159": espeak-ng would say "one hundred and fifty-nine"."""

DEFAULT_ANNOUNCEMENT = "This number does not accept your calls. Goodbye."
"""Said to a blocked caller when ``block.announce`` is on."""

DEFAULT_CLAIM_WARNING = (
    "This is CallGuard. This caller claims to be the police, a bank or the tax office. They "
    "will never ask for your PIN, your cash or your cards. Hang up, and call one five nine "
    "from another phone."
)
"""The stronger warning, when the caller-ID name claims authority (screening.claim_words)."""

DEFAULT_REMINDER = (
    "This is CallGuard. If you are calling your bank or the police about the last call, please "
    "wait five minutes first, or use another phone: the caller may still be on your line."
)
"""Spoken when the phone is picked up within five minutes of a warned or spoofed call."""


UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
"""Unicode categories a terminal may act on instead of showing: controls (C0, DEL, C1, which
includes NEL U+0085), format characters (bidi controls U+061C, U+200E/200F, U+202A-202E,
U+2066-2069, zero-width characters, tags), lone surrogates, and the line and paragraph
separators U+2028/2029."""

INVISIBLE_LETTERS = frozenset("\u115f\u1160\u3164\uffa0")
"""Hangul fillers: letters by category, but blank, so a name made of them looks empty."""


def unsafe(char: str) -> bool:
    """Whether one character must not reach a terminal as it is."""
    return unicodedata.category(char) in UNSAFE_CATEGORIES or char in INVISIBLE_LETTERS


_SHORT_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escaped(char: str) -> str:
    if char in _SHORT_ESCAPES:
        return _SHORT_ESCAPES[char]
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def shown(text: object, *, lines: bool = False) -> str:
    """``text`` made safe to show a person: unsafe characters written out as ``\\x1b``, ``\\u202e``.

    Every control character is escaped, newline and tab included, so a name or a reason stays
    on its own line; with ``lines=True`` newlines are kept (a message of several lines).
    Printable text, accents and other scripts included, comes back unchanged.
    """
    value = text if isinstance(text, str) else str(text)
    if value.isprintable() and INVISIBLE_LETTERS.isdisjoint(value):  # the common case
        return value
    keep = "\n" if lines else ""
    return "".join(_escaped(c) if c not in keep and unsafe(c) else c for c in value)


def _json_escaped(char: str) -> str:
    code = ord(char)
    if code < 0x10000:
        return f"\\u{code:04x}"
    code -= 0x10000
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


def shown_json(data: Any, *, indent: int | None = 2) -> str:
    """``data`` as JSON for a terminal: readable non-ASCII text, unsafe characters as ``\\uXXXX``.

    ``json.loads`` of the result gives back exactly ``data``. ``json.dumps`` already escapes
    C0 controls inside strings; C1 controls, bidi controls and separators it leaves raw when
    ``ensure_ascii`` is off, and outside strings the only unsafe character is the newline that
    ``indent`` puts between items, so every other unsafe character is inside a string, where
    ``\\uXXXX`` (a surrogate pair above U+FFFF) stands for it exactly.
    """
    text = json.dumps(data, indent=indent, ensure_ascii=False)
    return "\n".join(
        line
        if line.isprintable() and INVISIBLE_LETTERS.isdisjoint(line)
        else "".join(_json_escaped(c) if unsafe(c) else c for c in line)
        for line in text.split("\n")
    )


def duration_words(seconds: float | None) -> str:
    """How long a call lasted, as a family member reads it: "25 s", "4 min 5 s", "1 h 2 min";
    "" when it is not known."""
    if seconds is None or seconds != seconds or seconds < 0:  # None, NaN, nonsense
        return ""
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    return f"{secs} s"
