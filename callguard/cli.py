"""The ``callguard`` command line.

Exit codes: 0 success, 1 runtime failure, 2 bad input or usage (a message on stderr naming the
value and the fix; nothing written).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from callguard import __version__
from callguard.errors import CallGuardError, UsageError


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        print(f"callguard: error: {message}", file=sys.stderr)
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="callguard", description="Call screening for older people's landlines.")
    parser.add_argument("--version", action="version", version=f"callguard {__version__}")
    parser.add_argument(
        "--config",
        default=os.environ.get("CALLGUARD_CONFIG"),
        help="config file (TOML); default $CALLGUARD_CONFIG or /etc/callguard/callguard.toml",
    )
    parser.add_argument("--debug", action="store_true", help="verbose logs and tracebacks")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    demo = sub.add_parser("demo", help="a scripted morning on a simulated UK line, narrated")
    demo.add_argument("--fast", action="store_true", help="run the calls at ten times speed")
    demo.set_defaults(func=_cmd_demo)

    sim = sub.add_parser(
        "sim",
        help="run the simulated modem and print the port to open",
        description="Options after 'sim' are those of 'python -m callguard.sim --help'.",
        add_help=False,
    )
    sim.set_defaults(func=_cmd_sim)
    return parser


def _cmd_demo(args: argparse.Namespace) -> int:
    from callguard.demo import run_demo

    if not args.debug:
        logging.getLogger().setLevel(logging.ERROR)  # the narration says it all

    return run_demo(fast=args.fast)


def _cmd_sim(args: argparse.Namespace) -> int:
    from callguard.sim.__main__ import main as sim_main

    return sim_main(args.extra)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and args.func is not _cmd_sim:
        parser.error("unrecognized arguments: " + " ".join(extra))
    args.extra = extra
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        return int(args.func(args))
    except UsageError as exc:
        print(f"callguard: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except CallGuardError as exc:
        if args.debug:
            raise
        print(f"callguard: error: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:
        if args.debug:
            raise
        print(f"callguard: error: {exc} (run with --debug for details)", file=sys.stderr)
        return 1
