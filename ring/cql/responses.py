"""Response messages (server to client) other than RESULT: READY, AUTHENTICATE, AUTH_*, SUPPORTED,
EVENT and ERROR, each a frozen dataclass with `encode_body(version)`.

ERROR carries Cassandra's codes (ErrorCode; on the wire: never renumber) and their extras, so
drivers raise their own exception classes: Unavailable (cl, required, alive), Write/ReadTimeout
(received, block_for, write_type / data_present), Read/WriteFailure (a failure count in v4, a
reason map in v5), AlreadyExists (keyspace, table), Unprepared (the id), FunctionFailure.
`error_for(exc)` maps the ring's error tree onto them; messages keep the ring's wording.
"""
from __future__ import annotations

import enum
import ipaddress
from dataclasses import dataclass, field
from typing import ClassVar

from engine import errors as engine_errors
from engine.errors import InvalidRequest
from ring import errors as ring_errors
from ring.cql.frame import Opcode
from ring.cql.lexer import CqlSyntaxError
from ring.cql.notation import (
    Consistency, encode_bytes, encode_consistency, encode_inet, encode_int, encode_short,
    encode_short_bytes, encode_string, encode_string_list, encode_string_multimap,
)


@dataclass(frozen=True, slots=True)
class Response:
    opcode: ClassVar[Opcode]

    def encode_body(self, version: int) -> bytes:
        return b""


@dataclass(frozen=True, slots=True)
class Ready(Response):
    opcode: ClassVar[Opcode] = Opcode.READY


@dataclass(frozen=True, slots=True)
class Authenticate(Response):
    opcode: ClassVar[Opcode] = Opcode.AUTHENTICATE
    authenticator: str

    def encode_body(self, version: int) -> bytes:
        return encode_string(self.authenticator)


@dataclass(frozen=True, slots=True)
class AuthChallenge(Response):
    opcode: ClassVar[Opcode] = Opcode.AUTH_CHALLENGE
    token: bytes | None

    def encode_body(self, version: int) -> bytes:
        return encode_bytes(self.token)


@dataclass(frozen=True, slots=True)
class AuthSuccess(Response):
    opcode: ClassVar[Opcode] = Opcode.AUTH_SUCCESS
    token: bytes | None = None

    def encode_body(self, version: int) -> bytes:
        return encode_bytes(self.token)


@dataclass(frozen=True, slots=True)
class Supported(Response):
    """The answer to OPTIONS. cassandra-driver needs the keys CQL_VERSION and COMPRESSION."""

    opcode: ClassVar[Opcode] = Opcode.SUPPORTED
    options: dict[str, list[str]] = field(default_factory=dict)

    def encode_body(self, version: int) -> bytes:
        return encode_string_multimap(self.options)


# -- EVENT ------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class SchemaChange(Response):
    """A SCHEMA_CHANGE event; RESULT kind Schema_change reuses `encode_change`.

    change_type CREATED|UPDATED|DROPPED; target KEYSPACE|TABLE|TYPE|FUNCTION|AGGREGATE.
    """

    opcode: ClassVar[Opcode] = Opcode.EVENT
    change_type: str
    target: str
    keyspace: str
    name: str = ""
    argument_types: tuple[str, ...] = ()

    def encode_change(self) -> bytes:
        assert self.change_type in ("CREATED", "UPDATED", "DROPPED"), self.change_type
        out = encode_string(self.change_type) + encode_string(self.target) + encode_string(self.keyspace)
        if self.target == "KEYSPACE":
            return out
        out += encode_string(self.name)
        if self.target in ("FUNCTION", "AGGREGATE"):
            out += encode_string_list(list(self.argument_types))
        return out

    def encode_body(self, version: int) -> bytes:
        return encode_string("SCHEMA_CHANGE") + self.encode_change()


@dataclass(frozen=True, slots=True)
class TopologyChange(Response):
    opcode: ClassVar[Opcode] = Opcode.EVENT
    change: str            # NEW_NODE | REMOVED_NODE
    address: str
    port: int

    def encode_body(self, version: int) -> bytes:
        return encode_string("TOPOLOGY_CHANGE") + encode_string(self.change) + encode_inet(self.address, self.port)


