"""``callguard link``: the companion service that tells the family (and, later, the fleet).

One loop, about once a second: the :class:`~callguard.link.events.Watcher` looks at the store,
each new event is written to the outbox (on the card, before anything is sent), and the
:class:`~callguard.link.delivery.Deliverer` tries what is due. A restart retries every pending
delivery at once; the outbox's keys make sure an event is queued once, so an alert raised
while the receiver was down arrives once when it is back. The heartbeat (``[alerts]
heartbeat_url``) is pinged from its own thread while the unit is well, so a slow network never
holds up an alert.

It runs as its own process with its own systemd unit: apprise's memory and the network's
delays never touch the screening daemon, which it reads only through the store's files.
"""

from __future__ import annotations

import datetime as dt
import logging
import signal
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from types import FrameType
from typing import TYPE_CHECKING, Any, Final

from callguard import config as config_mod
from callguard.config import Config
from callguard.link.delivery import Channels, Deliverer
from callguard.link.events import Watcher, pid_alive, screening_runs
from callguard.store.calllog import CallLog
from callguard.store.files import Signature, file_signature
from callguard.store.outbox import Outbox
from callguard.store.state import StateFiles

if TYPE_CHECKING:
    from callguard.link.fleet import FleetLink

log = logging.getLogger(__name__)

POLL_S: Final = 1.0
CONFIG_CHECK_S: Final = 5.0
HEARTBEAT_TIMEOUT_S: Final = 10.0


def now_local() -> dt.datetime:
    return dt.datetime.now().astimezone()


