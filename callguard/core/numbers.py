"""Phone numbers as CallGuard sees them: caller ID and typed numbers become a :class:`Caller`.

Theory of operation
-------------------
Every number CallGuard meets, whether the modem announced it or a family member typed it for a
list, becomes one :class:`Caller`. Its ``key`` is what list lookups compare: the E.164 form of a
full number (``+441707354000``) or the digits of a short code (``999``, ``159``, ``118118``).
Prefix rules (:func:`parse_prefix`) are E.164-style digit prefixes (``+44870``), so a rule matches
a caller when ``caller.key.startswith(rule)``; short-code keys have no ``+`` and never match one.

The phonenumbers library does the numbering-plan work (parsing, validity, number type,
formatting, short numbers); this module decides what those answers mean here:

* A number is valid when phonenumbers gives it a type; the type becomes a :class:`Category`, and
  any valid number whose country code is not the home region's is ``INTERNATIONAL``.
* Short codes come from ``phonenumbers.shortnumberinfo`` and, for the UK, from
  :data:`UK_SHORT_CODES`, a small table of the codes CallGuard relies on (999, 101, 159 ...) so a
  short code never comes out ``INVALID`` whatever the version of phonenumbers' metadata.
* Ofcom's drama ranges 01632 960xxx, 0115 496 0xxx and 07700 900xxx are never allocated, so
  phonenumbers calls them invalid; the simulator, the demo and the tests use them, so
  :data:`DRAMA_RANGES` makes them landlines and a mobile. The other drama ranges (020 7946 0xxx,
  0808 157 0xxx ...) are valid numbers to phonenumbers anyway.

:func:`from_caller_id` runs between caller ID and the first ring: it never raises (anything it
cannot read is ``INVALID`` with the raw text kept), touches only the home region's metadata, and
caches recent answers. :func:`parse_typed` and :func:`parse_prefix` are strict and raise
:class:`NumberError` with a message saying what to type instead.

Showing a number to a person is :func:`for_people`, the one place that does it: a stored E.164
number in the home region's national format (``01707 354000``) or the international one
(``+33 1 23 45 67 89``), a short code as its digits, and a prefix rule as people dial it
(``+44870*`` is ``0870*`` at home; a whole country's code gets its name: ``+234* (Nigeria)``).

Places (:func:`place_of`, ``Caller.place``) never use phonenumbers' geocoder: importing it
loads every country's places in every language at once (about 100 MB of memory, 0.3 to 0.5 s on
a desktop and several seconds on a Pi). The town of a UK landline comes from
``callguard/data/uk-places.tsv`` instead, the geocoder's English places for +44 (about 800
prefixes, 15 KB) extracted when the package is built (``make places``, tools/make_places.py),
looked up by longest prefix as the geocoder does: read once, on first use or by
:func:`load_places`, and small. Country names (:func:`country_of`) need only the region
phonenumbers gives a number and pycountry's ISO 3166 names (about 6 MB):
:func:`load_country_names`.

Importing this module is cheap: phonenumbers (its metadata costs 10 to 15 ms to import on a
desktop, ten times that on a Pi) and the modem protocol are imported by the functions that use
them, so a command that only needs :class:`Caller`, :class:`Category` or :class:`NumberError`
(``callguard status``, ``callguard log``) never loads them.
"""

from __future__ import annotations

import enum
import functools
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, TypeAlias

from callguard.errors import UsageError

if TYPE_CHECKING:
    from phonenumbers import PhoneNumber

__all__ = [
    "DRAMA_RANGES",
    "PLACES_FILE",
    "UK_SHORT_CODES",
    "Caller",
    "Category",
    "NumberError",
    "country_of",
    "for_people",
    "from_caller_id",
    "is_e164",
    "load_country_names",
    "load_places",
    "parse_places",
    "parse_prefix",
    "parse_typed",
    "place_of",
    "quick_key",
    "region_ok",
    "town_of",
    "warm_up",
]


