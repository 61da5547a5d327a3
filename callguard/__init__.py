"""CallGuard: a call-screening appliance for older people on home landlines."""

from __future__ import annotations


def __getattr__(name: str) -> str:
    """``__version__``, the installed metadata's version (see callguard.version), worked out on
    first use: importlib.metadata costs every command 20-30 ms, and most never ask."""
    if name == "__version__":
        from callguard.version import package_version

        version = package_version()
        globals()["__version__"] = version
        return version
    raise AttributeError(f"module 'callguard' has no attribute {name!r}")
