"""install.sh in its test mode (--root DIR): every file lands under DIR and every command that
would change the system is written to DIR/install-commands.log instead of being run.

A tripwire PATH (apt-get, useradd, systemctl, ... that record any call) proves the installer
really runs none of them. No root, no network, no Raspberry Pi; about a second in all.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import shutil
import stat
import subprocess
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers import SYSTEM_COMMANDS

from callguard.version import INSTALLED_LOCK_NAME, SOURCE_LOCK

REPO = Path(__file__).resolve().parents[1]
INSTALL = REPO / "install.sh"
UNIT_SRC = REPO / "systemd" / "callguard.service"
RULE_SRC = REPO / "systemd" / "99-callguard-modem.rules"
CONFIG_SRC = REPO / "config" / "callguard.toml"
LOCK_SRC = REPO / SOURCE_LOCK

PACKAGES = ("python3-venv", "python3-lgpio", "espeak-ng", "alsa-utils")

BOOKWORM = """\
PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION_CODENAME=bookworm
ID=debian
"""
RASPIOS_TRIXIE_32 = """\
PRETTY_NAME="Raspbian GNU/Linux 13 (trixie)"
ID=raspbian
ID_LIKE=debian
VERSION_ID="13"
VERSION_CODENAME=trixie
"""
UBUNTU = """\
PRETTY_NAME="Ubuntu 24.04.1 LTS"
ID=ubuntu
ID_LIKE=debian
VERSION_ID="24.04"
"""
BULLSEYE = """\
PRETTY_NAME="Debian GNU/Linux 11 (bullseye)"
ID=debian
VERSION_ID="11"
"""


@dataclass
class Run:
    proc: subprocess.CompletedProcess[str]
    commands: list[str]
    """The lines this run added to install-commands.log."""

    @property
    def output(self) -> str:
        return self.proc.stdout + self.proc.stderr

    def argvs(self, program: str) -> list[list[str]]:
        return [argv for argv in map(shlex.split, self.commands) if argv[0] == program]

    def pip_installs(self) -> list[list[str]]:
        """The arguments after `pip install` of each pip run written down, in order."""
        found = []
        for argv in map(shlex.split, self.commands):
            if argv[1:4] == ["-I", "-m", "pip"] and argv[4] == "install":
                found.append(argv[5:])
        return found


@pytest.fixture(scope="session")
def tripwire(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A bin folder of system commands that only record that they were called."""
    bin_dir = tmp_path_factory.mktemp("tripwire")
    calls = bin_dir / "calls.log"
    for name in SYSTEM_COMMANDS:
        script = bin_dir / name
        script.write_text(f'#!/bin/sh\necho "{name} $*" >> "{calls}"\nexit 1\n')
        script.chmod(0o755)
    return bin_dir, calls


@pytest.fixture
def installer(tripwire: tuple[Path, Path]):  # type: ignore[no-untyped-def]
    bin_dir, calls = tripwire

    def run(
        *args: str,
        root: Path | None = None,
        extra_path: Path | None = None,
        env: dict[str, str] | None = None,
        wrapper: tuple[str, ...] = (),
        script: Path = INSTALL,
    ) -> Run:
        log = root / "install-commands.log" if root is not None else None
        before = log.read_text().splitlines() if log is not None and log.exists() else []
        environ = {k: v for k, v in os.environ.items() if k != "CALLGUARD_INSTALL_VENV"}
        path = f"{bin_dir}{os.pathsep}{environ.get('PATH', '/usr/bin:/bin')}"
        if extra_path is not None:
            path = f"{extra_path}{os.pathsep}{path}"
        environ["PATH"] = path
        environ.update(env or {})
        argv = [*wrapper, "bash", str(script)]
        argv += [*(["--root", str(root)] if root is not None else []), *args]
        proc = subprocess.run(
            argv, capture_output=True, text=True, env=environ, timeout=600, check=False
        )
        assert not calls.exists(), f"test mode ran system commands: {calls.read_text()}"
        after = log.read_text().splitlines() if log is not None and log.exists() else []
        return Run(proc, after[len(before) :])

    return run


def _ok(result: Run) -> Run:
    assert result.proc.returncode == 0, result.output
    return result


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _copy_source(source: Path) -> None:
    """A CallGuard source folder with what install.sh installs from, in another place."""
    source.mkdir()
    for name in ("pyproject.toml", "systemd", "config", "requirements"):
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, source / name)
        else:
            shutil.copy(REPO / name, source / name)


# ----------------------------------------------------------------------------- a fresh install


