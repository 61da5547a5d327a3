"""Reading number lists that families and volunteers already have: CSV and vCard.

Theory of operation
-------------------
A file is read into a :class:`Preview`: the good lines as :class:`~callguard.core.lists.ImportItem`
(what would be written), every bad line as ``(line number, message)`` (the CLI writes nothing
unless ``--skip-invalid``), and notes on lines passed over harmlessly (a contact with no phone
number, a repeated number, a name cut short), so the family page can show all of it before
anything is written, and the CLI (:func:`parse_file`) report the bad lines at once.

* CSV, comma, semicolon or tab separated (Excel in a UK locale writes commas, elsewhere
  semicolons, and tabs as "Unicode Text"), UTF-8 with or without a byte-order mark, UTF-16 with
  one, or Windows-1252 as Excel saves it; lines end in LF, CRLF or CR alike, and a quoted cell
  may hold commas and line breaks (a line number is where its record starts).

  - With a header naming its columns, as contacts exports have: Google Contacts ("First
    Name", "Middle Name", "Last Name", "Phone 1 - Label", "Phone 1 - Value", ...; older exports
    "Name", "Given Name", "Family Name", "Phone 1 - Type"), Outlook ("Mobile Phone", "Home
    Phone", "Business Phone", ...) and plain ones ("name,phone", "number,name,note") in any
    order and with any other columns. Each number is one entry named after the contact and, if
    its column or label says, the kind of phone: "Sue Smith (mobile)". Google puts several
    numbers of one kind in one cell joined by " ::: "; each is an entry. A contact with no
    number is a note, not a bad line.
  - Without one: ``number,name[,note]``, or ``name,number[,note]`` if most lines start with a
    name. A first row whose first cell is a word such as ``number``, ``phone`` or ``tel`` is a
    header. A number ending in ``*`` is a prefix rule.

* vCard 3.0 / 4.0 (RFC 2426 / RFC 6350), as phones and address books export them: folded lines
  are unfolded, every ``TEL`` of a card is one entry named by ``FN`` (or ``N``, or ``ORG``),
  ``tel:`` URIs are accepted, and a card without ``TEL`` (an e-mail-only contact) is a note.
  Values are unescaped as vCard 3.0 and 4.0 write them (``\\,`` ``\\;`` ``\\\\`` and
  ``\\n``/``\\N``: ``FN:Smith\\, John`` is "Smith, John"); a name is one line, so an escaped
  newline in it becomes a space. ``N`` is split at its unescaped ``;`` (family name; given
  names; ...) and each part at its unescaped ``,``. vCard 2.1 quoted-printable names are
  decoded. Only ``FN``, ``N``, ``ORG`` and ``TEL`` matter here, which is why this is a few
  dozen lines rather than a dependency.

A name or note from a file is made fit for the lists (:func:`~callguard.core.lists.check_text`):
control and format characters dropped, runs of spaces and line breaks one space, and cut to
``MAX_NAME`` (``MAX_NOTE``) characters with a note, so a long contact name never stops an
import. An extension (``ext. 12``, ``,,12``) is left off a number, with a note: the caller ID
of a call from there shows the number without it.

Whatever the file holds, the outcome is a :class:`Preview` or a :class:`UsageError` naming the
file: only an ordinary file of at most :data:`MAX_IMPORT_BYTES` is read (``/dev/zero`` or a
FIFO is refused by its type, without waiting), a file with NUL characters is not text, and a
line the CSV reader cannot take (a cell longer than its limit) or a vCard ``CHARSET`` Python
does not know is a bad line, never a Python error.
"""

from __future__ import annotations

import codecs
import csv
import io
import quopri
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from callguard.core.lists import MAX_NAME, MAX_NOTE, ImportItem, target_for
from callguard.core.numbers import NumberError
from callguard.errors import UsageError
from callguard.store.files import UnreadableFile, read_regular_file
from callguard.texts import unsafe

Problem = tuple[int, str]

