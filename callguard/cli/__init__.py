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
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import phonenumbers

from callguard import __version__
from callguard.config import DEFAULT_PATH as DEFAULT_CONFIG_PATH
from callguard.config import Config, as_dict, render
from callguard.config import load as load_config
from callguard.core.lists import LIST_NAMES, LIST_TITLES, target_for
from callguard.core.numbers import NumberError, parse_typed
from callguard.errors import CallGuardError, UsageError
from callguard.store.contacts import parse_file
from callguard.store.jsonfile import Recovery
from callguard.store.lists import Store
from callguard.texts import shown, shown_json


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        print(f"callguard: error: {shown(message)}", file=sys.stderr)
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

    run = sub.add_parser("run", help="the daemon, in the foreground (systemd runs this)")
    run.set_defaults(func=_cmd_run)

    log_cmd = sub.add_parser("log", help="the call log, oldest first")
    log_cmd.add_argument("--json", action="store_true", help="a JSON array of calls")
    log_cmd.add_argument("--limit", type=_positive_int, help="only the newest N calls")
    log_cmd.set_defaults(func=_cmd_log)

    status = sub.add_parser("status", help="the daemon's live state")
    status.add_argument("--json", action="store_true", help="a JSON object")
    status.set_defaults(func=_cmd_status)

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

    ack = sub.add_parser("ack", help="acknowledge (clear) the grooming alert")
    ack.add_argument("--by", default=None, help="who is acknowledging (default: your login name)")
    ack.set_defaults(func=_cmd_ack)

    for list_name in LIST_NAMES:
        _add_list_commands(sub, list_name)

    cfg = sub.add_parser("config", help="check the configuration")
    cfg_sub = cfg.add_subparsers(dest="config_command", metavar="ACTION", parser_class=_Parser)
    cfg_sub.required = True
    check = cfg_sub.add_parser("check", help="validate the config and print the effective one")
    check.add_argument("--json", action="store_true", help="print the effective config as JSON")
    check.set_defaults(func=_cmd_config_check)
    return parser


_LIST_HELP = {
    "allow": "numbers that always ring through (family, friends, the GP)",
    "block": "numbers that are answered and put down before the phone rings",
    "protect": "numbers that never call out (999, 101, the bank's card number): "
    "a call showing one is a fake",
}


def _add_list_commands(sub: argparse._SubParsersAction[_Parser], list_name: str) -> None:
    title = LIST_TITLES[list_name]
    parser = sub.add_parser(list_name, help=f"the {title}: {_LIST_HELP[list_name]}")
    verbs = parser.add_subparsers(dest="verb", metavar="ACTION", parser_class=_Parser)
    verbs.required = True

    add = verbs.add_parser("add", help=f"add a number to the {title}, or update its name")
    add.add_argument(
        "number", help="as you would dial it, e.g. '01707 354000' or '+33 1 23 45 67 89'"
    )
    add.add_argument("--name", default="", help="who it is, e.g. 'Daughter (Sue)'")
    add.add_argument("--note", default="", help="anything worth remembering about it")
    add.add_argument("--prefix", action="store_true", help="a rule for every number starting so")
    add.add_argument("--force", action="store_true", help="move it here from a conflicting list")
    add.add_argument("--by", default=None, help="who is adding it (default: your login name)")
    add.set_defaults(func=_cmd_list_add, list_name=list_name)

    remove = verbs.add_parser("remove", help=f"take a number off the {title}")
    remove.add_argument("number")
    remove.add_argument("--prefix", action="store_true", help="remove a prefix rule")
    remove.set_defaults(func=_cmd_list_remove, list_name=list_name)

    show = verbs.add_parser("list", help=f"show the {title}")
    show.add_argument("--json", action="store_true", help="a JSON array of entries")
    show.set_defaults(func=_cmd_list_show, list_name=list_name)

    imp = verbs.add_parser(
        "import", help="add every number in a CSV (number,name[,note]) or vCard file"
    )
    imp.add_argument("file", type=Path)
    imp.add_argument("--skip-invalid", action="store_true", help="import the good lines anyway")
    imp.add_argument(
        "--prefix", action="store_true", help="every number in the file is a prefix rule"
    )
    imp.add_argument(
        "--force", action="store_true", help="move numbers here from conflicting lists"
    )
    imp.add_argument("--by", default=None, help="who is importing (default: your login name)")
    imp.set_defaults(func=_cmd_list_import, list_name=list_name)


