"""Configuration: a TOML file checked against a schema, every problem reported at once.

Theory of operation
-------------------
The schema is the dataclasses below: one per ``[section]``, one field per key, with its type
and default. A field's metadata may carry a ``check`` (returns an error text or None) and a
``hint`` (what a good value looks like). :func:`load` reads the file, walks every section and
key, and collects *all* problems (unknown sections and keys with the closest known name,
wrong types, bad values) before raising one :class:`ConfigError` that lists them with
``section.key``, the value, and the fix. Every key has a default, so an empty or missing file
is a valid configuration.

TOML is written in one place, here, with tomlkit: :func:`render` builds a document of the
effective config (each key with its hint as a comment) for ``config check``, and
:func:`set_value` edits a person's file for ``callguard setup``: tomlkit reads it, the one value
changes, and every other line, comment and blank line comes out as it went in. The edit is
checked by :func:`from_dict` before it is returned; ``config check``'s output reads back as
the same config (the tests hold it to that). A value the screening policy reads (the mode,
the category settings, the quiet hours) is checked against :mod:`callguard.core.screening`'s
own tables and reader, so the two cannot disagree.

A value the checks pass must never break the daemon: a SIGHUP reload that raised anything but
:class:`ConfigError` would stop a running daemon, and a value that only fails later (a NaN
hold time, a date overflow, an unbalanced quote in a command) leaves the line unscreened. So
every number is finite and between a lower and an upper bound (``low``/``high`` in its
metadata; a test walks the schema to keep it so), every string is free of control characters,
and commands are split as the daemon splits them. The file itself is read as a bounded regular
file (never a FIFO or ``/dev/zero``) and anything the TOML parser cannot take (bad UTF-8, deep
nesting, a number of thousands of digits) is a :class:`ConfigError` too.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import difflib
import ipaddress
import math
import os
import re
import reprlib
import shlex
import tomllib
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_type_hints

from callguard.core.numbers import region_ok
from callguard.core.screening import MODE_ACTIONS, SETTING_ACTIONS, quiet_span
from callguard.errors import UsageError
from callguard.store.files import UnreadableFile, read_regular_file
from callguard.texts import (
    DEFAULT_CLAIM_WARNING,
    DEFAULT_LINE_WARNING,
    DEFAULT_WARNING,
    LINE_WARNING_MAX_CHARS,
    shown,
    unsafe,
)

if TYPE_CHECKING:  # tomlkit is imported by the functions that write TOML
    import tomlkit
    from tomlkit.items import Item, Table

DEFAULT_PATH = Path("/etc/callguard/callguard.toml")

MAX_CONFIG_BYTES = 1_000_000
"""The shipped file is about 6 kB; anything near this is not a config file."""

Check = Callable[[Any], str | None]


def _key(
    default: Any,
    hint: str,
    check: Check | None = None,
    *,
    low: float | None = None,
    high: float | None = None,
    expect: str | None = None,
    prose: bool = False,
) -> Any:
    """One key: its default, a hint, an optional check.

    Numbers must give ``low`` and ``high`` (checked after the type, before ``check``); strings
    may set ``prose`` to allow newlines and tabs (spoken texts). ``expect`` replaces the plain
    type word in a wrong-type message, e.g. "one of the standard serial speeds".
    """
    metadata = {
        "hint": hint,
        "check": check,
        "low": low,
        "high": high,
        "expect": expect,
        "prose": prose,
    }
    return field(default=default, metadata=metadata)


def _one_of(*choices: str) -> Check:
    def check(value: Any) -> str | None:
        if value in choices:
            return None
        close = difflib.get_close_matches(str(value), choices, n=1)
        maybe = f" (did you mean {close[0]!r}?)" if close else ""
        return "must be one of " + ", ".join(repr(c) for c in choices) + maybe

    return check


def _number(default: float, hint: str, low: float, high: float) -> Any:
    """A number key, whole or not as its annotation says, from ``low`` to ``high``."""
    return _key(default, hint, low=low, high=high)


BAUD_RATES = (300, 600, 1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600)
"""The standard serial speeds a modem's UART uses; pyserial on Linux would try any other."""


def _baud(value: Any) -> str | None:
    if value in BAUD_RATES:
        return None
    nearest = min(BAUD_RATES, key=lambda rate: abs(rate - value))
    return (
        "is not a standard serial speed; use one of "
        + ", ".join(str(rate) for rate in BAUD_RATES)
        + f" (the nearest is {nearest})"
    )


def _region(value: Any) -> str | None:
    if region_ok(str(value)):
        return None
    if region_ok(str(value).upper()):
        return f"must be in capitals: {str(value).upper()!r}"
    return "must be a two-letter region code such as 'GB' (ISO 3166)"


