"""Logging: every command installs one handler, so ``callguard run`` writes each line once."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from helpers import DaemonUnit, wait_for

from callguard.cli import main


def test_a_command_leaves_exactly_one_callguard_handler(tmp_path: Path) -> None:
    config = tmp_path / "callguard.toml"
    config.write_text(f'[storage]\ndir = "{tmp_path / "state"}"\n')
    root = logging.getLogger()
    saved = root.handlers[:]
    try:
        for _ in range(3):
            assert main(["--config", str(config), "log"]) == 0
        ours = [
            h
            for h in root.handlers
            if "CallGuard" in type(h).__name__ or "Stderr" in type(h).__name__
        ]
        assert len(ours) == 1
        assert not [h for h in root.handlers if type(h) is logging.StreamHandler]  # basicConfig
    finally:
        root.handlers[:] = saved


@pytest.mark.e2e
def test_the_daemon_writes_each_log_line_once(tmp_path: Path) -> None:
    with DaemonUnit(tmp_path) as unit:
        wait_for(lambda: "CallGuard starting" in unit.log_text(), 10, "the first log line")
    assert unit.log_text().count("CallGuard starting") == 1