def _store(args: argparse.Namespace) -> tuple[Config, Store]:
    config = load_config(args.config)
    store = Store(
        config.storage.dir,
        region=config.screening.region,
        retention_days=config.storage.log_retention_days,
        on_recovery=_report_recovery,
    )
    return config, store


def _report_recovery(recovery: Recovery) -> None:
    print(f"callguard: WARNING: {shown(recovery.message(), lines=True)}", file=sys.stderr)


def _display(number: str, kind: str, region: str) -> str:
    if kind == "prefix":
        prefix = number.rstrip("*")
        code = "+" + str(phonenumbers.country_code_for_region(region))
        return ("0" + prefix[len(code) :] if prefix.startswith(code) else prefix) + "*"
    try:
        return parse_typed(number, region).display
    except NumberError:
        return number


def _cmd_list_add(args: argparse.Namespace) -> int:
    config, store = _store(args)
    target = target_for(args.number, config.screening.region, args.prefix)
    result = store.add(
        args.list_name, target, name=args.name, note=args.note, by=args.by, force=args.force
    )
    title = LIST_TITLES[args.list_name]
    label = f" as '{shown(result.entry.name)}'" if result.entry.name else ""
    verb = "Updated" if result.updated else "Added"
    where = "on" if result.updated else "to"
    print(f"{verb} {shown(target.describe())} {where} the {title}{label}.")
    for other in result.moved_from:
        print(f"It was on the {LIST_TITLES[other]}; it has been taken off.")
    return 0


def _cmd_list_remove(args: argparse.Namespace) -> int:
    config, store = _store(args)
    target = target_for(args.number, config.screening.region, args.prefix)
    entry = store.remove(args.list_name, target)
    label = f" ({shown(entry.name)})" if entry.name else ""
    print(f"Removed {shown(target.describe())}{label} from the {LIST_TITLES[args.list_name]}.")
    return 0


def _cmd_list_show(args: argparse.Namespace) -> int:
    config, store = _store(args)
    entries = sorted(store.entries(args.list_name), key=lambda e: (e.name.lower(), e.number))
    if args.json:
        print(shown_json([e.to_json() for e in entries]))
        return 0
    title = LIST_TITLES[args.list_name]
    if not entries:
        print(f"The {title} is empty.")
        return 0
    region = config.screening.region
    rows = [
        (shown(_display(e.number, e.kind, region)), shown(e.name), shown(e.note), e.added[:10])
        for e in entries
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    print(f"The {title} ({len(entries)}):")
    for number, name, note, added in rows:
        print(
            f"  {number:<{widths[0]}}  {name:<{widths[1]}}  {note:<{widths[2]}}  "
            f"added {shown(added)}"
        )
    return 0


def _cmd_list_import(args: argparse.Namespace) -> int:
    config, store = _store(args)
    items, problems = parse_file(args.file, config.screening.region, args.prefix)
    for line, message in problems:
        print(f"{shown(args.file)}:{line}: {shown(message)}", file=sys.stderr)
    if problems and not args.skip_invalid:
        raise UsageError(
            f"{len(problems)} bad line(s) in {args.file}; nothing was imported. Fix them, or "
            "run again with --skip-invalid to import the good lines"
        )
    if not items:
        raise UsageError(f"{args.file} has no numbers to import")
    added, updated = store.add_many(args.list_name, items, by=args.by, force=args.force)
    skipped = f", skipped {len(problems)} bad line(s)" if problems else ""
    print(
        f"Imported {shown(args.file)} into the {LIST_TITLES[args.list_name]}: "
        f"{added} added, {updated} updated{skipped}."
    )
    return 0


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a number of calls; give a whole number such as 20"
        )
    return value


def _cmd_run(args: argparse.Namespace) -> int:
    from callguard.daemon.app import Daemon
    from callguard.daemon.systemd import setup_logging

    config = load_config(args.config)
    setup_logging(logging.DEBUG if args.debug else logging.INFO)
    return Daemon(config, config_path=args.config).run()


