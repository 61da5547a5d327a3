"""Tests for the sim's control socket (callguard.sim.control) and for `callguard sim` taking
calls by hand: from a pipe, from a terminal, and from a second process while a real
`callguard run` screens them.

The socket's protocol is tested against a plain function (no sim); the end-to-end tests run
`callguard sim` and `callguard run` as processes, and read what happened from the sim's own
replies, never from how long something took.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import wait_for, write_config

from callguard.sim.__main__ import main as sim_main
from callguard.sim.console import Reply
from callguard.sim.control import MAX_REQUEST_BYTES, ControlError, ControlServer, send
from callguard.store.lists import Store

BLOCKED = "01632 960999"  # an Ofcom drama number: no real subscriber


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A folder with a short path: a Unix socket's path must fit in 107 bytes."""
    with tempfile.TemporaryDirectory(prefix="cg-", dir="/tmp") as folder:
        yield Path(folder)


def echo(line: str) -> Reply | None:
    """A stand-in for the console: replies "ok: got LINE", or an error for "bad"."""
    text = line.strip()
    if not text or text.startswith("#"):
        return None
    return Reply(text != "bad", f"got {text}", quit=text == "quit")


@pytest.fixture
def quits() -> threading.Event:
    return threading.Event()


@pytest.fixture
def server(short_dir: Path, quits: threading.Event) -> Iterator[ControlServer]:
    with ControlServer(short_dir / "ctl", echo, on_quit=quits.set) as running:
        yield running
    assert not [t.name for t in threading.enumerate() if t.name.startswith("simcontrol")]


def test_one_reply_line_per_command(server: ControlServer) -> None:
    assert stat.S_IMODE(os.stat(server.path).st_mode) == 0o600
    assert send(server.path, ["a", "", "# comment", "bad", "b c"], timeout_s=5) == [
        "ok: got a",
        "error: got bad",
        "ok: got b c",
    ]


def test_long_lines_and_a_last_line_without_newline(server: ControlServer) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
        client.settimeout(5)
        client.connect(server.path)
        client.sendall(b"x" * (MAX_REQUEST_BYTES + 5000) + b"\nnext\r\n\xff\xfe\nlast")
        client.shutdown(socket.SHUT_WR)
        replies = client.makefile("rb").read().decode().splitlines()
    assert replies == [
        f"error: the line is longer than {MAX_REQUEST_BYTES} bytes; send less",
        "ok: got next",
        "ok: got \ufffd\ufffd",
        "ok: got last",
    ]


def test_quit_is_answered_then_reported(server: ControlServer, quits: threading.Event) -> None:
    assert send(server.path, ["quit"], timeout_s=5) == ["ok: got quit"]
    assert quits.wait(5)


def test_the_socket_path_is_checked_and_cleaned_up(short_dir: Path) -> None:
    path = short_dir / "ctl"
    path.write_text("not a socket")
    with pytest.raises(ControlError, match="exists and is not a socket; pass --control"):
        ControlServer(path, echo).start()
    path.unlink()
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(path))  # a sim that died: the socket file is left, nobody listens
    stale.close()
    with ControlServer(path, echo) as running:
        with pytest.raises(ControlError, match="another sim is already listening on"):
            ControlServer(path, echo).start()
        assert send(path, ["a"], timeout_s=5) == ["ok: got a"]
        assert running.path == str(path)
    assert not path.exists()
    with pytest.raises(ControlError, match=r"no sim is listening on .*callguard sim --link"):
        send(path, ["a"], timeout_s=5)
    with pytest.raises(ControlError, match="pass --control with a short path"):
        ControlServer(short_dir / ("x" * 120), echo).start()


def test_send_needs_a_socket(capsys: pytest.CaptureFixture[str], short_dir: Path) -> None:
    assert sim_main(["--send", "status"]) == 2
    assert "--send needs the sim's control socket: --link PATH" in capsys.readouterr().err
    assert sim_main(["--link", str(short_dir / "modem"), "--send", "status"]) == 1
    err = capsys.readouterr().err
    assert f"no sim is listening on {short_dir / 'modem'}.ctl" in err


# ----------------------------------------------------------------------------- as processes


def callguard(*argv: str) -> list[str]:
    return [sys.executable, "-m", "callguard", *argv]


