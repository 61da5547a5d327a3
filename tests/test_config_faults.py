"""Config values and files that used to pass `config check` and then broke the daemon.

Every key of the schema is walked, so a key added later is covered without touching this file:
each hostile value is either accepted because it really is valid for that key, or rejected with
a message naming ``section.key``, the value and a suggestion, and `config check` exits 2.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shlex
import threading
import tomllib
from dataclasses import fields
from pathlib import Path
from typing import Any, get_type_hints

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callguard import config
from callguard.cli import main
from callguard.texts import unsafe

KEYS: list[tuple[str, str, type]] = [
    (section, spec.name, get_type_hints(kind)[spec.name])
    for section, kind in config.SECTIONS.items()
    for spec in fields(kind)
]
NUMERIC_KEYS = [(s, k, t) for s, k, t in KEYS if t in (int, float)]

HOSTILE: dict[str, Any] = {
    "nan": math.nan,
    "inf": math.inf,
    "-inf": -math.inf,
    "negative": -1,
    "negative-fraction": -2.5,
    "zero": 0,
    "huge-float": 1e300,
    "huge-int": 10**30,
    "huge-negative-int": -(10**30),
    "string": "x",
    "numeric-string": "15",
    "empty-string": "",
    "bool": True,
    "list": [1],
    "table": {"a": 1},
}

PINS = {
    "indicators.alert_led_pin",
    "indicators.status_led_pin",
    "indicators.button_pin",
    "line_sense.gpio_pin",  # -1: no line-sense module fitted
}
# GPIO0 is a pin like any other; a count or minutes of 0 switch an alert off
ZERO_IS_VALID = PINS | {"alerts.repeated_calls", "alerts.unit_problem_minutes"}

VALID_STRINGS: dict[str, set[str]] = {
    # Strings that pass the form checks on purpose: any text is a valid warning or word list,
    # and an espeak-ng voice is only known to exist on the unit itself (selftest checks it).
    "warning.text": {"x", "15"},
    "warning.line_text": {"x", "15"},
    "warning.claim_text": {"x", "15"},
    "warning.voice": {"x", "15"},
    "screening.claim_words": {"x", "15", ""},
    # A modem country may be given as its two-digit T.35 hex code (GB is B4).
    "modem.country": {"15"},
    # "" switches the thing off.
    "warning.room_command": {""},
    "warning.recording": {""},
    "screening.quiet_hours": {""},
    "alerts.heartbeat_url": {""},
    "alerts.weekly_summary": {""},
    "fleet.broker": {""},
    "fleet.password_file": {""},
    "fleet.ca_file": {""},
    "fleet.community_key": {""},
    # a unit id is letters and digits; a broker user name is whatever the broker has
    "fleet.unit_id": {"x", "15", ""},
    "alerts.resident": {"x", "15", ""},
    "fleet.username": {"x", "15", ""},
    "hub.username": {"x", "15", ""},
    "hub.broker": {""},
    "hub.password_file": {""},
    "hub.ca_file": {""},
}


def really_valid(name: str, kind: type, value: Any) -> bool:
    if kind is bool:
        return isinstance(value, bool)
    if kind is str:
        return isinstance(value, str) and value in VALID_STRINGS.get(name, set())
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    if kind is int and isinstance(value, float):
        return False
    return (name in PINS and value == -1) or (name in ZERO_IS_VALID and value == 0)


def toml_literal(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    if isinstance(value, float) and math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if isinstance(value, str):  # JSON's escapes are TOML's, except that TOML wants DEL escaped
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(value, list):
        return "[" + ", ".join(toml_literal(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {toml_literal(v)}" for k, v in value.items()) + "}"
    return repr(value)


def described(value: Any) -> str:
    """How the message must show the value."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a table"
    return repr(value) if not isinstance(value, float) or math.isfinite(value) else str(value)


KEY_IDS = [f"{s}.{k}" for s, k, _ in KEYS]


def rejection(section: str, key: str, value: Any) -> config.ConfigError | None:
    try:
        config.from_dict({section: {key: value}})
    except config.ConfigError as exc:
        return exc
    return None


