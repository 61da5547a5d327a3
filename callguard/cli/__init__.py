"""The ``callguard`` command line.

Exit codes: 0 success, 1 runtime failure, 2 bad input or usage (a message on stderr naming the
value and the fix; nothing written).

Text that came from outside (a caller-ID name or number, a list entry's name or note, an import
file's line, the modem's own words in the status) can hold terminal escapes and bidi controls:
every human-readable line passes it through :func:`~callguard.texts.shown`, and ``--json``
output goes through :func:`~callguard.texts.shown_json`, which escapes the same characters as
JSON ``\\uXXXX`` so a program still reads back the exact text.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from callguard.cli import calls, lists, settings, unit
from callguard.cli.common import Parser
from callguard.errors import CallGuardError, UsageError
from callguard.logs import setup_logging
from callguard.texts import shown
from callguard.version import version_line


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="callguard", description="Call screening for older people's landlines.")
    parser.add_argument("--version", action="version", version=version_line())
    parser.add_argument(
        "--config",
        default=os.environ.get("CALLGUARD_CONFIG"),
        help="config file (TOML); default $CALLGUARD_CONFIG or /etc/callguard/callguard.toml",
    )
    parser.add_argument("--debug", action="store_true", help="verbose logs and tracebacks")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True
    for family in (unit, calls, lists, settings):
        family.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and args.func is not unit.cmd_sim:
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
