"""What every command needs: the store from the config, recovery warnings, argument types.

Importing this module (and so building the parser) loads neither the config nor the store:
:func:`open_store` imports them when a command runs, so each command pays only for what it uses.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeAlias

from callguard.texts import shown

if TYPE_CHECKING:
    from callguard.config import Config
    from callguard.store.jsonfile import Recovery
    from callguard.store.lists import Store


class Parser(argparse.ArgumentParser):
    """argparse that says what was wrong as ``callguard: error: ...`` and exits 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        print(f"callguard: error: {shown(message)}", file=sys.stderr)
        raise SystemExit(2)


Commands: TypeAlias = "argparse._SubParsersAction[Parser]"


def open_store(args: argparse.Namespace) -> tuple[Config, Store]:
    from callguard.config import load as load_config
    from callguard.store.lists import Store

    config = load_config(args.config)
    store = Store(
        config.storage.dir,
        region=config.screening.region,
        retention_days=config.storage.log_retention_days,
        runtime_dir=config.storage.runtime_dir,
        on_recovery=report_recovery,
    )
    return config, store


def report_recovery(recovery: Recovery) -> None:
    print(f"callguard: WARNING: {shown(recovery.message(), lines=True)}", file=sys.stderr)


def count_of(things: str) -> Callable[[str], int]:
    """An argument type: a whole number of ``things`` (e.g. ``alerts``), 1 or more."""

    def count(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = 0
        if value < 1:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not a number of {things}; give a whole number such as 20"
            )
        return value

    return count


positive_int = count_of("calls")
