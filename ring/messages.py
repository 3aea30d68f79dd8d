"""Every message nodes and clients exchange, as frozen dataclasses (the catalogue of type ids).

The codec (`encode`, `decode`, `packb`, `unpackb`, the msgpack ext types, shape checks at decode)
is ring/message_codec.py; its names are re-exported here for the modules that speak messages.
"""
from __future__ import annotations

from dataclasses import astuple, dataclass  # noqa: F401  (astuple: in __all__)

from engine.errors import InvalidRequest
from ring.message_codec import astuple_shallow, decode, encode, message, packb, unpackb  # noqa: F401


# -- gossip (GossipDigestSyn / Ack / Ack2) ----------------------------------------------------

@message(1)
class GossipSyn:
    cluster_name: str
    digests: list          # [[endpoint, generation, max_version], ...]


@message(2)
class GossipAck:
    digests: list          # what the sender wants: [[endpoint, generation, version], ...]
    states: dict           # endpoint -> EndpointState wire form


@message(3)
class GossipAck2:
    states: dict


# -- replica requests ---------------------------------------------------------------------------

@message(10)
class MutationRequest:
    id: int
    table_id: str
    key: bytes
    payload: bytes         # an encoded partition update (engine/partition.py)


@message(16)
class HintRequest:
    """A stored hint delivered (answered by a MutationResponse): the receiver drops it when the
    table was truncated at or after the hint was created (Cassandra's Hint.apply)."""
    id: int
    table_id: str
    key: bytes
    payload: bytes
    created_us: int        # when the coordinator stored the hint, on its wall clock


@message(11)
class MutationResponse:
    id: int
    error: str | None      # None = applied


@message(12)
class ReadRequest:
    id: int
    table_id: str
    key: bytes
    lo: bytes              # clustering slice [lo, hi), hi None = unbounded
    hi: bytes | None
    digest_only: bool


@message(13)
class ReadResponse:
    id: int
    payload: bytes | None  # the partition restricted to the slice (None if absent), or None for digests
    digest: bytes
    error: str | None


@message(14)
class RangeReadRequest:
    id: int
    table_id: str
    start: list | None     # [token, key] inclusive
    end: list | None       # [token, key] exclusive
    limit: int             # partitions


@message(15)
class RangeReadResponse:
    id: int
    partitions: list       # [[token, key, payload], ...]
    exhausted: bool
    error: str | None


@message(20)
class SchemaPull:
    id: int


@message(21)
class SchemaPush:
    id: int
    schema: dict


# -- repair -----------------------------------------------------------------------------------

@message(22)
class ValidationRequest:
    id: int
    table_id: str
    lo: int | None         # the token range (lo, hi]; lo None = the ring minimum
    hi: int
    depth: int


@message(23)
class ValidationResponse:
    id: int
    tree: list | None      # MerkleTree.to_wire()
    partitions: int
    error: str | None


# -- streaming and topology changes (ring/streaming.py, ring/operations/) --------------------------

@message(24)
class StreamRequest:
    id: int
    table_id: str
    start: list | None     # [token, key] inclusive, None = ring minimum
    end: list | None       # [token, key] exclusive, None = ring maximum
    limit: int             # partitions per page


@message(25)
class StreamResponse:
    id: int
    partitions: list       # [[token, key, payload], ...] in (token, key) order, tombstones included
    exhausted: bool        # nothing is left before `end`
    checksum: int          # xxh64 of msgpack(partitions); the receiver recomputes it
    error: str | None


@message(26)
class FetchRanges:
    id: int
    operation: str         # "bootstrap:<host id>", "decommission:<host id>", "removenode:<host id>"
    plan: list             # [[table_id, lo, hi, [source endpoints...]], ...]: ranges (lo, hi] to fetch


@message(27)
class FetchRangesDone:
    id: int
    summary: dict          # {"ranges": n, "partitions": n, "bytes": n, "retries": n}
    error: str | None


# -- secondary-index queries (ring/index_query.py) ----------------------------------------------