def _country(value: Any) -> str | None:
    from callguard.modem.profiles import ProfileError, country_code

    try:
        country_code(value)
    except ProfileError as exc:
        return "is not " + str(exc).split(" is not ", 1)[-1]
    return None


def _room_command(value: Any) -> str | None:
    # Split exactly as the daemon's RoomSpeaker splits it, so what passes here runs there.
    if not str(value).strip():
        return None
    try:
        words = shlex.split(value)
    except ValueError as exc:
        return (
            f"cannot be split into words ({str(exc).lower()}): check its quotes, e.g. "
            "'aplay -q {wav}', or \"aplay -D 'plughw:1,0' {wav}\""
        )
    if not any("{wav}" in word for word in words):
        return (
            "must contain {wav} where the sound file's path goes, e.g. 'aplay -q {wav}', or be ''"
        )
    if "{wav}" in words[0]:
        return "must start with the program that plays the sound, e.g. 'aplay -q {wav}'"
    return None


def _full_path_or_url(value: Any) -> str | None:
    text = str(value)
    if text.startswith("/") or "://" in text:
        return None
    return "must be a device path such as '/dev/ttyACM0', or a pyserial URL such as 'loop://'"


def _full_path(value: Any) -> str | None:
    if os.path.isabs(str(value)):
        return None
    return "must be a full path such as '/var/lib/callguard' ('~' is not expanded)"


def _full_path_or_empty(value: Any) -> str | None:
    return None if value == "" else _full_path(value)


