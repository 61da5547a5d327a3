"""`callguard selftest` against the simulator, with no modem, and with mock GPIO."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from gpiozero import DigitalOutputDevice
from gpiozero.pins.mock import MockFactory
from helpers import ConfigData, merged, write_config

from callguard.cli.selftest import Check, SelfTest, table
from callguard.config import from_dict
from callguard.modem import profiles
from callguard.modem.transport import LinkState, TransportStatus
from callguard.sim import SimModem
from callguard.store.lists import Store

pytestmark = pytest.mark.e2e


def config_data(tmp: Path, port: str, extra: ConfigData | None = None) -> dict[str, Any]:
    base = {
        "modem": {"port": port},
        "storage": {"dir": str(tmp / "state")},
        "warning": {"room_command": ""},
    }
    return merged(base, extra)


def config_file(tmp: Path, port: str, extra: ConfigData | None = None) -> Path:
    return write_config(tmp / "callguard.toml", config_data(tmp, port, extra))


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
        result = selftest(config_file(tmp_path, link, {"line_sense": {"source": "modem"}}))
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
        checks = by_name(selftest(config_file(tmp_path, link)))
    assert checks["modem"]["status"] == "pass" and "USRobotics" in checks["modem"]["detail"]
    assert checks["line"]["status"] == "skip"


def test_the_default_config_on_a_conexant_senses_the_line_by_itself(tmp_path: Path) -> None:
    link = str(tmp_path / "modem")
    with SimModem(identity="conexant", link_path=link):
        checks = by_name(selftest(config_file(tmp_path, link)))  # line_sense.source: "auto"
    sensing = checks["line sensing"]
    assert sensing["status"] == "pass"
    assert sensing["detail"].startswith("auto: the modem (Conexant CX93010 family")
    assert "reports the line voltage (AT-TRV: 4" in sensing["detail"]


QUIET = ("--no-sound", "--button-timeout", "0")


def test_the_default_config_on_a_usr_fails_with_the_fix(tmp_path: Path) -> None:
    """The README's steps on a USR 5637 used to end in "All checks passed" with no grooming
    light at all: now the line-sense check fails and says how to fix it."""
    link = str(tmp_path / "modem")
    cfg = config_file(tmp_path, link)
    with SimModem(identity="usr", link_path=link) as sim:
        result = selftest(cfg)
        text = subprocess.run(
            [sys.executable, "-m", "callguard", "--config", str(cfg), "selftest", *QUIET],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert result.returncode == 1
    sensing = by_name(result)["line sensing"]
    assert sensing["status"] == "fail"
    assert sensing["detail"] == (
        "auto: the USRobotics 5637 cannot report the line voltage (no AT-TRV), and no "
        "line-sense module is set (line_sense.gpio_pin): no call durations, and the grooming "
        "light cannot work"
    )
    assert sensing["fix"].startswith(
        "this modem cannot sense the line: fit the line-sense module on GPIO 17 and set "
        "line_sense.gpio_pin = 17"
    )
    assert "see Wiring in the README" in sensing["fix"]
    assert all(c.strip().upper() != "AT-TRV" for _, c in sim.commands)  # known not to have it
    assert text.returncode == 1
    assert "FAIL  line sensing" in text.stdout and "All checks passed" not in text.stdout
    assert "fix: this modem cannot sense the line: fit the line-sense module on GPIO 17" in (
        " ".join(text.stdout.split())
    )


def test_no_modem_is_a_clear_failure_with_its_fix(tmp_path: Path) -> None:
    result = selftest(config_file(tmp_path, str(tmp_path / "no-modem")))
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
            "line_sense": {"source": "gpio", "gpio_pin": 17},
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


class Transports:
    """A transport factory that records the ports it was asked for; none of them connects."""

    def __init__(self) -> None:
        self.ports: list[str] = []

    def __call__(self, port: str, **kw: Any) -> Any:
        self.ports.append(port)
        return Unconnected(port)


class Unconnected:
    def __init__(self, port: str) -> None:
        self.status = TransportStatus(LinkState.DISCONNECTED, f"cannot open {port}", port)

    def start(self) -> None:
        pass

    def wait_connected(self, timeout_s: float) -> bool:
        return False

    def stop(self) -> None:
        pass


def test_a_missing_modem_device_fails_at_once_without_opening_it(tmp_path: Path) -> None:
    port = str(tmp_path / "no-modem")
    opened = Transports()
    test = SelfTest(from_dict(config_data(tmp_path, port)), transport_factory=opened)
    started = time.monotonic()
    checks = {c.name: c for c in test._modem()}
    assert time.monotonic() - started < 1.0  # not the ten seconds a transport is given
    assert opened.ports == []
    assert checks["modem"].status == "fail"
    assert checks["modem"].detail == f"no modem at {port} (is it plugged in? is modem.port right?)"
    assert "plug the modem into a USB socket" in checks["modem"].fix
    assert [checks[n].status for n in ("caller ID", "country", "line")] == ["skip"] * 3


def test_a_pyserial_url_is_not_a_path_and_goes_to_the_transport(tmp_path: Path) -> None:
    opened = Transports()
    test = SelfTest(from_dict(config_data(tmp_path, "loop://")), transport_factory=opened)
    checks = {c.name: c for c in test._modem()}
    assert opened.ports == ["loop://"]  # tried, not refused as a missing file
    assert checks["modem"].status == "fail" and "no modem at" not in checks["modem"].detail


# -- line sensing, judged by the daemon's rule (no modem: the line check's answer is set) --------


def line_sense_check(
    tmp_path: Path,
    factory: MockFactory,
    line_sense: dict[str, Any],
    profile: profiles.ModemProfile | None,
    answer: float | str | None,
    asked: bool = True,
) -> Check:
    test = SelfTest(
        from_dict(config_data(tmp_path, "loop://", {"line_sense": line_sense})),
        pin_factory=factory,
    )
    test._asked, test._modem_profile, test._line_voltage = asked, profile, answer
    return test._line_sense()


USR, CONEXANT = profiles.USR5637, profiles.CONEXANT


@pytest.mark.parametrize(
    ("line_sense", "profile", "answer", "status", "detail", "fix"),
    [
        ({}, CONEXANT, 48.0, "pass", "auto: the modem (Conexant", ""),
        ({}, USR, None, "fail", "auto: the USRobotics 5637 cannot", "this modem cannot sense"),
        ({}, None, "ERROR", "fail", "auto: the modem answered ERROR to AT-TRV", "this modem"),
        ({"gpio_pin": 17}, USR, None, "pass", "auto: the USRobotics 5637 cannot report", ""),
        ({"source": "modem"}, CONEXANT, 47.5, "pass", "the modem's line voltage: the", ""),
        (
            {"source": "modem"},
            USR,
            None,
            "fail",
            'line_sense.source = "modem", but the USRobotics 5637 cannot report the line '
            "voltage (no AT-TRV): no call durations",
            'this modem cannot sense the line: set line_sense.source = "auto" and fit',
        ),
        (
            {"source": "none"},
            CONEXANT,
            48.0,
            "fail",
            'off (line_sense.source = "none"): no call durations, and the grooming light',
            'set line_sense.source = "auto" in the config',
        ),
        ({"source": "gpio", "gpio_pin": 5}, USR, None, "pass", "opto sensor on GPIO5", ""),
    ],
)
def test_line_sensing_fails_with_the_fix_when_the_grooming_light_cannot_work(
    tmp_path: Path,
    factory: MockFactory,
    line_sense: dict[str, Any],
    profile: profiles.ModemProfile | None,
    answer: float | str | None,
    status: str,
    detail: str,
    fix: str,
) -> None:
    check = line_sense_check(tmp_path, factory, line_sense, profile, answer)
    assert (check.name, check.status) == ("line sensing", status), check
    assert check.detail.startswith(detail), check.detail
    assert check.fix.startswith(fix) and (status == "fail") == bool(check.fix)
    if "gpio_pin" in line_sense:
        assert f"GPIO{line_sense['gpio_pin']}" in check.detail and "the line reads on-hook" in (
            check.detail
        )


def test_line_sensing_without_a_modem_to_ask(tmp_path: Path, factory: MockFactory) -> None:
    check = line_sense_check(tmp_path, factory, {}, None, None, asked=False)
    assert check.status == "skip" and check.detail == 'needs the modem (line_sense.source = "auto")'
    check = line_sense_check(tmp_path, factory, {"gpio_pin": 17}, None, None, asked=False)
    assert check.status == "pass"
    assert check.detail.startswith(
        "auto, if the modem cannot sense the line: opto sensor on GPIO17"
    )


def test_a_module_pin_that_cannot_be_used_fails_with_the_wiring_fix(
    tmp_path: Path, factory: MockFactory
) -> None:
    user = DigitalOutputDevice(17, pin_factory=factory)  # in use: gpiozero refuses it
    try:
        check = line_sense_check(tmp_path, factory, {"gpio_pin": 17}, USR, None)
    finally:
        user.close()
    assert check.status == "fail" and "cannot use GPIO17" in check.detail
    assert check.fix.startswith("check the line-sense module's wiring")
    assert "FAIL  line sensing" in table([check])


@pytest.mark.parametrize(
    ("timing", "status", "words"),
    [
        ("before-first-ring", "pass", "before the first ring"),
        ("after-first-ring", "pass", "rings once before CallGuard picks up"),
        (None, "skip", "not known until"),
    ],
)
def test_selftest_says_when_this_line_sends_caller_id(
    tmp_path: Path, timing: str | None, status: str, words: str
) -> None:
    link = str(tmp_path / "modem")
    cfg = config_file(tmp_path, link)
    if timing is not None:  # what the daemon learnt, in the status it left when stopped
        Store(tmp_path / "state").write_status({"daemon": "stopped", "caller_id_timing": timing})
    with SimModem(identity="conexant", link_path=link):
        check = by_name(selftest(cfg))["caller ID timing"]
    assert check["status"] == status and words in check["detail"]