class Category(enum.StrEnum):
    """What kind of caller a number shows; the values appear in the call log and its JSON."""

    LANDLINE = "landline"
    MOBILE = "mobile"
    FREEPHONE = "freephone"
    PREMIUM_RATE = "premium-rate"
    NON_GEOGRAPHIC = "non-geographic"
    INTERNATIONAL = "international"
    SHORT_CODE = "short-code"
    WITHHELD = "withheld"
    UNAVAILABLE = "unavailable"
    INVALID = "invalid"


class NumberError(UsageError):
    """A number or prefix a person typed that CallGuard cannot use; ``value`` is what they typed."""

    def __init__(self, message: str, *, value: str = "") -> None:
        super().__init__(message)
        self.value = value


@dataclass(frozen=True, slots=True)
class Caller:
    """One number (or the lack of one), ready for list lookups, the log and the speaker.

    Make these with :func:`from_caller_id` or :func:`parse_typed`. ``place`` is a property
    (see :func:`place_of`), so it is not a constructor argument and takes no part in equality.
    """

    key: str | None
    """What list lookups use: E.164, or a short code's digits; None when there is no number."""
    e164: str | None
    """The E.164 form of a full number; None for short codes and when there is no number."""
    category: Category
    display: str
    """``01707 354000`` at home, ``+33 1 23 45 67 89`` abroad, ``999``, ``withheld number``."""
    raw: str
    """The input exactly as given (empty for a caller ID without a number)."""

    @property
    def place(self) -> str | None:
        """The town of a home landline or the country of an international number, if known."""
        return place_of(self)

    def __str__(self) -> str:
        return self.display


_TYPE_CATEGORY: Final[dict[int, Category]] = {
    0: Category.LANDLINE,  # PhoneNumberType.FIXED_LINE
    2: Category.LANDLINE,  # PhoneNumberType.FIXED_LINE_OR_MOBILE
    1: Category.MOBILE,  # PhoneNumberType.MOBILE
    3: Category.FREEPHONE,  # PhoneNumberType.TOLL_FREE
    4: Category.PREMIUM_RATE,  # PhoneNumberType.PREMIUM_RATE
    5: Category.NON_GEOGRAPHIC,  # PhoneNumberType.SHARED_COST
    9: Category.NON_GEOGRAPHIC,  # PhoneNumberType.UAN
    7: Category.NON_GEOGRAPHIC,  # PhoneNumberType.PERSONAL_NUMBER
    6: Category.NON_GEOGRAPHIC,  # PhoneNumberType.VOIP
    8: Category.NON_GEOGRAPHIC,  # PhoneNumberType.PAGER
    10: Category.NON_GEOGRAPHIC,  # PhoneNumberType.VOICEMAIL
}
"""phonenumbers' number types (libphonenumber's stable enum values, written out so that importing
this module does not import phonenumbers; a test checks them against ``PhoneNumberType``)."""

UK_SHORT_CODES: Final[dict[str, str]] = {
    "999": "emergency services",
    "112": "emergency services (the European number, works in the UK)",
    "101": "police, non-emergency",
    "111": "NHS, urgent but not an emergency",
    "105": "power cut helpline (any network operator)",
    "119": "NHS vaccinations and health services",
    "159": "Stop Scams UK: reaches your own bank safely; it never calls anyone",
    "100": "the operator",
    "123": "the speaking clock",
    "150": "the phone company's customer services",
    "151": "the phone company's fault reporting",
    "152": "the phone company's business customer services",
    "155": "the international operator",
}
"""UK short codes that are always short codes, whatever phonenumbers' metadata says.

phonenumbers 9.0 knows every one of these (and ``118xxx``); the table keeps CallGuard's guarantee
("a short code never comes out INVALID") independent of the metadata version installed.
"""

_UK_DIRECTORY_ENQUIRIES: Final = re.compile(r"118\d{3}")
"""118xxx: directory enquiries (118 118, 118 500 ...), six digits, many providers."""

