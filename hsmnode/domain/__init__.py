"""The pure replicated state machine: stdlib only, no clock, no randomness, no I/O.

Everything non-deterministic (ids, time, key material) is decided by the proposing
member and carried in the command; `apply(state, command)` (`domain/apply/`) is a function of both.
"""