def _public_key(value: Any) -> str | None:
    import base64
    import binascii

    if value == "":
        return None
    try:
        raw = base64.b64decode(str(value), validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        return "must be the base64 text `callguard hub key` prints (an Ed25519 public key)"
    return None


def _voice(value: Any) -> str | None:
    text = str(value)
    if text and text[0].isascii() and text[0].isalnum() and text.isascii() and " " not in text:
        return None
    return "must be an espeak-ng voice name such as 'en-gb' (see: espeak-ng --voices)"


def _quiet_hours(value: Any) -> str | None:
    try:
        quiet_span(str(value))
    except ValueError as exc:
        return str(exc)
    return None


_ACTIONS = tuple(SETTING_ACTIONS)  # allow, warn, block: what screening understands


@dataclass(frozen=True)
class ModemConfig:
    port: str = _key(
        "/dev/callguard-modem",
        "a device path such as /dev/ttyACM0, or any pyserial URL",
        _full_path_or_url,
    )
    profile: str = _key(
        "auto",
        "'auto' identifies the modem by ATI0",
        _one_of("auto", "usr5637", "conexant", "generic"),
    )
    country: str = _key("GB", "the line's country, GB for the UK", _country)
    baudrate: int = _key(
        115200,
        "the serial speed; USB modems ignore it",
        _baud,
        low=BAUD_RATES[0],
        high=BAUD_RATES[-1],
        expect="a standard serial speed such as 115200",
    )
    health_check_s: float = _number(
        30.0, "seconds between checks that the modem still answers", 5, 600
    )


@dataclass(frozen=True)
class StorageConfig:
    dir: str = _key(
        "/var/lib/callguard", "where the lists, the call log and the status live", _full_path
    )
    log_retention_days: int = _number(365, "days of call log kept", 1, 3650)
    runtime_dir: str = _key(
        "/run/callguard",
        "live status on tmpfs (systemd's RuntimeDirectory); storage.dir where it does not exist",
        _full_path,
    )


@dataclass(frozen=True)
class ScreeningConfig:
    region: str = _key("GB", "how national numbers are read", _region)
    mode: str = _key(
        "guarded",
        "'open' (unknown rings, no warning), 'guarded' (warned), 'allowlist-only' (blocked)",
        _one_of(*MODE_ACTIONS),
    )
    withheld: str = _key("warn", "withheld numbers: allow, warn or block", _one_of(*_ACTIONS))
    unavailable: str = _key("warn", "unavailable numbers: allow, warn or block", _one_of(*_ACTIONS))
    international: str = _key(
        "warn", "international numbers: allow, warn or block", _one_of(*_ACTIONS)
    )
    premium_rate: str = _key(
        "warn",
        "premium-rate numbers (09, and 084x/087x that some GPs use): allow, warn or block",
        _one_of(*_ACTIONS),
    )
    short_code: str = _key(
        "block",
        "caller IDs showing a short code (999, 150...): genuine callers never do",
        _one_of(*_ACTIONS),
    )
    invalid: str = _key(
        "warn", "numbers that cannot exist: allow, warn or block", _one_of(*_ACTIONS)
    )
    claim_words: str = _key(
        "police, constabulary, bank, hmrc, tax, court, bailiff, fraud",
        "caller-ID names claiming these (comma-separated) get the stronger warning",
        prose=True,
    )
    quiet_hours: str = _key(
        "", "unknown callers blocked in these hours, e.g. '21:00-08:00'", _quiet_hours
    )


def _wav_file(value: Any) -> str | None:
    # Only the form is checked here: the daemon must never refuse to start (and leave the line
    # unscreened) over a recording; a missing or unreadable one falls back to the spoken text,
    # with an error in the log, and `callguard selftest` reports it.
    if value and not os.path.isabs(str(value)):
        return (
            "must be a full path, e.g. '/etc/callguard/warning.wav' ('~' is not expanded), "
            "or '' for the spoken text"
        )
    return None


def _speakable(value: Any) -> str | None:
    text = str(value).strip()
    if not text:
        return "is empty; write the warning to speak, or leave the key out for the default"
    if len(text) > 600:
        return "is too long to speak before the phone is answered; keep it under 600 characters"
    return None


def _line_speakable(value: Any) -> str | None:
    problem = _speakable(value)
    if problem is None and len(str(value).strip()) > LINE_WARNING_MAX_CHARS:
        return (
            f"is {len(str(value).strip())} characters; keep it to {LINE_WARNING_MAX_CHARS} (about "
            "6 seconds spoken) so the resident is not kept waiting"
        )
    return problem


@dataclass(frozen=True)
class WarningConfig:
    room_command: str = _key(
        "aplay -q {wav}", "plays a WAV in the room; '' = no speaker", _room_command
    )
    line: bool = _key(
        False, "also speak the warning down the line when an unknown call is answered"
    )
    line_text: str = _key(
        DEFAULT_LINE_WARNING,
        "the short warning spoken down the line (under 6 s), separate from the room warning",
        _line_speakable,
        prose=True,
    )
    text: str = _key(DEFAULT_WARNING, "the warning, spoken by espeak-ng", _speakable, prose=True)
    recording: str = _key(
        "", "a WAV of a family member saying the warning, instead of the text", _wav_file
    )
    voice: str = _key("en-gb", "the espeak-ng voice", _voice)
    speed_wpm: int = _number(
        150, "speaking speed in words a minute (espeak-ng's default is 175)", 80, 300
    )
    claim_text: str = _key(
        DEFAULT_CLAIM_WARNING,
        "the stronger warning, for callers whose name claims authority",
        _speakable,
        prose=True,
    )
    say_who: bool = _key(True, "begin with who is calling: 'A call from a withheld number.'")
    say_place: bool = _key(True, "say where a UK number is ('...in Welwyn Garden City')")


def _pin(value: Any) -> str | None:
    if value == -1 or 0 <= value <= 27:
        return None
    return "must be a BCM GPIO number from 0 to 27, or -1 for none"


def _pin_key(default: int, hint: str) -> Any:
    return _key(default, hint, _pin, low=-1, high=27, expect="a BCM GPIO number, or -1 for none")


@dataclass(frozen=True)
class LineSenseConfig:
    source: str = _key(
        "auto",
        "'auto' (the modem's line voltage where it has one, else the line-sense module if "
        "gpio_pin is set, else none), 'gpio', 'modem' (AT-TRV) or 'none'",
        _one_of("auto", "gpio", "modem", "none"),
    )
    off_hook_below_v: float = _number(
        20.0, "modem source: line voltage below this means a phone is off-hook", 5, 45
    )
    gpio_pin: int = _pin_key(-1, "BCM pin of the opto-isolated line-sense module (-1: none fitted)")
    gpio_active_high: bool = _key(True, "gpio source: the pin reads high while the line is on-hook")


@dataclass(frozen=True)
class GroomingConfig:
    minutes: float = _number(15.0, "an unknown call longer than this raises the alert", 0.1, 600)


@dataclass(frozen=True)
class IndicatorsConfig:
    alert_led_pin: int = _pin_key(23, "BCM pin of the grooming alert LED (-1: none)")
    status_led_pin: int = _pin_key(24, "BCM pin of the status LED (-1: none)")
    button_pin: int = _pin_key(25, "BCM pin of the acknowledge button, to ground (-1: none)")


def _listen_host(value: Any) -> str | None:
    if value == "*":
        return None
    try:
        ipaddress.ip_address(str(value))
    except ValueError:
        return (
            "must be '*' (every address, IPv4 and IPv6), '0.0.0.0' (every IPv4 address), or "
            "one address of this Pi such as '127.0.0.1'"
        )
    return None


def _networks(value: Any) -> str | None:
    if not value:
        return "lets no one in; give at least one network, e.g. ['127.0.0.0/8', '::1/128']"
    for text in value:
        try:
            ipaddress.ip_network(text, strict=False)
        except ValueError:
            return (
                f"holds {text!r}, which is not a network; write each as an address and a "
                "prefix length, e.g. '192.168.0.0/16' or 'fe80::/10'"
            )
    return None


LOCAL_NETWORKS = (
    "127.0.0.0/8",
    "::1/128",
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "169.254.0.0/16",
    "fe80::/10",
    "fc00::/7",
)
"""Loopback, the private ranges a home router hands out, and link-local addresses."""


@dataclass(frozen=True)
class WebConfig:
    host: str = _key(
        "*",
        "the address the family page listens on: '*' every address, '127.0.0.1' this Pi only",
        _listen_host,
    )
    port: int = _number(80, "the family page's TCP port (80: just type the Pi's address)", 1, 65535)
    allow_networks: tuple[str, ...] = _key(
        LOCAL_NETWORKS,
        "only clients in these networks are answered (others get 403), even if a router "
        "forwards the port from the internet",
        _networks,
        expect="a list of networks such as ['192.168.0.0/16']",
    )


_URL_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://\S+")
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _apprise_urls(value: Any) -> str | None:
    for text in value:
        if not _URL_SCHEME.fullmatch(str(text)):
            return (
                f"holds {_redacted(str(text))!r}, which is not an apprise URL; write each as a "
                "scheme and an address, e.g. 'mailto://user:app-password@gmail.com' or "
                "'ntfy://ntfy.sh/mum-callguard' (see the README's Carer alerts section)"
            )
    return None


def _redacted(url: str) -> str:
    """A URL with any password or token hidden, for messages (``user:***@host``)."""
    return re.sub(r"(://[^/:@\s]*:)[^@\s]*@", r"\1***@", url)


def _http_url_or_empty(value: Any) -> str | None:
    if value == "" or re.fullmatch(r"https?://[^\s/]+\S*", str(value)):
        return None
    return "must be an http:// or https:// address (e.g. 'https://hc-ping.com/<uuid>'), or ''"


def _weekly(value: Any) -> str | None:
    if value == "" or weekly_time(str(value)) is not None:
        return None
    return "must be a day and a 24-hour time such as 'Sun 18:00', or '' for no weekly summary"


def weekly_time(text: str) -> tuple[int, int, int] | None:
    """``'Sun 18:00'`` as (weekday 0-6 with Monday 0, hour, minute), or None."""
    match = re.fullmatch(r"\s*([A-Za-z]{3})[A-Za-z]*\s+([0-9]{1,2}):([0-9]{2})\s*", text)
    if not match or match.group(1).lower() not in _DAYS:
        return None
    hour, minute = int(match.group(2)), int(match.group(3))
    if hour > 23 or minute > 59:
        return None
    return _DAYS.index(match.group(1).lower()), hour, minute


def _short_name(value: Any) -> str | None:
    text = str(value)
    if len(text) > 30 or any(unicodedata.category(c).startswith("C") for c in text):
        return "must be a short name on one line (up to 30 characters), e.g. 'Mum' or 'Dad'"
    return None


@dataclass(frozen=True)
class AlertsConfig:
    urls: tuple[str, ...] = _key(
        (),
        "where carer alerts go: apprise URLs (e-mail, SMS gateways, Telegram, ntfy, Signal ...)",
        _apprise_urls,
        expect="a list of apprise URLs such as ['mailto://user:app-password@gmail.com']",
    )
    heartbeat_url: str = _key(
        "",
        "pinged every few minutes while the unit is well (a Healthchecks check, say): silence "
        "raises the alarm at the carer's end; '' = none",
        _http_url_or_empty,
    )
    heartbeat_minutes: float = _number(5.0, "minutes between heartbeat pings", 1, 60)
    resident: str = _key(
        "",
        "what the family calls the resident in alerts, e.g. 'Mum' ('' = 'the resident')",
        _short_name,
    )
    grooming: bool = _key(True, "tell the carers when the grooming light comes on, and cleared")
    impersonation: bool = _key(
        True, "tell them when a call pretending to be the police or a bank was blocked"
    )
    repeated_calls: int = _number(
        3,
        "tell them when one unknown number rings this many times within an hour (0: never)",
        0,
        50,
    )
    unit_problem_minutes: float = _number(
        10.0,
        "tell them when the modem has been missing, or screening stopped, this long (0: never)",
        0,
        1440,
    )
    weekly_summary: str = _key(
        "Sun 18:00", "when the weekly summary goes out (a day and a time; '' = never)", _weekly
    )
    expire_hours: float = _number(48.0, "how long an undelivered alert is retried", 1, 168)


def _broker(value: Any) -> str | None:
    if value == "" or re.fullmatch(r"mqtts?://[^\s/:]+(:[0-9]{1,5})?/?", str(value)):
        return None
    return "must be 'mqtts://host:8883', 'mqtt://host:1883' (port optional), or '' for no fleet"


def _unit_id(value: Any) -> str | None:
    if value == "" or re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,62}", str(value)):
        return None
    return (
        "must be lower-case letters, digits, '-' and '_' (up to 63), e.g. 'herts-0042': it is "
        "part of MQTT topic names"
    )


