"""The browser tests' machinery on a tiny static page from a local http.server: Chromium starts
headless at phone size, loads the page, finds an element and takes screenshots. (The family
page's own browser tests drive ``callguard web``.)"""

from __future__ import annotations

import functools
import sys
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from browser import PHONE_SIZE, console_messages, find, screenshot

if TYPE_CHECKING:
    from selenium.webdriver.chrome.webdriver import WebDriver

pytest_plugins = ["browser"]  # the browser fixture

PAGE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>CallGuard smoke</title>
<style>body { font-size: 18px; margin: 0 } .tall { height: 2000px }</style></head>
<body><h1 id="greeting">Hello from CallGuard</h1>
<form data-action="allow-add"><label>Number <input name="number"></label></form>
<div class="tall"></div><p id="bottom">the end</p></body>
</html>
"""


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def site(tmp_path: Path) -> Iterator[str]:
    """The URL of a folder served on a free port of 127.0.0.1 holding ``index.html``."""
    root = tmp_path / "site"
    root.mkdir()
    (root / "index.html").write_text(PAGE, encoding="utf-8")
    handler = functools.partial(_QuietHandler, directory=str(root))
    with ThreadingHTTPServer(("127.0.0.1", 0), handler) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}/"
        finally:
            server.shutdown()
            thread.join(timeout=5)


def test_the_browser_loads_a_page_finds_an_element_and_takes_screenshots(
    browser: WebDriver, site: str, tmp_path: Path
) -> None:
    browser.get(site)
    assert browser.title == "CallGuard smoke"
    assert find(browser, "#greeting").text == "Hello from CallGuard"
    assert find(browser, 'form[data-action="allow-add"] input[name="number"]').is_displayed()
    assert browser.execute_script("return window.innerWidth") == PHONE_SIZE[0]

    shown = screenshot(browser, tmp_path / "shots" / "smoke.png")
    whole = screenshot(browser, tmp_path / "shots" / "smoke-full.png", full_page=True)
    assert _png_size(shown)[0] == _png_size(whole)[0] >= PHONE_SIZE[0]
    assert _png_size(whole)[1] > 2000 > _png_size(shown)[1]
    assert not [m for m in console_messages(browser) if "SEVERE" in m]


def test_each_test_gets_a_fresh_browser(browser: WebDriver, site: str) -> None:
    browser.get(site)
    assert browser.get_cookies() == []
    browser.add_cookie({"name": "session", "value": "x"})
    assert [c["name"] for c in browser.get_cookies()] == ["session"]


def _png_size(path: Path) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


@pytest.mark.parametrize(
    ("path", "module", "fragment"),
    [
        ("CHROMIUM", None, "install Debian's chromium "),
        ("CHROMEDRIVER", None, "install Debian's chromium-driver"),
        (None, "selenium", "selenium is not installed"),
    ],
)
def test_what_is_missing_is_named_so_the_test_is_skipped_saying_why(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    path: str | None,
    module: str | None,
    fragment: str,
) -> None:
    import browser as machinery

    if path:
        monkeypatch.setattr(machinery, path, tmp_path / "absent")
    if module:
        monkeypatch.setitem(sys.modules, module, None)  # import fails as if not installed
    reason = machinery.missing()
    assert reason is not None and fragment in reason