def test_fresh_install_puts_the_unit_the_rule_and_the_config_in_place(installer, root) -> None:
    result = _ok(installer(root=root))

    unit = root / "etc/systemd/system/callguard.service"
    rule = root / "etc/udev/rules.d/99-callguard-modem.rules"
    config = root / "etc/callguard/callguard.toml"
    assert unit.read_bytes() == UNIT_SRC.read_bytes()
    assert rule.read_bytes() == RULE_SRC.read_bytes()
    assert config.read_bytes() == CONFIG_SRC.read_bytes()
    assert _mode(unit) == 0o644
    assert _mode(rule) == 0o644
    assert _mode(config) == 0o660  # root and the family page (group callguard)
    assert _mode(root / "etc/callguard") == 0o775
    assert _mode(root / "var/lib/callguard") == 0o750
    assert not (root / "etc/callguard/callguard.toml.new").exists()

    assert "sudo -u callguard /opt/callguard/bin/callguard selftest" in result.proc.stdout
    assert "callguard status" in result.proc.stdout
    for n in range(1, 9):
        assert f"Step {n} of 8" in result.proc.stdout


def test_the_udev_rule_names_the_usr_and_conexant_modems_as_the_configs_port(
    installer, root
) -> None:
    _ok(installer(root=root))
    rule = (root / "etc/udev/rules.d/99-callguard-modem.rules").read_text()
    ids = re.findall(r'ATTRS\{idVendor\}=="(\w+)", ATTRS\{idProduct\}=="(\w+)"', rule)
    assert ("0baf", "0303") in ids  # USRobotics 5637
    assert any(vendor == "0572" for vendor, _ in ids)  # Conexant
    assert 'SYMLINK+="callguard-modem"' in rule

    config = tomllib.loads((root / "etc/callguard/callguard.toml").read_text())
    assert config["modem"]["port"] == "/dev/callguard-modem"


def test_fresh_install_writes_down_every_system_command(installer, root) -> None:
    result = _ok(installer(root=root))

    (apt,) = result.argvs("apt-get")
    assert apt[:4] == ["apt-get", "install", "-y", "--no-install-recommends"]
    assert set(PACKAGES) <= set(apt[4:])

    assert ["groupadd", "--system", "gpio"] in result.argvs("groupadd")
    (useradd,) = result.argvs("useradd")
    assert "--system" in useradd
    assert useradd[useradd.index("--home-dir") + 1] == "/var/lib/callguard"
    assert useradd[useradd.index("--shell") + 1] == "/usr/sbin/nologin"
    assert set(useradd[useradd.index("--groups") + 1].split(",")) == {"dialout", "gpio", "audio"}
    assert useradd[-1] == "callguard"

    state = str(root / "var/lib/callguard")
    config = str(root / "etc/callguard/callguard.toml")
    assert ["chown", "-R", "callguard:callguard", state] in result.argvs("chown")
    assert ["chown", "root:callguard", config] in result.argvs("chown")

    venv = str(root / "opt/callguard")
    assert ["python3", "-m", "venv", "--system-site-packages", venv] in map(
        shlex.split, result.commands
    )
    assert len(result.pip_installs()) == 2

    commands = result.commands
    assert "udevadm control --reload" in commands
    assert any(line.startswith("udevadm trigger --subsystem-match=tty") for line in commands)
    order = [
        commands.index(c)
        for c in (
            "udevadm control --reload",
            "systemctl daemon-reload",
            "systemctl enable callguard",
            "systemctl restart callguard",
        )
    ]
    assert order == sorted(order)


def test_an_existing_user_and_gpio_group_are_kept_and_given_the_groups(installer, root) -> None:
    (root / "etc/group").write_text("dialout:x:20:\naudio:x:29:\ngpio:x:997:\n")
    (root / "etc/passwd").write_text("callguard:x:999:999::/var/lib/callguard:/usr/sbin/nologin\n")
    result = _ok(installer(root=root))

    assert result.argvs("groupadd") == []
    assert result.argvs("useradd") == []
    assert result.argvs("usermod") == [
        ["usermod", "--append", "--groups", "dialout,gpio,audio", "callguard"]
    ]


def test_no_start_enables_the_service_without_starting_it(installer, root) -> None:
    result = _ok(installer("--no-start", root=root))
    assert "systemctl enable callguard" in result.commands
    assert not any(re.match(r"systemctl (re)?start", line) for line in result.commands)
    assert "sudo systemctl restart callguard" in result.proc.stdout


