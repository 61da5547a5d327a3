"""Places: the shipped table of UK towns by dialling prefix, against phonenumbers' geocoder.

The table (callguard/data/uk-places.tsv) is extracted from the geocoder's data at build time by
tools/make_places.py, so that a unit never imports the geocoder (about 100 MB). These tests check
that the committed table is what the generator makes from the installed phonenumbers, and that a
lookup in it gives the geocoder's own answer, number by number.
"""

from __future__ import annotations

import fnmatch
import importlib.util
import subprocess
import sys
import tomllib
from pathlib import Path
from types import ModuleType

import phonenumbers
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from phonenumbers import PhoneNumberFormat, PhoneNumberType

from callguard.audio.prompts import intro_text
from callguard.core import numbers
from callguard.core.numbers import (
    PLACES_FILE,
    Category,
    from_caller_id,
    parse_places,
    place_of,
    town_of,
)

ROOT = Path(__file__).resolve().parents[2]
GENERATOR = ROOT / "tools" / "make_places.py"
COMMITTED = ROOT / "callguard" / "data" / PLACES_FILE


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_places", GENERATOR)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _table_version() -> str:
    first = COMMITTED.read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith("# phonenumbers "), first
    return first.removeprefix("# phonenumbers ")


def _same_phonenumbers() -> None:
    made_from = _table_version()
    if made_from != phonenumbers.__version__:
        pytest.skip(
            f"{PLACES_FILE} was made from phonenumbers {made_from} but {phonenumbers.__version__} "
            "is installed: run `make places` and commit the table if it changed"
        )


def _table() -> dict[str, str]:
    return parse_places(COMMITTED.read_text(encoding="utf-8"))


def _geocoder_place(number: phonenumbers.PhoneNumber) -> str | None:
    """What the geocoder says, with its fallback for a UK number it has no town for (the
    country's name) as None: CallGuard says nothing rather than "in United Kingdom"."""
    from phonenumbers import geocoder

    said = geocoder.description_for_number(number, "en")
    return None if said in ("", "United Kingdom") else said


def _landline_under(prefix: str) -> phonenumbers.PhoneNumber | None:
    """A valid UK fixed-line number starting with the table's ``prefix`` (country code first)."""
    head = prefix.removeprefix("44")
    for length in (10, 9):
        for fill in "0123456789":
            number = phonenumbers.parse("+44" + (head + fill * length)[:length])
            kind = phonenumbers.number_type(number)
            if kind in (PhoneNumberType.FIXED_LINE, PhoneNumberType.FIXED_LINE_OR_MOBILE):
                return number
    return None


# --- the committed table and the generator ---


def test_the_committed_table_is_what_the_generator_makes_now(tmp_path: Path) -> None:
    _same_phonenumbers()
    made = tmp_path / PLACES_FILE
    assert _generator().main([str(made)]) == 0
    assert made.read_text(encoding="utf-8") == COMMITTED.read_text(encoding="utf-8")
    assert _generator().main(["--check", str(COMMITTED)]) == 0


def test_the_generators_check_finds_a_stale_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stale = tmp_path / PLACES_FILE
    stale.write_text(
        COMMITTED.read_text(encoding="utf-8").replace("\tLeeds\n", "\tLeeds City\n"), "utf-8"
    )
    assert _generator().main(["--check", str(stale)]) == 1
    assert "out of date: run make places" in capsys.readouterr().err
    assert _generator().main(["--check", str(tmp_path / "absent.tsv")]) == 1


def test_the_table_is_small_sorted_and_uk_only() -> None:
    text = COMMITTED.read_text(encoding="utf-8")
    rows = [line.split("\t") for line in text.splitlines() if not line.startswith("#")]
    prefixes = [prefix for prefix, _ in rows]
    assert prefixes == sorted(prefixes) and len(set(prefixes)) == len(prefixes)
    assert all(p.startswith("44") and p.isdigit() for p in prefixes)
    assert 500 < len(rows) < 5000 and len(text.encode()) < 200_000
    assert _table()["441707"] == "Welwyn Garden City"


def test_the_package_ships_the_table() -> None:
    package_data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"
    ]["callguard"]
    assert any(fnmatch.fnmatch(f"data/{PLACES_FILE}", pattern) for pattern in package_data)


# --- lookups against the geocoder ---


