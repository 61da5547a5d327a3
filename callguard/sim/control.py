"""The sim's control socket: a second terminal or a script drives a running sim.

Theory of operation
-------------------
A Unix stream socket (by default next to the pty link: ``/tmp/modem`` -> ``/tmp/modem.ctl``),
created mode 0600 and answering only its own user (SO_PEERCRED where the kernel has it). It
speaks the console's line protocol (`console.py`): UTF-8 lines in, one reply line out per
command, ``ok: ...`` or ``error: ...``; blank lines and ``#`` comments get no reply. A line
longer than `MAX_REQUEST_BYTES` is answered with an error and skipped to its end.

One thread accepts (woken by a self-pipe to stop); each connection has its own thread, at most
`MAX_CONNECTIONS` at a time. A ``quit`` is answered before the sim is told to stop. `stop()`
closes every connection, joins every thread and removes the socket if it is still ours.

`send(path, lines)` is the client: one connection, each line sent and its reply read.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import socket
import stat
import struct
import threading
from collections.abc import Callable, Iterable, Iterator

from callguard.sim.console import MAX_LINE_CHARS, Reply

MAX_REQUEST_BYTES = MAX_LINE_CHARS * 4 + 2
"""Longest request line read (a command of MAX_LINE_CHARS in UTF-8, and its newline)."""
MAX_CONNECTIONS = 8
ACCEPT_POLL_S = 1.0


class ControlError(RuntimeError):
    """The control socket cannot be made, or no sim answers on it; the message says why."""


Handler = Callable[[str], Reply | None]


class ControlServer:
    """Serves `handle(line) -> Reply | None` on a Unix socket at `path`.

    `on_quit` is called after a reply with `quit` set has been sent. `on_command(line, reply)`
    lets the sim's terminal show what a remote client did.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        handle: Handler,
        *,
        on_quit: Callable[[], None] = lambda: None,
        on_command: Callable[[str, Reply], None] = lambda line, reply: None,
    ) -> None:
        self.path = os.fspath(path)
        self._handle = handle
        self._on_quit = on_quit
        self._on_command = on_command
        self._sock: socket.socket | None = None
        self._ino: tuple[int, int] | None = None
        self._wake_r, self._wake_w = -1, -1
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._conns: dict[socket.socket, threading.Thread] = {}
        self._threads: list[threading.Thread] = []
        self._acceptor: threading.Thread | None = None

    def start(self) -> ControlServer:
        _clear_stale(self.path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old_umask = os.umask(0o177)  # born 0600: no moment when another user could connect
        try:
            sock.bind(self.path)
        except OSError as e:
            sock.close()
            raise ControlError(
                f"cannot make the control socket {self.path}: {e.strerror or e}; pass --control"
                " with a short path in a folder you can write, or --control '' for none"
            ) from e
        finally:
            os.umask(old_umask)
        os.chmod(self.path, 0o600)
        info = os.stat(self.path)
        self._ino = (info.st_dev, info.st_ino)
        sock.listen(MAX_CONNECTIONS)
        sock.setblocking(False)
        self._sock = sock
        self._wake_r, self._wake_w = os.pipe()
        self._acceptor = threading.Thread(
            target=self._accept_loop, name=f"simcontrol-accept-{self.path}", daemon=True
        )
        self._acceptor.start()
        return self

    def stop(self) -> None:
        """Close the socket and every connection, join the threads, remove the path."""
        if self._sock is None or self._stopping.is_set():
            return
        self._stopping.set()
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"x")
        if self._acceptor is not None and self._acceptor is not threading.current_thread():
            self._acceptor.join()
        with self._lock:
            conns = dict(self._conns)
            threads = list(self._threads)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        for thread in threads:  # every one started, even those already leaving
            if thread is not threading.current_thread():
                thread.join()
        self._sock.close()
        for fd in (self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)
        with contextlib.suppress(OSError):
            info = os.lstat(self.path)
            if (info.st_dev, info.st_ino) == self._ino:
                os.unlink(self.path)

    def __enter__(self) -> ControlServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _accept_loop(self) -> None:
        assert self._sock is not None
        listening = self._sock.fileno()
        while not self._stopping.is_set():
            try:
                readable, _, _ = select.select([listening, self._wake_r], [], [], ACCEPT_POLL_S)
            except (OSError, ValueError):
                return
            if self._stopping.is_set():
                return
            if listening not in readable:
                continue
            try:
                conn, _ = self._sock.accept()
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                return
            conn.setblocking(True)
            with self._lock:
                full = len(self._conns) >= MAX_CONNECTIONS
            if full or not _same_user(conn):
                why = (
                    f"{MAX_CONNECTIONS} clients are connected already; close one"
                    if full
                    else "this socket answers only the user who runs the sim"
                )
                with contextlib.suppress(OSError):
                    conn.sendall(Reply(False, why).line.encode() + b"\n")
                conn.close()
                continue
            thread = threading.Thread(
                target=self._serve, args=(conn,), name="simcontrol-conn", daemon=True
            )
            with self._lock:
                self._conns[conn] = thread
                self._threads = [t for t in self._threads if t.is_alive()] + [thread]
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            for raw in _lines(conn):
                if raw is None:
                    reply: Reply | None = Reply(
                        False, f"the line is longer than {MAX_REQUEST_BYTES} bytes; send less"
                    )
                    line = ""
                else:
                    line = raw.decode("utf-8", "replace").rstrip("\r")
                    reply = self._handle(line)
                if reply is None:
                    continue
                self._on_command(line, reply)
                conn.sendall(reply.line.encode("utf-8") + b"\n")
                if reply.quit:
                    self._on_quit()
                    return
        except OSError:
            pass  # the client went away, or stop() shut the connection
        finally:
            with self._lock:
                self._conns.pop(conn, None)
            conn.close()


