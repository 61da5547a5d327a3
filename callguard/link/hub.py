"""``callguard hub``: the volunteer group's community block list, run next to its broker.

Theory of operation
-------------------
Units that opt in publish a report for each number they blocked as impersonation or that the
family blocked (:func:`~callguard.link.community.report_reason`) on ``callguard/<unit>/report``:
``{"number": "+441632960123", "reason": "impersonation", "at": "<ISO>"}``. The broker's ACL
lets a unit write only under its own user's name, so the topic's second level *is* the unit.

The hub keeps, in SQLite (``hub.sqlite3`` in ``[hub] dir``):

* ``reports(number, unit, reason, at)``: each unit's latest report of each number, at the
  hub's own time of receipt (a unit's clock may be wrong, or lie);
* ``listed(number, since)``: the numbers on the list;
* ``removals(number, at, by)``: every removal by the group's admins (kept, as a record);
* ``meta``: the list last signed (its version, digest and payload).

The rules, with K = ``threshold``, W = ``window_days``, E = ``expire_days``:

1. A number goes on the list when a report arrives and K different units have reported it in
   the last W days, counting only reports after its latest removal. (A unit that reports a
   number three times is one unit.) Every run of K reports in W days ends with a report, so
   checking then is exact whatever the hub was doing meanwhile.
2. It leaves the list when no unit has reported it for E days (expiry), or when an admin
   removes it: ``callguard hub remove NUMBER`` on the hub's machine, or ``admin`` publishing
   the number on ``callguard/hub/remove``. A removal holds until K units report the number
   again after it.
3. Reports older than both W and E can no longer matter, and are deleted.

Whenever the list changes, the hub signs it (:func:`~callguard.link.community.sign_list`, key
``hub.key`` in ``[hub] dir``) with a new version, ``max(last + 1, Unix time now)`` so that a
hub that lost its database still outranks what units hold, and publishes it retained, QoS 1,
on ``callguard/community/list``; it republishes the last one at every (re)connection.

One thread owns the database: paho's network thread only queues what arrives, and the loop
(:meth:`Hub.run`) handles it, then re-evaluates the list when a report or removal changed
something, when another process wrote the database (``PRAGMA data_version``: the CLI's
``hub remove``), and once a minute for expiry. Nothing a client publishes can stop the hub:
anything malformed is logged and dropped.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import logging
import os
import queue
import re
import signal
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, Final

from callguard.config import HubConfig
from callguard.errors import CallGuardError, UsageError
from callguard.link.community import (
    CommunityListError,
    generate_private_key,
    is_e164,
    public_key_b64,
    sign_list,
)
from callguard.link.secret import SecretError, read_secret
from callguard.store.files import UnreadableFile, read_regular_file, write_atomically

if TYPE_CHECKING:
    import paho.mqtt.client as mqtt

__all__ = [
    "DB_FILE",
    "KEY_FILE",
    "LIST_TOPIC",
    "REMOVE_TOPIC",
    "REPORT_TOPIC",
    "Hub",
    "HubError",
    "Listed",
    "create_key",
    "read_key",
    "utc_now",
]

log = logging.getLogger(__name__)

KEY_FILE: Final = "hub.key"
DB_FILE: Final = "hub.sqlite3"
LIST_TOPIC: Final = "callguard/community/list"
REPORT_TOPIC: Final = "callguard/+/report"
REMOVE_TOPIC: Final = "callguard/hub/remove"
POLL_S: Final = 0.5
EXPIRY_CHECK_S: Final = 60.0
MAX_REPORT_BYTES: Final = 4096
MAX_INBOX: Final = 10_000
_REASON: Final = re.compile(r"[a-z][a-z-]{0,31}")
_UNIT: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
_NOT_UNITS: Final = frozenset({"community", "hub"})
_DAY_S: Final = 86400.0

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS reports (
    number TEXT NOT NULL, unit TEXT NOT NULL, reason TEXT NOT NULL, at REAL NOT NULL,
    PRIMARY KEY (number, unit)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS reports_at ON reports (at);
CREATE TABLE IF NOT EXISTS listed (number TEXT PRIMARY KEY, since REAL NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS removals (number TEXT NOT NULL, at REAL NOT NULL, by TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS removals_number ON removals (number, at);
CREATE TABLE IF NOT EXISTS meta (
    id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL, digest TEXT NOT NULL,
    payload BLOB NOT NULL
);
"""


