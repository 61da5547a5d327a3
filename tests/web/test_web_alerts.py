"""Carer alerts on the family page, over HTTP: the events the carers hear about (Settings), the
channels shown without their secrets, a name given when clearing the grooming alert, and the
Alerts page listing the outbox that ``callguard link`` keeps."""

from __future__ import annotations

import datetime as dt
import html
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from webclient import (
    NOW,
    Browser,
    Site,
    call,
    form_values,
    save,
    served,
    text_of,
    write_config,
)

from callguard import config as config_module
from callguard.store.outbox import OUTBOX_FILE, Alert, Outbox
from callguard.web import pages

STRANGER = "+441632960001"

SECRETS = ("S3cret-app-passw0rd", "AAE-botTOKEN-xyz", "987654321", "mum-secret-topic", "0e4b7c")
URLS = [
    "mailto://mum.carer:S3cret-app-passw0rd@gmail.com",
    "tgram://123456789:AAE-botTOKEN-xyz/987654321",
    "ntfy://ntfy.sh/mum-secret-topic",
]
HEARTBEAT = "https://hc-ping.com/0e4b7c-9d1f"


# -- a page started with a config file (webclient.served; the cfg fixture is conftest's) -----


@pytest.fixture
def configured(cfg: Path) -> Iterator[Browser]:
    with served(cfg) as browser:
        yield browser


@pytest.fixture
def with_channels(tmp_path: Path) -> Iterator[tuple[Path, Browser]]:
    path = write_config(tmp_path, urls=URLS, heartbeat_url=HEARTBEAT)
    with served(path) as browser:
        yield path, browser


def message_for(key: str, value: object) -> str:
    """``config check``'s message for ``alerts.key = value``."""
    try:
        config_module.from_dict({"alerts": {key: value}})
    except config_module.ConfigError as exc:
        (problem,) = exc.problems
        return problem
    raise AssertionError(f"alerts.{key} = {value!r} is a good value")


# -- Settings: the events ---------------------------------------------------------------------


def test_the_alert_events_are_shown_and_saved_keeping_the_comments(
    cfg: Path, configured: Browser
) -> None:
    page = configured.get("/settings").text
    values = form_values(page)
    assert values["alerts_grooming"] == "on" and values["alerts_impersonation"] == "on"
    assert values["alerts_repeated_calls"] == "3"
    assert values["alerts_unit_problem_minutes"] == "10"
    assert values["alerts_weekly_summary"] == "Sun 18:00"
    assert "Carer alerts" in text_of(page)

    before = cfg.read_text(encoding="utf-8")
    text, status, location = save(
        configured,
        alerts_grooming=None,  # unticked
        alerts_repeated_calls="5",
        alerts_unit_problem_minutes="2.5",
        alerts_weekly_summary="",
    )
    assert status == 302 and location.endswith("/settings"), text
    after = cfg.read_text(encoding="utf-8")
    changed = [
        (o, n) for o, n in zip(before.splitlines(), after.splitlines(), strict=True) if o != n
    ]
    assert [(o.split()[0], n.split("#")[0].strip()) for o, n in changed] == [
        ("grooming", "grooming = false"),
        ("repeated_calls", "repeated_calls = 5"),
        ("unit_problem_minutes", "unit_problem_minutes = 2.5"),
        ("weekly_summary", 'weekly_summary = ""'),
    ]
    assert all("#" in n for _, n in changed), "each line keeps its comment"
    alerts = config_module.load(str(cfg)).alerts
    assert (alerts.grooming, alerts.impersonation) == (False, True)
    assert (alerts.repeated_calls, alerts.unit_problem_minutes) == (5, 2.5)
    assert alerts.weekly_summary == ""
    values = form_values(configured.get("/settings").text)
    assert "alerts_grooming" not in values and values["alerts_unit_problem_minutes"] == "2.5"

    # as it stands, nothing changes
    stamp = cfg.stat().st_mtime_ns
    _, status, _ = save(configured)
    assert status == 302 and cfg.stat().st_mtime_ns == stamp

    # 0 is "never"; ticking it on again
    _, status, _ = save(
        configured,
        alerts_grooming="on",
        alerts_impersonation=None,
        alerts_repeated_calls="0",
        alerts_unit_problem_minutes="0",
        alerts_weekly_summary="Fri 09:30",
    )
    assert status == 302
    alerts = config_module.load(str(cfg)).alerts
    assert (alerts.grooming, alerts.impersonation) == (True, False)
    assert (alerts.repeated_calls, alerts.unit_problem_minutes) == (0, 0.0)
    assert alerts.weekly_summary == "Fri 09:30"


