"""Fixtures shared by the tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from gpiozero import Device
from gpiozero.pins.mock import MockFactory


@pytest.fixture
def factory() -> Iterator[MockFactory]:
    """gpiozero's mock pins (``factory.pin(25).drive_low()`` presses a button on GPIO25)."""
    f = MockFactory()
    yield f
    f.reset()
    Device.pin_factory = None


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """An empty target system for install.sh's test mode: an os-release saying Debian 12."""
    target = tmp_path / "root"
    (target / "etc").mkdir(parents=True)
    (target / "etc" / "os-release").write_text('ID=debian\nVERSION_ID="12"\n')
    return target
