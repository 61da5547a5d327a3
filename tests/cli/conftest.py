"""Fixtures of the command-line tests."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def cfg(tmp_path: Path) -> Path:
    """A config whose storage.dir is ``tmp_path/state`` (not created)."""
    path = tmp_path / "callguard.toml"
    path.write_text(f'[storage]\ndir = "{tmp_path / "state"}"\n')
    return path
