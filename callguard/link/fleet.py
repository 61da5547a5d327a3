"""The fleet link: a unit reports to its volunteer group's MQTT broker.

Theory of operation
-------------------
``callguard link`` owns one :class:`FleetLink`. :meth:`FleetLink.start` never blocks and never
needs the broker: it hands paho the address (``connect_async``) and paho's own thread connects,
and reconnects with a growing delay (1 s to 2 min) for as long as the link runs. The broker
learns of a unit that dies without a word from its Last Will: ``callguard/<unit>/availability``
becomes ``offline`` (retained) once the keepalive runs out.

Topics (``<unit>`` is ``[fleet] unit_id``; the group's ACL lets a unit write only these):

* ``callguard/<unit>/availability``: ``online`` / ``offline``, retained, qos 1;
* ``callguard/<unit>/state``: retained JSON (:meth:`FleetLink.state_of`), sent when its content
  changes and again on every (re)connect;
* ``callguard/<unit>/events``: the carer alerts as JSON ``{key, kind, title, body, at}``, qos 1,
  not retained; callers' numbers are taken out (:func:`strip_numbers`) unless
  ``share_numbers``;
* ``callguard/<unit>/report``: a blocked number for the community list (``community`` only);
* ``callguard/<unit>/selftest``: the answer to the ``selftest`` command;
* ``callguard/<unit>/cmd/<name>``: commands to the unit: ``ack`` clears the grooming alert,
  ``reload`` sends SIGHUP to the screening daemon, ``selftest`` asks for a self-test;
* ``homeassistant/<component>/<unit>/<object>/config``: Home Assistant MQTT discovery, retained.

Callbacks run on paho's thread. Nothing that arrives from the broker may raise out of them: a
bad message is logged and dropped. The state is kept under a lock, since the service's loop
publishes it and paho's thread sends it again on reconnect.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
import signal
import ssl
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from callguard.config import Config, FleetConfig
from callguard.link.events import Message, pid_alive, screening_state
from callguard.link.secret import SecretError, read_secret
from callguard.store.state import StateFiles

log = logging.getLogger(__name__)

ROOT: Final = "callguard"
DISCOVERY_PREFIX: Final = "homeassistant"
COMMUNITY_LIST: Final = "callguard/community/list"
ACK_BY: Final = "the fleet (MQTT)"
RECONNECT_MIN_S: Final = 1
RECONNECT_MAX_S: Final = 120
MAX_QUEUED: Final = 200
"""Messages paho keeps while the broker is away (events, reports); beyond that they are
dropped, and the carers still get theirs from the outbox."""
STOP_S: Final = 5.0
"""At most this long in :meth:`FleetLink.stop` (the offline message, then the thread)."""
NOT_SHARED: Final = "(number not shared)"


def now_local() -> dt.datetime:
    return dt.datetime.now().astimezone()


# -- phone numbers out of the words ------------------------------------------------------------

_CANDIDATE: Final = re.compile(r"(?<![\w+])(?:\+|\(0|0)\d(?:[ \-]?\(?\d+\)?)*")
"""A run that may be a phone number: ``+`` and digits, or ``0`` / ``(0`` and digits, with
single spaces, hyphens and brackets between groups (``+44 (0)20 7946 0123``)."""
_GROUP: Final = re.compile(r"[^ \-]+|[ \-]")


def strip_numbers(text: str, replacement: str = NOT_SHARED) -> str:
    """``text`` with every phone number put as ``replacement``: E.164 and international forms
    (``+442079460123``, ``+44 20 7946 0123``, ``0044 20 7946 0123``) and UK national ones
    (``020 7946 0123``, ``07700 900461``, ``0306 999 0123``, ``(01707) 354000``). Short codes
    (``159``, ``999``, ``118118``), times, dates and counts stay as they are."""
    return _CANDIDATE.sub(lambda m: _strip_run(m.group(0), replacement), text)


def _strip_run(run: str, replacement: str) -> str:
    limit = 15 if run.startswith(("+", "00")) else 11
    least = 7 if run.startswith("+") else 9 if run.startswith("00") else 10
    # take whole groups from the start while they fit one number; what follows stays
    taken, digits, end = "", 0, 0
    for part in _GROUP.findall(run):
        count = sum(ch.isdigit() for ch in part)
        if count and digits + count > limit:
            break
        end += len(part)
        digits += count
        if count:
            taken = run[:end]
    if digits < least or not taken:
        return run
    return replacement + run[len(taken) :]


def e164_of(number: str, region: str = "GB") -> str | None:
    """``number`` (as caller ID or a person writes it) in E.164, or None for a short code, a
    withheld caller or digits that make no number."""
    from callguard.core.numbers import from_caller_id

    return from_caller_id(number, region).e164


# -- the broker's address and the unit's password -----------------------------------------------


@dataclass(frozen=True)
class Broker:
    host: str
    port: int
    tls: bool


def broker_of(url: str) -> Broker:
    """``mqtts://host:8883`` / ``mqtt://host`` (the config checked its form)."""
    parts = urlsplit(url)
    tls = parts.scheme == "mqtts"
    return Broker(parts.hostname or "", parts.port or (8883 if tls else 1883), tls)


PasswordError = SecretError
"""A password file that cannot be used (:mod:`callguard.link.secret`)."""


def read_password(fleet: FleetConfig) -> str | None:
    """The password in ``[fleet] password_file``, or None when no file is set (a broker that
    asks for no password). Raises :class:`PasswordError`."""
    if not fleet.password_file:
        return None
    return read_secret(fleet.password_file, "[fleet] password_file")


def new_client(fleet: FleetConfig, client_id: str, password: str | None) -> mqtt.Client:
    """A paho client with the fleet's login and TLS (for ``mqtts``); raises ``OSError`` or
    ``ssl.SSLError`` for a CA file that cannot be used."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
    client.username_pw_set(fleet.username or fleet.unit_id, password)
    if broker_of(fleet.broker).tls:
        client.tls_set(ca_certs=fleet.ca_file or None)
    return client


# -- the link ------------------------------------------------------------------------------


class FleetLink:
    """The unit's connection to the group's broker; see the module docstring."""

    def __init__(
        self,
        config: Config,
        state: StateFiles,
        *,
        clock: Callable[[], dt.datetime] | None = None,
        keepalive_s: int = 60,
        alive: Callable[[int], bool] = pid_alive,
    ) -> None:
        self.config = config
        self.fleet = config.fleet
        self.unit = config.fleet.unit_id
        self.state = state
        self.clock = clock or now_local
        self.keepalive_s = keepalive_s
        self.alive = alive
        self.on_community_list: Callable[[bytes], None] | None = None
        self._client: mqtt.Client | None = None
        self._lock = threading.Lock()
        self._online = False  # connected: the state may be sent (under _lock)
        self._ready = threading.Event()  # connected, announced and subscribed
        self._content: dict[str, Any] | None = None  # the state without its time
        self._payload: bytes | None = None
        self._sent = False  # the current payload went out on this connection
        self._status: dict[str, Any] | None = None  # the last one given to publish_state
        self._given = False
        self._subscribe_mid: int | None = None
        self._last_problem = ""

    # -- topics ----------------------------------------------------------------------------

    def topic(self, *parts: str) -> str:
        return "/".join((ROOT, self.unit, *parts))

    @property
    def availability_topic(self) -> str:
        return self.topic("availability")

    @property
    def state_topic(self) -> str:
        return self.topic("state")

    # -- starting and stopping ---------------------------------------------------------------

    def start(self) -> None:
        """Begin connecting (in paho's thread) and return at once; a no-op with no broker."""
        if not self.fleet.broker or self._client is not None:
            return
        if not self.unit:
            log.error(
                "fleet: [fleet] broker is set but unit_id is empty: set unit_id (e.g. "
                "'herts-0042', the unit's name at the broker); no fleet link"
            )
            return
        try:
            password = read_password(self.fleet)
        except PasswordError as exc:
            log.error("fleet: %s; no fleet link until it is fixed and the link restarted", exc)
            return
        broker = broker_of(self.fleet.broker)
        try:
            client = new_client(self.fleet, f"callguard-{self.unit}", password)
        except (OSError, ssl.SSLError, ValueError) as exc:
            log.error(
                "fleet: [fleet] ca_file %s cannot be used for %s (%s): point ca_file at the "
                "group's CA certificate (PEM), or leave it empty for the system's; no fleet link",
                self.fleet.ca_file or "(the system's)",
                self.fleet.broker,
                exc,
            )
            return
        client.will_set(self.availability_topic, "offline", qos=1, retain=True)
        client.reconnect_delay_set(RECONNECT_MIN_S, RECONNECT_MAX_S)
        client.max_queued_messages_set(MAX_QUEUED)
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        self._client = client  # before paho's thread runs: its on_connect publishes through it
        client.connect_async(broker.host, broker.port, keepalive=self.keepalive_s)
        client.loop_start()
        log.info("fleet: connecting to %s as %s", self.fleet.broker, self.unit)

    def stop(self) -> None:
        """Say ``offline``, disconnect and stop paho's thread, in at most about STOP_S."""
        client, self._client = self._client, None
        if client is None:
            return
        with self._lock:
            online = self._online
        try:
            if online:  # a clean disconnect withholds the Last Will: say it ourselves
                info = client.publish(self.availability_topic, "offline", qos=1, retain=True)
                info.wait_for_publish(STOP_S / 2)
            client.disconnect()
        except Exception as exc:  # a broker gone away at the last moment
            log.warning("fleet: could not say goodbye to the broker: %s", exc)
        finally:
            with self._lock:
                self._online = False
            self._ready.clear()
            stopper = threading.Thread(target=client.loop_stop, name="fleet-stop", daemon=True)
            stopper.start()
            stopper.join(STOP_S / 2)

    @property
    def connected(self) -> bool:
        """Connected, with ``online``, the state and the discovery configs sent, and the
        commands subscribed to."""
        return self._ready.is_set()

    def wait_connected(self, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` for :attr:`connected`; whether it is."""
        return self._ready.wait(timeout_s)

    # -- what the unit sends -------------------------------------------------------------------

    def publish_state(self, status: dict[str, Any] | None) -> None:
        """The state (retained), if its content changed or it has not gone out on this
        connection; while the broker is away it waits for the reconnect."""
        content = self.state_of(status)
        with self._lock:
            self._status, self._given = status, True
            if content != self._content:
                self._content = content
                self._payload = _json({**content, "updated": self._now()})
                self._sent = False
            client = self._client
            if client is None or not self._online or self._sent:
                return
            self._sent = True
            payload = self._payload
        client.publish(self.state_topic, payload, qos=1, retain=True)

    def publish_event(self, message: Message) -> None:
        """A carer alert to ``events`` (qos 1, not retained); numbers only with
        ``share_numbers``."""
        client = self._client
        if client is None:
            return
        key, title, body = message.key, message.title, message.body
        if not self.fleet.share_numbers:
            key, title, body = strip_numbers(key), strip_numbers(title), strip_numbers(body)
        payload = {"key": key, "kind": message.kind, "title": title, "body": body}
        client.publish(self.topic("events"), _json({**payload, "at": self._now()}), qos=1)

    def report(self, number: str, reason: str) -> None:
        """A blocked number for the group's community list (only with ``community`` on)."""
        client = self._client
        if client is None or not self.fleet.community:
            return
        e164 = e164_of(number, self.config.screening.region)
        if e164 is None:
            log.info("fleet: %r is not a full number; not reported to the community list", number)
            return
        payload = {"number": e164, "reason": reason, "at": self._now()}
        client.publish(self.topic("report"), _json(payload), qos=1)

    # -- the state -----------------------------------------------------------------------------

    def state_of(self, status: dict[str, Any] | None) -> dict[str, Any]:
        """The state JSON without its ``updated`` time: ``daemon`` ("running", "stopped", or
        "not running" when there is no status or its process is gone), ``modem``, ``line``,
        ``grooming_alert``, ``last_call`` (its start, ISO 8601, or null), ``last_call_verdict``,
        ``version``, ``line_sense`` (its source), ``caller_id_timing``, ``clock_synchronised``,
        ``line_dead`` (true/false, null when unknown). No caller's number is in it."""
        status = status or {}
        daemon = screening_state(status, self.alive)
        running = daemon == "running"
        last = status.get("last_call")
        last = last if isinstance(last, dict) else {}
        sense = status.get("line_sense")
        voltage = status.get("line_voltage")
        dead = voltage.get("dead") if isinstance(voltage, dict) else None
        modem = status.get("modem")
        return {
            "unit": self.unit,
            "daemon": daemon,
            "modem": modem
            if running and modem in ("connected", "disconnected")
            else "disconnected",
            "line": str(status.get("line") or "unknown") if running else "unknown",
            "grooming_alert": self._grooming_alert(status),
            "last_call": last.get("started") if isinstance(last.get("started"), str) else None,
            "last_call_verdict": last.get("verdict")
            if isinstance(last.get("verdict"), str)
            else None,
            "version": status.get("version") if isinstance(status.get("version"), str) else None,
            "line_sense": sense.get("source") if isinstance(sense, dict) else None,
            "caller_id_timing": str(status.get("caller_id_timing") or "unknown"),
            "clock_synchronised": status.get("clock_synchronised") is not False,
            "line_dead": dead if isinstance(dead, bool) and running else None,
        }

    def _grooming_alert(self, status: dict[str, Any]) -> bool:
        """The alert file is the truth (the daemon lights the lamp from it); the status's word
        when the file cannot be read."""
        try:
            return self.state.alert_active()
        except Exception as exc:
            log.warning("fleet: the alert file cannot be read (%s); using the status", exc)
            return bool(status.get("grooming_alert"))

    def selftest(self, status: dict[str, Any] | None) -> dict[str, Any]:
        """What the ``selftest`` command answers: each check passed or failed, in words."""
        status = status or {}
        running = screening_state(status, self.alive) == "running"
        checks: list[dict[str, Any]] = []

        def check(name: str, ok: bool, good: str, bad: str) -> None:
            checks.append({"check": name, "ok": ok, "detail": good if ok else bad})

        check(
            "screening",
            running,
            f"screening is running (process {status.get('pid')})",
            "screening is not running: calls ring through unscreened; restart the unit "
            "(sudo systemctl restart callguard) and look at journalctl -u callguard",
        )
        check(
            "modem",
            running and status.get("modem") == "connected",
            "the modem is connected",
            "the modem is not connected: check its USB cable, then restart the unit",
        )
        voltage = status.get("line_voltage")
        dead = voltage.get("dead") if isinstance(voltage, dict) else None
        if running and dead is True:
            check(
                "line",
                False,
                "",
                "the phone line is dead (no voltage): check the cable "
                "from the wall socket to the unit, and ask the phone company",
            )
        elif running and dead is False:
            volts = voltage.get("volts") if isinstance(voltage, dict) else None
            check("line", True, f"the phone line has voltage ({volts} V)", "")
        else:
            check("line", True, "the line voltage is not known (this modem cannot read it)", "")
        check(
            "clock",
            status.get("clock_synchronised") is True,
            "the clock is synchronised",
            "the clock is not synchronised: check the unit's network (call times may be wrong)",
        )
        timing = status.get("caller_id_timing")
        check(
            "caller_id",
            timing in ("before-first-ring", "after-first-ring"),
            f"caller ID comes {str(timing).replace('-', ' ')}",
            "when this line sends caller ID is not known yet: ring the line once from a phone "
            "that shows its number",
        )
        return {
            "unit": self.unit,
            "at": self._now(),
            "ok": all(c["ok"] for c in checks),
            "checks": checks,
        }

    # -- Home Assistant discovery ----------------------------------------------------------

    def discovery(self) -> list[tuple[str, dict[str, Any]]]:
        """(topic, config) for each Home Assistant entity of this unit, under
        ``homeassistant/<component>/<unit>/<object>/config``."""
        from callguard import __version__

        device = {
            "identifiers": [f"callguard_{self.unit}"],
            "name": f"CallGuard {self.unit}",
            "manufacturer": "CallGuard",
            "model": "CallGuard call screener",
            "sw_version": __version__,
        }
        common = {
            "availability_topic": self.availability_topic,
            "payload_available": "online",
            "payload_not_available": "offline",
            "device": device,
        }
        on_off = {"payload_on": "ON", "payload_off": "OFF", "state_topic": self.state_topic}
        entities: list[tuple[str, str, dict[str, Any]]] = [
            (
                "binary_sensor",
                "modem",
                {
                    "name": "Modem",
                    "device_class": "connectivity",
                    "value_template": "{{ 'ON' if value_json.modem == 'connected' else 'OFF' }}",
                    **on_off,
                },
            ),
            (
                "binary_sensor",
                "grooming_alert",
                {
                    "name": "Grooming alert",
                    "device_class": "problem",
                    "value_template": "{{ 'ON' if value_json.grooming_alert else 'OFF' }}",
                    **on_off,
                },
            ),
            (
                "sensor",
                "last_call",
                {
                    "name": "Last call",
                    "device_class": "timestamp",
                    "state_topic": self.state_topic,
                    "value_template": "{{ value_json.last_call or None }}",
                },
            ),
            (
                "sensor",
                "line",
                {
                    "name": "Line",
                    "icon": "mdi:phone-classic",
                    "state_topic": self.state_topic,
                    "value_template": "{{ value_json.line }}",
                },
            ),
            (
                "button",
                "ack",
                {
                    "name": "Clear the grooming alert",
                    "command_topic": self.topic("cmd", "ack"),
                    "payload_press": "ack",
                    "qos": 1,
                },
            ),
        ]
        return [
            (
                f"{DISCOVERY_PREFIX}/{component}/{self.unit}/{obj}/config",
                {**config, "unique_id": f"callguard_{self.unit}_{obj}", **common},
            )
            for component, obj, config in entities
        ]

    # -- paho's callbacks (its thread; never raise) -----------------------------------------

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.ConnectFlags,
        reason_code: ReasonCode,
        properties: Any,
    ) -> None:
        try:
            if reason_code.is_failure:
                self._problem(
                    f"the broker {self.fleet.broker} refused {self.fleet.username or self.unit}: "
                    f"{reason_code}; check [fleet] username and the password in "
                    f"{self.fleet.password_file or '(no password_file)'} (retrying)"
                )
                return
            self._last_problem = ""
            log.info("fleet: connected to %s as %s", self.fleet.broker, self.unit)
            client.publish(self.availability_topic, "online", qos=1, retain=True)
            for topic, config in self.discovery():
                client.publish(topic, _json(config), qos=1, retain=True)
            with self._lock:
                self._online = True
                self._sent = False
            self.publish_state(self._status if self._given else self.state.read_status())
            topics = [(self.topic("cmd", "#"), 1)]
            if self.fleet.community:
                topics.append((COMMUNITY_LIST, 1))
            _, self._subscribe_mid = client.subscribe(topics)
        except Exception:
            log.exception("fleet: could not set up the connection to %s", self.fleet.broker)

    def _on_subscribe(
        self, client: mqtt.Client, userdata: Any, mid: int, reason_codes: Any, properties: Any
    ) -> None:
        if mid != self._subscribe_mid:
            return
        failed = [str(code) for code in reason_codes if code.is_failure]
        if failed:
            log.error(
                "fleet: the broker refused this unit its command topics (%s): the broker's ACL "
                "needs 'pattern readwrite callguard/%%u/#'",
                ", ".join(failed),
            )
        self._ready.set()

    def _on_connect_fail(self, client: mqtt.Client, userdata: Any) -> None:
        # paho calls this inside its ``except OSError``: the error is the one in hand
        error = sys.exc_info()[1]
        why = f": {error}" if error is not None else ""
        fix = ""
        if isinstance(error, ssl.SSLCertVerificationError):
            fix = (
                "; check [fleet] ca_file is the group's CA and the broker's name in its certificate"
            )
        self._problem(f"cannot reach the broker {self.fleet.broker}{why}{fix} (retrying)")

    def _on_disconnect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.DisconnectFlags,
        reason_code: ReasonCode,
        properties: Any,
    ) -> None:
        with self._lock:
            was_online, self._online = self._online, False
        self._ready.clear()
        if was_online and self._client is not None:
            log.warning(
                "fleet: lost the broker %s (%s); reconnecting", self.fleet.broker, reason_code
            )

    def _problem(self, text: str) -> None:
        """Log a connection problem once, not on every retry."""
        if text != self._last_problem:
            self._last_problem = text
            log.error("fleet: %s", text)

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        try:
            self.handle(message.topic, bytes(message.payload))
        except Exception:
            log.exception("fleet: the message on %r could not be handled; ignored", message.topic)

    # -- commands --------------------------------------------------------------------------

    def handle(self, topic: str, payload: bytes) -> None:
        """A message from the broker: the community list, or a command on this unit's own
        ``cmd`` topics; anything else is logged and ignored."""
        if topic == COMMUNITY_LIST:
            if self.fleet.community and self.on_community_list is not None:
                self.on_community_list(payload)
            return
        prefix = self.topic("cmd") + "/"
        if not topic.startswith(prefix):
            log.warning("fleet: a message on %r is not for this unit; ignored", topic)
            return
        command = topic[len(prefix) :]
        if command == "ack":
            alert = self.state.ack_alert(by=ACK_BY)
            if alert is None:
                log.info("fleet: ack from the broker, but no grooming alert was on")
            else:
                log.info("fleet: the grooming alert was cleared from the broker")
            # the alert's word comes from its file: the last status, with the alert now clear
            self.publish_state(self._status if self._given else self.state.read_status())
        elif command == "reload":
            self._reload()
        elif command == "selftest":
            report = self.selftest(self.state.read_status())
            client = self._client
            if client is not None:
                client.publish(self.topic("selftest"), _json(report), qos=1)
            log.info(
                "fleet: self-test asked for from the broker: %s",
                "passed" if report["ok"] else "FAILED",
            )
        else:
            log.warning("fleet: unknown command %r from the broker; ignored", command)

    def _reload(self) -> None:
        status = self.state.read_status() or {}
        pid = status.get("pid")
        if screening_state(status, self.alive) != "running" or not isinstance(pid, int):
            log.warning("fleet: reload asked for, but screening is not running")
            return
        try:
            os.kill(pid, signal.SIGHUP)
        except OSError as exc:
            log.error("fleet: could not tell screening (process %d) to reload: %s", pid, exc)
            return
        log.info("fleet: screening (process %d) told to reload, as the broker asked", pid)

    def _now(self) -> str:
        return self.clock().isoformat(timespec="seconds")


def _json(data: Any) -> bytes:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