DRAMA_RANGES: Final[tuple[tuple[int, str, Category], ...]] = (
    (44, "1632960", Category.LANDLINE),  # 01632 960000-960999: Ofcom, for drama
    (44, "1154960", Category.LANDLINE),  # 0115 496 0000-0999: Ofcom, for drama (Nottingham)
    (44, "7700900", Category.MOBILE),  # 07700 900000-900999: Ofcom, for drama
)
"""(country code, national-number prefix, category) of ten-digit ranges phonenumbers calls
invalid but Ofcom reserves for TV and radio drama, so they can never belong to a real subscriber."""

_UK_REGIONS: Final = frozenset({"GB", "GG", "IM", "JE"})
"""The UK and the Crown dependencies (+44): regions every phonenumbers supports."""

PLACES_FILE: Final = "uk-places.tsv"
"""The places table in ``callguard/data``: written by tools/make_places.py (``make places``)."""

_SEPARATORS: Final = re.compile(r"[\s().\-/]+")
_MODEM_NUMBER: Final = re.compile(r"\+?[0-9]+")
_ANY_DIGIT: Final = re.compile(r"[0-9]")
_E164_PREFIX: Final = re.compile(r"\+[0-9]{1,15}")
_MAX_SHORT_CODE_DIGITS: Final = 6
_MAX_E164_DIGITS: Final = 15
_MAX_COUNTRY_CODE_DIGITS: Final = 3

_Found: TypeAlias = tuple[Category, str, str | None, str]
"""(category, key, e164, display) of a number that was recognised."""


def region_ok(region: str) -> bool:
    """Whether ``region`` is a region code phonenumbers supports, as written ("GB", not "gb").

    The parsing functions forgive lower case; a config file should hold the canonical code.
    The UK's regions are answered without importing phonenumbers, so that loading a UK config
    (``callguard status``) does not import it.
    """
    if region in _UK_REGIONS:
        return True
    import phonenumbers

    return region in phonenumbers.SUPPORTED_REGIONS


def from_caller_id(
    raw: str | None, region: str = "GB", absence: str | enum.Enum | None = None
) -> Caller:
    """What the modem sent as the caller's number, as a :class:`Caller`. Never raises.

    ``absence`` is the modem layer's reason for no number (``"withheld"``, ``"unavailable"``,
    ``"missing"``, ``"other"``, or a :class:`~callguard.modem.protocol.Absence`); when given it
    wins over ``raw``, which is kept for the log. The absence markers themselves (``P``,
    ``PRIVATE``, ``O``, ``OUT-OF-AREA`` ...) are understood as ``raw`` too. Text with no digit
    at all is an unknown reason for absence (unavailable); digits that make no number are INVALID.
    """
    from callguard.modem.protocol import absence_of

    text = raw or ""
    if absence is not None:
        return _absent(_absence_category(absence), text)
    value = text.strip()
    marker = absence_of(value)
    if marker is not None:
        return _absent(_absence_category(marker), text)
    if not _ANY_DIGIT.search(value):
        return _absent(Category.UNAVAILABLE, text)
    try:
        found = _caller_id_lookup(_SEPARATORS.sub("", value), region.strip().upper())
    except Exception:  # the screening path must never fail on odd input: INVALID instead
        found = None
    if found is None:
        return Caller(key=None, e164=None, category=Category.INVALID, display=value, raw=text)
    category, key, e164, display = found
    return Caller(key=key, e164=e164, category=category, display=display, raw=text)


_UK_NATIONAL: Final = re.compile(r"0[1-9][0-9]{8,9}")
_E164_WHOLE: Final = re.compile(r"\+[1-9][0-9]{6,14}")


def is_e164(number: object) -> bool:
    """Whether ``number`` is written as a full number in E.164 (``+``, then 7 to 15 ASCII
    digits, the first not 0); whether such a number exists is :func:`parse_typed`'s question."""
    return isinstance(number, str) and _E164_WHOLE.fullmatch(number) is not None


