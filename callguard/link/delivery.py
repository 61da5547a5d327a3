"""Delivering queued alerts to the carers' channels through apprise.

Theory of operation
-------------------
A *channel* is one apprise URL from ``[alerts] urls``. The outbox
(:mod:`callguard.store.outbox`) never holds the URL, which may carry a password or a token: it
holds the channel's id (:func:`channel_id`, a digest of the URL) and a label for people
(:func:`channel_label`, apprise's privacy form, secrets masked). :class:`Channels` maps the
ids back to URLs from the config in force, so a URL taken out of the config is no longer sent
to; its pending deliveries are given up with the reason "no longer in [alerts] urls".

:class:`Deliverer` is the link's retry loop, one pass per :meth:`Deliverer.run_due`: expire
the alerts past their expiry, then try each due delivery once. A failure is recorded with
apprise's own words for it and the next try is set by :func:`backoff` (30 s, then doubling,
capped at an hour); the other deliveries due to the same channel in the same pass are not
tried (that channel has just failed: trying each would cost a timeout apiece) and wait as
long. A try is bounded in time by apprise's socket timeouts, lowered to
:data:`CONNECT_TIMEOUT_S` and :data:`READ_TIMEOUT_S` unless the URL sets its own (``cto``,
``rto``). Nothing here raises for a channel's failure: a bad URL or a broken plugin is a
reason, recorded.

At most once per try, at least once overall: a delivery is marked delivered as soon as apprise
says it was, so it is not sent again; a crash between the two would send it once more.

apprise is imported inside the functions that use it (about 30 MB and a fifth of a second):
``callguard alerts list`` imports this module's names without paying for it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import logging
import re
import socket
import urllib.parse
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Final

from callguard.store.folder import now_local

if TYPE_CHECKING:
    from callguard.store.outbox import Outbox

log = logging.getLogger(__name__)

FIRST_RETRY: Final = dt.timedelta(seconds=30)
LONGEST_RETRY: Final = dt.timedelta(hours=1)
CONNECT_TIMEOUT_S: Final = 10.0
READ_TIMEOUT_S: Final = 20.0
REMOVED: Final = "no longer in [alerts] urls"
TEST_TITLE: Final = "CallGuard test: alerts from this unit reach you"


def channel_id(url: str) -> str:
    """The channel's id: the first 12 hex digits of the URL's SHA-256 (no secret in it)."""
    return hashlib.sha256(url.encode("utf-8", "surrogatepass")).hexdigest()[:12]


def channel_label(url: str) -> str:
    """The URL for people: apprise's privacy form (passwords and tokens masked) without its
    options; ``scheme://host`` if apprise cannot read it."""
    with _apprise_log():
        plugin = _instantiate(url)
        if plugin is not None:
            with contextlib.suppress(Exception):
                return _tidy(str(plugin.url(privacy=True)))
    return _scheme_and_host(url)


def backoff(attempts: int) -> dt.timedelta:
    """How long to wait after the ``attempts``-th failed try: 30 s, 1 min, 2 min ... 1 h."""
    doublings = min(max(attempts, 1) - 1, 16)
    return min(FIRST_RETRY * (1 << doublings), LONGEST_RETRY)


class Channels:
    """The channels of ``[alerts] urls``, by id; see the module docstring."""

    def __init__(self, urls: Sequence[str]) -> None:
        self._urls: dict[str, str] = {}
        for url in urls:
            self._urls.setdefault(channel_id(url), url)
        self._plugins: dict[str, Any] = {}
        self._labels: dict[str, str] = {}

    def __contains__(self, channel: object) -> bool:
        return channel in self._urls

    def pairs(self) -> list[tuple[str, str]]:
        """``(id, label)`` of each channel, in the config's order (for :meth:`Outbox.add`)."""
        return [(cid, self.label(cid)) for cid in self._urls]

    def label(self, channel: str) -> str:
        if channel not in self._labels:
            url = self._urls.get(channel)
            self._labels[channel] = "an unknown channel" if url is None else channel_label(url)
        return self._labels[channel]

    def send(self, channel: str, title: str, body: str) -> str | None:
        """Send one message; None if the channel took it, else why not, in plain words.
        Never raises; bounded by the socket timeouts (see the module docstring)."""
        url = self._urls.get(channel)
        if url is None:
            return REMOVED
        try:
            with _apprise_log() as captured:
                plugin = self._plugin(channel, url)
                if plugin is None:
                    said = self._hide(channel, _last_line(captured.getvalue()))
                    return (
                        "apprise cannot read this URL"
                        + (f" ({said})" if said else "")
                        + "; check its form in apprise's wiki (github.com/caronc/apprise/wiki) "
                        "and correct it in [alerts] urls"
                    )
                ok = plugin.notify(body=body, title=title)
        except Exception as exc:  # a plugin's bug must not stop the link
            log.debug("apprise raised sending to %s", self.label(channel), exc_info=True)
            return f"apprise failed: {type(exc).__name__}: {exc}"
        if ok:
            return None
        said = _last_line(captured.getvalue())
        return self._hide(channel, said) or "apprise reported a failure without a reason"

    def _hide(self, channel: str, text: str) -> str:
        """``text`` with the channel's URL, which may carry a secret, replaced by its label."""
        url = self._urls.get(channel)
        return text.replace(url, self.label(channel)) if url else text

    def _plugin(self, channel: str, url: str) -> Any:
        if channel not in self._plugins:
            plugin = _instantiate(url)
            if plugin is not None:
                _cap_timeouts(plugin, url)
            self._plugins[channel] = plugin
        return self._plugins[channel]


