"""callguard setup: scripted answers in, the lists and the commented config file out."""

from __future__ import annotations

import stat
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from callguard import config
from callguard.audio import wavconv
from callguard.cli import setup as setup_wizard
from callguard.cli.setup import run_setup, save_setting, service_cannot_read
from callguard.core.lists import target_for
from callguard.store.lists import Store

SHIPPED = Path(__file__).resolve().parents[2] / "config" / "callguard.toml"

SKIP_ALL = ["", "", "", "", "", ""]
"""Enter at each step: allow list, protect list, warning voice, quiet hours, line sensing, the
family page's password."""
NO_PASSWORD = ""
"""Enter at the last step: no family-page password now."""
PASSWORD_QUESTION = "Set its password now? (y/n) "
SKIP_TO_LINE_SENSE = ["", "", "", ""]
"""Enter at each step before line sensing."""
MODULE_QUESTION = (
    "Is a line-sense module fitted? y (on GPIO 17), its GPIO number, n for none, or Enter to "
    "leave it as it is: "
)


@dataclass
class Script:
    """``ask`` from a list of answers (EOFError when they run out), ``say`` into a list."""

    answers: list[str]
    prompts: list[str] = field(default_factory=list)
    said: list[str] = field(default_factory=list)

    def ask(self, prompt: str) -> str:
        self.prompts.append(prompt)
        if not self.answers:
            raise EOFError
        return self.answers.pop(0)

    def say(self, text: str) -> None:
        self.said.append(text)

    @property
    def text(self) -> str:
        return "\n".join(self.said)


def run(config_path: Path, answers: list[str]) -> tuple[int, Script]:
    script = Script(list(answers))
    rc = run_setup(config_path, ask=script.ask, say=script.say)
    return rc, script


@pytest.fixture(autouse=True)
def service_reads_anything(monkeypatch: pytest.MonkeyPatch) -> None:
    """tmp_path is in /tmp, which the real service cannot see; one test puts the check back."""
    monkeypatch.setattr(setup_wizard, "service_cannot_read", lambda path: None)


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture
def config_path(tmp_path: Path, state: Path) -> Path:
    text = SHIPPED.read_text(encoding="utf-8")
    assert 'dir = "/var/lib/callguard"\n' in text
    path = tmp_path / "etc" / "callguard.toml"
    path.parent.mkdir()
    path.write_text(text.replace('dir = "/var/lib/callguard"', f'dir = "{state}"'))
    return path


@pytest.fixture
def store(state: Path) -> Store:
    return Store(state)


@pytest.fixture
def wav(tmp_path: Path) -> Path:
    path = tmp_path / "mum.wav"
    wavconv.write_wav(path, wavconv.tone(440, 2, 16000))
    return path


def changed_lines(before: str, after: str) -> list[tuple[str, str]]:
    old, new = before.splitlines(), after.splitlines()
    assert len(old) == len(new)
    return [(a, b) for a, b in zip(old, new, strict=True) if a != b]


# -- the lists -------------------------------------------------------------------------------


def test_two_family_numbers_are_added_with_their_names(config_path: Path, store: Store) -> None:
    before = config_path.read_bytes()
    rc, script = run(
        config_path,
        ["01707 354000", "Sue, daughter", "07700 900123", "Tom, grandson", *SKIP_ALL],
    )
    assert rc == 0
    entries = {e.number: e for e in store.entries("allow")}
    assert {n: e.name for n, e in entries.items()} == {
        "+441707354000": "Sue, daughter",
        "+447700900123": "Tom, grandson",
    }
    assert {e.added_by for e in entries.values()} == {"setup"}
    assert "Added 01707 354000 (Sue, daughter) to the allow list." in script.said
    assert "Added 07700 900123 (Tom, grandson) to the allow list." in script.said
    assert "Family and friends who should always get through." in script.said
    assert script.prompts[:2] == [
        "Phone number (or Enter to finish): ",
        "Whose number is it? (e.g. 'Sue, daughter'): ",
    ]
    assert "Setup finished." in script.said
    assert "Next step: run: callguard selftest" in script.said
    assert "The daemon picks the lists up by itself" in script.said
    assert config_path.read_bytes() == before  # no setting changed, the file was not touched


