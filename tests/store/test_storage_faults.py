"""The store on a sick card and in a hostile folder: read-only, full, damaged, symlinked.

Issue 11 ("Hold the line"): a daemon restarted on a card the kernel remounted read-only must
still screen with every list; a full card loses nothing already saved; a deeply nested or
UTF-16 lists file is judged (and repaired) the same way by the daemon and the CLI; and
``sudo callguard ...`` follows no symbolic link in the service's folder.

Two ways to make a folder read-only: :class:`ReadOnlyFolder` injects ``EROFS`` (as the kernel
does: a name that exists given to ``mkdir`` is ``EEXIST``) into every call that would change
the folder, and records each attempt, so a test can assert that a read attempts none; and a
real read-only bind mount in a private mount namespace (``unshare -m``, or ``unshare -rm`` for
a non-root user), run in a subprocess, skipped where that is not possible.
"""

from __future__ import annotations

import builtins
import contextlib
import errno
import io
import json
import os
import resource
import shutil
import stat
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import write_config
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import callguard
from callguard.cli import main
from callguard.core.lists import target_for
from callguard.errors import CallGuardError
from callguard.store import jsonfile as storage_module
from callguard.store.files import StoreError, file_signature
from callguard.store.index import ListIndex
from callguard.store.jsonfile import Recovery, parse_tables
from callguard.store.lists import Store

DAUGHTER = "+441707354000"
SON = "+447700900123"
SCAM = "+441134960000"
STRANGER = "+441632960999"
ROOT_ONLY = os.geteuid() == 0
SERVICE_UID = 65534  # nobody: the folder's owner, as the callguard user owns /var/lib/callguard


def t(text: str, prefix: bool = False):  # type: ignore[no-untyped-def]
    return target_for(text, "GB", prefix)


def seed(folder: Path) -> Store:
    """Lists, a call, a status and an alert; allow.json.bak holds the daughter only."""
    store = Store(folder)
    store.add("allow", t("01707 354000"), name="Daughter")
    store.add("allow", t("07700 900123"), name="Son")
    store.add("block", t("0113 496 0000"), name="scam")
    store.add("block", t("0870", True), name="0870 numbers")
    store.add("protect", t("0306 999 0123"), name="Drama Bank")
    store.remove("protect", t("999"))  # a shipped number taken off
    store.append_call({"started": store.clock().isoformat(), "number": SCAM})
    store.write_status({"state": "idle"})
    store.raise_alert({"number": SCAM})
    Path(folder, "allow.json.bak").write_bytes(
        json.dumps({"allow": {"1": {"number": DAUGHTER, "name": "Daughter"}}}).encode()
    )
    return store


def snapshot(folder: Path) -> dict[str, tuple[Any, ...]]:
    """Every name in the folder with its bytes (or link target), mode, owner and inode."""
    out: dict[str, tuple[Any, ...]] = {}
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        st_ = entry.stat(follow_symlinks=False)
        if stat.S_ISLNK(st_.st_mode):
            content: Any = os.readlink(entry.path)
        elif stat.S_ISREG(st_.st_mode):
            content = Path(entry.path).read_bytes()
        else:
            content = None
        out[entry.name] = (content, st_.st_mode, st_.st_uid, st_.st_gid, st_.st_ino)
    return out


def pack(doc: dict[str, Any]) -> tuple[str, str]:
    return str(doc.get("number", "")), str(doc.get("name") or "")


# -- a read-only folder, injected ------------------------------------------------------------

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


