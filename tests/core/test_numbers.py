"""Numbers: caller ID and typed numbers into Callers, prefix rules, short codes, places.

UK examples use Ofcom's drama ranges (never allocated to anyone) wherever there is one.
"""

from __future__ import annotations

import subprocess
import sys
import time

import phonenumbers
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from phonenumbers import shortnumberinfo

from callguard.core import numbers
from callguard.core.numbers import (
    UK_SHORT_CODES,
    Caller,
    Category,
    NumberError,
    country_of,
    for_people,
    from_caller_id,
    parse_prefix,
    parse_typed,
    place_of,
    region_ok,
)
from callguard.errors import CallGuardError, UsageError
from callguard.modem.protocol import Absence

# (what the modem sends, category, key, display)
CATEGORY_CASES = [
    ("01632960123", Category.LANDLINE, "+441632960123", "01632 960123"),
    ("01154960123", Category.LANDLINE, "+441154960123", "0115 496 0123"),
    ("02079460123", Category.LANDLINE, "+442079460123", "020 7946 0123"),
    ("01134960999", Category.LANDLINE, "+441134960999", "0113 496 0999"),
    ("01214960000", Category.LANDLINE, "+441214960000", "0121 496 0000"),
    ("01914980123", Category.LANDLINE, "+441914980123", "0191 498 0123"),
    ("02896496123", Category.LANDLINE, "+442896496123", "028 9649 6123"),
    ("02920180123", Category.LANDLINE, "+442920180123", "029 2018 0123"),
    ("01707354000", Category.LANDLINE, "+441707354000", "01707 354000"),
    ("07700900123", Category.MOBILE, "+447700900123", "07700 900123"),
    ("07700900461", Category.MOBILE, "+447700900461", "07700 900461"),
    ("07624300123", Category.MOBILE, "+447624300123", "07624 300123"),  # Isle of Man, still +44
    ("08081570123", Category.FREEPHONE, "+448081570123", "0808 157 0123"),
    ("08001111", Category.FREEPHONE, "+448001111", "0800 1111"),
    ("09098790123", Category.PREMIUM_RATE, "+449098790123", "0909 879 0123"),
    ("08701234567", Category.PREMIUM_RATE, "+448701234567", "0870 123 4567"),
    ("03069990123", Category.NON_GEOGRAPHIC, "+443069990123", "0306 999 0123"),
    ("03001234567", Category.NON_GEOGRAPHIC, "+443001234567", "0300 123 4567"),
    ("07012345678", Category.NON_GEOGRAPHIC, "+447012345678", "070 1234 5678"),
    ("05600001234", Category.NON_GEOGRAPHIC, "+445600001234", "056 0000 1234"),
    ("07640123456", Category.NON_GEOGRAPHIC, "+447640123456", "076 4012 3456"),
    ("+12025550123", Category.INTERNATIONAL, "+12025550123", "+1 202-555-0123"),
    ("+33123456789", Category.INTERNATIONAL, "+33123456789", "+33 1 23 45 67 89"),
    ("+33612345678", Category.INTERNATIONAL, "+33612345678", "+33 6 12 34 56 78"),
    ("0033123456789", Category.INTERNATIONAL, "+33123456789", "+33 1 23 45 67 89"),
    ("0035312345678", Category.INTERNATIONAL, "+35312345678", "+353 1 234 5678"),
    ("999", Category.SHORT_CODE, "999", "999"),
    ("159", Category.SHORT_CODE, "159", "159"),
    ("118118", Category.SHORT_CODE, "118118", "118118"),
]


@pytest.mark.parametrize(("raw", "category", "key", "display"), CATEGORY_CASES)
def test_caller_id_category_key_and_display(
    raw: str, category: Category, key: str, display: str
) -> None:
    caller = from_caller_id(raw)
    assert caller == Caller(
        key=key,
        e164=None if category is Category.SHORT_CODE else key,
        category=category,
        display=display,
        raw=raw,
    )
    assert str(caller) == display


