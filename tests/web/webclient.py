"""The family page served for real, for tests/web: waitress on 127.0.0.1 (a free port) in a
thread, and a small HTTP client with a cookie jar that speaks to it over a socket.

The client address is the one seam: :func:`remote_seam` wraps the whole application, outside
the network guard, and sets ``REMOTE_ADDR`` from an ``X-Test-Remote-Addr`` header, so a test
can be a phone on the home network, an IPv6 neighbour or a host on the internet without one.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import html
import http.client
import re
import threading
import urllib.parse
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path
from typing import TYPE_CHECKING, Any

from callguard import config as config_module
from callguard.store.lists import Store
from callguard.web.guard import LoginThrottle
from callguard.web.passwords import PasswordFile
from callguard.web.server import make_server

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

PASSWORD = "correct horse battery staple"
HOME = "192.168.1.20"
"""A phone on the home network: the client address every request has unless a test says."""


def remote_seam(app: WSGIApplication) -> WSGIApplication:
    def seam(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        fake = environ.pop("HTTP_X_TEST_REMOTE_ADDR", None)
        if fake:
            environ["REMOTE_ADDR"] = fake
        return app(environ, start_response)

    return seam


@dataclass
class Reply:
    status: int
    headers: http.client.HTTPMessage
    text: str

    def header(self, name: str) -> str | None:
        return self.headers.get(name)

    @property
    def location(self) -> str:
        return self.headers.get("Location") or ""


@dataclass
class Browser:
    """One client: its cookies, its address, and the origin its forms come from."""

    base: str
    remote: str | None = HOME
    cookies: dict[str, str] = field(default_factory=dict)
    set_cookie_lines: list[str] = field(default_factory=list)

    @property
    def host_port(self) -> tuple[str, int]:
        parts = urllib.parse.urlsplit(self.base)
        assert parts.hostname and parts.port
        return parts.hostname, parts.port

    def request(
        self,
        method: str,
        path: str,
        form: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        *,
        origin: str | None = "own",
        cookies: bool = True,
    ) -> Reply:
        host, port = self.host_port
        conn = http.client.HTTPConnection(host, port, timeout=20)
        sent = {"Connection": "close", "Host": f"{host}:{port}"}
        if self.remote:
            sent["X-Test-Remote-Addr"] = self.remote
        if cookies and self.cookies:
            sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        body = None
        if method != "GET" and method != "HEAD":
            if origin == "own":
                sent["Origin"] = self.base.rstrip("/")
            elif origin is not None:
                sent["Origin"] = origin
            body = urllib.parse.urlencode(form or {})
            sent["Content-Type"] = "application/x-www-form-urlencoded"
        sent.update(headers or {})
        try:
            conn.request(method, path, body=body, headers=sent)
            response = conn.getresponse()
            text = response.read().decode("utf-8", "replace")
        finally:
            conn.close()
        for line in response.headers.get_all("Set-Cookie") or []:
            self.set_cookie_lines.append(line)
            jar: SimpleCookie = SimpleCookie()
            jar.load(line)
            for name, morsel in jar.items():
                if morsel["max-age"] == "0" or (morsel["expires"] and "1970" in morsel["expires"]):
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = morsel.value
        return Reply(response.status, response.headers, text)

    def get(self, path: str, **kw: Any) -> Reply:
        return self.request("GET", path, **kw)

    def post(self, path: str, form: dict[str, str] | None = None, **kw: Any) -> Reply:
        return self.request("POST", path, form, **kw)

    def token(self, path: str = "/") -> str:
        """The CSRF token of a form on ``path`` (the login page's when logged out)."""
        page = self.get(path)
        found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert found, (path, page.status, page.text[:500])
        return found.group(1)

    def login(self, password: str = PASSWORD) -> Reply:
        token = self.token("/login")
        return self.post("/login", {"csrf_token": token, "password": password, "next": "/"})

    def submit(self, path: str, form: dict[str, str], page: str = "/", **kw: Any) -> Reply:
        """POST ``form`` to ``path`` as the page at ``page`` would, with its token."""
        return self.post(path, {"csrf_token": self.token(page), **form}, **kw)


@dataclass
class Site:
    base: str
    config: config_module.Config
    folder: Path
    throttle: LoginThrottle
    clock: Callable[[], dt.datetime]

    def browser(self, remote: str | None = HOME) -> Browser:
        return Browser(self.base, remote)

    def store(self) -> Store:
        c = self.config
        return Store(
            c.storage.dir,
            region=c.screening.region,
            runtime_dir=c.storage.runtime_dir,
            clock=self.clock,
        )


class Running:
    """A waitress server in a thread, stopped and joined by :meth:`stop`."""

    def __init__(self, server: Any) -> None:
        self.server = server
        self.thread = threading.Thread(target=server.run, name="waitress", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        from waitress import wasyncore

        self.server.task_dispatcher.shutdown()
        wasyncore.close_all(self.server._map)
        self.thread.join(10)
        assert not self.thread.is_alive(), "the server did not stop"


# -- the page started with a config file (as ``callguard --config FILE web`` starts it) --------

SHIPPED = Path(__file__).resolve().parents[2] / "config" / "callguard.toml"


def write_config(tmp_path: Path, **alerts: object) -> Path:
    """The shipped config file, pointed at a folder of the test's own, with ``alerts`` (keys of
    its [alerts] section) set."""
    text = SHIPPED.read_text(encoding="utf-8")
    text = re.sub(r'(?m)^dir = ".*"', f'dir = "{tmp_path / "state"}"', text)
    text = re.sub(r'(?m)^runtime_dir = ".*"', f'runtime_dir = "{tmp_path / "run"}"', text)
    text = re.sub(r'(?m)^host = ".*"', 'host = "127.0.0.1"', text)
    for key, value in alerts.items():
        text, _ = config_module.set_value(text, "alerts", key, value)
    path = tmp_path / "etc" / "callguard.toml"
    path.parent.mkdir()
    path.write_text(text, encoding="utf-8")
    config_module.load(str(path))  # the test's file is a good one
    return path


@contextlib.contextmanager
def served(cfg: Path) -> Iterator[Browser]:
    """The page started with the config file ``cfg``, its password set, and a browser logged
    in; stopped afterwards."""
    config = config_module.load(str(cfg))
    PasswordFile(config.storage.dir).set(PASSWORD)
    server = make_server(config, port=0, wrap=remote_seam, failure_delay_s=0.0)
    running = Running(server)
    try:
        browser = Browser(f"http://127.0.0.1:{server.effective_port}")
        assert browser.login().status == 302
        yield browser
    finally:
        running.stop()


def form_values(page: str) -> dict[str, str]:
    """What the settings form would send as it stands."""
    form = re.search(r'<form [^>]*data-action="settings"[^>]*>(.*?)</form>', page, re.S)
    assert form, page
    body = form[1]
    values = {
        k: html.unescape(v)
        for k, v in re.findall(
            r'<input type="(?:hidden|text|number)" [^>]*?name="([^"]+)" value="([^"]*)"', body
        )
    }
    for name, text in re.findall(
        r'<textarea [^>]*name="([^"]+)"[^>]*>(.*?)</textarea>', body, re.S
    ):
        values[name] = html.unescape(text)
    (values["screening_mode"],) = re.findall(
        r'name="screening_mode" value="([^"]+)" [^>]*checked', body
    )
    for name in re.findall(
        r'<input type="checkbox" [^>]*name="([^"]+)" value="on"[^>]*checked', body
    ):
        values[name] = "on"
    return values


def save(browser: Browser, **changes: str | None) -> tuple[str, int, str]:
    """Send the settings form as it stands with ``changes`` (None: unticked, left out); the
    reply's text, status and location."""
    values = form_values(browser.get("/settings").text)
    for key, value in changes.items():
        if value is None:
            values.pop(key, None)
        else:
            values[key] = value
    reply = browser.post("/settings", values)
    return reply.text, reply.status, reply.location


def text_of(page: str) -> str:
    """A page's words, as read: tags dropped, entities undone, white space folded."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


NOW = dt.datetime(2026, 3, 2, 10, 30, tzinfo=dt.timezone(dt.timedelta(0)))


def start_site(
    tmp_path: Path,
    *,
    password: str | None = PASSWORD,
    web: dict[str, Any] | None = None,
    **app_options: Any,
) -> tuple[Site, Running]:
    folder = tmp_path / "state"
    data: dict[str, Any] = {
        "storage": {"dir": str(folder), "runtime_dir": str(tmp_path / "run")},
        "web": {"host": "127.0.0.1", **(web or {})},
    }
    config = config_module.from_dict(data, "test")
    if password is not None:
        PasswordFile(folder).set(password)
    throttle = app_options.pop("throttle", None) or LoginThrottle()
    clock = app_options.pop("clock", None) or (lambda: NOW)
    server = make_server(
        config,
        port=0,
        wrap=remote_seam,
        throttle=throttle,
        failure_delay_s=app_options.pop("failure_delay_s", 0.0),
        clock=clock,
        **app_options,
    )
    port = server.effective_port
    site = Site(f"http://127.0.0.1:{port}", config, folder, throttle, clock)
    return site, Running(server)


def call(
    number: str | None,
    started: str = "2026-03-02T09:30:00+00:00",
    **fields: Any,
) -> dict[str, Any]:
    """A call record as the daemon logs it (``log --json``'s fields)."""
    from callguard.core.numbers import for_people

    record: dict[str, Any] = {
        "call_id": fields.pop("call_id", f"c-{number}-{started}"),
        "started": started,
        "ended": None,
        "number": number,
        "display": for_people(number) if number else None,
        "category": "landline" if number else "withheld",
        "name": None,
        "verdict": "warned",
        "rule": "mode:guarded",
        "reason": "Warned: not on any list (a landline).",
        "answered": True,
        "duration_s": 95.0,
        "rings": 2,
        "caller_id": True,
        "impersonation": False,
        "grooming_alert": False,
        "name_claim": None,
        "notes": [],
        "end_seen": True,
    }
    record.update(fields)
    return record
