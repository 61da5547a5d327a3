"""Issue 11 at the daemon: no fault leaves the line off-hook, stalls screening, or stops the
watchdog from noticing. The real daemon (in-process) on the simulated line, faults injected."""

from __future__ import annotations

import datetime as dt
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from helpers import DaemonUnit, Running, wait_for

from callguard.config import from_dict
from callguard.core.lists import target_for
from callguard.daemon.app import Daemon
from callguard.modem.protocol import CallerId
from callguard.sim import Call
from callguard.store.folder import now_local
from callguard.store.lists import Store

pytestmark = pytest.mark.e2e

SCAM = "0113 496 0000"


def block_scam(tmp: Path) -> None:
    Store(tmp / "state").add("block", target_for(SCAM, "GB"), name="scam")


def seized(r: Running) -> bool:
    return any(o.kind == "seized" for o in r.seen)


def test_a_second_caller_id_during_a_held_block_puts_the_line_down(tmp_path: Path) -> None:
    block_scam(tmp_path)
    with Running(tmp_path, {"block": {"hold_s": 6.0}}) as r:
        handle = r.sim.place_call(Call(number="01134960000", rings=3))
        wait_for(lambda: r.sim.off_hook and seized(r), 10, "the seizure")
        # a second burst arrives while the block is held (line noise, a network retry)
        r.daemon._queue.put(("modem", CallerId("01707354000", None, "01707354000", burst=999)))
        wait_for(lambda: not r.sim.off_hook, 3, "the line put down for the new call")
        handle.wait(30)
        wait_for(lambda: r.daemon.status()["line"] == "idle", 15, "idle again")
        assert not r.sim.off_hook and r.daemon.status()["off_hook"] is False


def test_a_modem_deaf_after_a_seizure_is_retried_until_the_line_is_down(tmp_path: Path) -> None:
    block_scam(tmp_path)
    with Running(tmp_path, {"block": {"hold_s": 0.5}}) as r:
        r.sim.place_call(Call(number="01134960000", rings=3))
        wait_for(lambda: r.sim.off_hook and seized(r), 10, "the seizure")
        r.sim.hang()  # deaf from just after ATH1: ATH0 gets no answer
        wait_for(lambda: r.daemon.actions.on_hook_failures >= 1, 10, "a failed release")
        assert r.sim.off_hook
        status = r.daemon.status()
        assert status["off_hook"] is True and status["line"] == "in-call"  # never "idle"
        r.sim.unhang()
        wait_for(lambda: not r.sim.off_hook, 12, "the line put down once the modem answers")
        wait_for(lambda: r.daemon.status()["off_hook"] is False, 10, "the state cleared")
        # and screening works again
        record, logged = r.call(Call(number="01134960000", rings=2))
        assert record.outcome == "seized" and logged["verdict"] == "blocked"


def test_the_wall_clock_stepping_back_during_a_hold_does_not_stretch_it(tmp_path: Path) -> None:
    block_scam(tmp_path)
    step = {"back": dt.timedelta(0)}

    def wall() -> dt.datetime:
        return now_local() - step["back"]

    with Running(tmp_path, {"block": {"hold_s": 1.5}}, clock=wall) as r:
        handle = r.sim.place_call(Call(number="01134960000", rings=3))
        wait_for(lambda: seized(r), 10, "the seizure")
        step["back"] = dt.timedelta(hours=1)  # NTP syncs a Pi that has no real-time clock
        record = handle.wait(30)
        assert record.seized_at is not None and record.released_at is not None
        assert record.released_at - record.seized_at < 1.5 * 0.25 + 2.0  # sim time, scale 0.25


class Pings:
    watchdog_interval_s = 0.1

    def __init__(self) -> None:
        self.pings = 0

    def watchdog(self) -> None:
        self.pings += 1

    def ready(self, status: str = "") -> None: ...

    def status(self, text: str) -> None: ...

    def reloading(self, monotonic_usec: int | None = None) -> None: ...

    def stopping(self) -> None: ...


class Link:
    """A transport as the housekeeping sees it: healthy or wedged."""

    def __init__(self) -> None:
        self.is_healthy = True

    def healthy(self, now_mono: float | None = None) -> bool:
        return self.is_healthy


def test_the_watchdog_is_not_fed_while_the_modem_link_is_wedged(tmp_path: Path) -> None:
    notifier = Pings()
    clock = {"t": 100.0}
    config = from_dict({"storage": {"dir": str(tmp_path / "state")}})
    daemon = Daemon(config, notifier=notifier, monotonic=lambda: clock["t"])  # type: ignore[arg-type]
    link = Link()
    daemon.transport = link  # type: ignore[assignment]
    for _ in range(5):
        clock["t"] += 1.0
        daemon._housekeeping()
    assert notifier.pings == 5
    link.is_healthy = False  # the supervisor is stuck: systemd must restart us
    for _ in range(5):
        clock["t"] += 1.0
        daemon._housekeeping()
    assert notifier.pings == 5
    link.is_healthy = True
    clock["t"] += 1.0
    daemon._housekeeping()
    assert notifier.pings == 6


def test_calls_that_could_not_be_logged_are_written_when_the_card_takes_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    block_scam(tmp_path)
    with Running(tmp_path) as r:
        real = r.daemon.store.append_call

        def full_disk(record: dict[str, Any]) -> None:
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(r.daemon.store, "append_call", full_disk)
        assert r.sim.place_call(Call(number="01134960000", rings=2)).wait(30).outcome == "seized"
        wait_for(lambda: r.daemon.writer.failing, 10, "the write to fail")
        assert r.daemon.status()["unlogged_calls"] == 1  # kept
        monkeypatch.setattr(r.daemon.store, "append_call", real)
        logged = wait_for(lambda: r.store.calls(), 10, "the kept call written")
        assert logged[-1]["verdict"] == "blocked"
        # the writer counts it off just after the row is in (a test may look in between)
        wait_for(lambda: r.daemon.status()["unlogged_calls"] == 0, 5, "none left unlogged")


def test_sigterm_with_a_hung_modem_exits_within_systemds_stop_timeout(tmp_path: Path) -> None:
    unit = DaemonUnit(tmp_path)
    with unit:
        unit.sim.hang()
        assert unit.proc is not None
        started = time.monotonic()
        unit.proc.send_signal(signal.SIGTERM)
        code = unit.proc.wait(30)
        took = time.monotonic() - started
    assert code == 0
    assert took < 8.0, f"took {took:.1f} s; the unit's TimeoutStopSec is 10 s"


def test_a_slow_after_call_does_not_delay_the_next_seizure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Re-asserting caller ID on a deaf modem takes seconds; the main loop must not wait."""
    block_scam(tmp_path)
    with Running(tmp_path, {"block": {"hold_s": 0.5}}) as r:
        transport = r.daemon.transport
        assert transport is not None
        stuck = threading.Event()
        calls = []

        def slow_after_call(**kwargs: object) -> bool:
            calls.append(1)
            stuck.wait(20)
            return True

        monkeypatch.setattr(transport, "after_call", slow_after_call)
        try:
            first = r.sim.place_call(Call(number="01134960000", rings=3)).wait(30)
            assert first.outcome == "seized"
            wait_for(lambda: calls, 10, "the after-call work to start")
            second = r.sim.place_call(Call(number="01134960000", rings=3)).wait(30)
            assert second.outcome == "seized" and second.rings == []  # before the first ring
        finally:
            stuck.set()
