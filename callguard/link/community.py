"""The volunteer group's community block list: its signed file, and a unit's side of it.

Theory of operation
-------------------
Units that opt in (``[fleet] community = true``) report the numbers they blocked as
impersonation, or that the family blocked, to the group's broker: the number and a reason
(:func:`report_reason`), never the family's lists or names. ``callguard hub``
(:mod:`callguard.link.hub`) publishes a number once enough different units reported it, as
one retained message on ``callguard/community/list``: a UTF-8 JSON document ::

    {"list": {"name": "community", "version": 1767225600, "created": "2026-01-01T00:00:00+00:00",
              "numbers": ["+441632960123", ...]},
     "signature": "<base64 Ed25519 signature>"}

The signature is over the *canonical* bytes of ``"list"`` (:func:`canonical`):
``json.dumps(list, sort_keys=True, separators=(",", ":"), ensure_ascii=True)`` in UTF-8.
The verifier re-serialises what it parsed, so what it checked is exactly what it uses. The
key is the group's (``callguard hub key`` makes it and prints the public half for units'
``[fleet] community_key``); anyone can read the list off the broker, but only the hub can
make one a unit accepts.

A unit (:func:`load_list`) checks the signature first, then the shape, then that every number
is in E.164 form, and refuses a list older (a smaller ``version``) than the one it loaded,
so an old retained copy or a replay cannot bring back a number the group removed. The
version it loaded is kept in ``community-block.json`` beside the list file. An accepted list
becomes the compact list file (:func:`~callguard.store.biglist.write_biglist`) that the
daemon's index picks up by itself; the family's allow list beats it in screening. A refused
list leaves the file in use untouched and raises :class:`CommunityListError` saying why (the
link logs it as one WARNING line): nothing the broker sends can stop the link.

``cryptography`` is imported by the functions that sign and verify, so importing this module
(the link, the CLI's parser) costs nothing.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime as dt
import json
import logging
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Final

from callguard.core.numbers import is_e164
from callguard.errors import CallGuardError
from callguard.store.biglist import community_path, write_biglist
from callguard.store.files import os_error_advice, write_atomically

__all__ = [
    "LIST_NAME",
    "MAX_NUMBERS",
    "MAX_PAYLOAD_BYTES",
    "REASONS",
    "STATE_FILE",
    "CommunityList",
    "CommunityListError",
    "canonical",
    "generate_private_key",
    "is_e164",
    "load_list",
    "loaded_version",
    "public_key_b64",
    "report_reason",
    "sign_list",
    "verify_list",
]

log = logging.getLogger(__name__)

LIST_NAME: Final = "community"
MAX_NUMBERS: Final = 5_000_000
MAX_PAYLOAD_BYTES: Final = 64 << 20
STATE_FILE: Final = "community-block.json"
"""Beside the list file in ``storage.dir``: the version of the group's list it holds."""
REASONS: Final = ("impersonation", "family-blocked")

_REFUSED: Final = "the list in use is unchanged"


class CommunityListError(CallGuardError):
    """A community list that cannot be used; the message says what is wrong."""


@dataclasses.dataclass(frozen=True)
class CommunityList:
    numbers: tuple[str, ...]
    version: int
    created: dt.datetime


def canonical(listed: Mapping[str, Any]) -> bytes:
    """The bytes the signature covers: ``listed`` as sorted, compact, ASCII JSON."""
    return json.dumps(listed, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


# -- keys -------------------------------------------------------------------------------------


def _private_key(private_key: bytes) -> Any:
    """An Ed25519 private key from its raw 32 bytes or a PEM (PKCS #8, unencrypted)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    if len(private_key) == 32:
        return Ed25519PrivateKey.from_private_bytes(private_key)
    try:
        key = serialization.load_pem_private_key(private_key, password=None)
    except (ValueError, TypeError):
        raise CommunityListError(
            "the hub's signing key is neither 32 raw bytes nor an unencrypted PEM Ed25519 "
            "private key; move it aside and make a new one with `callguard hub key` (then give "
            "units the new public key)"
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise CommunityListError(
            "the hub's signing key is a PEM key but not an Ed25519 one; make an Ed25519 key "
            "with `callguard hub key`"
        )
    return key


def generate_private_key() -> bytes:
    """A new Ed25519 private key, as its raw 32 bytes."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    return Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.Raw,
        serialization.PrivateFormat.Raw,
        serialization.NoEncryption(),
    )