def test_bad_alert_settings_get_config_checks_messages_and_nothing_is_written(
    cfg: Path, configured: Browser
) -> None:
    before = cfg.read_bytes()
    text, status, _ = save(
        configured,
        alerts_grooming=None,  # a good change, not written either
        alerts_repeated_calls="51",
        alerts_unit_problem_minutes="ten",
        alerts_weekly_summary="Someday 25:00",
    )
    assert status == 400
    assert cfg.read_bytes() == before
    for field_id, key, value in (
        ("alerts-repeated-calls", "repeated_calls", 51),
        ("alerts-unit-problem", "unit_problem_minutes", "ten"),
        ("alerts-weekly", "weekly_summary", "Someday 25:00"),
    ):
        error = re.search(rf'id="{field_id}-error">(.*?)</p>', text, re.S)
        assert error, (field_id, text)
        assert html.unescape(error[1]) == message_for(key, value)
        assert f'aria-describedby="{field_id}-hint {field_id}-error"' in text
    values = form_values(text)
    assert values["alerts_repeated_calls"] == "51", "what was typed is kept"
    assert values["alerts_unit_problem_minutes"] == "ten"
    assert values["alerts_weekly_summary"] == "Someday 25:00"
    assert "alerts_grooming" not in values

    for bad in ("2.5", "-1", "", "nan", "1e999"):
        text, status, _ = save(configured, alerts_repeated_calls=bad)
        assert status == 400, bad
        assert 'id="alerts-repeated-calls-error"' in text, bad
    text, status, _ = save(configured, alerts_unit_problem_minutes="1441")
    assert status == 400 and 'id="alerts-unit-problem-error"' in text
    assert cfg.read_bytes() == before


# -- the channels, never whole ----------------------------------------------------------------


def test_channels_and_the_heartbeat_are_shown_without_their_secrets(
    with_channels: tuple[Path, Browser],
) -> None:
    cfg, browser = with_channels
    for path in ("/settings", "/alerts"):
        page = browser.get(path).text
        for secret in SECRETS:
            assert secret not in page, (path, secret)
        assert "mum.carer" not in page
        words = text_of(page)
        assert "mailto://…@gmail.com" in words
        assert "tgram://…" in words
        assert "ntfy://ntfy.sh/…" in words
    page = browser.get("/settings").text
    assert len(re.findall(r"<li data-channel>", page)) == 3
    assert "hc-ping.com" in text_of(page)
    words = text_of(page)
    assert f"sudo nano {cfg}" in words and "sudo callguard alerts test" in words
    assert 'name="alerts_urls"' not in page and 'name="alerts_heartbeat_url"' not in page

    # saving the page leaves the channels as they are
    _, status, _ = save(browser, alerts_impersonation=None)
    assert status == 302
    alerts = config_module.load(str(cfg)).alerts
    assert list(alerts.urls) == URLS and alerts.heartbeat_url == HEARTBEAT
    assert alerts.impersonation is False


def test_no_channels_says_so_and_how_to_set_them_up(cfg: Path, configured: Browser) -> None:
    words = text_of(configured.get("/settings").text)
    assert "No channels are set up" in words and "No heartbeat check is set up" in words
    assert f"sudo nano {cfg}" in words


@pytest.mark.parametrize(
    ("url", "label"),
    [
        ("mailto://user:app-password@gmail.com", "mailto://…@gmail.com"),
        ("MAILTO://a:b@Gmail.COM?to=mum@example.org", "mailto://…@gmail.com/…"),
        ("ntfy://ntfy.sh/mum-callguard-7f3k", "ntfy://ntfy.sh/…"),
        ("ntfys://user:pass@ntfy.example.org/topic", "ntfys://…@ntfy.example.org/…"),
        ("tgram://123456789:ABCdefGHI/4567", "tgram://…"),
        ("discord://4174216298/JHMHI8qBe7bk2ZwO5U711o3dV_js", "discord://…"),
        ("slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ", "slack://…"),
        ("pover://ukey@apptoken", "pover://…"),
        ("mailto://user:pa/ss@gmail.com", "mailto://…"),
        ("mailto://user:pa?ss@gmail.com", "mailto://…"),
        ("json://127.0.0.1:8999/", "json://127.0.0.1:8999"),
        ("xml://[::1]:80/hook", "xml://[::1]:80/…"),
        ("json://localhost", "json://localhost"),
        ("not a url", "(an address CallGuard cannot read)"),
    ],
)
def test_channel_label(url: str, label: str) -> None:
    assert pages.channel_label(url) == label


def test_host_of() -> None:
    assert pages.host_of("https://hc-ping.com/0e4b7c-9d1f") == "hc-ping.com"
    assert pages.host_of("https://me:pw@hc.example.org:8000/ping/x") == "hc.example.org:8000"
    assert pages.host_of("") == ""


