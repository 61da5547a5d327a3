"""Whether the system clock can be trusted (issue 14, item 7)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from callguard.clock import RELEASED, SystemClock, kernel_synchronised

NOW = dt.datetime(2027, 3, 1, 9, 0, tzinfo=dt.UTC)


def clock(kernel: bool | None, tmp_path: Path, flag: bool = False, now: dt.datetime = NOW):  # type: ignore[no-untyped-def]
    path = tmp_path / "synchronized"
    if flag:
        path.touch()
    return SystemClock(kernel=lambda: kernel, flag=path, wall=lambda: now)


def test_the_kernel_decides_where_it_can_be_asked(tmp_path: Path) -> None:
    assert clock(True, tmp_path).check().synchronised
    state = clock(False, tmp_path, flag=True).check()
    assert not state.synchronised and "quiet hours are off" in state.detail


def test_timesyncds_flag_counts_only_where_the_kernel_cannot_be_asked(tmp_path: Path) -> None:
    assert not clock(None, tmp_path, flag=False).check().synchronised
    assert clock(None, tmp_path, flag=True).check().synchronised


@pytest.mark.parametrize("year", [1970, RELEASED.year - 2])
def test_a_clock_from_long_ago_is_wrong_whatever_else_says(tmp_path: Path, year: int) -> None:
    state = clock(True, tmp_path, now=NOW.replace(year=year)).check()
    assert not state.synchronised and f"{year}-03-01" in state.detail


def test_the_real_kernel_answers_on_linux() -> None:
    assert kernel_synchronised() in (True, False)