@dataclass(frozen=True, slots=True)
class StatusChange(Response):
    opcode: ClassVar[Opcode] = Opcode.EVENT
    change: str            # UP | DOWN
    address: str
    port: int

    def encode_body(self, version: int) -> bytes:
        return encode_string("STATUS_CHANGE") + encode_string(self.change) + encode_inet(self.address, self.port)


# -- ERROR ------------------------------------------------------------------------------------

class ErrorCode(enum.IntEnum):
    """ERROR codes. On the wire: never renumber."""

    SERVER_ERROR = 0x0000
    PROTOCOL_ERROR = 0x000A
    BAD_CREDENTIALS = 0x0100
    UNAVAILABLE = 0x1000
    OVERLOADED = 0x1001
    IS_BOOTSTRAPPING = 0x1002
    TRUNCATE_ERROR = 0x1003
    WRITE_TIMEOUT = 0x1100
    READ_TIMEOUT = 0x1200
    READ_FAILURE = 0x1300
    FUNCTION_FAILURE = 0x1400
    WRITE_FAILURE = 0x1500
    SYNTAX_ERROR = 0x2000
    UNAUTHORIZED = 0x2100
    INVALID = 0x2200
    CONFIG_ERROR = 0x2300
    ALREADY_EXISTS = 0x2400
    UNPREPARED = 0x2500


@dataclass(frozen=True, slots=True)
class Error(Response):
    """An ERROR without extras (Server, Protocol, Overloaded, Syntax, Invalid, ...)."""

    opcode: ClassVar[Opcode] = Opcode.ERROR
    code: ErrorCode
    message: str

    def extras(self, version: int) -> bytes:
        return b""

    def encode_body(self, version: int) -> bytes:
        message = self.message.encode("utf-8")[:0xFFFF].decode("utf-8", "ignore")
        return encode_int(self.code) + encode_string(message) + self.extras(version)


def _reasons(version: int, failures: dict[str, int], count: int) -> bytes:
    """v4: the number of failures; v5: a reason map of <inet address><short failure code>."""
    if version < 5:
        return encode_int(max(count, len(failures)))
    out = [encode_int(len(failures))]
    for address, reason in failures.items():
        packed = ipaddress.ip_address(address).packed
        out.append(bytes([len(packed)]) + packed + encode_short(reason))
    return b"".join(out)


@dataclass(frozen=True, slots=True)
class Unavailable(Error):
    code: ErrorCode = ErrorCode.UNAVAILABLE
    message: str = ""
    consistency: Consistency = Consistency.ONE
    required: int = 0
    alive: int = 0

    def extras(self, version: int) -> bytes:
        return encode_consistency(self.consistency) + encode_int(self.required) + encode_int(self.alive)


@dataclass(frozen=True, slots=True)
class WriteTimeout(Error):
    code: ErrorCode = ErrorCode.WRITE_TIMEOUT
    message: str = ""
    consistency: Consistency = Consistency.ONE
    received: int = 0
    block_for: int = 0
    write_type: str = "SIMPLE"
    contentions: int = 0            # v5, CAS only

    def extras(self, version: int) -> bytes:
        out = (encode_consistency(self.consistency) + encode_int(self.received)
               + encode_int(self.block_for) + encode_string(self.write_type))
        if version >= 5 and self.write_type == "CAS":
            out += encode_short(self.contentions)
        return out


@dataclass(frozen=True, slots=True)
class ReadTimeout(Error):
    code: ErrorCode = ErrorCode.READ_TIMEOUT
    message: str = ""
    consistency: Consistency = Consistency.ONE
    received: int = 0
    block_for: int = 0
    data_present: bool = False

    def extras(self, version: int) -> bytes:
        return (encode_consistency(self.consistency) + encode_int(self.received)
                + encode_int(self.block_for) + bytes([self.data_present]))


@dataclass(frozen=True, slots=True)
class ReadFailure(Error):
    code: ErrorCode = ErrorCode.READ_FAILURE
    message: str = ""
    consistency: Consistency = Consistency.ONE
    received: int = 0
    block_for: int = 0
    failures: dict[str, int] = field(default_factory=dict)   # replica address -> reason code
    failure_count: int = 0
    data_present: bool = False

    def extras(self, version: int) -> bytes:
        return (encode_consistency(self.consistency) + encode_int(self.received) + encode_int(self.block_for)
                + _reasons(version, self.failures, self.failure_count) + bytes([self.data_present]))


