"""The resident's controls and what the daemon learns about its line (issue 14): the button's
long press blocks the last caller, the clock not yet synchronised suspends quiet hours, and
whether caller ID comes before or after the first ring — on the simulated line."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from gpiozero.pins.mock import MockFactory
from helpers import Running, wait_for

from callguard.clock import ClockState
from callguard.core.lists import once_target
from callguard.sim import Call

LEEDS = "01134960777"
NOT_SYNCED = ClockState(False, "not synchronised yet (test)")


def test_a_long_press_blocks_the_last_caller_and_their_redial_never_rings(
    tmp_path: Path, factory: MockFactory
) -> None:
    with Running(
        tmp_path,
        {"indicators": {"button_pin": 25}},
        pin_factory=factory,
        long_press_s=0.2,
    ) as r:
        record, logged = r.call(Call(number=LEEDS, rings=2))
        assert record.rings and logged["verdict"] == "warned"
        button = factory.pin(25)
        button.drive_low()  # held down past the long press
        r.wait_seen("blocked-last", 5)
        button.drive_high()
        assert r.store.find("+441134960777").keys() == {"block"}
        assert r.store.alert_active() is False  # the long press acknowledged nothing
        wait_for(lambda: r.daemon.index.match("block", "+441134960777"), 5, "the reload")
        again, logged = r.call(Call(number=LEEDS, rings=3))
        assert again.outcome == "seized" and again.rings == []  # before the first ring
        assert logged["verdict"] == "blocked"


def test_until_the_clock_is_right_quiet_hours_are_off_and_records_say_so(
    tmp_path: Path,
) -> None:
    every_minute = {"screening": {"quiet_hours": "00:00-23:59"}}
    with Running(tmp_path, every_minute, clock_check=lambda: NOT_SYNCED) as r:
        record, logged = r.call(Call(number=LEEDS, rings=2))
        assert record.rings and logged["verdict"] == "warned"  # not blocked on a wrong time
        assert logged["clock_synchronised"] is False
        assert wait_for(lambda: r.store.read_status(), 5)["clock_synchronised"] is False


def test_quiet_hours_apply_once_the_clock_is_right(tmp_path: Path) -> None:
    every_minute = {"screening": {"quiet_hours": "00:00-23:59"}}
    with Running(tmp_path, every_minute, clock_check=lambda: ClockState(True, "ok")) as r:
        _, logged = r.call(Call(number=LEEDS, rings=2))
        assert logged["verdict"] == "blocked" and logged["rule"] == "quiet-hours"
        assert "clock_synchronised" not in logged


def test_the_daemon_learns_when_caller_id_comes(tmp_path: Path) -> None:
    with Running(tmp_path) as r:
        assert r.daemon.status()["caller_id_timing"] == "unknown"
        r.call(Call(number=LEEDS, rings=1))
        assert r.daemon.status()["caller_id_timing"] == "before-first-ring"
        for _ in range(2):  # a router port that sends it after the first ring
            r.call(Call(number="2025550143", style="us", rings=3))
        assert r.daemon.status()["caller_id_timing"] == "after-first-ring"


def test_allow_once_lets_a_withheld_call_ring_without_a_warning_until_it_runs_out(
    tmp_path: Path,
) -> None:
    skew = [dt.timedelta(0)]

    def clock() -> dt.datetime:  # the daemon's wall clock, moved on by the test
        return dt.datetime.now().astimezone() + skew[0]

    with Running(tmp_path, {"warning": {"room_command": "true {wav}"}}, clock=clock) as r:
        r.store.allow_once(
            once_target("withheld", "GB"), clock() + dt.timedelta(hours=1), name="Lister"
        )
        wait_for(lambda: r.daemon.index.match("allow", "withheld"), 5, "the reload")
        since = len(r.seen)
        record, logged = r.call(Call(number="P", rings=2))
        assert record.rings and logged["verdict"] == "allowed" and logged["rule"] == "allow"
        assert "expected call ('Lister')" in logged["reason"]
        assert not [o for o in r.seen[since:] if o.kind in ("warned", "room-warning")]
        skew[0] = dt.timedelta(hours=1, minutes=1)  # an hour later: it has run out
        _, logged = r.call(Call(number="P", rings=2))
        assert logged["verdict"] == "warned" and logged["category"] == "withheld"


def test_a_config_changed_by_the_family_page_is_taken_up_without_a_signal(
    tmp_path: Path,
) -> None:
    with Running(tmp_path, clock_check=lambda: ClockState(True, "ok")) as r:
        _, logged = r.call(Call(number=LEEDS, rings=1))
        assert logged["verdict"] == "warned"
        since = len(r.seen)
        r.write_config(
            {
                "modem": {"port": r.link},
                "storage": {"dir": str(tmp_path / "state")},
                "warning": {"room_command": ""},
                "screening": {"mode": "allowlist-only"},
            }
        )
        r.wait_seen("reloaded", 10, since=since)
        _, logged = r.call(Call(number=LEEDS, rings=1))
        assert logged["verdict"] == "blocked" and logged["rule"] == "mode:allowlist-only"
