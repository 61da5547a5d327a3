"""``callguard alerts list`` and ``alerts test``: the carer alerts' outbox, and a test message to
every channel."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from callguard.cli.common import Commands, count_of
from callguard.errors import UsageError
from callguard.texts import shown, shown_json

if TYPE_CHECKING:
    from callguard.store.outbox import Alert, Delivery

URLS_EXAMPLE = 'urls = ["mailto://you:app-password@gmail.com", "ntfy://ntfy.sh/your-topic"]'


def register(sub: Commands) -> None:
    alerts = sub.add_parser("alerts", help="the carer alerts: what was sent, and a test")
    verbs = alerts.add_subparsers(dest="verb", metavar="VERB")
    verbs.required = True

    list_cmd = verbs.add_parser("list", help="the alerts, newest first, and where each got to")
    list_cmd.add_argument("--json", action="store_true", help="a JSON array of alerts")
    list_cmd.add_argument(
        "--limit",
        type=count_of("alerts"),
        default=100,
        help="only the newest N alerts (default 100)",
    )
    list_cmd.set_defaults(func=_cmd_list)

    test = verbs.add_parser("test", help="send a test message to every channel in [alerts] urls")
    test.set_defaults(func=_cmd_test)


def _cmd_list(args: argparse.Namespace) -> int:
    from callguard.cli.common import report_recovery
    from callguard.config import load as load_config
    from callguard.store.outbox import Outbox

    config = load_config(args.config)
    outbox = Outbox(config.storage.dir, on_recovery=report_recovery)
    try:
        alerts = outbox.alerts(limit=args.limit)
    finally:
        outbox.close()
    if args.json:
        print(shown_json([alert.to_json() for alert in alerts]))
        return 0
    if not alerts:
        print("No alerts yet.")
        return 0
    for alert in alerts:
        print(f"{_when(alert.created)}  {shown(alert.kind)}: {shown(alert.title)} [{alert.state}]")
        if not alert.deliveries:
            print("    not sent: no channels were in [alerts] urls when it was raised")
        for delivery in alert.deliveries:
            print(f"    {shown(delivery.label)}: {_progress(alert, delivery)}")
    return 0


def _when(iso: str | None) -> str:
    return shown(str(iso or "")[:16].replace("T", " "))


def _progress(alert: Alert, delivery: Delivery) -> str:
    error = f" ({shown(delivery.last_error)})" if delivery.last_error else ""
    if delivery.state == "delivered":
        return f"delivered {_when(delivery.delivered)}"
    if delivery.state == "expired":
        return f"given up after {_tries(delivery.attempts)}{error}"
    if delivery.attempts == 0:
        return "waiting to be sent"
    return (
        f"retrying: {_tries(delivery.attempts)} failed, next {_when(delivery.next_try)}, "
        f"until {_when(alert.expires)}{error}"
    )


def _tries(n: int) -> str:
    return "1 try" if n == 1 else f"{n} tries"


def _cmd_test(args: argparse.Namespace) -> int:
    from callguard.config import load as load_config

    config = load_config(args.config)
    if not config.alerts.urls:
        raise UsageError(
            "there are no channels to test: [alerts] urls is empty in the config. Add the "
            f"carers' apprise URLs under [alerts], e.g.\n  {URLS_EXAMPLE}\n"
            "then run `callguard alerts test` again"
        )
    from callguard.link.delivery import send_test

    failures = 0
    for label, reason in send_test(config.alerts.urls):
        if reason is None:
            print(f"{shown(label)}: ok")
        else:
            failures += 1
            print(f"{shown(label)}: FAILED: {shown(reason)}")
    if failures:
        print(
            f"{failures} of {len(config.alerts.urls)} channels failed; correct the URL in "
            "[alerts] urls (or the service behind it) and run `callguard alerts test` again",
            file=sys.stderr,
        )
        return 1
    return 0
