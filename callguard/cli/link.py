"""``callguard link``: the companion service (carer alerts, the heartbeat, the fleet link)."""

from __future__ import annotations

import argparse

from callguard.cli.common import Commands


def register(sub: Commands) -> None:
    link = sub.add_parser(
        "link",
        help="the companion service: delivers alerts, keeps the fleet link (its systemd unit "
        "runs this)",
        description="Tell the family about grooming, impersonation and a unit in trouble "
        "([alerts] in the config), ping the heartbeat, and keep the fleet link ([fleet]), "
        "until stopped. Screening does not depend on it.",
    )
    link.set_defaults(func=_cmd_link)


def _cmd_link(args: argparse.Namespace) -> int:
    from callguard.config import load, resolve_path
    from callguard.link.service import run

    config = load(args.config)
    path = resolve_path(args.config)
    return run(config, config_path=str(path) if path else None)
