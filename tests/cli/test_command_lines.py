"""The command lines of wave 1 still work after the package moved (issue 12): every command and
option the README, the installer and outside checks use, parsed and, where it needs no modem,
run against a scratch store."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from callguard.cli import build_parser, main

OLD_COMMAND_LINES = [
    ["run"],
    ["demo"],
    ["demo", "--fast"],
    ["log"],
    ["log", "--json", "--limit", "20"],
    ["status"],
    ["status", "--json"],
    ["ack"],
    ["ack", "--by", "Sue"],
    ["selftest"],
    ["selftest", "--json", "--no-sound", "--button-timeout", "0"],
    ["setup"],
    ["config", "check"],
    ["config", "check", "--json"],
    *[
        argv
        for name in ("allow", "block", "protect")
        for argv in (
            [name, "add", "01707 354000", "--name", "GP", "--note", "n", "--by", "me", "--force"],
            [name, "add", "01707", "--prefix"],
            [name, "remove", "01707 354000"],
            [name, "remove", "01707", "--prefix"],
            [name, "list"],
            [name, "list", "--json"],
            [name, "import", "contacts.csv", "--skip-invalid", "--prefix", "--force", "--by", "x"],
        )
    ],
]


@pytest.mark.parametrize("argv", OLD_COMMAND_LINES, ids=" ".join)
def test_every_old_command_line_still_parses(argv: list[str]) -> None:
    args = build_parser().parse_args(["--config", "/tmp/c.toml", "--debug", *argv])
    assert callable(args.func)


def test_the_old_command_lines_run_against_a_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "callguard.toml"
    config.write_text(f'[storage]\ndir = "{tmp_path / "state"}"\n')
    base = ["--config", str(config)]
    assert main([*base, "allow", "add", "01707 354000", "--name", "GP surgery"]) == 0
    assert main([*base, "block", "add", "0113 496 0000", "--name", "scam"]) == 0
    capsys.readouterr()
    assert main([*base, "allow", "list", "--json"]) == 0
    entries = json.loads(capsys.readouterr().out)
    assert [(e["number"], e["name"]) for e in entries] == [("+441707354000", "GP surgery")]
    assert main([*base, "log", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
    assert main([*base, "status", "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["daemon"] == "stopped" and status["grooming_alert"] is False
    assert main([*base, "ack"]) == 0
    assert main([*base, "config", "check"]) == 0
    assert main([*base, "block", "remove", "0113 496 0000"]) == 0


def test_python_dash_m_callguard_and_the_version() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "callguard", "--version"], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0 and out.stdout.startswith("callguard ")
