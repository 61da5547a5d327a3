"""Browser tests in a real headless Chromium: the ``browser`` fixture and its helpers.

Debian's ``chromium`` and ``chromium-driver`` (``make browser`` installs them where it can) driven
by selenium, at a phone's size (390 x 844 CSS pixels). Whatever is missing, a test that asks for
``browser`` is skipped with the reason (``-ra`` prints it), never failed; a browser that is
installed but will not start is a failure, with chromedriver's message.

A test module gets the fixture with ``pytest_plugins = ["browser"]`` (``tests`` is on pytest's
path) and imports the helpers it wants; importing this needs neither selenium nor Chromium.
PYTEST_DONT_REWRITE: it has no asserts to rewrite, and a test module imports it before pytest
loads it as a plugin, which would otherwise warn.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from selenium.webdriver.chrome.webdriver import WebDriver
    from selenium.webdriver.remote.webelement import WebElement

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
PHONE_SIZE = (390, 844)
"""CSS pixels of a common phone (iPhone 12 to 15): the family page is built for this first."""
PAGE_LOAD_TIMEOUT_S = 30.0


def missing() -> str | None:
    """Why the browser tests cannot run here, or None if they can."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed in this Python (it comes with the dev extras)"
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not path.is_file():
            return (
                f"{path} is missing: install Debian's {package} "
                "(make browser as root, or sudo apt install chromium chromium-driver)"
            )
    return None


def start(profile_dir: Path, size: tuple[int, int] = PHONE_SIZE) -> WebDriver:
    """A headless Chromium of ``size`` with its own profile in ``profile_dir``."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    width, height = size
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in (
        "--headless=new",
        f"--window-size={max(width, 500)},{height}",  # a window is at least 500 px wide
        "--no-sandbox",  # Chromium's sandbox refuses to run as root, as in a container
        "--disable-dev-shm-usage",  # a container's /dev/shm is often 64 MB
        "--disable-gpu",
        "--no-first-run",
        "--disable-extensions",
        "--disable-background-networking",  # no update checks or field trials: no internet
        f"--user-data-dir={profile_dir}",
    ):
        options.add_argument(argument)
    # the page is laid out as on a phone: its viewport meta tag, touch, this many CSS pixels
    options.add_experimental_option(
        "mobileEmulation", {"deviceMetrics": {"width": width, "height": height, "pixelRatio": 1}}
    )
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    driver.set_page_load_timeout(PAGE_LOAD_TIMEOUT_S)
    return driver


@pytest.fixture
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    """A fresh headless Chromium at phone size (no cookies from another test), quit after."""
    reason = missing()
    if reason:
        pytest.skip(reason)
    driver = start(tmp_path_factory.mktemp("chromium-profile"))
    try:
        yield driver
    finally:
        driver.quit()


def find(driver: WebDriver, css: str, timeout_s: float = 5.0) -> WebElement:
    """The first element matching ``css``, waiting up to ``timeout_s`` for it to appear."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    element: WebElement = WebDriverWait(driver, timeout_s).until(
        expected_conditions.presence_of_element_located((By.CSS_SELECTOR, css)),
        f"no element matching {css!r} on {driver.current_url} after {timeout_s} s",
    )
    return element


def screenshot(driver: WebDriver, path: Path, *, full_page: bool = False) -> Path:
    """Save what the browser shows as a PNG at ``path`` (folders made as needed) and return it.

    ``full_page`` takes the whole page at the window's width, not only what fits on the screen
    (for the screenshots in ``docs/``).
    """
    import base64

    path.parent.mkdir(parents=True, exist_ok=True)
    if full_page:
        size = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
        clip = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
        shot = driver.execute_cdp_cmd(
            "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": clip}
        )
        png = base64.b64decode(shot["data"])
    else:
        png = driver.get_screenshot_as_png()
    if not png.startswith(b"\x89PNG\r\n\x1a\n"):
        raise AssertionError(f"the browser's screenshot for {path} is not a PNG")
    path.write_bytes(png)
    return path


def console_messages(driver: WebDriver) -> list[str]:
    """What the page wrote to the console since the last call (errors, CSP violations...)."""
    return [str(entry.get("message", "")) for entry in driver.get_log("browser")]
