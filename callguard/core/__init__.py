"""The functional core: numbers, lists, screening, the call machine.

No I/O, no clock, no threads.
"""