def quick_key(raw: str | None, region: str = "GB") -> str | None:
    """The list key a caller-ID number would have, by string work alone (microseconds), or
    None when only :func:`from_caller_id` can tell.

    For the seize path's first look: a UK home's national number (``0`` and 9 or 10 digits)
    is ``+44`` and the rest, and a number sent as ``+`` and digits is itself. The key is a
    candidate, not a verdict on the number: a whole-number match on a family list holds a
    number that was valid when it was added, and :func:`from_caller_id` gives that number
    the same key (phonenumbers writes a UK number's E.164 as ``+44`` and its national
    significant number, and reads an E.164 back to itself).
    """
    if not raw:
        return None
    digits = _SEPARATORS.sub("", raw)
    if _E164_WHOLE.fullmatch(digits):
        return None if digits.startswith("+440") else digits
    if region in _UK_REGIONS and _UK_NATIONAL.fullmatch(digits):
        return "+44" + digits[1:]
    return None


def parse_typed(text: str, region: str = "GB") -> Caller:
    """A number a person typed for a list: a valid full number or a known short code.

    Accepts the ways people write numbers (``01707 354000``, ``+44 (0)1707 354000``,
    ``0044 1707 354000``, ``07700-900123``, ``+33 1 23 45 67 89``, ``tel:+441707354000``, ``159``).
    Raises :class:`NumberError` naming the value and saying what would be accepted.
    """
    import phonenumbers

    home = _home_region(region)
    value = text.strip()
    if not value:
        raise NumberError(f"{text!r} has no phone number in it; {_how_to_type(home)}", value=text)
    body = value[4:].strip() if value[:4].lower() == "tel:" else value
    if any(ch.isalpha() for ch in body):
        raise NumberError(
            f"{value!r} has letters in it, but a phone number is digits only: {_how_to_type(home)}",
            value=text,
        )
    if "+" in body[1:]:
        raise NumberError(
            f"{value!r} has a + that is not a single + at the start; "
            f"write the country code after one +, e.g. {_example(home, international=True)}",
            value=text,
        )
    compact = _SEPARATORS.sub("", body)
    number = _parse(body, home)
    if number is not None and number.extension:
        raise NumberError(
            f"{value!r} has an extension ({number.extension}); type only the number the "
            f"caller ID shows, e.g. {_example(home, international=False)}",
            value=text,
        )
    if number is not None:
        found = _full_number(number, home)
        if found is not None:
            return _typed_caller(found, text)
    if compact.isdigit():
        digits = phonenumbers.normalize_digits_only(compact)  # full-width digits too
        if _is_short_code(digits, home):
            return Caller(
                key=digits, e164=None, category=Category.SHORT_CODE, display=digits, raw=text
            )
    raise NumberError(_not_a_number_message(value, compact, home), value=text)