@pytest.mark.parametrize(("raw", "category", "key", "display"), CATEGORY_CASES)
def test_typed_numbers_agree_with_caller_id(
    raw: str, category: Category, key: str, display: str
) -> None:
    caller = parse_typed(raw)
    assert (caller.key, caller.category, caller.display) == (key, category, display)


@pytest.mark.parametrize(
    "raw", ["01707354000", "441707354000", "+441707354000", "00441707354000", "1707354000"]
)
def test_modem_forms_of_one_uk_number(raw: str) -> None:
    caller = from_caller_id(raw)
    assert caller.key == caller.e164 == "+441707354000"
    assert caller.category is Category.LANDLINE
    assert caller.display == "01707 354000"
    assert caller.raw == raw


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ("0033123456789", "+33123456789"),
        ("+33123456789", "+33123456789"),
        ("33123456789", "+33123456789"),  # some networks drop the 00
        ("0012025550123", "+12025550123"),
        ("12025550123", "+12025550123"),
    ],
)
def test_modem_forms_of_international_numbers(raw: str, key: str) -> None:
    caller = from_caller_id(raw)
    assert (caller.key, caller.category) == (key, Category.INTERNATIONAL)


def test_modem_separators_and_whitespace_are_ignored() -> None:
    caller = from_caller_id(" 01707 354-000\r\n")
    assert caller.key == "+441707354000"
    assert caller.raw == " 01707 354-000\r\n"


@pytest.mark.parametrize("marker", ["P", "PRIVATE", "WITHHELD", "ANONYMOUS", "p", " Private "])
def test_withheld_markers(marker: str) -> None:
    caller = from_caller_id(marker)
    assert caller == Caller(None, None, Category.WITHHELD, "withheld number", marker)


@pytest.mark.parametrize("marker", ["O", "OUT-OF-AREA", "UNAVAILABLE", "o", "Out-Of-Area", ""])
def test_unavailable_markers(marker: str) -> None:
    caller = from_caller_id(marker)
    assert caller == Caller(None, None, Category.UNAVAILABLE, "unavailable number", marker)


@pytest.mark.parametrize(
    ("raw", "absence", "category", "kept"),
    [
        (None, "withheld", Category.WITHHELD, ""),
        ("", "withheld", Category.WITHHELD, ""),
        (None, "unavailable", Category.UNAVAILABLE, ""),
        (None, "missing", Category.UNAVAILABLE, ""),
        (None, None, Category.UNAVAILABLE, ""),
        ("", None, Category.UNAVAILABLE, ""),
        ("X", "other", Category.UNAVAILABLE, "X"),
        ("12AB", "other", Category.UNAVAILABLE, "12AB"),
        ("P", Absence.WITHHELD, Category.WITHHELD, "P"),
        ("O", Absence.UNAVAILABLE, Category.UNAVAILABLE, "O"),
        ("Z", Absence.OTHER, Category.UNAVAILABLE, "Z"),
        (None, Absence.MISSING, Category.UNAVAILABLE, ""),
    ],
)
def test_reason_for_absence(
    raw: str | None, absence: str | Absence | None, category: Category, kept: str
) -> None:
    caller = from_caller_id(raw, absence=absence)
    assert (caller.key, caller.e164, caller.category, caller.raw) == (None, None, category, kept)
    assert caller.display == f"{category} number"
    assert caller.place is None


@pytest.mark.parametrize("raw", ["X", "+", "--", "ERROR"])
def test_text_without_digits_is_no_number_with_the_raw_kept(raw: str) -> None:
    caller = from_caller_id(raw)
    assert (caller.category, caller.key, caller.raw) == (Category.UNAVAILABLE, None, raw)


@pytest.mark.parametrize(
    "raw", ["0170735", "0", "12AB", "01707 354000 999", "+0", "++44", "0044", "+999", "4"]
)
def test_caller_id_that_is_no_number_is_invalid_and_kept(raw: str) -> None:
    caller = from_caller_id(raw)
    assert caller == Caller(None, None, Category.INVALID, raw.strip(), raw)
    assert caller.place is None


