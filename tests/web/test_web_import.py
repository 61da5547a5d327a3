"""The Import page over HTTP: a contacts file is sent, previewed (how it was read, the entries,
the lines that cannot be read and why) with nothing written, and added only by the confirm
button, through Store.add_many with the CLI's checks. The file waits on the Pi between the two,
under a random token; the browser never sends numbers back."""

from __future__ import annotations

import html
import http.client
import json
import os
import re
import secrets
import stat
import urllib.parse
from pathlib import Path

import pytest
from webclient import Browser, Reply, Site

from callguard.core.lists import target_for
from callguard.web.uploads import MAX_UPLOAD_BYTES

CONTACTS = Path(__file__).resolve().parents[1] / "data" / "contacts"


def upload(
    browser: Browser,
    data: bytes,
    filename: str = "contacts.csv",
    list_name: str = "allow",
    *,
    token: str | None = None,
    origin: str | None = "own",
) -> Reply:
    """POST /import as the page's form does (multipart/form-data)."""
    token = browser.token("/import") if token is None else token
    boundary = "----callguard" + secrets.token_hex(8)
    parts = []
    for name, value in (("csrf_token", token), ("list", list_name)):
        head = f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
        parts.append(f"{head}{value}\r\n".encode())
    parts.append(
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
            f'filename="{filename}"\r\nContent-Type: text/csv\r\n\r\n'
        ).encode()
        + data
        + b"\r\n"
    )
    parts.append(f"--{boundary}--\r\n".encode())
    body = b"".join(parts)
    host, port = browser.host_port
    headers = {
        "Host": f"{host}:{port}",
        "Connection": "close",
        "Content-Type": f"multipart/form-data; boundary={boundary}",
        "Cookie": "; ".join(f"{k}={v}" for k, v in browser.cookies.items()),
    }
    if browser.remote:
        headers["X-Test-Remote-Addr"] = browser.remote
    if origin == "own":
        headers["Origin"] = browser.base.rstrip("/")
    elif origin is not None:
        headers["Origin"] = origin
    conn = http.client.HTTPConnection(host, port, timeout=30)
    try:
        conn.request("POST", "/import", body=body, headers=headers)
        response = conn.getresponse()
        text = response.read().decode("utf-8", "replace")
    finally:
        conn.close()
    return Reply(response.status, response.headers, text)


def confirm_form(page: str) -> dict[str, str]:
    """The confirm form's hidden fields, as the preview page holds them."""
    form = re.search(r'<form method="post" action="/import/confirm">(.*?)</form>', page, re.S)
    assert form, page
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', form[1]))
    assert 'data-action="import-confirm"' in form[1]
    return fields


