"""The version and the lock: `callguard --version`, version_info() for status --json, and the
check that requirements/callguard.txt is current with pyproject.toml (`make lock-check`, run by
CI before the tests).

The lock check is offline and takes a second: it reads pyproject.toml and the lock, and asks
that the lock pins (==, with sha256 hashes, wheels only) every dependency pyproject.toml names,
within its specifier, plus [build-system].requires (install.sh builds CallGuard with the lock's
setuptools), that nothing in it is left over from a dependency since removed (uv's "# via"
notes give the graph), and that lgpio is not in it (the installer takes python3-lgpio from apt).
That a locked library's own requirements are met by the other pins is checked by pip itself:
`make` installs the lock with --require-hashes, which refuses a lock missing a dependency or
holding a conflicting one.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

import callguard
from callguard import version
from callguard.version import INSTALLED_LOCK_NAME, SOURCE_LOCK

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = REPO / "pyproject.toml"
LOCK = REPO / SOURCE_LOCK

PROJECT_VIA = "callguard (pyproject.toml)"
FROM_APT = {"lgpio"}
"""Never in the lock: the installer takes python3-lgpio from apt (Raspberry Pi OS builds it)."""
SHA256 = re.compile(r"sha256:[0-9a-f]{64}")


# ================================================================================ the lock check


@dataclass
class Pin:
    requirement: Requirement
    hashes: list[str]
    via: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return canonicalize_name(self.requirement.name)


def parse_lock(text: str) -> tuple[list[Pin], list[str], list[str]]:
    """uv's requirements.txt: the pins, the option lines (--only-binary ...), and any problems."""
    pins: list[Pin] = []
    options: list[str] = []
    problems: list[str] = []
    logical = ""
    via_list = False  # inside a "# via" list of one name a line
    for raw in text.splitlines():
        stripped = raw.strip()
        if logical:  # a continued line
            logical += " " + stripped.removesuffix("\\").strip()
            if not stripped.endswith("\\"):
                pins_or_problem(logical, pins, problems)
                logical = ""
            continue
        if stripped.startswith("#"):
            note = stripped.lstrip("#").strip()
            if not raw.startswith((" ", "\t")) or not pins:
                via_list = False  # a header comment
            elif note == "via":
                via_list = True
            elif note.startswith("via "):
                pins[-1].via.append(note.removeprefix("via ").strip())
                via_list = False
            elif via_list and note:
                pins[-1].via.append(note)
            continue
        via_list = False
        if not stripped:
            continue
        if stripped.startswith("-"):
            options.append(stripped)
        elif stripped.endswith("\\"):
            logical = stripped.removesuffix("\\").strip()
        else:
            pins_or_problem(stripped, pins, problems)
    if logical:
        pins_or_problem(logical, pins, problems)
    return pins, options, problems


def pins_or_problem(line: str, pins: list[Pin], problems: list[str]) -> None:
    words = line.split()
    hashes = [w.removeprefix("--hash=") for w in words if w.startswith("--hash=")]
    spec = " ".join(w for w in words if not w.startswith("--hash="))
    try:
        requirement = Requirement(spec)
    except InvalidRequirement as e:
        problems.append(f"cannot read the lock line {line!r}: {e}")
        return
    pins.append(Pin(requirement, hashes))


def _via_name(via: str) -> str:
    return via if via == PROJECT_VIA else canonicalize_name(re.split(r"[\s\[]", via, maxsplit=1)[0])


def lock_problems(pyproject: dict[str, Any], lock_text: str) -> list[str]:
    """What makes the lock out of date with pyproject.toml, or unfit for install.sh; [] if none."""
    pins, options, problems = parse_lock(lock_text)
    dependencies = [Requirement(d) for d in pyproject["project"].get("dependencies", [])]
    build = [Requirement(r) for r in pyproject.get("build-system", {}).get("requires", [])]
    declared = {canonicalize_name(r.name) for r in dependencies}
    roots = declared | {canonicalize_name(r.name) for r in build}

    if "--only-binary :all:" not in options:
        problems.append("the lock does not say --only-binary :all: (nothing is built on a Pi)")
    by_name: dict[str, list[Pin]] = {}
    for pin in pins:
        by_name.setdefault(pin.name, []).append(pin)
        specs = list(pin.requirement.specifier)
        if len(specs) != 1 or specs[0].operator != "==" or pin.requirement.url:
            problems.append(f"{pin.requirement} is not pinned with ==")
        if not pin.hashes:
            problems.append(f"{pin.requirement} has no --hash")
        for bad in (h for h in pin.hashes if not SHA256.fullmatch(h)):
            problems.append(f"{pin.requirement} has a hash that is not sha256:<64 hex>: {bad}")
        if pin.name in FROM_APT:
            problems.append(f"{pin.name} is in the lock, but the installer takes it from apt")

    for requirement in [*dependencies, *build]:
        name = canonicalize_name(requirement.name)
        if name in FROM_APT:
            continue
        if name not in by_name:
            problems.append(f"{requirement} (pyproject.toml) is not in the lock")
        for pin in by_name.get(name, []):
            pinned = next(iter(pin.requirement.specifier)).version
            if not requirement.specifier.contains(pinned, prereleases=True):
                problems.append(f"the lock pins {name}=={pinned}, outside {requirement}")

    # Needed: a root, or something a needed pin depends on. Whatever else is left over.
    needed = set(roots)
    grew = True
    while grew:
        grew = False
        for pin in pins:
            if pin.name in needed:
                continue
            vias = {_via_name(v) for v in pin.via}
            if (PROJECT_VIA in vias and pin.name in declared) or vias & needed:
                needed.add(pin.name)
                grew = True
    for pin in pins:
        if pin.name not in needed:
            problems.append(f"{pin.name} is in the lock but nothing in pyproject.toml needs it")
    return problems


