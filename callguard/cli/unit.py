"""Commands that run or fit a unit: ``run`` (the daemon), ``demo``, ``sim``, ``selftest``,
``setup``. Each imports what it runs, the config included, only when it runs, so building the
parser costs nothing and ``callguard log`` stays quick."""

from __future__ import annotations

import argparse
import json
import logging
import sys

from callguard.cli.common import Commands
from callguard.texts import shown


def register(sub: Commands) -> None:
    demo = sub.add_parser("demo", help="a scripted morning on a simulated UK line, narrated")
    demo.add_argument("--fast", action="store_true", help="run the calls at ten times speed")
    demo.set_defaults(func=_cmd_demo)

    sim = sub.add_parser(
        "sim",
        help="run the simulated modem and print the port to open",
        description="Options after 'sim' are those of 'python -m callguard.sim --help'.",
        add_help=False,
    )
    sim.set_defaults(func=cmd_sim)

    run = sub.add_parser("run", help="the daemon, in the foreground (systemd runs this)")
    run.set_defaults(func=_cmd_run)

    selftest = sub.add_parser("selftest", help="check the hardware a volunteer has just fitted")
    selftest.add_argument("--json", action="store_true", help="the results as a JSON object")
    selftest.add_argument("--no-sound", action="store_true", help="do not play the test sentence")
    selftest.add_argument(
        "--button-timeout",
        type=float,
        default=20.0,
        metavar="S",
        help="seconds to wait for the button (0: do not wait)",
    )
    selftest.set_defaults(func=_cmd_selftest)

    setup = sub.add_parser("setup", help="plain questions to set the unit up for this resident")
    setup.set_defaults(func=_cmd_setup)


def _cmd_run(args: argparse.Namespace) -> int:
    from callguard.config import load as load_config
    from callguard.daemon.app import Daemon

    config = load_config(args.config)
    return Daemon(config, config_path=args.config).run()


def _cmd_selftest(args: argparse.Namespace) -> int:
    from callguard.cli.selftest import SelfTest, table
    from callguard.config import load as load_config

    config = load_config(args.config)
    if not args.debug:
        logging.getLogger().setLevel(logging.CRITICAL)  # the table says it all
    say = (lambda text: print(text, file=sys.stderr)) if args.json else print
    checks = SelfTest(
        config, sound=not args.no_sound, button_timeout_s=args.button_timeout, say=say
    ).run()
    failed = any(c.status == "fail" for c in checks)
    if args.json:
        print(json.dumps({"ok": not failed, "checks": [c.to_json() for c in checks]}, indent=2))
    else:
        print(shown(table(checks), lines=True))  # the modem's own words are in it
    return 1 if failed else 0


def _cmd_setup(args: argparse.Namespace) -> int:
    from pathlib import Path

    from callguard.cli.setup import run_setup
    from callguard.config import DEFAULT_PATH as DEFAULT_CONFIG_PATH
    from callguard.config import resolve_path

    path = resolve_path(args.config) or DEFAULT_CONFIG_PATH
    return run_setup(Path(path))


def _cmd_demo(args: argparse.Namespace) -> int:
    from callguard.cli.demo import run_demo

    if not args.debug:
        logging.getLogger().setLevel(logging.ERROR)  # the narration says it all

    return run_demo(fast=args.fast)


def cmd_sim(args: argparse.Namespace) -> int:
    from callguard.sim.__main__ import main as sim_main

    return sim_main(args.extra)
