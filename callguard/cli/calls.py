"""``callguard log``, ``status`` and ``ack``: what happened, what is happening, the alert."""

from __future__ import annotations

import argparse
import os

from callguard.cli.common import Commands, open_store, positive_int
from callguard.texts import duration_words, shown, shown_json


def register(sub: Commands) -> None:
    log_cmd = sub.add_parser("log", help="the call log, oldest first")
    log_cmd.add_argument("--json", action="store_true", help="a JSON array of calls")
    log_cmd.add_argument("--limit", type=positive_int, help="only the newest N calls")
    log_cmd.set_defaults(func=_cmd_log)

    status = sub.add_parser("status", help="the daemon's live state")
    status.add_argument("--json", action="store_true", help="a JSON object")
    status.set_defaults(func=_cmd_status)

    ack = sub.add_parser("ack", help="acknowledge (clear) the grooming alert")
    ack.add_argument("--by", default=None, help="who is acknowledging (default: your login name)")
    ack.set_defaults(func=_cmd_ack)


def _cmd_log(args: argparse.Namespace) -> int:
    _, store = open_store(args)
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
        seconds = call.get("duration_s")
        length = duration_words(seconds) if isinstance(seconds, int | float) else ""
        if answered and length and call.get("end_seen") is False:
            length = f"at most {length} (its end could not be seen)"
        duration = f", {length}" if answered and length else ""
        alert = "  << this call lit the grooming alert" if call.get("grooming_alert") else ""
        print(
            f"{when}  {who}{name}: {shown(call.get('verdict'))}. {shown(call.get('reason'))} "
            f"{answered}{duration}".rstrip()
            + alert
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


def _dead_line(status: dict[str, object]) -> str | None:
    """One plain line when the running daemon has found the phone line dead, else None."""
    voltage = status.get("line_voltage")
    if status.get("daemon") != "running" or not isinstance(voltage, dict):
        return None
    if voltage.get("dead") is not True:
        return None
    since = str(voltage.get("since") or "")
    when = f" since {shown(since[11:16])}" if len(since) >= 16 else ""
    return (
        f"The phone line is dead: no voltage{when}, so no call can come in. Check the phone "
        "cable from CallGuard to the wall socket (or to the router's phone port) and that a "
        "phone plugged straight in there hears a dial tone; after a Digital Voice switch-over "
        "the line comes from the router's phone port, not the wall socket."
    )


def _cmd_status(args: argparse.Namespace) -> int:
    _, store = open_store(args)
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
    from callguard.store.state import alert_calls, so_far_s

    if "caller_id_timing" not in status:  # a daemon that never ran (or an older one) learnt none
        status["caller_id_timing"] = "unknown"
    if "clock_synchronised" not in status:
        from callguard.clock import SystemClock

        status["clock_synchronised"] = SystemClock().check().synchronised

    alert = store.read_alert()  # the file is the truth, daemon or not
    status["grooming_alert"] = bool(alert and alert.get("active"))
    status["grooming_alerts"] = [
        {
            "number": c.get("number"),
            "display": c.get("display"),
            "started": c.get("started"),
            "duration_s": so_far_s(c),
        }
        for c in (alert_calls(alert) if status["grooming_alert"] else [])
    ]
    if args.json:
        print(shown_json(status))
        return 0
    detail = dict(status.get("modem_detail") or {})
    print(f"daemon:         {shown(status['daemon'])}")
    print(f"modem:          {shown(status['modem'])} ({shown(detail.get('detail', ''))})")
    print(f"line:           {shown(status['line'])}")
    dead = _dead_line(status)
    if dead:
        print(dead)
    alerts = status["grooming_alerts"]
    if not alerts:
        print(f"grooming alert: {'ON' if status['grooming_alert'] else 'off'}")
    for i, call in enumerate(alerts):
        head = "grooming alert: ON - " if i == 0 else "                and "
        who = shown(call.get("display") or call.get("number") or "a caller with no number")
        when = shown(str(call.get("started") or "")[:16].replace("T", " at "))
        length = duration_words(call.get("duration_s"))
        print(f"{head}{who} called on {when}" + (f", on the line {length}" if length else ""))
    if alerts:
        print("                (check with the resident, then: callguard ack)")
    last = status.get("last_call")
    if isinstance(last, dict):
        who = last.get("display") or ""
        print(
            f"last call:      {shown(last.get('started'))} {shown(who)} "
            f"{shown(last.get('verdict'))}"
        )
    return 0


def _cmd_ack(args: argparse.Namespace) -> int:
    _, store = open_store(args)
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