class ReadOnlyFolder:
    """Every call that would change ``folder`` fails with EROFS; ``attempts`` lists them."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, folder: Path) -> None:
        self.folder = os.path.realpath(folder)
        self.attempts: list[str] = []
        self._real = {name: getattr(os, name) for name in ("open", "mkdir", "access")}
        self._real_open = builtins.open
        for name in ("rename", "replace", "link", "symlink", "unlink", "remove", "rmdir"):
            monkeypatch.setattr(os, name, self._refuse_paths(name, getattr(os, name)))
        for name in ("chmod", "chown", "utime", "truncate", "mkfifo"):
            monkeypatch.setattr(os, name, self._refuse_paths(name, getattr(os, name)))
        monkeypatch.setattr(os, "open", self._open)
        monkeypatch.setattr(os, "mkdir", self._mkdir)
        monkeypatch.setattr(os, "access", self._access)
        monkeypatch.setattr(builtins, "open", self._builtin_open)
        monkeypatch.setattr(io, "open", self._builtin_open)

    def inside(self, path: Any) -> bool:
        if isinstance(path, int):
            return False
        name = os.path.abspath(os.fsdecode(path))
        real = os.path.join(os.path.realpath(os.path.dirname(name)), os.path.basename(name))
        return real == self.folder or real.startswith(self.folder + os.sep)

    def _refuse(self, what: str, path: Any) -> OSError:
        self.attempts.append(f"{what} {os.path.basename(os.fsdecode(path))}")
        return OSError(errno.EROFS, os.strerror(errno.EROFS), os.fsdecode(path))

    def _refuse_paths(self, what: str, real: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            for path in args[:2]:
                if isinstance(path, str | bytes | os.PathLike) and self.inside(path):
                    raise self._refuse(what, path)
            return real(*args, **kwargs)

        return call

    def _open(self, path: Any, flags: int, mode: int = 0o777, **kwargs: Any) -> int:
        if flags & _WRITE_FLAGS and self.inside(path):
            if flags & os.O_CREAT and flags & os.O_EXCL and os.path.lexists(path):
                raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), os.fsdecode(path))
            raise self._refuse("open for writing", path)
        return int(self._real["open"](path, flags, mode, **kwargs))

    def _builtin_open(self, file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        if any(c in mode for c in "wax+") and self.inside(file):
            raise self._refuse("open for writing", file)
        return self._real_open(file, mode, *args, **kwargs)

    def _mkdir(self, path: Any, mode: int = 0o777, **kwargs: Any) -> None:
        if self.inside(path):
            if os.path.lexists(path):
                raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), os.fsdecode(path))
            raise self._refuse("mkdir", path)
        self._real["mkdir"](path, mode, **kwargs)

    def _access(self, path: Any, mode: int, **kwargs: Any) -> bool:
        if mode & os.W_OK and self.inside(path):
            return False  # access(2) says EROFS for W_OK on a read-only file system
        return bool(self._real["access"](path, mode, **kwargs))


@pytest.fixture
def read_only(monkeypatch: pytest.MonkeyPatch) -> Callable[[Path], ReadOnlyFolder]:
    return lambda folder: ReadOnlyFolder(monkeypatch, folder)


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / "state"


# -- A: reading needs no write access ----------------------------------------------------------


def test_a_read_only_folder_gives_the_daemon_every_list_and_attempts_no_write(
    state: Path, read_only: Callable[[Path], ReadOnlyFolder]
) -> None:
    seed(state)
    for lock in state.glob("*.lock"):
        lock.unlink()  # a fresh boot: reading must not need them
    stale = state / "allow.json.tmp-999-deadbeef"
    stale.write_text("{")
    os.utime(stale, (0, 0))  # a dead writer's, long ago
    before = snapshot(state)
    folder = read_only(state)

    store = Store(state)  # the daemon's, as it starts
    index = ListIndex(store)
    assert index.refresh() is True
    assert index.sizes()["allow"] == 2 and index.sizes()["block"] == 2
    daughter = index.match("allow", DAUGHTER)
    assert daughter is not None and daughter.entry.name == "Daughter"
    assert index.match("allow", SON) is not None
    assert index.match("block", SCAM) is not None
    prefix = index.match("block", "+448701234567")
    assert prefix is not None and prefix.how == "prefix"
    assert index.match("protect", "159") is not None
    assert index.match("protect", "999") is None  # the family's removal is still honoured
    assert index.refresh() is False
    assert {e.number for e in store.all_entries()["allow"]} == {DAUGHTER, SON}
    assert [e.number for e in store.entries("block")] == [SCAM, "+44870*"]
    assert store.find(DAUGHTER).keys() == {"allow"}
    assert [c["number"] for c in store.calls()] == [SCAM]
    assert store.read_status() == {"state": "idle"}
    assert store.alert_active() is True
    lists = os.lstat(state / "allow.json")
    assert file_signature(state / "allow.json") == (lists.st_ino, lists.st_size, lists.st_mtime_ns)
    assert folder.attempts == []
    assert snapshot(state) == before


@pytest.mark.parametrize(
    "damage", [b"[" * 100_000, b'{"allow": {"1": ', b"\x00\x00"], ids=["deep", "cut", "nul"]
)
def test_damaged_lists_in_a_read_only_folder_are_read_from_the_backup_moving_nothing(
    state: Path,
    read_only: Callable[[Path], ReadOnlyFolder],
    caplog: pytest.LogCaptureFixture,
    damage: bytes,
) -> None:
    seed(state)
    (state / "allow.json").write_bytes(damage)
    before = snapshot(state)
    read_only(state)
    recoveries: list[Recovery] = []
    store = Store(state, on_recovery=recoveries.append)

    index = ListIndex(store)
    index.refresh()
    assert index.match("allow", DAUGHTER) is not None  # the backup, read where it is
    assert index.match("allow", SON) is None
    assert index.refresh() is False  # reported once, not on every call
    [recovery] = recoveries
    assert recovery.in_place is not None and "read-only" in recovery.in_place
    assert recovery.moved_to is None
    assert recovery.restored_from == state / "allow.json.bak"
    message = recovery.message()
    assert str(state / "allow.json") in message and "read-only" in message
    assert "nothing else was moved" in message
    assert message in caplog.text
    assert [e.number for e in store.entries("allow")] == [DAUGHTER]  # the CLI reads the same
    with pytest.raises(CallGuardError, match="read-only"):
        store.add("allow", t("01707 354001"))  # a change cannot be saved, and says why
    assert snapshot(state) == before


def test_once_the_card_is_writable_again_the_next_read_repairs_the_file(state: Path) -> None:
    seed(state)
    (state / "allow.json").write_bytes(b"[" * 100_000)
    with pytest.MonkeyPatch.context() as mp:
        ReadOnlyFolder(mp, state)
        assert [e.number for e in Store(state).entries("allow")] == [DAUGHTER]
    recoveries: list[Recovery] = []
    assert [e.number for e in Store(state, on_recovery=recoveries.append).entries("allow")] == [
        DAUGHTER
    ]
    [recovery] = recoveries
    assert recovery.in_place is None and recovery.moved_to is not None
    assert recovery.moved_to.read_bytes() == b"[" * 100_000
    assert (state / "allow.json").read_bytes() == (state / "allow.json.bak").read_bytes()


# -- A and E on a real read-only mount -------------------------------------------------------


def _namespace_prefix() -> list[str] | None:
    """A command prefix running the rest in a private mount namespace, or None."""
    unshare = shutil.which("unshare")
    if unshare is None:
        return None
    prefix = [unshare, "-m"] if ROOT_ONLY else [unshare, "-rm"]
    probe = subprocess.run([*prefix, "true"], capture_output=True, timeout=30)
    return prefix if probe.returncode == 0 else None


def _in_namespace(setup: str, script: str, *args: str) -> dict[str, Any]:
    """Run ``setup`` (sh) then ``script`` (Python, printing one JSON line) in a private mount
    namespace, with this callguard package; skip if this machine cannot."""
    prefix = _namespace_prefix()
    if prefix is None:
        pytest.skip("no private mount namespace here (unshare -m / -rm)")
    root = str(Path(callguard.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": root}
    code = textwrap.dedent(script)
    shell = f'{setup} || exit 77; python="$0"; code="$1"; shift; exec "$python" -c "$code" "$@"'
    done = subprocess.run(
        [*prefix, "sh", "-c", shell, sys.executable, code, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    if done.returncode == 77:
        pytest.skip(f"cannot mount here: {done.stderr.strip()}")
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


READ_ONLY_SCRIPT = """
import contextlib, io, json, sys
from callguard.cli import main
from callguard.store.index import ListIndex
from callguard.store.lists import Store
state, cfg = sys.argv[1], sys.argv[2]
recoveries = []
index = ListIndex(Store(state, on_recovery=recoveries.append))
index.refresh()
out = {
    "allow": sorted(n for n in ("+441707354000", "+447700900123") if index.match("allow", n)),
    "block": index.sizes()["block"],
    "recoveries": [r.message() for r in recoveries],
}
for argv in (["allow", "list", "--json"], ["allow", "add", "01707 354001"]):
    err, stdout = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(stdout):
        rc = main(["--config", cfg, *argv])
    out[argv[1]] = [rc, stdout.getvalue(), err.getvalue()]