def test_source_installs_the_unit_and_code_from_another_folder(installer, root, tmp_path) -> None:
    source = tmp_path / "other source"
    _copy_source(source)
    unit = source / "systemd" / "callguard.service"
    unit.write_text(unit.read_text() + "# a newer unit\n")

    result = _ok(installer("--source", str(source), root=root))
    assert (root / "etc/systemd/system/callguard.service").read_text().endswith("# a newer unit\n")
    libraries, program = result.pip_installs()
    assert libraries[libraries.index("-r") + 1] == str(source / SOURCE_LOCK)
    assert program[-1] == str(source)


# ----------------------------------------------------------------------------- the lock


def test_the_libraries_come_from_the_lock_with_hashes_then_callguard_without_deps(
    installer, root
) -> None:
    result = _ok(installer(root=root))
    commands = list(map(shlex.split, result.commands))
    venv = str(root / "opt/callguard")
    python = f"{venv}/bin/python"

    libraries, program = result.pip_installs()
    assert libraries[libraries.index("-r") + 1] == str(LOCK_SRC)
    assert "--require-hashes" in libraries
    assert libraries[libraries.index("--only-binary") + 1] == ":all:"
    assert "--force-reinstall" in libraries  # the checked files, not a system copy
    assert program[-1] == str(REPO)
    for flag in ("--no-deps", "--no-build-isolation", "--no-index"):
        assert flag in program
    assert "-r" not in program

    pips = [n for n, argv in enumerate(commands) if argv[0] == python]
    made = commands.index(["python3", "-m", "venv", "--system-site-packages", venv])
    assert made < pips[0] < pips[1]  # the venv, then the libraries, then CallGuard


def test_nothing_is_pip_installed_without_a_hash_or_a_no_deps(installer, root) -> None:
    result = _ok(installer(root=root))
    installs = result.pip_installs()
    assert installs
    for args in installs:
        pinned = "--require-hashes" in args and "-r" in args
        alone = "--no-deps" in args and "--no-index" in args
        assert pinned or alone, args


def test_the_program_folder_keeps_the_lock_it_was_installed_from(installer, root, tmp_path) -> None:
    result = _ok(installer(root=root))
    kept = root / "opt/callguard" / INSTALLED_LOCK_NAME
    assert kept.read_bytes() == LOCK_SRC.read_bytes()
    assert _mode(kept) == 0o644
    assert str(LOCK_SRC) in " ".join(result.commands)

    # An upgrade from a source with another lock replaces the copy (callguard --version says it).
    source = tmp_path / "newer source"
    _copy_source(source)
    newer = source / SOURCE_LOCK
    newer.write_text(newer.read_text() + "# a newer lock\n")
    _ok(installer("--source", str(source), root=root))
    assert kept.read_bytes() == newer.read_bytes()
    assert not list(kept.parent.glob("*.new"))


def test_a_source_without_the_lock_stops_the_install_before_anything_changes(
    installer, root, tmp_path
) -> None:
    source = tmp_path / "no lock"
    _copy_source(source)
    (source / SOURCE_LOCK).unlink()

    result = installer("--source", str(source), root=root)

    assert result.proc.returncode == 1, result.output
    assert str(SOURCE_LOCK) in result.proc.stderr
    assert "step 1 of 8" in result.proc.stderr
    assert result.commands == []
    assert not (root / "opt/callguard").exists()
    assert not (root / "etc/callguard").exists()


# ----------------------------------------------------------------------------- upgrading in place


def test_running_again_keeps_the_edited_config_and_the_lists(installer, root) -> None:
    _ok(installer(root=root))
    config = root / "etc/callguard/callguard.toml"
    edited = config.read_text().replace("minutes = 15.0", "minutes = 30.0")
    assert edited != config.read_text()
    config.write_text(edited)
    state = root / "var/lib/callguard"
    lists = {"lists.json": '{"allow": {"1": {"number": "+441707354000"}}}', "calls.json": "{}"}
    for name, text in lists.items():
        (state / name).write_text(text)

    result = _ok(installer(root=root))

    assert config.read_text() == edited
    new = root / "etc/callguard/callguard.toml.new"
    assert new.read_bytes() == CONFIG_SRC.read_bytes()
    assert _mode(new) == 0o640
    assert str(new) in result.proc.stdout
    assert "KEPT" in result.proc.stdout
    for name, text in lists.items():
        assert (state / name).read_text() == text
    assert _mode(state) == 0o750


