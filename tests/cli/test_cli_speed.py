"""The command line imports only what a command needs (issue 13 item 6).

``callguard status`` and ``callguard log`` are what a volunteer types over SSH on a Pi Zero 2 W,
where an import costs about ten times what it costs on a desktop. What they import is checked
here, in a fresh interpreter each time, rather than how long they take (``python -X importtime
-m callguard status`` shows the time).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import phonenumbers
import pytest

from callguard.core import numbers
from callguard.version import version_line

NEVER_FOR_STATUS = (
    "gpiozero",
    "serial",
    "pycountry",
    "phonenumbers.geocoder",
    "callguard.modem.protocol",
    "callguard.modem.transport",
    "callguard.modem.voice",
    "callguard.hardware",
    "callguard.audio",
    "callguard.daemon",
    "callguard.sim",
    "callguard.cli.selftest",
    "callguard.cli.setup",
    "callguard.cli.demo",
)
"""What neither ``status`` nor ``log`` may import: the modem, the GPIO, speech, the daemon..."""

NOT_FOR_THE_PARSER = (
    *NEVER_FOR_STATUS,
    "phonenumbers",
    "tinydb",
    "tomlkit",
    "callguard.config",
    "callguard.store",
    "callguard.core.screening",
)
"""What building the parser (every command's options) may not import: the config and the store
are imported by the commands that use them (cli/common.py's open_store)."""

NOT_FOR_STATUS = ["phonenumbers", "tomlkit", "callguard.store.contacts", "callguard.store.biglist"]
"""What ``status`` must not import: the phone library, TOML writing, the import parsers, the
community list."""

CONFIG = """\
[storage]
dir = "{dir}"
[modem]
country = "GB"
[screening]
region = "GB"
"""


def _modules_after(code: str) -> set[str]:
    """The modules a fresh interpreter has loaded after running ``code``."""
    out = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    return set(json.loads(out.stdout.splitlines()[-1]))


def _loaded(modules: set[str], names: tuple[str, ...] | list[str]) -> list[str]:
    return sorted(m for m in modules if any(m == n or m.startswith(n + ".") for n in names))


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "callguard.toml"
    path.write_text(CONFIG.format(dir=tmp_path / "store"))
    return path


def _command(config: Path, *argv: str) -> str:
    return (
        "from callguard.cli import main\n"
        f"assert main(['--config', {str(config)!r}, *{list(argv)!r}]) == 0\n"
        "from callguard import version\n"
        "assert version.lock_digest.cache_info().currsize == 0, 'the lock was hashed'\n"
    )


def test_the_cli_package_imports_no_command_family_until_the_parser_is_built() -> None:
    modules = _modules_after("from callguard.cli import build_parser, main")
    assert (
        _loaded(modules, ["callguard.cli.calls", "callguard.cli.lists", "callguard.cli.unit"]) == []
    )
    assert _loaded(modules, NOT_FOR_THE_PARSER) == []


def test_the_unit_and_settings_commands_register_without_config_store_or_phone_library() -> None:
    code = (
        "from callguard.cli import common, settings, unit\n"
        "parser = common.Parser(prog='callguard')\n"
        "sub = parser.add_subparsers(dest='command', parser_class=common.Parser)\n"
        "unit.register(sub)\n"
        "settings.register(sub)\n"
        "assert parser.parse_args(['config', 'check']).func.__name__ == '_cmd_config_check'\n"
    )
    modules = _modules_after(code)
    assert _loaded(modules, ["callguard.cli.calls", "callguard.cli.lists"]) == []
    assert _loaded(modules, NOT_FOR_THE_PARSER) == []


def test_building_the_whole_parser_loads_no_modem_gpio_speech_or_daemon() -> None:
    modules = _modules_after("from callguard.cli import build_parser\nbuild_parser()")
    assert "callguard.cli.lists" in modules  # every family registered its commands
    assert _loaded(modules, NEVER_FOR_STATUS) == []
    assert _loaded(modules, ["callguard.config", "callguard.store.lists", "tinydb"]) == []


def test_building_the_whole_parser_loads_no_phone_library_or_store() -> None:
    modules = _modules_after("from callguard.cli import build_parser\nbuild_parser()")
    assert _loaded(modules, NOT_FOR_THE_PARSER) == []


@pytest.mark.parametrize("argv", [["status"], ["status", "--json"], ["log", "--limit", "20"]])
def test_status_and_log_load_no_modem_gpio_speech_or_daemon(config: Path, argv: list[str]) -> None:
    modules = _modules_after(_command(config, *argv))
    assert "callguard.store.lists" in modules  # the command did run against the store
    assert _loaded(modules, NEVER_FOR_STATUS) == []


def test_status_loads_no_phonenumbers_tomlkit_or_contacts(config: Path) -> None:
    modules = _modules_after(_command(config, "status"))
    assert _loaded(modules, NOT_FOR_STATUS) == []


def test_version_is_worked_out_only_when_asked_for() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "callguard", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert out.stdout == version_line() + "\n"


# --- the numbers module is light, so that the store and the lists are ---


def test_importing_the_numbers_module_imports_neither_phonenumbers_nor_the_modem() -> None:
    modules = _modules_after("import callguard.core.numbers, callguard.core.lists")
    assert _loaded(modules, ["phonenumbers", "callguard.modem"]) == []


def test_the_uk_config_region_is_checked_without_phonenumbers() -> None:
    code = (
        "from callguard.core.numbers import region_ok\n"
        "assert region_ok('GB') and region_ok('JE') and not region_ok('gb')"
    )
    assert "phonenumbers" in _modules_after(code)  # 'gb' needed the library
    modules = _modules_after("from callguard.core.numbers import region_ok\nregion_ok('GB')")
    assert _loaded(modules, ["phonenumbers"]) == []
    assert numbers._UK_REGIONS <= phonenumbers.SUPPORTED_REGIONS


def test_the_number_types_written_out_are_phonenumbers_own() -> None:
    types = phonenumbers.PhoneNumberType
    assert {kind: str(category) for kind, category in numbers._TYPE_CATEGORY.items()} == {
        types.FIXED_LINE: "landline",
        types.FIXED_LINE_OR_MOBILE: "landline",
        types.MOBILE: "mobile",
        types.TOLL_FREE: "freephone",
        types.PREMIUM_RATE: "premium-rate",
        types.SHARED_COST: "non-geographic",
        types.UAN: "non-geographic",
        types.PERSONAL_NUMBER: "non-geographic",
        types.VOIP: "non-geographic",
        types.PAGER: "non-geographic",
        types.VOICEMAIL: "non-geographic",
    }