MAX_IMPORT_BYTES: Final = 20 * 1024 * 1024
"""Far more than any address book (100,000 numbers as CSV are about 4 MB)."""

_NEWLINE = re.compile(r"\r\n|\r|\n")


@dataclass
class Preview:
    """What importing a file would do, before anything is written.

    ``items`` are the entries in file order, each number once; ``problems`` the lines that
    cannot be read (the CLI imports nothing while there are any, unless ``--skip-invalid``);
    ``notes`` the lines passed over or changed without harm (a contact with no phone number, a
    number already on an earlier line, a name cut short, an extension left off). Messages may
    hold any text from the file: show them escaped. ``how`` says in a sentence how the file
    was read (for the page, so a wrong guess is seen).
    """

    how: str
    items: list[ImportItem] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    notes: list[Problem] = field(default_factory=list)

    def for_cli(self) -> tuple[list[ImportItem], list[Problem]]:
        """The items and the bad lines. When nothing can be imported, the notes count as bad
        lines too, so a file of e-mail-only contacts is refused saying why for each."""
        if self.items:
            return self.items, self.problems
        return [], sorted(self.problems + self.notes, key=lambda p: p[0])

    _contacts: list[int] = field(default_factory=list, init=False, repr=False, compare=False)
    """The line each item's contact starts on (a vCard's numbers are on lines of their own)."""

    def _add(
        self,
        line: int,
        number: str,
        name: str,
        note: str,
        region: str,
        prefix: bool,
        contact: int | None = None,
    ) -> None:
        """One number of a line: an item, or a problem saying why not."""
        try:
            target = target_for(number, region, prefix)
        except NumberError as exc:
            self.problems.append((line, str(exc)))
            return
        self.items.append(ImportItem(line, target, name, note))
        self._contacts.append(line if contact is None else contact)

    def _finish(self) -> Preview:
        """Each number once (the first line that has it; a contact's own repeats silently),
        and the lines in order."""
        first: dict[str, tuple[ImportItem, int]] = {}
        items = []
        for item, contact in zip(self.items, self._contacts, strict=True):
            earlier, earlier_contact = first.setdefault(item.target.number, (item, contact))
            if earlier is item:
                items.append(item)
            elif earlier_contact != contact:
                named = f", as \u201c{earlier.name}\u201d" if earlier.name else ""
                self.notes.append(
                    (
                        item.line,
                        f"{item.target.describe()} is on line {earlier.line} too{named}; "
                        "imported once, from there",
                    )
                )
        self.items, self._contacts = items, []
        self.problems.sort(key=lambda p: p[0])
        self.notes = sorted(dict.fromkeys(self.notes), key=lambda p: p[0])
        return self


# -- reading the file --------------------------------------------------------------------------


def read_text(path: Path) -> str:
    """A file's text; :class:`UsageError` (exit 2) if it is missing, unreadable, empty or
    not text at all."""
    try:
        data = read_regular_file(path, max_bytes=MAX_IMPORT_BYTES, what="the file to import")
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file; check the name and the folder") from None
    except UnreadableFile as exc:
        raise UsageError(str(exc)) from None
    return decode(data, str(path))


def decode(data: bytes, source: str) -> str:
    """The text of a file's bytes (``source`` names it in messages); :class:`UsageError` if
    it is empty, too big or not text at all."""
    if len(data) > MAX_IMPORT_BYTES:
        raise UsageError(
            f"{source} is {len(data):,} bytes, more than the {MAX_IMPORT_BYTES:,} allowed; check "
            "that this is the right file"
        )
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        text = data.decode("utf-16", errors="replace")  # Excel's "Unicode Text"
    else:
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            text = data.removeprefix(codecs.BOM_UTF8).decode("cp1252", errors="replace")
    if not text.strip():
        raise UsageError(f"{source} is empty; export the numbers again, as CSV or vCard")
    if "\0" in text:
        line = len(_lines(text[: text.index("\0")]))
        raise UsageError(
            f"{source}:{line}: the file has NUL characters, so it is not a text file (a "
            "spreadsheet, or text in UTF-16 without a byte-order mark?). Save or export it as "
            "CSV UTF-8, or as vCard, and import that"
        )
    return text