@dataclass(frozen=True, slots=True)
class WriteFailure(Error):
    code: ErrorCode = ErrorCode.WRITE_FAILURE
    message: str = ""
    consistency: Consistency = Consistency.ONE
    received: int = 0
    block_for: int = 0
    failures: dict[str, int] = field(default_factory=dict)
    failure_count: int = 0
    write_type: str = "SIMPLE"

    def extras(self, version: int) -> bytes:
        return (encode_consistency(self.consistency) + encode_int(self.received) + encode_int(self.block_for)
                + _reasons(version, self.failures, self.failure_count) + encode_string(self.write_type))


@dataclass(frozen=True, slots=True)
class FunctionFailure(Error):
    code: ErrorCode = ErrorCode.FUNCTION_FAILURE
    message: str = ""
    keyspace: str = ""
    function: str = ""
    argument_types: tuple[str, ...] = ()

    def extras(self, version: int) -> bytes:
        return encode_string(self.keyspace) + encode_string(self.function) + encode_string_list(list(self.argument_types))


@dataclass(frozen=True, slots=True)
class AlreadyExists(Error):
    code: ErrorCode = ErrorCode.ALREADY_EXISTS
    message: str = ""
    keyspace: str = ""
    table: str = ""                 # "" when a keyspace already exists

    def extras(self, version: int) -> bytes:
        return encode_string(self.keyspace) + encode_string(self.table)


@dataclass(frozen=True, slots=True)
class Unprepared(Error):
    code: ErrorCode = ErrorCode.UNPREPARED
    message: str = ""
    query_id: bytes = b""

    def extras(self, version: int) -> bytes:
        return encode_short_bytes(self.query_id)


def _level(level: object) -> Consistency:
    name = getattr(level, "name", str(level))
    return Consistency[name] if name in Consistency.__members__ else Consistency.ONE


def error_for(exc: Exception) -> Error:
    """The ERROR a driver should see for one of the ring's (or engine's) request errors."""
    message = str(exc)
    if isinstance(exc, ring_errors.UnavailableError):
        return Unavailable(message=message, consistency=_level(exc.level), required=exc.required, alive=exc.alive)
    if isinstance(exc, ring_errors.WriteTimeout):
        return WriteTimeout(message=message, consistency=_level(exc.level), received=exc.received,
                            block_for=exc.block_for, write_type=exc.write_type)
    if isinstance(exc, ring_errors.ReadTimeout):
        return ReadTimeout(message=message, consistency=_level(exc.level), received=exc.received,
                           block_for=exc.block_for, data_present=exc.data_present)
    if isinstance(exc, ring_errors.ReadFailure):
        return ReadFailure(message=message, consistency=_level(exc.level), received=exc.received,
                           block_for=exc.block_for, failure_count=exc.failures)
    if isinstance(exc, ring_errors.WriteFailure):
        return WriteFailure(message=message, consistency=_level(exc.level), received=exc.received,
                            block_for=exc.block_for, failure_count=exc.failures)
    if isinstance(exc, ring_errors.OverloadedError):
        return Error(ErrorCode.OVERLOADED, message)
    if isinstance(exc, ring_errors.TruncateError):
        return Error(ErrorCode.TRUNCATE_ERROR, message)
    if isinstance(exc, ring_errors.AuthenticationFailed):
        return Error(ErrorCode.BAD_CREDENTIALS, message)
    if isinstance(exc, ring_errors.Unauthorized):
        return Error(ErrorCode.UNAUTHORIZED, message)
    if isinstance(exc, engine_errors.AlreadyExists):
        return AlreadyExists(message=message, keyspace=exc.keyspace, table=exc.table)
    if isinstance(exc, InvalidRequest):
        code = ErrorCode.SYNTAX_ERROR if isinstance(exc, CqlSyntaxError) else ErrorCode.INVALID
        return Error(code, message)
    return Error(ErrorCode.SERVER_ERROR, f"{type(exc).__name__}: {message}")