def test_a_bad_number_is_explained_and_asked_again(config_path: Path, store: Store) -> None:
    rc, script = run(
        config_path, ["0170735400", "Mum's friend", "0870*", "01707 354000", "Sue", *SKIP_ALL]
    )
    assert rc == 0
    assert "not a complete UK phone number" in script.text
    assert "has letters in it" in script.text  # the name typed where the number goes
    assert "ends with *" in script.text
    assert script.prompts[:5] == ["Phone number (or Enter to finish): "] * 4 + [
        "Whose number is it? (e.g. 'Sue, daughter'): "
    ]
    assert [(e.number, e.name) for e in store.entries("allow")] == [("+441707354000", "Sue")]


def test_a_number_with_no_name_is_still_added(config_path: Path, store: Store) -> None:
    rc, script = run(config_path, ["01707 354000", "", *SKIP_ALL])
    assert rc == 0
    assert "Added 01707 354000 to the allow list." in script.said
    assert [e.name for e in store.entries("allow")] == [""]


def test_the_same_number_again_updates_it(config_path: Path, store: Store) -> None:
    rc, script = run(config_path, ["01707 354000", "Sue", "+44 1707 354000", "Sue, daughter"])
    assert rc == 0
    assert "Updated 01707 354000 (Sue, daughter) on the allow list." in script.said
    assert [e.name for e in store.entries("allow")] == ["Sue, daughter"]


def test_a_bank_card_number_is_protected(config_path: Path, store: Store) -> None:
    rc, script = run(config_path, ["", "0345 734 5345", "Barclays debit card", "", "", ""])
    assert rc == 0
    assert "Added 0345 734 5345 (Barclays debit card) to the protect list." in script.said
    assert "Which bank or card? " in script.prompts
    family = [e for e in store.entries("protect") if e.added_by == "setup"]
    assert [(e.number, e.name) for e in family] == [("+443457345345", "Barclays debit card")]
    assert store.entries("allow") == []


def test_a_blocked_number_is_moved_to_the_allow_list_on_yes(
    config_path: Path, store: Store
) -> None:
    store.add("block", target_for("01707 354000", "GB"), name="pest", by="test")
    rc, script = run(config_path, ["01707 354000", "maybe", "y", "Sue, daughter", *SKIP_ALL])
    assert rc == 0
    assert "01707 354000 is on the block list (as 'pest'): calls from it are blocked." in (
        script.text
    )
    assert script.prompts.count("Add it anyway? (y/n) ") == 2  # "maybe" is asked again
    assert "Please answer y (yes) or n (no)." in script.said
    assert "It was on the block list; it has been taken off." in script.said
    assert [e.name for e in store.entries("allow")] == ["Sue, daughter"]
    assert store.entries("block") == []


def test_a_blocked_number_stays_blocked_on_no(config_path: Path, store: Store) -> None:
    store.add("block", target_for("01707 354000", "GB"), name="pest", by="test")
    rc, script = run(config_path, ["01707 354000", "n", *SKIP_ALL])
    assert rc == 0
    assert "01707 354000 was left as it was." in script.said
    assert "Whose number is it? (e.g. 'Sue, daughter'): " not in script.prompts
    assert store.entries("allow") == []
    assert [e.name for e in store.entries("block")] == ["pest"]
    assert "Nothing was changed." in script.said


def test_a_shipped_protected_number_asks_before_it_is_allowed(
    config_path: Path, store: Store
) -> None:
    rc, script = run(config_path, ["159", "n", *SKIP_ALL])
    assert rc == 0
    assert "159 is on the protect list" in script.text
    assert "never calls out" in script.text
    assert store.entries("allow") == []


def test_an_allowed_number_asks_before_it_is_protected(config_path: Path, store: Store) -> None:
    store.add("allow", target_for("0345 734 5345", "GB"), name="bank", by="test")
    rc, script = run(config_path, ["", "0345 734 5345", "y", "Barclays", "", ""])
    assert rc == 0
    assert "is on the allow list (as 'bank')" in script.text
    assert store.entries("allow") == []
    assert "+443457345345" in {e.number for e in store.entries("protect")}