def test_running_again_with_the_shipped_config_writes_no_new_file(installer, root) -> None:
    _ok(installer(root=root))
    new = root / "etc/callguard/callguard.toml.new"
    new.write_text("left over from an earlier upgrade\n")

    result = _ok(installer(root=root))

    assert not new.exists()
    assert (root / "etc/callguard/callguard.toml").read_bytes() == CONFIG_SRC.read_bytes()
    assert "systemctl restart callguard" in result.commands


# ----------------------------------------------------------------------------- uninstalling


def test_uninstall_removes_the_program_and_keeps_the_config_and_lists(installer, root) -> None:
    _ok(installer(root=root))
    (root / "opt/callguard/bin").mkdir(parents=True)
    (root / "opt/callguard/bin/callguard").write_text("#!/bin/sh\n")
    (root / "usr/local/bin").mkdir(parents=True)
    (root / "usr/local/bin/callguard").symlink_to("/opt/callguard/bin/callguard")
    (root / "var/lib/callguard/lists.json").write_text("{}")

    result = _ok(installer("--uninstall", root=root))

    assert any(line.startswith("systemctl disable") for line in result.commands)
    assert not (root / "etc/systemd/system/callguard.service").exists()
    assert not (root / "etc/udev/rules.d/99-callguard-modem.rules").exists()
    assert not (root / "opt/callguard").exists()
    assert not (root / "usr/local/bin/callguard").is_symlink()
    assert (root / "etc/callguard/callguard.toml").exists()
    assert (root / "var/lib/callguard/lists.json").read_text() == "{}"
    assert str(root / "etc/callguard") in result.proc.stdout
    assert str(root / "var/lib/callguard") in result.proc.stdout
    assert result.argvs("userdel") == []


def test_uninstall_purge_removes_the_config_the_lists_and_the_user(installer, root) -> None:
    _ok(installer(root=root))
    (root / "var/lib/callguard/lists.json").write_text("{}")

    result = _ok(installer("--uninstall", "--purge", root=root))

    assert any(line.startswith("systemctl disable") for line in result.commands)
    assert not (root / "etc/callguard").exists()
    assert not (root / "var/lib/callguard").exists()
    assert ["userdel", "callguard"] in result.argvs("userdel")


def test_purge_leaves_userdel_out_when_there_is_no_such_user(installer, root) -> None:
    (root / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/bash\n")
    result = _ok(installer("--uninstall", "--purge", root=root))
    assert result.argvs("userdel") == []
    assert "no callguard user" in result.proc.stdout


# ----------------------------------------------------------------------------- checks and usage


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--bogus"], "unknown option '--bogus'"),
        (["--purge"], "--purge only goes with --uninstall"),
        (["--source", "/no/such/folder"], "/no/such/folder"),
        (["--source"], "--source needs a folder"),
    ],
)
def test_a_bad_option_exits_2_with_the_usage(installer, root, args, says) -> None:
    result = installer(*args, root=root)
    assert result.proc.returncode == 2, result.output
    assert says in result.proc.stderr
    assert "Usage: sudo ./install.sh" in result.proc.stderr
    assert not (root / "install-commands.log").exists()
    assert not (root / "etc/callguard").exists()


def test_root_without_a_folder_exits_2(installer) -> None:
    result = installer("--root")
    assert result.proc.returncode == 2
    assert "--root needs a folder" in result.proc.stderr


def test_help_prints_the_usage(installer) -> None:
    result = installer("--help")
    assert result.proc.returncode == 0
    assert result.proc.stdout.startswith("Usage: sudo ./install.sh")


def test_without_root_or_test_mode_it_refuses(installer) -> None:
    if os.geteuid() != 0:
        result = installer()
    else:  # drop to nobody, with a copy of the script that nobody may read
        if not shutil.which("setpriv"):
            pytest.skip("running as root and setpriv is missing: cannot run as an ordinary user")
        with tempfile.TemporaryDirectory(prefix="callguard-install-") as folder:
            os.chmod(folder, 0o755)
            script = Path(folder) / "install.sh"
            shutil.copy(INSTALL, script)
            script.chmod(0o755)
            nobody = ("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups")
            result = installer(wrapper=nobody, script=script)
    assert result.proc.returncode == 1, result.output
    assert "must run as root" in result.proc.stderr


@pytest.mark.parametrize("os_release", [UBUNTU, BULLSEYE], ids=["ubuntu", "bullseye"])
def test_another_system_gets_a_warning_not_a_failure(installer, root, os_release) -> None:
    (root / "etc/os-release").write_text(os_release)
    result = _ok(installer(root=root))
    assert "WARNING" in result.proc.stderr
    assert "Bookworm or Trixie" in result.proc.stderr
    assert (root / "etc/systemd/system/callguard.service").exists()


