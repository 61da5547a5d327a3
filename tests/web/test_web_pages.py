"""The family page's pages, over HTTP: Today (health, the grooming alert and its clear button,
the latest calls), Lists (add and remove with the CLI's checks and messages) and Calls (paged,
searchable, with buttons on unknown callers). Everything is read and written through the store,
and checked there."""

from __future__ import annotations

import datetime as dt
import html
import os
import re
import subprocess
import sys

import pytest
from webclient import NOW, Browser, Site, call

from callguard.core.lists import target_for
from callguard.web import pages

SURGERY = "+441707354000"
STRANGER = "+441632960001"


def rows(text: str) -> list[str]:
    """The text of each ``[data-call]`` row, tags stripped."""
    found = re.findall(r'<li class="call[^"]*" data-call="([^"]*)">(.*?)</li>', text, re.S)
    return [
        f"{number}|" + " ".join(html.unescape(re.sub(r"<[^>]+>", " ", body)).split())
        for number, body in found
    ]


def status(**fields: object) -> dict[str, object]:
    return {
        "daemon": "running",
        "pid": os.getpid(),
        "modem": "connected",
        "modem_detail": {"detail": "USRobotics 5637 on /dev/ttyACM0"},
        "line": "idle",
        "grooming_alert": False,
        "clock_synchronised": True,
        **fields,
    }


# -- Today --------------------------------------------------------------------------------


def test_today_says_in_one_sentence_whether_calls_are_being_screened(
    site: Site, family: Browser
) -> None:
    assert "has not started on this unit yet" in family.get("/").text
    store = site.store()
    store.write_status(status())
    page = family.get("/").text
    assert 'data-health="ok"' in page and "All is well: CallGuard is screening calls." in page
    store.write_status(status(line="in-call", clock_synchronised=False))
    page = family.get("/").text
    assert "The phone is in use now." in page and "clock is not set yet" in page
    store.write_status(status(modem="disconnected", modem_detail={"detail": "no modem found"}))
    page = family.get("/").text
    assert 'data-health="problem"' in page
    assert "cannot reach its modem (no modem found)" in page
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    store.write_status(status(pid=int(dead.stdout)))
    assert "CallGuard is not running, so calls are not being screened" in family.get("/").text
    store.write_status(status(daemon="stopped"))
    assert "CallGuard is not running" in family.get("/").text


def test_today_shows_every_call_that_lit_the_alert_and_clears_it(
    site: Site, family: Browser
) -> None:
    store = site.store()
    first = call(STRANGER, "2026-03-02T08:00:00+00:00", duration_s=1500.0, grooming_alert=True)
    second = call(None, "2026-03-02T10:14:00+00:00", duration_s=None)  # still on the line
    store.raise_alert(second)
    store.raise_alert(first)
    page = family.get("/").text
    assert "The grooming light is on" in page
    alerting = re.search(r'<ul class="alerting">(.*?)</ul>', page, re.S)
    assert alerting is not None
    items = [
        " ".join(html.unescape(re.sub(r"<[^>]+>", " ", li)).split())
        for li in re.findall(r"<li>(.*?)</li>", alerting.group(1), re.S)
    ]
    assert items == [
        "a caller with no number, Today 10:14, on the line 16 min",  # when the alert was raised
        "01632 960001, Today 08:00, on the line 25 min",
    ]
    assert len(re.findall(r'<button[^>]*data-action="ack"', page)) == 1
    assert "I&#39;ve checked, clear it" in page or "I've checked, clear it" in page

    reply = family.submit("/ack", {})
    assert reply.status == 302 and reply.location == "/"
    alert = store.read_alert()
    assert alert is not None and alert["active"] is False
    assert alert["acknowledged_by"] == "family page (192.168.1.20)"
    page = family.get("/").text
    assert "The alert is cleared" in page
    assert 'data-action="ack"' not in page and "The grooming light is off." in page
    family.submit("/ack", {})
    assert "There was no alert to clear." in family.get("/").text


