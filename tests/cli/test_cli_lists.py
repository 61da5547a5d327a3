"""The list commands, as family members and volunteers use them."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from callguard.cli import main
from callguard.core.lists import ImportItem
from callguard.errors import UsageError
from callguard.store.contacts import parse_file


def run(cfg: Path, *argv: str) -> int:
    return main(["--config", str(cfg), *argv])


def listed(cfg: Path, capsys: pytest.CaptureFixture[str], list_name: str) -> list[dict[str, str]]:
    capsys.readouterr()
    assert run(cfg, list_name, "list", "--json") == 0
    return json.loads(capsys.readouterr().out)


def state_files(cfg: Path) -> dict[str, bytes]:
    state = cfg.parent / "state"
    if not state.exists():
        return {}
    return {p.name: p.read_bytes() for p in state.iterdir() if not p.name.endswith(".lock")}


def test_add_list_remove(cfg: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(cfg, "allow", "add", "01707 354000", "--name", "Sue (daughter)", "--by", "sue") == 0
    out = capsys.readouterr().out
    assert "Added 01707 354000" in out and "allow list" in out and "Sue (daughter)" in out
    entries = listed(cfg, capsys, "allow")
    assert len(entries) == 1
    entry = entries[0]
    assert entry["number"] == "+441707354000" and entry["name"] == "Sue (daughter)"
    assert entry["added_by"] == "sue" and entry["added"][:4].isdigit()

    assert run(cfg, "allow", "list") == 0
    assert "01707 354000" in capsys.readouterr().out

    assert run(cfg, "allow", "remove", "+44 1707 354000") == 0
    assert "Removed" in capsys.readouterr().out
    assert listed(cfg, capsys, "allow") == []


def test_adding_again_updates_the_name(cfg: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run(cfg, "allow", "add", "07700 900123", "--name", "Bob")
    run(cfg, "allow", "add", "+447700900123", "--name", "Bob (neighbour)")
    assert "Updated" in capsys.readouterr().out
    entries = listed(cfg, capsys, "allow")
    assert [(e["number"], e["name"]) for e in entries] == [("+447700900123", "Bob (neighbour)")]
    assert "updated" in entries[0]


def test_short_codes_and_prefixes(cfg: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(cfg, "protect", "add", "0306 999 0123", "--name", "Drama Bank") == 0
    assert run(cfg, "block", "add", "0870", "--prefix", "--name", "0870 numbers") == 0
    assert run(cfg, "block", "add", "+234*") == 0
    protect = {e["number"]: e for e in listed(cfg, capsys, "protect")}
    bank = protect["+443069990123"]
    assert bank["name"] == "Drama Bank" and "shipped" not in bank
    assert protect["159"]["shipped"] is True
    assert protect["999"]["shipped"] is True  # CallGuard's own protected numbers are listed too
    numbers = {e["number"]: e["kind"] for e in listed(cfg, capsys, "block")}
    assert numbers == {"+44870*": "prefix", "+234*": "prefix"}
    run(cfg, "block", "list")
    assert "0870*" in capsys.readouterr().out
    assert run(cfg, "block", "remove", "0870", "--prefix") == 0


def test_allowing_a_blocked_number_needs_force(
    cfg: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run(cfg, "block", "add", "020 7946 0991", "--name", "rang pretending to be the bank")
    capsys.readouterr()
    before = state_files(cfg)
    assert run(cfg, "allow", "add", "020 7946 0991") == 2
    err = capsys.readouterr().err
    assert "block list" in err and "--force" in err and "pretending to be the bank" in err
    assert state_files(cfg) == before  # nothing written

    assert run(cfg, "allow", "add", "020 7946 0991", "--force", "--name", "Bank branch") == 0
    assert "taken off" in capsys.readouterr().out
    assert listed(cfg, capsys, "block") == []
    assert [e["name"] for e in listed(cfg, capsys, "allow")] == ["Bank branch"]


def test_protected_number_cannot_be_allowed_without_force(
    cfg: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run(cfg, "protect", "add", "999")
    capsys.readouterr()
    assert run(cfg, "allow", "add", "999") == 2
    assert "never calls out" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["allow", "add", "0170735"], "0170735"),
        (["allow", "add", "hello"], "hello"),
        (["allow", "add", ""], "''"),
        (["block", "add", "abc", "--prefix"], "abc"),
        (["protect", "add", "0800", "--prefix"], "whole numbers"),
        (["allow", "remove", "01707 354000"], "not on the allow list"),
        (["allow", "import", "/no/such/file.csv"], "no such file"),
    ],
)
def test_bad_input_exits_2_names_the_value_and_writes_nothing(
    cfg: Path, capsys: pytest.CaptureFixture[str], argv: list[str], fragment: str
) -> None:
    assert run(cfg, *argv) == 2
    assert fragment in capsys.readouterr().err
    assert not any(name.startswith("lists.json") for name in state_files(cfg))


def test_import_csv_with_header_and_bad_lines(
    cfg: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv = tmp_path / "family.csv"
    csv.write_text(
        "number,name,note\n"
        "01707 354000,Sue,daughter\n"
        "07700-900123,Bob\n"
        "not a number,Nobody\n"
        "+33 1 23 45 67 89,Cousin Anne,Paris\n"
        "0170735,Short\n"
    )
    assert run(cfg, "allow", "import", str(csv)) == 2
    err = capsys.readouterr().err
    assert f"{csv}:4:" in err and f"{csv}:6:" in err and "nothing was imported" in err
    assert state_files(cfg) == {} or not any(n.startswith("lists") for n in state_files(cfg))

    assert run(cfg, "allow", "import", str(csv), "--skip-invalid") == 0
    assert "3 added, 0 updated, skipped 2" in capsys.readouterr().out
    names = {e["number"]: e["name"] for e in listed(cfg, capsys, "allow")}
    assert names == {"+441707354000": "Sue", "+447700900123": "Bob", "+33123456789": "Cousin Anne"}


def test_import_vcard(cfg: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    vcf = tmp_path / "contacts.vcf"
    vcf.write_text(
        "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Sue Smith\r\nN:Smith;Sue;;;\r\n"
        "TEL;TYPE=HOME:01707 354000\r\nitem1.TEL;TYPE=CELL:07700 9\r\n 00123\r\nEND:VCARD\r\n"
        "BEGIN:VCARD\r\nVERSION:4.0\r\nFN:Dr Patel's surgery\r\n"
        "TEL;VALUE=uri;TYPE=work:tel:+44-20-7946-0000\r\nEND:VCARD\r\n"
    )
    assert run(cfg, "allow", "import", str(vcf)) == 0
    entries = {e["number"]: e["name"] for e in listed(cfg, capsys, "allow")}
    assert entries == {
        "+441707354000": "Sue Smith",
        "+447700900123": "Sue Smith",
        "+442079460000": "Dr Patel's surgery",
    }


def test_vcard_values_are_unescaped(
    cfg: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """vCard 3.0 and 4.0 escape commas, semicolons, backslashes and newlines in values."""
    vcf = tmp_path / "contacts.vcf"
    vcf.write_text(
        "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Smith\\, John\r\nTEL:01707 354000\r\nEND:VCARD\r\n"
        "BEGIN:VCARD\r\nVERSION:4.0\r\nFN:A\\;B\\\\C \\q\r\nTEL:01707 354001\r\nEND:VCARD\r\n"
        "BEGIN:VCARD\r\nVERSION:4.0\r\nFN:Dr Patel\\nSurgery\\N\r\nTEL:01707 354002\r\n"
        "END:VCARD\r\n"
        "BEGIN:VCARD\r\nVERSION:3.0\r\nN:O\\;Brien;Mary\\,Ann,Jo;;;\r\nTEL:01707 354003\r\n"
        "END:VCARD\r\n"
        "BEGIN:VCARD\r\nVERSION:3.0\r\nN:Smith\\\\;Sue;;;\r\nTEL:01707 354004\r\nEND:VCARD\r\n"
    )
    assert run(cfg, "allow", "import", str(vcf)) == 0
    names = {e["number"][-1]: e["name"] for e in listed(cfg, capsys, "allow")}
    assert names == {
        "0": "Smith, John",
        "1": "A;B\\C \\q",  # a backslash before anything else is kept
        "2": "Dr Patel Surgery",  # a name is one line
        "3": "Mary,Ann Jo O;Brien",  # given names, then the family name
        "4": "Sue Smith\\",  # an escaped backslash does not escape the ;
    }


def test_vcard_without_tel_is_reported(
    cfg: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    vcf = tmp_path / "contacts.vcf"
    vcf.write_text("BEGIN:VCARD\nVERSION:3.0\nFN:No Phone\nEMAIL:a@example.org\nEND:VCARD\n")
    assert run(cfg, "allow", "import", str(vcf)) == 2
    err = capsys.readouterr().err
    assert "No Phone" in err and "no TEL" in err


@pytest.mark.parametrize("content", [b"", b"   \n\n", b"\xff\xfe\x00\x00"])
def test_empty_or_unreadable_csv(
    cfg: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes
) -> None:
    bad = tmp_path / "list.csv"
    bad.write_bytes(content)
    assert run(cfg, "block", "import", str(bad)) == 2
    assert str(bad) in capsys.readouterr().err


def test_import_refuses_conflicts_unless_forced(
    cfg: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run(cfg, "allow", "add", "01707 354000", "--name", "Sue")
    csv = tmp_path / "scams.csv"
    csv.write_text("01707354000,scam?\n0113 496 0000,scam\n")
    capsys.readouterr()
    assert run(cfg, "block", "import", str(csv)) == 2
    assert "line 1" in capsys.readouterr().err
    assert listed(cfg, capsys, "block") == []
    assert run(cfg, "block", "import", str(csv), "--force") == 0
    assert len(listed(cfg, capsys, "block")) == 2 and listed(cfg, capsys, "allow") == []


def test_unwritable_storage_dir_is_explained(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[storage]\ndir = "{blocker / "sub"}"\n')
    assert main(["--config", str(cfg), "allow", "add", "01707354000"]) == 1
    err = capsys.readouterr().err
    assert str(blocker / "sub") in err and "storage.dir" in err


def test_two_processes_adding_100_numbers_each_lose_none(
    cfg: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    script = (
        "import sys\n"
        "from callguard.store.lists import Store, target_for\n"
        "store = Store(sys.argv[1])\n"
        "base = int(sys.argv[2])\n"
        "for i in range(100):\n"
        "    store.add('block', target_for(f'020 7946 {base + i:04d}', 'GB'), name=str(i))\n"
    )
    state = str(cfg.parent / "state")
    procs = [
        subprocess.Popen([sys.executable, "-c", script, state, str(base)]) for base in (0, 500)
    ]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    numbers = {e["number"] for e in listed(cfg, capsys, "block")}
    assert len(numbers) == 200


# -- import files that are malformed (issue 11, #12) --------------------------------------------

MALFORMED = {
    "a cell longer than the CSV reader's limit": (
        b'01707 354000,Sue\n"' + b"x" * 200_000 + b"\n",
        2,
        "a cell longer than 131,072 characters",
    ),
    "lines ended by a lone CR": (
        b"01707 354000,Sue\r0170,Short\r",
        2,
        "not a complete UK phone number",
    ),
    "a vCard 2.1 CHARSET Python does not know": (
        b"BEGIN:VCARD\r\nVERSION:2.1\r\nFN;ENCODING=QUOTED-PRINTABLE;CHARSET=X-MAC-WELSH:=41\r\n"
        b"TEL:01707354000\r\nEND:VCARD\r\n",
        3,
        "CHARSET='X-MAC-WELSH' is not a character set",
    ),
    "a CHARSET that is not a text encoding": (
        b"BEGIN:VCARD\nFN;ENCODING=QUOTED-PRINTABLE;CHARSET=base64:=41\nTEL:01707354000\n"
        b"END:VCARD\n",
        2,
        "CHARSET='BASE64' is not a character set",
    ),
    "NUL characters": (b"01707 354000,Sue\n0113\x00496 0000,x\n", 2, "has NUL characters"),
}


@pytest.mark.parametrize("kind", list(MALFORMED))
def test_a_malformed_import_exits_2_naming_the_file_and_line(
    cfg: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    content, line, message = MALFORMED[kind]
    bad = tmp_path / "contacts.txt"
    bad.write_bytes(content)
    assert run(cfg, "allow", "import", str(bad)) == 2
    err = capsys.readouterr().err
    assert f"{bad}:{line}: " in err and message in err
    assert "Traceback" not in err and "--debug" not in err
    assert not any(name.startswith("lists.json") for name in state_files(cfg))


def test_a_utf16_tab_separated_export_is_imported(
    cfg: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = tmp_path / "unicode.txt"  # Excel's "Unicode Text": UTF-16 with a BOM, tabs
    text.write_bytes("number\tname\r\n01707 354000\tSi\u00e2n\r\n".encode("utf-16"))
    assert run(cfg, "allow", "import", str(text)) == 0
    assert [(e["number"], e["name"]) for e in listed(cfg, capsys, "allow")] == [
        ("+441707354000", "Si\u00e2n")
    ]


CSVISH = st.lists(
    st.sampled_from(
        [
            b"01707 354000",
            b",",
            b";",
            b"\t",
            b'"',
            b"\n",
            b"\r",
            b"\r\n",
            b"0170*",
            b"+44",
            b"#",
            b"number",
            b"\x00",
            b"\xff\xfe",
            b"\xef\xbb\xbf",
            b"\xe9",
            b"\xed\xa0\x80",
            b" ",
        ]
    ),
    max_size=40,
).map(b"".join)
VCARDISH = st.lists(
    st.sampled_from(
        [
            b"BEGIN:VCARD",
            b"END:VCARD",
            b"\r\n",
            b"\n",
            b" ",
            b"FN:",
            b"N:",
            b"TEL:",
            b"tel:",
            b";ENCODING=QUOTED-PRINTABLE",
            b";CHARSET=",
            b"utf-8",
            b"undefined",
            b"idna",
            b"rot13",
            b"=E9",
            b"=\r\n",
            b"item1.",
            b"01707354000",
            b";",
            b":",
            b"=",
            b"\x00",
            b"\xff",
        ]
    ),
    max_size=40,
).map(lambda parts: b"BEGIN:VCARD\n" + b"".join(parts))


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=300), CSVISH, VCARDISH))
@example(b"1\r2,x\n")
@example(b'"' + b"x" * 140_000)
@example(b"BEGIN:VCARD\nFN;ENCODING=QUOTED-PRINTABLE;CHARSET=undefined:=41\nEND:VCARD\n")
@example(b"BEGIN:VCARD\nFN;ENCODING=QUOTED-PRINTABLE;CHARSET=a\x00b:=41\nEND:VCARD\n")
@example("\ufeff0170\t\ud800\n".encode("utf-16", "surrogatepass"))
def test_any_import_file_is_read_or_refused_with_a_usage_error(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "contacts.csv"
        path.write_bytes(data)
        try:
            items, problems = parse_file(path, "GB")
        except UsageError as exc:
            assert str(path) in str(exc)
            return
    assert all(isinstance(item, ImportItem) for item in items)
    for line, message in problems:
        assert line >= 1 and message.strip()


def test_an_import_says_which_contacts_it_passed_over(
    cfg: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    card = tmp_path / "phone.vcf"
    card.write_text(
        "BEGIN:VCARD\nVERSION:3.0\nFN:Sue Smith\nTEL;TYPE=CELL:07700 900123\nEND:VCARD\n"
        "BEGIN:VCARD\nVERSION:3.0\nFN:Only Mail\nEMAIL:a@example.org\nEND:VCARD\n"
    )
    assert run(cfg, "allow", "import", str(card)) == 0
    captured = capsys.readouterr()
    assert "1 added" in captured.out
    assert f"{card}:6: note:" in captured.err and "Only Mail" in captured.err
