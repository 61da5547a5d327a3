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

DEFAULT_CLAIM_WARNING = (
    "This is CallGuard. This caller claims to be the police, a bank or the tax office. They "
    "will never ask for your PIN, your cash or your cards. Hang up, and call one five nine "
    "from another phone."
)
"""The stronger warning, when the caller-ID name claims authority (screening.claim_words)."""

DEFAULT_REMINDER = (
    "This is CallGuard. If you are calling your bank or the police about the last call, please "
    "wait five minutes first, or use another phone: the caller may still be on your line."
)
"""Spoken when the phone is picked up within five minutes of a warned or spoofed call."""
