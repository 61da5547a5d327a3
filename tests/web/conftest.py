"""Fixtures of the family page's tests: the page served for real (see webclient.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from webclient import Browser, Site, start_site, write_config


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    """The family page with its password set (:data:`PASSWORD`), nobody logged in."""
    site, running = start_site(tmp_path)
    try:
        yield site
    finally:
        running.stop()


@pytest.fixture
def family(site: Site) -> Browser:
    """A family member's phone on the home network, logged in."""
    browser = site.browser()
    reply = browser.login()
    assert reply.status == 302, reply.text
    return browser


@pytest.fixture
def cfg(tmp_path: Path) -> Path:
    """The shipped config file, pointed at the test's own folder (see :func:`served`)."""
    return write_config(tmp_path)
