"""The live state files: the status is live state (no backup, never brought back from one);
the alert must survive a power cut (its backup is kept and used)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from callguard.store.files import StoreError, file_signature
from callguard.store.state import StateFiles

RUNNING = {
    "daemon": "running",
    "updated": "2026-10-25T12:00:05+00:00",
    "current_call": {"call_id": 7, "started": "2026-10-25T12:00:00+00:00", "number": "+441"},
}
IDLE = {"daemon": "running", "updated": "2026-10-25T12:03:00+00:00", "current_call": None}


def names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.fixture
def runtime(tmp_path: Path) -> Path:
    folder = tmp_path / "run"
    folder.mkdir()
    return folder


@pytest.fixture
def state(tmp_path: Path, runtime: Path) -> StateFiles:
    return StateFiles(tmp_path / "state", runtime_dir=str(runtime))


def test_the_status_is_written_whole_in_the_runtime_folder_with_no_backup(
    state: StateFiles, runtime: Path
) -> None:
    state.write_status(RUNNING)
    state.write_status(IDLE)
    assert state.read_status() == IDLE
    assert names(runtime) == ["status.json", "status.json.lock"]
    assert not state.dir.exists()  # nothing on the card


def test_a_deleted_status_is_no_status_not_an_older_one_from_a_backup(
    state: StateFiles, runtime: Path
) -> None:
    """A status.json.bak brought back after status.json was deleted made a restarted daemon
    log a call, long over, as cut short by the restart."""
    state.write_status(RUNNING)  # a call in progress
    state.write_status(IDLE)  # it ended
    (runtime / "status.json").unlink()
    assert state.read_status() is None
    assert names(runtime) == ["status.json.lock"]


def test_a_backup_left_by_an_earlier_version_is_never_read_and_goes_at_the_next_write(
    state: StateFiles, runtime: Path
) -> None:
    state.write_status(IDLE)
    os.rename(runtime / "status.json", runtime / "status.json.bak")
    assert state.read_status() is None
    state.write_status(IDLE)
    assert names(runtime) == ["status.json", "status.json.lock"]


def test_a_damaged_status_is_read_as_none_and_left_where_it_is(
    state: StateFiles, runtime: Path, caplog: pytest.LogCaptureFixture
) -> None:
    state.write_status(RUNNING)
    (runtime / "status.json").write_text('{"status": {"1": {"daemon": "runn')
    with caplog.at_level(logging.WARNING):
        assert state.read_status() is None
    assert "status.json is not a status" in caplog.text
    assert names(runtime) == ["status.json", "status.json.lock"]
    state.write_status(IDLE)
    assert state.read_status() == IDLE


def test_a_symlinked_status_is_refused_not_followed(state: StateFiles, runtime: Path) -> None:
    target = runtime.parent / "elsewhere.json"
    target.write_text("{}")
    (runtime / "status.json").symlink_to(target)
    for action in (lambda: state.write_status(IDLE), state.read_status):
        with pytest.raises(StoreError, match="symbolic link"):
            action()
    assert target.read_text() == "{}" and (runtime / "status.json").is_symlink()


def test_without_a_runtime_folder_the_status_is_in_a_folder_of_its_own(tmp_path: Path) -> None:
    """In the store's folder it would change that folder at every write, and the seize path's
    first look would not trust the lists for a moment after each."""
    state = StateFiles(tmp_path / "state", runtime_dir=str(tmp_path / "missing"))
    state.write_status(IDLE)  # makes the folder
    before = file_signature(tmp_path / "state")
    state.write_status({**IDLE, "modem": "disconnected"})
    assert file_signature(tmp_path / "state") == before
    assert state.status_path == tmp_path / "state" / "live" / "status.json"
    assert state.read_status() == {**IDLE, "modem": "disconnected"}


def test_the_alert_keeps_its_backup_and_is_recovered_from_it(state: StateFiles) -> None:
    state.raise_alert({"number": "+441"})
    state.ack_alert(by="sue")
    assert (state.dir / "alert.json.bak").exists()
    state.alert_path.unlink()  # lost (a card that failed to keep it)
    alert = state.read_alert()
    assert alert is not None and alert["active"] is True  # the copy before the ack
