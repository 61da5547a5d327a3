"""The sd_notify datagrams on real Unix sockets, the watchdog interval, journald-friendly logs."""

from __future__ import annotations

import io
import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from callguard import logs
from callguard.daemon.systemd import Notifier, parse_notify_address
from callguard.logs import JournalFormatter, journal_priority, setup_logging, stream_is_journal


def _receiver(address: str | bytes) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(address)
    sock.setblocking(False)
    return sock


@pytest.fixture
def path_socket(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    path = str(tmp_path / "notify")
    sock = _receiver(path)
    yield sock, path
    sock.close()


@pytest.fixture
def abstract_socket() -> Iterator[tuple[socket.socket, str]]:
    name = f"callguard-test-{os.getpid()}-{secrets.token_hex(6)}"
    sock = _receiver(b"\0" + name.encode())
    yield sock, "@" + name
    sock.close()


def _pending(sock: socket.socket) -> list[bytes]:
    """Every datagram already queued on ``sock``, without waiting."""
    out = []
    while True:
        try:
            out.append(sock.recv(4096, socket.MSG_DONTWAIT))
        except BlockingIOError:
            return out


# ----------------------------------------------------------------------------- notifications


def test_every_call_sends_its_exact_datagram(path_socket: tuple[socket.socket, str]) -> None:
    sock, path = path_socket
    notifier = Notifier({"NOTIFY_SOCKET": path})
    assert notifier.enabled

    notifier.ready()
    notifier.ready("Listening on /dev/callguard-modem")
    notifier.status("Modem disconnected, retrying")
    notifier.watchdog()
    notifier.reloading(monotonic_usec=123456789)
    notifier.stopping()
    notifier.extend_timeout(5_000_000)

    assert _pending(sock) == [
        b"READY=1",
        b"READY=1\nSTATUS=Listening on /dev/callguard-modem",
        b"STATUS=Modem disconnected, retrying",
        b"WATCHDOG=1",
        b"RELOADING=1\nMONOTONIC_USEC=123456789",
        b"STOPPING=1",
        b"EXTEND_TIMEOUT_USEC=5000000",
    ]
    notifier.close()


def test_abstract_namespace_socket(abstract_socket: tuple[socket.socket, str]) -> None:
    sock, name = abstract_socket
    notifier = Notifier({"NOTIFY_SOCKET": name})
    notifier.ready("ok")
    notifier.watchdog()
    assert _pending(sock) == [b"READY=1\nSTATUS=ok", b"WATCHDOG=1"]


def test_reloading_defaults_to_the_monotonic_clock(
    path_socket: tuple[socket.socket, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    sock, path = path_socket
    monkeypatch.setattr(time, "monotonic_ns", lambda: 42_000_001_999)
    Notifier({"NOTIFY_SOCKET": path}).reloading()
    assert _pending(sock) == [b"RELOADING=1\nMONOTONIC_USEC=42000001"]


def test_status_text_cannot_forge_another_assignment(
    path_socket: tuple[socket.socket, str],
) -> None:
    sock, path = path_socket
    notifier = Notifier({"NOTIFY_SOCKET": path})
    notifier.status("Last caller: Bob\nREADY=1\x00\x07")
    notifier.ready("a\r\nb")
    assert _pending(sock) == [b"STATUS=Last caller: Bob READY=1  ", b"READY=1\nSTATUS=a  b"]


def test_status_is_utf8(path_socket: tuple[socket.socket, str]) -> None:
    sock, path = path_socket
    Notifier({"NOTIFY_SOCKET": path}).status("Zoë called, 5 min")
    assert _pending(sock) == ["STATUS=Zoë called, 5 min".encode()]


def test_sends_report_success(path_socket: tuple[socket.socket, str]) -> None:
    _, path = path_socket
    assert Notifier({"NOTIFY_SOCKET": path}).send("WATCHDOG=1") is True
    assert Notifier({}).send("WATCHDOG=1") is False


@pytest.mark.parametrize(
    "environ",
    [{}, {"NOTIFY_SOCKET": ""}, {"NOTIFY_SOCKET": "relative/path"}, {"NOTIFY_SOCKET": "@"}],
    ids=["unset", "empty", "relative", "bare-at"],
)
def test_without_a_usable_socket_every_call_is_a_no_op(
    environ: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_sockets(*args: object, **kwargs: object) -> None:
        raise AssertionError("a disabled notifier opened a socket")

    monkeypatch.setattr(socket, "socket", no_sockets)
    notifier = Notifier(environ)
    assert not notifier.enabled
    notifier.ready("x")
    notifier.status("x")
    notifier.watchdog()
    notifier.reloading()
    notifier.stopping()
    notifier.close()


def test_defaults_to_os_environ(
    path_socket: tuple[socket.socket, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    sock, path = path_socket
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    monkeypatch.setenv("WATCHDOG_USEC", "2000000")
    notifier = Notifier()
    notifier.watchdog()
    assert notifier.watchdog_interval_s == 1.0
    assert _pending(sock) == [b"WATCHDOG=1"]


def test_socket_gone_never_raises_and_logs_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = str(tmp_path / "notify")
    sock = _receiver(path)
    notifier = Notifier({"NOTIFY_SOCKET": path})
    notifier.ready()
    assert _pending(sock) == [b"READY=1"]
    sock.close()
    os.unlink(path)

    caplog.set_level(logging.DEBUG, logger="callguard.daemon.systemd")
    for _ in range(3):
        notifier.watchdog()
        notifier.status("still here")
    failures = [r for r in caplog.records if "failed" in r.getMessage()]
    assert len(failures) == 1
    assert failures[0].levelno == logging.DEBUG
    assert path in failures[0].getMessage()

    # systemd comes back (daemon-reexec recreates the socket): sends work again, and the next
    # outage is reported once more.
    sock = _receiver(path)
    assert notifier.send("WATCHDOG=1")
    assert _pending(sock) == [b"WATCHDOG=1"]
    sock.close()
    caplog.clear()
    notifier.watchdog()
    notifier.watchdog()
    assert sum("failed" in r.getMessage() for r in caplog.records) == 1


def test_a_path_that_is_not_a_socket_does_not_raise(tmp_path: Path) -> None:
    path = tmp_path / "notify"
    path.write_text("not a socket")
    notifier = Notifier({"NOTIFY_SOCKET": str(path)})
    notifier.ready()
    notifier.stopping()
    missing = Notifier({"NOTIFY_SOCKET": "@callguard-nobody-listens-" + secrets.token_hex(8)})
    missing.watchdog()
    too_long = Notifier({"NOTIFY_SOCKET": "/" + "x" * 200})
    too_long.watchdog()


def test_a_systemd_that_does_not_read_cannot_stall_the_sender(
    path_socket: tuple[socket.socket, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    sock, path = path_socket
    monkeypatch.setattr("callguard.daemon.systemd.SEND_TIMEOUT_S", 0.01)
    notifier = Notifier({"NOTIFY_SOCKET": path})
    sent = 0
    while notifier.send("WATCHDOG=1"):  # until the receive queue is full
        sent += 1
        assert sent < 100_000
    assert len(_pending(sock)) == sent
    assert notifier.send("WATCHDOG=1")


def test_sends_are_thread_safe(path_socket: tuple[socket.socket, str]) -> None:
    sock, path = path_socket
    sock.settimeout(5)  # the receiving thread drains the queue (10 datagrams deep by default)
    notifier = Notifier({"NOTIFY_SOCKET": path})
    expected = sorted(f"STATUS=t{i}".encode() for i in range(4) for _ in range(25))
    received: list[bytes] = []

    def receive() -> None:
        while len(received) < len(expected):
            received.append(sock.recv(4096))

    def send(i: int) -> None:
        for _ in range(25):
            notifier.status(f"t{i}")

    threads = [threading.Thread(target=receive)]
    threads += [threading.Thread(target=send, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(received) == expected


def test_parse_notify_address() -> None:
    assert parse_notify_address("/run/systemd/notify") == "/run/systemd/notify"
    assert parse_notify_address("@/org/freedesktop/systemd1/notify") == (
        b"\0/org/freedesktop/systemd1/notify"
    )
    assert parse_notify_address("vsock:2:1234") is None
    assert parse_notify_address("") is None


# ---------------------------------------------------------------------------------- watchdog


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"WATCHDOG_USEC": "30000000"}, 15.0),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid())}, 15.0),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid() + 1)}, None),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": ""}, None),
        ({"WATCHDOG_USEC": "500000"}, 0.25),
        ({"WATCHDOG_USEC": "0"}, None),
        ({"WATCHDOG_USEC": "-5"}, None),
        ({"WATCHDOG_USEC": "soon"}, None),
        ({"WATCHDOG_PID": str(os.getpid())}, None),
        ({}, None),
    ],
    ids=[
        "no-pid",
        "our-pid",
        "other-pid",
        "empty-pid",
        "short",
        "zero",
        "negative",
        "garbage",
        "pid-only",
        "none",
    ],
)
def test_watchdog_interval(environ: dict[str, str], expected: float | None) -> None:
    assert Notifier(environ).watchdog_interval_s == expected