def _lines(text: str) -> list[str]:
    """Physical lines, ended by LF, CRLF or CR, as an editor numbers them."""
    return _NEWLINE.split(text)


def looks_like_vcard(text: str) -> bool:
    return text.lstrip().upper().startswith("BEGIN:VCARD")


def preview_text(text: str, region: str, prefix: bool = False) -> Preview:
    if looks_like_vcard(text):
        return read_vcard(text, region)
    return read_csv(text, region, prefix)


def preview_data(data: bytes, region: str, prefix: bool = False, *, source: str) -> Preview:
    """A file sent to the page: ``source`` (its name) is what messages call it."""
    return preview_text(decode(data, source), region, prefix)


def preview_file(path: Path, region: str, prefix: bool = False) -> Preview:
    return preview_text(read_text(path), region, prefix)


def parse_file(
    path: Path, region: str, prefix: bool = False
) -> tuple[list[ImportItem], list[Problem]]:
    """For the CLI: the items and the bad lines. When nothing can be imported, the notes count
    as bad lines too, so a file of e-mail-only contacts is refused saying why for each."""
    return preview_file(path, region, prefix).for_cli()


# -- text from outside -------------------------------------------------------------------------


def clean(text: str, limit: int) -> tuple[str, bool]:
    """``text`` fit for a list: one line of printable characters (others dropped, spaces and
    line breaks made single spaces) of at most ``limit``; and whether it had to be cut."""
    if text.isprintable() and len(text) <= limit and "  " not in text and text == text.strip():
        return text, False  # the common case
    kept = "".join(" " if c.isspace() else c for c in text if c.isspace() or not _hidden(c))
    one_line = " ".join(kept.split())
    if len(one_line) <= limit:
        return one_line, False
    return one_line[: limit - 1].rstrip() + "\u2026", True


def _hidden(char: str) -> bool:
    return not char.isprintable() or unsafe(char)


def _named(preview: Preview, line: int, name: str, label: str = "") -> str:
    """The name of one number: ``Sue Smith (mobile)``, within MAX_NAME (with a note if cut)."""
    label = clean(label, 20)[0]
    suffix = f" ({label})" if label and name.strip() else ""
    cleaned, cut = clean(name, MAX_NAME - len(suffix))
    if cut:
        preview.notes.append(
            (line, f"the name is cut to {MAX_NAME} characters: \u201c{cleaned}{suffix}\u201d")
        )
    return cleaned + suffix if cleaned else ""


def _noted(preview: Preview, line: int, note: str) -> str:
    cleaned, cut = clean(note, MAX_NOTE)
    if cut:
        preview.notes.append((line, f"the note is cut to {MAX_NOTE} characters"))
    return cleaned


_EXTENSION: Final = re.compile(
    r"^(?P<number>.*?\d)[\s.]*(?:(?:ext|extn|extension|x)[\s.:=#]*(?P<ext>\d+)|"
    r"(?P<dial>;ext=\d+|[,;pw][\d\s,;pw#*]*))\s*$",
    re.IGNORECASE,
)


_LETTERS: Final = re.compile(r"[a-z,;]", re.IGNORECASE)


def _without_extension(preview: Preview, line: int, number: str) -> str:
    """``01707 354000 ext. 12`` as ``01707 354000``, noted; anything else as it is."""
    match = _EXTENSION.match(number) if _LETTERS.search(number) else None
    if match is None:
        return number
    left_off = match["ext"] or match["dial"]
    preview.notes.append(
        (
            line,
            f"{number.strip()!r}: the extension ({left_off}) is left off, as caller ID shows "
            "the number without it",
        )
    )
    return match["number"]