@dataclass(frozen=True)
class FleetConfig:
    broker: str = _key(
        "", "the group's MQTT broker, 'mqtts://host:8883'; '' = no fleet link", _broker
    )
    unit_id: str = _key("", "this unit's name at the broker, e.g. 'herts-0042'", _unit_id)
    username: str = _key("", "the unit's user at the broker ('' = the unit id)")
    password_file: str = _key(
        "",
        "a file holding the unit's broker password (readable only by the service)",
        _full_path_or_empty,
    )
    ca_file: str = _key("", "the CA certificate for mqtts ('' = the system's)", _full_path_or_empty)
    share_numbers: bool = _key(
        False, "put callers' numbers in the events sent to the broker (off: numbers stay home)"
    )
    community: bool = _key(
        False, "report blocked numbers to the group's community list, and use its list"
    )
    community_key: str = _key(
        "",
        "the group's community-list public key (base64 Ed25519, from `callguard hub key`)",
        _public_key,
    )


@dataclass(frozen=True)
class HubConfig:
    """``callguard hub``: the volunteer group's community-list service, next to its broker
    (not on a unit)."""

    broker: str = _key("", "the broker the hub uses, e.g. 'mqtt://127.0.0.1:1883'", _broker)
    username: str = _key("hub", "the hub's user at the broker")
    password_file: str = _key(
        "",
        "a file holding the hub's broker password (readable only by the hub)",
        _full_path_or_empty,
    )
    ca_file: str = _key("", "the CA certificate for mqtts ('' = the system's)", _full_path_or_empty)
    dir: str = _key(
        "/var/lib/callguard-hub", "where the hub keeps its reports and its signing key", _full_path
    )
    threshold: int = _number(
        3, "how many different units must report a number before the list has it", 1, 1000
    )
    window_days: float = _number(30.0, "the reports that count are this recent", 1, 365)
    expire_days: float = _number(
        180.0, "a number no unit has reported for this long leaves the list", 1, 3650
    )