@given(st.one_of(st.text(), st.from_regex(r"\A[+0-9 ()\-]{0,20}\Z")))
@settings(max_examples=300, deadline=None)
def test_caller_id_never_raises(raw: str) -> None:
    caller = from_caller_id(raw)
    assert caller.raw == raw
    assert (caller.key is None) == (
        caller.category in (Category.WITHHELD, Category.UNAVAILABLE, Category.INVALID)
    )
    if caller.category is Category.INVALID:
        assert caller.display == raw.strip()


def test_caller_id_with_an_unsupported_region_does_not_raise() -> None:
    assert from_caller_id("01707354000", region="XX").category is Category.INVALID
    assert from_caller_id("+441707354000", region="XX").key == "+441707354000"


# --- short codes ---

UK_CODES = [
    *["999", "112", "101", "111", "105", "119", "159", "100", "123", "150", "151", "152", "155"],
    *["118118", "118500", "118000", "118888"],
]


@pytest.mark.parametrize("code", UK_CODES)
def test_uk_short_codes(code: str) -> None:
    for caller in (from_caller_id(code), parse_typed(code)):
        assert (caller.key, caller.e164, caller.category) == (code, None, Category.SHORT_CODE)
        assert caller.display == code
        assert caller.place is None


@pytest.mark.parametrize("code", ["116123", "1471", "141", "18000"])
def test_short_codes_phonenumbers_knows(code: str) -> None:
    assert from_caller_id(code).category is Category.SHORT_CODE


def test_uk_short_codes_survive_metadata_that_lacks_them(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shortnumberinfo, "is_valid_short_number_for_region", lambda *_: False)
    numbers._caller_id_lookup.cache_clear()
    try:
        for code in [*UK_SHORT_CODES, "118118", "118999"]:
            assert from_caller_id(code).category is Category.SHORT_CODE, code
            assert parse_typed(code).key == code
        assert from_caller_id("116123").category is Category.INVALID
    finally:
        numbers._caller_id_lookup.cache_clear()


def test_short_codes_follow_the_region() -> None:
    assert parse_typed("911", region="US").category is Category.SHORT_CODE
    assert from_caller_id("911", region="US").key == "911"
    with pytest.raises(NumberError, match="'911'"):
        parse_typed("911")


# --- places ---


@pytest.mark.parametrize(
    ("raw", "place"),
    [
        ("01707354000", "Welwyn Garden City"),
        ("02079460123", "London"),
        ("01134960123", "Leeds"),
        ("+33123456789", "France"),
        ("+33612345678", "France"),
        ("+12025550123", "United States"),
        ("0035312345678", "Ireland"),
        ("07700900123", None),
        ("07012345678", None),
        ("08081570123", None),
        ("159", None),
        ("P", None),
    ],
)
def test_place(raw: str, place: str | None) -> None:
    caller = from_caller_id(raw)
    assert caller.place == place_of(caller) == place


def test_place_at_home_in_another_region() -> None:
    assert from_caller_id("2025550143", region="US").place is None  # the table is the UK's
    assert from_caller_id("+441707354000", region="US").place == "United Kingdom"


