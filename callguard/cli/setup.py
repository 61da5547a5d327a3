"""``callguard setup``: plain questions, one at a time, for a volunteer sitting with the family.

Theory of operation
-------------------
:func:`run_setup` asks through two injected functions, ``ask`` (``input``) and ``say``
(``print``), so tests drive it with a script and the CLI with a terminal. There are five steps,
each a loop of questions: the allow list (family and friends), the protect list (the numbers on
the back of the bank cards), the warning voice (CallGuard's, or a family recording), the
quiet hours, and line sensing for the grooming light (is the line-sense module fitted, and on
which pin; line sensing turned on if the config had it off); then a summary of what changed
and what to do next.

Every answer is checked as soon as it is given, with the same code that checks it elsewhere
(:func:`~callguard.core.lists.target_for` for numbers,
:func:`~callguard.audio.wavconv.read_wav` for a recording,
:func:`~callguard.config.from_dict` for settings). A bad answer is explained and the question
asked again; an empty answer moves on; EOF (Ctrl-D) or Ctrl-C stops the wizard.

Every change is saved the moment it is confirmed, whole or not at all, so stopping at any
point keeps what came before and nothing is half-written. List entries go through
:meth:`Store.add <callguard.store.lists.Store.add>` (``by="setup"``; a number on a conflicting list
is moved only after a "y"). A setting is written by :func:`save_setting`, through
:func:`callguard.config.set_value` (the one place CallGuard writes TOML): the commented file is
read with tomlkit, the one value set, and every other line, comment and blank line kept; the
new text must pass :func:`~callguard.config.from_dict` (the checks
:func:`~callguard.config.load` makes) before :func:`~callguard.store.files.write_atomically`
replaces the file, keeping its mode and owner.

The service is sandboxed (``ProtectHome=yes``, ``PrivateTmp=yes``) and runs as its own user,
so a recording under /home, in /tmp, on a USB stick, or not readable by everyone, would make
its config fail to load at the next start. :func:`service_cannot_read` spots those, and the
wizard offers to copy the file beside the config (``warning-recording.wav``) and use the copy.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import re
import shlex
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from callguard import config as configuration
from callguard.audio import wavconv
from callguard.core.lists import CONFLICTS, LIST_TITLES, WHY_CONFLICT, Entry, Target, target_for
from callguard.core.numbers import NumberError, for_people
from callguard.core.screening import quiet_span
from callguard.errors import CallGuardError, UsageError
from callguard.hardware.linesense import MODULE_PIN
from callguard.store.files import write_atomically
from callguard.store.jsonfile import Recovery
from callguard.store.lists import Store

__all__ = [
    "RECORDING_NAME",
    "run_setup",
    "save_setting",
    "service_cannot_read",
]

Ask = Callable[[str], str]
Say = Callable[[str], None]

BY = "setup"
"""The ``added_by`` of every entry the wizard adds."""
RECORDING_NAME = "warning-recording.wav"
"""The copy of a family recording kept beside the config file."""

OUT_OF_REACH: dict[str, str] = {
    "/home": "the CallGuard service is not allowed to look inside /home",
    "/root": "the CallGuard service is not allowed to look inside /root",
    "/run/user": "the CallGuard service is not allowed to look inside /run/user",
    "/tmp": "files in /tmp are deleted at a restart, and the CallGuard service cannot see them",
    "/var/tmp": "the CallGuard service cannot see files in /var/tmp",
    "/media": "it is on a USB stick or another removable drive, which will not stay plugged in",
    "/mnt": "it is on a mounted drive, which may not be there after a restart",
}
"""Folders the service cannot read (see ``systemd/callguard.service``) or should not rely on."""

YES = frozenset({"y", "yes"})
NO = frozenset({"n", "no"})
NONE_WORDS = frozenset({"none", "no", "off"})

INDICATOR_NAMES = {
    "alert_led_pin": "the alert light",
    "status_led_pin": "the status light",
    "button_pin": "the button",
}
_PIN_RE = re.compile(r"(?:gpio|bcm)?\s*(\d{1,3})")


def run_setup(
    config_path: Path, *, ask: Ask = input, say: Say = print, ask_secret: Ask = getpass.getpass
) -> int:
    """Ask the setup questions; 0 when done or stopped (EOF), 2 if the config cannot be loaded.

    1 if the lists' folder or the config's folder cannot be written (checked before the first
    question) or the store fails on the way; 130 after Ctrl-C. What was saved stays saved.
    """
    path = Path(config_path)
    try:
        if path.exists() or path.is_symlink():
            config = configuration.load(str(path))
        else:
            config = configuration.from_dict({}, str(path))
    except configuration.ConfigError as exc:
        say(f"callguard: error: {exc}")
        say("Fix the config file (check it with: callguard config check), then run setup again.")
        return 2
    for folder, what in (
        (Path(config.storage.dir), f"the lists' folder {config.storage.dir} (storage.dir)"),
        (_resolved(path).parent, f"the config file's folder {_resolved(path).parent}"),
    ):
        if not _can_write_in(folder):
            say(
                f"callguard: error: setup cannot write to {what}. Run it as root "
                "(sudo callguard setup), or check that the folder is right."
            )
            return 1
    wizard = _Wizard(path, config, ask, say, ask_secret)
    return wizard.run()


@dataclass
class _Wizard:
    config_path: Path
    config: configuration.Config
    ask_raw: Ask
    say: Say
    ask_secret: Ask = getpass.getpass
    changes: list[str] = field(default_factory=list)
    lists_changed: bool = False
    config_changed: bool = False

    def __post_init__(self) -> None:
        self.region = self.config.screening.region
        self.store = Store(
            self.config.storage.dir,
            region=self.region,
            retention_days=self.config.storage.log_retention_days,
            on_recovery=self._report_recovery,
        )

    # -- the whole run ------------------------------------------------------------------------

    def run(self) -> int:
        self.say("CallGuard setup. Answer each question, or press Enter to skip it.")
        self.say("Each answer is saved as you go; press Ctrl-D at any time to stop.")
        if not self.config_path.exists():
            self.say(
                f"There is no config file at {self.config_path} yet; it will be made with "
                "only the settings you choose here."
            )
        try:
            self._list_step(
                "allow",
                "Family and friends who should always get through.",
                "Whose number is it? (e.g. 'Sue, daughter'): ",
            )
            self._list_step(
                "protect",
                "The numbers on the back of the resident's bank cards "
                "(the bank never rings from these).",
                "Which bank or card? ",
            )
            self._voice_step()
            self._quiet_hours_step()
            self._line_sense_step()
            self._web_password_step()
        except EOFError:
            self.say("")
            self.say("Setup stopped. Everything saved before this point is kept.")
            self._summary()
            return 0
        except KeyboardInterrupt:
            self.say("")
            self.say("Setup stopped (Ctrl-C). Everything saved before this point is kept.")
            self._summary()
            return 130
        except CallGuardError as exc:  # the store's folder or lock: no point asking on
            self.say(f"callguard: error: {exc}")
            self.say("Setup stopped. Everything saved before this point is kept.")
            self._summary()
            return 1
        self.say("")
        self.say("Setup finished.")
        self._summary()
        return 0

    def _summary(self) -> None:
        if not self.changes:
            self.say("Nothing was changed.")
        else:
            self.say("What changed:")
            for change in self.changes:
                self.say(f"  - {change}")
        self.say("Next step: run: callguard selftest")
        notes = []
        if self.lists_changed:
            notes.append("the daemon picks the lists up by itself")
        if self.config_changed:
            notes.append("for config changes run: sudo systemctl reload callguard")
        if notes:
            text = "; ".join(notes)
            self.say(text[0].upper() + text[1:])

    # -- asking -------------------------------------------------------------------------------

    def _ask(self, prompt: str) -> str:
        return self.ask_raw(prompt).strip()

    def _yes_no(self, prompt: str) -> bool:
        """y/yes or n/no; an empty answer is no."""
        while True:
            answer = self._ask(prompt).lower()
            if answer in YES:
                return True
            if not answer or answer in NO:
                return False
            self.say("Please answer y (yes) or n (no).")

    def _report_recovery(self, recovery: Recovery) -> None:
        self.say(f"Note: {recovery.message()}")

    # -- steps 1 and 2: the allow and protect lists --------------------------------------------

    def _list_step(self, list_name: str, heading: str, name_prompt: str) -> None:
        self.say("")
        self.say(heading)
        while True:
            target = self._ask_number()
            if target is None:
                return
            display = for_people(target.number, self.region)
            found = self.store.find(target.number)
            conflicts = [c for c in CONFLICTS[list_name] if c in found]
            if conflicts:
                self.say(_conflict(list_name, display, conflicts, found))
                if not self._yes_no("Add it anyway? (y/n) "):
                    self.say(f"{display} was left as it was.")
                    continue
            name = self._ask(name_prompt)
            try:
                result = self.store.add(list_name, target, name=name, by=BY, force=bool(conflicts))
            except UsageError as exc:  # changed by someone else since find()
                self.say(f"{display} was not added: {exc}")
                continue
            label = f" ({result.entry.name})" if result.entry.name else ""
            title = LIST_TITLES[list_name]
            if result.updated:
                done = f"Updated {display}{label} on the {title}."
            else:
                done = f"Added {display}{label} to the {title}."
            self.say(done)
            self.changes.append(done.rstrip("."))
            for other in result.moved_from:
                moved = f"It was on the {LIST_TITLES[other]}; it has been taken off."
                self.say(moved)
                self.changes.append(f"Took {display} off the {LIST_TITLES[other]}")
            self.lists_changed = True

    def _ask_number(self) -> Target | None:
        while True:
            text = self._ask("Phone number (or Enter to finish): ")
            if not text:
                return None
            try:
                target = target_for(text, self.region)
            except NumberError as exc:
                self.say(f"Sorry, that number cannot be used: {exc}")
                continue
            if target.kind == "prefix":
                self.say(
                    f"{text!r} ends with *, which makes it a rule for a whole range of numbers. "
                    "Here, type one whole number, e.g. 01707 354000."
                )
                continue
            return target

    # -- step 3: the warning voice -------------------------------------------------------------

    def _voice_step(self) -> None:
        self.say("")
        self.say("The warning voice: (1) CallGuard's voice, or (2) a recording of a family member")
        current = self.config.warning.recording
        self.say(f"Now: the recording {current}." if current else "Now: CallGuard's voice.")
        while True:
            choice = self._ask("Type 1 or 2 (or Enter to leave it as it is): ")
            if not choice:
                return
            if choice in ("1", "2"):
                break
            self.say("Please type 1 or 2, or just press Enter to leave it as it is.")
        if choice == "1":
            if not current:
                self.say("CallGuard's voice it stays.")
                return
            if self._save("warning", "recording", ""):
                self.say("Saved: the warning will be spoken in CallGuard's voice.")
                self.changes.append("The warning is spoken in CallGuard's voice")
            return
        recording = self._ask_recording()
        if recording is None or str(recording) == current:
            if recording is not None:
                self.say("That recording is already the one in use.")
            return
        if self._save("warning", "recording", str(recording)):
            self.say(f"Saved: the warning will be the recording {recording}.")
            self.changes.append(f"The warning is the recording {recording}")

    def _ask_recording(self) -> Path | None:
        while True:
            text = self._ask("The recording's WAV file, with its full path (or Enter to skip): ")
            if not text:
                return None
            path = _typed_path(text)
            try:
                audio = wavconv.read_wav(path)
            except wavconv.AudioFormatError as exc:
                self.say(f"That recording cannot be used: {exc}")
                continue
            self.say(f"It plays for {audio.seconds:.1f} seconds.")
            why = service_cannot_read(path)
            if why is None:
                return path
            copy = _resolved(self.config_path).parent / RECORDING_NAME
            if service_cannot_read(copy.parent) is not None:
                self.say(
                    f"It cannot stay where it is: {why}. Copy it to a folder the service can "
                    "read, such as /etc/callguard, and type that path."
                )
                continue
            self.say(f"It cannot stay where it is: {why}. CallGuard can keep a copy in {copy}.")
            if not self._yes_no("Copy it there? (y/n) "):
                self.say(
                    "Then copy it to a folder the service can read, such as "
                    f"{copy.parent}, and type that path."
                )
                continue
            try:
                write_atomically(copy, path.read_bytes(), 0o644)
            except OSError as exc:
                self.say(f"It could not be copied to {copy}: {exc.strerror or exc}.")
                continue
            self.say(f"Copied it to {copy}.")
            return copy

    # -- step 4: quiet hours -------------------------------------------------------------------

    def _quiet_hours_step(self) -> None:
        self.say("")
        current = self.config.screening.quiet_hours.strip()
        if current:
            prompt = (
                f"Quiet hours are now {current}. New hours, 'none' to turn them off, "
                "or Enter to keep them: "
            )
        else:
            prompt = (
                "Quiet hours: block unknown callers at night? e.g. 21:00-08:00, or Enter for none: "
            )
        while True:
            text = self._ask(prompt)
            if not text:
                return
            value = "" if text.lower() in NONE_WORDS else text
            try:
                configuration.from_dict({"screening": {"quiet_hours": value}})
            except configuration.ConfigError as exc:
                problem = exc.problems[0].removeprefix("screening.quiet_hours = ")
                problem = problem.replace("or '' for none", "or 'none' for no quiet hours")
                self.say(f"Sorry, {problem}: start-end on the 24-hour clock. Or Enter to skip.")
                continue
            break
        value = _tidy_hours(value)
        if value == current:
            self.say("That is already set.")
            return
        if not self._save("screening", "quiet_hours", value):
            return
        if value:
            start, end = value.split("-")
            self.say(
                f"Saved: from {start} to {end} unknown callers are blocked; family and friends "
                "on the allow list still ring through."
            )
            self.changes.append(f"Quiet hours: {value}")
        else:
            self.say("Saved: no quiet hours.")
            self.changes.append("No quiet hours")

    # -- step 6: the family page's password ----------------------------------------------------

    def _web_password_step(self) -> None:
        """No default password: the volunteer sets the first one here (or later with
        ``callguard web password``). Typed without echo, twice."""
        from callguard.web.passwords import PasswordFile, check_new_password

        passwords = PasswordFile(self.config.storage.dir)
        self.say("")
        self.say("The family page: the lists and calls in a browser on the home network.")
        if passwords.is_set():
            if not self._yes_no("It has a password. Change it? (y/n) "):
                return
        elif not self._yes_no("Set its password now? (y/n) "):
            self.say("It stays closed until you do: sudo callguard web password")
            return
        while True:
            password = self.ask_secret("New password for the family page (Enter: not now): ")
            if not password:
                self.say("No password was set: sudo callguard web password sets it later.")
                return
            try:
                check_new_password(password)
            except UsageError as exc:
                self.say(f"That password cannot be used: {exc}")
                continue
            if self.ask_secret("The same password again: ") != password:
                self.say("The two passwords differ; try again.")
                continue
            passwords.set(password)
            self.say("The family page's password is set.")
            self.changes.append("Set the family page's password")
            return

    # -- step 5: line sensing, for the grooming light -------------------------------------------

    def _line_sense_step(self) -> None:
        self.say("")
        self.say(
            "The grooming light needs to know when the phone is in use. A Conexant-based modem "
            "(Zoom 3095, StarTech) can tell by itself; a USRobotics 5637 needs the line-sense "
            f"module, wired to GPIO {MODULE_PIN} (see Wiring in the README)."
        )
        if self.config.line_sense.source == "none":
            self.say(
                'Line sensing is off (line_sense.source = "none"), so the grooming light '
                "cannot work."
            )
            if not self._yes_no("Turn it on? (y/n) "):
                return
            if not self._save("line_sense", "source", "auto"):
                return
            done = "Line sensing is on: the modem's line voltage, or the line-sense module"
            self.say(f"Saved: {done[0].lower()}{done[1:]}.")
            self.changes.append(done)
        pin = self.config.line_sense.gpio_pin
        self.say(
            f"Now: the line-sense module on GPIO {pin}."
            if pin >= 0
            else "Now: no line-sense module."
        )
        while True:
            text = self._ask(
                f"Is a line-sense module fitted? y (on GPIO {MODULE_PIN}), its GPIO number, n "
                "for none, or Enter to leave it as it is: "
            )
            if not text:
                return
            new_pin = self._module_pin(text)
            if new_pin is not None:
                break
        self._save_module_pin(new_pin)

    def _module_pin(self, text: str) -> int | None:
        """The pin an answer names (-1: no module), or None after saying what was wrong."""
        answer = text.lower()
        if answer in YES:
            return MODULE_PIN
        if answer in NO | NONE_WORDS:
            return -1
        match = _PIN_RE.fullmatch(answer)
        if match is None or not 0 <= int(match.group(1)) <= 27:
            self.say(
                f"Sorry, {text!r} is not a GPIO pin: type y for GPIO {MODULE_PIN} (as in the "
                "README's wiring), a BCM GPIO number from 0 to 27, n for none, or Enter to "
                "leave it as it is."
            )
            return None
        pin = int(match.group(1))
        for key, what in INDICATOR_NAMES.items():
            if getattr(self.config.indicators, key) == pin:
                self.say(
                    f"Sorry, GPIO {pin} is {what} (indicators.{key}): the module needs its own "
                    f"pin. Wire it to GPIO {MODULE_PIN} as in the README, or type the pin it "
                    "is on."
                )
                return None
        return pin

    def _save_module_pin(self, pin: int) -> None:
        sense = self.config.line_sense
        if pin == sense.gpio_pin and sense.source != "modem":
            self.say("That is already set.")
            return
        if pin < 0:
            if sense.source == "gpio" and not self._save("line_sense", "source", "auto"):
                return  # "gpio" needs a pin: "auto" first, then the pin can go
            if pin != sense.gpio_pin and not self._save("line_sense", "gpio_pin", -1):
                return
            self.say(
                "Saved: no line-sense module. The grooming light then works only if the modem "
                "can sense the line: callguard selftest says whether it can."
            )
            self.changes.append("No line-sense module")
            return
        if pin != sense.gpio_pin and not self._save("line_sense", "gpio_pin", pin):
            return
        done = f"The line-sense module is on GPIO {pin}"
        if sense.source == "modem":  # the module would never be used
            if not self._save("line_sense", "source", "auto"):
                return
            done += ' (line_sense.source is now "auto": the modem\'s line voltage where it has one)'
        self.say(f"Saved: {done[0].lower()}{done[1:]}.")
        self.changes.append(done)

    # -- writing the config ----------------------------------------------------------------------

    def _save(self, section: str, key: str, value: str | int) -> bool:
        """Set one key in the config file; False (and why, said) if it was not written."""
        try:
            self.config = save_setting(self.config_path, section, key, value)
        except CallGuardError as exc:
            self.say(f"Not saved: {exc}")
            return False
        self.config_changed = True
        return True


def save_setting(path: Path, section: str, key: str, value: str | int) -> configuration.Config:
    """Write ``section.key = value`` into the config file at ``path``; the new config.

    The file is checked before it is replaced (nothing is written if it would not load) and
    replaced atomically, keeping its mode and owner. A missing file is created with just this
    key. :class:`CallGuardError` says why nothing was written.
    """
    real = _resolved(path)
    try:
        before = real.stat()
    except FileNotFoundError:
        before = None
    except OSError as exc:
        raise CallGuardError(f"{path} cannot be read ({exc.strerror or exc})") from None
    text = ""
    if before is not None:
        try:
            text = real.read_bytes().decode("utf-8")
        except UnicodeDecodeError:
            raise CallGuardError(f"{path} is not UTF-8 text; fix it by hand") from None
        except OSError as exc:
            raise CallGuardError(f"{path} cannot be read ({exc.strerror or exc})") from None
    new_text, config = configuration.set_value(text, section, key, value, str(path))
    mode = stat.S_IMODE(before.st_mode) if before is not None else 0o644
    try:
        real.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(real, new_text.encode("utf-8"), mode)
    except OSError as exc:
        raise CallGuardError(
            f"cannot write {path} ({exc.strerror or exc}); run setup as root (sudo callguard setup)"
        ) from None
    if before is not None:
        with contextlib.suppress(OSError):
            after = real.stat()
            if stat.S_IMODE(after.st_mode) != mode:
                os.chmod(real, mode)  # the umask narrowed it
            if (after.st_uid, after.st_gid) != (before.st_uid, before.st_gid):
                os.chown(real, before.st_uid, before.st_gid)
    return config


# -- quiet hours -----------------------------------------------------------------------------


def _tidy_hours(value: str) -> str:
    """``9:00 - 17:5`` as ``09:00-17:05`` (``value`` has passed the config's check)."""
    span = quiet_span(value)
    if span is None:
        return ""
    return "-".join(f"{minutes // 60:02d}:{minutes % 60:02d}" for minutes in span)


# -- paths -----------------------------------------------------------------------------------


def service_cannot_read(path: Path) -> str | None:
    """Why the CallGuard service could not rely on reading ``path``, or None if it can.

    It cannot see /home, /root, /run/user or its own private /tmp; a USB stick is unplugged;
    and it runs as its own user, so the file must be readable by everyone, and every folder
    above it open to everyone.
    """
    real = _resolved(path)
    for folder, why in OUT_OF_REACH.items():
        if real.is_relative_to(folder):
            return why
    try:
        if not real.stat().st_mode & stat.S_IROTH:
            return "only some users may read it, and the CallGuard service runs as its own user"
        for parent in real.parents:
            if not parent.stat().st_mode & stat.S_IXOTH:
                return f"the CallGuard service runs as its own user and cannot get into {parent}"
    except OSError as exc:
        return f"it cannot be checked ({exc.strerror or exc})"
    return None


def _can_write_in(folder: Path) -> bool:
    """Whether files can be made in ``folder``, or it can be made (in its nearest ancestor)."""
    here = Path(os.path.abspath(folder))
    while not here.exists() and here != here.parent:
        here = here.parent
    return here.is_dir() and os.access(here, os.W_OK | os.X_OK)


def _typed_path(text: str) -> Path:
    """A path as typed or dropped into a terminal: quoted, or with spaces escaped, or bare."""
    path = Path(os.path.expanduser(text))
    if not path.exists():
        with contextlib.suppress(ValueError):
            words = shlex.split(text)
            if len(words) == 1:
                path = Path(os.path.expanduser(words[0]))
    return _resolved(path)


def _resolved(path: Path) -> Path:
    return Path(os.path.realpath(path))


# -- words -----------------------------------------------------------------------------------


def _conflict(list_name: str, display: str, conflicts: list[str], found: dict[str, Entry]) -> str:
    first = found[conflicts[0]]
    label = f" (as {first.name!r})" if first.name else ""
    where = " and the ".join(LIST_TITLES[c] for c in conflicts)
    return (
        f"{display} is on the {where}{label}: {WHY_CONFLICT[conflicts[0]]}. Adding it to the "
        f"{LIST_TITLES[list_name]} takes it off the {where}."
    )
