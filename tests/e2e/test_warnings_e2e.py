"""End to end: spoken warnings in the room and down the line, `callguard run` on the simulator."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import ConfigData, DaemonUnit, merged, played, room_recorder, wait_for

from callguard.audio import wavconv
from callguard.sim import Call

pytestmark = pytest.mark.e2e

SCALE = 0.25  # UK: caller ID, 0.125 s, then a RING every 0.75 s; a call is over 2 s after its last

SHORT_WARNING = "This is CallGuard. Police and banks never ask for your PIN."


class Unit(DaemonUnit):
    def __init__(self, tmp: Path, extra: ConfigData | None = None) -> None:
        command, self.played = room_recorder(tmp)
        warning = {"room_command": command, "text": SHORT_WARNING, "say_place": False}
        super().__init__(tmp, merged({"warning": warning}, extra), scale=SCALE)

    def start(self) -> Unit:
        super().start()
        cache = self.tmp / "state" / "cache"
        wait_for(lambda: list(cache.glob("room-*.wav")), 20, "the prompts to be prepared")
        return self

    def plays(self) -> list[tuple[Path, float]]:
        return played(self.played)


@pytest.fixture
def unit(tmp_path: Path) -> Iterator[Unit]:
    with Unit(tmp_path) as u:
        yield u


def test_unknown_call_plays_a_warning_in_the_room_within_1_s(unit: Unit) -> None:
    handle = unit.sim.place_call(Call(number="P", rings=2))
    played = wait_for(unit.plays, 10, "the room command to run")
    record = handle.wait(30)
    path, when = played[0]
    assert record.cid_sent_at is not None
    assert 0 <= when - record.cid_sent_at < 1.0, when - record.cid_sent_at
    audio = wavconv.read_wav(path)
    assert audio.seconds > 2.0 and wavconv.rms(audio) > 0.01  # speech, not silence


def test_allowed_call_plays_nothing(unit: Unit) -> None:
    assert unit.cli("allow", "add", "01707 354000").returncode == 0
    before = len(unit.store.calls())
    unit.sim.place_call(Call(number="01707354000", rings=2)).wait(30)
    wait_for(lambda: len(unit.store.calls()) > before, 20, "the call in the log")
    assert unit.plays() == []


def test_answered_unknown_call_hears_the_warning_on_the_line(tmp_path: Path) -> None:
    with Unit(tmp_path, {"warning": {"line": True}, "line_sense": {"source": "modem"}}) as u:
        # 10 s of conversation; the warning is over about 6 s after the phone is answered
        handle = u.sim.place_call(Call(number="02079460123", answer_after_rings=1, talk_s=40))
        session = wait_for(lambda: u.sim.voice_sessions, 20, "the modem to speak on the line")[0]
        record = handle.wait(60)
        assert session.nbytes >= 2 * 8000
        rate = session.nbytes / (session.ended - session.started)
        assert 7000 < rate < 9000, rate  # paced at real time, not dumped
        # the modem left the line; the resident's call went on to its natural end
        assert record.outcome == "answered" and record.ended_at is not None
        assert record.ended_at > session.ended + 1.0
        hooks_after = [on for t, on in u.sim.hook_events if t >= session.ended]
        assert hooks_after and hooks_after[-1] is False
        wait_for(u.store.calls, 20, "the call in the log")
        logged = u.calls()[-1]
        assert logged["answered"] is True and "warning spoken down the line" in logged["notes"]
