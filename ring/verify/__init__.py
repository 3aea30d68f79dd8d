"""Test oracles: client histories, the checkers that judge them, and the simulator's workload.

Used by tests/ and `dynatable sim`; nothing in the protocol code imports this package.
"""