class HubError(CallGuardError):
    """The hub cannot run as configured (the message says what to fix)."""


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# -- the signing key ---------------------------------------------------------------------------


def read_key(directory: str | os.PathLike[str]) -> bytes:
    """The hub's signing key from ``<directory>/hub.key`` (raw 32 bytes or PEM, mode 0600)."""
    path = Path(directory) / KEY_FILE
    try:
        data = read_regular_file(path, max_bytes=4096, what="the hub's signing key")
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise UsageError(
            f"{path}: the hub has no signing key yet; make one with `callguard hub key` "
            "and put the public key it prints in every unit's [fleet] community_key"
        ) from None
    except (UnreadableFile, OSError) as exc:
        raise UsageError(str(exc)) from None
    if mode & 0o077:
        raise UsageError(
            f"{path}: the signing key can be read by others (mode {mode & 0o777:o}); "
            f"make it private: chmod 600 {path}"
        )
    try:
        public_key_b64(data)
    except CommunityListError as exc:
        raise UsageError(f"{path}: {exc}") from None
    return data


def create_key(directory: str | os.PathLike[str]) -> tuple[bytes, bool]:
    """The hub's signing key, made first if there is none: (key, whether it was made now)."""
    folder = Path(directory)
    path = folder / KEY_FILE
    if not path.exists():
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            write_atomically(path, generate_private_key(), mode=0o600, exclusive=True)
        except FileExistsError:
            pass  # another `hub key` made it first: use that one
        else:
            return read_key(folder), True
    return read_key(folder), False


# -- the hub -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Listed:
    """A number on the list, for ``callguard hub list``."""

    number: str
    units: int
    """How many different units reported it since its last removal."""
    last_report: dt.datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "units": self.units,
            "last_report": self.last_report.isoformat(timespec="seconds"),
        }