def test_today_lists_the_latest_calls_as_log_shows_them(site: Site, family: Browser) -> None:
    store = site.store()
    assert "No calls yet." in family.get("/").text
    for minute in range(12):
        store.append_call(call(STRANGER, f"2026-03-02T09:{minute:02d}:00+00:00"))
    store.append_call(
        call(
            SURGERY,
            "2026-03-02T10:00:00+00:00",
            name="Surgery",
            verdict="allowed",
            rule="allow",
            reason="Allowed: on the allow list as 'Surgery'.",
            duration_s=25.0,
        )
    )
    store.append_call(
        call(
            "+447700900123",
            "2026-03-01T19:00:00+00:00",
            verdict="blocked",
            rule="block",
            reason="Blocked: on the block list.",
            answered=False,
            duration_s=None,
        )
    )
    store.append_call(call(None, "2026-03-02T10:05:00+00:00", answered=None, duration_s=None))
    found = rows(family.get("/").text)
    assert len(found) == 10  # the newest ten, newest first
    assert (
        found[0]
        == "|withheld Today 10:05 Rang, with a warning. Warned: not on any list (a landline)."
    )
    assert found[1] == (
        f"{SURGERY}|01707 354000 Surgery Today 10:00 · Answered, 25 s "
        "Rang through. Allowed: on the allow list as 'Surgery'."
    )
    assert found[2].startswith(f"{STRANGER}|01632 960001 Today 09:11 · Answered, 1 min 35 s")
    assert all("07700" not in r for r in found)  # the blocked call of yesterday is older


def test_outside_text_is_shown_never_obeyed(site: Site, family: Browser) -> None:
    store = site.store()
    store.append_call(
        call(STRANGER, name="<script>alert(1)</script>\u202eKNAB", reason="Warned: <b>x</b>")
    )
    page = family.get("/").text
    assert "<script>" not in page and "<b>x</b>" not in page
    assert "&lt;script&gt;" in page and "\\u202e" in page and "\u202e" not in page


# -- Lists --------------------------------------------------------------------------------


def test_the_allow_list_form_adds_with_name_and_note_through_the_store(
    site: Site, family: Browser
) -> None:
    page = family.get("/lists").text
    form = re.search(r'<form[^>]*data-action="allow-add"[^>]*>(.*?)</form>', page, re.S)
    assert form is not None
    assert re.search(r'<input[^>]*name="number"', form.group(1))
    assert re.search(r'<input[^>]*name="name"', form.group(1))
    for other in ("block-add", "protect-add"):
        assert f'data-action="{other}"' in page
    for field in ("number", "name", "note"):
        assert f'<label for="allow-{field}">' in page

    reply = family.submit(
        "/lists/allow/add",
        {"number": "01707 354000", "name": "GP surgery", "note": "Dr Patel"},
        page="/lists",
    )
    assert reply.status == 302 and reply.location == "/lists#allow"
    [entry] = site.store().entries("allow")
    assert (entry.number, entry.name, entry.note) == (SURGERY, "GP surgery", "Dr Patel")
    assert entry.added_by == "family page (192.168.1.20)"
    page = family.get("/lists").text
    assert (
        "Added 01707 354000 (Welwyn Garden City) to the allow list as &#39;GP surgery&#39;." in page
    )
    assert f'data-entry="{SURGERY}"' in page and "GP surgery" in page and "Dr Patel" in page