class Deliverer:
    """The link's delivery pass over the outbox; see the module docstring."""

    def __init__(
        self,
        outbox: Outbox,
        channels: Channels,
        *,
        clock: Callable[[], dt.datetime] | None = None,
    ) -> None:
        self.outbox = outbox
        self.channels = channels
        self.clock = clock or now_local

    def run_due(self) -> int:
        """Expire what is past its expiry, then try each due delivery once; how many were
        delivered."""
        expired = self.outbox.expire()
        if expired:
            log.warning("%d alert deliveries expired undelivered", expired)
        delivered = 0
        failed_now: dict[str, str] = {}
        for alert, delivery in self.outbox.due():
            channel = delivery.channel
            if channel not in self.channels:
                self.outbox.give_up(alert.id, channel, REMOVED)
                log.warning(
                    "alert %d (%s) will not be sent to %s: %s",
                    alert.id,
                    alert.kind,
                    delivery.label,
                    REMOVED,
                )
                continue
            reason = failed_now.get(channel)
            if reason is None:
                reason = self.channels.send(channel, alert.title, alert.body)
                if reason is None:
                    self.outbox.delivered(alert.id, channel)
                    delivered += 1
                    log.info("alert %d (%s) delivered to %s", alert.id, alert.kind, delivery.label)
                    continue
                failed_now[channel] = reason
            attempts = delivery.attempts + 1
            retry_at = self.clock() + backoff(attempts)
            self.outbox.failed(alert.id, channel, reason, retry_at)
            log.warning(
                "alert %d (%s) not delivered to %s (try %d): %s; next try at %s",
                alert.id,
                alert.kind,
                delivery.label,
                attempts,
                reason,
                retry_at.isoformat(timespec="seconds"),
            )
        return delivered


def send_test(urls: Sequence[str]) -> list[tuple[str, str | None]]:
    """Send a test message to every channel: ``(label, None or why it failed)`` each."""
    channels = Channels(urls)
    body = (
        f"This is a test from CallGuard on {socket.gethostname()}, sent by `callguard alerts "
        "test`. Nothing has happened and nothing needs doing: when a real alert comes, it "
        "will come here like this."
    )
    return [(label, channels.send(cid, TEST_TITLE, body)) for cid, label in channels.pairs()]


# -- apprise ---------------------------------------------------------------------------------


def _instantiate(url: str) -> Any:
    """apprise's plugin for ``url``, or None if apprise cannot read it (never raises)."""
    try:
        apprise = _apprise()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # plugins' imports, see _apprise
            return apprise.Apprise.instantiate(url)
    except Exception:
        log.debug("apprise raised reading a URL", exc_info=True)
        return None


def _apprise() -> Any:
    """The apprise module, imported on first use (its own deprecation warnings, about
    modules it imports, are not ours to act on)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import apprise
    return apprise


@contextlib.contextmanager
def _apprise_log() -> Iterator[Any]:
    """apprise's warnings and errors, captured (and not also printed: the caller reports the
    reason in its own words)."""
    apprise = _apprise()
    logger = logging.getLogger("apprise")
    propagate = logger.propagate
    logger.propagate = False
    try:
        capture = apprise.LogCapture(level=logging.WARNING, fmt="%(message)s")
        with capture as captured:
            yield captured
    finally:
        logger.propagate = propagate


def _cap_timeouts(plugin: Any, url: str) -> None:
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
    for option, attribute, cap in (
        ("cto", "socket_connect_timeout", CONNECT_TIMEOUT_S),
        ("rto", "socket_read_timeout", READ_TIMEOUT_S),
    ):
        current = getattr(plugin, attribute, None)
        if option not in query and isinstance(current, int | float) and current > cap:
            with contextlib.suppress(Exception):
                setattr(plugin, attribute, cap)


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


_USERINFO = re.compile(r"^(?P<scheme>[a-z0-9+.-]+)://(?P<userinfo>[^@/?#]*)@", re.IGNORECASE)


def _tidy(label: str) -> str:
    """apprise's privacy URL without its options; a user name that may be a token (any
    scheme but e-mail's) abbreviated as apprise abbreviates tokens."""
    label = label.split("?", 1)[0]
    match = _USERINFO.match(label)
    if match and match["scheme"].lower() not in ("mailto", "mailtos"):
        user, sep, password = match["userinfo"].partition(":")
        short = f"{user[0]}...{user[-1]}" if len(user) > 2 else "****"
        label = f"{match['scheme']}://{short}{sep}{password}@" + label[match.end() :]
    return label


def _scheme_and_host(url: str) -> str:
    try:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname or ""
    except ValueError:
        return "an unreadable URL"
    if not parts.scheme:
        return "an unreadable URL"
    return f"{parts.scheme}://{host}"
