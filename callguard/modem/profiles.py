"""What to say to each family of modem.

Theory of operation
-------------------
A profile is data: the commands that bring a modem from any state to "on-hook, verbose,
caller ID on, right country, never auto-answer", the voice format it takes, and its quirks.
The transport runs :func:`init_commands` after every open (a USB modem that was unplugged comes
back at power-on defaults) and :func:`caller_id_commands` after every call, because some
Conexant firmware forgets ``+VCID=1`` after a reset or a voice session.

Families, identified by ``ATI0`` (V.250 product identification):

* ``usr5637``: USRobotics 5637 USB (``ATI0`` answers ``5601``). Voice ``AT+VSM=128,8000``:
  8-bit linear unsigned PCM at 8 kHz. Keeps ``+VCID`` after a voice session. No ``-TRV``.
* ``conexant``: the CX93010 family (Zoom 3095, StarTech USB56KEMH2 and other "56000" modems).
  Voice ``AT+VSM=1,8000,0,0`` (8-bit unsigned PCM). Reports tip/ring voltage with ``AT-TRV``.
  Has been seen to need ``<DLE><ETX>`` sent more than once to end a transmission.
* ``generic``: any IS-101 / V.253 voice modem. Caller ID by ``+VCID`` with the Rockwell
  ``#CID`` as a fallback; voice format tried from a list until one is accepted.

Every sequence starts with ``ATH0``: the line goes on-hook before anything else is tried.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# ITU-T T.35 country codes for AT+GCI, for the countries whose caller ID we know about.
T35_COUNTRY_CODES: dict[str, str] = {
    "GB": "B4",
    "US": "B5",
    "CA": "20",
    "IE": "57",
    "AU": "09",
    "NZ": "7E",
}

_HEX_CODE_RE = re.compile(r"^[0-9A-F]{2}$")


class ProfileError(ValueError):
    """A profile or country name that CallGuard does not know."""


@dataclass(frozen=True, slots=True)
class ModemProfile:
    """Commands and quirks of one modem family."""

    name: str
    description: str
    caller_id: tuple[str, ...]
    """Commands that turn formatted caller ID on; tried in order until one answers OK."""
    voice_formats: tuple[str, ...]
    """``AT+VSM`` commands for 8 kHz 8-bit unsigned audio; tried in order until one answers OK."""
    line_voltage: bool | None
    """True if ``AT-TRV`` works, False if known not to, None to find out by asking."""
    etx_repeats: int = 1
    """How many times to send ``<DLE><ETX>`` if the first gets no OK."""


USR5637 = ModemProfile(
    name="usr5637",
    description="USRobotics 5637",
    caller_id=("AT+VCID=1", "AT#CID=1"),
    voice_formats=("AT+VSM=128,8000",),
    line_voltage=False,
)

CONEXANT = ModemProfile(
    name="conexant",
    description="Conexant CX93010 family (Zoom 3095, StarTech and similar)",
    caller_id=("AT+VCID=1",),
    voice_formats=("AT+VSM=1,8000,0,0", "AT+VSM=130,8000"),
    line_voltage=True,
    etx_repeats=3,
)

GENERIC = ModemProfile(
    name="generic",
    description="generic IS-101 voice modem",
    caller_id=("AT+VCID=1", "AT#CID=1"),
    voice_formats=("AT+VSM=1,8000,0,0", "AT+VSM=128,8000", "AT+VSM=130,8000"),
    line_voltage=None,
    etx_repeats=2,
)

PROFILES: dict[str, ModemProfile] = {p.name: p for p in (USR5637, CONEXANT, GENERIC)}
PROFILE_CHOICES = ("auto", *PROFILES)


def identify(ati0: str | None) -> ModemProfile:
    """The profile for an ``ATI0`` answer: ``5601`` USR 5637, ``56000`` Conexant, else generic."""
    text = (ati0 or "").strip()
    if text == "5601":
        return USR5637
    if text == "56000":
        return CONEXANT
    return GENERIC


def select_profile(configured: str, ati0: str | None) -> ModemProfile:
    """``modem.profile`` from config: ``auto`` identifies by ``ATI0``, else the named one."""
    if configured == "auto":
        return identify(ati0)
    try:
        return PROFILES[configured]
    except KeyError:
        raise ProfileError(
            f"modem.profile = {configured!r} is not a known modem; use one of "
            + ", ".join(repr(c) for c in PROFILE_CHOICES)
        ) from None


def country_code(country: str) -> str:
    """The T.35 code for ``AT+GCI``: an ISO region such as ``GB``, or a two-digit hex code."""
    value = country.strip().upper()
    if value in T35_COUNTRY_CODES:
        return T35_COUNTRY_CODES[value]
    if _HEX_CODE_RE.match(value) and value not in T35_COUNTRY_CODES:
        return value
    raise ProfileError(
        f"modem.country = {country!r} is not a country CallGuard knows; use one of "
        + ", ".join(sorted(T35_COUNTRY_CODES))
        + " or the modem's two-digit T.35 hex code (GB is B4)"
    )


RESET_COMMANDS: tuple[str, ...] = ("ATH0", "ATZ", "ATE0V1Q0", "ATS0=0")
"""On-hook first; reset; echo off, verbose results, results on; never auto-answer."""

IDENTIFY_COMMANDS: tuple[str, ...] = ("ATI0", "ATI3")


def init_commands(country: str) -> tuple[str, ...]:
    """Commands run after every open, before the modem is identified and caller ID asserted.

    The same for every family: the profile is not known until ``ATI0`` has answered.
    """
    return (*RESET_COMMANDS, f"AT+GCI={country_code(country)}")