@dataclass(frozen=True)
class BlockConfig:
    hold_s: float = _number(1.5, "seconds a blocked call is held off-hook before release", 0.2, 30)
    announce: bool = _key(
        False, "say a short message to a blocked caller before releasing the line"
    )


@dataclass(frozen=True)
class Config:
    modem: ModemConfig = field(default_factory=ModemConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    screening: ScreeningConfig = field(default_factory=ScreeningConfig)
    warning: WarningConfig = field(default_factory=WarningConfig)
    line_sense: LineSenseConfig = field(default_factory=LineSenseConfig)
    grooming: GroomingConfig = field(default_factory=GroomingConfig)
    block: BlockConfig = field(default_factory=BlockConfig)
    indicators: IndicatorsConfig = field(default_factory=IndicatorsConfig)
    web: WebConfig = field(default_factory=WebConfig)
    alerts: AlertsConfig = field(default_factory=AlertsConfig)
    fleet: FleetConfig = field(default_factory=FleetConfig)
    hub: HubConfig = field(default_factory=HubConfig)
    source: str = field(default="(defaults)", compare=False)


SECTIONS: dict[str, type] = {k: v for k, v in get_type_hints(Config).items() if k != "source"}


class ConfigError(UsageError):
    """One or more problems in a config file; the message lists every one."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.problems = [shown(p) for p in problems]  # keys and values may hold anything
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{shown(source)} has {len(problems)} problem(s):\n{lines}")


_REPR = reprlib.Repr()
_REPR.maxstring = 80
_REPR.maxother = 80
_REPR.maxlevel = 2
_REPR.maxlist = _REPR.maxtuple = _REPR.maxdict = 4


def _describe(value: Any) -> str:
    """A value as a message shows it: short, one line, whatever it is."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int) and value.bit_length() > 200:  # repr of 10**5000 would raise
        return f"a whole number of about {int(value.bit_length() * math.log10(2)) + 1} digits"
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # nan, inf, -inf: as TOML spells them
    if isinstance(value, list):
        return "a list " + _REPR.repr(value)
    if isinstance(value, dict):
        return "a table " + _REPR.repr(value)
    if isinstance(value, dt.date | dt.time):
        return "a date or time " + value.isoformat()
    return _REPR.repr(value)


def _expected(spec: dataclasses.Field[Any], kind: type) -> str:
    meta = spec.metadata
    if meta.get("expect"):
        return str(meta["expect"])
    if meta.get("low") is not None:
        return f"{_TYPE_WORDS[kind]} from {meta['low']:g} to {meta['high']:g}"
    return _TYPE_WORDS[kind]


def _type_problem(name: str, spec: dataclasses.Field[Any], kind: type, value: Any) -> str:
    key = name.rsplit(".", 1)[-1]
    default = _toml_text(spec.default)
    suggestion = f"e.g. {key} = {default} (the default)"
    if isinstance(value, str) and kind in (int, float) and len(value) <= 40:
        try:
            number = float(value.strip().replace("_", ""))
        except ValueError:
            pass
        else:
            if math.isfinite(number):
                suggestion = f"write it without quotes, e.g. {key} = {value.strip()}"
    elif isinstance(value, str) and kind is bool and value.strip().lower() in ("true", "false"):
        suggestion = f"write it without quotes: {key} = {value.strip().lower()}"
    elif kind is str and isinstance(value, int | float) and not isinstance(value, bool):
        suggestion = f'put it in quotes, e.g. {key} = "{_describe(value)}"'
    return (
        f"{name} = {_describe(value)}: expected {_expected(spec, kind)} "
        f"({spec.metadata['hint']}); {suggestion}"
    )


def _coerce(value: Any, kind: type) -> tuple[Any, bool]:
    if kind is bool:
        return value, isinstance(value, bool)
    if kind is int:
        return value, isinstance(value, int) and not isinstance(value, bool)
    if kind is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return value, ok  # an int becomes a float once its range is checked (10**400 cannot)
    if kind == tuple[str, ...]:  # a TOML array of strings, kept as a tuple (frozen config)
        ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
        return (tuple(value) if ok else value), ok
    return value, isinstance(value, str)


def _value_problem(spec: dataclasses.Field[Any], kind: type, value: Any) -> str | None:
    """What is wrong with a value of the right type, or None."""
    meta = spec.metadata
    if kind is float and not math.isfinite(value):
        return f"is not a finite number; give one from {meta['low']:g} to {meta['high']:g}"
    if kind in (int, float) and not meta["low"] <= value <= meta["high"]:
        check: Check | None = meta.get("check")
        if check is not None and (error := check(value)):
            return error  # the key's own words, e.g. the list of serial speeds
        return f"must be between {meta['low']:g} and {meta['high']:g}"
    if kind is str or kind == tuple[str, ...]:
        allowed = "\n\t\r" if meta.get("prose") else ""
        bad = next(
            (
                c
                for c in (value if kind is str else "".join(value))
                if unicodedata.category(c) in ("Cc", "Cs") and c not in allowed
            ),
            None,
        )
        if bad is not None:
            return f"holds the control character {shown(bad)}; remove it" + (
                " (newlines and tabs are fine here)" if allowed else ""
            )
    check = meta.get("check")
    return check(value) if check is not None else None


_TYPE_WORDS = {
    bool: "true or false",
    int: "a whole number",
    float: "a number",
    str: "a quoted string",
    tuple[str, ...]: "a list of quoted strings",
}


def _suggest(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    return f"; did you mean {close[0]}?" if close else ""


def _pin_problems(built: dict[str, Any], bad: set[str]) -> list[str]:
    """GPIO pins used twice: gpiozero refuses the second, and those lights just go dark; and
    a line-sense module that is to be used but has no pin."""
    used: list[tuple[str, int]] = []
    problems: list[str] = []
    sense = built.get("line_sense", LineSenseConfig())
    if sense.source in ("gpio", "auto") and "line_sense.gpio_pin" not in bad:
        if sense.gpio_pin >= 0:
            used.append(("line_sense.gpio_pin", sense.gpio_pin))
        elif sense.source == "gpio":
            problems.append(
                'line_sense.source = "gpio" needs line_sense.gpio_pin, the BCM pin of the '
                "line-sense module (17 in the README's wiring), e.g. gpio_pin = 17; or set "
                'source = "auto" to use the modem\'s line voltage where it has one'
            )
    pins = built.get("indicators", IndicatorsConfig())
    for spec in fields(IndicatorsConfig):
        name = f"indicators.{spec.name}"
        if name not in bad and getattr(pins, spec.name) >= 0:
            used.append((name, getattr(pins, spec.name)))
    for i, (name, pin) in enumerate(used):
        first = next((other for other, p in used[:i] if p == pin), None)
        if first is not None:
            problems.append(
                f"{name} = {pin} is also {first}: each needs its own GPIO pin; "
                "wire it to another, or set -1 for none"
            )
    return problems


def from_dict(data: dict[str, Any], source: str = "(config)") -> Config:
    """Validate parsed TOML; raise :class:`ConfigError` listing every problem."""
    problems: list[str] = []
    bad: set[str] = set()
    built: dict[str, Any] = {}
    all_keys = [f"{s}.{f.name}" for s, t in SECTIONS.items() for f in fields(t)]
    for section, body in data.items():
        section_type = SECTIONS.get(section)
        if section_type is None:
            close = difflib.get_close_matches(section, list(SECTIONS), n=1)
            maybe = f"; did you mean [{close[0]}]?" if close else ""
            problems.append(f"[{section}] is not a section CallGuard knows{maybe}")
            continue
        if not isinstance(body, dict):
            problems.append(f"{section} = {_describe(body)} must be a [{section}] table of keys")
            continue
        hints = get_type_hints(section_type)
        values: dict[str, Any] = {}
        for key, value in body.items():
            spec = next((f for f in fields(section_type) if f.name == key), None)
            name = f"{section}.{key}"
            if spec is None:
                problems.append(
                    f"{name} is not a setting CallGuard knows" + _suggest(name, all_keys)
                )
                continue
            kind = hints[key]
            coerced, ok = _coerce(value, kind)
            if not ok:
                problems.append(_type_problem(name, spec, kind, value))
                bad.add(name)
                continue
            try:
                error = _value_problem(spec, kind, coerced)
            except (ValueError, TypeError, OverflowError, RecursionError) as exc:
                error = f"could not be checked ({type(exc).__name__}: {exc})"
            if error:
                problems.append(
                    f"{name} = {_describe(value)} {error}; "
                    f"the default is {_toml_text(spec.default)}"
                )
                bad.add(name)
                continue
            values[key] = float(coerced) if kind is float else coerced
        built[section] = section_type(**values)
    problems += _pin_problems(built, bad)
    if problems:
        raise ConfigError(source, problems)
    return Config(**built, source=source)


def resolve_path(explicit: str | None) -> Path | None:
    """The file to read: --config, else $CALLGUARD_CONFIG, else /etc/callguard if present."""
    if explicit:
        return Path(explicit)
    env = os.environ.get("CALLGUARD_CONFIG")
    if env:
        return Path(env)
    return DEFAULT_PATH if DEFAULT_PATH.exists() else None


def load(explicit: str | None = None) -> Config:
    """Load and validate the config; raise :class:`ConfigError` (exit 2) on any problem.

    Nothing else: the daemon's SIGHUP reload keeps the old config on a ConfigError, and any
    other exception would stop it.
    """
    path = resolve_path(explicit)
    if path is None:
        return Config()
    source = str(path)
    try:
        raw = read_regular_file(path, max_bytes=MAX_CONFIG_BYTES, what="the config file")
    except FileNotFoundError:
        raise ConfigError(
            source, ["the file does not exist; give the right --config path"]
        ) from None
    except UnreadableFile as exc:
        raise ConfigError(source, [str(exc).removeprefix(f"{source}: ")]) from None
    except ValueError:  # a NUL in the path
        raise ConfigError(source, ["is not a usable path; give the config file's path"]) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise ConfigError(
            source,
            [
                f"is not UTF-8 text (byte 0x{raw[exc.start]:02x} on line {line}); "
                "save it as UTF-8, or start again from the shipped callguard.toml"
            ],
        ) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(source, [f"is not valid TOML: {exc}"]) from None
    except (RecursionError, MemoryError):
        raise ConfigError(
            source,
            [
                "is nested too deeply to read (lists or tables inside each other hundreds "
                "of levels down); no CallGuard setting needs more than one level"
            ],
        ) from None
    except ValueError as exc:  # e.g. an integer of thousands of digits
        raise ConfigError(source, [f"cannot be read as TOML ({exc})"]) from None
    return from_dict(data, source)


# -- writing TOML ------------------------------------------------------------------------------


def render(config: Config) -> str:
    """The effective configuration as TOML, each key with its hint as a comment.

    Printable on a terminal as it is: characters that move the cursor or hide text (controls,
    bidi overrides, line separators, zero-width ones) appear as TOML escapes, which read back
    as the same text.
    """
    import tomlkit

    doc = tomlkit.document()
    doc.add(tomlkit.comment(f"effective configuration from {shown(config.source)}"))
    for section in SECTIONS:
        table = tomlkit.table()
        body = getattr(config, section)
        for spec in fields(body):
            item = tomlkit.item(getattr(body, spec.name))
            item.comment(spec.metadata["hint"])
            item.trivia.comment_ws = "  "
            table.add(spec.name, item)
        doc.add(section, table)
    return _visible(tomlkit.dumps(doc))


def set_value(
    text: str, section: str, key: str, value: Any, source: str = "(config)"
) -> tuple[str, Config]:
    """``text``, a config file, with ``section.key = value``, and the config it makes.

    Every other line, comment and blank line is kept. An existing key is changed where it is
    (its comment kept, in a ``[section]``, an inline table or a dotted key alike); a new key
    goes after its section's last setting; a missing section is added at the end. Raises
    :class:`ConfigError` (nothing to write) if the file cannot be edited or the result would
    not load, saying why.
    """

    def problem(why: str) -> ConfigError:
        return ConfigError(
            source,
            [f"{why}; set {section}.{key} by hand, then check it with: callguard config check"],
        )

    import tomlkit
    from tomlkit.items import AoT, Table

    try:
        doc = tomlkit.parse(text)
    except Exception as exc:  # tomlkit's errors have no common base across its versions
        raise problem(f"cannot be edited, as it is not valid TOML ({exc})") from None
    newline = "\r\n" if "\r\n" in text else "\n"
    item = tomlkit.item(value)
    item.trivia.trail = newline
    table = doc.get(section)
    try:
        if table is None:
            _add_section(doc, section, key, item, newline)
        elif isinstance(table, AoT) or not isinstance(table, dict):
            raise problem(f"[{section}] is not a plain table of settings")
        elif key in table or not isinstance(table, Table):
            table[key] = item
        else:
            _add_key(table, key, item)
        new_text = tomlkit.dumps(doc)
    except ConfigError:
        raise
    except Exception as exc:  # a shape tomlkit cannot edit
        raise problem(f"cannot be edited here ({type(exc).__name__}: {exc})") from None
    try:
        data = tomllib.loads(new_text)
    except tomllib.TOMLDecodeError as exc:
        raise problem(f"would not be valid TOML after the change ({exc})") from None
    written = data.get(section)
    if not isinstance(written, dict) or written.get(key) != value:
        raise problem(f"sets {section}.{key} in a way that cannot be changed here")
    return new_text, from_dict(data, source)


def _add_section(doc: tomlkit.TOMLDocument, section: str, key: str, item: Item, nl: str) -> None:
    import tomlkit

    table = tomlkit.table()
    table.trivia.trail = nl
    before = doc.as_string()
    if before.strip() and not before.endswith(("\n\n", "\r\n\r\n")):
        table.trivia.indent = nl if before.endswith("\n") else nl + nl
    table.append(key, item)
    doc.append(section, table)


def _add_key(table: Table, key: str, item: Item) -> None:
    """``key`` after the table's last setting, before the blank lines and comments that end it
    (which tomlkit keeps with this table, though they introduce what follows it)."""
    from tomlkit.items import AoT, Table

    body = table.value.body
    settings = [k for k, v in body if k is not None and not isinstance(v, Table | AoT)]
    insert_after = getattr(table.value, "_insert_after", None)  # in tomlkit 0.11 to 0.15 at least
    if table.is_super_table() or not settings or settings[-1] is body[-1][0] or not insert_after:
        table.append(key, item)
    else:
        insert_after(settings[-1], key, item)


def _toml_text(value: Any) -> str:
    """A value as TOML source, for messages: ``"guarded"``, ``15.0``, ``true``."""
    import tomlkit

    return _visible(tomlkit.item(value).as_string())


def _visible(toml: str) -> str:
    """TOML text with every character a terminal would obey or hide as a TOML escape.

    Only for TOML written here: its strings are all basic (double-quoted) strings, where an
    escape reads back as the character, and a comment may hold it either way.
    """
    return "".join(_escape(c) if c != "\n" and unsafe(c) else c for c in toml)


def _escape(char: str) -> str:
    code = ord(char)
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def as_dict(config: Config) -> dict[str, Any]:
    data = dataclasses.asdict(config)
    data.pop("source", None)
    return data
