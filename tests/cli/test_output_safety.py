"""Text from outside reaches a person's terminal only as visible characters.

A caller chooses their caller-ID name (and, for an invalid number, what is shown as the number);
an imported vCard chooses list names and notes. Terminal escapes (ESC [ ... or the one-byte C1
CSI), bidi controls (U+202E shows "KNAB RUOY" as "YOUR BANK"), line separators and zero-width
characters must be shown escaped by every human-readable command, while ``--json`` gives a
program back the exact text.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import unicodedata
from pathlib import Path
from typing import Any

import pytest
from helpers import write_config

from callguard import texts
from callguard.cli import main
from callguard.core.lists import target_for
from callguard.store.lists import Store

HOSTILE_CHARS = {
    "ESC": "\x1b",
    "CSI (C1)": "\x9b",
    "NEL": "\x85",
    "DEL": "\x7f",
    "NUL": "\x00",
    "BEL": "\x07",
    "backspace": "\x08",
    "carriage return": "\r",
    "newline": "\n",
    "tab": "\t",
    "LRE": "\u202a",
    "RLE": "\u202b",
    "PDF": "\u202c",
    "LRO": "\u202d",
    "RLO": "\u202e",
    "LRI": "\u2066",
    "RLI": "\u2067",
    "FSI": "\u2068",
    "PDI": "\u2069",
    "LRM": "\u200e",
    "RLM": "\u200f",
    "ALM": "\u061c",
    "line separator": "\u2028",
    "paragraph separator": "\u2029",
    "zero-width space": "\u200b",
    "zero-width joiner": "\u200d",
    "word joiner": "\u2060",
    "BOM": "\ufeff",
    "tag letter": "\U000e0041",
    "Hangul filler": "\u3164",
}
EVERY_HOSTILE = "".join(HOSTILE_CHARS.values())
SPOOF = "\u202eKNAB RUOY\u202c"  # shows as "YOUR BANK"
ESCAPE_SEQUENCE = "\x1b[2J\x1b]0;owned\x07\x9b31m"  # clear screen, set title, red
NAME = f"{SPOOF} {ESCAPE_SEQUENCE} {EVERY_HOSTILE} Café 李 😀"

UNSAFE = {"Cc", "Cf", "Cs", "Zl", "Zp"}


def assert_safe(text: str) -> None:
    """Nothing in ``text`` a terminal would act on or hide, but the line breaks between lines."""
    for i, char in enumerate(text):
        if char == "\n":
            continue
        assert unicodedata.category(char) not in UNSAFE, (hex(ord(char)), text[i - 20 : i + 20])
        assert char != "\u3164", text[i - 20 : i + 20]


@pytest.fixture
def cfg(tmp_path: Path) -> Path:
    return write_config(tmp_path / "callguard.toml", {"storage": {"dir": str(tmp_path / "state")}})


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "state")


def run(cfg: Path, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(["--config", str(cfg), *argv])
    out, err = capsys.readouterr()
    return code, out, err


TODAY = dt.datetime.now().astimezone().replace(hour=10, minute=0, second=0, microsecond=0)
"""Calls from today, so the log's retention keeps them."""


def started(hour: int) -> str:
    return TODAY.replace(hour=hour).isoformat()


def call_record(**changes: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "call_id": 1,
        "started": started(10),
        "ended": started(10),
        "number": "+447700900123",
        "display": "07700 900123",
        "category": "mobile",
        "name": NAME,
        "verdict": "warned",
        "rule": "unknown",
        "reason": f"Warned: not on any list. {ESCAPE_SEQUENCE}",
        "answered": True,
        "duration_s": 180.0,
        "notes": [NAME],
    }
    record.update(changes)
    return record


