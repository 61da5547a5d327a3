"""The line-voltage watch (issue 16): is the line dead? One check at a time against a scripted
transport and injected clocks (no threads, no sleeps), then once against the simulated modem."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

import pytest
from helpers import ScriptedTransport, wait_for

from callguard.hardware import linesense
from callguard.hardware.linesense import NO_ANSWER, LineVoltage, LineVoltageWatch
from callguard.modem.protocol import CallerId, Ring
from callguard.modem.transport import CommandTimeout, ModemTransport, ModemUnavailable
from callguard.sim import SimModem

T0 = dt.datetime(2026, 3, 2, 14, 2, 0, tzinfo=dt.UTC)


class Clocks:
    """A monotonic clock and the wall clock it drives."""

    def __init__(self) -> None:
        self.t = 0.0

    def mono(self) -> float:
        return self.t

    def wall(self) -> dt.datetime:
        return T0 + dt.timedelta(seconds=self.t)


def watch(
    transport: ScriptedTransport, clocks: Clocks, **kw: object
) -> tuple[LineVoltageWatch, list[LineVoltage]]:
    changes: list[LineVoltage] = []
    w = LineVoltageWatch(
        transport,  # type: ignore[arg-type]
        on_change=changes.append,
        clock=clocks.mono,
        wall=clocks.wall,
        **kw,  # type: ignore[arg-type]
    )
    # what start() does, without the thread: hear RING and caller ID from the "reader"
    transport.add_listener(w._heard)  # type: ignore[arg-type]
    return w, changes


def test_nothing_known_before_the_first_reading() -> None:
    w, _ = watch(ScriptedTransport(), Clocks())
    assert w.reading.to_json() == {
        "volts": None,
        "dead": None,
        "since": None,
        "checked": None,
        "detail": "not read yet",
    }


def test_a_live_line_reads_its_volts_every_check_s() -> None:
    transport, clocks = ScriptedTransport(48.2, 47.9), Clocks()
    w, changes = watch(transport, clocks, check_s=60.0)
    clocks.t = 5.0
    assert w.check() is not None
    assert w.reading.to_json() == {
        "volts": 48.2,
        "dead": False,
        "since": None,
        "checked": "2026-03-02T14:02:05+00:00",
        "detail": "48.2 V: the line is live",
    }
    assert transport.sent == ["AT-TRV"]
    assert transport.timeouts == [1.0]  # a short timeout: never long on the session
    clocks.t = 64.9
    assert w.check() is None  # not due yet
    clocks.t = 65.0
    assert w.check() is not None
    assert w.reading.volts == pytest.approx(47.9)
    assert len(transport.sent) == 2
    assert len(changes) == 2  # every reading is shown: "checked" moves on


def test_dead_after_two_low_readings_dated_by_the_first_and_live_at_the_first_good_one(
    caplog: pytest.LogCaptureFixture,
) -> None:
    transport, clocks = ScriptedTransport(48.2, 0.1, -0.2, 0.0, 47.5), Clocks()
    w, _ = watch(transport, clocks, check_s=60.0, recheck_s=10.0)
    w.check()
    clocks.t = 60.0
    first_low = w.check()
    assert first_low is not None and first_low.dead is False  # one low reading: read again soon
    assert first_low.detail == "0.1 V: low, reading again to be sure"
    clocks.t = 69.0
    assert w.check() is None
    clocks.t = 70.0
    with caplog.at_level(logging.WARNING, "callguard.hardware.linesense"):
        dead = w.check()
    assert dead is not None and dead.dead is True
    assert dead.to_json()["since"] == "2026-03-02T14:03:00+00:00"  # the first low reading
    assert dead.to_json()["checked"] == "2026-03-02T14:03:10+00:00"
    assert dead.volts == pytest.approx(-0.2)  # a reversed line: the magnitude counts
    assert "the phone line is dead: no line voltage" in caplog.text
    assert "Digital Voice switch-over" in caplog.text
    clocks.t = 130.0  # dead: back to the usual interval
    assert w.check() is not None and w.reading.dead is True
    assert w.reading.to_json()["since"] == "2026-03-02T14:03:00+00:00"
    clocks.t = 190.0
    caplog.clear()
    with caplog.at_level(logging.WARNING, "callguard.hardware.linesense"):
        back = w.check()
    assert back is not None and back.dead is False and back.since is None
    assert "the phone line is live again" in caplog.text


def test_threshold_is_three_volts_in_magnitude() -> None:
    transport, clocks = ScriptedTransport(2.9, 2.9, 3.0), Clocks()
    w, _ = watch(transport, clocks, check_s=1.0)
    for t in (0.0, 1.0):
        clocks.t = t
        w.check()
    assert w.reading.dead is True
    clocks.t = 2.0
    w.check()
    assert w.reading.dead is False
    assert linesense.DEAD_BELOW_V == 3.0
    assert linesense.LINE_CHECK_S == 60.0


def test_an_off_hook_extension_is_not_a_dead_line() -> None:
    transport, clocks = ScriptedTransport(8.3, 8.3), Clocks()
    w, _ = watch(transport, clocks, check_s=1.0)
    w.check()
    clocks.t = 1.0
    w.check()
    assert w.reading.dead is False


def test_never_during_a_call_and_not_within_quiet_s_of_its_end() -> None:
    transport, clocks = ScriptedTransport(48.2), Clocks()
    w, _ = watch(transport, clocks, check_s=1.0, quiet_s=2.0)
    w.set_active(True)
    for t in (0.0, 5.0, 100.0):
        clocks.t = t
        assert not w.may_ask() and w.check() is None
    w.set_active(False)  # at 100 s: a blocked caller redials now, if ever
    clocks.t = 101.9
    assert w.check() is None
    clocks.t = 102.0
    assert w.check() is not None
    assert len(transport.sent) == 1


def test_not_within_quiet_s_of_a_ring_or_caller_id_heard_before_the_daemon_knows() -> None:
    transport, clocks = ScriptedTransport(48.2, 48.2), Clocks()
    w, _ = watch(transport, clocks, check_s=1.0, quiet_s=2.0)
    clocks.t = 10.0
    transport.hear(CallerId(number="02079460123"))
    clocks.t = 11.9
    assert w.check() is None
    clocks.t = 12.0
    assert w.check() is not None
    clocks.t = 20.0
    transport.hear(Ring())
    clocks.t = 21.0
    assert w.check() is None
    assert len(transport.sent) == 1


def test_nothing_sent_while_disconnected_and_no_answer_is_asked_again_later() -> None:
    transport = ScriptedTransport(CommandTimeout("no reply"), ModemUnavailable("gone"), 48.0)
    clocks = Clocks()
    w, changes = watch(transport, clocks, check_s=60.0)
    transport.status.connected = False
    assert w.check() is None and transport.sent == []
    transport.status.connected = True
    assert w.check() is None  # no answer: unknown still, asked again at the next check
    assert w.available and w.reading.volts is None
    clocks.t = 60.0
    assert w.check() is None  # unplugged in the moment: the same
    clocks.t = 120.0
    assert w.check() is not None and w.reading.volts == pytest.approx(48.0)
    assert len(changes) == 1


def test_error_means_no_at_trv_and_stops_for_good() -> None:
    transport, clocks = ScriptedTransport("ERROR"), Clocks()
    w, changes = watch(transport, clocks, check_s=1.0)
    w.check()
    assert not w.available
    assert w.reading.to_json()["volts"] is None and w.reading.dead is None
    assert "answered ERROR to AT-TRV" in w.reading.detail
    clocks.t = 100.0
    assert w.check() is None and len(transport.sent) == 1
    assert len(changes) == 1


def test_a_modem_known_to_have_no_at_trv_is_never_asked() -> None:
    transport, clocks = ScriptedTransport(profile="usr5637"), Clocks()
    w, _ = watch(transport, clocks)
    w.check()
    assert transport.sent == []
    assert not w.available and w.reading.dead is None


def test_auto_waits_for_its_seed_and_takes_it_as_the_first_reading() -> None:
    transport, clocks = ScriptedTransport(48.1), Clocks()
    w, _ = watch(transport, clocks, check_s=60.0, wait_for_seed=True)
    assert w.check() is None and transport.sent == []
    clocks.t = 3.0
    w.seed(48.2)
    assert w.reading.volts == pytest.approx(48.2) and w.reading.dead is False
    clocks.t = 62.9
    assert w.check() is None  # the seed was this minute's reading
    clocks.t = 63.0
    assert w.check() is not None and transport.sent == ["AT-TRV"]
    assert transport.timeouts == [1.0]


@pytest.mark.parametrize(
    ("answer", "asks_later"), [("ERROR", False), (None, False), (NO_ANSWER, True)]
)
def test_auto_seed_without_a_voltage(answer: str | None, asks_later: bool) -> None:
    transport, clocks = ScriptedTransport(48.0), Clocks()
    w, _ = watch(transport, clocks, check_s=60.0, wait_for_seed=True)
    w.seed(answer)
    assert w.reading.volts is None and w.reading.dead is None
    clocks.t = 60.0
    assert (w.check() is not None) is asks_later


def test_set_active_during_a_reading_in_flight_is_counted() -> None:
    transport, clocks = ScriptedTransport(), Clocks()
    w, _ = watch(transport, clocks)

    def call_arrives() -> float:  # the one-in-flight race of the module docstring
        w.set_active(True)
        return 48.2

    transport.script.append(call_arrives)
    w.check()
    assert w.asked_while_active == 1


# --------------------------------------------------------------------------------------------
# On the simulated modem: the thread, the real transport
# --------------------------------------------------------------------------------------------


@pytest.mark.e2e
def test_sim_line_killed_and_given_back(tmp_path: Path) -> None:
    link = str(tmp_path / "modem")
    seen: list[LineVoltage] = []
    with (
        SimModem(identity="conexant", link_path=link) as sim,
        ModemTransport(link, command_timeout_s=1.0) as transport,
    ):
        assert transport.wait_connected(5), transport.status
        w = LineVoltageWatch(
            transport, check_s=0.2, recheck_s=0.1, quiet_s=0.0, on_change=seen.append
        )
        w.start()
        try:
            wait_for(lambda: w.reading.dead is False, 5, "a live line")
            assert w.reading.volts == pytest.approx(48.2, abs=0.1)
            sim.set_line_dead(True)
            wait_for(lambda: w.reading.dead is True, 5, "the dead line")
            assert w.reading.volts == pytest.approx(0.0)
            sim.set_line_dead(False)
            wait_for(lambda: w.reading.dead is False, 5, "the line back")
        finally:
            w.stop()
