"""systemd/callguard-web.service: the same user and the same sandbox as the daemon's unit, with
the one capability that binds port 80; and install.sh (in its test mode) installs, enables and
starts it."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
from helpers import SYSTEM_COMMANDS

REPO = Path(__file__).resolve().parents[2]
WEB_UNIT = REPO / "systemd" / "callguard-web.service"
DAEMON_UNIT = REPO / "systemd" / "callguard.service"

DIFFERENT_ON_PURPOSE = {
    # what it is and how it runs
    "Description",
    "After",
    "Type",
    "NotifyAccess",
    "ExecStart",
    "ExecReload",
    "SyslogIdentifier",
    "WatchdogSec",
    "TimeoutStartSec",
    "KillSignal",
    "KillMode",
    "RestartSec",
    # no modem, GPIO or sound: no groups, no devices, no live status of its own
    "SupplementaryGroups",
    "DeviceAllow",
    "RuntimeDirectory",
    "RuntimeDirectoryMode",
    "RuntimeDirectoryPreserve",
    # port 80 on the home network
    "CapabilityBoundingSet",
    "AmbientCapabilities",
    "RestrictAddressFamilies",
    "IPAddressDeny",
    "PrivateNetwork",
}


def directives(path: Path) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", "[")):
            continue
        key, _, value = line.partition("=")
        found.setdefault(key, []).append(value)
    return found


def test_the_web_unit_is_hardened_like_the_daemons() -> None:
    web, daemon = directives(WEB_UNIT), directives(DAEMON_UNIT)
    assert web["User"] == daemon["User"] == ["callguard"]
    assert web["Group"] == daemon["Group"]
    assert web["ExecStart"] == ["/opt/callguard/bin/callguard web"]
    for key, values in daemon.items():
        if key in DIFFERENT_ON_PURPOSE:
            continue
        assert web.get(key) == values, key
    assert web["AmbientCapabilities"] == ["CAP_NET_BIND_SERVICE"]
    assert web["CapabilityBoundingSet"] == ["CAP_NET_BIND_SERVICE"]
    assert web["PrivateDevices"] == ["yes"] and "DeviceAllow" not in web
    assert "SupplementaryGroups" not in web
    assert web["RestrictAddressFamilies"] == ["AF_UNIX AF_INET AF_INET6"]
    assert web["IPAddressDeny"] == ["any"]
    assert web["NoNewPrivileges"] == ["yes"]


def test_the_kernel_allows_what_the_page_answers_by_default() -> None:
    from callguard.config import WebConfig

    allowed = directives(WEB_UNIT)["IPAddressAllow"][0].split()
    named = {"localhost": {"127.0.0.0/8", "::1/128"}, "link-local": {"169.254.0.0/16", "fe80::/10"}}
    covered = set().union(*(named.get(a, {a}) for a in allowed))
    assert covered == set(WebConfig().allow_networks)


def verified(source: Path, tmp_path: Path) -> None:
    """``systemd-analyze verify`` accepts the unit (with a stand-in ExecStart) and says nothing
    about it."""
    unit = tmp_path / source.name
    text = re.sub(r"(?m)^ExecStart=.*$", "ExecStart=/bin/true", source.read_text(), count=1)
    unit.write_text(text)
    proc = subprocess.run(
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert [line for line in proc.stderr.splitlines() if source.stem in line] == []


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze is not installed")
def test_systemd_analyze_verify_accepts_the_web_unit(tmp_path: Path) -> None:
    verified(WEB_UNIT, tmp_path)


# -- the installer ------------------------------------------------------------------------


def install(root: Path, tmp_path: Path, *args: str) -> tuple[str, list[str]]:
    """install.sh --root ROOT (its test mode): system commands are written down, never run; a
    tripwire PATH of failing stand-ins makes sure of it."""
    tripwire = tmp_path / "tripwire"
    tripwire.mkdir(exist_ok=True)
    for name in SYSTEM_COMMANDS:
        stand_in = tripwire / name
        stand_in.write_text(f"#!/bin/sh\necho {name} >> {tmp_path}/ran\nexit 1\n")
        stand_in.chmod(0o755)
    log = root / "install-commands.log"
    before = log.read_text().splitlines() if log.exists() else []
    env = {k: v for k, v in os.environ.items() if k != "CALLGUARD_INSTALL_VENV"}
    env["PATH"] = f"{tripwire}{os.pathsep}{env.get('PATH', '/usr/bin:/bin')}"
    proc = subprocess.run(
        ["bash", str(REPO / "install.sh"), "--root", str(root), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert not (tmp_path / "ran").exists()
    return proc.stdout, log.read_text().splitlines()[len(before) :]


def test_the_installer_installs_enables_and_starts_the_family_page(
    root: Path, tmp_path: Path
) -> None:
    _, commands = install(root, tmp_path)
    unit = root / "etc/systemd/system/callguard-web.service"
    assert unit.read_bytes() == WEB_UNIT.read_bytes()
    assert unit.stat().st_mode & 0o777 == 0o644
    order = [
        commands.index(c)
        for c in (
            "systemctl daemon-reload",
            "systemctl enable callguard",
            "systemctl enable callguard-web",
            "systemctl restart callguard",
            "systemctl restart callguard-web",
        )
    ]
    assert order == sorted(order)


def test_no_start_enables_the_family_page_without_starting_it(root: Path, tmp_path: Path) -> None:
    _, commands = install(root, tmp_path, "--no-start")
    assert "systemctl enable callguard-web" in commands
    assert not any(re.match(r"systemctl (re)?start", line) for line in commands)


def test_uninstall_stops_and_removes_the_family_page(root: Path, tmp_path: Path) -> None:
    install(root, tmp_path)
    _, commands = install(root, tmp_path, "--uninstall")
    assert ["systemctl", "disable", "--now", "callguard-web"] in map(shlex.split, commands)
    assert not (root / "etc/systemd/system/callguard-web.service").exists()
