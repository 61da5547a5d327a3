"""The family page's defences, over real HTTP against waitress on 127.0.0.1: no page and no data
without a login, no default password, no change without the form's token from the page's own
origin, wrong passwords slowed and then refused, only the home network answered, and the
security headers on every answer."""

from __future__ import annotations

import logging
import re
import time
from pathlib import Path

import pytest
from webclient import HOME, NOW, PASSWORD, Browser, Site, call, start_site

from callguard.core.lists import target_for
from callguard.web.app import create_app
from callguard.web.guard import LoginThrottle, client_key, origin_of, same_origin
from callguard.web.passwords import PasswordFile

PAGES = ["/", "/lists", "/calls", "/calls?q=0170&page=2", "/no/such/page"]


def endpoints(site: Site) -> list[tuple[str, str]]:
    """Every (method, path) the app has, from its own URL map (new pages are covered as they
    are added), with a list name where a route takes one."""
    app = create_app(site.config)
    found = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint in ("static", "login"):
            continue
        path = rule.rule.replace("<list_name>", "allow")
        assert "<" not in path, f"a test value is needed for {rule.rule}"
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            found.append((method, path))
    return found


# -- no password, no page -----------------------------------------------------------------


def test_with_no_password_every_page_says_how_to_set_one_and_nothing_else(
    tmp_path: Path,
) -> None:
    site, running = start_site(tmp_path, password=None)
    try:
        site.store().raise_alert(call("+441707354000"))
        browser = site.browser()
        for path in [*PAGES, "/login"]:
            reply = browser.get(path)
            assert reply.status == 503, path
            assert "sudo callguard web password" in reply.text
            assert "01707" not in reply.text and 'type="password"' not in reply.text
            assert "<form" not in reply.text
        for method, path in [("POST", "/login"), *endpoints(site)]:
            reply = browser.request(method, path, {"password": "", "number": "01707 354000"})
            assert reply.status == 503, (method, path)
        assert site.store().alert_active()
        assert site.store().entries("allow") == []
        assert browser.get("/static/style.css").status == 200  # the page's look, no data
    finally:
        running.stop()


def test_a_password_set_while_the_page_runs_takes_effect_at_once(tmp_path: Path) -> None:
    site, running = start_site(tmp_path, password=None)
    try:
        browser = site.browser()
        assert browser.get("/login").status == 503
        PasswordFile(site.folder).set(PASSWORD)
        assert browser.get("/login").status == 200
        assert browser.login().status == 302
        assert browser.get("/").status == 200
    finally:
        running.stop()


# -- no session, no page ------------------------------------------------------------------


def test_every_page_and_endpoint_without_a_session_goes_to_the_login(site: Site) -> None:
    site.store().raise_alert(call("+441707354000"))
    browser = site.browser()
    for path in PAGES:
        reply = browser.get(path)
        assert reply.status == 302, path
        assert reply.location.startswith("/login?next="), reply.location
        assert "01707" not in reply.text
    for method, path in endpoints(site):
        token = browser.token("/login")  # even with a token from the login page
        reply = browser.request(
            method, path, {"csrf_token": token, "number": "01707 354000", "name": "X"}
        )
        if method == "GET":
            assert reply.status == 302 and reply.location.startswith("/login"), (method, path)
        else:
            assert reply.status == 401, (method, path)
            assert "01707" not in reply.text
    assert site.store().alert_active()
    assert site.store().entries("allow") == []


def test_the_login_sends_you_back_to_the_page_you_asked_for_and_nowhere_else(
    site: Site,
) -> None:
    browser = site.browser()
    assert browser.get("/calls?q=0170").location == "/login?next=/calls?q%3D0170"
    token = browser.token("/login")
    reply = browser.post(
        "/login", {"csrf_token": token, "password": PASSWORD, "next": "/calls?q=0170"}
    )
    assert (reply.status, reply.location) == (302, "/calls?q=0170")
    for elsewhere in ["//evil.example/", "https://evil.example/", "/\\evil.example", "calls"]:
        other = site.browser()
        token = other.token("/login")
        reply = other.post("/login", {"csrf_token": token, "password": PASSWORD, "next": elsewhere})
        assert (reply.status, reply.location) == (302, "/"), elsewhere


