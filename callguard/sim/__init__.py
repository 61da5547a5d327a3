"""A simulated voice/caller-ID modem on a pseudo-terminal, for running CallGuard without hardware.

`SimModem` is the modem (Conexant- or USRobotics-like) behind a pty that pyserial opens like a
USB modem; `Call` and `Scenario` describe what happens on the phone line; `CallRecord` and
`VoiceSession` are what the sim saw, for tests to check. `console` is the command language
that rings the line by hand (`call 01632 960123`, `answer`, `hangup`...), read from stdin and
from the control socket in `control`. Run `callguard sim --help`.
"""

from callguard.sim.firmware import Firmware, Identity, VoiceSession
from callguard.sim.modem import SimModem, SimModemError
from callguard.sim.script import (
    SCENARIOS,
    Call,
    CallHandle,
    CallRecord,
    CallTiming,
    Scenario,
    timeline,
)

__all__ = [
    "SCENARIOS",
    "Call",
    "CallHandle",
    "CallRecord",
    "CallTiming",
    "Firmware",
    "Identity",
    "Scenario",
    "SimModem",
    "SimModemError",
    "VoiceSession",
    "timeline",
]