def _cmd_log(args: argparse.Namespace) -> int:
    _, store = _store(args)
    calls = store.calls(limit=args.limit)
    if args.json:
        print(shown_json(calls))
        return 0
    if not calls:
        print("No calls logged yet.")
        return 0
    for call in calls:
        when = shown(str(call.get("started", ""))[:16].replace("T", " "))
        who = shown(call.get("display") or call.get("number") or call.get("category") or "?")
        name = f" ({shown(call['name'])})" if call.get("name") else ""
        answered = {True: "answered", False: "not answered", None: ""}.get(call.get("answered"))
        duration = f", {call['duration_s'] / 60:.0f} min" if call.get("duration_s") else ""
        print(
            f"{when}  {who}{name}: {shown(call.get('verdict'))}. {shown(call.get('reason'))} "
            f"{answered}{duration}".rstrip()
        )
    return 0


def _daemon_alive(status: dict[str, object]) -> bool:
    if status.get("daemon") != "running":
        return False
    try:
        os.kill(int(str(status.get("pid"))), 0)
    except PermissionError:
        return True  # alive, owned by the callguard user
    except (OSError, ValueError):
        return False
    return True


def _cmd_status(args: argparse.Namespace) -> int:
    _, store = _store(args)
    status = store.read_status()
    if status is None:
        status = {
            "daemon": "stopped",
            "modem": "disconnected",
            "modem_detail": {"detail": "the daemon has never run with this storage.dir"},
            "line": "idle",
            "grooming_alert": False,
        }
    elif not _daemon_alive(status):
        status = {
            **status,
            "daemon": "stopped",
            "modem": "disconnected",
            "line": "idle",
            "modem_detail": {
                **dict(status.get("modem_detail") or {}),
                "detail": "the daemon is not running",
            },
        }
    status["grooming_alert"] = store.alert_active()  # the file is the truth, daemon or not
    if args.json:
        print(shown_json(status))
        return 0
    detail = dict(status.get("modem_detail") or {})
    print(f"daemon:         {shown(status['daemon'])}")
    print(f"modem:          {shown(status['modem'])} ({shown(detail.get('detail', ''))})")
    print(f"line:           {shown(status['line'])}")
    print(f"grooming alert: {'ON - ask who called' if status.get('grooming_alert') else 'off'}")
    last = status.get("last_call")
    if isinstance(last, dict):
        who = last.get("display") or ""
        print(
            f"last call:      {shown(last.get('started'))} {shown(who)} "
            f"{shown(last.get('verdict'))}"
        )
    return 0


def _cmd_selftest(args: argparse.Namespace) -> int:
    from callguard.cli.selftest import SelfTest, table

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
    from callguard.cli.setup import run_setup
    from callguard.config import resolve_path

    path = resolve_path(args.config) or DEFAULT_CONFIG_PATH
    return run_setup(Path(path))


def _cmd_ack(args: argparse.Namespace) -> int:
    _, store = _store(args)
    alert = store.ack_alert(by=args.by)
    if alert is None:
        print("There is no grooming alert to acknowledge.")
        return 0
    call = alert.get("call") or {}
    who = shown(call.get("display") or call.get("category") or "an unknown caller")
    raised = shown(str(alert.get("raised", ""))[:16].replace("T", " "))
    print(
        f"Grooming alert cleared (raised {raised} for a long call from {who}). "
        "Please ask the resident who it was."
    )
    return 0


def _cmd_config_check(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    if args.json:
        print(json.dumps(as_dict(config), indent=2))
    else:
        print(render(config), end="")
        print(f"# {shown(config.source)}: OK", file=sys.stderr)
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from callguard.cli.demo import run_demo

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
        print(f"callguard: error: {shown(exc, lines=True)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except CallGuardError as exc:
        if args.debug:
            raise
        print(f"callguard: error: {shown(exc, lines=True)}", file=sys.stderr)
        return 1
    except Exception as exc:
        if args.debug:
            raise
        print(
            f"callguard: error: {shown(exc, lines=True)} (run with --debug for details)",
            file=sys.stderr,
        )
        return 1