def test_screening_and_places_never_load_the_geocoder() -> None:
    code = (
        "import sys, callguard.core.numbers as n\n"
        "c = n.from_caller_id('01707354000'); n.parse_typed('+33 1 23 45 67 89')\n"
        "assert c.category == 'landline'\n"
        "assert n.for_people('+44870*') == '0870*' and n.for_people('999') == '999'\n"
        "assert n.for_people('+33123456789') == '+33 1 23 45 67 89'\n"
        "assert 'phonenumbers.geocoder' not in sys.modules\n"
        "assert c.place == 'Welwyn Garden City'\n"
        "assert 'phonenumbers.geocoder' not in sys.modules  # a shipped table, not the geocoder\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


@pytest.mark.parametrize(
    ("number", "country"),
    [
        ("+33123456789", "France"),
        ("+18765550123", "Jamaica"),  # +1, shared, but this number is Jamaica's
        ("+2348012345678", "Nigeria"),
        (234, "Nigeria"),
        (44, None),  # the UK, Guernsey, Jersey and the Isle of Man share +44
        (1, None),
        ("+80012345678", None),  # international freephone: no country
        ("not a number", None),
    ],
)
def test_country_of(number: str | int, country: str | None) -> None:
    assert country_of(number) == country


def test_caller_id_is_fast() -> None:
    numbers.warm_up()
    raws = [f"0170735{i:04d}" for i in range(1000)]
    start = time.perf_counter()
    for raw in raws:
        from_caller_id(raw)
    per_call_s = (time.perf_counter() - start) / len(raws)
    assert per_call_s < 1e-3  # about 40 us on a desktop; the budget is before the first ring


# --- typed numbers ---

FULL_WIDTH_NUMBER = "".join(chr(0xFF10 + int(d)) if d.isdigit() else d for d in "01707 354000")


@pytest.mark.parametrize(
    ("text", "key", "category"),
    [
        ("01707 354000", "+441707354000", Category.LANDLINE),
        ("+44 (0)1707 354000", "+441707354000", Category.LANDLINE),
        ("0044 1707 354000", "+441707354000", Category.LANDLINE),
        ("+44 1707 354000", "+441707354000", Category.LANDLINE),
        ("(01707) 354000", "+441707354000", Category.LANDLINE),
        ("tel:+441707354000", "+441707354000", Category.LANDLINE),
        ("TEL:+44-1707-354000", "+441707354000", Category.LANDLINE),
        ("  01707 354000  ", "+441707354000", Category.LANDLINE),
        (FULL_WIDTH_NUMBER, "+441707354000", Category.LANDLINE),
        ("07700-900123", "+447700900123", Category.MOBILE),
        ("07700 900 123", "+447700900123", Category.MOBILE),
        ("+33 1 23 45 67 89", "+33123456789", Category.INTERNATIONAL),
        ("0033 1 23 45 67 89", "+33123456789", Category.INTERNATIONAL),
        ("+1 (202) 555-0123", "+12025550123", Category.INTERNATIONAL),
        ("999", "999", Category.SHORT_CODE),
        ("101", "101", Category.SHORT_CODE),
        ("159", "159", Category.SHORT_CODE),
        ("118 118", "118118", Category.SHORT_CODE),
        ("\uff19\uff19\uff19", "999", Category.SHORT_CODE),  # full-width digits
    ],
)
def test_typed_forms(text: str, key: str, category: Category) -> None:
    caller = parse_typed(text)
    assert (caller.key, caller.category, caller.raw) == (key, category, text)


@pytest.mark.parametrize(
    "text",
    [
        "abc",
        "0800 FLOWERS",
        "01707 354000 ext 12",
        "0170735",
        "0",
        "+",
        "++44",
        "++44 1707 354000",
        "01707+354000",
        "0170735400012345678",
        "+44 1707 354000 1234567",
        "12345",
        "4",
        "+33 1 23",
        "01707 354000 #12",
        "01707 35400",
    ],
)
def test_typed_bad_input_names_the_value_and_the_fix(text: str) -> None:
    with pytest.raises(NumberError) as caught:
        parse_typed(text)
    message = str(caught.value)
    assert repr(text) in message
    assert "e.g." in message
    assert caught.value.value == text


@pytest.mark.parametrize("text", ["", "   "])
def test_typed_empty(text: str) -> None:
    with pytest.raises(NumberError) as caught:
        parse_typed(text)
    assert str(caught.value) == (
        f"{text!r} has no phone number in it; type it as you would dial it, e.g. 01707 354000, "
        "or in international form +44 1707 354000"
    )


def test_typed_message_for_an_incomplete_uk_number() -> None:
    with pytest.raises(NumberError) as caught:
        parse_typed("0170735")
    assert str(caught.value) == (
        "'0170735' is not a complete UK phone number; type it as you would dial it, "
        "e.g. 01707 354000, or in international form +44 1707 354000"
    )


def test_number_error_is_a_usage_error() -> None:
    assert issubclass(NumberError, UsageError)
    assert issubclass(NumberError, CallGuardError)


def test_typed_in_another_home_region() -> None:
    caller = parse_typed("(202) 555-0123", region="US")
    assert (caller.key, caller.category, caller.display) == (
        "+12025550123",
        Category.LANDLINE,
        "(202) 555-0123",
    )
    uk = parse_typed("+44 1707 354000", region="us")
    assert (uk.category, uk.display) == (Category.INTERNATIONAL, "+44 1707 354000")
    with pytest.raises(NumberError, match="not a complete US phone number"):
        parse_typed("555-0123", region="US")


@pytest.mark.parametrize("region", ["UK", "XX", "", "001"])
def test_typed_with_an_unknown_region(region: str) -> None:
    with pytest.raises(NumberError, match="two-letter country code such as GB"):
        parse_typed("01707 354000", region=region)


@pytest.mark.parametrize(
    ("region", "ok"), [("GB", True), ("US", True), ("gb", False), ("FR", True), ("UK", False),
                       ("XX", False), ("", False), ("001", False)]
)  # fmt: skip
def test_region_ok(region: str, ok: bool) -> None:
    assert region_ok(region) is ok


# --- prefixes ---


@pytest.mark.parametrize(
    ("text", "prefix"),
    [
        ("0870", "+44870"),
        ("0870*", "+44870"),
        (" 0870 * ", "+44870"),
        ("+44 870", "+44870"),
        ("+44870*", "+44870"),
        ("0044870", "+44870"),
        ("00 44 870", "+44870"),
        ("+44 (0)870", "+44870"),
        ("+44 0870", "+44870"),
        ("+234", "+234"),
        ("00234", "+234"),
        ("+44", "+44"),
        ("07", "+447"),
        ("0909 879", "+44909879"),
        ("070", "+4470"),
        ("+1 900", "+1900"),
        ("0870 123 4567", "+448701234567"),
    ],
)
def test_prefix(text: str, prefix: str) -> None:
    assert parse_prefix(text) == prefix


def test_prefix_matches_caller_keys() -> None:
    rule = parse_prefix("0870*")
    assert (from_caller_id("08701234567").key or "").startswith(rule)
    assert not (from_caller_id("01707354000").key or "").startswith(rule)
    assert parse_typed("159").key == "159"  # short-code keys have no +, so no prefix matches


@pytest.mark.parametrize(
    ("text", "region", "prefix"),
    [("1900", "US", "+1900"), ("011234", "US", "+234"), ("+44 870", "US", "+44870")],
)
def test_prefix_in_another_region(text: str, region: str, prefix: str) -> None:
    assert parse_prefix(text, region=region) == prefix


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "has no prefix in it"),
        ("   ", "has no prefix in it"),
        ("*", "not a number prefix"),
        ("abc", "not a number prefix"),
        ("08x0", "not a number prefix"),
        ("0870**", "not a number prefix"),
        ("08*70", "not a number prefix"),
        ("++44", "not a number prefix"),
        ("44+870", "not a number prefix"),
        ("+", "not a number prefix"),
        ("+1", "too short"),
        ("00", "too short"),
        ("001", "too short"),
        ("0", "every UK number"),
        ("+0870", "no country code"),
        ("870", "ambiguous"),
        ("+4487012345678901", "too long"),
        ("0870 1234 5678 9012", "too long"),
    ],
)
def test_prefix_bad_input(text: str, why: str) -> None:
    with pytest.raises(NumberError, match=why) as caught:
        parse_prefix(text)
    assert repr(text) in str(caught.value)
    assert "e.g." in str(caught.value) or "such as" in str(caught.value)


