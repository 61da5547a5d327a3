"""The one exception base of CallGuard. Messages name the value, what was expected, and the fix."""


class CallGuardError(Exception):
    """Something CallGuard can explain to the person who has to fix it."""


class UsageError(CallGuardError):
    """Bad input from a person (CLI argument, config value, import file): exit code 2."""
