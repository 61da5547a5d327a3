"""The writer: the daemon's disk writes, off the main loop (issue 13). No thread needed here:
``flush()`` writes what waits on the test's thread, with an injected clock."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from callguard.daemon.writer import STATUS_EVERY_S, Writer


class Disk:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.statuses: list[dict[str, Any]] = []
        self.alerts: list[dict[str, Any]] = []
        self.full = False

    def append_call(self, call: dict[str, Any]) -> None:
        if self.full:
            raise OSError(28, "No space left on device")
        self.calls.append(call)

    def hooked(self, append_call: Any = None, **hooks: Any) -> Writer:
        """A writer onto this disk with its own ``append_call`` or log hooks (opening,
        closing), on the real clock."""
        return Writer(
            append_call=append_call or self.append_call,
            write_status=self.statuses.append,
            raise_alert=self.alerts.append,
            **hooks,
        )

    def writer(self, clock: dict[str, float]) -> Writer:
        return Writer(
            append_call=self.append_call,
            write_status=self.statuses.append,
            raise_alert=self.alerts.append,
            monotonic=lambda: clock["t"],
        )


def test_records_are_kept_in_order_until_the_card_takes_them() -> None:
    disk, clock = Disk(), {"t": 0.0}
    writer = disk.writer(clock)
    disk.full = True
    for i in range(3):
        writer.log_call({"call_id": i})
    writer._write_once(final=False)
    assert disk.calls == [] and writer.unlogged == 3 and writer.failing
    disk.full = False
    writer._write_once(final=False)  # the retry is not due yet: nothing hammers a full card
    assert writer.unlogged == 3
    clock["t"] = 100.0
    writer._write_once(final=False)
    assert [c["call_id"] for c in disk.calls] == [0, 1, 2] and writer.unlogged == 0
    assert writer.failing is None


def test_only_the_latest_status_is_written_and_at_most_a_few_times_a_second() -> None:
    disk, clock = Disk(), {"t": 10.0}
    writer = disk.writer(clock)
    writer.status({"n": 1})
    writer._write_once(final=False)
    for n in range(2, 50):  # a flood of RINGs: many changes
        writer.status({"n": n})
        writer._write_once(final=False)
    assert disk.statuses == [{"n": 1}]  # nothing more within STATUS_EVERY_S
    clock["t"] += STATUS_EVERY_S
    writer._write_once(final=False)
    assert disk.statuses == [{"n": 1}, {"n": 49}]  # the newest, once


def test_stop_writes_what_waits() -> None:
    disk, clock = Disk(), {"t": 0.0}
    writer = disk.writer(clock)
    writer.start()
    writer.log_call({"call_id": 7})
    writer.alert({"number": "+441134960000"})
    writer.status({"daemon": "stopped"})
    writer.stop()
    assert disk.calls == [{"call_id": 7}] and disk.alerts == [{"number": "+441134960000"}]
    assert disk.statuses[-1] == {"daemon": "stopped"}


def test_stop_closes_the_log_after_the_last_write_on_the_writers_thread() -> None:
    disk, events = Disk(), []

    def append_call(call: dict[str, Any]) -> None:
        events.append(("append", threading.current_thread().name))

    writer = disk.hooked(
        append_call, close_log=lambda: events.append(("close", threading.current_thread().name))
    )
    writer.start()
    writer.log_call({"call_id": 1})
    writer.stop()
    assert events[-2:] == [("append", "writer"), ("close", "writer")]
    assert events.count(("close", "writer")) == 1


def test_the_log_is_opened_first_on_the_writers_thread_and_start_waits_for_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    disk, events = Disk(), []
    opening = threading.Event()

    def open_log() -> None:
        opening.wait(5)  # a slow card
        events.append(("open", threading.current_thread().name))

    def append_call(call: dict[str, Any]) -> None:
        events.append(("append", threading.current_thread().name))

    writer = disk.hooked(append_call, open_log=open_log)
    writer.start(wait_open_s=0.0)  # does not wait: returns with the log still opening
    assert events == []
    writer.log_call({"call_id": 1})
    opening.set()
    writer.stop()
    assert events == [("open", "writer"), ("append", "writer")]

    def fail() -> None:
        raise OSError(30, "Read-only file system")

    failing = disk.hooked(append_call, open_log=fail)
    failing.start(wait_open_s=5.0)  # returns once the open has failed, not after 5 s
    failing.log_call({"call_id": 2})
    failing.stop()  # and the writer works on: the append tries the log again
    assert events[-1] == ("append", "writer")
    assert "could not open the call log" in caplog.text


def test_a_writer_never_started_closes_the_log_at_stop_and_a_failing_close_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    disk, closed = Disk(), []
    writer = disk.hooked(close_log=lambda: closed.append(1))
    writer.log_call({"call_id": 1})
    writer.flush()
    writer.stop()
    assert disk.calls == [{"call_id": 1}] and closed == [1]

    def fail() -> None:
        raise OSError(5, "Input/output error")

    failing = disk.hooked(close_log=fail)
    failing.start()
    failing.stop()  # does not raise
    assert "could not close the call log" in caplog.text
