"""Every message nodes and clients exchange, as frozen dataclasses, and their msgpack codec.

A message is encoded as the msgpack array `[type_id, field...]` (fields in declaration order).
Type ids are on the wire: never renumber. `decode` rejects what is not a well-formed message (an
unknown type id, the wrong number of fields, a field of a type its declaration does not allow)
with an `InvalidRequest` naming the message and the field, so the node never sees one. Client values that msgpack has no type for travel as
ext types (1 uuid, 2 timestamp-ms, 3 decimal, 4 date, 5 inet); nothing is ever pickled. Framing (length,
version, checksum, size limit) is the runtime's job: docs/format.md (wire).
"""
from __future__ import annotations

import datetime as _dt
import decimal
import ipaddress
import uuid
from dataclasses import astuple, dataclass, fields

import msgpack

from engine.errors import InvalidRequest

_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)
_EPOCH_DATE = _dt.date(1970, 1, 1)


def _default(obj):
    if isinstance(obj, uuid.UUID):
        return msgpack.ExtType(1, obj.bytes)
    if isinstance(obj, _dt.datetime):
        if obj.tzinfo is None:
            obj = obj.replace(tzinfo=_dt.timezone.utc)
        ms = (obj - _EPOCH) // _dt.timedelta(milliseconds=1)
        return msgpack.ExtType(2, ms.to_bytes(8, "big", signed=True))
    if isinstance(obj, decimal.Decimal):
        return msgpack.ExtType(3, str(obj).encode())
    if isinstance(obj, _dt.date):  # after datetime, its subclass
        return msgpack.ExtType(4, (obj - _EPOCH_DATE).days.to_bytes(4, "big", signed=True))
    if isinstance(obj, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
        return msgpack.ExtType(5, obj.packed)
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    raise TypeError(f"cannot encode {type(obj).__name__} on the wire")


def _ext_hook(code: int, data: bytes):
    if code == 1 and len(data) == 16:
        return uuid.UUID(bytes=data)
    if code == 2 and len(data) == 8:
        return _EPOCH + _dt.timedelta(milliseconds=int.from_bytes(data, "big", signed=True))
    if code == 3:
        return decimal.Decimal(data.decode())
    if code == 4 and len(data) == 4:
        return _EPOCH_DATE + _dt.timedelta(days=int.from_bytes(data, "big", signed=True))
    if code == 5 and len(data) in (4, 16):
        return ipaddress.ip_address(data)
    raise InvalidRequest(f"unknown or malformed msgpack ext type {code} on the wire")


def packb(obj) -> bytes:
    # msgpack.packb builds a Packer per call: a shared one is not safe across threads (the store's
    # and the driver's threads also encode), and ring/ protocol code may not own thread state
    return msgpack.packb(obj, default=_default, use_bin_type=True)


def unpackb(data: bytes):
    return msgpack.unpackb(data, ext_hook=_ext_hook, strict_map_key=False, raw=False)


_REGISTRY: dict[int, type] = {}


_FIELD_TYPES = {"int": int, "str": str, "bytes": bytes, "bool": bool, "list": list, "dict": dict,
                "None": type(None), "object": object}
_SHAPES: dict[type, tuple] = {}   # message class -> ((field name, accepted types), ...)
_NAMES: dict[type, tuple] = {}    # message class -> field names in declaration order (for encode)
# decode's fast path: per field, the exact types msgpack may hand back for it (None: any); a value
# of another type goes through `_check_shape`'s full rules, which decide. And a constructor that
# sets the slots directly (a frozen dataclass's __init__ goes through object.__setattr__).
_EXACT: dict[type, tuple] = {}
_BUILD: dict[type, object] = {}


def _builder(cls):
    """cls(*values) without the frozen dataclass's __init__: the same slots set, in a generated
    function. A message with a `__post_init__` (its own checks) keeps its __init__."""
    names = _NAMES[cls]
    if hasattr(cls, "__post_init__"):
        return cls
    args = ", ".join(f"v{i}" for i in range(len(names)))
    body = "".join(f"    set{i}(self, v{i})\n" for i in range(len(names)))
    src = f"def build({args}):\n    self = new(cls)\n{body}    return self\n"
    env = {"new": object.__new__, "cls": cls, **{f"set{i}": getattr(cls, n).__set__ for i, n in enumerate(names)}}
    exec(src, env)  # noqa: S102 - generated from the class's own field names
    return env["build"]


def message(type_id: int):
    def register(cls):
        cls = dataclass(frozen=True, slots=True)(cls)
        assert type_id not in _REGISTRY, type_id
        cls.TYPE_ID = type_id
        _REGISTRY[type_id] = cls
        _SHAPES[cls] = tuple((f.name, tuple(_FIELD_TYPES[t.strip()] for t in f.type.split("|")))
                             for f in fields(cls))
        _NAMES[cls] = tuple(f.name for f in fields(cls))
        _EXACT[cls] = tuple(None if object in accepted else frozenset(accepted) for _, accepted in _SHAPES[cls])
        _BUILD[cls] = _builder(cls)
        return cls
    return register


def _check_shape(cls, values: list) -> None:
    """Each field has one of its declared types (a bool is not an int here): a message of the
    wrong shape is rejected at decode, before any handler sees it."""
    for value, (name, accepted) in zip(values, _SHAPES[cls]):
        if isinstance(value, bool) and bool not in accepted and object not in accepted:
            ok = False
        else:
            ok = isinstance(value, accepted)
        if not ok:
            wanted = " or ".join("None" if t is type(None) else t.__name__ for t in accepted)
            raise InvalidRequest(f"malformed {cls.__name__}: field {name} must be {wanted}, "
                                 f"got {type(value).__name__}")


def encode(msg) -> bytes:
    return packb([msg.TYPE_ID, *[getattr(msg, name) for name in _NAMES[type(msg)]]])


def astuple_shallow(msg) -> tuple:
    return tuple(getattr(msg, name) for name in _NAMES[type(msg)])


def decode(data: bytes):
    try:
        obj = unpackb(data)
    except (ValueError, TypeError, msgpack.exceptions.ExtraData, msgpack.exceptions.UnpackException) as e:
        raise InvalidRequest(f"malformed message: {e}") from None
    if not isinstance(obj, list) or not obj or not isinstance(obj[0], int):
        raise InvalidRequest("malformed message: expected [type_id, field...]")
    cls = _REGISTRY.get(obj[0])
    if cls is None:
        raise InvalidRequest(f"unknown message type {obj[0]}")
    exact = _EXACT[cls]
    if len(obj) - 1 != len(exact):
        raise InvalidRequest(f"malformed {cls.__name__}: {len(obj) - 1} fields, expected {len(exact)}")
    values = obj[1:]
    for value, allowed in zip(values, exact):
        if allowed is not None and type(value) not in allowed:
            _check_shape(cls, values)   # the full rules: raise, or accept (a subclass of a declared type)
            break
    return _BUILD[cls](*values)


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