def parse_prefix(text: str, region: str = "GB") -> str:
    """A prefix rule a person typed (``0870``, ``0870*``, ``+44 870``, ``+234``) as ``+44870``.

    The region's international prefix (``00``) becomes ``+``; the national trunk prefix (``0``)
    becomes ``+`` and the region's country code. ``(0)`` after a country code is dropped.
    """
    import phonenumbers

    home = _home_region(region)
    value = text.strip()
    what = "a number prefix such as 0870, 0870* or +44 870 (or +234 for a whole country)"
    if not value:
        raise NumberError(f"{text!r} has no prefix in it; type {what}", value=text)
    body = value[:-1] if value.endswith("*") else value
    body = _SEPARATORS.sub("", body.replace("(0)", ""))
    if not re.fullmatch(r"\+?[0-9]+", body):
        raise NumberError(
            f"{value!r} is not a number prefix: use only digits, with an optional + at the start "
            f"and * at the end; type {what}",
            value=text,
        )
    metadata = phonenumbers.PhoneMetadata.metadata_for_region(home)
    cc = str(phonenumbers.country_code_for_region(home))
    intl_prefix = metadata.international_prefix if metadata is not None else None
    intl = re.match(intl_prefix, body) if intl_prefix else None
    if body.startswith("+"):
        digits = body[1:]
    elif intl is not None:
        digits = body[intl.end() :]
    elif (
        metadata is not None
        and metadata.national_prefix
        and body.startswith(metadata.national_prefix)
    ):
        rest = body[len(metadata.national_prefix) :]
        if not rest:
            raise NumberError(
                f"{value!r} would match every {_region_name(home)} number; type at least the "
                f"first digit after the {metadata.national_prefix}, e.g. 0870",
                value=text,
            )
        digits = cc + rest
    elif metadata is not None and metadata.national_prefix:
        raise NumberError(
            f"{value!r} is ambiguous: start a {_region_name(home)} prefix with "
            f"{metadata.national_prefix} as you would dial it (e.g. {metadata.national_prefix}"
            f"{body}) or an international one with + (e.g. +{body})",
            value=text,
        )
    else:
        digits = cc + body
    if digits.startswith("440"):
        digits = "44" + digits[3:]  # +44 0870: UK national numbers never start with 0
    if len(digits) < 2:
        raise NumberError(
            f"{value!r} is too short for a prefix rule: it needs at least two digits after "
            f"the +, e.g. +44 870 or +234",
            value=text,
        )
    if digits.startswith("0"):
        raise NumberError(
            f"{value!r} has no country code: no country code starts with 0; "
            f"type e.g. +44 870 or +234",
            value=text,
        )
    if len(digits) > _MAX_E164_DIGITS:
        raise NumberError(
            f"{value!r} is too long for a prefix: a phone number has at most {_MAX_E164_DIGITS} "
            f"digits after the +; type the start of the number, e.g. 0870",
            value=text,
        )
    return "+" + digits


def place_of(caller: Caller) -> str | None:
    """Where the caller is, in English: a UK landline's town, an international number's country.

    A landline's town is the place of the longest prefix of its number in the places table
    (phonenumbers' geocoder data for +44, see the module's docstring), so it is what the
    geocoder says, with two differences: a landline the table has no town for (a new range,
    say) is None where the geocoder would say "United Kingdom", and the Ofcom drama ranges,
    which the geocoder does not place, get their area's town (0115 496 0xxx: Nottingham). Only
    +44 numbers have towns: a home landline in another numbering plan (``screening.region``
    "US") has None. An international number's place is its country (:func:`country_of`).
    None for mobiles, non-geographic numbers, short codes and no number.
    """
    if caller.e164 is None or caller.category not in (Category.LANDLINE, Category.INTERNATIONAL):
        return None
    return _place(caller.e164, international=caller.category is Category.INTERNATIONAL)


def town_of(e164: str) -> str | None:
    """The town of the places table's longest prefix of an E.164 number (``"+441707354000"``:
    "Welwyn Garden City"), or None. It does not check that the number is valid or a landline:
    :func:`place_of` does."""
    table, longest = _places()
    digits = e164.removeprefix("+")
    for end in range(min(longest, len(digits)), 0, -1):
        town = table.get(digits[:end])
        if town is not None:
            return town
    return None


def parse_places(text: str) -> dict[str, str]:
    """The places table's text (``prefix<TAB>town`` lines; ``#`` starts a comment line) as
    {prefix: town}. Raises ValueError naming the first line that is neither."""
    table: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line or line.startswith("#"):
            continue
        prefix, tab, town = line.partition("\t")
        if not tab or not prefix.isdigit() or not town.strip():
            raise ValueError(f"line {number} of the places table is not prefix<TAB>town: {line!r}")
        table[prefix] = town
    return table


