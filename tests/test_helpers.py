"""The tests' own config writer: what it writes, tomllib and the config loader read back."""

from __future__ import annotations

import math
import tomllib
from pathlib import Path

import pytest
from helpers import merged, toml_text, write_config

from callguard.config import load


def test_every_kind_of_value_reads_back_as_written() -> None:
    data = {
        "warning": {
            "text": 'Say "no".\tBack\\slash, a bell \x07, a line\nend, and ünïcode ✓',
            "say_place": False,
            "speed_wpm": 150,
            "room_command": "",
        },
        "odd keys": {"a.b": 1.5, "with space": -2, "tiny": 1e-05, "list": ["x", 2, 3.0, True]},
    }
    assert tomllib.loads(toml_text(data)) == data


def test_non_finite_floats_and_tuples() -> None:
    read = tomllib.loads(toml_text({"s": {"inf": -math.inf, "nan": math.nan, "t": (1, 2)}}))
    assert read["s"]["inf"] == -math.inf and math.isnan(read["s"]["nan"])
    assert read["s"]["t"] == [1, 2]


def test_what_toml_cannot_hold_is_refused() -> None:
    with pytest.raises(TypeError, match="table of keys"):
        toml_text({"modem": "port"})  # type: ignore[dict-item]
    with pytest.raises(TypeError, match="cannot hold"):
        toml_text({"modem": {"port": None}})


def test_a_written_config_loads(tmp_path: Path) -> None:
    data = merged(
        {"storage": {"dir": str(tmp_path / 'a dir with "quotes" and \\')}, "grooming": {}},
        {"grooming": {"minutes": 0.5}, "screening": {"mode": "open"}},
    )
    config = load(str(write_config(tmp_path / "callguard.toml", data)))
    assert config.storage.dir == str(tmp_path / 'a dir with "quotes" and \\')
    assert config.grooming.minutes == 0.5 and config.screening.mode == "open"
