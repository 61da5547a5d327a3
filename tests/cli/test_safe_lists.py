"""Safe lists (issue 14): an allow-list prefix that lets a whole country or a whole type of
number through needs --force and says what it would let through; CallGuard's shipped protected
numbers are never overwritten; names and notes are bounded and printable."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from callguard.cli import main
from callguard.core.lists import ImportItem, check_target, target_for
from callguard.core.numbers import prefix_scope
from callguard.errors import UsageError
from callguard.store.lists import Store


def run(cfg: Path, *argv: str) -> int:
    return main(["--config", str(cfg), *argv])


def state(cfg: Path) -> dict[str, bytes]:
    folder = cfg.parent / "state"
    if not folder.exists():
        return {}
    return {p.name: p.read_bytes() for p in folder.iterdir() if not p.name.endswith(".lock")}


@pytest.mark.parametrize(
    ("prefix", "words"),
    [
        ("+44", "every number in the UK"),
        ("+447", "every UK mobile"),
        ("+441", "every UK landline number starting 01"),
        ("+442", "every UK landline number starting 02"),
        ("+1", "the US, Canada"),
        ("+353", "every number in Ireland"),
        ("+3531", "every number in Ireland starting +353 1"),
    ],
)
def test_a_whole_country_or_type_is_named(prefix: str, words: str) -> None:
    scope = prefix_scope(prefix + "*")
    assert scope is not None and words in scope


@pytest.mark.parametrize("prefix", ["+44870", "+441707", "+4470", "+35312", "+12025"])
def test_a_narrower_prefix_is_not_flagged(prefix: str) -> None:
    assert prefix_scope(prefix) is None


@pytest.mark.parametrize("typed", ["+44", "07", "+447", "01", "02", "+353"])
def test_allow_add_of_a_broad_prefix_is_refused_without_force(
    cfg: Path, capsys: pytest.CaptureFixture[str], typed: str
) -> None:
    assert run(cfg, "allow", "add", typed, "--prefix") == 2
    err = capsys.readouterr().err
    assert "would let through every" in err and "--force" in err
    assert state(cfg) == {}
    assert run(cfg, "allow", "add", typed, "--prefix", "--force") == 0
    capsys.readouterr()
    assert run(cfg, "allow", "list", "--json") == 0
    assert len(json.loads(capsys.readouterr().out)) == 1


def test_the_block_list_takes_a_broad_prefix_without_a_word() -> None:
    check_target("block", target_for("+234", "GB", prefix=True))


def test_an_import_with_a_broad_allow_prefix_names_the_line(tmp_path: Path) -> None:
    store = Store(tmp_path / "state")
    items = [
        ImportItem(1, target_for("01707", "GB", True)),
        ImportItem(2, target_for("07", "GB", True)),
    ]
    with pytest.raises(UsageError, match=r"line 2: .*every UK mobile"):
        store.add_many("allow", items)
    assert not store.dir.exists() or store.entries("allow") == []


def test_protect_add_never_overwrites_a_shipped_entry(
    cfg: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(cfg, "protect", "add", "999", "--name", "My bank") == 2
    err = capsys.readouterr().err
    assert "protected already" in err and "back of the card" in err
    assert state(cfg) == {}
    assert run(cfg, "protect", "list", "--json") == 0
    [nine] = [e for e in json.loads(capsys.readouterr().out) if e["number"] == "999"]
    assert nine["name"] != "My bank" and nine.get("shipped") is True


def test_a_shipped_number_taken_off_comes_back_as_callguards(tmp_path: Path) -> None:
    store = Store(tmp_path / "state")
    store.remove("protect", target_for("999", "GB"))
    assert "999" not in {e.number for e in store.entries("protect")}
    result = store.add("protect", target_for("999", "GB"), name="My bank")
    assert result.entry.extra.get("shipped") is True and result.entry.name != "My bank"
    [nine] = [e for e in store.entries("protect") if e.number == "999"]
    assert nine.extra.get("shipped") is True


def test_an_import_to_the_protect_list_leaves_shipped_entries_alone(tmp_path: Path) -> None:
    store = Store(tmp_path / "state")
    items = [
        ImportItem(1, target_for("999", "GB"), "Mine"),
        ImportItem(2, target_for("0345 600 0000", "GB"), "Bank"),
    ]
    assert store.add_many("protect", items) == (1, 0)
    names = {e.number: e.name for e in store.entries("protect")}
    assert names["999"] != "Mine" and names["+443456000000"] == "Bank"


@pytest.mark.parametrize(
    ("name", "words"),
    [("x" * 61, "61 characters long; keep it to 60"), ("Sue\x1b[2J", "control character")],
    ids=["long", "control"],
)
def test_names_are_bounded_and_printable(
    cfg: Path, capsys: pytest.CaptureFixture[str], name: str, words: str
) -> None:
    assert run(cfg, "allow", "add", "01707 354000", "--name", name) == 2
    assert words in capsys.readouterr().err
    assert state(cfg) == {}
    assert run(cfg, "allow", "add", "01707 354000", "--name", "x" * 60) == 0


def test_a_long_note_is_refused(cfg: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(cfg, "block", "add", "0113 496 0000", "--note", "n" * 201) == 2
    assert "keep it to 200" in capsys.readouterr().err