print(json.dumps(out))
"""


@pytest.mark.parametrize("damaged", [False, True], ids=["sound", "damaged"])
def test_a_real_read_only_mount(state: Path, tmp_path: Path, damaged: bool) -> None:
    seed(state)
    for lock in state.glob("*.lock"):
        lock.unlink()
    if damaged:
        (state / "allow.json").write_bytes(b"[" * 100_000)
    cfg = write_config(tmp_path / "callguard.toml", {"storage": {"dir": str(state)}})
    before = snapshot(state)

    out = _in_namespace(
        f'mount --bind "{state}" "{state}" && mount -o remount,bind,ro "{state}" "{state}"',
        READ_ONLY_SCRIPT,
        str(state),
        str(cfg),
    )

    assert out["allow"] == ([DAUGHTER] if damaged else [DAUGHTER, SON])
    assert out["block"] == 2  # the block list's own file is sound
    rc, listed, _ = out["list"]
    assert rc == 0
    assert {e["number"] for e in json.loads(listed)} == set(out["allow"])
    if damaged:
        [message] = out["recoveries"]
        assert "read-only" in message and str(state / "allow.json.bak") in message
    else:
        assert out["recoveries"] == []
    rc, _, err = out["add"]
    assert rc == 1
    assert "the SD card is read-only" in err and "sudo dmesg" in err
    assert "permission denied" not in err.lower()
    assert snapshot(state) == before


# -- E: what a failed write says --------------------------------------------------------------

ADVICE = {
    errno.EROFS: ("the SD card is read-only (the system remounted it after an error)", "dmesg"),
    errno.ENOSPC: ("the SD card is full", "df -h"),
    errno.EACCES: ("permission denied", "sudo -u callguard"),
}


def _fail_on_open_for_writing(
    monkeypatch: pytest.MonkeyPatch, code: int, name_part: str
) -> list[str]:
    """os.open of a path containing ``name_part`` for writing fails with ``code``."""
    real_open = os.open
    failed: list[str] = []

    def fake_open(path: Any, flags: int, mode: int = 0o777, **kwargs: Any) -> int:
        if flags & _WRITE_FLAGS and name_part in os.path.basename(os.fsdecode(path)):
            failed.append(os.path.basename(os.fsdecode(path)))
            raise OSError(code, os.strerror(code), os.fsdecode(path))
        return int(real_open(path, flags, mode, **kwargs))

    monkeypatch.setattr(os, "open", fake_open)
    return failed


@pytest.mark.parametrize("code", list(ADVICE), ids=[errno.errorcode[c] for c in ADVICE])
@pytest.mark.parametrize("where", [".lock", ".tmp-"], ids=["lock file", "temp file"])
def test_each_write_error_says_what_it_is_and_what_to_do(
    state: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    code: int,
    where: str,
) -> None:
    seed(state)
    for lock in state.glob("*.lock"):
        lock.unlink()
    cfg = write_config(tmp_path / "callguard.toml", {"storage": {"dir": str(state)}})
    before = snapshot(state)
    failed = _fail_on_open_for_writing(monkeypatch, code, where)

    assert main(["--config", str(cfg), "allow", "add", "01707 354001"]) == 1
    monkeypatch.undo()

    assert failed, "the injected error was never hit"
    err = capsys.readouterr().err
    what, how = ADVICE[code]
    assert what in err and how in err
    for other, (other_what, _) in ADVICE.items():
        if other != code:
            assert other_what not in err
    assert {k: v for k, v in snapshot(state).items() if not k.endswith(".lock")} == {
        k: v for k, v in before.items() if not k.endswith(".lock")
    }


# -- F: a full card loses nothing -------------------------------------------------------------


def _enospc(*args: Any, **kwargs: Any) -> Any:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def _full_at_creation(monkeypatch: pytest.MonkeyPatch) -> None:
    _fail_on_open_for_writing(monkeypatch, errno.ENOSPC, ".tmp-")


FULL_AT: dict[str, Callable[[pytest.MonkeyPatch], None]] = {
    "creating the temp file": _full_at_creation,
    "writing the temp file": lambda mp: mp.setattr(os, "write", _enospc),
    "fsync of the temp file": lambda mp: mp.setattr(os, "fsync", _enospc),
    "linking the backup": lambda mp: mp.setattr(os, "link", _enospc),
}


@pytest.mark.parametrize("step", list(FULL_AT))
def test_a_full_card_loses_nothing_already_saved(
    state: Path, monkeypatch: pytest.MonkeyPatch, step: str
) -> None:
    store = seed(state)
    before = snapshot(state)
    index = ListIndex(store)
    index.refresh()
    FULL_AT[step](monkeypatch)
    with pytest.raises(CallGuardError) as caught:
        store.add("allow", t("01707 354001"), name="New")
    monkeypatch.undo()
    message = str(caught.value)
    assert "the SD card is full" in message and "unchanged" in message
    assert str(state / "allow.json") in message
    assert snapshot(state) == before  # old allow.json and its backup intact, no temp file left
    assert index.refresh() is False
    assert {e.number for e in store.entries("allow")} == {DAUGHTER, SON}
    store.add("allow", t("01707 354001"), name="New")  # space freed: the store carries on
    assert len(store.entries("allow")) == 3


FULL_SCRIPT = """
import errno, json, os, sys
from callguard.store.lists import Store
from callguard.core.lists import target_for
from callguard.errors import CallGuardError
state = sys.argv[1]
store = Store(state)
for i in range(20):
    store.add("block", target_for(f"0113 496 {i:04d}", "GB"), name="x" * 60, note="n" * 140)
