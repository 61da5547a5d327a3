"""Contact exports as phones and address books write them (tests/data/contacts), read into a
preview of what an import would add, and imported by `callguard allow import`."""

from __future__ import annotations

import codecs
import json
from pathlib import Path

import pytest
from helpers import write_config
from hypothesis import given, settings
from hypothesis import strategies as st

from callguard.cli import main
from callguard.core.lists import MAX_NAME, MAX_NOTE, check_text
from callguard.errors import UsageError
from callguard.store.contacts import (
    Preview,
    clean,
    parse_file,
    preview_data,
    preview_file,
    preview_text,
)
from callguard.store.lists import Store

DATA = Path(__file__).resolve().parent.parent / "data" / "contacts"

# For each export: the (line, number, name) it adds, and the notes' lines with a word of each.
EXPECTED: dict[str, tuple[list[tuple[int, str, str]], list[tuple[int, str]]]] = {
    "google.csv": (
        [
            (2, "+447700900123", "Sue Smith (mobile)"),  # two mobiles in one cell, " ::: "
            (2, "+447700900456", "Sue Smith (mobile)"),
            (2, "+441134960000", "Sue Smith (home)"),
            (7, "+441707354100", "Dr Patel's Surgery (work)"),  # after a 5-line record
            (8, "+442079460018", "Rev. John James O'Brien-Whitfield (Church office)"),
            (
                10,
                "+443001237571",
                "Hertfordshire Community NHS Trust, District Nursing\u2026 (main)",
            ),
            (11, "+447700900789", "Tom \U0001f468\U0001f393 Smith (mobile)"),  # no joiner
            (11, "+442079460321", "Tom \U0001f468\U0001f393 Smith (work)"),
            (13, "+33612345678", "Anne Dubois (mobile)"),
        ],
        [(7, "extension (2)"), (9, "Parish Newsletter"), (10, "cut to 60"), (12, "line 11")],
    ),
    "google-legacy.csv": (
        [
            (2, "+447700900321", "Margaret Jones (mobile)"),
            (2, "+441707354555", "Margaret Jones (home)"),
            (3, "+441707354666", "Smith, Bob (home)"),  # "* Home": the primary number
        ],
        [(4, "offers@shop.example.com")],
    ),
    "outlook.csv": (
        [
            (2, "+441134960000", "Sue Smith (home)"),
            (2, "+447700900123", "Sue Smith (mobile)"),
            (3, "+441707354777", "Bob Brown (work)"),
            (3, "+441707354778", "Bob Brown (work fax)"),
        ],
        [(4, "Hatfield Library")],
    ),
    "phone-app.csv": (
        [
            (2, "+447700900123", "Sue Smith (mobile)"),
            (2, "+441134960000", "Sue Smith (home)"),
            (3, "+441707354100", "Patel; Dr (surgery) (home)"),
        ],
        [(4, "Parish Newsletter")],
    ),
    "names-first.csv": (
        [
            (1, "+447700900123", "Sue Smith"),
            (2, "+441707354100", "Dr Patel's Surgery"),
            (3, "+441707354777", "Brown, Bob"),
        ],
        [],
    ),
    "iphone.vcf": (
        [
            (6, "+447700900123", "Sue Smith"),
            (7, "+441134960000", "Sue Smith"),
            (8, "+441134960001", "Sue Smith"),
            (33, "+441707354100", "Dr Patel's Surgery"),
            (41, "+447700900987", "Mrs Mary Ann O'Brien"),  # and line 42 again: once, silently
            (
                49,
                "+443001237571",
                "Hertfordshire Community NHS Trust, District Nursing Team (W\u2026",
            ),
            (57, "+33612345678", "Anne Dubois"),
        ],
        [(20, "the card (Parish Newsletter) has no phone number"), (49, "cut to 60")],
    ),
    "android.vcf": (
        [
            (5, "+447700900321", "Margaret Jones"),
            (6, "+441707354555", "Margaret Jones"),
            (13, "+447700900654", "Si\u00e2n C\u00e9line"),  # quoted-printable UTF-8
            (25, "+441707354777", "Bob Brown"),
            (26, "+441707354778", "Bob Brown"),
        ],
        [(15, "Hatfield Library")],
    ),
}


@pytest.fixture
def cfg(tmp_path: Path) -> Path:
    return write_config(tmp_path / "callguard.toml", {"storage": {"dir": str(tmp_path / "state")}})


