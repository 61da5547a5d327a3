"""Reading number lists that families and volunteers already have: CSV and vCard.

Theory of operation
-------------------
Both readers return the good lines as :class:`~callguard.store.ImportItem` and every bad line
as ``(line number, message)``, so the CLI can report all problems at once and write nothing
unless ``--skip-invalid`` is given.

* CSV: ``number,name[,note]``, header optional (a first row whose first cell is a word such as
  ``number``, ``phone`` or ``tel`` is skipped), comma or semicolon separated (Excel in a UK
  locale writes commas, elsewhere semicolons), UTF-8 with or without a byte-order mark, or
  Windows-1252 as Excel saves it. A number ending in ``*`` is a prefix rule.
* vCard 3.0 / 4.0 (RFC 2426 / RFC 6350), as phones and address books export them: folded lines
  are unfolded, every ``TEL`` of a card is one entry named by ``FN`` (or ``N``), ``tel:`` URIs
  are accepted, and a card without ``TEL`` is reported. vCard 2.1 quoted-printable names are
  decoded. Only ``FN``, ``N`` and ``TEL`` matter here, which is why this is a few dozen lines
  rather than a dependency.
"""

from __future__ import annotations

import csv
import io
import quopri
from pathlib import Path

from callguard.errors import UsageError
from callguard.numbers import NumberError
from callguard.store import ImportItem, target_for

Problem = tuple[int, str]

_HEADER_WORDS = {"number", "numbers", "phone", "telephone", "tel", "mobile", "name", "no", "no."}


def read_text(path: Path) -> str:
    """A file's text; :class:`UsageError` (exit 2) if it is missing, unreadable or empty."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file; check the name and the folder") from None
    except IsADirectoryError:
        raise UsageError(f"{path} is a folder; give the CSV or vCard file inside it") from None
    except OSError as exc:
        raise UsageError(f"{path} cannot be read ({exc.strerror}); check its permissions") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("cp1252", errors="replace")
    if not text.strip():
        raise UsageError(f"{path} is empty; export the numbers again, as CSV or vCard")
    return text


def looks_like_vcard(text: str) -> bool:
    return text.lstrip().upper().startswith("BEGIN:VCARD")


def parse_csv(
    text: str, region: str, prefix: bool = False
) -> tuple[list[ImportItem], list[Problem]]:
    first = text.splitlines()[0] if text else ""
    delimiter = ";" if first.count(";") > first.count(",") else ","
    items: list[ImportItem] = []
    problems: list[Problem] = []
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    for row in reader:
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


def _unfold(text: str) -> list[tuple[int, str]]:
    """Logical lines with the number of the physical line they start on."""
    out: list[tuple[int, str]] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        if raw[:1] in (" ", "\t") and out:
            start, previous = out[-1]
            out[-1] = (start, previous + raw[1:])
        elif raw.endswith("=") and out and out[-1][1].endswith("="):
            start, previous = out[-1]
            out[-1] = (start, previous[:-1] + raw)  # vCard 2.1 quoted-printable soft break
        else:
            out.append((number, raw))
    return out


def _value(line: str) -> tuple[str, dict[str, str], str]:
    head, _, value = line.partition(":")
    name, *params = head.split(";")
    options = {}
    for param in params:
        key, _, val = param.partition("=")
        options[key.upper()] = val.upper() if val else key.upper()
    if options.get("ENCODING") == "QUOTED-PRINTABLE":
        value = quopri.decodestring(value.encode("latin-1", errors="replace")).decode(
            options.get("CHARSET", "utf-8"), errors="replace"
        )
    # the group prefix of "item1.TEL"
    return name.split(".")[-1].upper(), options, value.strip()


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
        prop, _, value = _value(line)
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
            name = value
        elif prop == "N" and not name:
            parts = [p for p in value.split(";") if p]
            name = " ".join(reversed(parts[:2]))
        elif prop == "TEL":
            tel = value[4:] if value.lower().startswith("tel:") else value
            tels.append((line_no, tel))
    if in_card:
        problems.append((card_start, "the card starting here has no END:VCARD (file cut short?)"))
    return items, problems


def parse_file(
    path: Path, region: str, prefix: bool = False
) -> tuple[list[ImportItem], list[Problem]]:
    text = read_text(path)
    if looks_like_vcard(text):
        return parse_vcard(text, region)
    return parse_csv(text, region, prefix)
