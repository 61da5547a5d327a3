"""The import contract: the package tree is the architecture, and this test keeps it so.

Layers, each importing only from itself and the layers it names (direct imports, wherever they
are written, function bodies included):

* ``core`` is the functional core: no I/O, no clock, no threads. It may use the sans-IO modem
  protocol (the events it consumes) and, for type hints only, the config's dataclasses.
* ``modem``, ``store``, ``hardware``, ``audio`` are the shell's parts; ``sim`` is the simulated
  modem (a product feature, independent of the daemon).
* ``daemon``, ``web`` (the family page) and later ``link`` are processes: nothing below them
  imports them. ``web`` reads and writes through the store and never imports the daemon, the
  modem or the hardware.
* ``cli`` is the face: only ``callguard.__main__`` imports it.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "callguard"
BASE = {"callguard.errors", "callguard.texts"}  # every layer may use these

ALLOWED: dict[str, set[str]] = {
    "callguard": {"callguard.version"},  # the package root: its version only
    "callguard.errors": set(),
    "callguard.texts": set(),
    "callguard.logs": set(),
    "callguard.version": set(),
    "callguard.clock": set(),  # whether the system clock is right yet (one syscall)
    "callguard.core": {"callguard.core", "callguard.modem.protocol"},
    "callguard.modem": {"callguard.modem"},
    "callguard.store": {"callguard.store", "callguard.core"},
    "callguard.hardware": {"callguard.hardware", "callguard.core", "callguard.modem"},
    "callguard.audio": {"callguard.audio", "callguard.core", "callguard.store"},
    "callguard.sim": {"callguard.sim", "callguard.modem.protocol"},
    "callguard.config": {"callguard.core", "callguard.store.files", "callguard.modem.profiles"},
    "callguard.daemon": {
        "callguard.daemon",
        "callguard.core",
        "callguard.modem",
        "callguard.store",
        "callguard.hardware",
        "callguard.audio",
        "callguard.config",
        "callguard.logs",
        "callguard.version",
        "callguard.clock",
    },
    # the family page, its own process: the store, the core and the config; never the daemon,
    # the modem or the hardware (it talks to the daemon only through the store's files)
    "callguard.web": {"callguard.web", "callguard.store", "callguard.core", "callguard.config"},
    # alert delivery and the fleet link, its own process: like the family page, it meets the
    # daemon only in the store's files
    "callguard.link": {"callguard.link", "callguard.store", "callguard.core", "callguard.config"},
    "callguard.cli": {"callguard"},  # the face may use everything (see allowed)
    "callguard.__main__": {"callguard.cli"},
}
TYPE_ONLY: dict[str, set[str]] = {"callguard.core": {"callguard.config"}}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer_of(module: str) -> str:
    best = max((k for k in ALLOWED if module == k or module.startswith(k + ".")), key=len)
    return best


def imports(path: Path) -> Iterator[tuple[int, str, bool]]:
    """(line, imported module, only for type checking) for every callguard import in a file."""
    tree = ast.parse(path.read_text(), str(path))
    type_only: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for inner in node.body:
                for sub in ast.walk(inner):
                    type_only.add(id(sub))
    package = module_name(path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, id(node) in type_only
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against this module's package
                anchor = package.rsplit(".", node.level - (path.name == "__init__.py"))[0]
                base = f"{anchor}.{base}" if base else anchor
            for alias in node.names:
                # "from callguard.core import screening" imports the submodule
                yield node.lineno, f"{base}.{alias.name}", id(node) in type_only


def allowed(layer: str, target: str, type_only: bool) -> bool:
    if layer == "callguard.cli":
        return True
    names = ALLOWED[layer] | BASE | (TYPE_ONLY.get(layer, set()) if type_only else set())
    return any(target == n or target.startswith(n + ".") for n in names)


def violations() -> list[str]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = module_name(path)
        layer = layer_of(module)
        for line, target, type_only in imports(path):
            if not target.startswith("callguard.") or target == "callguard.__version__":
                continue
            if not allowed(layer, target, type_only):
                found.append(f"{path.relative_to(PACKAGE.parent)}:{line}: {module} -> {target}")
    return found


def test_every_module_imports_only_from_the_layers_below_it() -> None:
    assert violations() == []


def test_every_module_belongs_to_a_layer() -> None:
    for path in PACKAGE.rglob("*.py"):
        module = module_name(path)
        assert any(module == k or module.startswith(k + ".") for k in ALLOWED), module


@pytest.mark.parametrize(
    ("layer", "target", "ok"),
    [
        ("callguard.core", "callguard.store.lists", False),
        ("callguard.core", "callguard.daemon.app", False),
        ("callguard.core", "callguard.modem.transport", False),
        ("callguard.core", "callguard.modem.protocol", True),
        ("callguard.store", "callguard.cli.common", False),
        ("callguard.daemon", "callguard.cli", False),
        ("callguard.cli", "callguard.daemon.app", True),
        ("callguard.web", "callguard.store.lists", True),
        ("callguard.web", "callguard.daemon.status", False),
        ("callguard.web", "callguard.modem.transport", False),
        ("callguard.web", "callguard.hardware.indicators", False),
        ("callguard.web", "callguard.cli.common", False),
        ("callguard.store", "callguard.web.app", False),
    ],
)
def test_the_contract_itself_refuses_what_it_should(layer: str, target: str, ok: bool) -> None:
    assert allowed(layer, target, type_only=False) is ok