def country_of(number: str | int) -> str | None:
    """The English name of the country of an E.164 number (``"+2348012345678"``) or of a
    country calling code (``234``): "Nigeria".

    None when there is no one country: a code several countries share (``1``, ``44``, ``7``)
    given alone, a number the shared code's countries cannot tell apart, a non-geographic code
    (``+800``), or something that is not a number. The first call loads the country names
    (see the module's docstring).
    """
    from phonenumbers import NumberParseException

    try:
        return _country(number)
    except (NumberParseException, ValueError):
        return None


def for_people(number_or_prefix: str, region: str = "GB") -> str:
    """A stored number, short code or prefix rule as a person reads and dials it. Never raises.

    ``region`` is the home region (``screening.region``). A full number shows in the home
    region's national format (``+441707354000`` -> ``01707 354000``) or in international format
    from anywhere else (``+33 1 23 45 67 89``); a short code as its digits (``999``). A prefix
    rule keeps its ``*`` and is shown as dialled from home, ``+44870*`` -> ``0870*``, where
    that typed back is the same rule (``+490*`` stays: ``00*`` would dial abroad). A code that
    is exactly one country's gets its name, ``+234*`` -> ``+234* (Nigeria)`` (the name loads
    the country names, see :func:`country_of`). The same digits without the ``*``
    (``+44870``, a rule's prefix in a sentence such as "numbers starting 0870") show the same
    way when they are not a whole number. Anything else is returned as given.
    """
    import phonenumbers

    text = number_or_prefix.strip()
    body = text.removesuffix("*")
    star = "*" if body != text else ""
    home = region.strip().upper()
    if not star:
        shown = _stored_number(body, home)
        if shown is not None:
            return shown
    if not _E164_PREFIX.fullmatch(body):
        return number_or_prefix
    digits = body[1:]
    home_code = str(phonenumbers.country_code_for_region(home))
    metadata = phonenumbers.PhoneMetadata.metadata_for_region(home)
    if metadata is not None and digits.startswith(home_code) and digits != home_code:
        dialled = (metadata.national_prefix or "") + digits[len(home_code) :]
        if _reads_back(dialled, home, body):  # not +49 0...: "00" would dial abroad
            return dialled + star
    name = country_of(int(digits)) if len(digits) <= _MAX_COUNTRY_CODE_DIGITS else None
    return f"+{digits}{star} ({name})" if name else f"+{digits}{star}"


def load_places() -> None:
    """Read the places table now (about 800 prefixes, well under 1 MB), not on a call."""
    _places()


def load_country_names() -> None:
    """Load the country names now (about 6 MB), so that no call waits for them later."""
    _country_names()


def warm_up(region: str = "GB") -> None:
    """Load phonenumbers, the home region's metadata and the places now, not on a call."""
    import phonenumbers

    home = region.strip().upper()
    example = phonenumbers.example_number(home)
    if example is not None:
        e164 = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)
        from_caller_id(e164, home)
        _is_short_code("999", home)
    load_places()


@functools.lru_cache(maxsize=512)
def _caller_id_lookup(digits: str, home: str) -> _Found | None:
    """A caller-ID number (separators already removed), or None if it is not one."""
    if not _MODEM_NUMBER.fullmatch(digits):
        return None
    number = _parse(digits, home)
    if number is not None:
        found = _full_number(number, home)
        if found is not None:
            return found
    if not digits.startswith("+"):
        if _is_short_code(digits, home):
            return Category.SHORT_CODE, digits, None, digits
        if len(digits) >= 8 and not digits.startswith("0"):
            # Some networks send an international number without its + or 00.
            number = _parse("+" + digits, home)
            if number is not None:
                return _full_number(number, home)
    return None


def _parse(text: str, home: str) -> PhoneNumber | None:
    import phonenumbers

    try:
        return phonenumbers.parse(text, home)
    except phonenumbers.NumberParseException:
        return None