# -- CSV ---------------------------------------------------------------------------------------


_HEADER_WORDS = {"number", "numbers", "phone", "telephone", "tel", "mobile", "name", "no", "no."}


def _records(text: str, delimiter: str, problems: list[Problem]) -> Iterator[tuple[int, list[str]]]:
    """(the line a record starts on, its cells), each cell stripped; blank rows left out."""
    # newline=None: CR and CRLF become LF, so a lone CR is a line end, not an error
    reader = csv.reader(io.StringIO(text, newline=None), delimiter=delimiter)
    start = 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:  # the reader starts afresh on the next line
            problems.append((start, _csv_problem(exc)))
            start = reader.line_num + 1
            continue
        line, start = start, reader.line_num + 1
        cells = [c.strip() for c in row]
        if any(cells):
            yield line, cells


def _csv_problem(exc: csv.Error) -> str:
    if "field larger than field limit" in str(exc):
        return (
            f"a cell longer than {csv.field_size_limit():,} characters (a quote mark left open?); "
            "expected number,name[,note]"
        )
    return f"not readable as CSV ({exc}); expected number,name[,note]"


def read_csv(text: str, region: str, prefix: bool = False) -> Preview:
    first = next((line for line in _lines(text) if line.strip()), "")
    delimiter = max(",;\t", key=first.count)  # the first of the most frequent: ',' on a tie
    problems: list[Problem] = []
    records = list(_records(text, delimiter, problems))
    layout = _header(records[0][1]) if records else None
    if layout is None:
        preview = _read_plain(records, region, prefix)
    else:
        preview = Preview("")
        used: set[int] = set()
        for line, cells in records[1:]:
            if layout.export or not cells[0].startswith("#"):
                used |= _read_contact(preview, layout, line, cells, region, prefix)
        preview.how = layout.how(used)
    preview.problems.extend(problems)
    return preview._finish()


def _read_plain(records: list[tuple[int, list[str]]], region: str, prefix: bool) -> Preview:
    """``number,name[,note]`` or ``name,number[,note]``, without a header naming them."""
    if records and records[0][1][0].lower().strip("#") in _HEADER_WORDS:
        records = records[1:]
    records = [(line, cells) for line, cells in records if not cells[0].startswith("#")]
    name_first = sum(_name_first(cells) for _, cells in records) * 2 > len(records)
    order = "name,number[,note]" if name_first else "number,name[,note]"
    preview = Preview(f"Read as CSV without a header: {order.replace(',', ', ')}.")
    for line, cells in records:
        if len(cells) > 3:
            preview.problems.append((line, f"{len(cells)} columns; expected {order}"))
            continue
        first, second, note = [*cells, "", ""][:3]
        number, name = (second, first) if name_first else (first, second)
        number = _without_extension(preview, line, number)
        name = _named(preview, line, name)
        preview._add(line, number, name, _noted(preview, line, note), region, prefix)
    return preview


_NUMBERISH: Final = re.compile(r"[\d\s+()./*-]*\d[\d\s+()./*-]*")


def _name_first(cells: Sequence[str]) -> bool:
    return (
        len(cells) >= 2
        and not _NUMBERISH.fullmatch(cells[0])
        and bool(_NUMBERISH.fullmatch(cells[1]))
    )