def test_the_login_form_is_the_only_form_with_a_password_field(site: Site, family: Browser) -> None:
    page = site.browser().get("/login").text
    assert len(re.findall(r"<form\b", page)) == 1
    assert len(re.findall(r'<input[^>]*type="password"', page)) == 1
    assert re.search(r'<label for="password">', page)
    for path in ["/", "/lists", "/calls"]:
        assert 'type="password"' not in family.get(path).text, path


def test_the_session_cookie_is_httponly_samesite_strict_and_signed(site: Site) -> None:
    browser = site.browser()
    assert browser.login().status == 302
    line = browser.set_cookie_lines[-1]
    attributes = {a.strip().split("=")[0].lower(): a for a in line.split(";")}
    assert line.startswith("callguard_session=")
    assert "httponly" in attributes
    assert attributes["samesite"].strip().lower() == "samesite=strict"
    assert browser.get("/").status == 200

    forged = site.browser()
    forged.cookies = {"callguard_session": browser.cookies["callguard_session"][:-3] + "AAA"}
    assert forged.get("/").status == 302
    stolen_format = site.browser()
    stolen_format.cookies = {"callguard_session": '{"pw": "x"}'}
    assert stolen_format.get("/").status == 302


def test_a_wrong_password_gives_no_session(site: Site) -> None:
    browser = site.browser()
    reply = browser.login("not the password")
    assert reply.status == 401
    assert "That is not the password" in reply.text
    assert browser.get("/").status == 302


def test_a_new_password_ends_every_session(site: Site, family: Browser) -> None:
    assert family.get("/").status == 200
    PasswordFile(site.folder).set("another good password")
    assert family.get("/").status == 302
    assert family.login(PASSWORD).status == 401
    assert family.login("another good password").status == 302


def test_logging_out_ends_the_session(site: Site, family: Browser) -> None:
    kept = dict(family.cookies)
    reply = family.submit("/logout", {})
    assert reply.status == 302 and reply.location == "/login"
    assert family.get("/").status == 302
    # A copy of the old cookie still works until it expires: sessions are signed cookies, and
    # a new password is what ends them all (the test above).
    assert kept


# -- cross-site requests change nothing ---------------------------------------------------


def test_a_cross_site_post_without_the_token_or_from_elsewhere_changes_nothing(
    site: Site, family: Browser
) -> None:
    form = {"number": "01707 354000", "name": "Surgery"}
    token = family.token("/lists")
    attempts = [
        ({**form}, {}, "own"),  # no token (another site's form cannot know it)
        ({**form, "csrf_token": "guessed"}, {}, "own"),
        ({**form, "csrf_token": token}, {}, "http://evil.example"),
        ({**form, "csrf_token": token}, {}, "null"),
        ({**form, "csrf_token": token}, {}, f"{site.base}.evil.example"),
        ({**form, "csrf_token": token}, {"Referer": "http://evil.example/page"}, None),
        ({**form, "csrf_token": token}, {}, None),  # neither Origin nor Referer
    ]
    for data, headers, origin in attempts:
        reply = family.post("/lists/allow/add", data, headers=headers, origin=origin)
        assert reply.status == 403, (data, headers, origin)
        assert "Nothing was changed" in reply.text
    assert site.store().entries("allow") == []

    other = site.browser()
    other.login()
    reply = family.post("/lists/allow/add", {**form, "csrf_token": other.token("/lists")})
    assert reply.status == 403  # another session's token

    reply = family.post(
        "/lists/allow/add",
        {**form, "csrf_token": token},
        headers={"Referer": f"{site.base}/lists"},
        origin=None,
    )
    assert reply.status == 302  # a browser that sends only the Referer, from the page itself
    assert [e.name for e in site.store().entries("allow")] == ["Surgery"]


def test_a_cross_site_post_cannot_clear_the_alert_or_log_in(site: Site, family: Browser) -> None:
    site.store().raise_alert(call("+441707354000"))
    token = family.token("/")
    assert family.post("/ack", {"csrf_token": token}, origin="http://evil.example").status == 403
    assert family.post("/ack", {}).status == 403
    assert site.store().alert_active()

    stranger = site.browser()
    login_token = stranger.token("/login")
    reply = stranger.post(
        "/login",
        {"csrf_token": login_token, "password": PASSWORD},
        origin="http://evil.example",
    )
    assert reply.status == 403
    assert stranger.get("/").status == 302
    reply = stranger.post("/login", {"password": PASSWORD})  # no token
    assert reply.status == 403


