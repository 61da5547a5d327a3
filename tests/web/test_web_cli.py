"""``callguard web password`` and ``callguard web`` as a person and systemd run them."""

from __future__ import annotations

import os
import re
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from webclient import PASSWORD, Browser

from callguard.cli import main
from callguard.web.passwords import PasswordFile


@pytest.fixture
def cfg(tmp_path: Path) -> Path:
    path = tmp_path / "callguard.toml"
    path.write_text(
        f'[storage]\ndir = "{tmp_path / "state"}"\nruntime_dir = "{tmp_path / "run"}"\n'
        '[web]\nhost = "127.0.0.1"\n'
    )
    return path


def password_file(cfg: Path) -> PasswordFile:
    return PasswordFile(cfg.parent / "state")


class Stdin:
    def __init__(self, text: str, tty: bool) -> None:
        self.text, self.tty = text, tty

    def isatty(self) -> bool:
        return self.tty

    def readline(self) -> str:
        line, _, self.text = self.text.partition("\n")
        return line + "\n"


def test_password_from_stdin_is_set_private(
    cfg: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "stdin", Stdin(PASSWORD + "\n", tty=False))
    assert main(["--config", str(cfg), "web", "password", "--stdin"]) == 0
    out = capsys.readouterr().out
    assert "password is set" in out and PASSWORD not in out
    store = password_file(cfg)
    assert store.check(PASSWORD)
    assert stat.S_IMODE(os.stat(store.path).st_mode) == 0o600
    assert PASSWORD not in store.path.read_text()

    monkeypatch.setattr(sys, "stdin", Stdin("another password\r\n", tty=False))
    assert main(["--config", str(cfg), "web", "password", "--stdin"]) == 0
    assert "must log in again" in capsys.readouterr().out
    assert store.check("another password")


@pytest.mark.parametrize(
    ("typed", "words"),
    [("\n", "the password is empty"), ("short\n", "use at least 8"), ("", "is empty")],
)
def test_a_refused_password_exits_2_and_writes_nothing(
    cfg: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    typed: str,
    words: str,
) -> None:
    monkeypatch.setattr(sys, "stdin", Stdin(typed, tty=False))
    assert main(["--config", str(cfg), "web", "password", "--stdin"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("callguard: error: ") and words in err
    assert not password_file(cfg).is_set()


def test_on_a_terminal_it_asks_twice(
    cfg: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import getpass

    monkeypatch.setattr(sys, "stdin", Stdin("", tty=True))
    answers = iter([PASSWORD, PASSWORD + " typo"])
    prompts: list[str] = []
    monkeypatch.setattr(getpass, "getpass", lambda p: prompts.append(p) or next(answers))
    assert main(["--config", str(cfg), "web", "password"]) == 2
    assert "the two passwords differ; nothing was changed" in capsys.readouterr().err
    assert len(prompts) == 2 and not password_file(cfg).is_set()

    answers = iter(["tiny"])
    assert main(["--config", str(cfg), "web", "password"]) == 2  # refused before asking again
    assert "use at least 8" in capsys.readouterr().err

    answers = iter([PASSWORD, PASSWORD])
    assert main(["--config", str(cfg), "web", "password"]) == 0
    assert password_file(cfg).check(PASSWORD)


def test_without_a_terminal_or_stdin_it_says_how(
    cfg: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "stdin", Stdin(PASSWORD, tty=False))
    assert main(["--config", str(cfg), "web", "password"]) == 2
    assert "--stdin" in capsys.readouterr().err
    assert not password_file(cfg).is_set()


def test_a_bad_port_is_refused(cfg: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--config", str(cfg), "web", "--port", "99999"])
    assert exc.value.code == 2
    assert "is not a port" in capsys.readouterr().err


def test_a_port_in_use_is_explained(cfg: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["--config", str(cfg), "web", "--port", str(port)]) == 1
    err = capsys.readouterr().err
    assert f"port {port} is in use by another program" in err


def start(cfg: Path) -> tuple[subprocess.Popen[str], str]:
    """``callguard web --port 0`` as systemd runs it; returns the process and its URL."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "callguard", "--config", str(cfg), "web", "--port", "0"],
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        found = re.search(r"listening on (http://127\.0\.0\.1:\d+)/", line)
        if found:
            return proc, found.group(1)
        if not line and proc.poll() is not None:
            break
    proc.kill()
    raise AssertionError(f"callguard web did not start: {proc.stderr.read()}")


@pytest.mark.e2e
def test_callguard_web_serves_until_sigterm_and_exits_0(cfg: Path) -> None:
    proc, base = start(cfg)
    try:
        browser = Browser(base, remote=None)
        reply = browser.get("/")
        assert reply.status == 503 and "sudo callguard web password" in reply.text
        PasswordFile(cfg.parent / "state").set(PASSWORD)
        assert browser.login().status == 302
        assert browser.get("/").status == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    assert proc.stderr is not None
    assert "the family page has stopped" in proc.stderr.read()