def _full_number(number: PhoneNumber, home: str) -> _Found | None:
    """The category, key and display of a full number, or None if it is not a valid one."""
    import phonenumbers
    from phonenumbers import PhoneNumberFormat

    category = _TYPE_CATEGORY.get(phonenumbers.number_type(number))
    if category is None:
        category = _drama_category(number)
        if category is None:
            return None
    e164 = phonenumbers.format_number(number, PhoneNumberFormat.E164)
    if number.country_code == phonenumbers.country_code_for_region(home):
        return category, e164, e164, phonenumbers.format_number(number, PhoneNumberFormat.NATIONAL)
    display = phonenumbers.format_number(number, PhoneNumberFormat.INTERNATIONAL)
    return Category.INTERNATIONAL, e164, e164, display


def _drama_category(number: PhoneNumber) -> Category | None:
    import phonenumbers

    nsn = phonenumbers.national_significant_number(number)
    for country_code, prefix, category in DRAMA_RANGES:
        if number.country_code == country_code and len(nsn) == 10 and nsn.startswith(prefix):
            return category
    return None


def _is_short_code(digits: str, home: str) -> bool:
    if len(digits) > _MAX_SHORT_CODE_DIGITS or not digits.isdigit():
        return False
    if home == "GB" and (digits in UK_SHORT_CODES or _UK_DIRECTORY_ENQUIRIES.fullmatch(digits)):
        return True
    from phonenumbers import shortnumberinfo

    number = _parse(digits, home)
    return number is not None and shortnumberinfo.is_valid_short_number_for_region(number, home)


@functools.lru_cache(maxsize=1024)
def _country(number: str | int) -> str | None:
    import phonenumbers

    if isinstance(number, int):
        regions = phonenumbers.region_codes_for_country_code(number)
        region = regions[0] if len(regions) == 1 else None
    else:
        numobj = phonenumbers.parse(number)
        regions = phonenumbers.region_codes_for_country_code(numobj.country_code or 0)
        region = regions[0] if len(regions) == 1 else phonenumbers.region_code_for_number(numobj)
    if not region or region == phonenumbers.UNKNOWN_REGION or region == "001":
        return None
    return _country_names().get(region)


def _place(e164: str, *, international: bool) -> str | None:
    """:func:`place_of`'s lookup: the one way to a caller's place (tests watch for it)."""
    return country_of(e164) if international else town_of(e164)


@functools.cache
def _places() -> tuple[dict[str, str], int]:
    """The places table shipped in the package, and its longest prefix's length; read once."""
    from importlib import resources

    text = (resources.files("callguard") / "data" / PLACES_FILE).read_text(encoding="utf-8")
    table = parse_places(text)
    return table, max(map(len, table), default=0)


@functools.cache
def _country_names() -> dict[str, str]:
    """ISO 3166 country names by region code, from pycountry (about 6 MB, 50 ms, once): the
    short name people use ("Iran", "South Korea") where the standard's is long."""
    import pycountry

    return {
        str(c.alpha_2): str(getattr(c, "common_name", None) or c.name) for c in pycountry.countries
    }


def _reads_back(dialled: str, home: str, prefix: str) -> bool:
    try:
        return parse_prefix(dialled, home) == prefix
    except NumberError:
        return False


def _stored_number(text: str, home: str) -> str | None:
    """How a stored full number or short code is shown, or None if ``text`` is neither."""
    if text.isdigit() and len(text) <= _MAX_SHORT_CODE_DIGITS:
        return text
    found = _found_number(text, home)
    if found is None or found[1] != text:  # "+64081100" parses, as another number: +6481100
        return None
    return found[3]


def _found_number(text: str, home: str) -> _Found | None:
    number = _parse(text, home)
    return _full_number(number, home) if number is not None else None


def _absence_category(absence: str | enum.Enum) -> Category:
    reason = absence.value if isinstance(absence, enum.Enum) else absence
    if str(reason).strip().lower() == "withheld":
        return Category.WITHHELD
    return Category.UNAVAILABLE


def _absent(category: Category, raw: str) -> Caller:
    return Caller(key=None, e164=None, category=category, display=f"{category} number", raw=raw)