def entries(preview: Preview) -> list[tuple[int, str, str]]:
    return [(item.line, item.target.number, item.name) for item in preview.items]


@pytest.mark.parametrize("name", list(EXPECTED))
def test_each_export_is_read_whole(name: str) -> None:
    items, notes = EXPECTED[name]
    preview = preview_file(DATA / name, "GB")
    assert preview.problems == []
    assert entries(preview) == items
    assert [line for line, _ in preview.notes] == [line for line, _ in notes]
    for (_, message), (_, words) in zip(preview.notes, notes, strict=True):
        assert words in message
    for item in preview.items:  # what the store asks of a name and a note
        check_text("name", item.name, MAX_NAME)
        check_text("note", item.note, MAX_NOTE)


def test_the_preview_says_how_the_file_was_read() -> None:
    assert preview_file(DATA / "google.csv", "GB").how == (
        "Read as a Google Contacts CSV: names from \u201cName Prefix\u201d, \u201cFirst Name\u201d,"
        " \u201cMiddle Name\u201d, \u201cLast Name\u201d, \u201cOrganization Name\u201d; numbers "
        "from \u201cPhone 1 - Value\u201d, \u201cPhone 2 - Value\u201d."
    )
    assert "names from \u201cFirst Name\u201d, \u201cLast Name\u201d" in (
        preview_file(DATA / "outlook.csv", "GB").how
    )
    assert preview_file(DATA / "names-first.csv", "GB").how == (
        "Read as CSV without a header: name, number[, note]."
    )
    assert preview_file(DATA / "iphone.vcf", "GB").how.startswith("Read as vCard")