class Hub:
    """The hub's state and its loop; see the module docstring.

    Tests drive :meth:`record_report`, :meth:`remove` and :meth:`current` with an injected
    ``clock``, and :meth:`run` against a real broker.
    """

    def __init__(
        self,
        config: HubConfig,
        *,
        clock: Callable[[], dt.datetime] = utc_now,
        monotonic: Callable[[], float] = time.monotonic,
        create: bool = True,
    ) -> None:
        self.config = config
        self.clock = clock
        self.monotonic = monotonic
        self.dir = Path(config.dir)
        self.db_path = self.dir / DB_FILE
        if not create and not self.db_path.exists():
            raise UsageError(
                f"{self.db_path}: there is no hub here; run `callguard hub` on the group's "
                "machine first (or point [hub] dir at the hub's folder)"
            )
        self._lock = threading.RLock()
        self._db = self._open()
        self._inbox: queue.Queue[tuple[str, str, bytes]] = queue.Queue(MAX_INBOX)
        self._stop = threading.Event()
        self._connected = threading.Event()
        self._resend = False
        self._dropped = 0
        self._key: bytes | None = None
        self._client: mqtt.Client | None = None
        self._last_failure: str | None = None
        self.published = threading.Event()
        """Set each time a list is handed to the broker (tests wait on it)."""

    # -- the database --------------------------------------------------------------------------

    def _open(self) -> sqlite3.Connection:
        try:
            self.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            db = sqlite3.connect(
                self.db_path, timeout=10, isolation_level=None, check_same_thread=False
            )
            db.execute("PRAGMA journal_mode = WAL")
            db.execute("PRAGMA synchronous = NORMAL")
            db.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise HubError(
                f"{self.db_path}: cannot open the hub's database ({exc}); check that [hub] dir "
                "is a folder the hub's user can write"
            ) from None
        return db

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def close(self) -> None:
        with self._lock, contextlib.suppress(sqlite3.Error):
            self._db.close()

    def _data_version(self) -> int:
        with self._lock:
            return int(self._db.execute("PRAGMA data_version").fetchone()[0])

    # -- reports and removals ------------------------------------------------------------------

    def record_report(self, unit: str, payload: bytes) -> bool:
        """Take one unit's report; False (and a log line) if it is not one."""
        problem, number, reason = _parse_report(unit, payload)
        if problem is not None:
            log.warning("ignored a report from %r: %s", unit[:64], problem)
            return False
        now = self.clock().timestamp()
        window_cut = now - self.config.window_days * _DAY_S
        expire_cut = now - self.config.expire_days * _DAY_S
        with self._transaction() as db:
            latest = db.execute("SELECT MAX(at) FROM reports WHERE number = ?", (number,))
            last = latest.fetchone()[0]
            if last is not None and last <= expire_cut:  # expired before this report came
                db.execute("DELETE FROM listed WHERE number = ?", (number,))
            db.execute(
                "INSERT INTO reports (number, unit, reason, at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (number, unit) DO UPDATE SET reason = excluded.reason, "
                "at = MAX(at, excluded.at)",
                (number, unit, reason, now),
            )
            if db.execute("SELECT 1 FROM listed WHERE number = ?", (number,)).fetchone():
                return True
            removed = db.execute("SELECT MAX(at) FROM removals WHERE number = ?", (number,))
            removed_at = removed.fetchone()[0]
            since = window_cut if removed_at is None else max(window_cut, removed_at)
            units = db.execute(
                "SELECT COUNT(DISTINCT unit) FROM reports WHERE number = ? AND at > ?",
                (number, since),
            ).fetchone()[0]
            if units >= self.config.threshold:
                db.execute("INSERT INTO listed (number, since) VALUES (?, ?)", (number, now))
                log.info("%s goes on the community list: %d units reported it", number, units)
        return True

    def remove(self, number: str, by: str) -> bool:
        """Take ``number`` off the list until K units report it again; whether it was on it."""
        if not is_e164(number):
            raise UsageError(f"{number!r} is not a number in E.164 form; give it as +441632960123")
        now = self.clock().timestamp()
        with self._transaction() as db:
            db.execute(
                "INSERT INTO removals (number, at, by) VALUES (?, ?, ?)", (number, now, by[:200])
            )
            was = db.execute("DELETE FROM listed WHERE number = ?", (number,)).rowcount > 0
        log.info("%s removed from the community list by %s", number, by)
        return was

    def current(self, now: dt.datetime) -> list[str]:
        """The numbers on the list at ``now``, sorted."""
        return [entry.number for entry in self.entries(now)]

    def entries(self, now: dt.datetime) -> list[Listed]:
        """The numbers on the list at ``now`` with their report counts, sorted by number."""
        expire_cut = now.timestamp() - self.config.expire_days * _DAY_S
        with self._lock:
            rows = self._db.execute(
                "SELECT l.number, "
                "  (SELECT COUNT(*) FROM reports r WHERE r.number = l.number AND r.at > "
                "     COALESCE((SELECT MAX(m.at) FROM removals m WHERE m.number = l.number), 0)),"
                "  (SELECT MAX(r.at) FROM reports r WHERE r.number = l.number) AS last "
                "FROM listed l WHERE last > ? ORDER BY l.number",
                (expire_cut,),
            ).fetchall()
        return [
            Listed(number, units, dt.datetime.fromtimestamp(last, dt.UTC))
            for number, units, last in rows
        ]

    def prune(self, now: dt.datetime) -> None:
        """Forget expired numbers and reports that can no longer matter."""
        ts = now.timestamp()
        expire_cut = ts - self.config.expire_days * _DAY_S
        keep = ts - max(self.config.window_days, self.config.expire_days) * _DAY_S
        with self._transaction() as db:
            db.execute(
                "DELETE FROM listed WHERE number NOT IN (SELECT number FROM reports WHERE at > ?)",
                (expire_cut,),
            )
            db.execute("DELETE FROM reports WHERE at <= ?", (keep,))

    # -- the signed list -----------------------------------------------------------------------

    def signed_list(self) -> tuple[int, bytes] | None:
        """The version and payload of the list last signed, if any."""
        with self._lock:
            row = self._db.execute("SELECT version, payload FROM meta WHERE id = 1").fetchone()
        return (int(row[0]), bytes(row[1])) if row else None

    def _signing_key(self) -> bytes:
        if self._key is None:
            self._key = read_key(self.dir)
        return self._key

    def sign_if_changed(self, now: dt.datetime | None = None) -> bool:
        """Sign a new version if the list differs from the one last signed; whether it did."""
        now = now or self.clock()
        self.prune(now)
        numbers = self.current(now)
        digest = hashlib.sha256("\n".join(numbers).encode()).hexdigest()
        with self._lock:
            row = self._db.execute("SELECT version, digest FROM meta WHERE id = 1").fetchone()
        if row is not None and row[1] == digest:
            return False
        version = max((row[0] + 1) if row else 1, int(now.timestamp()))
        payload = sign_list(numbers, self._signing_key(), version=version, created=now)
        with self._transaction() as db:
            db.execute(
                "INSERT INTO meta (id, version, digest, payload) VALUES (1, ?, ?, ?) "
                "ON CONFLICT (id) DO UPDATE SET version = excluded.version, "
                "digest = excluded.digest, payload = excluded.payload",
                (version, digest, payload),
            )
        log.info("community list version %d signed: %d numbers", version, len(numbers))
        return True

    def publish_if_changed(self) -> bool:
        """Sign the list if it changed, and hand it to the broker if it is new to it (or the
        hub has just (re)connected); whether it was sent."""
        changed = self.sign_if_changed()
        if not (changed or self._resend):
            return False
        client, signed = self._client, self.signed_list()
        if client is None or signed is None or not self._connected.is_set():
            self._resend = True  # sent at the next connection
            return False
        from paho.mqtt.client import MQTT_ERR_SUCCESS

        version, payload = signed
        info = client.publish(LIST_TOPIC, payload, qos=1, retain=True)
        self._resend = info.rc != MQTT_ERR_SUCCESS
        if self._resend:
            log.warning("could not publish community list version %d (rc %s)", version, info.rc)
            return False
        log.info("published community list version %d on %s", version, LIST_TOPIC)
        self.published.set()
        return True

    # -- the broker ----------------------------------------------------------------------------

    def _make_client(self) -> mqtt.Client:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        from callguard.link.fleet import broker_of

        broker = broker_of(self.config.broker)
        if not broker.host:
            raise UsageError(
                "[hub] broker is empty; set it to the group's broker, e.g. "
                "broker = 'mqtt://127.0.0.1:1883'"
            )
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"callguard-hub-{self.config.username}",
            clean_session=False,  # the broker keeps reports sent while the hub restarts
        )
        if self.config.username:
            client.username_pw_set(self.config.username, self._password())
        if broker.tls:
            client.tls_set(ca_certs=self.config.ca_file or None)
        client.reconnect_delay_set(min_delay=1, max_delay=60)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.connect_async(broker.host, broker.port, keepalive=60)
        return client

    def _password(self) -> str | None:
        if not self.config.password_file:
            return None
        try:
            return read_secret(self.config.password_file, "[hub] password_file")
        except SecretError as exc:
            raise UsageError(str(exc)) from None

    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any
    ) -> None:
        if reason.is_failure:
            text = str(reason)
            if text != self._last_failure:
                log.warning(
                    "the broker %s refused the hub: %s; check [hub] username and password_file "
                    "(trying again)",
                    self.config.broker,
                    text,
                )
            self._last_failure = text
            return
        self._last_failure = None
        client.subscribe([(REPORT_TOPIC, 1), (REMOVE_TOPIC, 1)])
        self._connected.set()
        self._put("connected", "", b"")
        log.info("connected to %s", self.config.broker)

    def _on_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any
    ) -> None:
        was = self._connected.is_set()
        self._connected.clear()
        if was and not self._stop.is_set():
            log.warning("lost the broker %s (%s); reconnecting", self.config.broker, reason)

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        self._put("message", message.topic, bytes(message.payload))

    def _put(self, kind: str, topic: str, payload: bytes) -> None:
        try:
            self._inbox.put_nowait((kind, topic, payload))
        except queue.Full:
            self._dropped += 1
            if self._dropped in (1, 100, 10_000) or self._dropped % 100_000 == 0:
                log.warning("the hub is behind: %d messages dropped", self._dropped)

    def _handle(self, kind: str, topic: str, payload: bytes) -> bool:
        """One queued event; whether the list may have changed."""
        if kind == "connected":
            self._resend = True
            return True
        if topic == REMOVE_TOPIC:
            number = payload.decode("utf-8", "replace").strip()
            if not is_e164(number):
                log.warning(
                    "ignored a removal on %s: %r is not a number in E.164 form",
                    REMOVE_TOPIC,
                    number[:40],
                )
                return False
            self.remove(number, "admin via broker")
            return True
        parts = topic.split("/")
        if len(parts) == 3 and parts[0] == "callguard" and parts[2] == "report":
            return self.record_report(parts[1], payload)
        log.warning("ignored a message on %r", topic[:100])
        return False

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> int:
        """Serve until SIGTERM or SIGINT (or :meth:`stop`); 0 when stopped."""
        self._signing_key()  # refuse to start without one, saying how to make it
        client = self._make_client()
        self._client = client
        restore = self._install_signals()
        client.loop_start()
        try:
            self._resend = True
            self.publish_if_changed()
            version = self._data_version()
            checked = self.monotonic()
            while not self._stop.is_set():
                dirty = False
                with contextlib.suppress(queue.Empty):
                    item = self._inbox.get(timeout=POLL_S)
                    while True:
                        try:
                            dirty |= self._handle(*item)
                        except (CallGuardError, sqlite3.Error) as exc:
                            log.warning("ignored a message on %r: %s", item[1][:100], exc)
                        except Exception:  # nothing from the broker may stop the hub
                            log.exception("ignored a message on %r", item[1][:100])
                        item = self._inbox.get_nowait()
                seen = self._data_version()
                if seen != version:  # another process wrote: `callguard hub remove`
                    version, dirty = seen, True
                if self.monotonic() - checked >= EXPIRY_CHECK_S:
                    checked, dirty = self.monotonic(), True
                if dirty or self._resend:
                    try:
                        self.publish_if_changed()
                    except (sqlite3.Error, CallGuardError, OSError) as exc:
                        log.warning("could not update the list (%s); trying again", exc)
        finally:
            self._stop.set()
            with contextlib.suppress(Exception):
                client.disconnect()
            client.loop_stop()
            self._client = None
            restore()
        log.info("stopped")
        return 0

    def _install_signals(self) -> Callable[[], None]:
        if threading.current_thread() is not threading.main_thread():
            return lambda: None

        def stop(signum: int, frame: FrameType | None) -> None:
            self._stop.set()

        old = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}

        def restore() -> None:
            for sig, handler in old.items():
                signal.signal(sig, handler)

        return restore


def _parse_report(unit: str, payload: bytes) -> tuple[str | None, str, str]:
    """(what is wrong or None, the number, the reason) of a report's payload."""
    if not _UNIT.fullmatch(unit) or unit in _NOT_UNITS:
        return f"{unit[:64]!r} is not a unit's name", "", ""
    if len(payload) > MAX_REPORT_BYTES:
        return f"{len(payload):,} bytes, more than a report's {MAX_REPORT_BYTES:,}", "", ""
    try:
        report = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return "not UTF-8 JSON", "", ""
    if not isinstance(report, dict):
        return 'not a JSON object with "number" and "reason"', "", ""
    number, reason = report.get("number"), report.get("reason")
    if not isinstance(number, str) or not is_e164(number):
        return f"the number {str(number)[:40]!r} is not in E.164 form", "", ""
    if not isinstance(reason, str) or not _REASON.fullmatch(reason):
        return f"the reason {str(reason)[:40]!r} is not a reason word", "", ""
    return None, number, reason