def text_of(page: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


def allow_numbers(site: Site) -> dict[str, str]:
    return {e.number: e.name for e in site.store().all_entries()["allow"]}


def held_files(site: Site) -> list[Path]:
    folder = site.folder / "cache" / "import"
    return sorted(folder.glob("*.json")) if folder.exists() else []


def test_the_import_page_is_linked_and_has_the_form(family: Browser) -> None:
    today = family.get("/").text
    assert 'href="/import"' in today and 'href="/settings"' in today
    page = family.get("/import").text
    form = re.search(r'<form [^>]*data-action="import"[^>]*>(.*?)</form>', page, re.S)
    assert form and 'enctype="multipart/form-data"' in form[0]
    assert 'type="file"' in form[1] and 'name="file"' in form[1]
    assert re.search(r'<select [^>]*name="list"', form[1])
    assert 'value="allow"' in form[1] and 'value="block"' in form[1]


def test_a_google_csv_is_previewed_then_added_on_confirm(site: Site, family: Browser) -> None:
    data = (CONTACTS / "google.csv").read_bytes()
    preview = upload(family, data, "google.csv")
    assert preview.status == 200, preview.text
    words = text_of(preview.text)
    assert "Nothing has been added yet" in words
    assert "Read as a Google Contacts CSV" in words
    assert "Sue Smith (mobile)" in words and "07700 900123" in words and "07700 900456" in words
    assert "Dr Patel's Surgery (work)" in words and "01707 354100" in words
    assert "+33 6 12 34 56 78" in words  # as log shows a foreign number
    assert "Line 9: no phone number for Parish Newsletter; skipped" in words
    assert "the extension (2) is left off" in words
    assert allow_numbers(site) == {}, "a preview writes nothing"
    held = held_files(site)
    assert len(held) == 1 and stat.S_IMODE(held[0].stat().st_mode) == 0o600

    fields = confirm_form(preview.text)
    done = family.post("/import/confirm", fields)
    assert done.status == 302 and done.location.endswith("/lists#allow"), done.text
    allowed = allow_numbers(site)
    assert allowed["+447700900123"] == "Sue Smith (mobile)"
    assert allowed["+441707354100"] == "Dr Patel's Surgery (work)"
    assert allowed["+33612345678"] == "Anne Dubois (mobile)"
    assert len(allowed) == 9
    entry = site.store().find("+447700900123")["allow"]
    assert entry.added_by.startswith("family page (")
    assert held_files(site) == [], "the held file is deleted after the confirm"
    lists = family.get("/lists").text
    assert "Added google.csv to the allow list: 9 new, 0 already there" in text_of(lists)

    again = family.post("/import/confirm", fields)
    assert again.status == 409 and "Nothing was added" in text_of(again.text)


@pytest.mark.parametrize("name", ["iphone.vcf", "android.vcf", "outlook.csv", "names-first.csv"])
def test_other_exports_preview_with_entries(family: Browser, name: str) -> None:
    preview = upload(family, (CONTACTS / name).read_bytes(), name)
    assert preview.status == 200
    assert 'data-action="import-confirm"' in preview.text
    assert "data-import-item=" in preview.text


def test_bad_lines_are_shown_and_nothing_is_written_until_confirm(
    site: Site, family: Browser
) -> None:
    data = (
        b"number,name\n"
        b"01707 354000,Surgery\n"
        b"not a number,<script>alert(1)</script>\n"
        b'0161 496 0000,"Pharmacy <b>bold</b>"\n'
        b"12,Too short\n"
    )
    preview = upload(family, data, "mixed <i>list.csv")
    assert preview.status == 200
    assert "<script>" not in preview.text and "<b>bold</b>" not in preview.text
    assert "&lt;b&gt;bold&lt;/b&gt;" in preview.text
    assert "mixed &lt;i&gt;list.csv" in preview.text
    problems = re.findall(r'data-import-problem="(\d+)"><p>(.*?)</p>', preview.text, re.S)
    assert [line for line, _ in problems] == ["3", "5"]
    assert "Lines CallGuard cannot read (2)" in preview.text
    assert "leaving out the 2 lines above" in preview.text
    assert allow_numbers(site) == {}

    # a list of numbers sent back by the browser is not trusted: only the held file counts
    fields = confirm_form(preview.text)
    done = family.post("/import/confirm", {**fields, "number": "+441632960001"})
    assert done.status == 302
    assert set(allow_numbers(site)) == {"+441707354000", "+441614960000"}
    assert "2 line(s) it could not read were left out" in text_of(family.get("/lists").text)


def test_a_cross_site_post_changes_nothing(site: Site, family: Browser) -> None:
    data = (CONTACTS / "names-first.csv").read_bytes()
    foreign = upload(family, data, origin="https://evil.example")
    assert foreign.status == 403 and held_files(site) == []
    no_token = upload(family, data, token="wrong")
    assert no_token.status == 403 and held_files(site) == []

    preview = upload(family, data)
    fields = confirm_form(preview.text)
    assert family.post("/import/confirm", fields, origin="https://evil.example").status == 403
    assert family.post("/import/confirm", {**fields, "csrf_token": "x"}).status == 403
    stranger = Browser(family.base)  # logged out: same token, no session
    assert stranger.post("/import/confirm", fields).status == 401
    assert allow_numbers(site) == {}
    assert len(held_files(site)) == 1


def test_another_session_cannot_confirm_a_file_it_did_not_send(site: Site, family: Browser) -> None:
    preview = upload(family, (CONTACTS / "names-first.csv").read_bytes())
    fields = confirm_form(preview.text)
    other = site.browser()
    assert other.login().status == 302
    reply = other.submit("/import/confirm", {"token": fields["token"]}, page="/import")
    assert reply.status == 409 and allow_numbers(site) == {}
    for token in ("../../web-password", "x" * 32 + "/..", ""):
        reply = family.submit("/import/confirm", {"token": token}, page="/import")
        assert reply.status == 409


def test_a_held_file_runs_out_after_an_hour(site: Site, family: Browser) -> None:
    preview = upload(family, (CONTACTS / "names-first.csv").read_bytes())
    fields = confirm_form(preview.text)
    (held,) = held_files(site)
    old = json.loads(held.read_text())
    old["created"] -= 3601
    held.write_text(json.dumps(old))
    reply = family.post("/import/confirm", fields)
    assert reply.status == 409 and "run out" in reply.text
    assert allow_numbers(site) == {} and held_files(site) == []

    preview = upload(family, (CONTACTS / "names-first.csv").read_bytes())
    (stale,) = held_files(site)
    os.utime(stale, (0, 0))
    upload(family, b"number,name\n01707 354000,Surgery\n")
    assert stale not in held_files(site), "an hour-old file is swept at the next upload"


def test_a_conflict_with_another_list_offers_add_them_even_so(site: Site, family: Browser) -> None:
    site.store().add("block", target_for("01707 354000", "GB"), name="Old block")
    preview = upload(family, b"number,name\n01707 354000,Surgery\n0161 496 0000,Pharmacy\n")
    refused = family.post("/import/confirm", confirm_form(preview.text))
    assert refused.status == 409
    words = text_of(refused.text)
    assert (
        "nothing imported" in words
        and "line 2: 01707 354000 (Welwyn Garden City) is on the block list" in words
    )
    assert "tick 'Add them even so' to move them" in words
    assert allow_numbers(site) == {}
    fields = confirm_form(refused.text)
    assert 'name="force"' in refused.text
    done = family.post("/import/confirm", {**fields, "force": "1"})
    assert done.status == 302
    assert set(allow_numbers(site)) == {"+441707354000", "+441614960000"}
    assert "block" not in site.store().find("+441707354000")


def test_a_protected_number_is_refused_with_the_stores_message(site: Site, family: Browser) -> None:
    preview = upload(family, b"number,name\n999,Emergency\n")
    reply = family.post("/import/confirm", confirm_form(preview.text))
    assert reply.status == 409 and "nothing imported" in text_of(reply.text)
    assert allow_numbers(site) == {}


def test_files_that_cannot_be_read_say_why(site: Site, family: Browser) -> None:
    empty = upload(family, b"   \n", "empty.csv")
    assert empty.status == 400 and "empty.csv is empty" in text_of(empty.text)
    binary = upload(family, b"PK\x03\x04\x00\x00spreadsheet", "book.xlsx")
    assert binary.status == 400 and "not a text file" in text_of(binary.text)
    nothing = upload(
        family, b"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Only Mail\r\nEMAIL:a@b.c\r\nEND:VCARD\r\n"
    )
    assert nothing.status == 200 and 'data-action="import-confirm"' not in nothing.text
    assert "the card (Only Mail) has no phone number" in text_of(nothing.text)
    wrong_list = upload(family, b"number\n01707 354000\n", list_name="protect")
    assert wrong_list.status == 400
    assert allow_numbers(site) == {}


def test_a_file_over_the_limit_gets_a_clear_message(site: Site, family: Browser) -> None:
    big = b"number,name\n" + b"01707 354000,Surgery\n" * (MAX_UPLOAD_BYTES // 20 + 10)
    assert len(big) > MAX_UPLOAD_BYTES
    reply = upload(family, big, "huge.csv")
    assert reply.status == 413
    assert "That file is too big" in reply.text and "up to 2 MB" in reply.text
    assert held_files(site) == [] and allow_numbers(site) == {}
    just_over = upload(family, b"number,name\n" + b"0" * (MAX_UPLOAD_BYTES), "over.csv")
    assert just_over.status == 413 and "That file is too big" in just_over.text


def test_the_confirm_without_a_session_or_with_get_is_refused(site: Site) -> None:
    browser = site.browser()
    assert browser.get("/import").status == 302
    assert urllib.parse.urlsplit(browser.get("/import").location).path == "/login"