def _pyproject() -> dict[str, Any]:
    with PYPROJECT.open("rb") as f:
        return tomllib.load(f)


def test_the_committed_lock_is_current_with_pyproject() -> None:
    problems = lock_problems(_pyproject(), LOCK.read_text())
    assert problems == [], (
        "requirements/callguard.txt is out of date with pyproject.toml: run `make lock` "
        "and commit the lock with the change.\n  " + "\n  ".join(problems)
    )


def test_the_committed_lock_is_the_one_make_lock_writes() -> None:
    text = LOCK.read_text()
    assert "#    make lock\n" in text  # uv's header names the command that regenerates it
    pins, _, _ = parse_lock(text)
    assert {p.name for p in pins} >= {"pyserial", "gpiozero", "phonenumbers", "tinydb", "tomlkit"}
    assert "setuptools" in {p.name for p in pins}  # install.sh builds with --no-build-isolation


# A small lock in uv's format, both "# via" forms, for the checker's own tests.
PYPROJECT_SMALL = {
    "build-system": {"requires": ["setuptools>=77"]},
    "project": {"name": "callguard", "dependencies": ["gpiozero>=2.0", "tinydb>=4.8"]},
}
LOCK_SMALL = f"""\
# This file was autogenerated by uv via the following command:
#    make lock
--only-binary :all:

colorzero==2.0 \\
    --hash=sha256:{"a" * 64} \\
    --hash=sha256:{"b" * 64}
    # via gpiozero
gpiozero==2.0.1 \\
    --hash=sha256:{"c" * 64}
    # via callguard (pyproject.toml)
setuptools==84.2.1 \\
    --hash=sha256:{"d" * 64}
    # via
    #   colorzero
    #   something-else
tinydb==4.9.0 \\
    --hash=sha256:{"e" * 64}
    # via callguard (pyproject.toml)
"""


def _small(**project: Any) -> dict[str, Any]:
    return {**PYPROJECT_SMALL, "project": {**PYPROJECT_SMALL["project"], **project}}


def test_the_checker_reads_uvs_format() -> None:
    pins, options, problems = parse_lock(LOCK_SMALL)
    assert problems == []
    assert options == ["--only-binary :all:"]
    assert [(p.name, str(p.requirement), len(p.hashes)) for p in pins] == [
        ("colorzero", "colorzero==2.0", 2),
        ("gpiozero", "gpiozero==2.0.1", 1),
        ("setuptools", "setuptools==84.2.1", 1),
        ("tinydb", "tinydb==4.9.0", 1),
    ]
    assert pins[2].via == ["colorzero", "something-else"]
    assert lock_problems(PYPROJECT_SMALL, LOCK_SMALL) == []


def test_a_dependency_added_to_pyproject_but_not_locked_is_found() -> None:
    pyproject = _small(dependencies=["gpiozero>=2.0", "tinydb>=4.8", "tomlkit>=0.11"])
    assert lock_problems(pyproject, LOCK_SMALL) == [
        "tomlkit>=0.11 (pyproject.toml) is not in the lock"
    ]


def test_a_pin_outside_a_raised_specifier_is_found() -> None:
    pyproject = _small(dependencies=["gpiozero>=2.0", "tinydb>=5"])
    assert lock_problems(pyproject, LOCK_SMALL) == [
        "the lock pins tinydb==4.9.0, outside tinydb>=5"
    ]


def test_a_build_requirement_missing_from_the_lock_is_found() -> None:
    pyproject = {**PYPROJECT_SMALL, "build-system": {"requires": ["setuptools>=90"]}}
    assert lock_problems(pyproject, LOCK_SMALL) == [
        "the lock pins setuptools==84.2.1, outside setuptools>=90"
    ]


