"""`python -m callguard.sim`: run the simulated modem until Ctrl-C, optionally playing a scenario.

Prints the port to give the daemon, then (with --trace, the default) every command line the
modem receives and every call as it ends.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

from callguard.sim.firmware import IDENTITIES
from callguard.sim.modem import SimModem, SimModemError
from callguard.sim.script import SCENARIOS, CallRecord

PROG = "callguard-sim"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m callguard.sim",
        description="A simulated voice/caller-ID modem on a pseudo-terminal.",
    )
    p.add_argument(
        "--identity",
        choices=sorted(IDENTITIES),
        default="conexant",
        help="which modem family to imitate (default: conexant)",
    )
    p.add_argument(
        "--link",
        metavar="PATH",
        help="keep a symlink at PATH pointing at the current pty (e.g. /tmp/ttyCG0)",
    )
    p.add_argument(
        "--scenario",
        choices=sorted(SCENARIOS),
        help="calls to play; without it the modem waits for Ctrl-C",
    )
    p.add_argument(
        "--time-scale",
        type=float,
        default=1.0,
        metavar="X",
        help="multiply every line timing by X (0.1 = ten times faster)",
    )
    p.add_argument(
        "--quiet", action="store_true", help="do not print the commands the modem receives"
    )
    return p


def _describe(record: CallRecord) -> str:
    t0 = record.started_at or 0.0
    parts = [f"call from {record.call.number!r}: {record.outcome}", f"{len(record.rings)} RING"]
    if record.cid_sent_at is not None:
        parts.append(f"caller ID at +{record.cid_sent_at - t0:.1f} s")
    if record.seized_at is not None:
        parts.append(f"seized at +{record.seized_at - t0:.1f} s")
    if record.answered_at is not None:
        parts.append(f"answered elsewhere at +{record.answered_at - t0:.1f} s")
    return ", ".join(parts)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        sim = SimModem(identity=args.identity, link_path=args.link, time_scale=args.time_scale)
        sim.start()
    except (SimModemError, OSError) as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    reported: set[int] = set()
    shown = 0
    try:
        print(f"{PROG}: {args.identity} modem ready; open {sim.port}", flush=True)
        if args.scenario:
            records = sim.play(SCENARIOS[args.scenario], wait=False)
            print(f"{PROG}: playing scenario {args.scenario!r} ({len(records)} calls)", flush=True)
        else:
            records = []
            print(f"{PROG}: waiting; Ctrl-C to stop", flush=True)
        while True:
            commands = sim.commands
            if not args.quiet:
                for _, text in commands[shown:]:
                    print(f"  <- {text!r}", flush=True)
            shown = len(commands)
            for i, record in enumerate(records):
                if record.done and i not in reported:
                    reported.add(i)
                    print(f"{PROG}: {_describe(record)}", flush=True)
            if records and len(reported) == len(records):
                print(f"{PROG}: scenario finished", flush=True)
                return 0
            time.sleep(0.1)
    except KeyboardInterrupt:
        print(f"\n{PROG}: stopped", flush=True)
        return 0
    finally:
        sim.stop()


if __name__ == "__main__":
    sys.exit(main())
