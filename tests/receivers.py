"""Real local receivers for the carer alerts: an HTTP server for apprise's ``json://`` and an
SMTP server (aiosmtpd) for ``mailto://``, both on 127.0.0.1 at a free port.

A test module gets the fixtures with ``pytest_plugins = ["receivers"]`` (``tests`` is on
pytest's path):

- ``http_receiver``: a :class:`HTTPReceiver`; ``.url`` is its ``json://`` URL, ``.messages``
  what it was sent (title, body, type), ``.fail()`` makes it answer 500, ``.down()`` closes
  its port (connection refused) and ``.up()`` opens it again on the same port.
- ``smtp_receiver``: a :class:`SMTPReceiver`; ``.url`` is a ``mailto://`` URL apprise sends to
  it in plain SMTP (no TLS, no login), ``.messages`` what arrived (subject, body, from, to).

Both record a message before they answer, so once apprise's send has returned it is there:
no waiting. PYTEST_DONT_REWRITE: it has no asserts to rewrite.
"""

from __future__ import annotations

import contextlib
import email
import email.policy
import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Received:
    """One message a receiver took."""

    title: str
    body: str
    type: str = ""
    """apprise's notification type (``info``, ``warning`` ...) for json://; '' for mail."""
    sender: str = ""
    to: tuple[str, ...] = ()
    raw: dict[str, Any] = field(default_factory=dict, repr=False)


class HTTPReceiver:
    """Takes apprise ``json://`` POSTs; see the module docstring."""

    def __init__(self) -> None:
        self.port = free_port()
        self.messages: list[Received] = []
        self.status = 200
        """What it answers (``fail()`` sets 500)."""
        self.requests = 0
        """Every request that reached it, answered 200 or not."""
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.up()

    @property
    def url(self) -> str:
        return f"json://{HOST}:{self.port}/"

    def up(self) -> None:
        """Listen (again, on the same port) and answer 200."""
        self.status = 200
        if self._server is not None:
            return
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                payload = self.rfile.read(length)
                with receiver._lock:
                    receiver.requests += 1
                    status = receiver.status
                    if status == 200:
                        data = json.loads(payload)
                        receiver.messages.append(
                            Received(
                                title=str(data.get("title", "")),
                                body=str(data.get("message", "")),
                                type=str(data.get("type", "")),
                                raw=data,
                            )
                        )
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer((HOST, self.port), Handler)
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, daemon=True)
        self._thread.start()

    def fail(self, status: int = 500) -> None:
        """Answer every request with ``status`` (recording nothing) until :meth:`up`."""
        self.status = status

    def down(self) -> None:
        """Close the port: a send is refused."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    close = down


class SMTPReceiver:
    """An aiosmtpd server recording what arrives; see the module docstring."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        self.messages: list[Received] = []
        receiver = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                message = email.message_from_bytes(envelope.content, policy=email.policy.default)
                part = message.get_body(preferencelist=("plain", "html"))
                body = part.get_content() if part is not None else ""
                receiver.messages.append(
                    Received(
                        title=str(message["Subject"] or ""),
                        body=str(body),
                        sender=str(envelope.mail_from),
                        to=tuple(envelope.rcpt_tos),
                    )
                )
                return "250 Message accepted for delivery"

        self.port = free_port()
        self._controller = Controller(Handler(), hostname=HOST, port=self.port)
        self._controller.start()

    @property
    def url(self) -> str:
        """Plain SMTP to this port: ``mailto://`` (not ``mailtos://``) is apprise's insecure
        mode (no STARTTLS); no user or password, so no login; ``from`` and ``to`` given."""
        return f"mailto://{HOST}:{self.port}?from=callguard@example.org&to=carer@example.org"

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._controller.stop()


@pytest.fixture
def http_receiver() -> Iterator[HTTPReceiver]:
    with contextlib.closing(HTTPReceiver()) as receiver:
        yield receiver


@pytest.fixture
def smtp_receiver() -> Iterator[SMTPReceiver]:
    with contextlib.closing(SMTPReceiver()) as receiver:
        yield receiver