def public_key_b64(private_key: bytes) -> str:
    """The base64 public key for units' ``[fleet] community_key``."""
    from cryptography.hazmat.primitives import serialization

    raw = (
        _private_key(private_key)
        .public_key()
        .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    )
    return base64.b64encode(raw).decode("ascii")


# -- signing and verifying ---------------------------------------------------------------------


def sign_list(
    numbers: Iterable[str], private_key: bytes, *, version: int, created: dt.datetime
) -> bytes:
    """The signed list document (UTF-8 JSON) holding ``numbers``, sorted and without repeats."""
    if created.tzinfo is None:
        raise ValueError("created must be an aware datetime (with its UTC offset)")
    ordered = sorted(set(numbers))
    bad = next((n for n in ordered if not is_e164(n)), None)
    if bad is not None:
        raise ValueError(f"{bad!r} is not a number in E.164 form")
    listed: dict[str, Any] = {
        "name": LIST_NAME,
        "version": int(version),
        "created": created.isoformat(timespec="seconds"),
        "numbers": ordered,
    }
    signature = _private_key(private_key).sign(canonical(listed))
    document = {"list": listed, "signature": base64.b64encode(signature).decode("ascii")}
    return json.dumps(document, separators=(",", ":")).encode()


def verify_list(payload: bytes, public_key_b64: str) -> CommunityList:
    """The list in ``payload`` if the group's key signed it and it is well formed; otherwise
    :class:`CommunityListError` saying what is wrong."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        raw_key = base64.b64decode(public_key_b64, validate=True)
    except (binascii.Error, ValueError):
        raw_key = b""
    if len(raw_key) != 32:
        raise CommunityListError(
            "[fleet] community_key is not an Ed25519 public key; copy the text `callguard hub "
            "key` prints on the hub's machine"
        )
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise CommunityListError(
            f"the list is {len(payload):,} bytes, more than the {MAX_PAYLOAD_BYTES:,} a unit "
            "takes: refused"
        )
    if not payload.strip():
        raise CommunityListError("the list is empty (no JSON at all): refused")
    try:
        document = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise CommunityListError("the list is not UTF-8 JSON: refused") from None
    if not isinstance(document, dict) or set(document) != {"list", "signature"}:
        raise CommunityListError(
            'the list is not a signed list (a JSON object of "list" and "signature"): refused'
        )
    listed, signature_b64 = document["list"], document["signature"]
    if not isinstance(listed, dict) or not isinstance(signature_b64, str):
        raise CommunityListError(
            'the list has the wrong shape ("list" must be an object, "signature" text): refused'
        )
    try:
        signature = base64.b64decode(signature_b64, validate=True)
    except (binascii.Error, ValueError):
        signature = b""
    try:
        Ed25519PublicKey.from_public_bytes(raw_key).verify(signature, canonical(listed))
    except (InvalidSignature, ValueError):
        raise CommunityListError(
            "the list is not signed by your group's key: refused (check [fleet] community_key "
            "against `callguard hub key` on the hub)"
        ) from None
    return _checked(listed)


def _checked(listed: dict[str, Any]) -> CommunityList:
    name, version = listed.get("name"), listed.get("version")
    created_text, numbers = listed.get("created"), listed.get("numbers")
    if name != LIST_NAME:
        raise CommunityListError(f"the list is named {name!r}, not {LIST_NAME!r}: refused")
    if not isinstance(version, int) or isinstance(version, bool) or version < 0:
        raise CommunityListError(f"the list's version {version!r} is not a whole number: refused")
    try:
        created = dt.datetime.fromisoformat(str(created_text))
    except ValueError:
        raise CommunityListError(
            f"the list's created time {created_text!r} is not an ISO 8601 time: refused"
        ) from None
    if created.tzinfo is None:
        raise CommunityListError(
            f"the list's created time {created_text!r} has no UTC offset: refused"
        )
    if not isinstance(numbers, list):
        raise CommunityListError('the list\'s "numbers" is not a JSON array: refused')
    if len(numbers) > MAX_NUMBERS:
        raise CommunityListError(
            f"the list has {len(numbers):,} numbers, more than the {MAX_NUMBERS:,} a unit "
            "takes: refused"
        )
    for number in numbers:
        if not is_e164(number):
            raise CommunityListError(
                f"the list holds {str(number)[:40]!r}, which is not a number in E.164 form "
                "(+ and 7 to 15 digits): refused"
            )
    return CommunityList(numbers=tuple(numbers), version=version, created=created)


# -- a unit's side -----------------------------------------------------------------------------


def loaded_version(storage_dir: str | os.PathLike[str]) -> int | None:
    """The version of the group's list in ``storage_dir``, or None if none was loaded."""
    try:
        state = json.loads((Path(storage_dir) / STATE_FILE).read_bytes())
        version = state["version"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return version if isinstance(version, int) and not isinstance(version, bool) else None


def load_list(
    payload: bytes, public_key_b64: str, storage_dir: str | os.PathLike[str]
) -> CommunityList:
    """Verify the group's list in ``payload`` and make it the unit's community block list.

    Returns the list now in use (newly written, or the same version again, left as it is).
    Raises :class:`CommunityListError` for a list it refuses (forged, malformed, older than the
    one loaded) or cannot save: then the file in use is untouched, and the message says why
    and ends "the list in use is unchanged", ready for the caller's one WARNING line.
    """
    try:
        listed = verify_list(payload, public_key_b64)
    except CommunityListError as exc:
        raise CommunityListError(f"{exc}; {_REFUSED}") from None
    path = community_path(storage_dir)
    current = loaded_version(storage_dir)
    if current is not None and listed.version < current:
        raise CommunityListError(
            f"its version {listed.version} is older than the version {current} already loaded "
            f"(an old copy or a replay): refused; {_REFUSED}"
        )
    if current == listed.version and path.exists():
        log.debug("the group's community block list version %d is already loaded", current)
        return listed
    try:
        count = write_biglist(path, listed.numbers, created=int(listed.created.timestamp()))
        state = {
            "version": listed.version,
            "created": listed.created.isoformat(timespec="seconds"),
            "count": count,
        }
        write_atomically(Path(storage_dir) / STATE_FILE, json.dumps(state).encode() + b"\n")
    except CallGuardError as exc:
        raise CommunityListError(f"it could not be saved: {exc}; {_REFUSED}") from None
    except OSError as exc:
        raise CommunityListError(
            f"it could not be saved in {storage_dir}: {os_error_advice(exc)}; {_REFUSED}"
        ) from None
    log.debug("the group's community block list version %d holds %d numbers", listed.version, count)
    return listed


_FAMILY_BLOCK_RULE: Final = "block"  # the family's own block list (not block-prefix)


def report_reason(call: Mapping[str, Any]) -> str | None:
    """What a unit reports to the group about a logged call (``callguard log --json``'s
    fields), or None for a call it keeps to itself.

    ``"impersonation"``: blocked because it showed a number that never calls out;
    ``"family-blocked"``: blocked by an entry on the family's own block list. Not a prefix
    rule, not the community list itself (no echo), not quiet hours, a category or the mode:
    those say nothing about the number. Only full E.164 numbers are reported.
    """
    if call.get("verdict") != "blocked" or not is_e164(call.get("number")):
        return None
    rule = call.get("rule")
    if rule == "community":
        return None
    if call.get("impersonation") is True:
        return "impersonation"
    if rule == _FAMILY_BLOCK_RULE:
        return "family-blocked"
    return None