# The columns of a header, by what they hold. Headers are compared lower-cased, with runs of
# spaces as one and any "#" around them left off.
_FULL_NAME: Final = ("name", "full name", "display name", "contact name", "contact", "fn")
_NAME_PARTS: Final = (
    ("name prefix", "prefix"),
    ("first name", "given name", "first", "forename", "forenames", "given"),
    ("middle name", "additional name", "middle"),
    ("last name", "family name", "surname", "last"),
    ("name suffix", "suffix"),
)
_OTHER_NAMES: Final = (
    "nickname",
    "organization name",
    "organization 1 - name",
    "organisation",
    "organization",
    "company",
    "file as",
)
_NOTE: Final = ("note", "notes", "comment", "comments")
_E_MAIL: Final = re.compile(r"e-?mail( \d+)?( - value| address)?")
_PHONE: Final = {  # plain headers, and the kind of phone they say
    "phone": "",
    "phones": "",
    "telephone": "",
    "tel": "",
    "tel.": "",
    "phone number": "",
    "telephone number": "",
    "phone no.": "",
    "mobile": "mobile",
    "mobile number": "mobile",
    "mobile phone": "mobile",
    "cell": "mobile",
    "cell phone": "mobile",
    "landline": "landline",
}
_PLAIN_NUMBER: Final = ("number", "numbers", "no", "no.")
"""A phone column only if no other is (beside "Phone", "No." is a row's number)."""
_NUMBERED_PHONE: Final = re.compile(r"phone (\d+) - value")  # Google's
_KIND_PHONE: Final = re.compile(
    r"(?P<kind>[a-z][a-z '/&-]*?) (?P<what>phone|telephone|fax|number|no\.?)(?: \d+)?"
)
"""Outlook's "Home Phone 2", "Business Fax", "Car Phone"; "Home Number" but not "House
Number" or "Account No.": a number column is a phone only of a kind in :data:`_KINDS`."""
_KINDS: Final = {  # the words for the kind of phone, as a family would say them
    "mobile": "mobile",
    "cell": "mobile",
    "cellular": "mobile",
    "iphone": "mobile",
    "home": "home",
    "work": "work",
    "business": "work",
    "main": "main",
    "company main": "main",
    "other": "other",
    "office": "work",
    "landline": "landline",
    "primary": "",
    "pref": "",
    "voice": "",
    "google voice": "Google Voice",
}


def _kind(label: str) -> str:
    """A phone's label as shown in a name: ``* Mobile`` -> ``mobile``, ``Surgery`` as it is."""
    label = label.strip().lstrip("*").strip()
    return _KINDS.get(label.lower(), label)


@dataclass(frozen=True)
class _Phone:
    column: int
    label_column: int | None = None
    kind: str = ""


@dataclass(frozen=True)
class _Layout:
    header: Sequence[str]
    phones: Sequence[_Phone]
    full_name: int | None
    name_parts: Sequence[int]
    other_names: Sequence[int]
    note: int | None
    e_mail: int | None
    google: bool
    export: bool
    """A contacts export (Google's numbered phones, or names in parts), not a list someone
    typed: no "#" comment lines, and its notes are the contact's, not the list's."""

    def how(self, used: set[int]) -> str:
        """How the file was read, naming the columns that held the names and numbers used."""
        what = "a Google Contacts CSV" if self.google else "CSV with a header"
        names = [self.full_name, *self.name_parts, *self.other_names]
        named = ", ".join(f"\u201c{self.header[i]}\u201d" for i in names if i in used)
        numbers = ", ".join(
            f"\u201c{self.header[p.column]}\u201d" for p in self.phones if p.column in used
        )
        named, numbers = named or "no column", numbers or "no column"
        return f"Read as {what}: names from {named}; numbers from {numbers}."


def _kind_of_column(key: str) -> str | None:
    """The kind of phone a column such as "Business Fax" holds ("work fax"); None if none."""
    match = _KIND_PHONE.fullmatch(key)
    if match is None or "yomi" in key:
        return None
    if match["what"] not in ("phone", "telephone", "fax") and match["kind"] not in _KINDS:
        return None
    kind = _KINDS.get(match["kind"], match["kind"])
    return f"{kind} fax".strip() if match["what"] == "fax" else kind


