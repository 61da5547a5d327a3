"""What stands between the family page and the network: who may connect, how often a wrong
password may be tried, which requests may change anything, and the headers on every answer.

Theory of operation
-------------------
- :class:`NetworkGuard` is the outermost WSGI layer. It reads the client's address from
  ``REMOTE_ADDR`` (waitress puts the socket's peer there and trusts no forwarding header) and
  answers 403 to anyone outside ``[web] allow_networks`` (loopback, private and link-local
  networks by default), before Flask, the session or the password file are touched. A router
  forwarding port 80 from the internet does not change the peer address, so the internet is
  refused too. An IPv4 client on an IPv6 socket (``::ffff:192.168.1.20``) counts as its IPv4
  address.
- :class:`LoginThrottle` counts wrong passwords per client: an IPv4 address, or an IPv6 /64
  (one home network's prefix: a client can pick any address in it). Each wrong password costs
  a pause (:data:`FAILURE_DELAY_S`, on top of scrypt's own time); :data:`MAX_FAILURES` within
  :data:`WINDOW_S` refuse that client for :data:`LOCKOUT_S`, right password or not, and the
  refusals and failures are logged with the address. The counts live in memory: a restart
  forgets them, which a guesser cannot cause from the network.
- :func:`same_origin` is the second half of the CSRF defence (the first is the per-session
  token every form carries, checked by the app): a state-changing request must say where it
  comes from (``Origin``, or failing that ``Referer``; every browser sends one of them with a
  form POST, and the page's ``Referrer-Policy: same-origin`` keeps the ``Referer``) and it must
  be this page's own origin.
- :data:`SECURITY_HEADERS` go on every answer: a CSP that allows only the page's own style
  sheet and images (no script at all, no framing, forms only to itself), ``X-Frame-Options``,
  ``nosniff`` and ``Referrer-Policy``.
"""

from __future__ import annotations

import collections
import ipaddress
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

log = logging.getLogger(__name__)

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

SECURITY_HEADERS: Final = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'none'; object-src 'none'; base-uri 'none'; "
        "form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
}

MAX_FAILURES: Final = 10
WINDOW_S: Final = 600.0
LOCKOUT_S: Final = 900.0
FAILURE_DELAY_S: Final = 1.0


def client_address(environ: WSGIEnvironment) -> Address | None:
    """The client's address from ``REMOTE_ADDR``, IPv4-mapped IPv6 as IPv4; None if unreadable."""
    text = str(environ.get("REMOTE_ADDR") or "").split("%", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def parse_networks(texts: Iterable[str]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(t, strict=False) for t in texts)


_FORBIDDEN_PAGE: Final = (
    b"<!doctype html><html lang='en-GB'><meta charset='utf-8'>"
    b"<meta name='viewport' content='width=device-width, initial-scale=1'>"
    b"<title>Not from here - CallGuard</title>"
    b"<body style='font: 20px/1.5 sans-serif; margin: 1em'>"
    b"<h1>Not from here</h1><p>CallGuard's family page answers only devices on the home "
    b"network it is on. Connect to that network (its Wi-Fi) and try again.</p></body></html>"
)


class NetworkGuard:
    """WSGI middleware: 403 to clients outside ``networks`` (see the module docstring)."""

    LOG_EVERY_S: Final = 3600.0

    def __init__(
        self,
        app: WSGIApplication,
        networks: Iterable[str],
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.app = app
        self.networks = parse_networks(networks)
        self.clock = clock
        self._logged: collections.OrderedDict[str, float] = collections.OrderedDict()
        self._lock = threading.Lock()

    def allows(self, address: Address | None) -> bool:
        return address is not None and any(
            address.version == n.version and address in n for n in self.networks
        )

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        address = client_address(environ)
        if self.allows(address):
            return self.app(environ, start_response)
        self._log_refusal(str(address or environ.get("REMOTE_ADDR")))
        headers = [
            ("Content-Type", "text/html; charset=utf-8"),
            ("Content-Length", str(len(_FORBIDDEN_PAGE))),
            ("Cache-Control", "no-store"),
            *SECURITY_HEADERS.items(),
        ]
        start_response("403 Forbidden", headers)
        return [b"" if environ.get("REQUEST_METHOD") == "HEAD" else _FORBIDDEN_PAGE]

    def _log_refusal(self, who: str) -> None:
        """Once an hour per address at most: a scan from the internet must not fill the log."""
        now = self.clock()
        with self._lock:
            last = self._logged.get(who)
            if last is not None and now - last < self.LOG_EVERY_S:
                return
            self._logged[who] = now
            self._logged.move_to_end(who)
            while len(self._logged) > 1000:
                self._logged.popitem(last=False)
        log.warning("refused a request from %s: not in web.allow_networks (the home network)", who)


# -- wrong passwords ------------------------------------------------------------------------


def client_key(address: Address | None) -> str:
    """Whom wrong passwords are counted against: an IPv4 address, or an IPv6 /64."""
    if address is None:
        return "unknown"
    if isinstance(address, ipaddress.IPv6Address) and not address.is_loopback:
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


@dataclass
class _Record:
    failures: collections.deque[float]
    refused_until: float = 0.0


class LoginThrottle:
    """Wrong passwords per client (see the module docstring). Thread-safe."""

    def __init__(
        self,
        *,
        max_failures: int = MAX_FAILURES,
        window_s: float = WINDOW_S,
        lockout_s: float = LOCKOUT_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self.lockout_s = lockout_s
        self.clock = clock
        self._records: dict[str, _Record] = {}
        self._lock = threading.Lock()

    def refused_for_s(self, key: str) -> float:
        """How much longer ``key`` is refused (0: it may try)."""
        with self._lock:
            record = self._records.get(key)
            return max(0.0, record.refused_until - self.clock()) if record else 0.0

    def failed(self, key: str) -> int:
        """Count a wrong password; returns the count within the window. Reaching the limit
        refuses the client for ``lockout_s``."""
        now = self.clock()
        with self._lock:
            self._forget_old(now)
            record = self._records.setdefault(key, _Record(collections.deque()))
            record.failures.append(now)
            while record.failures and now - record.failures[0] > self.window_s:
                record.failures.popleft()
            count = len(record.failures)
            if count >= self.max_failures:
                record.refused_until = now + self.lockout_s
                record.failures.clear()
            return count

    def succeeded(self, key: str) -> None:
        with self._lock:
            self._records.pop(key, None)

    def _forget_old(self, now: float) -> None:
        if len(self._records) < 1000:
            return
        for key in [
            k
            for k, r in self._records.items()
            if r.refused_until <= now and (not r.failures or now - r.failures[-1] > self.window_s)
        ]:
            del self._records[key]


# -- where a request comes from ---------------------------------------------------------------


def origin_of(url: str) -> str | None:
    """``scheme://host[:port]`` of a URL, lower case; None if it has none."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if not parts.scheme or not parts.hostname:
        return None
    default = {"http": 80, "https": 443}.get(parts.scheme.lower())
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    suffix = "" if port is None or port == default else f":{port}"
    return f"{parts.scheme.lower()}://{host}{suffix}"


def same_origin(own_url: str, origin: str | None, referer: str | None) -> bool:
    """Whether a state-changing request comes from the page itself: its ``Origin`` (or, when a
    browser sends none, its ``Referer``) is the page's own origin. Neither given: refused."""
    own = origin_of(own_url)
    if own is None:
        return False
    if origin:
        return origin != "null" and origin_of(origin) == own
    if referer:
        return origin_of(referer) == own
    return False