class Link:
    """The service's parts, one :meth:`step` at a time (tests drive it directly)."""

    def __init__(
        self,
        config: Config,
        *,
        config_path: str | None = None,
        clock: Callable[[], dt.datetime] = now_local,
        monotonic: Callable[[], float] = time.monotonic,
        alive: Callable[[int], bool] = pid_alive,
    ) -> None:
        self.config_path = config_path
        self.clock = clock
        self.monotonic = monotonic
        self.alive = alive
        self.outbox = Outbox(config.storage.dir, clock=clock)
        self.state = StateFiles(config.storage.dir, runtime_dir=config.storage.runtime_dir)
        self.calls = CallLog(config.storage.dir, clock=clock)
        self.stopping = threading.Event()
        self._heartbeat_at = 0.0
        self._heartbeat: threading.Thread | None = None
        self._config_checked = 0.0
        self._config_signature = self._signature()
        self.fleet: FleetLink | None = None
        self._community_payload: bytes | None = None
        """The newest community list from the broker, loaded by the loop (not paho's thread:
        writing a million numbers takes a while)."""
        self._community_lock = threading.Lock()
        self.apply(config)

    def apply(self, config: Config) -> None:
        old = getattr(self, "config", None)
        self.config = config
        self.channels = Channels(config.alerts.urls)
        self.deliverer = Deliverer(self.outbox, self.channels, clock=self.clock)
        self.watcher = Watcher(
            config,
            self.state,
            self.calls,
            self.outbox,
            clock=self.clock,
            alive=self.alive,
            on_blocked=self._blocked,
        )
        if old is None or old.fleet != config.fleet:
            self._start_fleet()

    # -- the fleet -----------------------------------------------------------------------------

    def _start_fleet(self) -> None:
        if self.fleet is not None:
            self.fleet.stop()
            self.fleet = None
        if not self.config.fleet.broker:
            return
        from callguard.link.fleet import FleetLink

        self.fleet = FleetLink(self.config, self.state, clock=self.clock)
        if self.config.fleet.community:
            self.fleet.on_community_list = self._community_arrived
        self.fleet.start()

    def _community_arrived(self, payload: bytes) -> None:
        with self._community_lock:
            self._community_payload = payload

    def _load_community(self) -> None:
        with self._community_lock:
            payload, self._community_payload = self._community_payload, None
        if payload is None or not self.config.fleet.community:
            return
        from callguard.link.community import CommunityListError, load_list, loaded_version

        before = loaded_version(self.config.storage.dir)
        try:
            loaded = load_list(payload, self.config.fleet.community_key, self.config.storage.dir)
        except CommunityListError as exc:
            log.warning("the community block list from the broker was refused: %s", exc)
            return
        if loaded.version == before:
            return  # the same list again (the broker resends it at each connection)
        log.info(
            "the community block list version %s is in force: %d numbers",
            loaded.version,
            len(loaded.numbers),
        )

    def _blocked(self, call: Mapping[str, Any]) -> None:
        fleet = self.fleet
        number = call.get("number")
        if fleet is None or not self.config.fleet.community or not isinstance(number, str):
            return
        from callguard.link.community import report_reason

        reason = report_reason(dict(call))
        if reason is not None:
            fleet.report(number, reason)

    # -- the loop ----------------------------------------------------------------------------

    def run(self) -> int:
        log.info(
            "callguard link: %d alert channel(s)%s",
            len(self.config.alerts.urls),
            ", a heartbeat" if self.config.alerts.heartbeat_url else "",
        )
        self.outbox.retry_all_now()  # a restart tries what was waiting at once
        while not self.stopping.is_set():
            self.step()
            self.stopping.wait(POLL_S)
        self.close()
        return 0

    def step(self) -> None:
        """Look, queue, deliver, beat: one round (never raises)."""
        self._reload_if_changed()
        fleet = self.fleet
        if fleet is not None:
            try:
                fleet.publish_state(self.state.read_status())
                self._load_community()
            except Exception:
                log.exception("could not keep the fleet link up to date")
        for message in self.watcher.poll():
            try:
                added = self.outbox.add(
                    message.key,
                    message.kind,
                    message.title,
                    message.body,
                    channels=self.channels.pairs(),
                    expires_after=dt.timedelta(hours=self.config.alerts.expire_hours),
                )
            except Exception:
                log.exception("could not queue the %s alert %s", message.kind, message.key)
                continue
            if added is not None:
                log.info("alert queued: %s (%s)", message.title, message.kind)
                if fleet is not None:
                    fleet.publish_event(message)
        try:
            self.deliverer.run_due()
        except Exception:
            log.exception("could not deliver the alerts due; trying again shortly")
        self._beat()

    def close(self) -> None:
        if self.fleet is not None:
            self.fleet.stop()
        self.outbox.close()
        self.calls.close()

    # -- the heartbeat -----------------------------------------------------------------------

    def unit_well(self) -> bool:
        """Screening runs and has the modem: what the heartbeat vouches for."""
        status = self.state.read_status()
        return screening_runs(status, self.alive) and (status or {}).get("modem") == "connected"

    def _beat(self) -> None:
        url = self.config.alerts.heartbeat_url
        mono = self.monotonic()
        if not url or mono < self._heartbeat_at:
            return
        if self._heartbeat is not None and self._heartbeat.is_alive():
            return  # the last ping is still on its way
        self._heartbeat_at = mono + self.config.alerts.heartbeat_minutes * 60
        try:
            well = self.unit_well()
        except Exception:
            well = False
        if not well:
            log.warning("heartbeat withheld: screening is not running with its modem")
            return
        self._heartbeat = threading.Thread(target=ping, args=(url,), name="heartbeat", daemon=True)
        self._heartbeat.start()

    # -- the config ------------------------------------------------------------------------

    def _signature(self) -> Signature | None:
        return file_signature(self.config_path) if self.config_path else None

    def _reload_if_changed(self) -> None:
        mono = self.monotonic()
        if not self.config_path or mono - self._config_checked < CONFIG_CHECK_S:
            return
        self._config_checked = mono
        signature = self._signature()
        if signature == self._config_signature:
            return
        self._config_signature = signature
        try:
            config = config_mod.load(self.config_path)
        except Exception as exc:
            log.error("the changed config was not loaded, the old one stays: %s", exc)
            return
        log.info("the config file changed: alerts follow it")
        self.apply(config)


def ping(url: str) -> bool:
    """GET ``url`` (a Healthchecks-style check); True if it answered 2xx."""
    try:
        with urllib.request.urlopen(url, timeout=HEARTBEAT_TIMEOUT_S) as reply:
            ok = bool(200 <= reply.status < 300)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        log.warning("the heartbeat ping did not get through: %s", exc)
        return False
    if not ok:
        log.warning("the heartbeat ping was refused")
    return ok


def run(config: Config, config_path: str | None = None) -> int:
    """The service in the foreground until SIGTERM or SIGINT (its systemd unit runs this)."""
    link = Link(config, config_path=config_path)

    def stop(signum: int, frame: FrameType | None) -> None:
        link.stopping.set()

    previous: dict[signal.Signals, Any] = {}
    for signum in (signal.SIGTERM, signal.SIGINT):
        previous[signum] = signal.signal(signum, stop)
    try:
        return link.run()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