def _header(cells: Sequence[str]) -> _Layout | None:
    """The layout a first row names, or None if it is not a header naming a phone column."""
    if any(sum(c.isdigit() for c in cell) >= 5 for cell in cells):
        return None  # a number: data, not a header
    keys = [" ".join(cell.strip("#").split()).lower() for cell in cells]
    where = {key: i for i, key in reversed(list(enumerate(keys)))}  # the first of each
    phones: list[_Phone] = []
    for i, key in enumerate(keys):
        if match := _NUMBERED_PHONE.fullmatch(key):
            label = next(
                (
                    where[f"phone {match[1]} - {w}"]
                    for w in ("label", "type")
                    if f"phone {match[1]} - {w}" in where
                ),
                None,
            )
            phones.append(_Phone(i, label))
        elif key in _PHONE:
            phones.append(_Phone(i, kind=_PHONE[key]))
        elif (kind := _kind_of_column(key)) is not None:
            phones.append(_Phone(i, kind=kind))
    if not phones:
        phones = [_Phone(i) for i, key in enumerate(keys) if key in _PLAIN_NUMBER]
    if not phones:
        return None
    parts = [next((where[k] for k in names if k in where), None) for names in _NAME_PARTS]
    google = any(_NUMBERED_PHONE.fullmatch(keys[p.column]) for p in phones)
    export = google or any(i is not None for i in parts)
    return _Layout(
        header=cells,
        phones=phones,
        full_name=next((where[k] for k in _FULL_NAME if k in where), None),
        name_parts=[i for i in parts if i is not None],
        other_names=[where[k] for k in _OTHER_NAMES if k in where],
        note=None if export else next((where[k] for k in _NOTE if k in where), None),
        e_mail=next((i for i, k in enumerate(keys) if _E_MAIL.fullmatch(k)), None),
        export=export,
        google=google,
    )


def _read_contact(
    preview: Preview, layout: _Layout, line: int, cells: list[str], region: str, prefix: bool
) -> set[int]:
    """One contact's numbers into ``preview``; the columns its name and numbers came from."""

    def cell(i: int | None) -> str:
        return cells[i] if i is not None and i < len(cells) else ""

    names = next(
        (
            columns
            for columns in (
                [layout.full_name],
                layout.name_parts,
                *([i] for i in layout.other_names),
            )
            if any(cell(i) for i in columns)
        ),
        [],
    )
    used = {i for i in names if i is not None and cell(i)}
    name = " ".join(cell(i) for i in names if cell(i))
    note = _noted(preview, line, cell(layout.note))
    numbers: list[tuple[str, str]] = []
    for phone in layout.phones:
        kind = _kind(cell(phone.label_column)) if phone.label_column is not None else phone.kind
        values = [n.strip() for n in cell(phone.column).split(":::") if n.strip()]
        numbers += [(n, kind) for n in values]
        used |= {phone.column} if values else set()
    if not numbers:
        who = name or cell(layout.e_mail) or "this contact"
        preview.notes.append((line, f"no phone number for {who}; skipped"))
        return set()
    for number, kind in numbers:
        number = _without_extension(preview, line, number)
        preview._add(line, number, _named(preview, line, name, kind), note, region, prefix)
    return used


def _unfold(text: str) -> list[tuple[int, str]]:
    """Logical lines with the number of the physical line they start on."""
    out: list[tuple[int, str]] = []
    for number, raw in enumerate(_lines(text), start=1):
        if raw[:1] in (" ", "\t") and out:
            start, previous = out[-1]
            out[-1] = (start, previous + raw[1:])
        elif raw.endswith("=") and out and out[-1][1].endswith("="):
            start, previous = out[-1]
            out[-1] = (start, previous[:-1] + raw)  # vCard 2.1 quoted-printable soft break
        else:
            out.append((number, raw))
    return out


class _BadLine(ValueError):
    """A line that cannot be read, with the message for the person importing it."""


def _value(line: str) -> tuple[str, dict[str, str], str]:
    head, _, value = line.partition(":")
    name, *params = head.split(";")
    options = {}
    for param in params:
        key, _, val = param.partition("=")
        options[key.upper()] = val.upper() if val else key.upper()
    if options.get("ENCODING") == "QUOTED-PRINTABLE":
        value = _decode(
            quopri.decodestring(value.encode("latin-1", errors="replace")),
            options.get("CHARSET", "UTF-8"),
        )
    # the group prefix of "item1.TEL"
    return name.split(".")[-1].upper(), options, value.strip()


