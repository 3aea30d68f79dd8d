"""Placement: where data lives on the ring. Pure values and functions, no I/O.

token_ring.py (the TokenRing value, token allocation, ownership), strategy.py (SimpleStrategy,
NetworkTopologyStrategy), snitch.py (datacenter, rack, proximity), pending.py (the current and
future rings during a topology change, pending endpoints, range movements).
Rules in docs/ring.md#ring, #placement, #snitches, #topology-changes.
"""
