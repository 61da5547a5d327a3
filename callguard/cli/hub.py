"""``callguard hub``: the volunteer group's community-list service, and its key, removals and
list (run on the group's machine, next to its broker; not on a unit)."""

from __future__ import annotations

import argparse
import getpass

from callguard.cli.common import Commands
from callguard.errors import UsageError
from callguard.texts import shown, shown_json


def register(sub: Commands) -> None:
    hub = sub.add_parser(
        "hub",
        help="the volunteer group's community-list service, next to its broker",
        description="Without a verb: collect the units' reports and publish the group's signed "
        "community block list ([hub] in the config), in the foreground, until stopped.",
    )
    hub.set_defaults(func=_cmd_run)
    verbs = hub.add_subparsers(dest="verb", metavar="VERB")
    verbs.required = False

    key = verbs.add_parser(
        "key",
        help="make the signing key if there is none; print the public key for the units",
    )
    key.set_defaults(func=_cmd_key)

    remove = verbs.add_parser(
        "remove", help="take a number off the list (until enough units report it again)"
    )
    remove.add_argument("number", metavar="NUMBER", help="the number, e.g. +441632960123")
    remove.set_defaults(func=_cmd_remove)

    list_cmd = verbs.add_parser("list", help="the numbers on the list and how many units")
    list_cmd.add_argument("--json", action="store_true", help="a JSON array of numbers")
    list_cmd.set_defaults(func=_cmd_list)


def _cmd_run(args: argparse.Namespace) -> int:
    from callguard.config import load
    from callguard.link.hub import Hub

    hub = Hub(load(args.config).hub)
    try:
        return hub.run()
    finally:
        hub.close()


def _cmd_key(args: argparse.Namespace) -> int:
    import sys

    from callguard.config import load
    from callguard.link.community import public_key_b64
    from callguard.link.hub import KEY_FILE, create_key

    config = load(args.config).hub
    key, made = create_key(config.dir)
    where = f"{config.dir}/{KEY_FILE}"
    print(
        f"{'Made a new' if made else 'The'} signing key: {shown(where)} (keep it private; back "
        "it up). Put this in every unit's config:",
        file=sys.stderr,
    )
    print(f'[fleet]\ncommunity = true\ncommunity_key = "{public_key_b64(key)}"')
    return 0


def _cmd_remove(args: argparse.Namespace) -> int:
    from callguard.config import load
    from callguard.core.numbers import parse_typed
    from callguard.link.hub import Hub

    config = load(args.config)
    caller = parse_typed(args.number, config.screening.region)  # NumberError says what to type
    if caller.e164 is None:
        raise UsageError(
            f"{shown(args.number)} is a short code; the community list holds whole numbers "
            "(give one such as +441632960123)"
        )
    hub = Hub(config.hub, create=False)
    try:
        was = hub.remove(caller.e164, f"{getpass.getuser()} via callguard hub remove")
    finally:
        hub.close()
    if was:
        print(
            f"Removed {caller.e164} from the community list; the running hub publishes the "
            "list without it within a few seconds. It comes back only if enough units report "
            "it again."
        )
    else:
        print(
            f"{caller.e164} was not on the community list; recorded anyway, so only reports "
            "from now on count towards it."
        )
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    from callguard.config import load
    from callguard.link.hub import Hub

    config = load(args.config)
    hub = Hub(config.hub, create=False)
    try:
        entries = hub.entries(hub.clock())
    finally:
        hub.close()
    if args.json:
        print(shown_json([entry.to_json() for entry in entries]))
        return 0
    if not entries:
        print(
            "The community list is empty: no number has been reported by "
            f"{config.hub.threshold} units within {config.hub.window_days:g} days."
        )
        return 0
    for entry in entries:
        last = entry.last_report.strftime("%Y-%m-%d %H:%M")
        units = "1 unit" if entry.units == 1 else f"{entry.units} units"
        print(f"{entry.number}  {units}, last reported {last} UTC")
    print(f"{len(entries)} numbers on the list.")
    return 0
