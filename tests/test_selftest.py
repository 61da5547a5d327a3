"""`callguard selftest` against the simulator, with no modem, and with mock GPIO."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from gpiozero.pins.mock import MockFactory

from callguard.cli.selftest import SelfTest
from callguard.config import from_dict
from callguard.sim import SimModem

pytestmark = pytest.mark.e2e


def write_config(tmp: Path, port: str, extra: str = "") -> Path:
    cfg = tmp / "callguard.toml"
    cfg.write_text(
        f'[modem]\nport = "{port}"\n[storage]\ndir = "{tmp / "state"}"\n'
        '[warning]\nroom_command = ""\n' + extra
    )
    return cfg


def selftest(cfg: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "callguard",
            "--config",
            str(cfg),
            "selftest",
            "--json",
            "--button-timeout",
            "0",
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


def by_name(result: subprocess.CompletedProcess[str]) -> dict[str, dict[str, str]]:
    return {c["name"]: c for c in json.loads(result.stdout)["checks"]}


def test_selftest_passes_on_the_simulated_conexant(tmp_path: Path) -> None:
    link = str(tmp_path / "modem")
    with SimModem(identity="conexant", link_path=link, cid_needs_country=True):
        result = selftest(write_config(tmp_path, link, '[line_sense]\nsource = "modem"\n'))
    checks = by_name(result)
    assert checks["modem"]["status"] == "pass" and "56000" in checks["modem"]["detail"]
    assert checks["caller ID"]["status"] == "pass"
    assert checks["country"]["status"] == "pass" and "B4" in checks["country"]["detail"]
    assert checks["line"]["status"] == "pass" and "on-hook" in checks["line"]["detail"]
    failed = [c for c in checks.values() if c["status"] == "fail"]
    assert result.returncode == (1 if failed else 0)
    assert [c["name"] for c in failed] in ([], ["speech"])  # speech fails only without espeak-ng


def test_selftest_identifies_a_usr_and_skips_its_line_voltage(tmp_path: Path) -> None:
    link = str(tmp_path / "modem")
    with SimModem(identity="usr", link_path=link):
        checks = by_name(selftest(write_config(tmp_path, link)))
    assert checks["modem"]["status"] == "pass" and "USRobotics" in checks["modem"]["detail"]
    assert checks["line"]["status"] == "skip"


def test_no_modem_is_a_clear_failure_with_its_fix(tmp_path: Path) -> None:
    result = selftest(write_config(tmp_path, str(tmp_path / "no-modem")))
    assert result.returncode == 1
    modem = by_name(result)["modem"]
    assert modem["status"] == "fail" and "no modem at" in modem["detail"]
    assert "plug the modem into a USB socket" in modem["fix"]
    text = subprocess.run(
        [
            sys.executable,
            "-m",
            "callguard",
            "--config",
            str(tmp_path / "callguard.toml"),
            "selftest",
            "--button-timeout",
            "0",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert text.returncode == 1 and "FAIL  modem" in text.stdout and "fix:" in text.stdout


def test_lights_button_and_gpio_line_sense_on_mock_pins(
    tmp_path: Path, factory: MockFactory
) -> None:
    config = from_dict(
        {
            "modem": {"port": str(tmp_path / "none")},
            "storage": {"dir": str(tmp_path / "s")},
            "warning": {"room_command": ""},
            "line_sense": {"source": "gpio"},
        }
    )
    prompts: list[str] = []

    def press_when_asked(text: str) -> None:
        prompts.append(text)
        factory.pin(25).drive_low()

    test = SelfTest(config, button_timeout_s=5, pin_factory=factory, say=press_when_asked)
    checks = {c.name: c for c in test._lights()}
    assert checks["lights"].status == "pass"
    assert checks["button"].status == "pass" and prompts
    assert checks["line sensing"].status == "pass"