saved = {p: open(os.path.join(state, p), "rb").read() for p in ("block.json", "block.json.bak")}
filler = os.path.join(os.path.dirname(state), "filler")
with open(filler, "wb", buffering=0) as f:
    try:
        while True:
            f.write(b"\\0" * 4096)
            f.flush()
    except OSError as e:
        assert e.errno == errno.ENOSPC
errors = []
for i in range(5):
    try:
        store.add("block", target_for(f"0113 496 {100 + i:04d}", "GB"), note="y" * 200)
    except CallGuardError as e:
        errors.append(str(e))
after = {p: open(os.path.join(state, p), "rb").read() for p in ("block.json", "block.json.bak")}
names = sorted(os.listdir(state))
blocked = len(store.entries("block"))
os.unlink(filler)
store.add("block", target_for("0113 496 0999", "GB"))
print(json.dumps({"errors": errors, "same": after == saved, "names": names,
                  "blocked": blocked, "later": len(store.entries("block"))}))
"""


def test_a_really_full_file_system_loses_nothing(tmp_path: Path) -> None:
    disk = tmp_path / "card"
    disk.mkdir()
    out = _in_namespace(
        f'mount -t tmpfs -o size=64k tmpfs "{disk}" && mkdir "{disk}/state"',
        FULL_SCRIPT,
        str(disk / "state"),
    )
    assert len(out["errors"]) == 5
    assert all("the SD card is full" in e and "unchanged" in e for e in out["errors"])
    assert out["same"] is True
    assert out["names"] == ["block.json", "block.json.bak", "block.json.lock", "lists.json.lock"]
    assert out["blocked"] == 20 and out["later"] == 21


# -- C: one parse decision for the daemon and the CLI -----------------------------------------

UTF16_TABLES = {"allow": {"1": {"number": STRANGER, "name": "From the UTF-16 file"}}}
DAMAGE = {
    "nested lists": b"[" * 100_000,
    "nested objects": b'{"a":' * 100_000,
    "nested inside a document": (
        b'{"allow": {"1": {"number": "+441632960999", "x": ' + b"[" * 100_000 + b"]" * 100_000
    )
    + b"}}}",
    "UTF-16": json.dumps(UTF16_TABLES).encode("utf-16"),
    "UTF-16 without a byte-order mark": json.dumps(UTF16_TABLES).encode("utf-16-le"),
}


def _damaged_copy(tmp_path: Path, name: str, damage: bytes) -> Path:
    folder = tmp_path / name
    seed(folder)
    (folder / "allow.json").write_bytes(damage)
    return folder


@pytest.mark.parametrize("kind", list(DAMAGE))
def test_the_daemon_and_the_cli_judge_and_repair_a_damaged_file_alike(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    damage = DAMAGE[kind]
    daemon_dir = _damaged_copy(tmp_path, "daemon", damage)
    cli_dir = _damaged_copy(tmp_path, "cli", damage)

    recoveries: list[Recovery] = []
    index = ListIndex(Store(daemon_dir, on_recovery=recoveries.append))
    index.refresh()
    daemon_allow = sorted(n for n in (DAUGHTER, SON, STRANGER) if index.match("allow", n))

    cfg = write_config(tmp_path / "callguard.toml", {"storage": {"dir": str(cli_dir)}})
    capsys.readouterr()
    assert main(["--config", str(cfg), "allow", "list", "--json"]) == 0
    captured = capsys.readouterr()
    cli_allow = sorted(e["number"] for e in json.loads(captured.out))

    assert daemon_allow == cli_allow == [DAUGHTER]  # both: the backup
    [recovery] = recoveries
    assert recovery.restored_from == daemon_dir / "allow.json.bak"
    assert recovery.moved_to is not None and recovery.moved_to.read_bytes() == damage
    assert "WARNING" in captured.err and "damaged" in captured.err
    for folder in (daemon_dir, cli_dir):
        assert (folder / "allow.json").read_bytes() == (folder / "allow.json.bak").read_bytes()
        [kept] = folder.glob("allow.json.corrupt-*")
        assert kept.read_bytes() == damage
    index.refresh()  # the repaired file is a new file: read once more, and no more repairs
    assert index.refresh() is False and len(recoveries) == 1
    assert index.match("allow", DAUGHTER) is not None


JSONISH = st.lists(
    st.sampled_from(
        [
            b"{",
            b"}",
            b"[",
            b"]",
            b",",
            b":",
            b'"allow"',
            b'"block"',
            b'"1"',
            b'"number"',
            b'"+441707354000"',
            b'"name"',
            b"1",
            b"null",
            b"true",
            b" ",
            b'"\\ud800"',
            b"\xef\xbb\xbf",
            b"\xff",
            b"\x00",
            b'"a"',
        ]
    ),
    max_size=40,
).map(b"".join)
SOUND = st.dictionaries(
    st.sampled_from(["allow", "block", "protect", "protect_removed", "number", "other"]),
    st.dictionaries(
        st.sampled_from(["1", "2", "3"]),
        st.one_of(
            st.dictionaries(
                st.sampled_from(["number", "name", "note", "kind", "extra"]),
                st.one_of(
                    st.text(max_size=5),
                    st.integers(),
                    st.none(),
                    st.lists(st.integers(), max_size=2),
                    st.fixed_dictionaries({"number": st.text(max_size=3)}),
                ),
            ),
            st.integers(),
            st.text(max_size=3),
        ),
        max_size=3,
    ),
    max_size=4,
).map(lambda v: json.dumps(v).encode())


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(JSONISH, SOUND, st.binary(max_size=60)))
@example(b"[" * 100_000)
@example(json.dumps(UTF16_TABLES).encode("utf-16"))
@example(b'{"allow": {"1": {"number": {"number": "1"}}}}')
@example(b'{"number": {"1": {"number": "1"}}}')
def test_the_lean_parse_never_disagrees_with_the_plain_one(raw: bytes) -> None:
    packed, packed_problem = parse_tables(raw, pack=pack)
    plain, problem = parse_tables(raw)
    assert packed_problem == problem
    if plain is None:
        assert packed is None
    else:
        assert packed == {n: {i: pack(d) for i, d in t.items()} for n, t in plain.items()}


# -- B: no symbolic link in the folder is followed, least of all by root ----------------------

SECRET = {
    "allow": {"1": {"number": STRANGER, "name": "ROOT SECRET"}},
    "calls": {"1": {"number": STRANGER, "name": "ROOT SECRET"}},
    "status": {"1": {"state": "ROOT SECRET"}},
    "alert": {"1": {"active": True, "call": "ROOT SECRET"}},
}


def _add(store: Store) -> None:
    store.add("allow", t("01707 354001"))


def _list_after_damage(store: Store) -> None:
    store.list_paths["allow"].write_bytes(b"{")
    store.entries("allow")


OPERATIONS: dict[str, Callable[[Store], None]] = {
    "lists.json.lock": _add,  # the lock every change to a list holds
    "allow.json.lock": _add,
    "allow.json": _add,
    "allow.json.bak": _list_after_damage,
    "calls.json": lambda s: s.append_call({"started": "2026-05-03T09:30:00", "number": SCAM}),
    # the call log is SQLite now: a link at the database or its WAL is refused, not followed
    "calls.sqlite3": lambda s: s.append_call({"started": "2026-05-03T09:30:00", "number": SCAM}),
    "calls.sqlite3-wal": lambda s: s.calls(),
    # the status's own folder where there is no runtime folder, and the files in it
    "live": lambda s: s.write_status({"state": "ringing"}),
    "live/status.json": lambda s: s.write_status({"state": "ringing"}),
    "live/status.json.lock": lambda s: s.write_status({"state": "ringing"}),
    "alert.json": lambda s: s.ack_alert(by="test"),
    "alert.json.lock": lambda s: s.raise_alert({"number": SCAM}),
}


@pytest.fixture
def no_fd_leak(tmp_path: Path) -> Iterator[None]:
    """No descriptor of a file under tmp_path is left open (refusals close what they open)."""

    def open_here() -> set[str]:
        found = set()
        for fd in os.listdir("/proc/self/fd"):
            with contextlib.suppress(OSError):
                if os.readlink(f"/proc/self/fd/{fd}").startswith(str(tmp_path)):
                    found.add(fd)
        return found

    before = open_here()
    yield
    assert open_here() <= before


@pytest.fixture
def service_folder(state: Path) -> Path:
    if not ROOT_ONLY:
        pytest.skip("needs root: the hazard is `sudo callguard ...` in the service's folder")
    seed(state)
    os.chown(state, SERVICE_UID, SERVICE_UID)
    for entry in state.iterdir():
        os.chown(entry, SERVICE_UID, SERVICE_UID)
    return state


def _root_only_file(path: Path, content: bytes) -> tuple[int, int, int, bytes]:
    path.write_bytes(content)
    os.chown(path, 0, 0)
    path.chmod(0o600)
    st_ = path.stat()
    return st_.st_uid, st_.st_gid, stat.S_IMODE(st_.st_mode), content


def _as_found(path: Path) -> tuple[int, int, int, bytes]:
    st_ = path.stat()
    return st_.st_uid, st_.st_gid, stat.S_IMODE(st_.st_mode), path.read_bytes()


def _no_secret_in(folder: Path) -> None:
    for entry in folder.iterdir():
        if entry.is_file() and not entry.is_symlink():
            assert b"ROOT SECRET" not in entry.read_bytes(), entry.name


@pytest.mark.parametrize("name", list(OPERATIONS))
def test_root_follows_no_symlink_in_the_service_folder(
    service_folder: Path, tmp_path: Path, name: str, no_fd_leak: None
) -> None:
    target = tmp_path / "root-only.json"
    original = _root_only_file(target, json.dumps(SECRET).encode())
    link = service_folder / name
    if link.parent != service_folder:  # a file in a folder of the service's own
        link.parent.mkdir(exist_ok=True)
        os.chown(link.parent, SERVICE_UID, SERVICE_UID)
    if link.is_dir() and not link.is_symlink():
        shutil.rmtree(link)  # the folder itself is what is replaced by a link
    link.unlink(missing_ok=True)
    link.symlink_to(target)

    error: StoreError | None = None
    try:
        OPERATIONS[name](Store(service_folder))
    except StoreError as exc:
        error = exc

    assert _as_found(target) == original  # owner, mode and content
    _no_secret_in(service_folder)  # and nothing of it copied where the service can read it
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert error is not None, "the link was followed or ignored without a word"
    message = str(error)
    assert str(link) in message and "symbolic link" in message and "sudo rm" in message


def test_a_dangling_symlinked_lock_file_creates_nothing(
    service_folder: Path, tmp_path: Path, no_fd_leak: None
) -> None:
    target = tmp_path / "etc-cron.d-evil"
    (service_folder / "allow.json.lock").unlink()
    (service_folder / "allow.json.lock").symlink_to(target)
    error: StoreError | None = None
    try:
        _add(Store(service_folder))
    except StoreError as exc:
        error = exc
    assert not os.path.lexists(target)
    assert error is not None and "allow.json.lock is a symbolic link" in str(error)


def test_a_temp_file_name_taken_by_a_link_is_never_written_through(
    service_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_fd_leak: None
) -> None:
    target = tmp_path / "root-only"
    original = _root_only_file(target, b"root's own\n")
    monkeypatch.setattr(storage_module.secrets, "token_hex", lambda n: "0badc0de")
    temp = service_folder / f"allow.json.tmp-{os.getpid()}-0badc0de"
    temp.symlink_to(target)
    os.lchown(temp, SERVICE_UID, SERVICE_UID)
    # as if planted just after the write's clean-up of leftover temp files
    monkeypatch.setattr(
        storage_module.AtomicJSONStorage, "_remove_temp_files", lambda *args, **kwargs: None
    )
    before = snapshot(service_folder)

    with pytest.raises(StoreError) as caught:
        _add(Store(service_folder))

    assert str(temp) in str(caught.value)
    assert _as_found(target) == original
    assert snapshot(service_folder) == before


def test_a_symlinked_backup_is_replaced_not_followed(service_folder: Path, tmp_path: Path) -> None:
    target = tmp_path / "root-only"
    original = _root_only_file(target, b"root's own\n")
    backup = service_folder / "allow.json.bak"
    backup.unlink()
    backup.symlink_to(target)
    _add(Store(service_folder))
    assert not backup.is_symlink() and backup.stat().st_uid == SERVICE_UID
    assert _as_found(target) == original


def test_a_lock_file_made_by_root_goes_to_the_folder_owner_but_an_existing_one_keeps_its_owner(
    service_folder: Path,
) -> None:
    lock = service_folder / "allow.json.lock"
    lock.unlink()
    _add(Store(service_folder))
    assert (lock.stat().st_uid, lock.stat().st_gid) == (SERVICE_UID, SERVICE_UID)
    os.chown(lock, 0, 0)  # however it came to be root's, it stays root's
    Store(service_folder).add("allow", t("01707 354002"))
    assert (lock.stat().st_uid, lock.stat().st_gid) == (0, 0)


FIFO_SCRIPT = """
import json, sys
from callguard.errors import CallGuardError
from callguard.store.index import ListIndex
from callguard.store.lists import Store
from callguard.core.lists import target_for
state, what = sys.argv[1], sys.argv[2]
try:
    if what == "read":
        ListIndex(Store(state)).refresh()
    else:
        Store(state).add("allow", target_for("01707 354001", "GB"))
    print(json.dumps({"error": None}))