@pytest.mark.parametrize(("section", "key", "kind"), KEYS, ids=KEY_IDS)
def test_every_key_accepts_only_what_the_daemon_can_use(
    section: str, key: str, kind: type, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    name = f"{section}.{key}"
    wrongly = []
    for label, value in HOSTILE.items():
        accepted = rejection(section, key, value) is None
        if accepted != really_valid(name, kind, value):
            wrongly.append((label, "accepted" if accepted else "rejected"))
    assert wrongly == [], name
    path = tmp_path / "callguard.toml"
    for label, value in HOSTILE.items():
        if really_valid(name, kind, value):
            got = getattr(getattr(config.from_dict({section: {key: value}}), section), key)
            assert got == value and type(got) is kind, (name, label)
            continue
        path.write_text(f"[{section}]\n{key} = {toml_literal(value)}\n")
        capsys.readouterr()
        assert main(["--config", str(path), "config", "check"]) == 2, (name, label)
        out, err = capsys.readouterr()
        assert out == "" and f"  - {name} = " in err, (name, label, err)


@pytest.mark.parametrize(("section", "key", "kind"), KEYS, ids=KEY_IDS)
def test_every_rejection_names_the_key_the_value_and_a_suggestion(
    section: str, key: str, kind: type
) -> None:
    for label, value in HOSTILE.items():
        exc = rejection(section, key, value)
        if exc is None:
            continue  # whether it should have been is the test above
        assert len(exc.problems) == 1, (label, exc.problems)
        problem = exc.problems[0]
        assert problem.startswith(f"{section}.{key} = {described(value)}"), (label, problem)
        assert "default" in problem or "e.g." in problem, (label, problem)


@pytest.mark.parametrize(
    ("section", "key", "kind"), NUMERIC_KEYS, ids=[f"{s}.{k}" for s, k, _ in NUMERIC_KEYS]
)
def test_every_number_has_a_lower_and_an_upper_bound(section: str, key: str, kind: type) -> None:
    spec = next(f for f in fields(config.SECTIONS[section]) if f.name == key)
    low, high = spec.metadata["low"], spec.metadata["high"]
    assert math.isfinite(low) and math.isfinite(high) and low < high <= 10**7
    assert low <= spec.default <= high
    step = 1 if kind is int else (high - low) / 1000
    for value in (low, high):
        assert getattr(getattr(config.from_dict({section: {key: value}}), section), key) == value
    for value in (low - step, high + step):
        with pytest.raises(config.ConfigError, match=rf"{section}\.{key} = "):
            config.from_dict({section: {key: value}})


@pytest.mark.parametrize(
    ("section", "key", "value", "fragment"),
    [
        ("block", "hold_s", math.nan, "is not a finite number; give one from 0.2 to 30"),
        ("grooming", "minutes", math.inf, "is not a finite number; give one from 0.1 to 600"),
        ("grooming", "minutes", 601, "must be between 0.1 and 600"),
        ("storage", "log_retention_days", 1_000_000, "must be between 1 and 3650"),
        ("modem", "baudrate", 10**12, "is not a standard serial speed"),
        ("modem", "baudrate", 115201, "the nearest is 115200"),
        ("modem", "health_check_s", 1e300, "must be between 5 and 600"),
        ("line_sense", "off_hook_below_v", 0.5, "must be between 5 and 45"),
        ("warning", "speed_wpm", True, "expected a whole number from 80 to 300"),
        ("grooming", "minutes", "20", "write it without quotes, e.g. minutes = 20"),
        ("warning", "line", "true", "write it without quotes: line = true"),
        ("modem", "port", 5, 'put it in quotes, e.g. port = "5"'),
        ("modem", "baudrate", 9600.0, "expected a standard serial speed such as 115200"),
        ("indicators", "button_pin", 28, "from 0 to 27, or -1 for none"),
        ("storage", "dir", "state", "must be a full path"),
        ("warning", "recording", "~/warning.wav", "'~' is not expanded"),
        ("warning", "voice", "en gb", "espeak-ng voice name"),
        ("warning", "text", "Hello\x00there", "control character \\x00"),
        ("modem", "port", "/dev/ttyACM0\n", "control character \\n"),
        ("screening", "quiet_hours", "\u0662\u0661:\u0660\u0660-8:00", "two times like"),
    ],
)
def test_bad_values_say_what_is_expected(section: str, key: str, value: Any, fragment: str) -> None:
    with pytest.raises(config.ConfigError) as exc:
        config.from_dict({section: {key: value}})
    assert f"{section}.{key} = " in str(exc.value)
    assert fragment in str(exc.value)


@pytest.mark.parametrize(
    "command",
    ["aplay '{wav}", 'aplay -D "plughw:1,0 {wav}', "aplay \\", "{wav}", "aplay -q", "aplay {WAV}"],
)
def test_room_command_is_split_as_the_daemon_splits_it(command: str) -> None:
    with pytest.raises(config.ConfigError, match=r"warning\.room_command = "):
        config.from_dict({"warning": {"room_command": command}})


@pytest.mark.parametrize(
    "command", ["", "   ", "aplay -q {wav}", "aplay -D 'plughw:1,0' {wav}", "play {wav} gain -3"]
)
def test_room_commands_that_run(command: str) -> None:
    loaded = config.from_dict({"warning": {"room_command": command}})
    assert loaded.warning.room_command == command
    shlex.split(command)  # what RoomSpeaker does with it, at start and on SIGHUP


def test_room_command_with_an_unbalanced_quote_is_explained() -> None:
    with pytest.raises(config.ConfigError) as exc:
        config.from_dict({"warning": {"room_command": "aplay -D 'plughw:1,0 {wav}"}})
    text = str(exc.value)
    assert "no closing quotation" in text and "check its quotes" in text


def test_a_pin_used_twice_is_reported() -> None:
    with pytest.raises(config.ConfigError) as exc:
        config.from_dict({"indicators": {"button_pin": 23}})
    assert exc.value.problems == [
        "indicators.button_pin = 23 is also indicators.alert_led_pin: each needs its own GPIO "
        "pin; wire it to another, or set -1 for none"
    ]
    with pytest.raises(
        config.ConfigError, match=r"indicators\.status_led_pin = 24 is also line_sense\.gpio_pin"
    ):
        config.from_dict({"line_sense": {"source": "gpio", "gpio_pin": 24}})
    # Not in use: no conflict; -1 is "none", not a pin.
    config.from_dict({"line_sense": {"source": "modem", "gpio_pin": 24}})
    config.from_dict({"indicators": {"alert_led_pin": -1, "status_led_pin": -1}})


def test_line_sense_pins_auto_uses_the_module_pin_and_gpio_needs_one() -> None:
    # "auto" uses the module when the modem cannot sense the line: its pin must be free too
    with pytest.raises(
        config.ConfigError, match=r"indicators\.alert_led_pin = 23 is also line_sense\.gpio_pin"
    ):
        config.from_dict({"line_sense": {"gpio_pin": 23}})
    assert config.from_dict({"line_sense": {"gpio_pin": 17}}).line_sense.gpio_pin == 17
    # no module (the default): nothing to clash with, and "auto" needs none
    assert config.from_dict({"line_sense": {"source": "auto"}}).line_sense.gpio_pin == -1
    with pytest.raises(config.ConfigError) as exc:
        config.from_dict({"line_sense": {"source": "gpio"}, "grooming": {"minutes": 0}})
    assert exc.value.problems[-1] == (
        'line_sense.source = "gpio" needs line_sense.gpio_pin, the BCM pin of the line-sense '
        'module (17 in the README\'s wiring), e.g. gpio_pin = 17; or set source = "auto" to '
        "use the modem's line voltage where it has one"
    )
    assert len(exc.value.problems) == 2  # every problem at once
    # a bad pin is reported as itself, not also as missing
    with pytest.raises(config.ConfigError) as exc:
        config.from_dict({"line_sense": {"source": "gpio", "gpio_pin": 28}})
    assert [p.split(" = ")[0] for p in exc.value.problems] == ["line_sense.gpio_pin"]


def test_a_bad_pin_is_reported_once_not_also_as_a_clash() -> None:
    with pytest.raises(config.ConfigError) as exc:
        config.from_dict({"indicators": {"button_pin": 99, "status_led_pin": 23}})
    assert [p.split(" = ")[0] for p in exc.value.problems] == [
        "indicators.button_pin",
        "indicators.status_led_pin",
    ]


# -- files the TOML parser cannot take, and files that are not files --------------------------


def _deep(n: int) -> str:
    return "a = " + "[" * n + "]" * n + "\n"


BAD_FILES: dict[str, tuple[bytes, str]] = {
    "latin-1": ('[warning]\ntext = "Caf\xe9"\n'.encode("latin-1"), "is not UTF-8 text"),
    "deep-list": (_deep(100_000).encode(), "nested too deeply"),
    "deep-table": (
        ("a = " + "{b = " * 100_000 + "1" + "}" * 100_000 + "\n").encode(),
        "nested too deeply",
    ),
    "long-integer": (b"[grooming]\nminutes = " + b"9" * 5000 + b"\n", "cannot be read as TOML"),
    "too-big": (b"# " + b"x" * 1_000_000 + b"\n", "more than the 1,000,000 allowed"),
    "not-toml": (b"[grooming\n", "is not valid TOML"),
    "nan-hold": (b"[block]\nhold_s = nan\n", "block.hold_s = nan"),
    "unbalanced-quote": (b'[warning]\nroom_command = "aplay \'{wav}"\n', "room_command"),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_bad_files_are_config_errors_only(case: str, tmp_path: Path) -> None:
    """The daemon's SIGHUP reload catches ConfigError; anything else would stop it."""
    content, fragment = BAD_FILES[case]
    path = tmp_path / "callguard.toml"
    path.write_bytes(content)
    with pytest.raises(config.ConfigError) as exc:
        config.load(str(path))
    assert fragment in str(exc.value)
    assert len(str(exc.value)) < 2000  # no file contents or Python internals poured out


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_config_check_exits_2_on_bad_files(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    content, fragment = BAD_FILES[case]
    path = tmp_path / "callguard.toml"
    path.write_bytes(content)
    assert main(["--config", str(path), "config", "check"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and fragment in err and "Traceback" not in err


def test_a_fifo_is_refused_without_waiting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fifo = tmp_path / "callguard.toml"
    os.mkfifo(fifo)
    codes: list[int] = []
    runner = threading.Thread(
        target=lambda: codes.append(main(["--config", str(fifo), "config", "check"])),
        daemon=True,
    )
    runner.start()
    runner.join(20)
    if runner.is_alive():  # release the blocked open, then fail
        fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        os.close(fd)
        runner.join(5)
        pytest.fail("config check waited for a writer on a FIFO")
    assert codes == [2]
    assert "a pipe (FIFO), not an ordinary file" in capsys.readouterr().err


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/null"])
def test_a_device_is_refused(device: str, capsys: pytest.CaptureFixture[str]) -> None:
    if not os.path.exists(device):
        pytest.skip(f"{device} is not on this machine")
    assert main(["--config", device, "config", "check"]) == 2
    assert "character device" in capsys.readouterr().err


def test_a_folder_and_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(config.ConfigError, match="is a folder"):
        config.load(str(tmp_path))
    with pytest.raises(config.ConfigError, match="does not exist"):
        config.load(str(tmp_path / "missing.toml"))


# -- config check prints TOML that reads back as the same config -----------------------------

TRICKY_TEXT = (
    'Line one.\nLine "two" with \\backslashes\\ and \\n not a newline;\ttab\r\n'
    "right-to-left \u202eKNAB\u202c, separator \u2028, zero-width \u200b, tag \U000e0041."
)


def test_config_check_output_round_trips_tricky_text(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "callguard.toml"
    path.write_text(
        f"[warning]\ntext = {toml_literal(TRICKY_TEXT)}\n"
        f"claim_text = '''\nA literal\nmulti-line 'text' with \\ in it.'''\n",
        encoding="utf-8",
    )
    loaded = config.load(str(path))
    assert loaded.warning.text == TRICKY_TEXT
    assert main(["--config", str(path), "config", "check"]) == 0
    out = capsys.readouterr().out
    assert "\u202e" not in out and "\u2028" not in out  # shown as \u202e, \u2028
    assert config.from_dict(tomllib.loads(out)) == loaded


def test_render_escapes_every_control_character() -> None:
    every_control = "".join(chr(c) for c in [*range(0x20), 0x7F, *range(0x80, 0xA0)])
    weird = dataclasses.replace(
        config.Config(),
        warning=dataclasses.replace(config.WarningConfig(), text=every_control + '"\\\u2029'),
        source="odd\nname\x1b.toml",
    )
    text = config.render(weird)
    assert tomllib.loads(text)["warning"]["text"] == weird.warning.text
    assert text.count("\n") == config.render(config.Config()).count("\n")  # no line split


@given(st.text(st.characters(exclude_categories=["Cs"]), max_size=60))
@settings(max_examples=300, deadline=None)
def test_render_round_trips_any_text_and_prints_nothing_a_terminal_obeys(text: str) -> None:
    weird = dataclasses.replace(
        config.Config(),
        warning=dataclasses.replace(config.WarningConfig(), text=text, recording=text[::-1]),
    )
    out = config.render(weird)
    assert not [c for c in out if c != "\n" and unsafe(c)]
    read = tomllib.loads(out)["warning"]
    assert (read["text"], read["recording"]) == (text, text[::-1])
