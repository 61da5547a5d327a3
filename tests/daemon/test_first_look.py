"""The seize path's first look (issue 13): a number the lists block outright is seized before
the call machine parses it; the full screening follows and has the last word."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from faults import Fault, FaultPlan, FaultySerialFactory
from helpers import Running, wait_for

import callguard.core.call as call_module
from callguard.core import screening
from callguard.core.lists import target_for
from callguard.daemon.app import Daemon
from callguard.modem.transport import ModemTransport
from callguard.sim import Call
from callguard.store import index as index_module
from callguard.store.index import ListIndex
from callguard.store.lists import Store

pytestmark = pytest.mark.e2e

SCAM = "01134960000"


@pytest.fixture
def settled_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """A folder is trusted as soon as it is looked at (no waiting out the file-time tick)."""
    monkeypatch.setattr(index_module, "FOLDER_SETTLE_NS", 0)


def ready(r: Running) -> None:
    """The daemon started and quiet: the lists read and the storage folder settled (the first
    look trusts them), and line sensing's start-up question (``AT-TRV``) answered, so the modem
    is free the moment a caller ID comes (the reader's look never waits for it)."""
    wait_for(r.daemon.index.folder_unchanged, 5, "the lists read and the folder settled")
    voltage = r.daemon.voltage
    assert voltage is not None
    wait_for(lambda: voltage.reading.checked is not None, 5, "line sensing's first reading")


def test_the_folder_signature_follows_every_list_write(tmp_path: Path, settled_at_once: None):
    store = Store(tmp_path / "state")
    store.add("block", target_for(SCAM, "GB"), name="scam")
    index = ListIndex(store)
    assert not index.folder_unchanged()  # nothing read yet
    index.refresh()
    assert index.folder_unchanged()
    store.add("allow", target_for("01707354000", "GB"), name="Sue")
    assert not index.folder_unchanged()  # the rename shows in one stat()
    assert index.refresh()
    assert index.folder_unchanged()
    (store.dir / "unrelated").write_text("x")  # another file: noted, nothing reloaded
    assert not index.folder_unchanged()
    assert not index.refresh()
    assert index.folder_unchanged()


def test_a_folder_changed_within_the_tick_is_not_trusted(tmp_path: Path) -> None:
    store = Store(tmp_path / "state")
    store.add("block", target_for(SCAM, "GB"), name="scam")
    index = ListIndex(store)
    index.refresh()  # the write a moment ago: within FOLDER_SETTLE_NS
    assert not index.folder_unchanged()


@pytest.mark.parametrize("where", ["reader", "loop"])
def test_a_blocked_number_is_seized_before_it_is_parsed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, settled_at_once: None, where: str
) -> None:
    """On the modem's reader as the caller ID arrives, or (the modem busy with a command just
    then: the reader's look stood aside) first thing on the daemon's loop."""
    Store(tmp_path / "state").add("block", target_for(SCAM, "GB"), name="scam")
    line_taken_at_parse: list[bool] = []
    if where == "loop":
        monkeypatch.setattr(ModemTransport, "_seize_on_first_look", lambda *args: None)
    seized_on: list[str] = []  # the thread each ATH1 was written from
    write = ModemTransport._write

    def watched_write(transport: ModemTransport, link: Any, data: bytes) -> None:
        if data.upper().startswith(b"ATH1"):
            seized_on.append(threading.current_thread().name)
        write(transport, link, data)

    monkeypatch.setattr(ModemTransport, "_write", watched_write)
    with Running(tmp_path) as r:
        parse = call_module.from_caller_id

        def watched(*args: Any, **kwargs: Any) -> Any:
            line_taken_at_parse.append(r.daemon.actions.off_hook)
            return parse(*args, **kwargs)

        monkeypatch.setattr(call_module, "from_caller_id", watched)
        ready(r)
        seizes = len([c for _, c in r.sim.commands if c.upper() == "ATH1"])
        record = r.sim.place_call(Call(number=SCAM, rings=3)).wait(30)
        assert record.outcome == "seized" and record.rings == []
        assert line_taken_at_parse == [True]
        # one ATH1: the call machine's own Seize found the line taken
        assert len([c for _, c in r.sim.commands if c.upper() == "ATH1"]) == seizes + 1
        assert len(seized_on) == 1 and seized_on[0].startswith("modem-reader") == (
            where == "reader"
        )
        unknown = r.sim.place_call(Call(number="01707354000", rings=1)).wait(30)
        assert unknown.outcome != "seized"
        assert line_taken_at_parse == [True, False]


