"""Paxos ballots: 16 bytes, ordered as bytes, unique per node, time-based.

A ballot is `micros:u64 big-endian | node:u64 big-endian` (docs/format.md#paxos-ballot), so the
plain bytes comparison orders ballots by (wall micros, node). `NONE` (b"") sorts below every
ballot. `micros` becomes the timestamp of every cell the proposal commits (Cassandra's
`Commit.newProposal`), so last-write-wins order among committed updates is ballot order.

Invariants: a `BallotClock` hands out strictly increasing ballots: each one's micros is above the
previous one's, above any ballot the proposer has been told about (`at_least`), and at least the
injected wall clock; two nodes never share the node half (xxh64 of the host id). No global clock,
no randomness.
"""
from __future__ import annotations

import uuid

import xxhash

from engine.errors import InvalidRequest

NONE = b""
SIZE = 16


def make(micros: int, node: int) -> bytes:
    return micros.to_bytes(8, "big") + node.to_bytes(8, "big")


def micros(ballot: bytes) -> int:
    """The ballot's time in microseconds (0 for NONE)."""
    return int.from_bytes(ballot[:8], "big") if ballot else 0


def node_tag(host_id: str) -> int:
    return xxhash.xxh64(host_id.encode()).intdigest()


def check(ballot, what: str = "ballot", allow_none: bool = True) -> bytes:
    """`ballot` if it is a well-formed ballot (or NONE where allowed), else InvalidRequest."""
    if type(ballot) is not bytes or not (len(ballot) == SIZE or (allow_none and not ballot)):
        raise InvalidRequest(f"malformed {what}: expected {SIZE} bytes, got {ballot!r:.40}")
    return ballot


def describe(ballot: bytes) -> str:
    """A ballot as a UUID-looking string, for logs and dumps."""
    return str(uuid.UUID(bytes=ballot)) if ballot else "none"


class BallotClock:
    """One node's ballot source (Cassandra's ClientState.getTimestampForPaxos)."""

    __slots__ = ("node", "last_micros")

    def __init__(self, host_id: str):
        self.node = node_tag(host_id)
        self.last_micros = 0

    def next(self, wall_us: int, at_least: bytes = NONE) -> bytes:
        """A ballot above every one handed out before and above `at_least` (a ballot a replica
        has promised: retrying below it is futile)."""
        m = max(wall_us, self.last_micros + 1, micros(at_least) + 1)
        self.last_micros = m
        return make(m, self.node)