# -- clearing the alert with a name ---------------------------------------------------------


def test_a_name_given_when_clearing_is_recorded_and_remembered(site: Site, family: Browser) -> None:
    store = site.store()
    store.raise_alert(call(STRANGER, duration_s=1500.0, grooming_alert=True))
    page = family.get("/").text
    form = re.search(r'<form [^>]*action="/ack"[^>]*>(.*?)</form>', page, re.S)
    assert form, page
    assert re.search(r'<input type="text" id="ack-by" name="by" value="" maxlength="40"', form[1])
    assert len(re.findall(r'<button[^>]*data-action="ack"', form[1])) == 1
    assert "Your name, so the other carers know" in text_of(form[1])

    reply = family.submit("/ack", {"by": "  Sarah   Jones "})
    assert reply.status == 302 and reply.location == "/"
    alert = store.read_alert()
    assert alert is not None and alert["active"] is False
    assert alert["acknowledged_by"] == "Sarah Jones"

    store.raise_alert(call(STRANGER, "2026-03-02T10:00:00+00:00", duration_s=1500.0))
    page = family.get("/").text
    assert 'name="by" value="Sarah Jones"' in page, "the last name is filled in"
    assert family.submit("/ack", {"by": "Sarah Jones"}).status == 302
    alert = store.read_alert()
    assert alert is not None and alert["acknowledged_by"] == "Sarah Jones"

    # another phone has no name remembered: the default
    other = site.browser()
    other.login()
    store.raise_alert(call(STRANGER, "2026-03-02T10:20:00+00:00", duration_s=1500.0))
    assert 'name="by" value=""' in other.get("/").text
    assert other.submit("/ack", {"by": ""}).status == 302
    alert = store.read_alert()
    assert alert is not None and alert["acknowledged_by"] == "family page (192.168.1.20)"


@pytest.mark.parametrize(
    ("typed", "words"),
    [
        ("S" * 41, "That name is 41 characters long; use at most 40"),
        ("Sarah\x1b[2J", "has a character that cannot be shown"),
        ("Sarah\nJones", "has a character that cannot be shown"),
        ("Sa\u202erah", "has a character that cannot be shown"),
    ],
)
def test_a_bad_name_is_refused_and_the_alert_stays_on(
    site: Site, family: Browser, typed: str, words: str
) -> None:
    store = site.store()
    store.raise_alert(call(STRANGER, duration_s=1500.0, grooming_alert=True))
    reply = family.submit("/ack", {"by": typed})
    assert reply.status == 400
    error = re.search(r'id="ack-by-error">(.*?)</p>', reply.text, re.S)
    assert error and words in html.unescape(error[1]), reply.text
    assert "The alert was not cleared." in html.unescape(error[1])
    assert "\x1b" not in reply.text and "\u202e" not in reply.text
    alert = store.read_alert()
    assert alert is not None and alert["active"] is True
    assert 'data-action="ack"' in reply.text, "the form is there to try again"
    assert 'aria-invalid="true"' in reply.text


def test_an_ack_from_another_site_changes_nothing(site: Site, family: Browser) -> None:
    store = site.store()
    store.raise_alert(call(STRANGER, duration_s=1500.0, grooming_alert=True))
    token = family.token("/")
    reply = family.post("/ack", {"csrf_token": token, "by": "Eve"}, origin="https://evil.example")
    assert reply.status == 403
    alert = store.read_alert()
    assert alert is not None and alert["active"] is True


# -- the Alerts page -------------------------------------------------------------------------


class Clock:
    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


def queue(
    outbox: Outbox, key: str, title: str, body: str, channels: list[tuple[str, str]], hours: int
) -> Alert:
    """An alert of the kind its key names (``kind:n``), expiring after ``hours``."""
    kind = key.split(":")[0]
    expires_after = dt.timedelta(hours=hours)
    alert = outbox.add(key, kind, title, body, channels=channels, expires_after=expires_after)
    assert alert is not None
    return alert


