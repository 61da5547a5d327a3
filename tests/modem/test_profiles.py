"""Modem profiles: identification, country codes, and the init order."""

from __future__ import annotations

import pytest

from callguard.modem import profiles
from callguard.modem.protocol import encode_command


@pytest.mark.parametrize(
    ("ati0", "name"),
    [
        ("5601", "usr5637"),
        (" 5601 ", "usr5637"),
        ("56000", "conexant"),
        ("", "generic"),
        (None, "generic"),
        ("33600", "generic"),
    ],
)
def test_identify_by_ati0(ati0: str | None, name: str) -> None:
    assert profiles.identify(ati0).name == name


def test_select_profile_auto_and_named() -> None:
    assert profiles.select_profile("auto", "5601") is profiles.USR5637
    assert profiles.select_profile("conexant", "5601") is profiles.CONEXANT


def test_select_profile_unknown_names_the_value_and_the_choices() -> None:
    with pytest.raises(profiles.ProfileError, match=r"'zoom'.*'auto', 'usr5637', 'conexant'"):
        profiles.select_profile("zoom", None)


@pytest.mark.parametrize(
    ("country", "code"), [("GB", "B4"), ("gb", "B4"), ("US", "B5"), ("b4", "B4")]
)
def test_country_code(country: str, code: str) -> None:
    assert profiles.country_code(country) == code


@pytest.mark.parametrize("country", ["UK", "Britain", "B", "ZZZ", ""])
def test_unknown_country_says_how_to_fix_it(country: str) -> None:
    with pytest.raises(profiles.ProfileError, match="GB is B4"):
        profiles.country_code(country)


def test_init_goes_on_hook_first_and_sets_the_country() -> None:
    commands = profiles.init_commands("GB")
    assert commands[0] == "ATH0"
    assert "AT+GCI=B4" in commands
    assert "ATS0=0" in commands  # never auto-answer a call
    assert commands.index("ATZ") < commands.index("AT+GCI=B4")  # a reset would undo it


@pytest.mark.parametrize("profile", list(profiles.PROFILES.values()), ids=list(profiles.PROFILES))
def test_every_profile_command_is_sendable(profile: profiles.ModemProfile) -> None:
    for command in (*profiles.init_commands("GB"), *profile.caller_id, *profile.voice_formats):
        encode_command(command)
    assert profile.caller_id[0] == "AT+VCID=1"
    assert profile.etx_repeats >= 1


def test_family_quirks() -> None:
    assert profiles.USR5637.voice_formats == ("AT+VSM=128,8000",)
    assert profiles.CONEXANT.voice_formats[0] == "AT+VSM=1,8000,0,0"
    assert profiles.CONEXANT.line_voltage is True and profiles.USR5637.line_voltage is False
    assert profiles.CONEXANT.etx_repeats > 1
