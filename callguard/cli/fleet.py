"""``callguard fleet status``: every unit on the volunteer group's broker, from its retained
``availability`` and ``state`` messages (the login in ``[fleet]``: a volunteer's user that may
read ``callguard/#``)."""

from __future__ import annotations

import argparse
import threading
import time
import uuid
from typing import TYPE_CHECKING, Any, Final

from callguard.cli.common import Commands
from callguard.errors import CallGuardError, UsageError
from callguard.texts import shown, shown_json

if TYPE_CHECKING:
    import paho.mqtt.client as mqtt

    from callguard.config import FleetConfig

QUIET_S: Final = 0.5
"""Retained messages come at once after subscribing: this long with none new, and all are in."""
MOST_S: Final = 5.0
CONNECT_S: Final = 10.0


def register(sub: Commands) -> None:
    fleet = sub.add_parser("fleet", help="the volunteer group's units, as its broker sees them")
    verbs = fleet.add_subparsers(dest="verb", metavar="VERB")
    verbs.required = True
    status = verbs.add_parser(
        "status",
        help="every unit on the group's broker: online or not, modem, line, last call, alert",
        description="Reads the retained availability and state of every unit from [fleet] "
        "broker, logged in as [fleet] username (a volunteer's user that may read callguard/#).",
    )
    status.add_argument("--json", action="store_true", help="a JSON array of units")
    status.set_defaults(func=_cmd_status)


def _cmd_status(args: argparse.Namespace) -> int:
    from callguard.config import load as load_config

    config = load_config(args.config)
    if not config.fleet.broker:
        raise UsageError(
            "[fleet] broker is not set: set it to the group's broker, e.g. "
            'broker = "mqtts://broker.example.org:8883" (and username, password_file)'
        )
    units = gather(config.fleet)
    if args.json:
        print(shown_json(units))
        return 0
    if not units:
        print(f"No units on {shown(config.fleet.broker)} yet.")
        return 0
    width = max(len(unit["unit"]) for unit in units)
    for unit in units:
        last = str(unit["last_call"] or "none")[:16].replace("T", " ")
        line = (
            f"{shown(unit['unit']):<{width}}  {shown(unit['availability']):<7}  "
            f"modem {shown(unit['modem'] or '?')}  line {shown(unit['line'] or '?')}  "
            f"last call {shown(last)}"
        )
        print(line + ("  ALERT" if unit["grooming_alert"] else ""))
    return 0


def gather(fleet: FleetConfig) -> list[dict[str, Any]]:
    """Every unit's retained availability and state, sorted by unit; raises CallGuardError
    when the broker cannot be reached or refuses the login."""
    import json

    from paho.mqtt.reasoncodes import ReasonCode

    from callguard.link.fleet import PasswordError, broker_of, new_client, read_password

    try:
        password = read_password(fleet)
    except PasswordError as exc:
        raise CallGuardError(str(exc)) from None
    fix = (
        "check [fleet] broker, that the broker runs and that this machine can reach it "
        "(a firewall, the port)"
    )
    try:
        client = new_client(fleet, f"callguard-fleet-status-{uuid.uuid4().hex[:12]}", password)
    except (OSError, ValueError) as exc:
        raise CallGuardError(
            f"[fleet] ca_file {fleet.ca_file or '(the system CAs)'} cannot be used ({exc}): "
            "point it at the group's CA certificate (PEM)"
        ) from None
    seen: dict[str, dict[str, Any]] = {}
    changed = threading.Condition()
    outcome: dict[str, Any] = {}
    last = [time.monotonic()]

    def on_connect(c: mqtt.Client, u: Any, f: Any, code: ReasonCode, p: Any) -> None:
        with changed:
            outcome["connect"] = code
            if not code.is_failure:
                c.subscribe([("callguard/+/availability", 1), ("callguard/+/state", 1)])
            changed.notify_all()

    def on_subscribe(c: mqtt.Client, u: Any, mid: int, codes: Any, p: Any) -> None:
        with changed:
            outcome["subscribed"] = [str(code) for code in codes if code.is_failure]
            last[0] = time.monotonic()
            changed.notify_all()

    def on_message(c: mqtt.Client, u: Any, message: mqtt.MQTTMessage) -> None:
        parts = message.topic.split("/")
        if len(parts) != 3:
            return
        value: Any
        if parts[2] == "availability":
            value = bytes(message.payload).decode("utf-8", "replace")
        else:
            try:
                value = json.loads(message.payload)
            except ValueError:
                value = None
            value = value if isinstance(value, dict) else {}
        with changed:
            seen.setdefault(parts[1], {})[parts[2]] = value
            last[0] = time.monotonic()
            changed.notify_all()

    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_message = on_message
    broker = broker_of(fleet.broker)
    try:
        client.connect(broker.host, broker.port, keepalive=30)
    except (OSError, ValueError) as exc:
        raise CallGuardError(f"cannot reach the broker {fleet.broker} ({exc}): {fix}") from None
    client.loop_start()
    try:
        with changed:
            if not changed.wait_for(lambda: "connect" in outcome, CONNECT_S):
                raise CallGuardError(f"the broker {fleet.broker} did not answer: {fix}")
            code = outcome["connect"]
            if code.is_failure:
                raise CallGuardError(
                    f"the broker {fleet.broker} refused the login as "
                    f"{fleet.username or fleet.unit_id or '(no username)'} ({code}): check "
                    "[fleet] username and the password in [fleet] password_file"
                )
            changed.wait_for(lambda: "subscribed" in outcome, CONNECT_S)
            if outcome.get("subscribed"):
                raise CallGuardError(
                    f"the broker {fleet.broker} does not let "
                    f"{fleet.username or fleet.unit_id} read callguard/#: use a volunteer's "
                    "login in [fleet] username and password_file"
                )
            deadline = time.monotonic() + MOST_S
            while (now := time.monotonic()) < deadline and now - last[0] < QUIET_S:
                changed.wait(min(deadline, last[0] + QUIET_S) - now)
            units = {name: dict(unit) for name, unit in seen.items()}
    finally:
        client.disconnect()
        client.loop_stop()
    return [_row(name, units[name]) for name in sorted(units)]


def _row(name: str, unit: dict[str, Any]) -> dict[str, Any]:
    state = unit.get("state") or {}
    availability = unit.get("availability") or "unknown"
    return {
        "unit": name,
        "availability": availability,
        "online": availability == "online",
        "daemon": state.get("daemon"),
        "modem": state.get("modem"),
        "line": state.get("line"),
        "last_call": state.get("last_call"),
        "grooming_alert": bool(state.get("grooming_alert")),
        "updated": state.get("updated"),
        "state": state,
    }
