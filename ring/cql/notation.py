"""The native protocol's notations ([int], [string], [value], [string multimap] ...): decode and encode.

Everything is big-endian, as the spec's section 3 says. A `Reader` walks one frame body and raises
`ProtocolException` (never IndexError, struct.error or UnicodeDecodeError) when the body is
truncated or malformed, naming the notation and the offset; nothing read is trusted further than
its declared length. Encoders are plain functions returning bytes. [value] distinguishes NULL
(length -1, decoded as None) from UNSET (length -2, decoded as `UNSET`), as v4 requires.
"""
from __future__ import annotations

import enum
import ipaddress
import uuid

from engine.encoding import I32, I64, U16


class ProtocolException(Exception):
    """The peer broke the protocol. `fatal`: the byte stream cannot be resynchronized (close)."""

    def __init__(self, message: str, *, fatal: bool = False):
        super().__init__(message)
        self.message = message
        self.fatal = fatal


class Unset:
    """The [value] "not set" marker (length -2): leave the bound column unchanged."""

    _instance = None

    def __new__(cls):
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNSET"


UNSET = Unset()


class Consistency(enum.IntEnum):
    """[consistency] values. On the wire: never renumber."""

    ANY = 0x0000
    ONE = 0x0001
    TWO = 0x0002
    THREE = 0x0003
    QUORUM = 0x0004
    ALL = 0x0005
    LOCAL_QUORUM = 0x0006
    EACH_QUORUM = 0x0007
    SERIAL = 0x0008
    LOCAL_SERIAL = 0x0009
    LOCAL_ONE = 0x000A


_CONSISTENCY_BY_CODE = {c.value: c for c in Consistency}


class Reader:
    """A cursor over one frame body. Every method consumes its notation or raises ProtocolException."""

    __slots__ = ("buf", "pos")

    def __init__(self, buf: bytes):
        self.buf = bytes(buf)
        self.pos = 0

    def remaining(self) -> int:
        return len(self.buf) - self.pos

    def take(self, n: int, what: str = "bytes") -> bytes:
        if n < 0 or self.pos + n > len(self.buf):
            raise ProtocolException(
                f"truncated body: {what} needs {n} bytes at offset {self.pos}, "
                f"{len(self.buf) - self.pos} left")
        out = self.buf[self.pos:self.pos + n]
        self.pos += n
        return out

    def expect_end(self, what: str) -> None:
        if self.pos != len(self.buf):
            raise ProtocolException(
                f"{what}: {len(self.buf) - self.pos} unexpected bytes after offset {self.pos}")

    def byte(self) -> int:
        return self.take(1, "[byte]")[0]

    def short(self) -> int:
        pos = self.pos
        if pos + 2 > len(self.buf):
            self.take(2, "[short]")             # raises, naming the offset
        self.pos = pos + 2
        return U16.unpack_from(self.buf, pos)[0]

    def int(self) -> int:
        pos = self.pos
        if pos + 4 > len(self.buf):
            self.take(4, "[int]")
        self.pos = pos + 4
        return I32.unpack_from(self.buf, pos)[0]

    def long(self) -> int:
        return I64.unpack(self.take(8, "[long]"))[0]

    def uint(self) -> int:
        return int.from_bytes(self.take(4, "[int] flags"), "big")

    def _utf8(self, raw: bytes, what: str) -> str:
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise ProtocolException(f"{what} at offset {self.pos - len(raw)} is not UTF-8: {e.reason}")

    def string(self) -> str:
        return self._utf8(self.take(self.short(), "[string]"), "[string]")

    def long_string(self) -> str:
        n = self.int()
        if n < 0:
            raise ProtocolException(f"[long string] with negative length {n} at offset {self.pos - 4}")
        return self._utf8(self.take(n, "[long string]"), "[long string]")

    def bytes(self) -> bytes | None:
        n = self.int()
        return None if n < 0 else self.take(n, "[bytes]")

    def value(self) -> bytes | None | Unset:
        n = self.int()
        if n == -1:
            return None
        if n == -2:
            return UNSET
        if n < 0:
            raise ProtocolException(f"[value] with invalid length {n} at offset {self.pos - 4}")
        return self.take(n, "[value]")

    def short_bytes(self) -> bytes:
        return self.take(self.short(), "[short bytes]")

    def string_list(self) -> list[str]:
        return [self.string() for _ in range(self.short())]

    def string_map(self) -> dict[str, str]:
        return {self.string(): self.string() for _ in range(self.short())}

    def string_multimap(self) -> dict[str, list[str]]:
        return {self.string(): self.string_list() for _ in range(self.short())}

    def bytes_map(self) -> dict[str, bytes | None]:
        return {self.string(): self.bytes() for _ in range(self.short())}

    def uuid(self) -> uuid.UUID:
        return uuid.UUID(bytes=self.take(16, "[uuid]"))

    def inet(self) -> tuple[str, int]:
        size = self.byte()
        if size not in (4, 16):
            raise ProtocolException(f"[inet] address of {size} bytes at offset {self.pos - 1}")
        return str(ipaddress.ip_address(self.take(size, "[inet]"))), self.int()

    def consistency(self) -> Consistency:
        code = self.short()
        try:
            return _CONSISTENCY_BY_CODE[code]
        except KeyError:
            raise ProtocolException(f"unknown consistency level 0x{code:04x} at offset {self.pos - 2}")


# -- encoders ---------------------------------------------------------------------------------

def encode_short(n: int) -> bytes:
    return U16.pack(n)


def encode_int(n: int) -> bytes:
    return I32.pack(n)


def encode_uint(n: int) -> bytes:
    return n.to_bytes(4, "big")


def encode_long(n: int) -> bytes:
    return I64.pack(n)


def encode_string(s: str) -> bytes:
    raw = s.encode("utf-8")
    assert len(raw) <= 0xFFFF, "a [string] is at most 65535 bytes"
    return U16.pack(len(raw)) + raw


def encode_long_string(s: str) -> bytes:
    raw = s.encode("utf-8")
    return I32.pack(len(raw)) + raw


def encode_bytes(b: bytes | None) -> bytes:
    return I32.pack(-1) if b is None else I32.pack(len(b)) + bytes(b)


def encode_value(v: bytes | None | Unset) -> bytes:
    if v is UNSET:
        return I32.pack(-2)
    return encode_bytes(v)


def encode_short_bytes(b: bytes) -> bytes:
    assert len(b) <= 0xFFFF, "[short bytes] are at most 65535 bytes"
    return U16.pack(len(b)) + bytes(b)


def encode_string_list(items: list[str]) -> bytes:
    return U16.pack(len(items)) + b"".join(encode_string(s) for s in items)


def encode_string_map(m: dict[str, str]) -> bytes:
    return U16.pack(len(m)) + b"".join(encode_string(k) + encode_string(v) for k, v in m.items())


def encode_string_multimap(m: dict[str, list[str]]) -> bytes:
    return U16.pack(len(m)) + b"".join(encode_string(k) + encode_string_list(v) for k, v in m.items())


def encode_bytes_map(m: dict[str, bytes | None]) -> bytes:
    return U16.pack(len(m)) + b"".join(encode_string(k) + encode_bytes(v) for k, v in m.items())


def encode_inet(address: str, port: int) -> bytes:
    packed = ipaddress.ip_address(address).packed
    return bytes([len(packed)]) + packed + I32.pack(port)


def encode_consistency(level: int) -> bytes:
    return U16.pack(int(level))