def _decode(data: bytes, charset: str) -> str:
    """Text in the character set a vCard 2.1 line names; :class:`_BadLine` if unknown."""
    try:  # an unknown name, base64 or rot13 (not text encodings), "undefined", a NUL...
        return data.decode(charset, errors="replace")
    except (LookupError, UnicodeError, ValueError):
        raise _BadLine(
            f"CHARSET={charset!r} is not a character set CallGuard knows; export the contacts "
            "again as vCard 3.0 or 4.0 (UTF-8)"
        ) from None


def read_vcard(text: str, region: str) -> Preview:
    preview = Preview("Read as vCard: each card's name (FN) and its telephone numbers (TEL).")
    card_start = 0
    name = other_name = e_mail = ""
    tels: list[tuple[int, str]] = []
    in_card = False
    for line_no, line in _unfold(text):
        if not line.strip():
            continue
        try:
            prop, _, value = _value(line)
        except _BadLine as exc:
            preview.problems.append((line_no, str(exc)))
            continue
        if prop == "BEGIN" and value.upper() == "VCARD":
            in_card, card_start, tels = True, line_no, []
            name = other_name = e_mail = ""
        elif prop == "END" and value.upper() == "VCARD":
            if not in_card:
                preview.problems.append((line_no, "END:VCARD without BEGIN:VCARD"))
                continue
            in_card = False
            name = name or other_name
            if not tels:
                who = f" ({name or e_mail})" if name or e_mail else ""
                preview.notes.append(
                    (card_start, f"the card{who} has no phone number (no TEL); skipped")
                )
            for tel_line, tel in tels:
                tel = _without_extension(preview, tel_line, tel)
                named = _named(preview, tel_line, name)
                preview._add(tel_line, tel, named, "", region, False, contact=card_start)
        elif not in_card:
            preview.problems.append((line_no, "text outside BEGIN:VCARD ... END:VCARD"))
        elif prop == "FN":
            name = _one_line(_unescape(value)) or name  # an empty FN leaves N's name
        elif prop == "N" and not name:
            family, given = [*_split(value, ";"), "", ""][:2]
            words = (_unescape(w) for part in (given, family) for w in _split(part, ","))
            name = _one_line(" ".join(words))
        elif prop == "ORG" and not other_name:  # a surgery or a shop: a card with no person
            other_name = _one_line(_unescape(_split(value, ";")[0]))
        elif prop == "EMAIL" and not e_mail:
            e_mail = _one_line(value)
        elif prop == "TEL":
            tel = value[4:] if value.lower().startswith("tel:") else value
            tels.append((line_no, tel))
    if in_card:
        preview.problems.append(
            (card_start, "the card starting here has no END:VCARD (file cut short?)")
        )
    return preview._finish()


_ESCAPED: Final = re.compile(r"\\([\\,;nN])")
_ESCAPES: Final = {"\\": "\\", ",": ",", ";": ";", "n": "\n", "N": "\n"}


def _unescape(value: str) -> str:
    """A vCard text value as the text it stands for: ``Smith\\, John`` is ``Smith, John``.

    A backslash before anything else is kept as it is (vCard 2.1 did not escape backslashes).
    """
    return _ESCAPED.sub(lambda m: _ESCAPES[m[1]], value)


def _split(value: str, separator: str) -> list[str]:
    """``value`` split at each ``separator`` that is not escaped; the parts still escaped."""
    parts = [""]
    pieces = re.split(r"(\\.|[" + re.escape(separator) + "])", value)
    for piece in pieces:
        if piece == separator:
            parts.append("")
        else:
            parts[-1] += piece
    return parts


def _one_line(text: str) -> str:
    """A name on one line, its runs of spaces and line breaks made one space."""
    return " ".join(text.split())
