"""``callguard config check``: validate the config and print the effective one.

The config module is imported when the command runs, not when the parser is built."""

from __future__ import annotations

import argparse
import json
import sys

from callguard.cli.common import Commands, Parser
from callguard.texts import shown


def register(sub: Commands) -> None:
    cfg = sub.add_parser("config", help="check the configuration")
    cfg_sub = cfg.add_subparsers(dest="config_command", metavar="ACTION", parser_class=Parser)
    cfg_sub.required = True
    check = cfg_sub.add_parser("check", help="validate the config and print the effective one")
    check.add_argument("--json", action="store_true", help="print the effective config as JSON")
    check.set_defaults(func=_cmd_config_check)


def _cmd_config_check(args: argparse.Namespace) -> int:
    from callguard.config import as_dict, render
    from callguard.config import load as load_config

    config = load_config(args.config)
    if args.json:
        print(json.dumps(as_dict(config), indent=2))
    else:
        print(render(config), end="")
        print(f"# {shown(config.source)}: OK", file=sys.stderr)
    return 0
