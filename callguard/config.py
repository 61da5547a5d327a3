"""Configuration: a TOML file checked against a schema, every problem reported at once.

Theory of operation
-------------------
The schema is the dataclasses below: one per ``[section]``, one field per key, with its type
and default. A field's metadata may carry a ``check`` (returns an error text or None) and a
``hint`` (what a good value looks like). :func:`load` reads the file, walks every section and
key, and collects *all* problems (unknown sections and keys with the closest known name,
wrong types, bad values) before raising one :class:`ConfigError` that lists them with
``section.key``, the value, and the fix. Every key has a default, so an empty or missing file
is a valid configuration; :func:`render` prints the effective one as TOML.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, get_type_hints

from callguard.errors import UsageError
from callguard.texts import DEFAULT_CLAIM_WARNING, DEFAULT_WARNING

DEFAULT_PATH = Path("/etc/callguard/callguard.toml")

Check = Callable[[Any], str | None]


def _key(default: Any, hint: str, check: Check | None = None) -> Any:
    return field(default=default, metadata={"hint": hint, "check": check})


def _one_of(*choices: str) -> Check:
    def check(value: Any) -> str | None:
        if value in choices:
            return None
        close = difflib.get_close_matches(str(value), choices, n=1)
        maybe = f" (did you mean {close[0]!r}?)" if close else ""
        return "must be one of " + ", ".join(repr(c) for c in choices) + maybe

    return check


def _at_least(low: float, high: float | None = None) -> Check:
    def check(value: Any) -> str | None:
        if value < low or (high is not None and value > high):
            return (
                f"must be between {low:g} and {high:g}"
                if high is not None
                else f"must be {low:g} or more"
            )
        return None

    return check


def _region(value: Any) -> str | None:
    import phonenumbers

    if value in phonenumbers.SUPPORTED_REGIONS:
        return None
    if str(value).upper() in phonenumbers.SUPPORTED_REGIONS:
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
    if value and "{wav}" not in value:
        return (
            "must contain {wav} where the sound file's path goes, e.g. 'aplay -q {wav}', or be ''"
        )
    return None


def _clock_range(value: Any) -> str | None:
    if value == "":
        return None
    parts = str(value).split("-")
    try:
        if len(parts) != 2:
            raise ValueError
        for part in parts:
            hours, minutes = part.strip().split(":")
            if not (0 <= int(hours) < 24 and 0 <= int(minutes) < 60):
                raise ValueError
    except ValueError:
        return "must be two times like '21:00-08:00', or '' for none"
    return None


_ACTIONS = ("allow", "warn", "block")


@dataclass(frozen=True)
class ModemConfig:
    port: str = _key(
        "/dev/callguard-modem", "a device path such as /dev/ttyACM0, or any pyserial URL"
    )
    profile: str = _key(
        "auto",
        "'auto' identifies the modem by ATI0",
        _one_of("auto", "usr5637", "conexant", "generic"),
    )
    country: str = _key("GB", "the line's country, GB for the UK", _country)
    baudrate: int = _key(115200, "the serial speed; USB modems ignore it", _at_least(300))
    health_check_s: float = _key(
        30.0, "seconds between checks that the modem still answers", _at_least(1)
    )


@dataclass(frozen=True)
class StorageConfig:
    dir: str = _key("/var/lib/callguard", "where the lists, the call log and the status live")
    log_retention_days: int = _key(365, "days of call log kept", _at_least(1))


@dataclass(frozen=True)
class ScreeningConfig:
    region: str = _key("GB", "how national numbers are read", _region)
    mode: str = _key(
        "guarded",
        "'open' (unknown rings, no warning), 'guarded' (warned), 'allowlist-only' (blocked)",
        _one_of("open", "guarded", "allowlist-only"),
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
    )
    quiet_hours: str = _key(
        "", "unknown callers blocked in these hours, e.g. '21:00-08:00'", _clock_range
    )


def _wav_file(value: Any) -> str | None:
    # Only the form is checked here: the daemon must never refuse to start (and leave the line
    # unscreened) over a recording; a missing or unreadable one falls back to the spoken text,
    # with an error in the log, and `callguard selftest` reports it.
    if value and not os.path.isabs(os.path.expanduser(str(value))):
        return "must be a full path, e.g. '/etc/callguard/warning.wav', or '' for the spoken text"
    return None


def _speakable(value: Any) -> str | None:
    text = str(value).strip()
    if not text:
        return "is empty; write the warning to speak, or leave the key out for the default"
    if len(text) > 600:
        return "is too long to speak before the phone is answered; keep it under 600 characters"
    return None


@dataclass(frozen=True)
class WarningConfig:
    room_command: str = _key(
        "aplay -q {wav}", "plays a WAV in the room; '' = no speaker", _room_command
    )
    line: bool = _key(
        False, "also speak the warning down the line when an unknown call is answered"
    )
    text: str = _key(DEFAULT_WARNING, "the warning, spoken by espeak-ng", _speakable)
    recording: str = _key(
        "", "a WAV of a family member saying the warning, instead of the text", _wav_file
    )
    voice: str = _key("en-gb", "the espeak-ng voice")
    speed_wpm: int = _key(
        150, "speaking speed in words a minute (espeak-ng's default is 175)", _at_least(80, 300)
    )
    claim_text: str = _key(
        DEFAULT_CLAIM_WARNING,
        "the stronger warning, for callers whose name claims authority",
        _speakable,
    )
    say_who: bool = _key(True, "begin with who is calling: 'A call from a withheld number.'")
    say_place: bool = _key(
        True, "say where a UK number is ('...in Welwyn Garden City'); costs ~100 MB of memory"
    )


@dataclass(frozen=True)
class LineSenseConfig:
    source: str = _key(
        "none", "'gpio', 'modem' (AT-TRV) or 'none'", _one_of("gpio", "modem", "none")
    )
    off_hook_below_v: float = _key(
        20.0, "modem source: line voltage below this means a phone is off-hook", _at_least(1, 60)
    )
    gpio_pin: int = _key(
        17, "gpio source: the BCM pin of the opto-isolated line sensor", _at_least(0, 27)
    )
    gpio_active_high: bool = _key(True, "gpio source: the pin reads high while the line is on-hook")


@dataclass(frozen=True)
class GroomingConfig:
    minutes: float = _key(15.0, "an unknown call longer than this raises the alert", _at_least(0.1))


def _pin(value: Any) -> str | None:
    if value == -1 or 0 <= value <= 27:
        return None
    return "must be a BCM GPIO number from 0 to 27, or -1 for none"


@dataclass(frozen=True)
class IndicatorsConfig:
    alert_led_pin: int = _key(23, "BCM pin of the grooming alert LED (-1: none)", _pin)
    status_led_pin: int = _key(24, "BCM pin of the status LED (-1: none)", _pin)
    button_pin: int = _key(25, "BCM pin of the acknowledge button, to ground (-1: none)", _pin)


@dataclass(frozen=True)
class BlockConfig:
    hold_s: float = _key(
        1.5, "seconds a blocked call is held off-hook before release", _at_least(0.2, 30)
    )
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
    source: str = field(default="(defaults)", compare=False)


SECTIONS: dict[str, type] = {k: v for k, v in get_type_hints(Config).items() if k != "source"}


class ConfigError(UsageError):
    """One or more problems in a config file; the message lists every one."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{source} has {len(problems)} problem(s):\n{lines}")