@pytest.mark.parametrize("name", ["google.csv", "iphone.vcf"])
def test_the_cli_imports_an_export_with_e_mail_only_contacts(
    cfg: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    assert main(["--config", str(cfg), "allow", "import", str(DATA / name)]) == 0
    out = capsys.readouterr().out
    wanted = {number: person for _, number, person in EXPECTED[name][0]}
    assert f"{len(wanted)} added, 0 updated." in out
    assert main(["--config", str(cfg), "allow", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert {e["number"]: e["name"] for e in listed} == wanted


def test_the_same_preview_for_the_page_from_the_uploaded_bytes() -> None:
    for name in EXPECTED:
        data = (DATA / name).read_bytes()
        assert preview_data(data, "GB", source=name) == preview_file(DATA / name, "GB")
    with pytest.raises(UsageError, match=r"^contacts\.csv is empty"):
        preview_data(codecs.BOM_UTF8 + b"\r\n", "GB", source="contacts.csv")
    with pytest.raises(UsageError, match=r"^upload\.csv:2: the file has NUL characters"):
        preview_data(b"number\n0\x001\n", "GB", source="upload.csv")


def test_a_file_of_e_mail_only_contacts_is_refused_by_the_cli_saying_why_for_each() -> None:
    """parse_file (the CLI's): with nothing to import, the notes are the bad lines."""
    preview = preview_text(
        "First Name,Last Name,E-mail 1 - Value,Phone 1 - Label,Phone 1 - Value\n"
        "Parish,Newsletter,news@example.org,,\n"
        ",,offers@example.com,,\n",
        "GB",
    )
    assert preview.items == [] and preview.problems == []
    assert preview.notes == [
        (2, "no phone number for Parish Newsletter; skipped"),
        (3, "no phone number for offers@example.com; skipped"),
    ]


def test_parse_file_keeps_the_notes_apart_while_there_is_something_to_import(
    tmp_path: Path,
) -> None:
    items, problems = parse_file(DATA / "iphone.vcf", "GB")
    assert len(items) == 7 and problems == []
    only_e_mail = tmp_path / "one.vcf"
    only_e_mail.write_text(
        "BEGIN:VCARD\nVERSION:3.0\nFN:No Phone\nEMAIL:a@example.org\nEND:VCARD\n"
    )
    assert parse_file(only_e_mail, "GB") == (
        [],
        [(1, "the card (No Phone) has no phone number (no TEL); skipped")],
    )


def test_google_multi_values_each_named_after_the_contact_and_label() -> None:
    preview = preview_text(
        "First Name,Last Name,Phone 1 - Label,Phone 1 - Value,Phone 2 - Label,Phone 2 - Value\n"
        "Sue,Smith,* Mobile,07700 900123 ::: 07700 900456 :::  ,Granny flat,0113 496 0000\n"
        "Bob,,,01707 354000,,\n",
        "GB",
    )
    assert preview.problems == [] and preview.notes == []
    assert entries(preview) == [
        (2, "+447700900123", "Sue Smith (mobile)"),
        (2, "+447700900456", "Sue Smith (mobile)"),
        (2, "+441134960000", "Sue Smith (Granny flat)"),  # a label of one's own, as typed
        (3, "+441707354000", "Bob"),  # no label: the name alone
    ]


def test_a_bad_number_is_a_bad_line_and_the_contact_s_other_numbers_are_kept() -> None:
    preview = preview_text(
        "Name,Notes,Mobile Phone,Home Phone\n"
        '"Sue Smith","Daughter, Leeds\nRings on Sundays\n",07700 900123,0113 496\n'
        "Milkman,,,1234567\n",
        "GB",
    )
    assert entries(preview) == [(2, "+447700900123", "Sue Smith (mobile)")]
    assert [line for line, _ in preview.problems] == [2, 5]  # where each record starts
    assert "0113 496" in preview.problems[0][1] and "1234567" in preview.problems[1][1]


def test_a_long_name_is_cut_keeping_its_label_and_the_store_takes_it(tmp_path: Path) -> None:
    long = "Hertfordshire Community NHS Trust District Nursing Team " * 3
    preview = preview_text(f"Name,Mobile\n{long},07700 900123\n", "GB")
    [item] = preview.items
    assert len(item.name) == MAX_NAME and item.name.endswith("\u2026 (mobile)")
    assert preview.notes == [(2, f"the name is cut to 60 characters: \u201c{item.name}\u201d")]
    assert Store(tmp_path / "state").add_many("allow", preview.items) == (1, 0)


def test_control_and_format_characters_are_dropped_from_names_and_notes(tmp_path: Path) -> None:
    preview = preview_text(
        "number,name,note\n"
        '07700 900123,"Sue\x1b[2J\u202e Smith\u200b","line one\nline\ttwo\u00a0 "\n',
        "GB",
    )
    [item] = preview.items
    assert (item.name, item.note) == ("Sue[2J Smith", "line one line two")
    assert preview.notes == []
    assert Store(tmp_path / "state").add_many("allow", preview.items) == (1, 0)


def test_a_long_note_is_cut() -> None:
    preview = preview_text(f"number,name,note\n07700 900123,Sue,{'n' * 300}\n", "GB")
    assert len(preview.items[0].note) == MAX_NOTE
    assert preview.notes == [(2, "the note is cut to 200 characters")]


@pytest.mark.parametrize(
    ("typed", "left_off"),
    [
        ("01707 354000 ext. 12", "12"),
        ("01707 354000 Ext 12", "12"),
        ("01707 354000 x12", "12"),
        ("01707354000,,12", ",,12"),
        ("+44 1707 354000;ext=12", ";ext=12"),
        ("01707 354000p12", "p12"),
    ],
)
def test_an_extension_is_left_off_with_a_note(typed: str, left_off: str) -> None:
    preview = preview_text(f'Name,Phone\nSurgery,"{typed}"\n', "GB")
    assert entries(preview) == [(2, "+441707354000", "Surgery")]
    assert preview.notes == [
        (
            2,
            f"{typed!r}: the extension ({left_off}) is left off, as caller ID shows the number "
            "without it",
        )
    ]


def test_a_number_on_two_contacts_is_imported_once_from_the_first() -> None:
    preview = preview_text(
        "Name,Mobile,Home Phone\nSue,07700 900123,0113 496 0000\nBob,,+44 113 496 0000\n", "GB"
    )
    assert entries(preview) == [
        (2, "+447700900123", "Sue (mobile)"),
        (2, "+441134960000", "Sue (home)"),
    ]
    assert preview.notes == [
        (
            3,
            "0113 496 0000 (Leeds) is on line 2 too, as \u201cSue (home)\u201d; imported once, "
            "from there",
        )
    ]


@pytest.mark.parametrize(
    ("text", "wanted"),
    [
        ("Sue Smith,07700 900123\nBob,0113 496 0000,neighbour\n", "name first"),
        ("07700 900123,Sue Smith\n0113 496 0000,Bob,neighbour\n", "number first"),
        ("name,number\nSue Smith,07700 900123\nBob,0113 496 0000,neighbour\n", "header"),
        ("phone;name\n07700 900123;Sue Smith\n0113 496 0000;Bob;neighbour\n", "header"),
    ],
)
def test_plain_lists_name_first_or_number_first(text: str, wanted: str) -> None:
    preview = preview_text(text, "GB")
    assert preview.problems == []
    assert [(i.target.number, i.name) for i in preview.items] == [
        ("+447700900123", "Sue Smith"),
        ("+441134960000", "Bob"),
    ]
    assert preview.items[1].note == ("neighbour" if wanted != "header" else "")


def test_a_header_without_a_phone_column_is_read_as_before() -> None:
    """number,name[,note]: a many-column file that names no phone column is bad lines."""
    preview = preview_text("Nome,Cognome,Cellulare,Email\nSue,Smith,07700 900123,s@x.org\n", "GB")
    assert preview.items == []
    assert preview.problems[-1] == (2, "4 columns; expected number,name[,note]")


@pytest.mark.parametrize(
    ("text", "cleaned", "cut"),
    [
        ("Sue Smith", "Sue Smith", False),
        ("  Sue \n\t Smith ", "Sue Smith", False),
        ("Sue\u00a0Smith\u2028", "Sue Smith", False),
        ("\u202eSue\x00\x7f\x9b", "Sue", False),
        ("x" * 61, "x" * 59 + "\u2026", True),
    ],
)
def test_clean(text: str, cleaned: str, cut: bool) -> None:
    assert clean(text, 60) == (cleaned, cut)


@settings(max_examples=200, deadline=None)
@given(
    st.text(max_size=120),
    st.text(alphabet=st.characters(blacklist_characters=',"\r\n'), max_size=30),
)
def test_any_contact_name_imports(name: str, label: str) -> None:
    quoted = '"' + name.replace('"', '""') + '"'
    for text in (
        f"First Name,Phone 1 - Label,Phone 1 - Value\n{quoted},{label},07700 900123\n",
        f"BEGIN:VCARD\nVERSION:3.0\nFN:{name.replace(chr(10), ' ').replace(chr(13), ' ')}\n"
        "TEL:07700 900123\nEND:VCARD\n",
    ):
        preview = preview_text(text, "GB")
        assert preview.problems == []
        [item] = preview.items
        check_text("name", item.name, MAX_NAME)


@pytest.mark.parametrize(
    ("text", "wanted"),
    [
        ("No.,Name,Phone\n1,Sue,07700 900123\n", [(2, "+447700900123", "Sue")]),
        ("No.,Name\n07700 900123,Sue\n", [(2, "+447700900123", "Sue")]),
        (
            "Name,House Number,Street,Home Number\nSue,12,High St,0113 496 0000\n",
            [(2, "+441134960000", "Sue (home)")],
        ),
        (
            "BEGIN:VCARD\nN:Smith;Sue;;;\nFN:\nTEL:07700 900123\nEND:VCARD\n",
            [(4, "+447700900123", "Sue Smith")],
        ),
    ],
    ids=["a row's number beside a phone", "No. alone", "house number", "empty FN"],
)
def test_columns_that_are_not_phones(text: str, wanted: list[tuple[int, str, str]]) -> None:
    preview = preview_text(text, "GB")
    assert (entries(preview), preview.problems) == (wanted, [])


def test_words_after_a_number_are_not_an_extension() -> None:
    preview = preview_text("Name,Phone\nSue,01707 354000 please ring after 6\n", "GB")
    assert preview.items == [] and preview.notes == []
    assert "has letters in it" in preview.problems[0][1]


CONTACTISH = st.lists(
    st.sampled_from(
        [
            "First Name",
            "Name",
            "Phone 1 - Label",
            "Phone 1 - Value",
            "Phone 2 - Type",
            "Mobile Phone",
            "Business Fax",
            "No.",
            "E-mail 1 - Value",
            "07700 900123",
            " ::: ",
            ":::",
            "ext. 9",
            ",,",
            "* Mobile",
            "Sue",
            '"',
            ",",
            ";",
            "\t",
            "\n",
            "\r",
            "#",
            "\u202e",
            "x" * 70,
        ]
    ),
    max_size=30,
).map("".join)


@settings(max_examples=300, deadline=None)
@given(CONTACTISH)
def test_any_contacts_csv_is_read_into_a_preview(text: str) -> None:
    if not text.strip():
        return
    preview = preview_text(text, "GB")
    for item in preview.items:
        check_text("name", item.name, MAX_NAME)
        check_text("note", item.note, MAX_NOTE)
    for line, message in preview.problems + preview.notes:
        assert line >= 1 and message.strip()
