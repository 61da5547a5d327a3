"""The Settings page over HTTP: mode, quiet hours and the warnings, checked as ``callguard config
check`` checks them, written into the config file the page was started with keeping its
comments, and nothing written on any error (a bad value, a file the page may not write)."""

from __future__ import annotations

import contextlib
import html
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from webclient import Browser, form_values, save, served, text_of

from callguard import config as config_module


@pytest.fixture
def family(cfg: Path) -> Iterator[Browser]:
    """The page started as ``callguard --config FILE web`` starts it, logged in."""
    with served(cfg) as browser:
        yield browser


def test_the_page_shows_the_files_values_with_plain_words(family: Browser) -> None:
    page = family.get("/settings").text
    values = form_values(page)
    assert values["screening_mode"] == "guarded"
    assert values["screening_quiet_hours"] == ""
    assert values["warning_text"].startswith("This is CallGuard.")
    assert "warning_line" not in values
    words = text_of(page)
    assert "Only numbers on the allow list ring." in words
    assert "a warning is spoken in the room first" in words


def test_a_bad_quiet_hours_value_shows_the_configs_message_and_writes_nothing(
    cfg: Path, family: Browser
) -> None:
    before = cfg.read_bytes()
    text, status, _ = save(family, screening_quiet_hours="25:00-08:00", warning_line="on")
    assert status == 400
    error = re.search(r'id="quiet-hours-error">(.*?)</p>', text, re.S)
    assert error, text
    expected = ""
    try:
        config_module.from_dict({"screening": {"quiet_hours": "25:00-08:00"}})
    except config_module.ConfigError as exc:
        (expected,) = exc.problems
    assert expected and html.unescape(error[1]) == expected
    assert 'value="25:00-08:00"' in text, "the value typed is kept in the form"
    assert cfg.read_bytes() == before, "nothing is written, not even the good change"


def test_a_good_change_is_written_keeping_the_comments(cfg: Path, family: Browser) -> None:
    before = cfg.read_text(encoding="utf-8")
    text, status, location = save(
        family,
        screening_mode="allowlist-only",
        screening_quiet_hours="21:00-08:00",
        warning_line="on",
        warning_line_text="Careful: this caller is not on your list.",
    )
    assert status == 302 and location.endswith("/settings"), text
    after = cfg.read_text(encoding="utf-8")
    comments = [line for line in before.splitlines() if line.lstrip().startswith("#")]
    assert comments and all(c in after.splitlines() for c in comments)
    old_lines, new_lines = before.splitlines(), after.splitlines()
    assert len(old_lines) == len(new_lines), "only the four values change, in place"
    changed = [(o, n) for o, n in zip(old_lines, new_lines, strict=True) if o != n]
    assert changed == [
        ('mode = "guarded"', 'mode = "allowlist-only"'),
        ('quiet_hours = ""', 'quiet_hours = "21:00-08:00"'),
        ("line = false", "line = true"),
        (
            'line_text = "This caller is not on your list. Police and banks never ask for your '
            'PIN."',
            'line_text = "Careful: this caller is not on your list."',
        ),
    ]
    config = config_module.load(str(cfg))  # config check passes
    assert config.screening.mode == "allowlist-only"
    assert config.screening.quiet_hours == "21:00-08:00"
    assert config.warning.line is True
    assert config.warning.line_text == "Careful: this caller is not on your list."
    page = family.get("/settings").text
    assert "Saved. CallGuard uses the new settings within a few seconds." in page
    assert form_values(page)["screening_mode"] == "allowlist-only"

    # nothing changed: nothing written
    stamp = cfg.stat().st_mtime_ns
    _, status, _ = save(family)
    assert status == 302 and cfg.stat().st_mtime_ns == stamp
    assert "Nothing was changed." in family.get("/settings").text

    # the line warning off again
    _, status, _ = save(family, warning_line=None)
    assert status == 302 and config_module.load(str(cfg)).warning.line is False


def test_every_bad_field_gets_its_own_message(cfg: Path, family: Browser) -> None:
    before = cfg.read_bytes()
    text, status, _ = save(
        family,
        screening_mode="paranoid",
        warning_text="   ",
        warning_line_text="word " * 40,
    )
    assert status == 400
    assert re.search(r'id="mode-error">screening\.mode = ', text)
    assert re.search(r'id="warning-text-error">warning\.text = .*is empty', text)
    assert re.search(r'id="warning-line-text-error">warning\.line_text = .*characters', text)
    assert cfg.read_bytes() == before


def test_text_from_the_form_is_escaped(cfg: Path, family: Browser) -> None:
    text, status, _ = save(family, screening_quiet_hours='<script>"x"</script>')
    assert status == 400 and "<script>" not in text
    _, status, _ = save(family, warning_text="Careful & <b>calm</b>.")
    assert status == 302
    assert "&lt;b&gt;calm&lt;/b&gt;" in family.get("/settings").text
    assert config_module.load(str(cfg)).warning.text == "Careful & <b>calm</b>."


def test_a_cross_site_post_changes_nothing(cfg: Path, family: Browser) -> None:
    before = cfg.read_bytes()
    values = form_values(family.get("/settings").text)
    values["screening_mode"] = "open"
    assert family.post("/settings", values, origin="https://evil.example").status == 403
    assert family.post("/settings", {**values, "csrf_token": "nope"}).status == 403
    assert Browser(family.base).post("/settings", values).status == 401
    assert cfg.read_bytes() == before


@contextlib.contextmanager
def unwritable(path: Path) -> Iterator[None]:
    """``path`` that this process may not write: read-only, or immutable for root (who may
    write any file it can read)."""
    if os.geteuid() != 0:
        path.chmod(0o444)
        path.parent.chmod(0o555)
        try:
            yield
        finally:
            path.parent.chmod(0o755)
            path.chmod(0o644)
        return
    chattr = shutil.which("chattr")
    if chattr is None or subprocess.run([chattr, "+i", str(path)], capture_output=True).returncode:
        pytest.skip("running as root, and this filesystem cannot make a file immutable")
    try:
        yield
    finally:
        subprocess.run([chattr, "-i", str(path)], check=True)


def test_a_file_the_page_may_not_write_is_explained_and_left_alone(
    cfg: Path, family: Browser
) -> None:
    before = cfg.read_bytes()
    with unwritable(cfg):
        text, status, _ = save(family, screening_mode="open")
        assert status == 409, text
        words = text_of(text)
        assert f"The family page is not allowed to change {cfg}" in words
        assert "Nothing was saved." in words and f"sudo chmod g+w {cfg}" in words
        assert cfg.read_bytes() == before
        assert list(cfg.parent.iterdir()) == [cfg], "no temp file left beside it"
        assert form_values(family.get("/settings").text)["screening_mode"] == "guarded"


def test_without_a_config_file_the_page_says_it_cannot_save(tmp_path: Path) -> None:
    from webclient import start_site

    site, running = start_site(tmp_path)  # a config from defaults, no file
    try:
        browser = site.browser()
        assert browser.login().status == 302
        assert "started without a config file" in text_of(browser.get("/settings").text)
        text, status, _ = save(browser, screening_mode="open")
        assert status == 409 and "Nothing was saved." in text_of(text)
    finally:
        running.stop()
