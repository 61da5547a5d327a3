"""``callguard demo``: the modem layer on a simulated UK line, narrated in plain English.

A simulated Conexant modem on a pseudo-terminal plays a scripted morning of calls; the real
transport opens it like a USB modem, initialises it, and every event it hears is told as it
happens. Half-way through, the modem is "unplugged" and plugged back in, to show that CallGuard
notices and recovers by itself.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import TextIO

from callguard.modem.protocol import Absence, CallerId, Event, LineVoltage, Ring
from callguard.modem.transport import ModemTransport, TransportStatus
from callguard.modem.voice import VoicePlayer
from callguard.sim import Call, SimModem

MORNING: list[tuple[str, Call]] = [
    ("The resident's daughter rings from Welwyn Garden City.", Call(number="01707354000", rings=2)),
    ("A caller who withholds their number (a GP surgery often does).", Call(number="P", rings=2)),
    ("A call from abroad: the network cannot give the number.", Call(number="O", rings=2)),
    ("An unknown mobile number.", Call(number="07700900123", rings=2)),
]


class Narrator:
    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.start = time.monotonic()

    def say(self, text: str) -> None:
        elapsed = time.monotonic() - self.start
        print(f"[{elapsed:5.1f}s] {text}", file=self.out, flush=True)

    def event(self, event: Event) -> None:
        if isinstance(event, CallerId):
            if event.refined:
                return
            if event.number:
                self.say(f"  caller ID: {event.number} (known before the phone rings)")
            elif event.absence is Absence.WITHHELD:
                self.say("  caller ID: number withheld")
            elif event.absence is Absence.UNAVAILABLE:
                self.say("  caller ID: number unavailable")
            else:
                self.say(f"  caller ID without a number ({event.raw_number!r})")
        elif isinstance(event, Ring):
            self.say("  RING")
        elif isinstance(event, LineVoltage):
            self.say(f"  line voltage {event.volts:.1f} V")

    def status(self, status: TransportStatus) -> None:
        self.say(f"modem {status.state.value}: {status.detail}")


def run_demo(fast: bool = False, out: TextIO = sys.stdout) -> int:
    scale = 0.3 if fast else 1.0
    narrator = Narrator(out)
    with tempfile.TemporaryDirectory(prefix="callguard-demo-") as tmp:
        link = str(Path(tmp) / "modem")
        with SimModem(identity="conexant", link_path=link, time_scale=scale) as sim:
            narrator.say(f"A simulated Conexant voice modem is on {link}.")
            transport = ModemTransport(link, on_status=narrator.status)
            transport.add_listener(narrator.event)
            with transport:
                if not transport.wait_connected(10):
                    narrator.say("The modem did not come up; this is a bug in the demo.")
                    return 1
                volts = transport.command("AT-TRV").volts
                narrator.say(f"Line voltage {volts} V: the phone is on the hook.")
                for i, (story, call) in enumerate(MORNING):
                    narrator.say(story)
                    sim.place_call(call).wait(30)
                    if i == 1:
                        narrator.say("Someone pulls the modem's USB plug...")
                        sim.unplug()
                        time.sleep(1.0 * scale + 0.5)
                        narrator.say("...and plugs it back in.")
                        sim.replug()
                        transport.wait_connected(10)
                narrator.say("Speaking two seconds of a test tone down the line:")
                tone = bytes(128 + (40 if (i // 4) % 2 else -40) for i in range(16000))
                result = VoicePlayer(transport).play(tone)
                narrator.say(
                    f"  sent {result.bytes_sent} bytes in {result.seconds:.1f} s, "
                    f"line back on-hook: {'yes' if result.on_hook else 'NO'}"
                )
            narrator.say("Done. The modem layer heard every call; screening comes next.")
    return 0
