"""``callguard web`` (the family page, in the foreground) and ``callguard web password``."""

from __future__ import annotations

import argparse
import sys

from callguard.cli.common import Commands, Parser
from callguard.errors import UsageError
from callguard.texts import shown


def register(sub: Commands) -> None:
    web = sub.add_parser(
        "web",
        help="the family page, in the foreground (its systemd unit runs this)",
        description="Serve the family page (lists, calls and the grooming alert, behind a "
        "password) until stopped. Set its password first: callguard web password",
    )
    web.add_argument("--host", default=None, help="listen on this address instead of web.host")
    web.add_argument(
        "--port",
        type=_port,
        default=None,
        help="listen on this port instead of web.port (0: any free port, printed at start)",
    )
    web.set_defaults(func=_cmd_web)
    verbs = web.add_subparsers(dest="verb", metavar="ACTION", parser_class=Parser)
    password = verbs.add_parser(
        "password",
        help="set or reset the family page's password",
        description="Set the family page's one password (at least 8 characters). Everyone "
        "logged in with the old one must log in again.",
    )
    password.add_argument(
        "--stdin", action="store_true", help="read the password from standard input (scripts)"
    )
    password.set_defaults(func=_cmd_password)


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a port; give a number from 1 to 65535, e.g. 8080 (0: any free port)"
        )
    return value


def _cmd_web(args: argparse.Namespace) -> int:
    import logging

    from callguard.config import load
    from callguard.web.passwords import PasswordFile
    from callguard.web.server import make_server, run, urls

    log = logging.getLogger("callguard.web")
    config = load(args.config)
    server = make_server(config, host=args.host, port=args.port)
    log.info(
        "the family page is listening on %s (answering %s)",
        " ".join(urls(server)),
        ", ".join(config.web.allow_networks),
    )
    if not PasswordFile(config.storage.dir).is_set():
        log.warning(
            "the family page has no password yet, so every page says how to set one: "
            "sudo callguard web password"
        )
    run(server)
    return 0


def _cmd_password(args: argparse.Namespace) -> int:
    from callguard.config import load
    from callguard.web.passwords import PasswordFile, check_new_password

    config = load(args.config)
    if args.stdin:
        line = sys.stdin.readline()
        password = line.removesuffix("\n").removesuffix("\r")
    elif sys.stdin.isatty():
        import getpass

        password = getpass.getpass("New password for the family page: ")
        check_new_password(password)  # say so before asking for it again
        if getpass.getpass("The same password again: ") != password:
            raise UsageError("the two passwords differ; nothing was changed. Try again")
    else:
        raise UsageError(
            "there is no terminal to ask for the password on; give it on standard input with "
            "--stdin, e.g.: printf '%s\\n' \"$PASSWORD\" | callguard web password --stdin"
        )
    store = PasswordFile(config.storage.dir)
    had_one = store.is_set()
    store.set(password)
    print(
        f"The family page's password is {'changed' if had_one else 'set'} "
        f"({shown(store.path)}, readable by its owner only)."
        + (" Everyone logged in with the old one must log in again." if had_one else "")
    )
    print("Open the Pi's address in a browser on the home network, e.g. http://callguard.local/")
    return 0
