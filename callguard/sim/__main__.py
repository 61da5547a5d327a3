"""`python -m callguard.sim` (also `callguard sim`): run the simulated modem until Ctrl-C or
`quit`, taking calls by hand while it runs, optionally playing a scenario.

Prints the port to give the daemon, then (unless --quiet) every command line the modem
receives, and what each call does. Typed lines (see `console.py`) ring the line: read from
the terminal, or from a pipe or file on stdin, and from the control socket (`control.py`,
LINK.ctl with --link), which `--send` uses to drive a sim running elsewhere.
"""

from __future__ import annotations

import argparse
import errno
import os
import signal
import stat
import sys
import threading
from collections.abc import Iterator, Sequence
from typing import Any

from callguard.sim.console import MAX_LINE_CHARS, USAGE, Console, Reply, describe
from callguard.sim.control import ControlError, ControlServer, send
from callguard.sim.firmware import IDENTITIES
from callguard.sim.modem import SimModem, SimModemError
from callguard.sim.script import SCENARIOS, CallRecord
from callguard.texts import shown

PROG = "callguard-sim"
POLL_S = 0.1
TTY_RETRY_S = 0.5
"""How often a sim in the background retries reading its terminal (reads fail with EIO)."""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="callguard sim",
        description=(
            "A simulated voice/caller-ID modem on a pseudo-terminal. While it runs, type calls"
            " at it (or send them to its control socket): " + USAGE.removeprefix("commands: ")
        ),
        epilog=(
            "examples: callguard sim --link /tmp/modem  (then type: call 01632 960123);"
            " callguard sim --link /tmp/modem --send 'call withheld' --send 'wait'"
        ),
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
        help="keep a symlink at PATH pointing at the current pty (e.g. /tmp/modem)",
    )
    p.add_argument(
        "--control",
        metavar="PATH",
        help="the control socket (default: the link path + '.ctl'; '' for none)",
    )
    p.add_argument(
        "--send",
        action="append",
        metavar="COMMAND",
        help="do not start a sim: send COMMAND to the running one's control socket and print"
        " its reply (repeat for several; exit 2 if it refused one)",
    )
    p.add_argument(
        "--scenario",
        choices=sorted(SCENARIOS),
        help="calls to play (the sim exits when they are over)",
    )
    p.add_argument(
        "--time-scale",
        type=float,
        default=1.0,
        metavar="X",
        help="multiply every line timing by X (0.1 = ten times faster)",
    )
    p.add_argument("--no-input", action="store_true", help="do not read commands from stdin")
    p.add_argument(
        "--quiet", action="store_true", help="do not print the commands the modem receives"
    )
    return p


class _Output:
    """stdout shared by the main loop, the stdin reader and the control socket's threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def say(self, text: str) -> None:
        with self._lock:
            print(text, flush=True)


def _control_path(args: argparse.Namespace) -> str | None:
    if args.control is not None:
        return args.control or None
    return f"{args.link}.ctl" if args.link else None


def _stdin_kind() -> str | None:
    """ "tty", "stream" (a pipe, a file, a socket) or None (nothing to read: /dev/null, closed)."""
    try:
        fd = sys.stdin.fileno()
        mode = os.fstat(fd).st_mode
    except (AttributeError, OSError, ValueError):
        return None
    if os.isatty(fd):
        return "tty"
    if stat.S_ISFIFO(mode) or stat.S_ISREG(mode) or stat.S_ISSOCK(mode):
        return "stream"
    return None


def _stdin_lines(fd: int, stop: threading.Event, tty: bool) -> Iterator[str]:
    """Lines from `fd`, read with os.read: a daemon thread blocked here holds no lock of
    sys.stdin's, so the process can always exit. Raises OSError if reading fails for good."""
    buf = b""
    skipping = False
    while not stop.is_set():
        try:
            chunk = os.read(fd, 4096)
        except OSError as e:
            if tty and e.errno == errno.EIO:  # running in the background: try again later
                stop.wait(TTY_RETRY_S)
                continue
            raise
        if not chunk:
            if buf and not skipping:
                yield buf.decode("utf-8", "replace")
            return
        buf += chunk
        *lines, buf = buf.split(b"\n")
        for line in lines:
            if skipping:
                skipping = False  # the end of the over-long line
                continue
            yield line.decode("utf-8", "replace")
        if len(buf) > MAX_LINE_CHARS * 4:
            if not skipping:
                yield buf.decode("utf-8", "replace")  # too long: the console says so
            skipping = True
            buf = b""