def _lines(conn: socket.socket) -> Iterator[bytes | None]:
    """Request lines without their newline; None for a line that was too long (skipped)."""
    buf = b""
    skipping = False
    while True:
        chunk = conn.recv(4096)
        if not chunk:
            if buf and not skipping:
                yield buf  # a last line without its newline
            return
        buf += chunk
        while True:
            end = buf.find(b"\n")
            if end < 0:
                if len(buf) > MAX_REQUEST_BYTES:
                    if not skipping:
                        yield None
                    skipping = True
                    buf = b""
                break
            line, buf = buf[:end], buf[end + 1 :]
            if skipping:
                skipping = False
                continue
            yield line if len(line) <= MAX_REQUEST_BYTES else None


def _same_user(conn: socket.socket) -> bool:
    option = getattr(socket, "SO_PEERCRED", None)
    if option is None:
        return True  # the socket's mode (0600) is the guard
    try:
        creds = conn.getsockopt(socket.SOL_SOCKET, option, struct.calcsize("3i"))
    except OSError:
        return False
    _, uid, _ = struct.unpack("3i", creds)
    return uid in (os.getuid(), 0)


def _clear_stale(path: str) -> None:
    """Remove a socket left by a sim that died; refuse anything else at `path`."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(info.st_mode):
        raise ControlError(
            f"{path} exists and is not a socket; pass --control with a path the sim may own"
        )
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except OSError as e:
        if e.errno not in (errno.ECONNREFUSED, errno.ENOENT):
            raise ControlError(
                f"cannot check the old control socket {path}: {e.strerror or e}"
            ) from e
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)  # nobody listens: a sim that died left it
        return
    finally:
        probe.close()
    raise ControlError(
        f"another sim is already listening on {path}; stop it (quit), or pass --control"
        " with another path"
    )


def send(
    path: str | os.PathLike[str], lines: Iterable[str], timeout_s: float | None = None
) -> list[str]:
    """Send each line to the sim at `path`; the reply line to each (in order).

    Lines that are blank or comments get no reply and are skipped here. Raises ControlError if
    no sim answers at `path` or the sim goes away before replying.
    """
    path = os.fspath(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout_s)
    try:
        try:
            sock.connect(path)
        except OSError as e:
            raise ControlError(
                f"no sim is listening on {path} ({e.strerror or e}); start one with"
                " `callguard sim --link PATH`, or give its --control path"
            ) from e
        replies: list[str] = []
        reader = sock.makefile("rb")
        for line in lines:
            text = line.strip()
            if not text or text.startswith("#"):
                continue
            if "\n" in text or "\r" in text:
                raise ControlError("a command is one line; send several as several lines")
            try:
                sock.sendall(text.encode("utf-8") + b"\n")
                reply = reader.readline(MAX_REQUEST_BYTES * 8)
            except TimeoutError as e:
                raise ControlError(f"the sim on {path} did not answer {text!r} in time") from e
            except OSError as e:
                raise ControlError(f"the sim on {path} went away: {e.strerror or e}") from e
            if not reply:
                raise ControlError(f"the sim on {path} closed the connection before answering")
            replies.append(reply.decode("utf-8", "replace").rstrip("\r\n"))
        return replies
    finally:
        sock.close()