# --- showing a number to a person ---


@pytest.mark.parametrize(
    ("stored", "region", "shown"),
    [
        ("+441707354000", "GB", "01707 354000"),
        ("+441632960123", "GB", "01632 960123"),  # a drama range phonenumbers calls invalid
        ("+447700900123", "GB", "07700 900123"),
        ("+33123456789", "GB", "+33 1 23 45 67 89"),
        ("+441707354000", "US", "+44 1707 354000"),
        ("+12025550143", "US", "(202) 555-0143"),
        ("999", "GB", "999"),
        ("118118", "GB", "118118"),
        ("+44870*", "GB", "0870*"),
        ("+44870", "GB", "0870"),  # a rule's prefix in a sentence: "numbers starting 0870"
        ("+441632960*", "GB", "01632960*"),
        ("+234*", "GB", "+234* (Nigeria)"),
        ("+234", "GB", "+234 (Nigeria)"),
        ("+2348*", "GB", "+2348*"),
        ("+44*", "GB", "+44*"),  # shared by four places: no name
        ("+1*", "GB", "+1*"),
        ("+1202*", "US", "1202*"),  # as dialled in the US, with its trunk prefix 1
        ("+44870*", "US", "+44870*"),
        ("+3906*", "IT", "06*"),  # Italy has no trunk prefix: numbers are dialled as they are
        ("+490*", "DE", "+490*"),  # not "00": that would dial abroad
        ("+4930*", "DE", "030*"),
        ("+44870*", "gb", "0870*"),
        ("+44870*", "XX", "+44870*"),  # an unknown home region: nothing is national
        ("withheld number", "GB", "withheld number"),
        ("", "GB", ""),
    ],
)
def test_for_people(stored: str, region: str, shown: str) -> None:
    assert for_people(stored, region) == shown


