"""The ``callguard`` command line.

Exit codes: 0 success, 1 runtime failure, 2 bad input or usage (a message on stderr naming the
value and the fix; nothing written).

Text that came from outside (a caller-ID name or number, a list entry's name or note, an import
file's line, the modem's own words in the status) can hold terminal escapes and bidi controls:
every human-readable line passes it through :func:`~callguard.texts.shown`, and ``--json``
output goes through :func:`~callguard.texts.shown_json`, which escapes the same characters as
JSON ``\\uXXXX`` so a program still reads back the exact text.

Speed: the parser is built from every command family's ``register()``, so importing the family
modules must be cheap. They import only argparse, :mod:`callguard.cli.common` and the texts at
module level; the config, the store, phonenumbers, the modem and the hardware are imported by
the command that uses them (:func:`~callguard.cli.common.open_store` for the store). This
package imports the families only in :func:`build_parser`, so ``import callguard.cli.unit``
loads that family alone (``python -X importtime -m callguard status`` shows what a command
costs, and tests/cli/test_cli_speed.py keeps it so). ``--version`` hashes the lock file only
when it is asked for.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from callguard.cli.common import Parser
from callguard.errors import CallGuardError, UsageError
from callguard.logs import setup_logging
from callguard.texts import shown


class _Version(argparse.Action):
    """``--version``: print :func:`~callguard.version.version_line` and exit 0. Worked out only
    when asked for (it reads and hashes the lock file), unlike argparse's own version action."""

    def __init__(self, option_strings: Sequence[str], dest: str, help: str | None = None) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, help=help)

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: object,
        option_string: str | None = None,
    ) -> None:
        from callguard.version import version_line

        print(version_line())
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    # The families are imported here, not at the top: importing one of them (callguard.cli.unit)
    # then runs this package's module without loading the others.
    from callguard.cli import alerts, calls, fleet, hub, link, lists, settings, unit, web

    parser = Parser(prog="callguard", description="Call screening for older people's landlines.")
    parser.add_argument(
        "--version", action=_Version, help="show the version and the lock's digest, and exit"
    )
    parser.add_argument(
        "--config",
        default=os.environ.get("CALLGUARD_CONFIG"),
        help="config file (TOML); default $CALLGUARD_CONFIG or /etc/callguard/callguard.toml",
    )
    parser.add_argument("--debug", action="store_true", help="verbose logs and tracebacks")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True
    for family in (unit, calls, lists, settings, web, alerts, link, fleet, hub):
        family.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from callguard.cli.unit import cmd_sim

    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and args.func is not cmd_sim:
        parser.error("unrecognized arguments: " + " ".join(extra))
    args.extra = extra
    setup_logging(logging.DEBUG if args.debug else logging.INFO)  # one handler, every command
    try:
        return int(args.func(args))
    except UsageError as exc:
        print(f"callguard: error: {shown(exc, lines=True)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except CallGuardError as exc:
        if args.debug:
            raise
        print(f"callguard: error: {shown(exc, lines=True)}", file=sys.stderr)
        return 1
    # anything else is a bug in CallGuard: its traceback is what a developer needs
