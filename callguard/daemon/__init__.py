"""The screening daemon: start in order, loop, carry out actions, stop in reverse."""
