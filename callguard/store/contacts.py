"""Reading number lists that families and volunteers already have: CSV and vCard.

Theory of operation
-------------------
Both readers return the good lines as :class:`~callguard.core.lists.ImportItem` and every bad line
as ``(line number, message)``, so the CLI can report all problems at once and write nothing
unless ``--skip-invalid`` is given.

* CSV: ``number,name[,note]``, header optional (a first row whose first cell is a word such as
  ``number``, ``phone`` or ``tel`` is skipped), comma, semicolon or tab separated (Excel in a UK
  locale writes commas, elsewhere semicolons, and tabs as "Unicode Text"), UTF-8 with or
  without a byte-order mark, UTF-16 with one, or Windows-1252 as Excel saves it. A number
  ending in ``*`` is a prefix rule. Lines end in LF, CRLF or CR alike.
* vCard 3.0 / 4.0 (RFC 2426 / RFC 6350), as phones and address books export them: folded lines
  are unfolded, every ``TEL`` of a card is one entry named by ``FN`` (or ``N``), ``tel:`` URIs
  are accepted, and a card without ``TEL`` is reported. Values are unescaped as vCard 3.0 and
  4.0 write them (``\\,`` ``\\;`` ``\\\\`` and ``\\n``/``\\N``: ``FN:Smith\\, John`` is
  "Smith, John"); a name is one line, so an escaped newline in it becomes a space. ``N`` is
  split at its unescaped ``;`` (family name; given names; ...) and each part at its unescaped
  ``,``. vCard 2.1 quoted-printable names are decoded. Only ``FN``, ``N`` and ``TEL`` matter
  here, which is why this is a few dozen lines rather than a dependency.

Whatever the file holds, the outcome is one of those two or a :class:`UsageError` naming the
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
from pathlib import Path
from typing import Final

from callguard.core.lists import ImportItem, target_for
from callguard.core.numbers import NumberError
from callguard.errors import UsageError
from callguard.store.files import UnreadableFile, read_regular_file

Problem = tuple[int, str]

MAX_IMPORT_BYTES: Final = 20 * 1024 * 1024
"""Far more than any address book (100,000 numbers as CSV are about 4 MB)."""

_HEADER_WORDS = {"number", "numbers", "phone", "telephone", "tel", "mobile", "name", "no", "no."}
_NEWLINE = re.compile(r"\r\n|\r|\n")


def read_text(path: Path) -> str:
    """A file's text; :class:`UsageError` (exit 2) if it is missing, unreadable, empty or
    not text at all."""
    try:
        data = read_regular_file(path, max_bytes=MAX_IMPORT_BYTES, what="the file to import")
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file; check the name and the folder") from None
    except UnreadableFile as exc:
        raise UsageError(str(exc)) from None
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        text = data.decode("utf-16", errors="replace")  # Excel's "Unicode Text"
    else:
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            text = data.decode("cp1252", errors="replace")
    if not text.strip():
        raise UsageError(f"{path} is empty; export the numbers again, as CSV or vCard")
    if "\0" in text:
        line = len(_lines(text[: text.index("\0")]))
        raise UsageError(
            f"{path}:{line}: the file has NUL characters, so it is not a text file (a "
            "spreadsheet, or text in UTF-16 without a byte-order mark?). Save or export it as "
            "CSV UTF-8, or as vCard, and import that"
        )
    return text


def _lines(text: str) -> list[str]:
    """Physical lines, ended by LF, CRLF or CR, as an editor numbers them."""
    return _NEWLINE.split(text)


def looks_like_vcard(text: str) -> bool:
    return text.lstrip().upper().startswith("BEGIN:VCARD")


def parse_csv(
    text: str, region: str, prefix: bool = False
) -> tuple[list[ImportItem], list[Problem]]:
    first = _lines(text)[0]
    delimiter = max(",;\t", key=first.count)  # the first of the most frequent: ',' on a tie
    items: list[ImportItem] = []
    problems: list[Problem] = []
    # newline=None: CR and CRLF become LF, so a lone CR is a line end, not an error
    reader = csv.reader(io.StringIO(text, newline=None), delimiter=delimiter)
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:  # the reader starts afresh on the next line
            problems.append((reader.line_num, _csv_problem(exc)))
            continue
        line = reader.line_num
        cells = [c.strip() for c in row]
        if not any(cells):
            continue
        if line == 1 and cells[0].lower().strip("#") in _HEADER_WORDS:
            continue
        if cells[0].startswith("#"):
            continue  # a comment line
        if len(cells) > 3:
            problems.append((line, f"{len(cells)} columns; expected number,name[,note]"))
            continue
        number, name, note = [*cells, "", ""][:3]
        try:
            items.append(ImportItem(line, target_for(number, region, prefix), name, note))
        except NumberError as exc:
            problems.append((line, str(exc)))
    return items, problems


def _csv_problem(exc: csv.Error) -> str:
    if "field larger than field limit" in str(exc):
        return (
            f"a cell longer than {csv.field_size_limit():,} characters (a quote mark left open?); "
            "expected number,name[,note]"
        )
    return f"not readable as CSV ({exc}); expected number,name[,note]"


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


def parse_vcard(text: str, region: str) -> tuple[list[ImportItem], list[Problem]]:
    items: list[ImportItem] = []
    problems: list[Problem] = []
    card_start = 0
    name = ""
    tels: list[tuple[int, str]] = []
    in_card = False
    for line_no, line in _unfold(text):
        if not line.strip():
            continue
        try:
            prop, _, value = _value(line)
        except _BadLine as exc:
            problems.append((line_no, str(exc)))
            continue
        if prop == "BEGIN" and value.upper() == "VCARD":
            in_card, card_start, name, tels = True, line_no, "", []
        elif prop == "END" and value.upper() == "VCARD":
            if not in_card:
                problems.append((line_no, "END:VCARD without BEGIN:VCARD"))
                continue
            in_card = False
            if not tels:
                who = f" ({name})" if name else ""
                problems.append((card_start, f"the card{who} has no TEL (telephone number)"))
            for tel_line, tel in tels:
                try:
                    items.append(ImportItem(tel_line, target_for(tel, region), name))
                except NumberError as exc:
                    problems.append((tel_line, str(exc)))
        elif not in_card:
            problems.append((line_no, "text outside BEGIN:VCARD ... END:VCARD"))
        elif prop == "FN":
            name = _one_line(_unescape(value))
        elif prop == "N" and not name:
            family, given = [*_split(value, ";"), "", ""][:2]
            words = (_unescape(w) for part in (given, family) for w in _split(part, ","))
            name = _one_line(" ".join(words))
        elif prop == "TEL":
            tel = value[4:] if value.lower().startswith("tel:") else value
            tels.append((line_no, tel))
    if in_card:
        problems.append((card_start, "the card starting here has no END:VCARD (file cut short?)"))
    return items, problems


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


def parse_file(
    path: Path, region: str, prefix: bool = False
) -> tuple[list[ImportItem], list[Problem]]:
    text = read_text(path)
    if looks_like_vcard(text):
        return parse_vcard(text, region)
    return parse_csv(text, region, prefix)