@pytest.mark.parametrize(
    ("own", "origin", "referer", "ok"),
    [
        ("http://192.168.1.5/", "http://192.168.1.5", None, True),
        ("http://192.168.1.5/", "http://192.168.1.5:80", None, True),
        ("http://callguard.local:8080/", "http://CallGuard.local:8080", None, True),
        ("http://[fe80::1]:8080/", "http://[fe80::1]:8080", None, True),
        ("http://192.168.1.5/", "http://192.168.1.5:8080", None, False),
        ("http://192.168.1.5/", "https://192.168.1.5", None, False),
        ("http://192.168.1.5/", "null", "http://192.168.1.5/lists", False),
        ("http://192.168.1.5/", None, "http://192.168.1.5/lists", True),
        ("http://192.168.1.5/", None, "http://192.168.1.50/lists", False),
        ("http://192.168.1.5/", None, None, False),
        ("http://192.168.1.5/", "http://192.168.1.5@evil.example", None, False),
    ],
)
def test_same_origin(own: str, origin: str | None, referer: str | None, ok: bool) -> None:
    assert same_origin(own, origin, referer) is ok
    assert origin_of("not a url") is None


# -- wrong passwords ----------------------------------------------------------------------


def test_twenty_wrong_passwords_refuse_that_client_for_a_while(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    now = [1000.0]
    throttle = LoginThrottle(clock=lambda: now[0])
    site, running = start_site(tmp_path, throttle=throttle)
    try:
        guesser = site.browser("192.168.1.66")
        statuses = []
        with caplog.at_level(logging.WARNING, logger="callguard.web"):
            for n in range(20):
                statuses.append(guesser.login(f"guess number {n}").status)
        assert statuses[:9] == [401] * 9
        assert statuses[9:] == [429] * 11
        refused = guesser.login(PASSWORD)  # the right one, too, while refused
        assert refused.status == 429
        assert int(refused.header("Retry-After") or 0) > 60
        assert "Too many wrong passwords" in refused.text
        assert guesser.get("/").status == 302
        messages = [r.getMessage() for r in caplog.records]
        wrong = [m for m in messages if m.startswith("wrong password on the family page from")]
        assert len(wrong) == 10 and all("192.168.1.66" in m for m in wrong)
        assert any("refused a login from 192.168.1.66" in m for m in messages)

        assert site.browser("192.168.1.20").login().status == 302  # the family is not locked out

        now[0] += 15 * 60 + 1
        assert guesser.login(PASSWORD).status == 302
    finally:
        running.stop()


def test_a_wrong_password_is_slowed_and_a_right_one_is_not(tmp_path: Path) -> None:
    site, running = start_site(tmp_path, failure_delay_s=0.5)
    try:
        browser = site.browser()
        token = browser.token("/login")
        started = time.monotonic()
        assert browser.post("/login", {"csrf_token": token, "password": "nope nope"}).status == 401
        assert time.monotonic() - started >= 0.5
        token = browser.token("/login")
        started = time.monotonic()
        assert browser.post("/login", {"csrf_token": token, "password": PASSWORD}).status == 302
        assert time.monotonic() - started < 0.5
    finally:
        running.stop()


def test_wrong_passwords_are_counted_per_ipv4_address_and_per_ipv6_network() -> None:
    import ipaddress

    assert client_key(ipaddress.ip_address("192.168.1.66")) == "192.168.1.66"
    one = client_key(ipaddress.ip_address("fd00:1:2:3::aaaa"))
    two = client_key(ipaddress.ip_address("fd00:1:2:3:ffff::1"))
    assert one == two == "fd00:1:2:3::/64"  # a client can take any address in its /64
    throttle = LoginThrottle(max_failures=3, window_s=60, lockout_s=300, clock=lambda: 0.0)
    for _ in range(3):
        throttle.failed(one)
    assert throttle.refused_for_s(two) == 300
    assert throttle.refused_for_s("192.168.1.20") == 0


def test_failures_older_than_the_window_are_forgotten() -> None:
    now = [0.0]
    throttle = LoginThrottle(max_failures=3, window_s=60, lockout_s=300, clock=lambda: now[0])
    throttle.failed("a")
    throttle.failed("a")
    now[0] = 61.0
    assert throttle.failed("a") == 1
    assert throttle.refused_for_s("a") == 0
    throttle.failed("a")
    throttle.succeeded("a")
    assert throttle.failed("a") == 1


# -- only the home network ----------------------------------------------------------------


@pytest.mark.parametrize(
    "remote",
    ["8.8.8.8", "81.2.69.160", "100.64.0.1", "2001:db8::1", "2a00:1450:4009:81f::200e"],
)
def test_a_request_from_outside_the_home_network_is_refused(
    site: Site, family: Browser, remote: str
) -> None:
    outsider = site.browser(remote)
    outsider.cookies = dict(family.cookies)  # even with a family member's cookie
    for path in [*PAGES, "/login", "/static/style.css"]:
        reply = outsider.get(path)
        assert reply.status == 403, path
        assert "home network" in reply.text
        assert reply.header("X-Frame-Options") == "DENY"
    token = family.token("/lists")
    reply = outsider.post("/lists/allow/add", {"csrf_token": token, "number": "01707 354000"})
    assert reply.status == 403
    assert site.store().entries("allow") == []


@pytest.mark.parametrize(
    "remote",
    [
        "127.0.0.1",
        "::1",
        "10.1.2.3",
        "172.20.0.9",
        "192.168.1.20",
        "::ffff:192.168.1.20",
        "fe80::1",
        "169.254.10.1",
        "fd12:3456::7",
    ],
)
def test_loopback_private_and_link_local_clients_are_answered(site: Site, remote: str) -> None:
    assert site.browser(remote).get("/login").status == 200


def test_the_networks_answered_are_configurable(tmp_path: Path) -> None:
    site, running = start_site(tmp_path, web={"allow_networks": ["192.168.1.0/24"]})
    try:
        assert site.browser("192.168.1.20").get("/login").status == 200
        assert site.browser("192.168.2.20").get("/login").status == 403
        assert site.browser("127.0.0.1").get("/login").status == 403
    finally:
        running.stop()


def test_refusals_are_logged_once_an_hour_per_address(
    site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="callguard.web"):
        for _ in range(5):
            site.browser("8.8.8.8").get("/")
    refusals = [r for r in caplog.records if "refused a request from 8.8.8.8" in r.getMessage()]
    assert len(refusals) == 1


# -- headers ------------------------------------------------------------------------------


def test_every_answer_carries_the_security_headers(site: Site, family: Browser) -> None:
    replies = {
        "login": site.browser().get("/login"),
        "redirect": site.browser().get("/"),
        "today": family.get("/"),
        "lists": family.get("/lists"),
        "not found": family.get("/no/such/page"),
        "style": family.get("/static/style.css"),
        "forbidden": site.browser("8.8.8.8").get("/"),
        "csrf": family.post("/ack", {}),
    }
    for what, reply in replies.items():
        csp = reply.header("Content-Security-Policy") or ""
        assert "default-src 'self'" in csp, what
        assert "frame-ancestors 'none'" in csp and "script-src 'none'" in csp, what
        assert "unsafe-inline" not in csp, what
        assert reply.header("X-Frame-Options") == "DENY", what
        assert reply.header("X-Content-Type-Options") == "nosniff", what
        assert reply.header("Referrer-Policy") == "same-origin", what
    assert replies["today"].header("Cache-Control") == "no-store"
    assert replies["not found"].status == 404


def test_no_page_has_a_script_or_inline_style(site: Site, family: Browser) -> None:
    site.store().raise_alert(call("+441707354000"))
    site.store().append_call(call("+441707354000"))
    pages = [site.browser().get("/login").text]
    pages += [family.get(p).text for p in ["/", "/lists", "/calls", "/nope"]]
    for text in pages:
        assert "<script" not in text.lower()
        assert " style=" not in text and "<style" not in text
        assert " on" not in re.sub(r"\s+on\s", " ", "".join(re.findall(r"<[^>]+>", text)))
        # nothing from elsewhere: no CDN, no link out (a shipped number's note may name a URL)
        assert not re.search(r'(?:src|href|action)="(?:[a-z]+:)?//', text)


def test_the_page_is_for_the_time_given(site: Site) -> None:
    assert site.clock() == NOW and HOME.startswith("192.168.")
    assert target_for("01707 354000", "GB").number == "+441707354000"
