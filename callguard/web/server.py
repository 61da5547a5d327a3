"""The family page's server: waitress on ``[web] host``/``port``, the network guard outermost.

waitress is pure Python, packaged by Raspberry Pi OS, and serves with a fixed pool of threads
(no process per request): the page is for a handful of family members at home. It trusts no
forwarding header, so ``REMOTE_ADDR`` is the socket's peer, which
:class:`~callguard.web.guard.NetworkGuard` checks before anything else runs.

``wrap`` is the one seam for tests: it wraps the whole WSGI application, outside the guard, so
a test can give a request another client address (``REMOTE_ADDR``) without another host.
"""

from __future__ import annotations

import errno
import logging
import signal
from collections.abc import Callable
from types import FrameType
from typing import TYPE_CHECKING, Any

from callguard.config import Config
from callguard.errors import CallGuardError
from callguard.web.guard import NetworkGuard
from callguard.web.uploads import MAX_UPLOAD_BYTES

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication
    from waitress.server import BaseWSGIServer, MultiSocketServer

    Server = BaseWSGIServer | MultiSocketServer

log = logging.getLogger(__name__)

THREADS = 4
"""Requests served at once: enough for a family, little memory."""


def build_wsgi(
    config: Config,
    *,
    wrap: Callable[[WSGIApplication], WSGIApplication] | None = None,
    **app_options: Any,
) -> WSGIApplication:
    """The family page as one WSGI application: the network guard around the Flask app."""
    from callguard.web.app import create_app

    guarded = NetworkGuard(create_app(config, **app_options), config.web.allow_networks)
    return wrap(guarded) if wrap is not None else guarded


def listen_on(host: str, port: int) -> str:
    """waitress's ``listen`` for a host and port: ``*:80``, ``127.0.0.1:8080``, ``[::1]:80``."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def make_server(
    config: Config,
    *,
    host: str | None = None,
    port: int | None = None,
    wrap: Callable[[WSGIApplication], WSGIApplication] | None = None,
    **app_options: Any,
) -> Server:
    """A waitress server for the family page, bound and ready to :func:`run`. Raises
    :class:`CallGuardError` saying why the port cannot be had."""
    from waitress.server import create_server

    host = config.web.host if host is None else host
    port = config.web.port if port is None else port
    app = build_wsgi(config, wrap=wrap, **app_options)
    options: dict[str, Any] = {
        "listen": listen_on(host, port),
        "threads": THREADS,
        "ident": "CallGuard",
        "connection_limit": 40,
        "channel_timeout": 60,
        "max_request_header_size": 32 * 1024,
        "max_request_body_size": MAX_UPLOAD_BYTES + 128 * 1024,  # a contacts file; Flask
        # refuses anything else over 64 kB, and a bigger file with the Import page's message
        "expose_tracebacks": False,
        "clear_untrusted_proxy_headers": True,
        "asyncore_use_poll": True,
    }
    try:
        try:
            return create_server(app, **options)
        except OSError as exc:
            if host != "*" or exc.errno not in (errno.EAFNOSUPPORT, errno.EADDRNOTAVAIL):
                raise
            log.warning("IPv6 is not available here (%s): listening on IPv4 only", exc)
            return create_server(app, ipv6=False, **options)
    except OSError as exc:
        raise CallGuardError(_bind_problem(host, port, exc)) from None
    except ValueError as exc:  # waitress: "Invalid host/port specified."
        raise CallGuardError(
            f"the family page cannot listen on {listen_on(host, port)} ({exc}); check web.host "
            "in the config ('*', or an address of this Pi)"
        ) from None


def _bind_problem(host: str, port: int, exc: OSError) -> str:
    where = listen_on(host, port)
    if exc.errno in (errno.EACCES, errno.EPERM):
        return (
            f"the family page may not listen on {where}: ports below 1024 need the "
            "capability its service gives it (AmbientCapabilities=CAP_NET_BIND_SERVICE). Start "
            "it with: sudo systemctl start callguard-web, or choose a port above 1023 "
            "(web.port in the config, or --port)"
        )
    if exc.errno == errno.EADDRINUSE:
        return (
            f"port {port} is in use by another program, so the family page cannot listen on "
            f"{where}. See which with: sudo ss -ltnp 'sport = :{port}'; stop it, or set "
            "another web.port in the config"
        )
    if exc.errno == errno.EADDRNOTAVAIL:
        return (
            f"{host} is not an address of this Pi, so the family page cannot listen on it; set "
            "web.host to '*' (every address) in the config"
        )
    return f"the family page cannot listen on {where}: {exc.strerror or exc}"


def urls(server: Server) -> list[str]:
    """Where the server listens, as addresses to type into a browser."""
    pairs = getattr(server, "effective_listen", None) or [
        (server.effective_host, server.effective_port)  # type: ignore[union-attr]
    ]
    return [f"http://{listen_on(str(host), int(port))}/" for host, port in pairs]


def run(server: Server) -> None:
    """Serve until SIGTERM or SIGINT, then close the sockets."""

    def stop(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(0)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        server.run()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        server.close()
        log.info("the family page has stopped")