# ----------------------------------------------------------------------------------- logging


@pytest.fixture
def root_logger() -> Iterator[logging.Logger]:
    """The root logger, restored afterwards (setup_logging configures it)."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    # a command run earlier in this process (cli.main) may have left CallGuard's handler
    root.handlers[:] = [h for h in handlers if not isinstance(h, logs._CallGuardHandler)]
    yield root
    root.handlers[:] = handlers
    root.setLevel(level)


def _record(level: int, msg: str, name: str = "callguard.modem") -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, msg, None, None)


def test_journal_format_has_priority_and_no_timestamp(root_logger: logging.Logger) -> None:
    out = io.StringIO()
    setup_logging(logging.DEBUG, stream=out, environ={"JOURNAL_STREAM": "8:12345"})
    logger = logging.getLogger("callguard.modem")
    logger.debug("AT sent")
    logger.info("modem connected")
    logger.warning("no caller ID")
    logger.error("port vanished")
    logger.critical("giving up")
    assert out.getvalue() == (
        "<7>callguard.modem: AT sent\n"
        "<6>callguard.modem: modem connected\n"
        "<4>callguard.modem: no caller ID\n"
        "<3>callguard.modem: port vanished\n"
        "<2>callguard.modem: giving up\n"
    )


def test_plain_format_without_journal_stream(
    root_logger: logging.Logger, monkeypatch: pytest.MonkeyPatch
) -> None:
    at_0930 = time.struct_time((2026, 11, 24, 9, 30, 0, 1, 328, 0))
    monkeypatch.setattr(JournalFormatter, "converter", lambda self, t: at_0930)
    out = io.StringIO()
    setup_logging(stream=out, environ={})
    logging.getLogger("callguard.modem").warning("no caller ID for %s", "01632 960123")
    logging.getLogger("callguard.modem").debug("below the level")
    assert (
        out.getvalue()
        == "2026-11-24 09:30:00 WARNING callguard.modem: no caller ID for 01632 960123\n"
    )


def test_traceback_stays_one_indented_record_with_its_priority(root_logger: logging.Logger) -> None:
    out = io.StringIO()
    setup_logging(stream=out, environ={"JOURNAL_STREAM": "8:12345"})
    try:
        raise ValueError("bad line voltage")
    except ValueError:
        logging.getLogger("callguard.daemon.app").exception("call handling failed")
    text = out.getvalue()
    lines = text.splitlines()
    assert text.endswith("\n") and not text.endswith("\n\n")
    assert lines[0] == "<3>callguard.daemon.app: call handling failed"
    assert lines[1] == "<3>    Traceback (most recent call last):"
    assert lines[-1] == "<3>    ValueError: bad line voltage"
    assert all(line.startswith("<3>    ") for line in lines[1:])


def test_plain_traceback_is_indented(root_logger: logging.Logger) -> None:
    out = io.StringIO()
    setup_logging(stream=out, environ={})
    try:
        raise KeyError("x")
    except KeyError:
        logging.getLogger("callguard").error("boom", exc_info=True)
    first, *rest = out.getvalue().splitlines()
    assert first.endswith(" ERROR callguard: boom")
    assert rest[0] == "    Traceback (most recent call last):"
    assert rest[-1] == "    KeyError: 'x'"


def test_each_record_is_one_write(root_logger: logging.Logger) -> None:
    writes: list[str] = []

    class Recorder(io.StringIO):
        def write(self, s: str) -> int:
            writes.append(s)
            return len(s)

    setup_logging(stream=Recorder(), environ={"JOURNAL_STREAM": "1:2"})
    logging.getLogger("callguard").warning("line one\nline two\n\n")
    assert writes == ["<4>callguard: line one\n<4>    line two\n"]


def test_setup_logging_is_idempotent(root_logger: logging.Logger) -> None:
    first, second = io.StringIO(), io.StringIO()
    before = len(root_logger.handlers)
    setup_logging(stream=first, environ={})
    setup_logging(logging.WARNING, stream=second, environ={"JOURNAL_STREAM": "8:1"})
    assert len(root_logger.handlers) == before + 1
    logging.getLogger("callguard").warning("once")
    logging.getLogger("callguard").info("filtered")
    assert first.getvalue() == ""
    assert second.getvalue() == "<4>callguard: once\n"


def test_journal_stream_must_name_the_stream_itself(tmp_path: Path) -> None:
    with open(tmp_path / "log", "w") as stream:
        st = os.fstat(stream.fileno())
        assert stream_is_journal(stream, {"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"})
        # Inherited by a child whose stderr went to a file: not the journal.
        assert not stream_is_journal(stream, {"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino + 1}"})
        assert not stream_is_journal(stream, {})


@pytest.mark.parametrize("value", ["", "8", "8:", ":5", "a:b", "8:5:1"])
def test_malformed_journal_stream_means_plain(value: str) -> None:
    assert not stream_is_journal(io.StringIO(), {"JOURNAL_STREAM": value})


def test_real_stderr_matching_journal_stream_gets_prefixes(
    tmp_path: Path, root_logger: logging.Logger
) -> None:
    with open(tmp_path / "stderr", "w") as stream:
        st = os.fstat(stream.fileno())
        setup_logging(stream=stream, environ={"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"})
        logging.getLogger("callguard").info("hello")
    assert (tmp_path / "stderr").read_text() == "<6>callguard: hello\n"


def test_journal_priority_between_levels() -> None:
    assert journal_priority(logging.INFO + 5) == 6
    assert journal_priority(logging.WARNING + 1) == 4
    assert journal_priority(logging.CRITICAL + 10) == 2
    assert journal_priority(logging.NOTSET) == 7


def test_formatter_blank_and_empty_messages() -> None:
    journal = JournalFormatter(journal=True)
    assert journal.format(_record(logging.INFO, "")) == "<6>callguard.modem: "
    assert journal.format(_record(logging.INFO, "a\n\nb")) == (
        "<6>callguard.modem: a\n<6>\n<6>    b"
    )
