"""What CallGuard says out loud. Plain British English: short, calm, and under 15 seconds."""

DEFAULT_WARNING = (
    "This is CallGuard. Police and banks will never ask for your PIN, ask you to take out cash, "
    "or send a courier to collect it. If in doubt, hang up, and call one five nine from another "
    "phone."
)
"""Spoken in the room while an unknown caller rings, and down the line when answered.
"one five nine", not "159": espeak-ng would say "one hundred and fifty-nine"."""

DEFAULT_ANNOUNCEMENT = "This number does not accept your calls. Goodbye."
"""Said to a blocked caller when ``block.announce`` is on."""