@pytest.mark.parametrize(
    ("list_name", "number", "words"),
    [
        ("allow", "01707 35", "is not a complete UK phone number"),
        ("allow", "call me", "has letters in it"),
        ("allow", "", "has no phone number in it"),
        ("protect", "0345*", "the protect list takes whole numbers"),
        ("allow", "07*", "would let through"),
    ],
)
def test_a_refused_number_is_explained_next_to_its_form_and_kept(
    site: Site, family: Browser, list_name: str, number: str, words: str
) -> None:
    reply = family.submit(
        f"/lists/{list_name}/add", {"number": number, "name": "Kept name"}, page="/lists"
    )
    assert reply.status == 400
    section = reply.text.split(f'<section id="{list_name}"', 1)[1].split("</section>", 1)[0]
    error = re.search(
        r'<p class="notice bad" role="alert" id="[a-z]+-error">(.*?)</p>', section, re.S
    )
    assert error is not None and words in html.unescape(error.group(1))
    assert "callguard " not in html.unescape(error.group(1))  # no command-line advice
    assert 'value="Kept name"' in section
    assert f'aria-describedby="{list_name}-number-hint {list_name}-error"' in section
    assert site.store().entries("allow") == []


def test_a_number_on_another_list_needs_add_it_even_so_and_then_moves(
    site: Site, family: Browser
) -> None:
    site.store().add("block", target_for("01707 354000", "GB"), name="Nuisance")
    reply = family.submit(
        "/lists/allow/add", {"number": "01707 354000", "name": "GP"}, page="/lists"
    )
    assert reply.status == 400
    text = html.unescape(reply.text)
    assert "is on the block list as 'Nuisance'" in text
    assert f"tick '{pages.FORCE_LABEL}' and add it again" in text and "--force" not in text
    assert site.store().find(SURGERY).keys() == {"block"}

    reply = family.submit(
        "/lists/allow/add", {"number": "01707 354000", "name": "GP", "force": "1"}, page="/lists"
    )
    assert reply.status == 302
    assert site.store().find(SURGERY).keys() == {"allow"}
    assert "It was on the block list; it has been taken off." in html.unescape(
        family.get("/lists").text
    )


def test_remove_buttons_take_entries_off_through_the_store(site: Site, family: Browser) -> None:
    store = site.store()
    store.add("block", target_for("01632 960001", "GB"), name="Scam")
    store.add("block", target_for("0870*", "GB"), name="0870 numbers")
    page = family.get("/lists").text
    assert 'data-entry="+44870*"' in page and "0870*" in page
    reply = family.submit("/lists/block/remove", {"number": "+44870*"}, page="/lists")
    assert reply.status == 302
    assert [e.number for e in store.entries("block")] == [STRANGER]
    reply = family.submit("/lists/block/remove", {"number": "+44870*"}, page="/lists")
    assert reply.status == 400 and "is not on the block list" in html.unescape(reply.text)

    shipped = [e for e in store.entries("protect") if e.number == "999"]
    assert shipped  # CallGuard's own protected numbers show, and can be taken off
    assert family.submit("/lists/protect/remove", {"number": "999"}, page="/lists").status == 302
    assert all(e.number != "999" for e in store.entries("protect"))


def test_a_list_page_for_no_such_list_is_not_found(family: Browser) -> None:
    assert (
        family.submit("/lists/friends/add", {"number": "01707 354000"}, page="/lists").status == 404
    )


# -- Calls --------------------------------------------------------------------------------


def test_calls_are_paged_newest_first(site: Site, family: Browser) -> None:
    store = site.store()
    start = dt.datetime(2026, 3, 1, 8, 0, tzinfo=dt.UTC)
    for n in range(60):
        when = (start + dt.timedelta(minutes=n)).isoformat()
        store.append_call(call(f"+4416329600{n:02d}", when))
    first = rows(family.get("/calls").text)
    assert len(first) == 25 and first[0].startswith("+441632960059|")
    page = family.get("/calls?page=3").text
    third = rows(page)
    assert [r.split("|")[0] for r in third] == [f"+4416329600{n:02d}" for n in range(9, -1, -1)]
    assert 'rel="prev"' in page and 'rel="next"' not in page
    assert len(rows(family.get("/calls?page=nonsense").text)) == 25