@given(
    st.text("0123456789", min_size=1, max_size=8),
    st.sampled_from(["GB", "US", "FR", "DE", "NG"]),
    st.booleans(),
)
@settings(max_examples=300, deadline=None)
def test_a_prefix_rule_shown_reads_back_as_the_same_rule(
    digits: str, region: str, star: bool
) -> None:
    """What for_people shows can be typed back: the same rule, or the same whole number."""
    try:
        prefix = parse_prefix("+" + digits, region)
    except NumberError:
        assume(False)
        return
    # "+4400" gives "+440", which typed again is "+44" (a trunk 0 after the code is dropped):
    # only a rule in its settled form can be shown so that it reads back
    assume(parse_prefix(prefix, region) == prefix)
    typed = for_people(prefix + ("*" if star else ""), region).split(" (")[0]  # no country
    assert typed.endswith("*") is star
    try:
        whole = parse_typed(prefix, region).key == prefix
    except NumberError:
        whole = False
    if star or not whole:
        assert parse_prefix(typed, region) == prefix
    else:  # digits that make a whole number are shown as one
        assert parse_typed(typed, region).key == prefix


# --- properties: the display form of a number reads back as the same number ---

# Ten-digit UK drama ranges (Ofcom) with the category each must come out as.
UK_RANGES = [
    ("0113496", Category.LANDLINE),
    ("0115496", Category.LANDLINE),
    ("0121496", Category.LANDLINE),
    ("0141496", Category.LANDLINE),
    ("0161496", Category.LANDLINE),
    ("0191498", Category.LANDLINE),
    ("0207946", Category.LANDLINE),
    ("0289649", Category.LANDLINE),
    ("0292018", Category.LANDLINE),
    ("0163296", Category.LANDLINE),
    ("0770090", Category.MOBILE),
    ("0808157", Category.FREEPHONE),
    ("0909879", Category.PREMIUM_RATE),
    ("0306999", Category.NON_GEOGRAPHIC),
]


@given(st.sampled_from(UK_RANGES), st.integers(0, 999), st.sampled_from(["GB", "US"]))
@settings(max_examples=200, deadline=None)
def test_uk_display_reads_back(uk_range: tuple[str, Category], last: int, region: str) -> None:
    start, category = uk_range
    digits = start + ("6" if start == "0289649" else "0") + f"{last:03d}"
    caller = from_caller_id(digits if region == "GB" else "01144" + digits[1:], region=region)
    assert caller.category is (category if region == "GB" else Category.INTERNATIONAL)
    assert caller.key == "+44" + digits[1:]
    assert parse_typed(caller.display, region=region).key == caller.key
    assert parse_typed(caller.key, region=region).display == caller.display
    assert for_people(caller.key, region) == caller.display


