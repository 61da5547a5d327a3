"""``callguard demo``: the real daemon screening a morning's calls on a simulated UK line.

A simulated Conexant modem on a pseudo-terminal plays the calls; the daemon opens it like a
USB modem and screens each caller against lists set up for the demo, in a throwaway folder.
What happens is told in plain English as it happens, then the call log is printed. No hardware,
no root, under a minute.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path
from typing import TextIO

from callguard.audio.prompts import intro_text
from callguard.config import from_dict
from callguard.core.call import Warn
from callguard.core.lists import target_for
from callguard.daemon.app import Daemon, Observed
from callguard.modem.transport import TransportStatus
from callguard.sim import Call, SimModem
from callguard.store.lists import Store
from callguard.texts import DEFAULT_WARNING

DAUGHTER = "01707 354000"
BANK_CARD_NUMBER = "0306 999 0123"  # an Ofcom drama number standing in for a bank's card line

MORNING: list[tuple[str, Call]] = [
    (
        "09:02  Sue, the resident's daughter, rings from Welwyn Garden City.",
        Call(number=DAUGHTER.replace(" ", ""), rings=2),
    ),
    (
        "09:40  A caller shows the bank's number from the back of the resident's card.\n"
        "       Banks never ring from that number: it is a fraudster spoofing it.",
        Call(number=BANK_CARD_NUMBER.replace(" ", ""), rings=4),
    ),
    (
        "10:15  A caller who withholds their number (the GP surgery often does).",
        Call(number="P", rings=2),
    ),
    ("11:30  An unknown local number.", Call(number="01632960123", rings=2)),
]


def _speaker_command() -> str:
    """``aplay -q {wav}`` when this machine has a sound card, else "" (print the words)."""
    if shutil.which("aplay") is None:
        return ""
    try:
        cards = subprocess.run(["aplay", "-l"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return ""
    return "aplay -q {wav}" if cards.returncode == 0 and "card" in cards.stdout else ""


class Narrator:
    def __init__(self, out: TextIO, speaker: bool) -> None:
        self.out = out
        self.speaker = speaker
        self.seized = False

    def say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def observe(self, seen: Observed) -> None:
        if seen.kind == "modem":
            status: TransportStatus = seen.detail
            self.say(f"       [modem {status.state.value}: {status.detail}]")
        elif seen.kind == "screened":
            caller, verdict = seen.detail
            self.say(f"       Caller ID: {caller.display}. {verdict.reason}")
            if self.seized:  # the seize is done first, before anything is said
                self.seized = False
                self.say(
                    "       -> CallGuard picked the line up and put it down before the first ring."
                )
        elif seen.kind == "seized":
            self.seized = True
        elif seen.kind == "warned":
            action: Warn = seen.detail
            spoken = DEFAULT_WARNING.replace("one five nine", "159")  # spelt out for espeak-ng
            words = f"{intro_text(action.caller, with_place=False)} {spoken}"
            if self.speaker:
                self.say("       -> the phone rings, and CallGuard speaks its warning in the room.")
            else:
                self.say("       -> the phone rings, and CallGuard speaks its warning in the room")
                self.say("          (no speaker here, so here are its words):")
                for line in textwrap.wrap(words, 70):
                    self.say(f"          {line}")


def run_demo(fast: bool = False, out: TextIO = sys.stdout) -> int:
    scale = 0.25 if fast else 0.5
    speaker = _speaker_command()
    narrator = Narrator(out, bool(speaker))
    with tempfile.TemporaryDirectory(prefix="callguard-demo-") as tmp:
        link = str(Path(tmp) / "modem")
        config = from_dict(
            {
                "modem": {"port": link},
                "storage": {"dir": str(Path(tmp) / "state")},
                "warning": {"room_command": speaker, "say_place": False},
            },
            "the demo's settings",
        )
        store = Store(config.storage.dir)
        store.add("allow", target_for(DAUGHTER, "GB"), name="Sue (daughter)", by="demo")
        store.add(
            "protect",
            target_for(BANK_CARD_NUMBER, "GB"),
            name="the bank (number on the card)",
            by="demo",
        )
        narrator.say("CallGuard demo: a morning on a simulated UK phone line.")
        narrator.say(f"The family has put Sue ({DAUGHTER}) on the allow list, and the number on")
        narrator.say(f"the back of the bank card ({BANK_CARD_NUMBER}) on the protect list.\n")
        with SimModem(identity="conexant", link_path=link, time_scale=scale) as sim:
            daemon = Daemon(config, observer=narrator.observe, ring_gap_s=8 * scale)
            runner = threading.Thread(target=daemon.run, kwargs={"install_signals": False})
            runner.start()
            try:
                deadline = time.monotonic() + 10
                while daemon.status()["modem"] != "connected" and time.monotonic() < deadline:
                    time.sleep(0.05)
                for story, call in MORNING:
                    narrator.say("\n" + story)
                    logged = len(store.calls())
                    record = sim.place_call(call).wait(60)
                    rings = len(record.rings)
                    narrator.say(f"       (the phone rang {rings} time{'s' if rings != 1 else ''})")
                    deadline = time.monotonic() + 15
                    while len(store.calls()) == logged and time.monotonic() < deadline:
                        time.sleep(0.05)
            finally:
                daemon.stop()
                runner.join(20)
        narrator.say("\nThe call log the family sees (callguard log):")
        for call_record in store.calls():
            who = call_record.get("display") or call_record.get("category")
            name = f" ({call_record['name']})" if call_record.get("name") else ""
            narrator.say(f"  {who}{name}: {call_record['verdict']}. {call_record['reason']}")
    return 0