def fill_outbox(folder: Path) -> None:
    """Four alerts as ``callguard link`` leaves them: delivered, still trying, given up, and
    one raised with no channel set up."""
    clock = Clock(NOW - dt.timedelta(hours=3))
    outbox = Outbox(folder, clock=clock)
    mail = ("c-mail", "mailto://…@gmail.com")
    ntfy = ("c-ntfy", "ntfy://ntfy.sh/…")
    try:
        first = queue(
            outbox,
            "grooming:1",
            "The grooming light came on",
            "A caller kept Mum on the phone for 25 minutes.",
            [mail, ntfy],
            hours=1,
        )
        outbox.delivered(first.id, "c-mail")
        outbox.failed(first.id, "c-ntfy", "connection refused", NOW)
        outbox.failed(first.id, "c-ntfy", "connection refused", NOW)
        clock.now += dt.timedelta(hours=1, minutes=30)
        outbox.expire()  # the first has expired: its ntfy delivery is given up

        clock.now = NOW - dt.timedelta(minutes=30)
        second = queue(
            outbox,
            "impersonation:1",
            "A fake bank call was blocked",
            "It showed 0345 600 0000.",
            [mail, ntfy],
            hours=48,
        )
        outbox.delivered(second.id, "c-ntfy")
        outbox.failed(
            second.id,
            "c-mail",
            "login refused by mailto://mum.carer:S3cret-app-passw0rd@gmail.com: check it",
            NOW + dt.timedelta(minutes=5),
        )

        clock.now = NOW - dt.timedelta(minutes=10)
        third = queue(outbox, "cleared:1", "Cleared by Sarah at 10:20", "", [mail], hours=48)
        outbox.delivered(third.id, "c-mail")

        clock.now = NOW - dt.timedelta(minutes=5)
        queue(outbox, "modem-missing:1", "The modem is missing", "", [], hours=48)
    finally:
        outbox.close()


def test_the_alerts_page_lists_the_outbox_newest_first_with_each_channels_state(
    site: Site, family: Browser
) -> None:
    fill_outbox(site.folder)
    page = family.get("/alerts").text
    rows = re.findall(r'<li class="alert-row" data-alert="(\d+)" data-state="([^"]+)">', page)
    assert rows == [("4", "no-channels"), ("3", "delivered"), ("2", "pending"), ("1", "expired")]
    chunks = re.split(r'<li class="alert-row" ', page)[1:]
    words = [text_of(chunk) for chunk in chunks]
    assert "The modem is missing" in words[0] and "no channels were set up" in words[0]
    assert "Cleared by Sarah at 10:20" in words[1] and "Delivered" in words[1]
    assert "A fake bank call was blocked" in words[2] and "Still trying" in words[2]
    assert "It showed 0345 600 0000." in words[2]
    assert "ntfy://ntfy.sh/…: Delivered" in words[2]
    assert re.search(
        r"mailto://…@gmail\.com: Still trying \(1 try so far, next try [^)]+\)\. The last error: "
        r"login refused by mailto://…@gmail\.com: check it\.",
        words[2],
    ), words[2]
    assert "The grooming light came on" in words[3] and "Gave up (expired)" in words[3]
    assert "mailto://…@gmail.com: Delivered" in words[3]
    assert re.search(
        r"ntfy://ntfy\.sh/…: Gave up after 2 tries\. The last error: connection refused; not "
        r"delivered before the alert expired\.",
        words[3],
    ), words[3]
    for secret in SECRETS:
        assert secret not in page
    assert "No alerts have been sent yet." not in page
    assert '<a href="/alerts" aria-current="page">Alerts</a>' in page


def test_with_no_outbox_the_page_says_so_and_creates_nothing(site: Site, family: Browser) -> None:
    page = family.get("/alerts")
    assert page.status == 200
    words = text_of(page.text)
    assert "No alerts have been sent yet." in words
    assert "No channels are set up" in words and "sudo callguard alerts test" in words
    assert "[alerts] urls" in words
    assert not list(site.folder.glob(f"{OUTBOX_FILE}*")), "the page never makes the outbox"
    assert '<a href="/alerts">Alerts</a>' in family.get("/").text


def test_a_damaged_outbox_gives_a_friendly_message_and_is_left_alone(
    site: Site, family: Browser
) -> None:
    site.folder.mkdir(exist_ok=True)
    damaged = site.folder / OUTBOX_FILE
    damaged.write_bytes(b"this is not a database, not even close. " * 200)
    reply = family.get("/alerts")
    assert reply.status == 200
    words = text_of(reply.text)
    assert "The list of alerts cannot be read just now" in words
    assert "sudo callguard alerts list" in words
    assert "Traceback" not in reply.text
    assert "No alerts have been sent yet." not in words
    assert damaged.read_bytes() == b"this is not a database, not even close. " * 200
    assert sorted(p.name for p in site.folder.glob(f"{OUTBOX_FILE}*")) == [OUTBOX_FILE]


def test_the_alerts_page_needs_a_login(site: Site) -> None:
    fill_outbox(site.folder)
    stranger = site.browser()
    reply = stranger.get("/alerts")
    assert reply.status == 302 and reply.location.startswith("/login?next=/alerts")
    reply = stranger.get("/login?next=/alerts")
    assert "data-alert=" not in reply.text and "fake bank call" not in reply.text
