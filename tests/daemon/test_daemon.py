"""The daemon in-process on the simulated line: faults, reloads, and the modem going away."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import Running, wait_for, write_config

from callguard.core import screening
from callguard.core.lists import target_for
from callguard.sim import Call
from callguard.store.lists import Store

pytestmark = pytest.mark.e2e


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Running]:
    Store(tmp_path / "state").add("block", target_for("0113 496 0000", "GB"), name="scam")
    with Running(tmp_path) as r:
        yield r


def test_a_fault_while_screening_lets_the_call_ring_and_the_daemon_goes_on(
    running: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = screening.screen
    calls = {"n": 0}

    def broken(*args: Any, **kw: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("a bug in screening")
        return real(*args, **kw)

    monkeypatch.setattr(screening, "screen", broken)
    # an unknown number: the first look (which seizes a listed scammer before screening, and
    # whose own fault case is in test_first_look.py) passes it, so only screening decides
    record, logged = running.call(Call(number="02079460123", rings=2))
    assert record.seized_at is None  # the call rang through
    assert record.outcome == "unanswered" and len(record.rings) == 2
    assert "CallGuard hit an error handling this call" in logged["notes"]
    assert not running.sim.off_hook
    # the next call is screened normally
    record, logged = running.call(Call(number="01134960000", rings=2))
    assert record.outcome == "seized" and logged["verdict"] == "blocked"


def test_a_call_log_that_cannot_be_written_does_not_stop_screening(
    running: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full_disk(record: dict[str, Any]) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(running.daemon.store, "append_call", full_disk)
    handle = running.sim.place_call(Call(number="01134960000", rings=2))
    assert handle.wait(30).outcome == "seized"
    running.wait_seen("logged", 10)  # the log attempt
    assert not running.sim.off_hook
    assert running.thread.is_alive()


def test_reload_picks_up_a_new_mode(running: Running) -> None:
    _, logged = running.call(Call(number="02079460123", rings=1))
    assert logged["verdict"] == "warned"
    running.write_config(
        {
            "modem": {"port": running.link},
            "storage": {"dir": running.config.storage.dir},
            "warning": {"room_command": ""},
            "screening": {"mode": "allowlist-only"},
        }
    )
    running.daemon.reload()
    running.wait_seen("reloaded", 5)
    record, logged = running.call(Call(number="02079460123", rings=2))
    assert record.outcome == "seized" and logged["rule"] == "mode:allowlist-only"


def test_a_bad_config_on_reload_keeps_the_old_one(running: Running) -> None:
    write_config(running.config_path, {"screening": {"mode": "shouty"}})
    running.daemon.reload()
    running.wait_seen("reloaded", 5)
    assert running.daemon.config.screening.mode == "guarded"


def test_modem_unplugged_mid_call_is_logged_and_screening_resumes(running: Running) -> None:
    handle = running.sim.place_call(Call(number="02079460123", rings=5))
    wait_for(lambda: handle.record.rings, 10, "the first ring")
    mark = len(running.seen)
    running.sim.unplug()
    running.wait_seen("modem", 5, since=mark, where=lambda o: not o.detail.connected)
    assert running.daemon.status()["modem"] == "disconnected"
    running.wait_seen("logged", 10, since=mark)  # the interrupted call
    logged = wait_for(running.store.calls, 5, "the interrupted call in the file")
    assert logged and "the modem was lost during the call" in logged[-1]["notes"]
    mark = len(running.seen)
    running.sim.replug()
    running.wait_seen("modem", 10, since=mark, where=lambda o: o.detail.connected)
    assert running.daemon.status()["modem"] == "connected"
    handle.wait(30)  # the first caller gives up (the line is busy until then)
    record, logged = running.call(Call(number="01134960000", rings=2))
    assert record.outcome == "seized"


def test_block_announcement_is_spoken_to_the_caller_then_released(tmp_path: Path) -> None:
    Store(tmp_path / "state").add("block", target_for("0113 496 0000", "GB"), name="scam")
    with Running(tmp_path, {"block": {"announce": True}}) as r:
        wait_for(lambda: r.daemon.actions.announcement, 20, "the announcement to be prepared")
        record, logged = r.call(Call(number="01134960000", rings=3))
        assert record.outcome == "seized" and record.rings == []  # still before the first ring
        session = r.sim.voice_sessions[-1]
        assert session.nbytes > 2 * 8000  # "This number does not accept your calls. Goodbye."
        assert not r.sim.off_hook and logged["verdict"] == "blocked"


def test_unreadable_lists_at_start_do_not_stop_screening(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(self: Any, pack: Any) -> Any:
        raise PermissionError(13, "Permission denied", "lists.json")

    monkeypatch.setattr(Store, "read_packed", broken)
    with Running(tmp_path) as r:
        _, logged = r.call(Call(number="02079460123", rings=1))
        assert logged["verdict"] == "warned"  # screened, without the lists