def _describe(value: Any) -> str:
    return repr(value) if not isinstance(value, bool) else str(value).lower()


def _coerce(value: Any, kind: type) -> tuple[Any, bool]:
    if kind is bool:
        return value, isinstance(value, bool)
    if kind is int:
        return value, isinstance(value, int) and not isinstance(value, bool)
    if kind is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return (float(value) if ok else value), ok
    return value, isinstance(value, str)


_TYPE_WORDS = {
    bool: "true or false",
    int: "a whole number",
    float: "a number",
    str: "a quoted string",
}


def _suggest(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    return f"; did you mean {close[0]}?" if close else ""


def from_dict(data: dict[str, Any], source: str = "(config)") -> Config:
    """Validate parsed TOML; raise :class:`ConfigError` listing every problem."""
    problems: list[str] = []
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
            if spec is None:
                problems.append(
                    f"{section}.{key} is not a setting CallGuard knows"
                    + _suggest(f"{section}.{key}", all_keys)
                )
                continue
            kind = hints[key]
            coerced, ok = _coerce(value, kind)
            if not ok:
                problems.append(
                    f"{section}.{key} = {_describe(value)}: expected {_TYPE_WORDS[kind]} "
                    f"({spec.metadata['hint']}); default {_describe(spec.default)}"
                )
                continue
            check: Check | None = spec.metadata.get("check")
            error = check(coerced) if check else None
            if error:
                problems.append(f"{section}.{key} = {_describe(value)} {error}")
                continue
            values[key] = coerced
        built[section] = section_type(**values)
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
    """Load and validate the config; raise :class:`ConfigError` (exit 2) on any problem."""
    path = resolve_path(explicit)
    if path is None:
        return Config()
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(
            str(path), ["the file does not exist; give the right --config path"]
        ) from None
    except OSError as exc:
        raise ConfigError(str(path), [f"cannot be read ({exc.strerror})"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), [f"is not valid TOML: {exc}"]) from None
    return from_dict(data, str(path))


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return repr(value)


def render(config: Config) -> str:
    """The effective configuration as TOML, each key with its hint as a comment."""
    out = [f"# effective configuration from {config.source}"]
    for section in SECTIONS:
        out.append(f"\n[{section}]")
        body = getattr(config, section)
        for spec in fields(body):
            value = getattr(body, spec.name)
            out.append(f"{spec.name} = {_toml_value(value)}  # {spec.metadata['hint']}")
    return "\n".join(out) + "\n"


def as_dict(config: Config) -> dict[str, Any]:
    data = dataclasses.asdict(config)
    data.pop("source", None)
    return data