def test_log_shows_hostile_caller_ids_escaped(
    cfg: Path, store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    store.append_call(call_record())
    store.append_call(  # an invalid number is shown as the caller ID sent it
        call_record(
            call_id=2,
            started=started(11),
            number=None,
            display=f"0800{ESCAPE_SEQUENCE}\u2028{SPOOF}",
            category="invalid",
            name=None,
        )
    )
    code, out, _ = run(cfg, capsys, "log")
    assert code == 0
    assert_safe(out)
    lines = out.splitlines()
    assert len(lines) == 2, lines  # no forged log lines
    assert "\\u202eKNAB RUOY\\u202c" in lines[0] and "\\x1b[2J" in lines[0]
    assert "\\x9b31m" in lines[0] and "Café 李 😀" in lines[0]
    assert lines[1].startswith(f"{started(11)[:10]} 11:00  0800\\x1b[2J")


def test_log_json_gives_back_the_exact_text(
    cfg: Path, store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    record = call_record()
    store.append_call(record)
    code, out, _ = run(cfg, capsys, "log", "--json")
    assert code == 0
    assert_safe(out)
    calls = json.loads(out)
    assert calls[0]["name"] == NAME and calls[0]["reason"] == record["reason"]
    assert calls[0]["notes"] == [NAME]


def plant(store: Store, list_name: str, number: str, name: str, note: str) -> None:
    """A row as a hand edit or an older CallGuard may have left it (``add`` refuses control
    characters in names now, but what is in a file is shown whatever it holds)."""
    store.add(list_name, target_for(number, "GB"))
    path = store.list_paths[list_name]
    tables = json.loads(path.read_text())
    for doc in tables[list_name].values():
        if doc["number"] == target_for(number, "GB").number:
            doc.update(name=name, note=note)
    path.write_text(json.dumps(tables))


@pytest.mark.parametrize("list_name", ["allow", "block"])
def test_list_shows_hostile_names_and_notes_escaped(
    list_name: str, cfg: Path, store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    plant(store, list_name, "07700 900123", NAME, ESCAPE_SEQUENCE)
    plant(store, list_name, "01707 354000", SPOOF, EVERY_HOSTILE)
    code, out, _ = run(cfg, capsys, list_name, "list")
    assert code == 0
    assert_safe(out)
    assert len(out.splitlines()) == 3  # the title and one line per entry
    assert "\\u202eKNAB RUOY\\u202c" in out and "\\x1b]0;owned\\x07" in out

    code, out, _ = run(cfg, capsys, list_name, "list", "--json")
    assert code == 0
    assert_safe(out)
    entries = {e["number"]: e for e in json.loads(out)}
    assert entries["+447700900123"]["name"] == NAME
    assert entries["+447700900123"]["note"] == ESCAPE_SEQUENCE
    assert entries["+441707354000"]["name"] == SPOOF
    assert entries["+441707354000"]["note"] == EVERY_HOSTILE

    code, out, _ = run(cfg, capsys, list_name, "remove", "07700 900123")
    assert code == 0
    assert_safe(out)
    assert "\\u202eKNAB RUOY" in out


def test_list_add_refuses_a_hostile_name_and_says_so_escaped(
    cfg: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(cfg, capsys, "allow", "add", "07700 900123", "--name", NAME)
    assert code == 2 and out == ""
    assert_safe(err)
    assert "control character" in err and "\\u202e" in err


def test_status_shows_the_modem_and_last_caller_escaped(
    cfg: Path, store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    status = {
        "daemon": "running",
        "pid": os.getpid(),  # alive, so the status is shown as written
        "modem": "connected",
        "modem_detail": {"detail": f"modem says {ESCAPE_SEQUENCE}\u2028{SPOOF}"},
        "line": "idle",
        "last_call": {
            "started": "2024-05-01T10:00:00+01:00",
            "display": f"0800{ESCAPE_SEQUENCE}",
            "verdict": "warned",
            "name": NAME,
        },
        "grooming_alert": False,
    }
    store.write_status(status)
    code, out, _ = run(cfg, capsys, "status")
    assert code == 0
    assert_safe(out)
    assert len(out.splitlines()) == 5
    assert "modem says \\x1b[2J" in out and "0800\\x1b[2J" in out

    code, out, _ = run(cfg, capsys, "status", "--json")
    assert code == 0
    assert_safe(out)
    shown_status = json.loads(out)
    assert shown_status["modem_detail"]["detail"] == status["modem_detail"]["detail"]
    assert shown_status["last_call"] == status["last_call"]


def test_ack_shows_the_caller_escaped(
    cfg: Path, store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    store.raise_alert({"display": f"0800{ESCAPE_SEQUENCE}{SPOOF}", "category": "invalid"})
    code, out, _ = run(cfg, capsys, "ack", "--by", "sue")
    assert code == 0
    assert_safe(out)
    assert "0800\\x1b[2J" in out


def test_import_problems_are_shown_escaped(
    cfg: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    card = tmp_path / "contacts.vcf"
    name = f"{SPOOF}\x1b[2J\x9b31m\u2066\u200b"
    card.write_text(f"BEGIN:VCARD\nVERSION:3.0\nFN:{name}\nEND:VCARD\n", encoding="utf-8")
    code, out, err = run(cfg, capsys, "allow", "import", str(card))
    assert code == 2
    assert_safe(out + err)
    assert "\\u202eKNAB RUOY" in err and "\\x1b[2J" in err


def test_error_messages_keep_their_lines_but_nothing_else(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "callguard.toml"
    path.write_text('[warning]\n"room\\u001b[2J\\u202e" = 1\n[block]\nhold_s = "\\u009b"\n')
    assert main(["--config", str(path), "config", "check"]) == 2
    err = capsys.readouterr().err
    assert_safe(err)
    assert len(err.splitlines()) == 3  # the heading and one line for each problem


# -- the function itself ------------------------------------------------------------------------


@pytest.mark.parametrize("label", list(HOSTILE_CHARS))
def test_shown_escapes_each_hostile_character_visibly(label: str) -> None:
    char = HOSTILE_CHARS[label]
    text = texts.shown(f"a{char}b")
    assert text.startswith("a\\") and text.endswith("b") and len(text) > 3
    assert_safe(text)


def test_shown_leaves_ordinary_text_alone() -> None:
    for text in ["Sue (daughter)", "Café, Zoë, naïve", "李小龙", "Ελένη", "😀 👍🏽", "a\\nb"]:
        assert texts.shown(text) == text
    assert texts.shown("two\nlines\u2028here", lines=True) == "two\nlines\\u2028here"


def test_shown_and_shown_json_over_every_code_point() -> None:
    every = "".join(chr(c) for c in range(0x110000))
    assert_safe(texts.shown(every))
    # Surrogates are left out of the JSON round trip: no JSON (or UTF-8) text can hold a lone
    # one, and a high one next to a low one reads back as the pair they make.
    scalars = "".join(c for c in every if not 0xD800 <= ord(c) <= 0xDFFF)
    chunks = [scalars[i : i + 4096] for i in range(0, len(scalars), 4096)]
    out = texts.shown_json(chunks)
    assert_safe(out)
    assert json.loads(out) == chunks