def _typed_caller(found: _Found, raw: str) -> Caller:
    category, key, e164, display = found
    return Caller(key=key, e164=e164, category=category, display=display, raw=raw)


def _home_region(region: str) -> str:
    import phonenumbers

    home = region.strip().upper()
    if home not in phonenumbers.SUPPORTED_REGIONS:
        raise NumberError(
            f"{region!r} is not a region CallGuard knows; use a two-letter country code such as "
            f"GB (the UK) or US",
            value=region,
        )
    return home


UK_NUMBER_TYPES = {
    "1": "every UK landline number starting 01",
    "2": "every UK landline number starting 02",
    "3": "every 03 number (banks, councils and charities, and anyone who rents one)",
    "5": "every 05 number (internet phone lines)",
    "7": "every UK mobile (07), and the pagers and personal numbers that start 07",
    "8": "every 08 number (freephone and business numbers)",
    "9": "every 09 premium-rate number",
}


SHARED_CODES = {
    "44": "the UK (and the Channel Islands and the Isle of Man)",
    "1": "the US, Canada and the Caribbean",
    "7": "Russia and Kazakhstan",
}


def prefix_scope(prefix: str, region: str = "GB") -> str | None:
    """What a prefix rule (``+44``, ``+447``: E.164 digits, star or not) covers, in words, when
    it is a whole country or a whole type of number in it; None for anything narrower.

    A country code (``+44``, ``+1``) is a whole country; a country code and one more digit
    (``+447``: every UK mobile; ``+441``: every landline starting 01) is a whole type.
    """
    import phonenumbers

    digits = prefix.strip().rstrip("*").removeprefix("+")
    for length in (1, 2, 3):
        code = digits[:length]
        if len(digits) < length or not phonenumbers.region_codes_for_country_code(int(code)):
            continue
        regions = phonenumbers.region_codes_for_country_code(int(code))
        place = SHARED_CODES.get(code) or (
            _country(int(code))
            or ", ".join(_country_names().get(r, r) for r in regions[:3])
            or f"+{code}"
        )
        rest = digits[length:]
        if not rest:
            return f"every number in {place}"
        if len(rest) == 1:
            if code == "44":
                return UK_NUMBER_TYPES.get(rest, f"every UK number starting 0{rest}")
            return f"every number in {place} starting +{code} {rest}"
        return None
    return None


def _region_name(home: str) -> str:
    return "UK" if home == "GB" else home


def _example(home: str, *, international: bool) -> str:
    import phonenumbers
    from phonenumbers import PhoneNumberFormat

    number = None if home == "GB" else phonenumbers.example_number(home)
    if number is None:
        number = phonenumbers.parse("+441707354000")  # Welwyn Garden City: a friendly example
    style = PhoneNumberFormat.INTERNATIONAL if international else PhoneNumberFormat.NATIONAL
    return phonenumbers.format_number(number, style)


def _how_to_type(home: str) -> str:
    return (
        f"type it as you would dial it, e.g. {_example(home, international=False)}, "
        f"or in international form {_example(home, international=True)}"
    )


def _not_a_number_message(value: str, digits: str, home: str) -> str:
    if len(digits.lstrip("+")) > _MAX_E164_DIGITS:
        return (
            f"{value!r} is too long for a phone number (at most {_MAX_E164_DIGITS} digits); "
            f"{_how_to_type(home)}"
        )
    if digits.startswith("+") or digits.startswith("00"):
        return (
            f"{value!r} is not a complete international phone number; check the country code "
            f"and the digits, e.g. {_example(home, international=True)}"
        )
    if len(digits) <= _MAX_SHORT_CODE_DIGITS and not digits.startswith("0"):
        return (
            f"{value!r} is not a {_region_name(home)} short code CallGuard knows (such as 999, "
            f"101, 159 or 118118) nor a complete phone number; {_how_to_type(home)}"
        )
    return f"{value!r} is not a complete {_region_name(home)} phone number; {_how_to_type(home)}"
