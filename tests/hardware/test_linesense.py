"""Line sensing: the pure debouncer, the GPIO source on gpiozero's mock pins, and the modem
source against a scripted transport and against the simulated modem over a real pty."""

from __future__ import annotations

import itertools
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from gpiozero.pins.mock import MockFactory  # type: ignore[import-untyped]
from helpers import ScriptedTransport, wait_for

from callguard.core.hook import Debouncer, Hook, HookChange
from callguard.errors import UsageError
from callguard.hardware import linesense
from callguard.hardware.linesense import GpioLineSense, LineSense, ModemLineSense, NoLineSense
from callguard.modem import profiles
from callguard.modem.protocol import CallerId
from callguard.modem.transport import CommandTimeout, ModemTransport, ModemUnavailable
from callguard.sim import SimModem

ON, OFF = Hook.ON, Hook.OFF


class FakeClock:
    def __init__(self, t: float = 0.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


# --------------------------------------------------------------------------------------------
# Debouncer: explicit times, no clock
# --------------------------------------------------------------------------------------------

Sample = tuple[float, bool | None]


def ringing(start: float, seconds: float, dark_first: bool = True) -> list[Sample]:
    """25 Hz ringing as the opto sees it: an edge every 20 ms, plus the 0.1 s timer's samples,
    which alias onto the dark half-cycles (the worst case)."""
    samples: list[Sample] = []
    for k in range(round(seconds / 0.02)):
        t = start + k * 0.02
        dark = (k % 2 == 0) == dark_first
        samples.append((t, dark))
        if k % 5 == 0 and dark:
            samples.append((t + 0.005, True))
    return samples


TIMER_TICKS = list(itertools.accumulate([0.0] + [0.1] * 11))  # 10 x 0.1 = 0.9999999999999999


@dataclass
class Case:
    name: str
    samples: list[Sample]
    expected: list[tuple[float, Hook, float]]  # (fed at, new state, began at)
    initial: Hook = ON
    hold_s: float = 1.0
    final: Hook | None = None
    notes: list[str] = field(default_factory=list)


CASES = [
    Case(
        "off-hook held 1 s is one change, dated when it began",
        [(0.0, False), (10.0, True), (10.5, True), (10.99, True), (11.0, True), (12.0, True)],
        [(11.0, OFF, 10.0)],
    ),
    Case(
        "a 0.5 s drop is ignored",
        [(0.0, False), (1.0, True), (1.25, True), (1.5, False), (3.0, False), (9.0, False)],
        [],
    ),
    Case(
        "a 0.5 s hook flash during a call is ignored",
        [(0.0, True), (1.0, False), (1.5, True), (5.0, True)],
        [],
        initial=OFF,
    ),
    Case("25 Hz ringing for 3 s is never off-hook", ringing(0.0, 3.0), [], final=ON),
    Case(
        "ringing, then answered: off-hook from the first dark sample after the last lit one",
        [*ringing(0.0, 2.0, dark_first=False), (2.0, True), (2.5, True), (3.0, True)],
        [(3.0, OFF, 1.98)],
    ),
    Case(
        "caller-ID polarity reversal (0.3 s dark) is ignored",
        [(0.0, False), (5.0, True), (5.1, True), (5.3, False), (20.0, False)],
        [],
    ),
    Case(
        "None samples change nothing: they neither confirm nor cancel",
        [(0.0, True), (0.5, None), (0.9, None), (1.0, True), (5.0, None), (60.0, None)],
        [(1.0, OFF, 0.0)],
    ),
    Case("only None: nothing", [(t / 10, None) for t in range(100)], [], final=ON),
    Case(
        "a call, then back on-hook: two changes",
        [(0.0, True), (1.0, True), (600.0, True), (600.5, False), (601.5, False)],
        [(1.0, OFF, 0.0), (601.5, ON, 600.5)],
    ),
    Case(
        "timer samples that add up to hold_s in floating point still confirm",
        [(t, True) for t in TIMER_TICKS],
        [(TIMER_TICKS[10], OFF, 0.0)],
    ),
    Case("hold_s 0 confirms at once", [(3.0, True)], [(3.0, OFF, 3.0)], hold_s=0.0),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_debouncer(case: Case) -> None:
    d = Debouncer(hold_s=case.hold_s, initial=case.initial)
    got = []
    for t, raw in case.samples:
        change = d.feed(t, raw)
        if change is not None:
            got.append((t, change.hook, change.at))
            assert d.state is change.hook
    assert got == case.expected
    if case.final is not None:
        assert d.state is case.final


def test_debouncer_discard_pending_forgets_a_change_not_yet_held() -> None:
    d = Debouncer()
    d.feed(0.0, True)
    assert d.pending == (OFF, 0.0)
    d.discard_pending()
    assert d.pending is None
    assert d.feed(1.0, True) is None  # starts again from here
    assert d.feed(2.0, True) == HookChange(OFF, 1.0)


def test_debouncer_rejects_a_negative_hold() -> None:
    with pytest.raises(ValueError, match="hold_s"):
        Debouncer(hold_s=-1)


# --------------------------------------------------------------------------------------------
# GPIO, on gpiozero's mock pins
# --------------------------------------------------------------------------------------------


@pytest.fixture
def factory() -> Iterator[MockFactory]:
    f = MockFactory()
    yield f
    f.reset()


def gpio(
    factory: MockFactory, clock: FakeClock, changes: list[HookChange], **kw: object
) -> GpioLineSense:
    options: dict[str, object] = {"pin_factory": factory, "clock": clock, "sample_interval_s": None}
    options.update(kw)
    sense = GpioLineSense(17, changes.append, **options)  # type: ignore[arg-type]
    sense.start()
    return sense


def test_gpio_off_hook_then_on_hook_dated_by_their_edges(factory: MockFactory) -> None:
    clock, changes = FakeClock(0.0), list[HookChange]()
    sense = gpio(factory, clock, changes)
    pin = factory.pin(17)
    try:
        assert sense.available and "GPIO17" in sense.detail
        pin.drive_high()  # lit: on-hook, ~50 V across the line
        clock.t = 10.0
        pin.drive_low()  # the edge is the first sample of off-hook
        clock.t = 10.9
        assert sense.sample() is None
        clock.t = 11.0
        assert sense.sample() == HookChange(OFF, 10.0)
        clock.t = 70.0
        pin.drive_high()
        clock.t = 71.0
        sense.sample()
        assert changes == [HookChange(OFF, 10.0), HookChange(ON, 70.0)]
        assert sense.hook is ON
    finally:
        sense.stop()


def test_gpio_active_low_wiring(factory: MockFactory) -> None:
    clock, changes = FakeClock(0.0), list[HookChange]()
    sense = gpio(factory, clock, changes, active_high=False)
    pin = factory.pin(17)
    try:
        pin.drive_low()  # lit pulls the pin low in this wiring
        clock.t = 5.0
        sense.sample()
        assert changes == []
        pin.drive_high()
        clock.t = 6.0
        sense.sample()
        assert changes == [HookChange(OFF, 5.0)]
        assert "low while the line is on-hook" in sense.detail
    finally:
        sense.stop()


def test_gpio_25_hz_ringing_and_timer_samples_on_dark_moments_are_not_off_hook(
    factory: MockFactory,
) -> None:
    clock, changes = FakeClock(0.0), list[HookChange]()
    sense = gpio(factory, clock, changes)
    pin = factory.pin(17)
    try:
        pin.drive_high()
        for k in range(150):  # 3 s: a new edge every 20 ms
            clock.t = 1.0 + k * 0.02
            if k % 2 == 0:
                pin.drive_low()
                sense.sample()  # the timer happens to land on a dark half-cycle
            else:
                pin.drive_high()
        clock.t = 4.0
        sense.sample()
        assert changes == [] and sense.hook is ON
    finally:
        sense.stop()


def test_gpio_pause_hides_the_line_and_starts_afresh_after(factory: MockFactory) -> None:
    clock, changes = FakeClock(0.0), list[HookChange]()
    sense = gpio(factory, clock, changes)
    pin = factory.pin(17)
    try:
        pin.drive_high()
        clock.t = 1.0
        pin.drive_low()  # pending off-hook from 1.0 ...
        with sense.pause():  # ... forgotten: CallGuard took the line itself
            for k in range(50):
                clock.t = 1.5 + k * 0.1
                sense.sample()
            assert changes == []
        clock.t = 7.0
        sense.sample()
        clock.t = 8.0
        sense.sample()
        assert changes == [HookChange(OFF, 7.0)]
    finally:
        sense.stop()


def test_gpio_timer_samples_a_level_that_has_no_more_edges(factory: MockFactory) -> None:
    changes: queue.Queue[HookChange] = queue.Queue()
    sense = GpioLineSense(17, changes.put, hold_s=0.2, pin_factory=factory, sample_interval_s=0.02)
    sense.start()
    pin = factory.pin(17)
    try:
        pin.drive_high()
        lifted = time.monotonic()
        pin.drive_low()  # one edge, then nothing: only the timer can confirm it
        change = changes.get(timeout=2.0)
        assert change.hook is OFF
        assert change.at == pytest.approx(lifted, abs=0.05)
    finally:
        sense.stop()


def test_gpio_stop_frees_the_pin(factory: MockFactory) -> None:
    clock = FakeClock()
    first = gpio(factory, clock, [])
    first.stop()
    assert first.device is None
    second = gpio(factory, clock, [])
    try:
        assert second.available
    finally:
        second.stop()


def test_gpio_pin_that_cannot_be_used_is_reported_not_raised(
    factory: MockFactory, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock()
    first = gpio(factory, clock, [])
    try:
        with caplog.at_level(logging.ERROR, logger="callguard.hardware.linesense"):
            second = gpio(factory, clock, [])
        assert not second.available
        assert second.detail.startswith("stopped: cannot use GPIO17")
        assert "line_sense.gpio_pin" in caplog.text
        second.stop()  # harmless
    finally:
        first.stop()


# --------------------------------------------------------------------------------------------
# The modem source, one poll at a time against a scripted transport (no threads)
# --------------------------------------------------------------------------------------------


def modem(
    transport: ScriptedTransport, changes: list[HookChange], clock: FakeClock, **kw: object
) -> ModemLineSense:
    return ModemLineSense(transport, changes.append, clock=clock, **kw)  # type: ignore[arg-type]


def test_modem_poll_reads_volts_and_dates_the_change_by_the_first_low_reading() -> None:
    transport = ScriptedTransport(48.2, 8.3, 8.1, 8.3, 47.9, 48.0, 48.1)
    clock, changes = FakeClock(), list[HookChange]()
    sense = modem(transport, changes, clock)
    for t in range(7):
        clock.t = 100.0 + t
        sense.poll()
    assert transport.sent == ["AT-TRV"] * 7
    assert changes == [HookChange(OFF, 101.0), HookChange(ON, 104.0)]
    assert sense.last_volts == 48.1


def test_modem_reversed_line_reads_negative_and_is_still_on_hook() -> None:
    transport = ScriptedTransport(-48.2, -47.0, -48.0)
    clock, changes = FakeClock(), list[HookChange]()
    sense = modem(transport, changes, clock)
    for t in range(3):
        clock.t = float(t)
        sense.poll()
    assert changes == []


def test_modem_threshold_is_configurable() -> None:
    transport = ScriptedTransport(18.0, 18.0)
    clock, changes = FakeClock(), list[HookChange]()
    sense = modem(transport, changes, clock, off_hook_below_v=15.0)
    for t in range(2):
        clock.t = float(t)
        sense.poll()
    assert changes == [] and "below 15 V" in sense.detail


def test_modem_failed_readings_are_no_readings() -> None:
    transport = ScriptedTransport(
        8.0, CommandTimeout("no reply"), ModemUnavailable("unplugged"), 8.0
    )
    clock, changes = FakeClock(), list[HookChange]()
    sense = modem(transport, changes, clock)
    for t in range(4):
        clock.t = t * 0.4
        sense.poll()
        if t in (1, 2):
            assert sense.last_volts is None
    assert changes == [HookChange(OFF, 0.0)]  # the gaps neither confirmed nor cancelled it
    assert sense.available


def test_modem_sends_nothing_while_disconnected() -> None:
    transport = ScriptedTransport()
    transport.status.connected = False
    sense = modem(transport, [], FakeClock())
    assert sense.poll() is None
    assert transport.sent == [] and sense.available


def test_modem_answer_that_is_not_a_voltage_is_ignored_with_one_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    transport = ScriptedTransport("LINE OK", "LINE OK")
    sense = modem(transport, [], FakeClock())
    with caplog.at_level(logging.WARNING, logger="callguard.hardware.linesense"):
        sense.poll()
        sense.poll()
    assert caplog.text.count("not a voltage") == 1
    assert sense.available


def test_modem_error_gives_up_for_good(caplog: pytest.LogCaptureFixture) -> None:
    transport = ScriptedTransport("ERROR", 8.0, profile="usr5637")
    sense = modem(transport, [], FakeClock())
    with caplog.at_level(logging.WARNING, logger="callguard.hardware.linesense"):
        sense.poll()
        sense.poll()
    assert transport.sent == ["AT-TRV"]
    assert not sense.available
    assert sense.detail == "stopped: this modem has no AT-TRV (USRobotics 5637?)"
    assert 'set line_sense.source = "gpio" with an opto sensor' in caplog.text


def test_modem_reading_taken_across_a_pause_is_not_used() -> None:
    transport = ScriptedTransport(8.0, 8.0, 8.0, 8.0)
    clock, changes = FakeClock(), list[HookChange]()
    sense = modem(transport, changes, clock)
    sense.poll()  # pending off-hook from 0.0
    with sense.pause():
        pass
    clock.t = 1.0
    sense.poll()  # the pause forgot it: pending from 1.0 now
    clock.t = 1.5
    sense.poll()
    assert changes == []
    clock.t = 2.0
    sense.poll()
    assert changes == [HookChange(OFF, 1.0)]


def test_modem_reading_in_flight_when_readings_stop_is_not_used() -> None:
    clock, changes = FakeClock(), list[HookChange]()

    def stop_reading() -> float:
        sense.set_active(False)  # the call ended while this AT-TRV was on its way
        return 8.0

    transport = ScriptedTransport(8.0, stop_reading, 8.0, 8.0, 8.0)
    sense = modem(transport, changes, clock)
    sense.set_active(True)
    sense.poll()
    clock.t = 1.0
    sense.poll()
    assert sense.last_volts == 8.0 and sense.hook is ON
    sense.set_active(True)
    for t in (1.5, 2.0, 2.5):
        clock.t = t
        sense.poll()
    assert changes == [HookChange(OFF, 1.5)]


def test_modem_pause_waits_for_an_at_trv_in_flight() -> None:
    in_command, release, paused = threading.Event(), threading.Event(), threading.Event()

    def slow() -> float:
        in_command.set()
        release.wait(2)
        return 48.0

    sense = modem(ScriptedTransport(slow), [], FakeClock())
    poller = threading.Thread(target=sense.poll)
    poller.start()
    assert in_command.wait(2)

    def voice_session() -> None:
        with sense.pause():
            paused.set()

    speaker = threading.Thread(target=voice_session)
    speaker.start()
    assert not paused.wait(0.2)  # the modem is still answering AT-TRV
    release.set()
    assert paused.wait(2)
    poller.join(2)
    speaker.join(2)


# --------------------------------------------------------------------------------------------
# The modem source against the simulated modem over a real pty (threads, real time)
# --------------------------------------------------------------------------------------------


def trv_times(sim: SimModem) -> list[float]:
    return [t for t, c in sim.commands if c.strip().upper() == "AT-TRV"]


@pytest.fixture
def link(tmp_path: Path) -> str:
    return str(tmp_path / "modem")


@pytest.fixture
def conexant(link: str) -> Iterator[tuple[SimModem, ModemTransport]]:
    with (
        SimModem(identity="conexant", link_path=link) as sim,
        ModemTransport(link, command_timeout_s=1.0) as transport,
    ):
        assert transport.wait_connected(5), transport.status
        yield sim, transport


def started(transport: ModemTransport) -> tuple[ModemLineSense, queue.Queue[HookChange]]:
    changes: queue.Queue[HookChange] = queue.Queue()
    sense = ModemLineSense(transport, changes.put, interval_s=0.2, hold_s=0.4)
    sense.start()
    return sense, changes


@pytest.mark.e2e
def test_sim_extension_lifted_then_put_down(conexant: tuple[SimModem, ModemTransport]) -> None:
    sim, transport = conexant
    sense, changes = started(transport)
    try:
        sense.set_active(True)
        wait_for(lambda: trv_times(sim), 2, "the first AT-TRV")
        sim.set_extension_off_hook(True)
        lifted = time.monotonic()
        change = changes.get(timeout=2.5)
        assert change.hook is OFF
        assert lifted - 0.05 <= change.at <= lifted + 0.2 + 0.1  # within one interval
        assert sense.last_volts is not None and sense.last_volts < 20
        sim.set_extension_off_hook(False)
        put_down = time.monotonic()
        change = changes.get(timeout=2.5)
        assert change.hook is ON
        assert put_down - 0.05 <= change.at <= put_down + 0.3
        assert changes.empty()
    finally:
        sense.stop()


@pytest.mark.e2e
def test_sim_inactive_and_paused_send_no_at_trv(
    conexant: tuple[SimModem, ModemTransport],
) -> None:
    sim, transport = conexant
    sense, changes = started(transport)
    try:
        time.sleep(0.5)
        assert trv_times(sim) == []  # started, but the daemon has not asked for readings
        sense.set_active(True)
        wait_for(lambda: len(trv_times(sim)) >= 2, 2, "polling")
        with sense.pause():
            paused_at = time.monotonic()
            sim.set_extension_off_hook(True)  # as the modem's own voice session would
            time.sleep(0.8)
            assert changes.empty()
            resumed_at = time.monotonic()
        assert [t for t in trv_times(sim) if paused_at <= t <= resumed_at] == []
        change = changes.get(timeout=2.5)  # seen afresh after the pause
        assert change.hook is OFF and change.at >= resumed_at
        sense.set_active(False)
        time.sleep(0.05)  # a poll already in flight may land
        quiet_from = time.monotonic()
        time.sleep(0.6)
        assert [t for t in trv_times(sim) if t >= quiet_from] == []
    finally:
        sense.stop()


@pytest.mark.e2e
def test_sim_usr_modem_gives_up_after_error(link: str, caplog: pytest.LogCaptureFixture) -> None:
    with (
        caplog.at_level(logging.WARNING, logger="callguard.hardware.linesense"),
        SimModem(identity="usr", link_path=link) as sim,
        ModemTransport(link, command_timeout_s=1.0) as transport,
    ):
        assert transport.wait_connected(5)
        sense, _ = started(transport)
        try:
            sense.set_active(True)
            wait_for(lambda: not sense.available, 3, "the source to give up")
            time.sleep(0.5)
            assert len(trv_times(sim)) == 1
            assert sense.detail == "stopped: this modem has no AT-TRV (USRobotics 5637?)"
            warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
            assert any("Conexant-based modem" in r.getMessage() for r in warnings)
        finally:
            sense.stop()


# --------------------------------------------------------------------------------------------
# Choosing a source
# --------------------------------------------------------------------------------------------


def test_build_none() -> None:
    sense: LineSense = linesense.build("none", transport=None, on_change=print)
    assert isinstance(sense, NoLineSense)
    assert sense.name == "none" and not sense.available
    assert sense.detail == "off: call durations are unknown and the grooming alert cannot work"
    sense.start()
    sense.set_active(True)
    with sense.pause():
        pass
    sense.stop()


def test_build_gpio_ignores_the_modem_options(factory: MockFactory) -> None:
    sense = linesense.build(
        "gpio",
        transport=None,
        on_change=print,
        gpio_pin=22,
        active_high=False,
        off_hook_below_v=20.0,
        pin_factory=factory,
    )
    assert isinstance(sense, GpioLineSense)
    assert sense.pin == 22 and not sense.active_high and sense.name == "gpio"


def test_build_modem_needs_a_transport_and_ignores_gpio_options() -> None:
    with pytest.raises(ValueError, match="needs the modem transport"):
        linesense.build("modem", transport=None, on_change=print)
    transport = ModemTransport("loop://")  # never started: nothing is opened
    sense = linesense.build(
        "modem", transport=transport, on_change=print, active_high=True, off_hook_below_v=25.0
    )
    assert isinstance(sense, ModemLineSense) and sense.off_hook_below_v == 25.0


def test_build_rejects_unknown_sources_and_options() -> None:
    with pytest.raises(UsageError, match="'modme'"):
        linesense.build("modme", transport=None, on_change=print)
    with pytest.raises(TypeError, match="hold_ms"):
        linesense.build("none", transport=None, on_change=print, hold_ms=5)


def test_build_gpio_needs_a_pin() -> None:
    with pytest.raises(ValueError, match=r"needs line_sense\.gpio_pin"):
        linesense.build("gpio", transport=None, on_change=print, gpio_pin=-1)


# --------------------------------------------------------------------------------------------
# Auto: the rule, then one decision at a time against a scripted transport (no threads)
# --------------------------------------------------------------------------------------------

CONEXANT, USR, GENERIC = profiles.CONEXANT, profiles.USR5637, profiles.GENERIC


@pytest.mark.parametrize(
    ("profile", "answer", "pin", "source", "reason"),
    [
        (CONEXANT, 48.0, -1, "modem", "reports the line voltage (AT-TRV: 48.0 V)"),
        (CONEXANT, 48.0, 17, "modem", "reports the line voltage"),  # the modem comes first
        (USR, None, -1, "none", "the USRobotics 5637 cannot report the line voltage (no AT-TRV)"),
        (USR, None, 17, "gpio", "the line-sense module on GPIO17 is set"),
        (GENERIC, "ERROR", -1, "none", "answered ERROR to AT-TRV"),
        (GENERIC, "ERROR", 4, "gpio", "on GPIO4"),
        (GENERIC, linesense.NO_ANSWER, None, "none", "did not answer AT-TRV"),
        (None, "'LINE OK', which is not a voltage,", -1, "none", "answered 'LINE OK', which"),
    ],
)
def test_choose_the_modem_then_a_set_module_then_none(
    profile: profiles.ModemProfile | None,
    answer: float | str | None,
    pin: int | None,
    source: str,
    reason: str,
) -> None:
    choice = linesense.choose(profile, answer, pin)
    assert choice.source == source and reason in choice.reason
    if source == "none":
        assert "no line-sense module is set (line_sense.gpio_pin)" in choice.reason


class AutoTransport(ScriptedTransport):
    """ScriptedTransport with what AutoLineSense also uses: connecting."""

    def __init__(self, *script: float | str | Exception, profile: str = "conexant") -> None:
        super().__init__(*script, profile=profile)
        self.connected = threading.Event()
        self.connected.set()

    def wait_connected(self, timeout_s: float) -> bool:
        return self.connected.wait(timeout_s)


@dataclass
class AutoRig:
    transport: AutoTransport
    clock: FakeClock
    sense: linesense.AutoLineSense
    changes: list[HookChange]
    decided: list[str]


MakeRig = Callable[..., AutoRig]


@pytest.fixture
def make_rig(factory: MockFactory) -> Iterator[MakeRig]:
    """``AutoLineSense`` as the daemon builds it, on a transport answering ``script``."""
    senses: list[LineSense] = []

    def make(*script: float | str | Exception, profile: str = "conexant", pin: int = -1) -> AutoRig:
        transport = AutoTransport(*script, profile=profile)
        clock, changes, decided = FakeClock(100.0), list[HookChange](), list[str]()
        sense = linesense.build(
            "auto",
            transport=transport,  # type: ignore[arg-type]
            on_change=changes.append,
            gpio_pin=pin,
            pin_factory=factory,
            clock=clock,
            on_decided=lambda: decided.append(sense.name),
        )
        assert isinstance(sense, linesense.AutoLineSense)
        senses.append(sense)
        return AutoRig(transport, clock, sense, changes, decided)

    yield make
    for sense in senses:
        sense.stop()


def test_auto_build_passes_options_to_the_source_it_chooses(make_rig: MakeRig) -> None:
    auto_rig = make_rig()
    with pytest.raises(ValueError, match='"auto" needs the modem transport'):
        linesense.build("auto", transport=None, on_change=print)
    sense = auto_rig.sense
    assert sense.name == "auto" and not sense.available
    assert sense.detail == "auto: not chosen yet (waiting for the modem to connect)"


def test_auto_chooses_the_modem_where_it_answers_at_trv(
    make_rig: MakeRig, caplog: pytest.LogCaptureFixture
) -> None:
    auto_rig = make_rig(48.2)
    sense, transport = auto_rig.sense, auto_rig.transport
    assert sense.may_ask()
    with caplog.at_level(logging.INFO, logger="callguard.hardware.linesense"):
        assert sense.decide()
    assert transport.sent == ["AT-TRV"] and transport.timeouts == [sense.probe_timeout_s]
    chosen = sense.chosen
    assert isinstance(chosen, ModemLineSense) and chosen.transport is transport
    assert chosen._clock is auto_rig.clock  # the daemon's clock reaches the chosen source
    assert sense.name == "modem" and sense.available
    assert sense.detail == (
        "line voltage from the modem (AT-TRV), off-hook below 20 V (auto: the modem (Conexant "
        "CX93010 family (Zoom 3095, StarTech and similar)) reports the line voltage (AT-TRV: "
        "48.2 V))"
    )
    assert auto_rig.decided == ["modem"]  # told once, after the choice is in force
    assert 'line_sense.source = "auto") chose modem' in caplog.text
    assert not sense.may_ask() and sense.decide()  # chosen once: never asked again
    assert transport.sent == ["AT-TRV"]


def test_auto_on_a_usr_without_a_module_is_none_with_the_fix(
    make_rig: MakeRig, caplog: pytest.LogCaptureFixture
) -> None:
    auto_rig = make_rig(profile="usr5637")
    sense, transport = auto_rig.sense, auto_rig.transport
    with caplog.at_level(logging.WARNING, logger="callguard.hardware.linesense"):
        assert sense.decide()
    assert transport.sent == []  # its profile has no AT-TRV: nothing to ask
    assert isinstance(sense.chosen, NoLineSense)
    assert sense.name == "none" and not sense.available
    assert "the USRobotics 5637 cannot report the line voltage (no AT-TRV)" in sense.detail
    assert "to fix: fit the line-sense module on GPIO 17" in sense.detail
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    message = record.getMessage()
    assert message.startswith('line sensing is off (line_sense.source = "auto"): the USRob')
    assert "the grooming light cannot work; fit the line-sense module on GPIO 17" in message
    assert "see Wiring in the README" in message
    assert auto_rig.decided == ["none"]


def test_auto_on_a_usr_with_a_module_set_uses_it(make_rig: MakeRig, factory: MockFactory) -> None:
    auto_rig = make_rig(profile="usr5637", pin=17)
    sense = auto_rig.sense
    assert sense.decide()
    chosen = sense.chosen
    assert isinstance(chosen, GpioLineSense) and chosen.pin == 17
    assert chosen.device is not None  # started: the pin is claimed
    assert sense.name == "gpio" and sense.available
    assert "opto sensor on GPIO17" in sense.detail and "(auto: the USRobotics" in sense.detail
    factory.pin(17).drive_low()  # dark: a phone is off-hook
    auto_rig.clock.t += 1.5
    chosen.sample()
    assert auto_rig.changes == [HookChange(OFF, 100.0)]  # dated by the edge


def test_auto_error_to_at_trv_means_no_modem_source(make_rig: MakeRig) -> None:
    auto_rig = make_rig("ERROR", profile="generic")
    assert auto_rig.sense.decide()
    assert auto_rig.transport.sent == ["AT-TRV"]
    assert auto_rig.sense.name == "none"
    assert "answered ERROR to AT-TRV" in auto_rig.sense.detail


def test_auto_no_answer_is_asked_again_later_then_counts_as_none(make_rig: MakeRig) -> None:
    auto_rig = make_rig(
        CommandTimeout("no reply"), CommandTimeout("no reply"), CommandTimeout("no reply")
    )
    sense, clock = auto_rig.sense, auto_rig.clock
    for attempt in (1, 2):
        assert sense.may_ask()
        assert not sense.decide()
        assert sense.name == "auto" and len(auto_rig.transport.sent) == attempt
        assert "did not answer AT-TRV; asking again" in sense.detail
        assert not sense.may_ask()  # not until retry_s has passed
        clock.t += sense.retry_s
    assert sense.may_ask() and sense.decide()
    assert sense.name == "none" and "did not answer AT-TRV" in sense.detail
    assert auto_rig.decided == ["none"]


def test_auto_modem_gone_while_asking_is_asked_again_when_back(make_rig: MakeRig) -> None:
    auto_rig = make_rig(ModemUnavailable("unplugged"), 47.0)
    sense = auto_rig.sense
    assert not sense.decide()
    assert sense.may_ask()  # not counted as a try: no waiting
    assert sense.decide() and sense.name == "modem"


def test_auto_asks_only_while_connected_and_the_line_is_quiet(make_rig: MakeRig) -> None:
    auto_rig = make_rig(48.0)
    sense, transport, clock = auto_rig.sense, auto_rig.transport, auto_rig.clock
    transport.status.connected = False
    assert not sense.may_ask()
    transport.status.connected = True
    assert sense.may_ask()
    sense.set_active(True)  # a call ringing or in progress
    assert not sense.may_ask()
    sense.set_active(False)
    transport.connected.clear()  # keeps the thread from asking: this test asks may_ask itself
    sense.start()  # listens to the modem's events
    transport.hear(CallerId("02079460123"))  # before the daemon has said a call is on
    assert not sense.may_ask()
    clock.t += sense.quiet_s - 0.1
    assert not sense.may_ask()
    clock.t += 0.1
    assert sense.may_ask()
    with sense.pause():  # CallGuard holds the line (a seizure)
        assert not sense.may_ask()
    assert sense.may_ask()
    assert transport.sent == []


def test_auto_passes_active_and_pause_to_the_chosen_source(make_rig: MakeRig) -> None:
    auto_rig = make_rig(48.0, 8.0)
    sense = auto_rig.sense
    sense.set_active(True)  # a call already on when the choice lands (the thread would wait)
    assert sense.decide()
    chosen = sense.chosen
    assert isinstance(chosen, ModemLineSense)
    assert chosen._active  # the state before the choice carried over
    sense.set_active(False)
    assert not chosen._active
    with sense.pause():
        assert chosen._paused == 1
    assert chosen._paused == 0


def test_auto_pause_waits_for_its_at_trv_in_flight(make_rig: MakeRig) -> None:
    auto_rig = make_rig()
    in_command, release, paused = threading.Event(), threading.Event(), threading.Event()

    def slow() -> float:
        in_command.set()
        release.wait(2)
        return 48.0

    auto_rig.transport.script.append(slow)  # type: ignore[arg-type]
    sense = auto_rig.sense
    asker = threading.Thread(target=sense.decide)
    asker.start()
    assert in_command.wait(2)

    def seize() -> None:
        with sense.pause():
            paused.set()

    seizer = threading.Thread(target=seize)
    seizer.start()
    assert not paused.wait(0.2)  # the modem is still answering AT-TRV
    release.set()
    assert paused.wait(2)
    asker.join(2)
    seizer.join(2)
    assert sense.name == "modem"


def test_auto_thread_waits_for_the_modem_then_chooses_once(factory: MockFactory) -> None:
    transport = AutoTransport(48.0)
    transport.connected.clear()
    transport.status.connected = False
    decided = threading.Event()
    sense = linesense.build(
        "auto",
        transport=transport,  # type: ignore[arg-type]
        on_change=print,
        pin_factory=factory,
        on_decided=decided.set,
    )
    sense.start()
    try:
        assert not decided.wait(0.3) and transport.sent == []  # no modem yet: nothing asked
        transport.status.connected = True
        transport.connected.set()
        assert decided.wait(3)
        assert sense.name == "modem" and transport.sent == ["AT-TRV"]
        assert transport.listeners == []  # chosen: no longer listening for calls coming in
    finally:
        sense.stop()


def test_auto_stops_promptly_before_the_modem_connects() -> None:
    transport = AutoTransport()
    transport.connected.clear()
    transport.status.connected = False
    sense = linesense.build("auto", transport=transport, on_change=print)  # type: ignore[arg-type]
    sense.start()
    started = time.monotonic()
    sense.stop()
    assert time.monotonic() - started < 1.0
    assert sense.name == "auto" and transport.sent == []
