"""Fixtures shared by the tests."""

from __future__ import annotations

from collections.abc import Iterator

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