@pytest.mark.e2e
def test_commands_from_a_pipe(short_dir: Path) -> None:
    long = "call " + "1 " * 2000
    lines = f"call withheld rings 1\nwait 30\n\ncall 0x\n{long}\nstatus json\nquit\n"
    proc = subprocess.run(
        callguard("sim", "--quiet", "--time-scale", "0.05"),
        input=lines,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    replies = [line for line in proc.stdout.splitlines() if line.startswith(("ok", "error"))]
    assert replies[0] == "ok: ringing: withheld (caller ID before the first ring, up to 1 ring)"
    assert replies[1].startswith("ok: call over: withheld (UK caller ID): not answered")
    assert replies[2].startswith("error: call: '0x' is not part of a phone number")
    assert replies[3].startswith("error: the line is ") and "a command fits in" in replies[3]
    assert json.loads(replies[4].removeprefix("ok: "))["last_call"]["outcome"] == "unanswered"
    assert replies[5:] == ["ok: stopping the sim"]


@pytest.mark.e2e
def test_a_terminal_types_commands_and_ctrl_d_stops(short_dir: Path) -> None:
    link = short_dir / "modem"
    main, tty = os.openpty()
    proc = subprocess.Popen(
        callguard("sim", "--quiet", "--link", str(link)),
        stdin=tty,
        stdout=tty,
        stderr=tty,
        start_new_session=True,
    )
    os.close(tty)
    seen = b""

    def read_until(text: bytes) -> None:
        nonlocal seen

        def more() -> bool:
            nonlocal seen
            seen += os.read(main, 4096)
            return text in seen

        wait_for(more, 30, f"{text!r} from the sim")

    try:
        read_until(b"type a call, e.g. call 01632 960123")
        os.write(main, b"status\n")
        read_until(b"ok: modem plugged in at " + str(link).encode())
        os.write(main, b"\x04")  # Ctrl-D: end of input
        assert proc.wait(30) == 0
        assert not link.exists() and not Path(f"{link}.ctl").exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(main)


@pytest.mark.e2e
def test_a_blocked_number_called_by_hand_is_seized_before_the_first_ring(
    short_dir: Path,
) -> None:
    """Terminal 1 runs `callguard sim`; terminal 2 `callguard run`; a third sends the call."""
    link = short_dir / "modem"
    control = Path(f"{link}.ctl")
    state = short_dir / "state"
    config = write_config(
        short_dir / "callguard.toml",
        {
            "modem": {"port": str(link)},
            "storage": {"dir": str(state)},
            "warning": {"room_command": ""},
        },
    )
    added = subprocess.run(
        callguard("--config", str(config), "block", "add", BLOCKED),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert added.returncode == 0, added.stderr
    sim_log = (short_dir / "sim.log").open("w")
    daemon_log = (short_dir / "daemon.log").open("w")
    sim = subprocess.Popen(
        callguard("sim", "--link", str(link), "--quiet"),
        stdin=subprocess.DEVNULL,
        stdout=sim_log,
        stderr=subprocess.STDOUT,
    )
    daemon: subprocess.Popen[bytes] | None = None
    try:
        wait_for(lambda: f"control socket {control}" in (short_dir / "sim.log").read_text(), 30)
        daemon = subprocess.Popen(
            callguard("--config", str(config), "run"), stdout=daemon_log, stderr=daemon_log
        )
        store = Store(state)

        def connected() -> bool:
            assert daemon is not None
            assert daemon.poll() is None, (short_dir / "daemon.log").read_text()
            status = store.read_status() if store.status_path.exists() else None
            mine = bool(status and status.get("pid") == daemon.pid)
            return mine and status is not None and status.get("modem") == "connected"

        wait_for(connected, 30, "the daemon to connect to the sim")

        ringing, over, now = send(
            control, [f"call {BLOCKED}", "wait 30", "status json"], timeout_s=60
        )

        assert ringing == (
            "ok: ringing: 01632960999 (caller ID before the first ring, up to 5 rings)"
        )
        assert over.startswith(
            "ok: call over: 01632960999 (UK caller ID): seized by the modem before the first"
            " ring; caller ID at +"
        ), over
        call = json.loads(now.removeprefix("ok: "))["last_call"]
        assert call["outcome"] == "seized" and call["seized_before_first_ring"] is True
        assert call["rings"] == 0 and call["first_ring_at_s"] is None
        assert call["caller_id_at_s"] is not None and call["released_at_s"] is not None
        assert call["caller_id_at_s"] <= call["seized_at_s"] < call["released_at_s"]

        def logged() -> list[dict[str, object]]:
            out = subprocess.run(
                callguard("--config", str(config), "log", "--json"),
                capture_output=True,
                text=True,
                timeout=60,
            )
            return list(json.loads(out.stdout)) if out.returncode == 0 else []

        calls = wait_for(logged, 30, "the call in the daemon's log")
        assert calls[-1]["verdict"] == "blocked"
    finally:
        if daemon is not None:
            daemon.send_signal(signal.SIGTERM)
            daemon.wait(30)
        if sim.poll() is None:
            try:
                send(control, ["quit"], timeout_s=30)
            except ControlError:
                sim.send_signal(signal.SIGTERM)  # stops as cleanly as quit does
        assert sim.wait(30) == 0
        sim_log.close()
        daemon_log.close()
    assert not link.exists() and not control.exists()
