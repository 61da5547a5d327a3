"""CallGuard: a call-screening appliance for older people on home landlines."""

__version__ = "0.1.0"
