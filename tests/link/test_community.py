"""The community block list's signed file: sign, verify, refuse, load into the big-list file;
what a unit reports about a call."""

from __future__ import annotations

import base64
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from callguard.link.community import (
    STATE_FILE,
    CommunityListError,
    canonical,
    generate_private_key,
    load_list,
    loaded_version,
    public_key_b64,
    report_reason,
    sign_list,
    verify_list,
)
from callguard.store.biglist import BigList, community_path

CREATED = dt.datetime(2026, 12, 7, 10, 0, tzinfo=dt.UTC)
NUMBERS = ["+441632960123", "+447700900456", "+442079460000"]
KEY = generate_private_key()
PUBLIC = public_key_b64(KEY)


def signed(numbers: list[str] = NUMBERS, version: int = 7, key: bytes = KEY) -> bytes:
    return sign_list(numbers, key, version=version, created=CREATED)


def refused(payload: bytes, public: str = PUBLIC) -> str:
    with pytest.raises(CommunityListError) as caught:
        verify_list(payload, public)
    return str(caught.value)


def test_a_signed_list_verifies_and_reads_back_sorted() -> None:
    listed = verify_list(signed(), PUBLIC)
    assert listed.numbers == tuple(sorted(NUMBERS))
    assert listed.version == 7
    assert listed.created == CREATED


def test_the_payload_is_the_documented_document() -> None:
    document = json.loads(signed())
    assert set(document) == {"list", "signature"}
    assert document["list"] == {
        "name": "community",
        "version": 7,
        "created": "2026-12-07T10:00:00+00:00",
        "numbers": sorted(NUMBERS),
    }
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    Ed25519PublicKey.from_public_bytes(base64.b64decode(PUBLIC)).verify(
        base64.b64decode(document["signature"]),
        json.dumps(document["list"], sort_keys=True, separators=(",", ":")).encode(),
    )
    assert canonical(document["list"]).startswith(b'{"created":')


def test_a_pem_key_signs_as_well() -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    pem = Ed25519PrivateKey.from_private_bytes(KEY).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    assert public_key_b64(pem) == PUBLIC
    assert verify_list(signed(key=pem), PUBLIC).numbers == tuple(sorted(NUMBERS))


def _tampered(change: Any) -> bytes:
    document = json.loads(signed())
    change(document)
    return json.dumps(document).encode()


@pytest.mark.parametrize(
    "change",
    [
        lambda d: d["list"]["numbers"].append("+441632960999"),
        lambda d: d["list"]["numbers"].remove("+441632960123"),
        lambda d: d["list"].update(version=8),
        lambda d: d.update(signature=base64.b64encode(b"\0" * 64).decode()),
        lambda d: d.update(signature="not base64!"),
    ],
    ids=["number-added", "number-removed", "version-bumped", "signature-changed", "garbage-sig"],
)
def test_a_tampered_list_is_refused(change: Any) -> None:
    assert "not signed by your group's key: refused" in refused(_tampered(change))


def test_a_list_signed_by_another_key_is_refused() -> None:
    other = generate_private_key()
    assert "not signed by your group's key" in refused(signed(key=other))


@pytest.mark.parametrize(
    ("payload", "why"),
    [
        (b"", "empty"),
        (b"\xff\xfe", "not UTF-8 JSON"),
        (b"{not json", "not UTF-8 JSON"),
        (b"[1, 2]", "not a signed list"),
        (b'{"list": [], "signature": "x"}', "wrong shape"),
        (b'{"list": {}, "signature": 3}', "wrong shape"),
        (b"[" * 100_000, "not UTF-8 JSON"),
    ],
    ids=["empty", "binary", "broken", "array", "list-array", "sig-number", "deep"],
)
def test_garbage_is_refused_saying_what_is_wrong(payload: bytes, why: str) -> None:
    assert why in refused(payload)


@pytest.mark.parametrize(
    ("listed", "why"),
    [
        ({"name": "other"}, "named 'other'"),
        ({"version": "7"}, "not a whole number"),
        ({"version": True}, "not a whole number"),
        ({"created": "yesterday"}, "not an ISO 8601 time"),
        ({"created": "2026-12-07T10:00:00"}, "no UTC offset"),
        ({"numbers": "+441632960123"}, "not a JSON array"),
        ({"numbers": ["01632 960123"]}, "not a number in E.164 form"),
        ({"numbers": ["999"]}, "not a number in E.164 form"),
        ({"numbers": [441632960123]}, "not a number in E.164 form"),
    ],
)
def test_a_signed_list_of_the_wrong_shape_is_refused(listed: dict[str, Any], why: str) -> None:
    body = {"name": "community", "version": 1, "created": CREATED.isoformat(), "numbers": []}
    body.update(listed)
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    signature = Ed25519PrivateKey.from_private_bytes(KEY).sign(canonical(body))
    payload = json.dumps({"list": body, "signature": base64.b64encode(signature).decode()})
    assert why in refused(payload.encode())


