"""The family page's password (scrypt, salted, parameters kept) and its session key files."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest

from callguard.errors import CallGuardError, UsageError
from callguard.web import passwords
from callguard.web.passwords import (
    PasswordError,
    PasswordFile,
    check_new_password,
    hash_password,
    secret_key,
    verify_password,
)


def test_a_hash_checks_its_own_password_and_no_other() -> None:
    line = hash_password("correct horse battery")
    assert line.startswith("scrypt$ln=14,r=8,p=1$")
    assert "correct horse" not in line
    assert verify_password("correct horse battery", line)
    assert not verify_password("correct horse batterY", line)
    assert not verify_password("", line)


def test_every_hash_has_its_own_salt() -> None:
    one, two = hash_password("same password"), hash_password("same password")
    assert one != two
    assert one.split("$")[2] != two.split("$")[2]


def test_the_parameters_are_read_from_the_line_not_assumed() -> None:
    """A line written with other costs (a later version's) still checks."""
    salt = os.urandom(16)
    digest = passwords._scrypt("an older password", salt, 10, 4, 2)
    line = f"scrypt$ln=10,r=4,p=2${passwords._b64(salt)}${passwords._b64(digest)}"
    assert verify_password("an older password", line)
    assert not verify_password("another password", line)


@pytest.mark.parametrize(
    "line",
    [
        "",
        "plain text password",
        "bcrypt$ln=14,r=8,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "scrypt$ln=30,r=8,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "scrypt$ln=20,r=32,p=16$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "scrypt$ln=14,r=8$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "scrypt$ln=14,r=8,p=1$!!!$AAAA",
        "scrypt$ln=14,r=8,p=1$AAAA$AAAA",
    ],
)
def test_a_line_that_is_not_one_of_ours_is_refused_not_trusted(line: str) -> None:
    with pytest.raises(PasswordError):
        verify_password("anything at all", line)


def test_a_password_longer_than_any_that_can_be_set_never_matches() -> None:
    longest = "x" * passwords.MAX_PASSWORD_CHARS
    line = hash_password(longest)
    assert verify_password(longest, line)
    assert not verify_password(longest + "x", line)


@pytest.mark.parametrize(
    ("password", "words"),
    [
        ("", "empty"),
        ("short", "5 characters; use at least 8"),
        (" padded password ", "space"),
        ("tab\there please", "control character"),
        ("x" * 2000, "longer than 1024"),
    ],
)
def test_new_passwords_that_are_refused_say_why(password: str, words: str) -> None:
    with pytest.raises(UsageError, match=words):
        check_new_password(password)


def test_the_password_file_is_private_whole_and_replaced(tmp_path: Path) -> None:
    folder = tmp_path / "state"
    store = PasswordFile(folder)
    assert store.read() is None and not store.is_set()
    store.set("first password")
    st = os.stat(store.path)
    assert stat.S_IMODE(st.st_mode) == 0o600
    assert store.check("first password") and not store.check("second password")
    first = store.read()
    store.set("second password")
    assert store.read() != first
    assert store.check("second password") and not store.check("first password")
    assert sorted(p.name for p in folder.iterdir()) == ["web-password"]  # no temp files left


def test_a_refused_password_leaves_the_old_one(tmp_path: Path) -> None:
    store = PasswordFile(tmp_path)
    store.set("first password")
    with pytest.raises(UsageError):
        store.set("short")
    assert store.check("first password")


def test_the_password_file_is_never_written_through_a_link(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.write_text("keep me\n")
    (tmp_path / "web-password").symlink_to(target)
    with pytest.raises(CallGuardError, match="symbolic link"):
        PasswordFile(tmp_path).set("a good password")
    assert target.read_text() == "keep me\n"


def test_the_session_key_is_made_once_and_kept_private(tmp_path: Path) -> None:
    key = secret_key(tmp_path)
    assert len(key) >= 32
    path = tmp_path / passwords.SECRET_KEY_FILE
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert secret_key(tmp_path) == key
    assert [p.name for p in tmp_path.iterdir()] == [passwords.SECRET_KEY_FILE]


def test_processes_starting_together_agree_on_one_session_key(tmp_path: Path) -> None:
    keys: list[bytes] = []
    barrier = threading.Barrier(8)

    def start() -> None:
        barrier.wait()
        keys.append(secret_key(tmp_path))

    threads = [threading.Thread(target=start) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(keys)) == 1
    assert (tmp_path / passwords.SECRET_KEY_FILE).read_bytes().strip() == keys[0]


def test_a_read_only_folder_gives_a_key_for_this_run(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root writes into a read-only folder")
    tmp_path.chmod(0o500)
    try:
        assert len(secret_key(tmp_path)) >= 32
    finally:
        tmp_path.chmod(0o700)
    assert not (tmp_path / passwords.SECRET_KEY_FILE).exists()


def test_set_by_root_the_files_go_to_the_folders_owner(tmp_path: Path) -> None:
    """`sudo callguard web password` writes into /var/lib/callguard, owned by the callguard user
    the page runs as: a file left to root (mode 0600) would lock the page out."""
    if os.geteuid() != 0:
        pytest.skip("needs root to hand a file to another user")
    folder = tmp_path / "state"
    folder.mkdir()
    os.chown(folder, 4321, 4321)
    PasswordFile(folder).set("a good password")
    secret_key(folder)
    for name in (passwords.PASSWORD_FILE, passwords.SECRET_KEY_FILE):
        st = os.stat(folder / name)
        assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (4321, 4321, 0o600), name