def _example(region: str, number_type: int) -> phonenumbers.PhoneNumber | None:
    example = phonenumbers.example_number_for_type(region, number_type)
    if example is None or not phonenumbers.is_valid_number(example):
        return None
    return example


@given(
    st.sampled_from(sorted(phonenumbers.SUPPORTED_REGIONS)),
    st.sampled_from(sorted(numbers._TYPE_CATEGORY)),
)
@settings(max_examples=300, deadline=None)
def test_example_numbers_read_back_from_abroad_and_at_home(region: str, number_type: int) -> None:
    example = _example(region, number_type)
    assume(example is not None)
    assert example is not None
    e164 = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)
    from_gb = parse_typed(e164)
    expect_international = example.country_code != 44
    assert (from_gb.category is Category.INTERNATIONAL) is expect_international
    assert parse_typed(from_gb.display).key == from_gb.key == e164
    assert from_caller_id(e164).key == e164
    at_home = parse_typed(e164, region=region)
    assert at_home.category is not Category.INTERNATIONAL
    assert parse_typed(at_home.display, region=region).key == at_home.key == e164
    assert for_people(e164) == from_gb.display and for_people(e164, region) == at_home.display


@given(st.sampled_from(sorted(phonenumbers.COUNTRY_CODES_FOR_NON_GEO_REGIONS)))
@settings(max_examples=20, deadline=None)
def test_non_geographic_numbers_are_international(country_code: int) -> None:
    example = phonenumbers.example_number_for_non_geo_entity(country_code)
    assume(example is not None and phonenumbers.is_valid_number(example))
    assert example is not None
    caller = parse_typed(phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164))
    assert caller.category is Category.INTERNATIONAL
    assert parse_typed(caller.display).key == caller.key


# --- the seize path's first look: a candidate key by string work alone ----------------------


@pytest.mark.parametrize(("raw", "category", "key", "display"), CATEGORY_CASES)
def test_a_quick_key_is_the_key_or_nothing(
    raw: str, category: Category, key: str, display: str
) -> None:
    quick = numbers.quick_key(raw)
    assert quick in (None, key)
    if raw.startswith(("01", "02", "07", "+")) and len(raw) >= 11:
        assert quick == key  # the shapes a UK caller ID has: always answered


@pytest.mark.parametrize(
    ("raw", "region", "quick"),
    [
        ("01707 354-000", "GB", "+441707354000"),
        ("01707354000", "JE", "+441707354000"),  # the Crown dependencies dial as the UK
        ("01707354000", "FR", None),  # a national number elsewhere: only the full parse
        ("+440207946012", "GB", None),  # a trunk 0 after +44: phonenumbers decides
        ("00441707354000", "GB", None),
        ("441707354000", "GB", None),
        ("999", "GB", None),
        ("0170735400", "GB", "+44170735400"),  # 10 digits: a candidate, matched exactly or not
        ("017073540001", "GB", None),
        ("P", "GB", None),
        ("", "GB", None),
        (None, "GB", None),
    ],
)
def test_quick_keys(raw: str | None, region: str, quick: str | None) -> None:
    assert numbers.quick_key(raw, region) == quick


@given(st.from_regex(r"\+?[0-9]{6,15}", fullmatch=True))
@settings(max_examples=300, deadline=None)
def test_a_quick_key_that_names_a_valid_number_is_its_key(raw: str) -> None:
    """A quick key that a list could hold as a whole number (a valid number's E.164, as
    ``parse_typed`` stores it) is the key the full parse gives; any other quick key matches no
    whole-number entry (``+490201000``: Germany's trunk 0, which phonenumbers drops)."""
    quick = numbers.quick_key(raw)
    assume(quick is not None)
    try:
        stored = parse_typed(quick).key
    except NumberError:
        return
    if stored == quick:
        assert from_caller_id(raw).key == quick