def test_too_large_a_list_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    import callguard.link.community as community

    monkeypatch.setattr(community, "MAX_NUMBERS", 2)
    assert "more than the 2 a unit takes" in refused(signed())
    monkeypatch.setattr(community, "MAX_PAYLOAD_BYTES", 100)
    assert "more than the 100 a unit takes" in refused(signed())


def test_a_bad_public_key_says_where_to_get_the_right_one() -> None:
    assert "[fleet] community_key" in refused(signed(), public="c2hvcnQ=")


def test_signing_refuses_what_is_not_e164() -> None:
    with pytest.raises(ValueError, match=r"E\.164"):
        signed(["01632 960123"])


# -- loading on a unit -------------------------------------------------------------------------


def test_load_writes_the_big_list_the_daemon_reads(tmp_path: Path) -> None:
    listed = load_list(signed(), PUBLIC, tmp_path)
    assert listed.version == 7
    big = BigList.open(community_path(tmp_path), check_order=True)
    try:
        assert "+441632960123" in big
        assert "+441632960124" not in big
        assert len(big) == 3
        assert big.created_at == CREATED
    finally:
        big.close()
    assert loaded_version(tmp_path) == 7


def test_the_same_version_again_leaves_the_file_alone(tmp_path: Path) -> None:
    load_list(signed(), PUBLIC, tmp_path)
    before = community_path(tmp_path).stat().st_ino
    assert load_list(signed(), PUBLIC, tmp_path).version == 7
    assert community_path(tmp_path).stat().st_ino == before


def test_a_newer_version_replaces_the_list(tmp_path: Path) -> None:
    load_list(signed(), PUBLIC, tmp_path)
    load_list(signed(["+447700900456"], version=8), PUBLIC, tmp_path)
    big = BigList.open(community_path(tmp_path))
    try:
        assert list(big) == ["+447700900456"]
    finally:
        big.close()
    assert loaded_version(tmp_path) == 8


def test_an_older_version_is_refused_and_the_file_is_untouched(tmp_path: Path) -> None:
    load_list(signed(version=9), PUBLIC, tmp_path)
    path = community_path(tmp_path)
    before = path.read_bytes()
    with pytest.raises(CommunityListError) as caught:
        load_list(signed(["+447700900456"], version=8), PUBLIC, tmp_path)
    message = str(caught.value)
    assert "version 8 is older than the version 9 already loaded" in message
    assert message.endswith("the list in use is unchanged")
    assert path.read_bytes() == before
    assert loaded_version(tmp_path) == 9


def test_a_forged_list_leaves_the_file_untouched(tmp_path: Path) -> None:
    load_list(signed(), PUBLIC, tmp_path)
    before = community_path(tmp_path).read_bytes()
    forged = signed(["+441632960999"], version=10**12, key=generate_private_key())
    with pytest.raises(CommunityListError, match="not signed by your group's key"):
        load_list(forged, PUBLIC, tmp_path)
    assert community_path(tmp_path).read_bytes() == before
    assert loaded_version(tmp_path) == 7


def test_a_list_whose_file_was_deleted_is_written_again(tmp_path: Path) -> None:
    load_list(signed(), PUBLIC, tmp_path)
    community_path(tmp_path).unlink()
    load_list(signed(), PUBLIC, tmp_path)
    assert community_path(tmp_path).exists()


def test_a_damaged_state_file_counts_as_no_list_loaded(tmp_path: Path) -> None:
    (tmp_path / STATE_FILE).write_text("{broken")
    assert loaded_version(tmp_path) is None
    assert load_list(signed(version=1), PUBLIC, tmp_path).version == 1


def test_a_list_that_cannot_be_saved_is_a_community_list_error(tmp_path: Path) -> None:
    not_a_folder = tmp_path / "a-file"
    not_a_folder.write_text("")
    with pytest.raises(CommunityListError, match="could not be saved"):
        load_list(signed(), PUBLIC, not_a_folder)


# -- what a unit reports ------------------------------------------------------------------------


def call(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"number": "+441632960123", "verdict": "blocked", "rule": "block"}
    base["impersonation"] = False
    base.update(fields)
    return base


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"rule": "protect", "impersonation": True}, "impersonation"),
        ({"rule": "block"}, "family-blocked"),
        ({"rule": "block-prefix"}, None),
        ({"rule": "community"}, None),
        ({"rule": "community", "impersonation": True}, None),
        ({"rule": "quiet-hours"}, None),
        ({"rule": "category:international"}, None),
        ({"rule": "mode:allowlist-only"}, None),
        ({"rule": "block", "verdict": "warned"}, None),
        ({"rule": "allow", "verdict": "allowed"}, None),
        ({"rule": "protect", "impersonation": True, "verdict": "allowed"}, None),
        ({"rule": "category:short_code", "impersonation": True, "number": "999"}, None),
        ({"rule": "block", "number": None}, None),
        ({"rule": "block", "number": "01632 960123"}, None),
    ],
)
def test_report_reason(fields: dict[str, Any], reason: str | None) -> None:
    assert report_reason(call(**fields)) == reason