@pytest.mark.parametrize("os_release", [BOOKWORM, RASPIOS_TRIXIE_32], ids=["bookworm", "trixie"])
def test_supported_systems_get_no_warning(installer, root, os_release) -> None:
    (root / "etc/os-release").write_text(os_release)
    result = _ok(installer(root=root))
    assert "WARNING" not in result.output
    assert "(supported)" in result.proc.stdout


def test_an_old_python_stops_the_install_before_anything_changes(installer, root, tmp_path) -> None:
    fake = tmp_path / "old-python"
    fake.mkdir()
    (fake / "python3").write_text("#!/bin/sh\necho 3.9\n")
    (fake / "python3").chmod(0o755)

    result = installer(root=root, extra_path=fake)

    assert result.proc.returncode == 1
    assert "Python 3.11 or newer" in result.proc.stderr
    assert "Python 3.9" in result.proc.stderr
    assert "step 1 of 8" in result.proc.stderr  # and that running it again is safe
    assert result.commands == []
    assert not (root / "etc/callguard").exists()


# ----------------------------------------------------------------------------- outside checkers


def _unit_for_checking(root: Path, tmp_path: Path) -> Path:
    """The installed unit, with ExecStart pointed at a program that exists here."""
    installed = (root / "etc/systemd/system/callguard.service").read_text()
    checked = tmp_path / "check" / "callguard.service"
    checked.parent.mkdir()
    checked.write_text(re.sub(r"(?m)^ExecStart=.*$", "ExecStart=/bin/true", installed, count=1))
    return checked


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze is not installed")
def test_systemd_analyze_verify_accepts_the_installed_unit(installer, root, tmp_path) -> None:
    _ok(installer(root=root))
    unit = _unit_for_checking(root, tmp_path)
    proc = subprocess.run(
        ["systemd-analyze", "verify", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    complaints = [line for line in proc.stderr.splitlines() if "callguard.service" in line]
    assert complaints == []


def _security_offline_supported() -> bool:
    if not shutil.which("systemd-analyze"):
        return False
    help_text = subprocess.run(
        ["systemd-analyze", "security", "--help"], capture_output=True, text=True, check=False
    ).stdout
    return "--offline" in help_text


@pytest.mark.skipif(
    not _security_offline_supported(), reason="systemd-analyze security --offline is not available"
)
def test_systemd_analyze_security_rates_the_unit(installer, root, tmp_path) -> None:
    _ok(installer(root=root))
    unit = _unit_for_checking(root, tmp_path)
    proc = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", "--no-pager", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    overall = [line for line in proc.stdout.splitlines() if "Overall exposure level" in line]
    assert overall, proc.stdout + proc.stderr
    print(overall[0])  # shown with pytest -s; the score itself is not asserted


@pytest.mark.skipif(not shutil.which("shellcheck"), reason="shellcheck is not installed")
def test_shellcheck_finds_nothing_in_install_sh() -> None:
    proc = subprocess.run(
        ["shellcheck", str(INSTALL)], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.skipif(
    os.environ.get("CALLGUARD_INSTALL_VENV") != "1",
    reason="builds a real virtualenv with pip (slow, may need the network): "
    "set CALLGUARD_INSTALL_VENV=1 to run it",
)
def test_the_real_program_folder_is_complete(installer, root) -> None:
    result = _ok(installer(root=root, env={"CALLGUARD_INSTALL_VENV": "1"}))
    program = root / "opt/callguard/bin/callguard"
    assert program.exists()
    assert (root / "usr/local/bin/callguard").is_symlink()
    assert "were not installed" not in result.output, result.output
    assert "The settings are valid" in result.proc.stdout
    proc = subprocess.run([str(program), "--help"], capture_output=True, text=True, check=False)
    assert proc.returncode == 0

    # The libraries are the lock's versions, and the installed unit knows the lock's digest.
    pins = dict(re.findall(r"(?m)^([A-Za-z0-9._-]+)==(\S+)", LOCK_SRC.read_text()))
    python = root / "opt/callguard/bin/python"
    report = subprocess.run(
        [
            str(python),
            "-I",
            "-c",
            "import json, sys; from importlib.metadata import version; "
            "from callguard.version import version_info; "
            "print(json.dumps([{n: version(n) for n in sys.argv[1:]}, version_info()]))",
            *pins,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    installed, info = json.loads(report.stdout)
    assert installed == pins
    assert info["lock_digest"] == "sha256:" + hashlib.sha256(LOCK_SRC.read_bytes()).hexdigest()
    assert "Installed: callguard " in result.proc.stdout