def test_a_first_look_that_screening_overrules_puts_the_line_down(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, settled_at_once: None
) -> None:
    """The safety net: if the first look ever took the line for a caller the full screening
    lets ring, the line is put down at once (that call is lost: a seized line answers it) and
    the next call is screened as usual."""
    Store(tmp_path / "state").add("allow", target_for("01707354000", "GB"), name="Sue")
    monkeypatch.setattr(screening, "blocks_outright", lambda key, lists, clock: True)
    with Running(tmp_path) as r:
        ready(r)
        record = r.sim.place_call(Call(number="01707354000", rings=2)).wait(30)
        r.wait_seen("released")
        assert record.seized_at is not None and record.released_at is not None
        assert not r.sim.off_hook
        assert not r.daemon.actions.off_hook and not r.daemon.actions.seized_first
        monkeypatch.setattr(screening, "blocks_outright", lambda key, lists, clock: False)
        again = r.sim.place_call(Call(number="01707354000", rings=2)).wait(30)
        assert len(again.rings) == 2 and again.seized_at is None


def test_an_error_after_the_reader_took_the_line_still_puts_it_down(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, settled_at_once: None
) -> None:
    """The reader takes the line before the daemon's loop hears of the call: whatever goes
    wrong in handling it then, the daemon knows the line is held and puts it down."""
    Store(tmp_path / "state").add("block", target_for(SCAM, "GB"), name="scam")

    def broken(*args: Any) -> list[Any]:
        raise RuntimeError("a bug in handling the call")

    with Running(tmp_path) as r:
        monkeypatch.setattr(Daemon, "_modem_event", broken)
        ready(r)
        record = r.sim.place_call(Call(number=SCAM, rings=3)).wait(30)
        assert record.seized_at is not None and record.released_at is not None
        assert not r.sim.off_hook
        wait_for(lambda: not r.daemon.actions.off_hook, 5, "the daemon to see the line down")


def test_a_first_look_the_modem_did_not_confirm_is_put_down_if_the_call_may_ring(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, settled_at_once: None
) -> None:
    """The modem never answers the first look's ATH1 (it may have taken the line all the
    same) and screening lets the call ring: ATH0, and the daemon does not think the line held."""
    Store(tmp_path / "state").add("allow", target_for("01707354000", "GB"), name="Sue")
    monkeypatch.setattr(screening, "blocks_outright", lambda key, lists, clock: True)
    plan = FaultPlan()

    def transport(port: str, **options: Any) -> ModemTransport:
        return ModemTransport(port, serial_factory=FaultySerialFactory(plan), **options)

    with Running(tmp_path, transport_factory=transport) as r:
        ready(r)
        plan.add(Fault("write", action="swallow", containing=b"ATH1\r", times=1))
        r.sim.place_call(Call(number="01707354000", rings=2)).wait(30)
        wait_for(lambda: not r.daemon.actions.off_hook, 10, "the daemon to put the line down")
        line = [w for w in plan.writes if w in (b"ATH0\r", b"ATH1\r")]
        after = line[len(line) - line[::-1].index(b"ATH1\r") :]
        assert after and set(after) == {b"ATH0\r"}  # (the unheard ATH1 costs one ATH0 a retry)
        assert not r.sim.off_hook
        assert not r.daemon.actions.seized_first and not r.daemon.actions.first_unsettled