def test_every_prefix_in_the_table_places_a_number_as_the_geocoder_does() -> None:
    _same_phonenumbers()
    checked = 0
    for prefix in sorted(_table()):
        number = _landline_under(prefix)
        assert number is not None, f"no valid landline starts {prefix}"
        e164 = phonenumbers.format_number(number, PhoneNumberFormat.E164)
        caller = from_caller_id(e164)
        assert caller.category is Category.LANDLINE, e164
        assert (e164, caller.place) == (e164, _geocoder_place(number))
        checked += 1
    assert checked == len(_table())


@given(st.from_regex(r"\A[12][0-9]{9}\Z"))
@settings(max_examples=400, deadline=None)
def test_any_uk_landline_is_placed_as_the_geocoder_does(nsn: str) -> None:
    _same_phonenumbers()
    number = phonenumbers.parse("+44" + nsn)
    assume(
        phonenumbers.number_type(number)
        in (PhoneNumberType.FIXED_LINE, PhoneNumberType.FIXED_LINE_OR_MOBILE)
    )
    assert from_caller_id("0" + nsn).place == _geocoder_place(number)


@pytest.mark.parametrize(
    ("raw", "place"),
    [
        ("01707 354000", "Welwyn Garden City"),
        ("020 7946 0123", "London"),
        ("01387 300000", "Langholm"),  # 441387 is Dumfries; the longer 4413873 wins
        ("01387 200000", "Dumfries"),
        ("01481 700000", "Guernsey"),  # +44 but the region GG: still a town from the table
        ("0115 496 0123", "Nottingham"),  # a drama range: the geocoder has no place for it
        ("01632 960123", None),  # no prefix of the table starts it
        ("023 0000 0000", None),  # valid, but the geocoder knows only "United Kingdom"
    ],
)
def test_longest_prefix_wins_and_an_unplaced_landline_has_no_town(
    raw: str, place: str | None
) -> None:
    caller = from_caller_id(raw)
    assert caller.category is Category.LANDLINE
    assert caller.place == place_of(caller) == place


def test_town_of_takes_the_longest_prefix_whatever_the_number() -> None:
    assert town_of("+441387300000") == "Langholm"
    assert town_of("441387999999") == "Dumfries"  # with or without the +
    assert town_of("+4420") == "London"
    assert town_of("+44") is None and town_of("") is None
    assert town_of("+12025550143") is None  # only +44 has towns


def test_only_landlines_and_international_numbers_have_places() -> None:
    assert from_caller_id("07700 900123").place is None
    assert from_caller_id("0808 157 0123").place is None
    assert from_caller_id("159").place is None
    assert from_caller_id("P").place is None
    assert from_caller_id("+33 1 23 45 67 89").place == "France"


def test_a_home_landline_outside_the_uk_has_no_town_and_the_uk_is_a_country_abroad() -> None:
    assert from_caller_id("2025550143", region="US").place is None
    assert from_caller_id("+441707354000", region="US").place == "United Kingdom"


def test_places_never_load_the_geocoder() -> None:
    code = (
        "import sys\n"
        "from callguard.core.numbers import from_caller_id\n"
        "from callguard.audio.prompts import intro_text\n"
        "c = from_caller_id('01707354000')\n"
        "assert intro_text(c) == 'A call from an unknown number in Welwyn Garden City.'\n"
        "assert from_caller_id('+33123456789').place == 'France'\n"
        "assert from_caller_id('+12025550123').place == 'United States'\n"
        "assert 'phonenumbers.geocoder' not in sys.modules, 'the geocoder was loaded'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


# --- the table's format, and how a place is spoken ---


def test_parse_places_reads_comments_and_rows() -> None:
    text = "# phonenumbers 1.0\n\n4420\tLondon\n441707\tWelwyn Garden City\n"
    assert parse_places(text) == {"4420": "London", "441707": "Welwyn Garden City"}


@pytest.mark.parametrize("line", ["4420 London", "44x0\tLondon", "4420\t", "\tLondon"])
def test_parse_places_names_a_line_it_cannot_read(line: str) -> None:
    with pytest.raises(ValueError, match=r"line 2 of the places table"):
        parse_places(f"# header\n{line}\n")


def test_two_towns_are_spoken_with_or() -> None:
    caller = from_caller_id("01229 012345")
    assert caller.place == "Barrow-in-Furness/Millom"  # as shown by allow add
    assert intro_text(caller) == "A call from an unknown number in Barrow-in-Furness or Millom."


def test_the_table_is_read_once(monkeypatch: pytest.MonkeyPatch) -> None:
    numbers.load_places()
    monkeypatch.setattr(numbers, "parse_places", lambda text: pytest.fail("read again"))
    assert town_of("+441707354000") == "Welwyn Garden City"