def test_calls_can_be_found_by_number_or_name(site: Site, family: Browser) -> None:
    store = site.store()
    store.append_call(call(SURGERY, "2026-03-01T09:00:00+00:00", name="Surgery"))
    store.append_call(call(STRANGER, "2026-03-01T10:00:00+00:00", name="HMRC Tax"))
    store.append_call(call(SURGERY, "2026-03-02T09:00:00+00:00"))
    by_number = rows(family.get("/calls?q=01707+354000").text)
    assert [r.split("|")[0] for r in by_number] == [SURGERY, SURGERY]
    assert [r.split("|")[0] for r in rows(family.get("/calls?q=hmrc").text)] == [STRANGER]
    assert [r.split("|")[0] for r in rows(family.get("/calls?q=960001").text)] == [STRANGER]
    assert "No calls match" in family.get("/calls?q=nobody").text


def test_unknown_callers_have_always_let_through_and_block_buttons(
    site: Site, family: Browser
) -> None:
    store = site.store()
    store.append_call(call(STRANGER, "2026-03-02T09:00:00+00:00", name="A Caller"))
    store.append_call(call("+447700900123", "2026-03-02T09:10:00+00:00"))
    store.append_call(call(SURGERY, "2026-03-02T09:20:00+00:00", verdict="allowed", rule="allow"))
    store.append_call(call(None, "2026-03-02T09:30:00+00:00"))
    page = family.get("/calls").text
    assert page.count('data-action="call-allow"') == 2  # not the allowed call, not withheld
    assert page.count('data-action="call-block"') == 2

    reply = family.submit(
        "/calls/allow",
        {"number": STRANGER, "name": "A Caller", "back": "/calls?page=1"},
        page="/calls",
    )
    assert reply.status == 302 and reply.location == "/calls?page=1"
    [entry] = store.entries("allow")
    assert (entry.number, entry.name) == (STRANGER, "A Caller")
    assert "is on the allow list: it will ring through" in family.get("/calls").text

    family.submit(
        "/calls/block", {"number": "+447700900123", "back": "https://evil.example/"}, page="/calls"
    )
    assert [e.number for e in store.entries("block")] == ["+447700900123"]

    family.submit("/calls/block", {"number": STRANGER}, page="/calls")
    text = html.unescape(family.get("/calls").text)
    assert "is on the allow list" in text and "notice bad" in text
    assert [e.number for e in store.entries("block")] == ["+447700900123"]


# -- the words ----------------------------------------------------------------------------


def test_when_words() -> None:
    today = NOW.date()
    assert pages.when_words("2026-03-02T07:05:00+00:00", today) == "Today 07:05"
    assert pages.when_words("2026-03-01T23:59:00+00:00", today) == "Yesterday 23:59"
    assert pages.when_words("2026-02-26T12:00:00+00:00", today) == "Thu 26 Feb 12:00"
    assert pages.when_words("2025-12-25T12:00:00+00:00", today) == "Thu 25 Dec 12:00 2025"
    assert pages.when_words("garbage\x1b", today) == "garbage\\x1b"


def test_health_without_a_status_or_with_a_nonsense_pid() -> None:
    assert not pages.health(None).ok
    assert not pages.health(status(pid="not a pid")).ok
    assert not pages.health(status(pid=10**30)).ok
    assert pages.health(status()).ok


def test_no_text_is_smaller_than_18_px_at_the_browsers_default_size(site: Site) -> None:
    css = site.browser().get("/static/style.css").text
    assert re.search(r"html \{ font-size: 125%;", css)  # 20 px at a browser's default 16 px
    sizes = [float(s) for s in re.findall(r"font-size: ([\d.]+)rem", css)]
    assert sizes and min(sizes) * 20 >= 18
    assert not re.search(r"font-size: [\d.]+(px|pt|em)\b", css)


def test_callguards_own_protected_numbers_say_so_rather_than_their_sources(
    family: Browser,
) -> None:
    page = family.get("/lists").text
    section = page.split('<section id="protect"', 1)[1]
    assert "Included with CallGuard" in section and "https://" not in section
