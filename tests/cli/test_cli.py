"""The command line: usage errors exit 2 with a message; the demo runs end to end."""

from __future__ import annotations

import subprocess
import sys

import pytest

from callguard.cli import main


def test_unknown_option_exits_2_and_names_it(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["demo", "--bogus"])
    assert exc.value.code == 2
    assert "--bogus" in capsys.readouterr().err


def test_unknown_command_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["frobnicate"])
    assert exc.value.code == 2
    assert "frobnicate" in capsys.readouterr().err


def test_sim_passes_its_options_through(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["sim", "--identity", "nokia"])
    assert exc.value.code == 2
    assert "nokia" in capsys.readouterr().err


@pytest.mark.e2e
def test_demo_runs_on_the_simulated_line() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "callguard", "demo", "--fast"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "Allowed: on the allow list as 'Sue (daughter)'" in out
    assert "before the first ring" in out and "never calls out" in out
    assert "Warned: the caller withheld their number." in out
    log = out.split("The call log the family sees")[1]
    assert [line.split(": ")[1].split(".")[0] for line in log.strip().splitlines()[1:]] == [
        "allowed",
        "blocked",
        "warned",
        "warned",
    ]