# -- the warning voice -------------------------------------------------------------------------


def test_a_recording_that_is_not_a_wav_is_explained_and_asked_again(
    config_path: Path, tmp_path: Path, wav: Path
) -> None:
    not_wav = tmp_path / "mum.mp3"
    not_wav.write_bytes(b"ID3\x04\x00" + bytes(200))
    rc, script = run(config_path, ["", "", "3", "2", str(not_wav), str(wav), ""])
    assert rc == 0
    assert "Please type 1 or 2, or just press Enter to leave it as it is." in script.said
    assert f"That recording cannot be used: {not_wav} is an MP3 file" in script.text
    assert "It plays for 2.0 seconds." in script.said
    loaded = config.load(str(config_path))
    assert loaded.warning.recording == str(wav)
    assert f"Saved: the warning will be the recording {wav}." in script.said


def test_a_path_dropped_into_the_terminal_is_understood(config_path: Path, tmp_path: Path) -> None:
    spaced = tmp_path / "Mum says.wav"
    wavconv.write_wav(spaced, wavconv.tone(440, 1, 16000))
    rc, _ = run(config_path, ["", "", "2", f"'{spaced}'", ""])
    assert rc == 0
    assert config.load(str(config_path)).warning.recording == str(spaced)


def test_a_recording_the_service_cannot_read_is_copied_beside_the_config(
    config_path: Path, wav: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def cannot_read(path: Path) -> str | None:
        return "it is on a USB stick" if path == wav else None

    monkeypatch.setattr(setup_wizard, "service_cannot_read", cannot_read)
    rc, script = run(config_path, ["", "", "2", str(wav), "n", str(wav), "y", ""])
    assert rc == 0
    copy = config_path.parent / "warning-recording.wav"
    assert "It cannot stay where it is: it is on a USB stick." in script.text
    assert copy.read_bytes() == wav.read_bytes()
    assert config.load(str(config_path)).warning.recording == str(copy)


def test_choosing_callguards_voice_clears_the_recording(config_path: Path, wav: Path) -> None:
    run(config_path, ["", "", "2", str(wav), ""])
    rc, script = run(config_path, ["", "", "1", ""])
    assert rc == 0
    assert f"Now: the recording {wav}." in script.said
    assert config.load(str(config_path)).warning.recording == ""
    assert 'recording = ""' in config_path.read_text().splitlines()


def test_service_cannot_read_names_the_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.undo()  # the real check
    assert "/home" in (service_cannot_read(Path("/home/pi/mum.wav")) or "")
    assert "USB stick" in (service_cannot_read(Path("/media/pi/STICK/mum.wav")) or "")
    monkeypatch.setattr(setup_wizard, "OUT_OF_REACH", {})
    private = tmp_path / "private.wav"
    private.write_bytes(b"")
    private.chmod(0o600)
    assert "only some users may read it" in (service_cannot_read(private) or "")


# -- quiet hours -------------------------------------------------------------------------------


def test_quiet_hours_are_checked_then_written(config_path: Path) -> None:
    rc, script = run(config_path, ["", "", "", "9pm", "21:00-08:00"])
    assert rc == 0
    assert "Sorry, '9pm' must be two times like '21:00-08:00'" in script.text
    assert (
        script.prompts.count(
            "Quiet hours: block unknown callers at night? e.g. 21:00-08:00, or Enter for none: "
        )
        == 2
    )
    assert config.load(str(config_path)).screening.quiet_hours == "21:00-08:00"
    assert "Quiet hours: 21:00-08:00" in script.text
    assert "For config changes run: sudo systemctl reload callguard" in script.said


def test_quiet_hours_are_tidied_and_can_be_turned_off(config_path: Path) -> None:
    run(config_path, ["", "", "", "9:00 - 17:5"])
    assert config.load(str(config_path)).screening.quiet_hours == "09:00-17:05"
    rc, script = run(config_path, ["", "", "", "none"])
    assert rc == 0
    assert script.prompts[-2].startswith("Quiet hours are now 09:00-17:05.")
    assert config.load(str(config_path)).screening.quiet_hours == ""


# -- line sensing, for the grooming light ------------------------------------------------------


def test_the_line_sense_module_is_asked_about_and_saved(config_path: Path) -> None:
    before = config_path.read_text()
    rc, script = run(config_path, [*SKIP_TO_LINE_SENSE, "y", NO_PASSWORD])
    assert rc == 0 and "Setup finished." in script.said
    assert script.prompts[-2:] == [MODULE_QUESTION, PASSWORD_QUESTION]
    assert "a USRobotics 5637 needs the line-sense module, wired to GPIO 17" in script.text
    assert "Now: no line-sense module." in script.said
    assert "Saved: the line-sense module is on GPIO 17." in script.said
    assert "  - The line-sense module is on GPIO 17" in script.said
    loaded = config.load(str(config_path))
    assert (loaded.line_sense.source, loaded.line_sense.gpio_pin) == ("auto", 17)
    assert changed_lines(before, config_path.read_text()) == [("gpio_pin = -1", "gpio_pin = 17")]
    rc, script = run(config_path, [*SKIP_TO_LINE_SENSE, "17"])
    assert "Now: the line-sense module on GPIO 17." in script.said
    assert "That is already set." in script.said


def test_a_bad_pin_is_explained_and_asked_again(config_path: Path) -> None:
    answers = [*SKIP_TO_LINE_SENSE, "28", "pin 4", "-1", "23", "GPIO 22", NO_PASSWORD]
    rc, script = run(config_path, answers)
    assert rc == 0
    assert script.prompts[-6:] == [MODULE_QUESTION] * 5 + [PASSWORD_QUESTION]
    bad = (
        "is not a GPIO pin: type y for GPIO 17 (as in the README's wiring), a BCM GPIO number "
        "from 0 to 27, n for none, or Enter to leave it as it is."
    )
    assert f"Sorry, '28' {bad}" in script.said
    assert f"Sorry, 'pin 4' {bad}" in script.said
    assert f"Sorry, '-1' {bad}" in script.said
    assert (
        "Sorry, GPIO 23 is the alert light (indicators.alert_led_pin): the module needs its own "
        "pin. Wire it to GPIO 17 as in the README, or type the pin it is on."
    ) in script.said
    assert config.load(str(config_path)).line_sense.gpio_pin == 22


def test_no_module_takes_the_pin_away(config_path: Path) -> None:
    run(config_path, [*SKIP_TO_LINE_SENSE, "5"])
    rc, script = run(config_path, [*SKIP_TO_LINE_SENSE, "n"])
    assert rc == 0
    assert "Saved: no line-sense module." in script.text
    assert "callguard selftest says whether it can" in script.text
    assert config.load(str(config_path)).line_sense.gpio_pin == -1
    rc, script = run(config_path, [*SKIP_TO_LINE_SENSE, ""])  # Enter: left as it is
    assert rc == 0 and "Nothing was changed." in script.said


def test_line_sensing_that_was_off_is_turned_on(config_path: Path) -> None:
    """A unit set up from the old shipped file has line_sense.source = "none" written in it."""
    config_path.write_text(config_path.read_text().replace('source = "auto"', 'source = "none"', 1))
    assert config.load(str(config_path)).line_sense.source == "none"
    rc, script = run(config_path, [*SKIP_TO_LINE_SENSE, "maybe", "y", "n", NO_PASSWORD])
    assert rc == 0
    assert (
        'Line sensing is off (line_sense.source = "none"), so the grooming light cannot work.'
    ) in script.said
    assert "Please answer y (yes) or n (no)." in script.said
    assert script.prompts[-4:-1] == [
        "Turn it on? (y/n) ",
        "Turn it on? (y/n) ",
        MODULE_QUESTION,
    ]
    loaded = config.load(str(config_path))
    assert (loaded.line_sense.source, loaded.line_sense.gpio_pin) == ("auto", -1)
    assert "  - Line sensing is on: the modem's line voltage, or the line-sense module" in (
        script.said
    )
    # left off when the answer is no: and then no question about the module
    config_path.write_text(config_path.read_text().replace('source = "auto"', 'source = "none"', 1))
    rc, script = run(config_path, [*SKIP_TO_LINE_SENSE, "", NO_PASSWORD])
    assert script.prompts[-2:] == ["Turn it on? (y/n) ", PASSWORD_QUESTION]
    assert config.load(str(config_path)).line_sense.source == "none"


def test_a_module_on_a_modem_only_or_gpio_config(config_path: Path) -> None:
    text = config_path.read_text()
    config_path.write_text(text.replace('source = "auto"', 'source = "modem"', 1))
    rc, script = run(config_path, [*SKIP_TO_LINE_SENSE, "y"])
    assert rc == 0
    assert 'line_sense.source is now "auto"' in script.text  # else the module is never used
    loaded = config.load(str(config_path))
    assert (loaded.line_sense.source, loaded.line_sense.gpio_pin) == ("auto", 17)
    config_path.write_text(
        text.replace('source = "auto"', 'source = "gpio"', 1).replace(
            "gpio_pin = -1", "gpio_pin = 17"
        )
    )
    rc, script = run(config_path, [*SKIP_TO_LINE_SENSE, "none"])  # "gpio" needs a pin: auto
    assert rc == 0 and "Saved: no line-sense module." in script.text
    loaded = config.load(str(config_path))
    assert (loaded.line_sense.source, loaded.line_sense.gpio_pin) == ("auto", -1)


# -- the config file ---------------------------------------------------------------------------


def test_the_config_keeps_every_comment_and_still_loads(config_path: Path, wav: Path) -> None:
    before = config_path.read_text()
    rc, _ = run(config_path, ["", "", "2", str(wav), "21:00-08:00"])
    assert rc == 0
    after = config_path.read_text()
    assert changed_lines(before, after) == [
        ('quiet_hours = ""', 'quiet_hours = "21:00-08:00"'),
        ('recording = ""', f'recording = "{wav}"'),
    ]
    loaded = config.load(str(config_path))
    assert loaded.screening.quiet_hours == "21:00-08:00" and loaded.warning.recording == str(wav)
    assert not [p.name for p in config_path.parent.iterdir() if ".tmp-" in p.name]


def test_the_config_keeps_its_mode_and_a_symlink_stays_a_symlink(
    config_path: Path, tmp_path: Path
) -> None:
    config_path.chmod(0o640)
    link = tmp_path / "link.toml"
    link.symlink_to(config_path)
    rc, _ = run(link, ["", "", "", "21:00-08:00"])
    assert rc == 0
    assert link.is_symlink()
    assert stat.S_IMODE(config_path.stat().st_mode) == 0o640
    assert config.load(str(config_path)).screening.quiet_hours == "21:00-08:00"


def test_a_missing_config_is_created_with_only_the_changed_keys(
    tmp_path: Path, wav: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(setup_wizard, "_can_write_in", lambda folder: True)  # /var/lib/callguard
    path = tmp_path / "new" / "callguard.toml"
    rc, script = run(path, ["", "", "2", str(wav), "21:00-08:00"])
    assert rc == 0
    assert f"There is no config file at {path} yet" in script.text
    assert path.read_text() == (
        f'[warning]\nrecording = "{wav}"\n\n[screening]\nquiet_hours = "21:00-08:00"\n'
    )
    loaded = config.load(str(path))
    assert loaded.warning.recording == str(wav) and loaded.screening.quiet_hours == "21:00-08:00"


def test_a_config_that_does_not_load_stops_setup_with_2(config_path: Path) -> None:
    config_path.write_text('[screening]\nmode = "guardd"\n')
    rc, script = run(config_path, SKIP_ALL)
    assert rc == 2
    assert script.prompts == []
    assert "screening.mode = 'guardd' must be one of" in script.text
    assert "did you mean 'guarded'" in script.text


def test_dotted_keys_and_inline_tables_are_edited_where_they_are(
    tmp_path: Path, state: Path
) -> None:
    path = tmp_path / "callguard.toml"
    text = f'storage = {{ dir = "{state}" }}\nscreening.quiet_hours = ""  # dotted\n'
    path.write_text(text)
    rc, script = run(path, ["", "", "", "21:00-08:00"])
    assert rc == 0 and "Quiet hours: 21:00-08:00" in script.text
    assert path.read_text() == text.replace('""', '"21:00-08:00"')


def test_a_change_that_would_not_load_is_not_written(tmp_path: Path, state: Path) -> None:
    path = tmp_path / "callguard.toml"
    text = f'[storage]\ndir = "{state}"\n'
    path.write_text(text)
    with pytest.raises(config.ConfigError, match=r"screening\.quiet_hours = '25:00-08:00'"):
        save_setting(path, "screening", "quiet_hours", "25:00-08:00")
    assert path.read_text() == text
    text += '[[screening]]\nmode = "open"\n'  # a shape setup cannot edit
    path.write_text(text)
    with pytest.raises(config.ConfigError, match=r"\[screening\] is not a plain table"):
        save_setting(path, "screening", "quiet_hours", "21:00-08:00")
    assert path.read_text() == text


# -- stopping ----------------------------------------------------------------------------------


def test_eof_halfway_keeps_what_was_saved(config_path: Path, store: Store) -> None:
    before = config_path.read_bytes()
    rc, script = run(config_path, ["01707 354000", "Sue", "07700 900123"])  # EOF at the name
    assert rc == 0
    assert [e.name for e in store.entries("allow")] == ["Sue"]
    assert "Setup stopped. Everything saved before this point is kept." in script.said
    assert "  - Added 01707 354000 (Sue) to the allow list" in script.said
    assert config_path.read_bytes() == before


def test_eof_after_a_setting_keeps_it(config_path: Path) -> None:
    rc, script = run(config_path, ["", "", "1"])
    assert rc == 0  # "1" with no recording set: nothing to write; then EOF at quiet hours
    rc, script = run(config_path, ["", "", "", "22:00-07:00"])
    assert rc == 0
    rc, script = run(config_path, ["", "", "2"])  # EOF at the path question
    assert rc == 0 and "Setup stopped." in script.text
    assert config.load(str(config_path)).screening.quiet_hours == "22:00-07:00"


def test_ctrl_c_stops_with_130(config_path: Path, store: Store) -> None:
    answers = iter(["01707 354000", "Sue"])

    def ask(prompt: str) -> str:
        try:
            return next(answers)
        except StopIteration:
            raise KeyboardInterrupt from None

    said: list[str] = []
    assert run_setup(config_path, ask=ask, say=said.append) == 130
    assert "Setup stopped (Ctrl-C). Everything saved before this point is kept." in said
    assert [e.name for e in store.entries("allow")] == ["Sue"]


def test_a_lists_folder_that_cannot_be_written_stops_before_any_question(
    tmp_path: Path,
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    path = tmp_path / "callguard.toml"
    path.write_text(f'[storage]\ndir = "{blocker / "state"}"\n')
    rc, script = run(path, SKIP_ALL)
    assert rc == 1
    assert script.prompts == []
    assert "setup cannot write to the lists' folder" in script.text


# -- config.set_value: the one TOML editor ----------------------------------------------------


def edited(text: str, section: str, key: str, value: object) -> str:
    new_text, made = config.set_value(text, section, key, value)
    assert getattr(getattr(made, section), key) == value
    assert tomllib.loads(new_text)[section][key] == value
    return new_text


def test_set_value_replaces_only_the_key_in_its_section() -> None:
    text = '[storage]\ndir = "/x"\n\n[warning]\n  voice = "en # b"   # keep me\nline = true\n'
    assert edited(text, "warning", "voice", "en-us") == (
        '[storage]\ndir = "/x"\n\n[warning]\n  voice = "en-us"   # keep me\nline = true\n'
    )


def test_set_value_adds_after_the_sections_last_setting() -> None:
    text = "# top\n[warning]\n# about line\nline = true\n\n# about grooming\n[grooming]\n"
    assert edited(text, "warning", "voice", "en") == (
        '# top\n[warning]\n# about line\nline = true\nvoice = "en"\n\n# about grooming\n'
        "[grooming]\n"
    )
    assert edited("[warning]  # note\n", "warning", "voice", "en") == (
        '[warning]  # note\nvoice = "en"\n'
    )


def test_set_value_adds_a_missing_section_at_the_end() -> None:
    assert edited("", "grooming", "minutes", 20.0) == "[grooming]\nminutes = 20.0\n"
    assert edited("[block]\nannounce = true", "grooming", "minutes", 20.0) == (
        "[block]\nannounce = true\n\n[grooming]\nminutes = 20.0\n"
    )
    out = edited("# mine\n\n", "block", "announce", True)  # tomlkit 0.11 puts the blank last
    assert out.startswith("# mine\n") and "\n[block]\nannounce = true\n" in out


def test_set_value_keeps_windows_line_ends() -> None:
    text = "[block]\r\nannounce = true\r\n"
    assert edited(text, "block", "hold_s", 2.0) == text + "hold_s = 2.0\r\n"
    assert edited(text, "grooming", "minutes", 20.0) == (
        text + "\r\n[grooming]\r\nminutes = 20.0\r\n"
    )


def test_set_value_changes_one_line_of_the_shipped_file() -> None:
    shipped = SHIPPED.read_text(encoding="utf-8")
    changed = changed_lines(shipped, edited(shipped, "screening", "mode", "open"))
    assert len(changed) == 1
    before, after = changed[0]
    assert before.startswith('mode = "guarded"') and after == before.replace("guarded", "open")


@pytest.mark.parametrize(
    "value",
    [
        "# not a comment",
        'say "hi"',
        "C:\\new\\tab",
        "line\nbreak\ttab\r\n",
        "Zoë's café ☎",
        "right-to-left \u202eKNAB\u202c and a separator \u2028",
        "'''\"\"\"",
    ],
)
def test_set_value_round_trips_any_text(value: str) -> None:
    text = '[warning]\ntext = """\nmulti\nline"""  # spoken\nline = false\n'
    assert edited(text, "warning", "text", value).endswith("  # spoken\nline = false\n")


@pytest.fixture(autouse=True)
def no_stray_files(tmp_path: Path) -> Iterator[None]:
    yield
    stray = [p for p in tmp_path.rglob("*") if ".tmp-" in p.name]
    assert stray == [], stray


# -- the family page's password ----------------------------------------------------------------


def test_the_family_pages_first_password_is_set_without_echo(
    config_path: Path, state: Path
) -> None:
    from callguard.web.passwords import PasswordFile

    secrets = [
        "short",
        "a long family password",
        "a long family pasword",
        "a long family password",
        "a long family password",
    ]
    asked: list[str] = []

    def ask_secret(prompt: str) -> str:
        asked.append(prompt)
        return secrets.pop(0)

    script = Script([*SKIP_TO_LINE_SENSE, "", "y"])
    rc = setup_wizard.run_setup(config_path, ask=script.ask, say=script.say, ask_secret=ask_secret)
    assert rc == 0 and "Setup finished." in script.said
    assert PASSWORD_QUESTION in script.prompts  # asked in the open; the password never is
    assert not any("password" in p.lower() and "y/n" not in p for p in script.prompts)
    assert any(line.startswith("That password cannot be used") for line in script.said)
    assert "The two passwords differ; try again." in script.said
    assert PasswordFile(state).check("a long family password")
    assert "  - Set the family page's password" in script.said
    assert len(asked) == 5


def test_no_password_now_says_how_to_set_it_later(config_path: Path, state: Path) -> None:
    from callguard.web.passwords import PasswordFile

    rc, script = run(config_path, SKIP_ALL)
    assert rc == 0 and "It stays closed until you do: sudo callguard web password" in script.said
    assert not PasswordFile(state).is_set()
