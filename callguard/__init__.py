"""CallGuard: a call-screening appliance for older people on home landlines."""

from callguard.version import package_version

__version__ = package_version()
"""The installed metadata's version (pyproject.toml's); see callguard.version."""
