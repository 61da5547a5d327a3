"""``callguard selftest``: the check a volunteer runs after fitting a unit.

Theory of operation
-------------------
Each check is a function returning a :class:`Check`: passed, failed (with the fix, in words a
volunteer can act on), or skipped (with why). The checks run in the order a volunteer would
fix things: the config, the storage, the modem (found, identified, caller ID on, country set),
the line, the voice, the lights and the button, line sensing. The modem is opened exactly as
the daemon opens it (the same transport, exclusively), so the daemon must be stopped first;
selftest says so if it is not. Exit code 0 when nothing failed, 1 otherwise.

Line sensing is judged by the daemon's own rule (:func:`callguard.hardware.linesense.choose`)
from the modem's answer to the line check's ``AT-TRV``: it FAILs, with the fix, when nothing
can sense the line (``source = "none"``, or ``"auto"`` with a modem that has no ``AT-TRV`` and
no line-sense module set), since the grooming light cannot work then.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from callguard.audio import wavconv
from callguard.audio.prompts import Prompts, Voice
from callguard.audio.speaker import RoomSpeaker
from callguard.config import Config
from callguard.errors import UsageError
from callguard.hardware import linesense
from callguard.hardware.indicators import Indicators
from callguard.modem import profiles
from callguard.modem.transport import ModemError, ModemTransport, _open_failure
from callguard.store.lists import Store

TEST_SENTENCE = "This is CallGuard's self-test. If you can hear this, the speaker works."


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # "pass", "fail" or "skip"
    detail: str
    fix: str = ""

    def to_json(self) -> dict[str, str]:
        return asdict(self)


def _pass(name: str, detail: str) -> Check:
    return Check(name, "pass", detail)


def _fail(name: str, detail: str, fix: str) -> Check:
    return Check(name, "fail", detail, fix)


def _skip(name: str, detail: str) -> Check:
    return Check(name, "skip", detail)


class SelfTest:
    def __init__(
        self,
        config: Config,
        *,
        sound: bool = True,
        button_timeout_s: float = 20.0,
        pin_factory: Any = None,
        say: Callable[[str], None] = print,
        transport_factory: Callable[..., ModemTransport] = ModemTransport,
    ) -> None:
        self.config = config
        self.sound = sound
        self.button_timeout_s = button_timeout_s
        self.pin_factory = pin_factory
        self.say = say
        self.transport_factory = transport_factory
        self.store = Store(config.storage.dir, region=config.screening.region)
        self._modem_profile: profiles.ModemProfile | None = None
        self._asked = False
        """Whether the line check asked a modem for the line voltage; its answer (see
        ``linesense.ask_line_voltage``) is ``_line_voltage``."""
        self._line_voltage: float | str | None = None

    def run(self) -> list[Check]:
        return list(self._checks())

    def _checks(self) -> Iterator[Check]:
        yield _pass("config", f"{self.config.source} is valid")
        yield self._storage()
        yield from self._modem()
        yield from self._voice()
        yield from self._lights()

    # -- storage -------------------------------------------------------------------------------

    def _storage(self) -> Check:
        directory = Path(self.config.storage.dir)
        try:
            directory.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=directory, prefix=".selftest-"):
                pass
            sizes = {name: len(entries) for name, entries in self.store.all_entries().items()}
        except Exception as exc:
            return _fail(
                "storage",
                f"cannot write to {directory}: {exc}",
                "run selftest as the callguard user (sudo -u callguard callguard selftest), or "
                "fix storage.dir in the config",
            )
        return _pass(
            "storage",
            f"{directory}: allow list {sizes['allow']}, block list {sizes['block']}, "
            f"protect list {sizes['protect']}",
        )

    # -- the modem -----------------------------------------------------------------------------

    def _daemon_running(self) -> bool:
        status = self.store.read_status() if self.store.status_path.exists() else None
        if not status or status.get("daemon") != "running":
            return False
        try:
            os.kill(int(status.get("pid", 0)), 0)
        except PermissionError:
            return True
        except (OSError, ValueError):
            return False
        return True

    def _modem(self) -> Iterator[Check]:
        port = self.config.modem.port
        if self._daemon_running():
            yield _fail(
                "modem",
                "the CallGuard daemon is running and holds the modem",
                "stop it for the test: sudo systemctl stop callguard; run selftest; then "
                "sudo systemctl start callguard",
            )
            return
        if "://" not in port and not os.path.exists(port):
            # A device path with nothing there: no modem plugged in (or modem.port is wrong).
            # Said at once; waiting for the transport to give up would only add ten seconds.
            # (A pyserial URL such as loop:// or spy:// is not a path: the transport opens it.)
            missing = FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), port)
            yield from self._no_modem(_open_failure(port, missing), port)
            return
        transport = self.transport_factory(
            port,
            country=self.config.modem.country,
            profile=self.config.modem.profile,
            baudrate=self.config.modem.baudrate,
            health_interval_s=3600,
        )
        transport.start()
        try:
            if not transport.wait_connected(10):
                yield from self._no_modem(transport.status.detail, port)
                return
            status = transport.status
            yield _pass("modem", f"{status.detail}; ATI0/ATI3: {status.identity}")
            yield self._caller_id(transport)
            yield self._caller_id_timing()
            yield self._country(transport)
            yield self._line(transport)
        finally:
            transport.stop()

    def _no_modem(self, detail: str, port: str) -> Iterator[Check]:
        yield _fail("modem", detail, _modem_fix(detail, port))
        for name in ("caller ID", "caller ID timing", "country", "line"):
            yield _skip(name, "needs the modem")

    def _caller_id(self, transport: ModemTransport) -> Check:
        try:
            reply = transport.command("AT+VCID?")
        except ModemError as exc:
            return _fail("caller ID", f"no answer to AT+VCID? ({exc})", "check the modem")
        if reply.ok and any(line.strip().endswith("1") for line in reply.lines):
            return _pass("caller ID", "formatted caller ID is on (AT+VCID=1)")
        warnings = "; ".join(transport.status.warnings)
        return _fail(
            "caller ID",
            f"caller ID is off ({reply.describe()}) {warnings}".strip(),
            "this modem may not decode caller ID: use a USRobotics 5637 or a Conexant-based "
            "modem (Zoom 3095, StarTech); check that modem.country is right",
        )

    def _caller_id_timing(self) -> Check:
        """What the daemon learnt from its last calls (its status stays after a stop)."""
        status = self.store.read_status() if self.store.status_path.exists() else None
        timing = (status or {}).get("caller_id_timing", "unknown")
        if timing == "before-first-ring":
            return _pass(
                "caller ID timing",
                "this line sends caller ID before the first ring: blocked callers never ring",
            )
        if timing == "after-first-ring":
            return _pass(
                "caller ID timing",
                "this line sends caller ID after the first ring (a router's phone port?): a "
                "blocked caller rings once before CallGuard picks up; see Troubleshooting in "
                "the README",
            )
        return _skip("caller ID timing", "not known until CallGuard has seen a call")

    def _country(self, transport: ModemTransport) -> Check:
        want = profiles.country_code(self.config.modem.country)
        try:
            reply = transport.command("AT+GCI?")
        except ModemError as exc:
            return _fail("country", f"no answer to AT+GCI? ({exc})", "check the modem")
        answer = " ".join(reply.lines)
        if reply.ok and want in answer.upper():
            return _pass("country", f"set to {self.config.modem.country} ({answer.strip()})")
        return _fail(
            "country",
            f"the modem says {answer.strip() or reply.describe()}, not {want}",
            f"No caller ID without it: the modem's country is not set. Check modem.country = "
            f'"{self.config.modem.country}" (callguard config check), then restart: '
            "sudo systemctl restart callguard",
        )

    def _line(self, transport: ModemTransport) -> Check:
        profile = self._modem_profile = transport.profile
        try:
            answer = linesense.ask_line_voltage(transport, transport.command_timeout_s)
        except ModemError as exc:
            return _skip("line", f"no line voltage reading ({exc})")
        self._asked, self._line_voltage = True, answer
        if answer is None and profile is not None:
            return _skip("line", f"the {profile.description} cannot report the line voltage")
        if answer == linesense.NO_ANSWER:
            return _skip("line", "no line voltage reading (no answer to AT-TRV)")
        if not isinstance(answer, float):
            return _skip("line", "this modem does not report the line voltage (AT-TRV)")
        volts = answer
        if abs(volts) >= self.config.line_sense.off_hook_below_v:
            return _pass("line", f"{volts:.1f} V: the phone line is connected and on-hook")
        if abs(volts) < 3:
            return _fail(
                "line",
                f"{volts:.1f} V: no phone line",
                "plug the phone line (or, with UK Digital Voice, the router's phone port via a "
                "double adapter) into the modem's LINE socket",
            )
        return _fail(
            "line",
            f"{volts:.1f} V: a phone is off the hook",
            "put every phone back on the hook and run selftest again",
        )

    # -- voice, lights, button, line sensing -----------------------------------------------------

    def _voice(self) -> Iterator[Check]:
        espeak = shutil.which("espeak-ng")
        if espeak:
            yield _pass("speech", f"espeak-ng at {espeak}")
        else:
            yield _fail(
                "speech",
                "espeak-ng is not installed: only the default warning can be spoken",
                "sudo apt install espeak-ng",
            )
        recording = self.config.warning.recording
        if recording:
            try:
                seconds = wavconv.read_wav(recording).seconds
            except UsageError as exc:
                yield _fail(
                    "recording",
                    str(exc),
                    "copy the recording to /etc/callguard/warning.wav (readable by the "
                    "callguard user) and set warning.recording to that path",
                )
            else:
                yield _pass("recording", f"{recording}: {seconds:.1f} s")
        command = self.config.warning.room_command
        if not command:
            yield _skip("speaker", "warning.room_command is empty: no speaker in the room")
            return
        if not self.sound:
            yield _skip("speaker", "--no-sound")
            return
        cache = Path(self.config.storage.dir) / "cache"
        prompts = Prompts(cache, Voice(voice=self.config.warning.voice))
        try:
            code = RoomSpeaker(command, prompts).play_now(prompts.speech(TEST_SENTENCE))
        except Exception as exc:
            code, error = -1, str(exc)
        else:
            error = ""
        if code == 0:
            yield _pass("speaker", f"played a test sentence with {command!r}: did you hear it?")
        else:
            yield _fail(
                "speaker",
                f"{command!r} failed (exit {code}) {error}".strip(),
                "check the speaker is plugged in and turned up (alsamixer), that aplay is "
                "installed (sudo apt install alsa-utils), and warning.room_command",
            )

    def _lights(self) -> Iterator[Check]:
        pins = self.config.indicators
        pressed: list[bool] = []
        indicators = Indicators(
            alert_pin=None if pins.alert_led_pin < 0 else pins.alert_led_pin,
            status_pin=None if pins.status_led_pin < 0 else pins.status_led_pin,
            button_pin=None if pins.button_pin < 0 else pins.button_pin,
            on_button=lambda: pressed.append(True),
            pin_factory=self.pin_factory,
        )
        try:
            if not indicators.available:
                yield _skip("lights", indicators.detail)
                yield _skip("button", "no GPIO")
            else:
                indicators.alert_blinking()
                indicators.modem(True)
                yield _pass("lights", f"{indicators.detail}: both should be blinking now")
                yield self._button(pressed)
                indicators.alert_off()
            yield self._line_sense()
        finally:
            indicators.close()

    def _button(self, pressed: list[bool]) -> Check:
        if self.button_timeout_s <= 0:
            return _skip("button", "--button-timeout 0")
        self.say(f"Press the acknowledge button within {self.button_timeout_s:g} s ...")
        deadline = time.monotonic() + self.button_timeout_s
        while not pressed and time.monotonic() < deadline:
            time.sleep(0.05)
        if pressed:
            return _pass("button", "pressed")
        return _fail(
            "button",
            f"no press within {self.button_timeout_s:g} s",
            f"check the button is wired from GPIO{self.config.indicators.button_pin} to GND "
            "(see Wiring in the README)",
        )

    def _line_sense(self) -> Check:
        """Whether the grooming light can work: the daemon's choice of line-sense source."""
        name = "line sensing"
        settings = self.config.line_sense
        source, answer = settings.source, self._line_voltage
        cannot = "no call durations, and the grooming light cannot work"
        if source == "none":
            return _fail(
                name,
                f'off (line_sense.source = "none"): {cannot}',
                'set line_sense.source = "auto" in the config (sudo callguard setup offers it): '
                "the modem's line voltage where it has one, else the line-sense module",
            )
        if source == "gpio":
            return self._gpio_line_sense("")
        if not self._asked:
            if source == "auto" and linesense.gpio_configured(settings.gpio_pin):
                return self._gpio_line_sense("auto, if the modem cannot sense the line: ")
            return _skip(name, f'needs the modem (line_sense.source = "{source}")')
        choice = linesense.choose(self._modem_profile, answer, settings.gpio_pin)
        if source == "modem":
            if choice.source == "modem":
                return _pass(name, f"the modem's line voltage: {choice.reason}")
            why = linesense.modem_cannot(self._modem_profile, answer)
            return _fail(
                name,
                f'line_sense.source = "modem", but {why}: {cannot}',
                f'this modem cannot sense the line: set line_sense.source = "auto" and '
                f"{linesense.NO_SENSE_FIX}",
            )
        if choice.source == "modem":
            return _pass(name, f"auto: {choice.reason}")
        if choice.source == "gpio":
            return self._gpio_line_sense(f"auto: {choice.reason}: ")
        return _fail(
            name,
            f"auto: {choice.reason}: {cannot}",
            f"this modem cannot sense the line: {linesense.NO_SENSE_FIX}",
        )

    def _gpio_line_sense(self, why: str) -> Check:
        settings = self.config.line_sense
        sense = linesense.GpioLineSense(
            settings.gpio_pin,
            lambda change: None,
            active_high=settings.gpio_active_high,
            pin_factory=self.pin_factory,
        )
        try:
            sense.start()
            if not sense.available:
                return _fail(
                    "line sensing",
                    f"{why}{sense.detail}",
                    "check the line-sense module's wiring (see Wiring in the README) and "
                    "line_sense.gpio_pin",
                )
            return _pass("line sensing", f"{why}{sense.detail}; the line reads {sense.hook.value}")
        finally:
            sense.stop()


def _modem_fix(detail: str, port: str) -> str:
    if "in use" in detail:
        return "stop whatever holds it (sudo systemctl stop callguard; ModemManager) and retry"
    if "permission" in detail:
        return "run as the callguard user: sudo -u callguard callguard selftest"
    if "not answering" in detail or "stopped answering" in detail:
        return "unplug the modem for ten seconds, plug it back in, and run selftest again"
    return (
        f"plug the modem into a USB socket; `ls -l {port}` should show it (the installer's "
        "udev rule names USR 5637 and Conexant modems /dev/callguard-modem); otherwise set "
        "modem.port to the modem's device (ls /dev/ttyACM*)"
    )


def table(checks: list[Check]) -> str:
    width = max(len(c.name) for c in checks)
    lines = []
    for c in checks:
        mark = {"pass": "PASS", "fail": "FAIL", "skip": "skip"}[c.status]
        lines.append(f"{mark}  {c.name:<{width}}  {c.detail}")
        if c.fix:
            lines.append(f"      {'':<{width}}  fix: {c.fix}")
    failed = sum(c.status == "fail" for c in checks)
    lines.append("")
    lines.append(
        "All checks passed." if not failed else f"{failed} check(s) failed: see the fixes above."
    )
    return "\n".join(lines)
