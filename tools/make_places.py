"""Write callguard/data/uk-places.tsv: UK dialling prefixes and the places phonenumbers gives them.

CallGuard says where a UK landline is ("A call from an unknown number in Welwyn Garden City.")
without phonenumbers' geocoder, whose import loads every country's places in every language at
once (about 100 MB). The UK's part of that data is a few hundred prefixes and about 15 KB, so it
is extracted here, when the package is built, and shipped as a table:

    # phonenumbers 9.0.43
    # ...how it was made...
    4420<TAB>London
    441707<TAB>Welwyn Garden City

A prefix is the start of an E.164 number without its ``+``, country code included; the place of
a number is that of its longest prefix in the table, which is how the geocoder itself looks it up
(``phonenumbers.prefix``). The first line records the version of phonenumbers the table came from,
so a test can tell whether the installed phonenumbers would still produce it.

This script reads the geocoder's data dictionary (``phonenumbers.geodata``), which is not a
supported API: fine at build time, where a change in it fails here, loudly, and never on a unit.

Usage: ``python tools/make_places.py [--check] [OUTPUT]`` (``make places``); ``--check`` exits 1
if OUTPUT differs from what would be written.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

COUNTRY_CODE = "44"
LANGUAGE = "en"
DEFAULT_OUTPUT = Path(__file__).resolve().parent.parent / "callguard" / "data" / "uk-places.tsv"


def places() -> dict[str, str]:
    """{prefix: place} for every prefix of the country code in the geocoder's English data."""
    from phonenumbers.geodata import GEOCODE_DATA

    found: dict[str, str] = {}
    for prefix, names in GEOCODE_DATA.items():
        if not prefix.startswith(COUNTRY_CODE):
            continue
        name = names.get(LANGUAGE, "")
        if not name:  # the geocoder would try a shorter prefix: leaving it out does the same
            continue
        if "\t" in name or "\n" in name or not prefix.isdigit():
            raise SystemExit(f"phonenumbers' geodata has an entry this table cannot hold: {prefix}")
        found[prefix] = name
    if not found:
        raise SystemExit(
            f"phonenumbers' geodata has no places for +{COUNTRY_CODE}: has its layout changed?"
        )
    return found


def table_text() -> str:
    """The whole file, header included, as this phonenumbers would have it."""
    import phonenumbers

    lines = [
        f"# phonenumbers {phonenumbers.__version__}",
        f"# Places of +{COUNTRY_CODE} numbers by dialling prefix (E.164 digits without the +),",
        "# from phonenumbers' geocoder data, in English; a number's place is its longest prefix's.",
        "# Written by tools/make_places.py (make places): do not edit by hand.",
    ]
    lines += [f"{prefix}\t{name}" for prefix, name in sorted(places().items())]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("output", nargs="?", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args(argv)
    text = table_text()
    if args.check:
        try:
            current = args.output.read_text(encoding="utf-8")
        except FileNotFoundError:
            current = ""
        if current != text:
            print(f"{args.output} is out of date: run make places", file=sys.stderr)
            return 1
        return 0
    args.output.write_text(text, encoding="utf-8")
    count = sum(1 for line in text.splitlines() if not line.startswith("#"))
    print(f"{args.output}: {count} prefixes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