except CallGuardError as e:
    print(json.dumps({"error": str(e)}))
"""


@pytest.mark.parametrize(("name", "what"), [("allow.json", "read"), ("allow.json.lock", "add")])
def test_a_fifo_in_the_folder_is_refused_without_waiting(state: Path, name: str, what: str) -> None:
    seed(state)
    (state / name).unlink()
    os.mkfifo(state / name)
    root = str(Path(callguard.__file__).resolve().parents[1])
    done = subprocess.run(  # a subprocess: a regression hangs for ever on open()
        [sys.executable, "-c", FIFO_SCRIPT, str(state), what],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "PYTHONPATH": root},
    )
    assert done.returncode == 0, done.stderr
    error = json.loads(done.stdout)["error"]
    assert error is not None and f"{state / name} is a pipe (FIFO)" in error


# -- D: import files that are not files --------------------------------------------------------


def _limit_memory() -> None:  # a regression reading /dev/zero must not take the machine down
    resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))


@pytest.fixture
def cfg(tmp_path: Path) -> Path:
    return write_config(tmp_path / "callguard.toml", {"storage": {"dir": str(tmp_path / "state")}})


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (lambda tmp: Path("/dev/zero"), "is a character device, not an ordinary file"),
        (lambda tmp: (os.mkfifo(tmp / "fifo.csv"), tmp / "fifo.csv")[1], "is a pipe (FIFO)"),
    ],
    ids=["/dev/zero", "FIFO"],
)
def test_importing_a_device_or_a_fifo_is_refused_at_once(
    cfg: Path, tmp_path: Path, make: Callable[[Path], Path], says: str
) -> None:
    path = make(tmp_path)
    root = str(Path(callguard.__file__).resolve().parents[1])
    done = subprocess.run(  # a subprocess: a regression hangs or eats all memory
        [sys.executable, "-m", "callguard", "--config", str(cfg), "allow", "import", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "PYTHONPATH": root},
        preexec_fn=_limit_memory,
    )
    assert done.returncode == 2, done.stderr
    assert f"{path}: the file to import {says}" in done.stderr
    assert not (tmp_path / "state" / "allow.json").exists()


def test_an_import_file_over_the_limit_is_refused_unread(
    cfg: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    big = tmp_path / "big.csv"
    with big.open("wb") as f:
        f.truncate(21 * 1024 * 1024)  # sparse: costs no disk
    assert main(["--config", str(cfg), "allow", "import", str(big)]) == 2
    assert f"{big}: the file to import is 22,020,096 bytes" in capsys.readouterr().err