def test_a_removed_dependency_leaves_its_pins_behind_and_that_is_found() -> None:
    pyproject = _small(dependencies=["tinydb>=4.8"])
    # setuptools stays: colorzero needed it, but so does [build-system].
    assert sorted(lock_problems(pyproject, LOCK_SMALL)) == [
        "colorzero is in the lock but nothing in pyproject.toml needs it",
        "gpiozero is in the lock but nothing in pyproject.toml needs it",
    ]


def test_an_unpinned_or_unhashed_line_is_found() -> None:
    lock = LOCK_SMALL.replace("tinydb==4.9.0 \\\n    --hash=sha256:" + "e" * 64, "tinydb>=4.8")
    assert lock_problems(PYPROJECT_SMALL, lock) == [
        "tinydb>=4.8 is not pinned with ==",
        "tinydb>=4.8 has no --hash",
    ]
    lock = LOCK_SMALL.replace("sha256:" + "e" * 64, "md5:" + "e" * 32)
    assert lock_problems(PYPROJECT_SMALL, lock) == [
        f"tinydb==4.9.0 has a hash that is not sha256:<64 hex>: md5:{'e' * 32}"
    ]


def test_lgpio_in_the_lock_or_a_lock_allowing_sdists_is_found() -> None:
    lock = LOCK_SMALL.replace("--only-binary :all:\n", "") + (
        f"lgpio==0.2.2.0 \\\n    --hash=sha256:{'f' * 64}\n    # via gpiozero\n"
    )
    assert lock_problems(PYPROJECT_SMALL, lock) == [
        "the lock does not say --only-binary :all: (nothing is built on a Pi)",
        "lgpio is in the lock, but the installer takes it from apt",
    ]


# ================================================================================ the version


def test_the_package_version_is_the_installed_metadata() -> None:
    assert callguard.__version__ == metadata.version("callguard")
    assert version.version_info()["version"] == callguard.__version__


def test_run_from_a_checkout_never_installed_the_version_is_pyprojects(monkeypatch) -> None:
    def not_installed(name: str) -> str:
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(version.metadata, "version", not_installed)
    version.package_version.cache_clear()
    try:
        assert version.package_version() == _pyproject()["project"]["version"]
    finally:
        version.package_version.cache_clear()


def test_version_info_gives_the_checkouts_lock_digest() -> None:
    info = version.version_info()
    assert set(info) == {"version", "lock_digest"}
    assert info["lock_digest"] == "sha256:" + hashlib.sha256(LOCK.read_bytes()).hexdigest()
    assert json.loads(json.dumps(info)) == info  # as status --json carries it


def test_the_version_line_names_the_version_and_the_lock() -> None:
    line = version.version_line()
    digest = hashlib.sha256(LOCK.read_bytes()).hexdigest()
    assert line == f"callguard {callguard.__version__} (lock sha256:{digest[:12]})"


# An installed unit: CallGuard in a venv's site-packages, the lock copy install.sh writes beside
# it, and no checkout anywhere. A bare venv (no pip, nothing downloaded) with the package copied
# in and a dist-info, as pip leaves them.


def _unit(tmp_path: Path, lock: bytes | None) -> Path:
    prefix = tmp_path / "opt-callguard"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(prefix)], check=True)
    python = str(prefix / "bin" / "python")
    where = [python, "-I", "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"]
    purelib = Path(subprocess.run(where, capture_output=True, text=True, check=True).stdout.strip())
    shutil.copytree(
        REPO / "callguard", purelib / "callguard", ignore=shutil.ignore_patterns("__pycache__")
    )
    dist_info = purelib / "callguard-9.8.7.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: callguard\nVersion: 9.8.7\n")
    if lock is not None:
        (prefix / INSTALLED_LOCK_NAME).write_bytes(lock)
    return prefix


def _ask(prefix: Path) -> list[Any]:
    proc = subprocess.run(
        [
            str(prefix / "bin" / "python"),
            "-I",
            "-c",
            "import json, callguard, callguard.version as v; "
            "print(json.dumps([callguard.__version__, v.version_info(), v.version_line()]))",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=prefix,
    )
    assert proc.returncode == 0, proc.stderr
    result: list[Any] = json.loads(proc.stdout)
    return result


def test_an_installed_unit_reports_the_lock_install_sh_left_beside_it(tmp_path) -> None:
    lock = LOCK.read_bytes() + b"# the lock this unit was installed from\n"
    digest = hashlib.sha256(lock).hexdigest()

    dunder, info, line = _ask(_unit(tmp_path, lock))

    assert dunder == "9.8.7"  # the installed metadata, not the checkout's pyproject.toml
    assert info == {"version": "9.8.7", "lock_digest": f"sha256:{digest}"}
    assert line == f"callguard 9.8.7 (lock sha256:{digest[:12]})"


def test_an_installed_unit_without_its_lock_says_the_lock_is_unknown(tmp_path) -> None:
    _, info, line = _ask(_unit(tmp_path, None))
    assert info == {"version": "9.8.7", "lock_digest": None}
    assert line.startswith("callguard 9.8.7 (lock unknown")
