"""Request messages (client to server): frozen dataclasses, each with decode_body / encode_body.

`decode_request(opcode, body, version)` is the only entry the Connection uses: it raises
`ProtocolException` for a malformed body (the frame boundary is intact, so the connection serves
on) and never lets trailing bytes pass silently. Bodies follow native_protocol_v4.spec section 4.1
and v5.spec section 4.1.4 and 4.1.5: from v5 the query flags are an [int] and add 0x80 keyspace and
0x100 now_in_seconds; PREPARE gains flags and a keyspace; EXECUTE carries the result metadata id.
Values stay serialized bytes here (None = NULL, UNSET = not set); binding them to column types
is the prepare step's job.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import ClassVar

from ring.cql.frame import Opcode
from ring.cql.notation import (
    Consistency, ProtocolException, Reader, Unset, encode_bytes, encode_consistency, encode_int,
    encode_long, encode_long_string, encode_short, encode_short_bytes, encode_string,
    encode_string_list, encode_string_map, encode_uint, encode_value,
)

F_VALUES, F_SKIP_METADATA, F_PAGE_SIZE, F_PAGING_STATE = 0x01, 0x02, 0x04, 0x08
F_SERIAL_CONSISTENCY, F_TIMESTAMP, F_NAMES, F_KEYSPACE, F_NOW_IN_SECONDS = 0x10, 0x20, 0x40, 0x80, 0x100
_QUERY_FLAGS = {4: 0x7F, 5: 0x1FF}
_BATCH_FLAGS = {4: 0x70, 5: 0x1F0}
Value = bytes | None | Unset


class BatchType(enum.IntEnum):
    LOGGED = 0
    UNLOGGED = 1
    COUNTER = 2


def _flags(r: Reader, version: int, allowed: dict[int, int], what: str) -> int:
    flags = r.uint() if version >= 5 else r.byte()
    unknown = flags & ~allowed[version]
    if unknown:
        raise ProtocolException(f"{what} has flags 0x{unknown:x} that protocol v{version} does not define")
    return flags


@dataclass(slots=True)
class QueryParameters:
    """The <query_parameters> of QUERY and EXECUTE. `names` is set when values are named (0x40).
    Not frozen (one is decoded per request, and a frozen dataclass's construction costs ~1 us more
    per request); nothing changes it after decoding."""

    consistency: Consistency = Consistency.ONE
    values: tuple[Value, ...] = ()
    names: tuple[str, ...] | None = None
    skip_metadata: bool = False
    page_size: int | None = None
    paging_state: bytes | None = None
    serial_consistency: Consistency | None = None
    timestamp: int | None = None              # microseconds since the epoch
    keyspace: str | None = None               # v5
    now_in_seconds: int | None = None         # v5
    has_values: bool = False                  # flag 0x01 was set (even with 0 values)

    @classmethod
    def decode(cls, r: Reader, version: int) -> "QueryParameters":
        consistency = r.consistency()
        flags = _flags(r, version, _QUERY_FLAGS, "query parameters")
        values, names = (), None
        if flags & F_VALUES:
            n = r.short()
            if flags & F_NAMES:
                pairs = [(r.string(), r.value()) for _ in range(n)]
                names, values = tuple(p[0] for p in pairs), tuple(p[1] for p in pairs)
            else:
                values = tuple(r.value() for _ in range(n))
        elif flags & F_NAMES:
            raise ProtocolException("query parameters set 'names for values' (0x40) without values (0x01)")
        page_size = r.int() if flags & F_PAGE_SIZE else None
        if page_size is not None and page_size <= 0:
            raise ProtocolException(f"the page size must be positive, got {page_size}")
        paging_state = r.bytes() if flags & F_PAGING_STATE else None
        serial = r.consistency() if flags & F_SERIAL_CONSISTENCY else None
        timestamp = r.long() if flags & F_TIMESTAMP else None
        keyspace = r.string() if flags & F_KEYSPACE else None
        now = r.int() if flags & F_NOW_IN_SECONDS else None
        return cls(consistency, values, names, bool(flags & F_SKIP_METADATA), page_size, paging_state,
                   serial, timestamp, keyspace, now, bool(flags & F_VALUES))

    def encode(self, version: int) -> bytes:
        flags = ((F_VALUES if self.values or self.has_values or self.names is not None else 0)
                 | (F_NAMES if self.names is not None else 0)
                 | (F_SKIP_METADATA if self.skip_metadata else 0)
                 | (F_PAGE_SIZE if self.page_size is not None else 0)
                 | (F_PAGING_STATE if self.paging_state is not None else 0)
                 | (F_SERIAL_CONSISTENCY if self.serial_consistency is not None else 0)
                 | (F_TIMESTAMP if self.timestamp is not None else 0)
                 | (F_KEYSPACE if self.keyspace is not None else 0)
                 | (F_NOW_IN_SECONDS if self.now_in_seconds is not None else 0))
        assert not flags & ~_QUERY_FLAGS[version], "v5-only parameters in a v4 request"
        out = [encode_consistency(self.consistency), encode_uint(flags) if version >= 5 else bytes([flags])]
        if flags & F_VALUES:
            out.append(encode_short(len(self.values)))
            for i, v in enumerate(self.values):
                if self.names is not None:
                    out.append(encode_string(self.names[i]))
                out.append(encode_value(v))
        if self.page_size is not None:
            out.append(encode_int(self.page_size))
        if self.paging_state is not None:
            out.append(encode_bytes(self.paging_state))
        if self.serial_consistency is not None:
            out.append(encode_consistency(self.serial_consistency))
        if self.timestamp is not None:
            out.append(encode_long(self.timestamp))
        if self.keyspace is not None:
            out.append(encode_string(self.keyspace))
        if self.now_in_seconds is not None:
            out.append(encode_int(self.now_in_seconds))
        return b"".join(out)


@dataclass(frozen=True, slots=True, kw_only=True)
class Request:
    """Frame-level fields every request event carries: the stream to answer on, and its flags."""

    opcode: ClassVar[Opcode]
    stream: int = 0
    tracing: bool = False
    custom_payload: dict[str, bytes | None] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Startup(Request):
    opcode: ClassVar[Opcode] = Opcode.STARTUP
    options: dict[str, str] = field(default_factory=dict)

    @classmethod
    def decode_body(cls, r: Reader, version: int, **kw) -> "Startup":
        return cls(options=r.string_map(), **kw)

    def encode_body(self, version: int) -> bytes:
        return encode_string_map(self.options)


@dataclass(frozen=True, slots=True, kw_only=True)
class Options(Request):
    opcode: ClassVar[Opcode] = Opcode.OPTIONS

    @classmethod
    def decode_body(cls, r: Reader, version: int, **kw) -> "Options":
        return cls(**kw)

    def encode_body(self, version: int) -> bytes:
        return b""


@dataclass(frozen=True, slots=True, kw_only=True)
class Query(Request):
    opcode: ClassVar[Opcode] = Opcode.QUERY
    query: str
    parameters: QueryParameters = field(default_factory=QueryParameters)

    @classmethod
    def decode_body(cls, r: Reader, version: int, **kw) -> "Query":
        return cls(query=r.long_string(), parameters=QueryParameters.decode(r, version), **kw)

    def encode_body(self, version: int) -> bytes:
        return encode_long_string(self.query) + self.parameters.encode(version)


@dataclass(frozen=True, slots=True, kw_only=True)
class Prepare(Request):
    opcode: ClassVar[Opcode] = Opcode.PREPARE
    query: str
    keyspace: str | None = None               # v5

    @classmethod
    def decode_body(cls, r: Reader, version: int, **kw) -> "Prepare":
        query, keyspace = r.long_string(), None
        if version >= 5:
            flags = r.uint()
            if flags & ~0x01:
                raise ProtocolException(f"PREPARE has undefined flags 0x{flags & ~0x01:x}")
            keyspace = r.string() if flags & 0x01 else None
        return cls(query=query, keyspace=keyspace, **kw)

    def encode_body(self, version: int) -> bytes:
        out = encode_long_string(self.query)
        if version >= 5:
            out += encode_uint(0x01 if self.keyspace is not None else 0)
            out += encode_string(self.keyspace) if self.keyspace is not None else b""
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class Execute(Request):
    opcode: ClassVar[Opcode] = Opcode.EXECUTE
    query_id: bytes
    result_metadata_id: bytes | None = None   # v5
    parameters: QueryParameters = field(default_factory=QueryParameters)

    @classmethod
    def decode_body(cls, r: Reader, version: int, **kw) -> "Execute":
        query_id = r.short_bytes()
        metadata_id = r.short_bytes() if version >= 5 else None
        return cls(query_id=query_id, result_metadata_id=metadata_id,
                   parameters=QueryParameters.decode(r, version), **kw)

    def encode_body(self, version: int) -> bytes:
        out = encode_short_bytes(self.query_id)
        if version >= 5:
            out += encode_short_bytes(self.result_metadata_id or b"")
        return out + self.parameters.encode(version)


@dataclass(frozen=True, slots=True)
class BatchStatement:
    """One statement of a BATCH: a query string, or a prepared id (bytes), and its values."""

    query_or_id: str | bytes
    values: tuple[Value, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Batch(Request):
    opcode: ClassVar[Opcode] = Opcode.BATCH
    batch_type: BatchType = BatchType.LOGGED
    statements: tuple[BatchStatement, ...] = ()
    consistency: Consistency = Consistency.ONE
    serial_consistency: Consistency | None = None
    timestamp: int | None = None
    keyspace: str | None = None
    now_in_seconds: int | None = None

    @classmethod
    def decode_body(cls, r: Reader, version: int, **kw) -> "Batch":
        kind = r.byte()
        if kind not in BatchType._value2member_map_:
            raise ProtocolException(f"unknown BATCH type {kind}")
        statements = []
        for _ in range(r.short()):
            tag = r.byte()
            if tag not in (0, 1):
                raise ProtocolException(f"BATCH statement kind {tag} is neither 0 (query) nor 1 (prepared)")
            target = r.long_string() if tag == 0 else r.short_bytes()
            statements.append(BatchStatement(target, tuple(r.value() for _ in range(r.short()))))
        consistency = r.consistency()
        flags = _flags(r, version, _BATCH_FLAGS, "BATCH")
        if flags & F_NAMES:
            raise ProtocolException("names for values (0x40) are not supported in BATCH")
        return cls(batch_type=BatchType(kind), statements=tuple(statements), consistency=consistency,
                   serial_consistency=r.consistency() if flags & F_SERIAL_CONSISTENCY else None,
                   timestamp=r.long() if flags & F_TIMESTAMP else None,
                   keyspace=r.string() if flags & F_KEYSPACE else None,
                   now_in_seconds=r.int() if flags & F_NOW_IN_SECONDS else None, **kw)

    def encode_body(self, version: int) -> bytes:
        out = [bytes([self.batch_type]), encode_short(len(self.statements))]
        for s in self.statements:
            if isinstance(s.query_or_id, str):
                out += [b"\x00", encode_long_string(s.query_or_id)]
            else:
                out += [b"\x01", encode_short_bytes(s.query_or_id)]
            out += [encode_short(len(s.values))] + [encode_value(v) for v in s.values]
        flags = ((F_SERIAL_CONSISTENCY if self.serial_consistency is not None else 0)
                 | (F_TIMESTAMP if self.timestamp is not None else 0)
                 | (F_KEYSPACE if self.keyspace is not None else 0)
                 | (F_NOW_IN_SECONDS if self.now_in_seconds is not None else 0))
        out += [encode_consistency(self.consistency), encode_uint(flags) if version >= 5 else bytes([flags])]
        if self.serial_consistency is not None:
            out.append(encode_consistency(self.serial_consistency))
        if self.timestamp is not None:
            out.append(encode_long(self.timestamp))
        if self.keyspace is not None:
            out.append(encode_string(self.keyspace))
        if self.now_in_seconds is not None:
            out.append(encode_int(self.now_in_seconds))
        return b"".join(out)


EVENT_TYPES = ("TOPOLOGY_CHANGE", "STATUS_CHANGE", "SCHEMA_CHANGE")


@dataclass(frozen=True, slots=True, kw_only=True)
class Register(Request):
    opcode: ClassVar[Opcode] = Opcode.REGISTER
    event_types: tuple[str, ...] = ()

    @classmethod
    def decode_body(cls, r: Reader, version: int, **kw) -> "Register":
        types = tuple(r.string_list())
        for t in types:
            if t not in EVENT_TYPES:
                raise ProtocolException(f"REGISTER for unknown event type {t!r}; known: {', '.join(EVENT_TYPES)}")
        return cls(event_types=types, **kw)

    def encode_body(self, version: int) -> bytes:
        return encode_string_list(list(self.event_types))


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthResponse(Request):
    opcode: ClassVar[Opcode] = Opcode.AUTH_RESPONSE
    token: bytes | None = None

    @classmethod
    def decode_body(cls, r: Reader, version: int, **kw) -> "AuthResponse":
        return cls(token=r.bytes(), **kw)

    def encode_body(self, version: int) -> bytes:
        return encode_bytes(self.token)


REQUESTS: dict[int, type[Request]] = {
    c.opcode: c for c in (Startup, Options, Query, Prepare, Execute, Batch, Register, AuthResponse)}


def decode_request(opcode: int, body: bytes, version: int, **frame_fields) -> Request:
    """The request in one (decompressed) frame body, after any custom payload was read off."""
    cls = REQUESTS.get(opcode)
    if cls is None:
        name = Opcode(opcode).name if opcode in Opcode._value2member_map_ else f"0x{opcode:02x}"
        raise ProtocolException(f"opcode {name} is not a request a client may send")
    r = Reader(body)
    request = cls.decode_body(r, version, **frame_fields)
    r.expect_end(cls.opcode.name)
    return request
