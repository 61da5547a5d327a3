"""Config: every problem reported at once, with section.key, the value and the fix."""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import fields
from pathlib import Path

import pytest

from callguard import config
from callguard.cli import main
from callguard.core import screening

SHIPPED = Path(__file__).resolve().parent.parent / "config" / "callguard.toml"


def test_shipped_example_is_exactly_the_defaults() -> None:
    data = tomllib.loads(SHIPPED.read_text())
    assert config.from_dict(data) == config.Config()
    for section, kind in config.SECTIONS.items():
        assert set(data[section]) == {f.name for f in fields(kind)}, section


def test_design_keys_exist_with_their_documented_defaults() -> None:
    c = config.Config()
    assert c.modem.port and c.storage.dir == "/var/lib/callguard"
    assert c.screening.region == "GB"
    assert c.warning.room_command == "aplay -q {wav}" and c.warning.line is False
    assert c.line_sense.source == "auto" and c.grooming.minutes == 15
    assert c.line_sense.gpio_pin == -1  # no line-sense module unless one is set


def test_every_problem_at_once_with_suggestions() -> None:
    with pytest.raises(config.ConfigError) as exc:
        config.from_dict(
            {
                "modme": {"port": "x"},
                "modem": {"prot": "/dev/ttyACM0", "profile": "zoom"},
                "grooming": {"minutes": "ten"},
                "warning": {"room_command": "aplay", "line": 1},
                "screening": {"region": "gb", "mode": "guardd", "quiet_hours": "9pm"},
                "line_sense": {"source": "modme"},
            },
            "test.toml",
        )
    problems = exc.value.problems
    text = str(exc.value)
    assert len(problems) == 10, problems
    assert "test.toml has 10 problem(s)" in text
    assert "did you mean [modem]?" in text
    assert "modem.prot is not a setting CallGuard knows; did you mean modem.port?" in text
    assert "modem.profile = 'zoom'" in text
    assert "grooming.minutes = 'ten': expected a number" in text
    assert "warning.room_command = 'aplay' must contain {wav}" in text
    assert "warning.line = 1: expected true or false" in text
    assert "screening.region = 'gb' must be in capitals: 'GB'" in text
    assert "screening.mode = 'guardd' must be one of" in text and "did you mean 'guarded'" in text
    assert "screening.quiet_hours = '9pm'" in text
    assert "line_sense.source = 'modme'" in text and "did you mean 'modem'" in text


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ({"grooming": {"minutes": 0}}, "must be between 0.1 and 600"),
        ({"block": {"hold_s": 60}}, "must be between 0.2 and 30"),
        ({"modem": {"country": "UK"}}, "modem.country = 'UK' is not a country"),
        ({"modem": "x"}, "must be a [modem] table"),
        ({"screening": {"quiet_hours": "25:00-08:00"}}, "two times like"),
    ],
)
def test_bad_values(data: dict[str, object], fragment: str) -> None:
    with pytest.raises(config.ConfigError, match=fragment.replace("[", r"\[").replace("]", r"\]")):
        config.from_dict(data)


def test_integers_are_accepted_for_floats() -> None:
    assert config.from_dict({"grooming": {"minutes": 20}}).grooming.minutes == 20.0


def test_config_check_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "good.toml"
    good.write_text('[grooming]\nminutes = 0.5\n[storage]\ndir = "/tmp/x"\n')
    assert main(["--config", str(good), "config", "check"]) == 0
    out = capsys.readouterr().out
    assert "minutes = 0.5" in out and 'dir = "/tmp/x"' in out
    tomllib.loads(out)  # the effective config is itself valid TOML

    bad = tmp_path / "bad.toml"
    bad.write_text("[grooming]\nminutes = 'soon'\n[modem]\nport = \n")
    assert main(["--config", str(bad), "config", "check"]) == 2
    assert "not valid TOML" in capsys.readouterr().err

    bad.write_text("[grooming]\nminutes = 'soon'\n[modem]\nprofile = 'x'\n")
    assert main(["--config", str(bad), "config", "check"]) == 2
    err = capsys.readouterr().err
    assert "grooming.minutes" in err and "modem.profile" in err

    assert main(["--config", str(tmp_path / "missing.toml"), "config", "check"]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_the_screening_settings_are_the_ones_screening_understands() -> None:
    """One vocabulary: the config accepts exactly the names screening's tables act on."""
    for mode in screening.MODE_ACTIONS:
        assert config.from_dict({"screening": {"mode": mode}}).screening.mode == mode
    for key in screening.CATEGORY_SETTINGS.values():
        for setting in screening.SETTING_ACTIONS:
            assert config.from_dict({"screening": {key: setting}}).screening == dataclasses.replace(
                config.ScreeningConfig(), **{key: setting}
            )
    with pytest.raises(config.ConfigError) as exc:
        config.from_dict({"screening": {"mode": "strict", "withheld": "ignore"}})
    text = str(exc.value)
    assert all(repr(mode) in text for mode in screening.MODE_ACTIONS)
    assert all(repr(setting) in text for setting in screening.SETTING_ACTIONS)


def test_render_gives_every_key_with_its_hint_as_a_comment() -> None:
    out = config.render(config.Config())
    for section, kind in config.SECTIONS.items():
        body = out.split(f"[{section}]\n", 1)[1].split("\n\n", 1)[0].splitlines()
        assert [line.split(" = ", 1)[0] for line in body] == [f.name for f in fields(kind)]
        for line, spec in zip(body, fields(kind), strict=True):
            assert line.endswith(f"  # {spec.metadata['hint']}"), line
    assert config.from_dict(tomllib.loads(out)) == config.Config()