@message(40)
class IndexReadRequest:
    id: int
    table_id: str
    where: list            # [[column, op, value], ...], ANDed (engine/restriction.py)
    start: list | None     # [token, key] inclusive, None = ring minimum
    end: list | None       # [token, key] exclusive, None = ring maximum
    after: list | None     # [token, key, clustering]: only rows after it (paging), or None
    limit: int             # rows


@message(41)
class IndexReadResponse:
    id: int
    rows: list             # [[token, key, clustering, payload | None], ...] in (token, key, clustering) order
    exhausted: bool        # nothing matches between the last row and `end`
    error: str | None


@message(42)
class RowsReadRequest:
    id: int
    table_id: str
    rows: list             # [[key, clustering], ...]: answered by an IndexReadResponse, one entry each


# -- lightweight transactions (ring/paxos/, docs/lwt.md) ------------------------------------------
# Ballots are 16 bytes (ring/paxos/ballot.py), b"" = none; a proposal or commit travels as
# `ballot || encoded partition update`. Sizes are checked at decode (`__post_init__`).

def _check_ballots(msg, *names: str) -> None:
    for name in names:
        value = getattr(msg, name)
        if len(value) not in (0, 16):
            raise InvalidRequest(f"malformed {type(msg).__name__}: field {name} must be a 16-byte ballot "
                                 f"or empty, got {len(value)} bytes")


def _check_proposals(msg, *names: str) -> None:
    for name in names:
        value = getattr(msg, name)
        if value and len(value) <= 16:
            raise InvalidRequest(f"malformed {type(msg).__name__}: field {name} must be a ballot and an update")


@message(50)
class PrepareRequest:
    id: int
    table_id: str
    key: bytes
    ballot: bytes
    lo: bytes              # the slice whose current data rides on the answer: [lo, hi), hi None = unbounded
    hi: bytes | None

    def __post_init__(self):
        _check_ballots(self, "ballot")


@message(51)
class PrepareResponse:
    id: int
    promised: bool         # True: promised `ballot`; False: rejected, `ballot` is the higher one promised
    ballot: bytes
    accepted: bytes        # the accepted proposal (ballot || update), b"" if none
    committed: bytes       # the most recent commit (ballot || update), b"" if none
    data: bytes | None     # the replica's current slice (canonical partition payload), None if empty
    error: str | None

    def __post_init__(self):
        _check_ballots(self, "ballot")
        _check_proposals(self, "accepted", "committed")


@message(52)
class ProposeRequest:
    id: int
    table_id: str
    key: bytes
    ballot: bytes
    update: bytes          # encoded partition update, stamped with the ballot's micros

    def __post_init__(self):
        _check_ballots(self, "ballot")


@message(53)
class ProposeResponse:
    id: int
    accepted: bool
    ballot: bytes          # rejected: the higher ballot promised
    error: str | None

    def __post_init__(self):
        _check_ballots(self, "ballot")


@message(54)
class CommitRequest:       # answered by a MutationResponse
    id: int
    table_id: str
    key: bytes
    ballot: bytes
    update: bytes

    def __post_init__(self):
        _check_ballots(self, "ballot")


# -- TRUNCATE (ring/ops/truncate.py) -------------------------------------------------------------

@message(60)
class TruncateRequest:
    id: int
    table_id: str


@message(61)
class TruncateResponse:
    id: int
    error: str | None      # None = truncated on that node


# -- client <-> coordinator ---------------------------------------------------------------------

@message(30)
class ClientRequest:
    id: int
    op: str
    args: dict


@message(31)
class ClientResponse:
    id: int
    result: object
    error: dict | None     # {"type": class name, "message": str, ...fields}


# -- effects returned by the sans-IO node (never on the wire) ----------------------------------

@dataclass(frozen=True, slots=True)
class Send:
    to: str
    msg: object


@dataclass(frozen=True, slots=True)
class Reply:
    request_id: int
    result: object = None
    error: BaseException | None = None


@dataclass(frozen=True, slots=True)
class Durable:
    """Hold `effects` until the local commit log is durable up to `position` (batch and group
    sync); the driver waits off its event loop, then hands them back through `Node.durable`."""
    position: tuple
    effects: list


__all__ = [name for name in dir() if not name.startswith("_")] + ["astuple"]