def _read_stdin(console: Console, out: _Output, stop: threading.Event, tty: bool) -> None:
    try:
        for line in _stdin_lines(sys.stdin.fileno(), stop, tty):
            reply = console.execute(line)
            if reply is None:
                continue
            out.say(reply.line)
            if reply.quit:
                stop.set()
                return
    except OSError as e:
        out.say(f"{PROG}: cannot read commands from stdin ({e.strerror}); still running")
        return
    if stop.is_set():
        return
    if tty:
        out.say(f"{PROG}: end of input")
        stop.set()
    else:
        out.say(f"{PROG}: end of the commands on stdin; still running (Ctrl-C stops)")


def _send(path: str | None, commands: list[str]) -> int:
    if path is None:
        print(
            f"{PROG}: error: --send needs the sim's control socket: --link PATH (the socket"
            " is PATH.ctl) or --control PATH",
            file=sys.stderr,
        )
        return 2
    try:
        replies = send(path, commands)
    except ControlError as e:
        print(f"{PROG}: error: {shown(e)}", file=sys.stderr)
        return 1
    for reply in replies:
        print(shown(reply))
    return 0 if all(r.startswith("ok") for r in replies) else 2


def _handle_signal(signum: int, handler: Any, restore: dict[int, Any]) -> None:
    """Install `handler`, remembering the old one; only the main thread may (not in tests)."""
    if threading.current_thread() is threading.main_thread():
        restore[signum] = signal.signal(signum, handler)


class _Reporter:
    """Prints each call's changes (ringing, seized, answered, over) once, as they happen."""

    def __init__(self, out: _Output) -> None:
        self.out = out
        self._seen: dict[int, tuple[str, bool]] = {}

    def report(self, records: Sequence[CallRecord]) -> None:
        for i, record in enumerate(records):
            state = (record.outcome, record.done)
            if self._seen.get(i) == state or record.outcome == "pending":
                continue
            self._seen[i] = state
            head = "call over" if record.done else "call"
            self.out.say(f"{PROG}: {head}: {describe(record)}")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    control = _control_path(args)
    if args.send:
        return _send(control, args.send)
    out = _Output()
    stop = threading.Event()
    server: ControlServer | None = None
    try:
        sim = SimModem(identity=args.identity, link_path=args.link, time_scale=args.time_scale)
        sim.start()
    except (SimModemError, OSError) as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    console = Console(sim)
    restore: dict[int, Any] = {}

    def remote(line: str, reply: Reply) -> None:
        out.say(f"{PROG}: [control] {shown(line.strip())} -> {reply.line}")

    try:
        if control is not None:
            try:
                server = ControlServer(
                    control, console.execute, on_quit=stop.set, on_command=remote
                ).start()
            except ControlError as e:
                print(f"{PROG}: error: {e}", file=sys.stderr)
                return 2
        out.say(f"{PROG}: {args.identity} modem ready; open {sim.port}")
        if server is not None:
            out.say(f"{PROG}: control socket {server.path}")
        records: list[CallRecord] = []
        if args.scenario:
            records = sim.play(SCENARIOS[args.scenario], wait=False)
            out.say(f"{PROG}: playing scenario {args.scenario!r} ({len(records)} calls)")
        else:
            out.say(f"{PROG}: waiting; Ctrl-C or quit to stop")
        _handle_signal(signal.SIGTERM, lambda signum, frame: stop.set(), restore)
        kind = None if args.no_input else _stdin_kind()
        if kind is not None:
            if kind == "tty":
                _handle_signal(signal.SIGTTIN, signal.SIG_IGN, restore)  # background: EIO
                out.say(f"{PROG}: type a call, e.g. call 01632 960123 (help lists the commands)")
            threading.Thread(
                target=_read_stdin,
                args=(console, out, stop, kind == "tty"),
                name="simconsole-stdin",
                daemon=True,  # a blocked read cannot be interrupted; it ends with the process
            ).start()
        reporter = _Reporter(out)
        shown_commands = 0
        while True:
            commands = sim.commands
            if not args.quiet:
                for _, text in commands[shown_commands:]:
                    out.say(f"  <- {text!r}")
            shown_commands = len(commands)
            reporter.report(sim.calls)
            if records and all(r.done for r in records):
                out.say(f"{PROG}: scenario finished")
                return 0
            if stop.wait(POLL_S):
                out.say(f"{PROG}: stopped")
                return 0
    except KeyboardInterrupt:
        out.say(f"\n{PROG}: stopped")
        return 0
    finally:
        sim.stop()  # first: a `wait` on the socket returns when the calls are cut short
        if server is not None:
            server.stop()
        for signum, handler in restore.items():
            signal.signal(signum, handler)


if __name__ == "__main__":
    sys.exit(main())
