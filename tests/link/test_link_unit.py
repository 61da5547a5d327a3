"""systemd/callguard-link.service: the daemon's user and sandbox, with no privilege at all, no
device and no listening socket; install.sh (in its test mode) installs, enables and starts it."""

from __future__ import annotations

import shlex
import shutil
from pathlib import Path

import pytest
from web.test_web_unit import DAEMON_UNIT, DIFFERENT_ON_PURPOSE, directives, install, verified

REPO = Path(__file__).resolve().parents[2]
LINK_UNIT = REPO / "systemd" / "callguard-link.service"

LINK_DIFFERS = DIFFERENT_ON_PURPOSE | {
    "Wants",  # network-online.target: the alert channels are on the internet
    "SystemCallFilter",  # without @privileged: it changes no file's owner
}


def test_the_link_unit_is_hardened_like_the_daemons_with_no_privilege() -> None:
    link, daemon = directives(LINK_UNIT), directives(DAEMON_UNIT)
    assert link["User"] == daemon["User"] == ["callguard"]
    assert link["ExecStart"] == ["/opt/callguard/bin/callguard link"]
    for key, values in daemon.items():
        if key not in LINK_DIFFERS:
            assert link.get(key) == values, key
    assert link["CapabilityBoundingSet"] == [""] and link["AmbientCapabilities"] == [""]
    assert link["PrivateDevices"] == ["yes"] and "DeviceAllow" not in link
    assert "SupplementaryGroups" not in link
    assert link["SystemCallFilter"] == ["@system-service", "~@resources @privileged"]
    assert link["NoNewPrivileges"] == ["yes"]
    assert link["OOMScoreAdjust"] == ["500"]  # taken before the daemon


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze is not installed")
def test_systemd_analyze_verify_accepts_the_link_unit(tmp_path: Path) -> None:
    verified(LINK_UNIT, tmp_path)


def test_the_installer_installs_enables_and_starts_the_link(root: Path, tmp_path: Path) -> None:
    _, commands = install(root, tmp_path)
    unit = root / "etc/systemd/system/callguard-link.service"
    assert unit.read_bytes() == LINK_UNIT.read_bytes()
    assert unit.stat().st_mode & 0o777 == 0o644
    wanted = ["systemctl enable callguard-link", "systemctl restart callguard-link"]
    assert [c for c in commands if c in wanted] == wanted
    assert commands.index("systemctl restart callguard") < commands.index(wanted[1])
    _, commands = install(root, tmp_path, "--uninstall")
    assert ["systemctl", "disable", "--now", "callguard-link"] in map(shlex.split, commands)
    assert not unit.exists()


HUB_UNIT = REPO / "systemd" / "callguard-hub.service"


def test_the_hub_unit_runs_as_its_own_user_with_no_privilege_and_a_private_key_folder() -> None:
    hub = directives(HUB_UNIT)
    assert hub["ExecStart"] == ["/opt/callguard/bin/callguard hub"]
    assert hub["User"] == hub["Group"] == ["callguard-hub"]  # not a unit's user
    assert hub["StateDirectory"] == ["callguard-hub"] and hub["StateDirectoryMode"] == ["0700"]
    assert hub["UMask"] == ["0077"]
    assert hub["CapabilityBoundingSet"] == [""] and hub["NoNewPrivileges"] == ["yes"]
    assert hub["ProtectSystem"] == ["strict"] and hub["PrivateDevices"] == ["yes"]


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze is not installed")
def test_systemd_analyze_verify_accepts_the_hub_unit(tmp_path: Path) -> None:
    verified(HUB_UNIT, tmp_path)
