"""Wire frames, the connection handshake and errors on the wire: pure, sans-IO (h11-style).

A frame is `"DT" | u8 version | u8 flags | u32 payload_length | payload | u32 crc32(payload)`,
big-endian; the payload is one `ring.messages.encode(...)` blob (or, during the handshake, a
plain msgpack list). `FrameDecoder` is fed bytes as they arrive and hands out whole payloads;
it checks the header as soon as it has it (so an oversized frame is refused before it is
buffered) and raises `ProtocolError` on a bad magic, an unknown version, an oversized frame or
a checksum mismatch. After an error the decoder stays failed: the connection must be closed.

Layout, handshake and error dicts are documented byte by byte in docs/format.md (wire);
tests/ring/test_frames.py checks the worked example there.
"""
from __future__ import annotations

import hashlib
import hmac
import os
from typing import ClassVar

from engine import errors as engine_errors
from engine.encoding import U32, crc32
from ring import errors as ring_errors
from ring.errors import ProtocolError, RequestError
from ring.messages import packb, unpackb

MAGIC = b"DT"
PROTOCOL_VERSION = 1
HEADER_BYTES = 8          # magic 2, version 1, flags 1, payload_length 4
TRAILER_BYTES = 4         # crc32 of the payload
MAX_FRAME_BYTES = 16 * 1024 * 1024
NONCE_BYTES = 16


def split_endpoint(ep: str) -> tuple[str, int]:
    """ "host:port" or "[v6]:port" (an endpoint as gossiped and framed) -> (host, port) to connect to."""
    host, _, port = ep.rpartition(":")
    return host.strip("[]"), int(port)


def encode_frame(payload: bytes, version: int = PROTOCOL_VERSION, flags: int = 0) -> bytes:
    """One frame around `payload`. `version`/`flags` are parameters only so tests can forge bad frames."""
    return b"".join((MAGIC, bytes((version, flags)), U32.pack(len(payload)), payload,
                     U32.pack(crc32(payload))))


class FrameDecoder:
    """Incremental frame parser: `feed(bytes)`, then `next_payload()` until it returns None."""

    def __init__(self, max_frame_bytes: int = MAX_FRAME_BYTES):
        assert max_frame_bytes > 0
        self.max_frame_bytes = max_frame_bytes
        self._buf = bytearray()
        self._pos = 0
        self._error: ProtocolError | None = None

    @property
    def buffered_bytes(self) -> int:
        return len(self._buf) - self._pos

    def feed(self, data: bytes) -> None:
        if self._pos and self._pos * 2 >= len(self._buf):
            del self._buf[:self._pos]  # compact once at least half the buffer is consumed
            self._pos = 0
        self._buf += data

    def next_payload(self) -> bytes | None:
        """The next whole payload, or None if more bytes are needed. Raises ProtocolError."""
        if self._error is not None:
            raise self._error
        try:
            return self._next_payload()
        except ProtocolError as e:
            self._error = e
            raise

    def _next_payload(self) -> bytes | None:
        buf, pos = self._buf, self._pos
        have = len(buf) - pos
        if have >= 1 and buf[pos] != MAGIC[0] or have >= 2 and buf[pos + 1] != MAGIC[1]:
            got = bytes(buf[pos:pos + 2])
            raise ProtocolError(f"bad frame magic {got.hex()} (expected {MAGIC.hex()}, 'DT'); "
                                "is the other side a dynatable node or client?")
        if have >= 3 and buf[pos + 2] != PROTOCOL_VERSION:
            raise ProtocolError(f"protocol version {buf[pos + 2]} is not supported "
                                f"(this node speaks {PROTOCOL_VERSION})")
        if have < HEADER_BYTES:
            return None
        (length,) = U32.unpack_from(buf, pos + 4)
        if length > self.max_frame_bytes:
            raise ProtocolError(f"frame of {length} bytes exceeds max_frame_bytes={self.max_frame_bytes} "
                                f"({self.max_frame_bytes / 2**20:g} MiB); split the value, or raise "
                                "max_frame_bytes on both sides")
        end = pos + HEADER_BYTES + length
        if len(buf) < end + TRAILER_BYTES:
            return None
        payload = bytes(buf[pos + HEADER_BYTES:end])
        (expected,) = U32.unpack_from(buf, end)
        actual = crc32(payload)
        if actual != expected:
            raise ProtocolError(f"frame checksum mismatch (crc32 {actual:08x}, frame says {expected:08x}) "
                                f"on a {length}-byte payload")
        self._pos = end + TRAILER_BYTES
        return payload


# -- the handshake (plain msgpack lists inside frames; see docs/format.md (wire)#handshake) ----------

ROLES = ("peer", "client")


def hello(role: str, endpoint: str, cluster_name: str) -> bytes:
    assert role in ROLES, role
    return packb(["hello", role, endpoint, cluster_name, PROTOCOL_VERSION])


def challenge(nonce: bytes) -> bytes:
    return packb(["challenge", nonce])


def auth(mac: bytes) -> bytes:
    return packb(["auth", mac])


def ready(endpoint: str) -> bytes:
    return packb(["ready", endpoint])


def refuse(exc: BaseException) -> bytes:
    return packb(["error", error_to_wire(exc)])


def new_nonce() -> bytes:
    return os.urandom(NONCE_BYTES)


def answer_challenge(secret: str, nonce: bytes) -> bytes:
    return hmac.new(secret.encode(), nonce, hashlib.sha256).digest()


def check_answer(secret: str, nonce: bytes, mac: object) -> bool:
    return isinstance(mac, bytes) and hmac.compare_digest(answer_challenge(secret, nonce), mac)


def decode_handshake(payload: bytes, expected: tuple[str, ...]) -> list:
    """A handshake list whose first element is one of `expected` (or "error", which is raised)."""
    try:
        msg = unpackb(payload)
    except Exception as e:  # noqa: BLE001 - anything undecodable is the peer's protocol error
        raise ProtocolError(f"handshake frame does not decode: {e}") from None
    if not isinstance(msg, list) or not msg or not isinstance(msg[0], str):
        raise ProtocolError("handshake frame is not a [kind, ...] list")
    if msg[0] == "error" and len(msg) == 2 and isinstance(msg[1], dict):
        raise error_from_wire(msg[1])
    shapes = {"hello": (str, str, str, int), "challenge": (bytes,), "auth": (bytes,), "ready": (str,)}
    if msg[0] not in expected or msg[0] not in shapes:
        raise ProtocolError(f"expected a handshake {' or '.join(expected)} frame, got {msg[0]!r}")
    types = shapes[msg[0]]
    if len(msg) - 1 != len(types) or not all(isinstance(v, t) for v, t in zip(msg[1:], types)):
        raise ProtocolError(f"malformed handshake {msg[0]} frame")
    if msg[0] == "hello":
        if msg[1] not in ROLES:
            raise ProtocolError(f"unknown role {msg[1]!r} in hello (expected peer or client)")
        if msg[4] != PROTOCOL_VERSION:
            raise ProtocolError(f"protocol version {msg[4]} is not supported (this node speaks {PROTOCOL_VERSION})")
    return msg


class ConnectorHandshake:
    """The connecting side of the handshake (a client, or a node's outbound peer link).

    Send `start()`; feed each payload received to `receive()`, sending what it returns, until
    `done`. Raises the server's refusal (e.g. AuthenticationError) or ProtocolError."""

    def __init__(self, role: str, endpoint: str, cluster_name: str, secret: str = ""):
        self.role, self.endpoint, self.cluster_name, self.secret = role, endpoint, cluster_name, secret
        self.server_endpoint: str | None = None

    @property
    def done(self) -> bool:
        return self.server_endpoint is not None

    def start(self) -> bytes:
        return encode_frame(hello(self.role, self.endpoint, self.cluster_name))

    def receive(self, payload: bytes) -> bytes | None:
        assert not self.done
        msg = decode_handshake(payload, ("challenge", "ready"))
        if msg[0] == "challenge":
            return encode_frame(auth(answer_challenge(self.secret, msg[1]) if self.secret else b""))
        self.server_endpoint = msg[1]
        return None


class ServerHandshake:
    """The accepting side: feed each payload to `receive()` and send what it returns. When
    `done`, `role` and `remote_endpoint` say who connected. A refusal raises (send
    `refuse(exc)` framed, then close): ConfigurationError for another cluster, ProtocolError,
    AuthenticationError."""

    def __init__(self, endpoint: str, cluster_name: str, secret: str = ""):
        self.endpoint, self.cluster_name, self.secret = endpoint, cluster_name, secret
        self.role: str | None = None
        self.remote_endpoint = ""
        self.done = False
        self._nonce: bytes | None = None

    def receive(self, payload: bytes) -> bytes:
        assert not self.done
        if self.role is None:
            _, role, endpoint, cluster_name, _version = decode_handshake(payload, ("hello",))
            if cluster_name != self.cluster_name:
                raise ring_errors.ConfigurationError(
                    f"cluster name mismatch: {endpoint or 'the client'} is in cluster {cluster_name!r}, "
                    f"this node ({self.endpoint}) is in {self.cluster_name!r}")
            self.role, self.remote_endpoint = role, endpoint
            if self.secret:
                self._nonce = new_nonce()
                return encode_frame(challenge(self._nonce))
        else:
            _, mac = decode_handshake(payload, ("auth",))
            if not check_answer(self.secret, self._nonce, mac):
                raise AuthenticationError()
        self.done = True
        return encode_frame(ready(self.endpoint))


# -- errors on the wire ---------------------------------------------------------------------------
# (AuthenticationError and ServerError belong in ring/errors.py; they live here until moved.)

class AuthenticationError(RequestError):
    """The connecting side did not prove it knows the cluster's shared secret."""

    retryable: ClassVar[bool] = False

    def __init__(self, what: str = "authentication failed: wrong or missing cluster_secret"):
        self.what = what
        super().__init__(what)


class ServerError(RequestError):
    """The node failed unexpectedly (a bug); the request's fate is unknown. See the node's log."""

    retryable: ClassVar[bool] = False


def _error_classes() -> dict[str, type]:
    out: dict[str, type] = {}
    for module in (engine_errors, ring_errors):
        for name in dir(module):
            obj = getattr(module, name)
            if isinstance(obj, type) and issubclass(obj, Exception):
                out[obj.__name__] = obj
    out.update({"AuthenticationError": AuthenticationError, "ServerError": ServerError})
    return out


ERROR_CLASSES = _error_classes()
_SCALARS = (str, int, float, bool, type(None))


def error_to_wire(exc: BaseException) -> dict:
    """{"type": class name, "message": str(exc), ...the instance's scalar attributes}.

    A consistency level travels as its name. An exception outside the two error trees is a
    ServerError whose message names the original type.
    """
    if type(exc).__name__ not in ERROR_CLASSES or ERROR_CLASSES[type(exc).__name__] is not type(exc):
        return {"type": "ServerError", "message": f"{type(exc).__name__}: {exc}"}
    out: dict = {"type": type(exc).__name__, "message": str(exc)}
    for key, value in vars(exc).items():
        if key.startswith("_") or key in out:
            continue
        if hasattr(value, "name") and hasattr(value, "value") and not isinstance(value, _SCALARS):
            value = value.name  # an enum, e.g. ConsistencyLevel
        if isinstance(value, _SCALARS):
            out[key] = value
    return out


def error_from_wire(d: dict) -> Exception:
    """Rebuild the exception `error_to_wire` described: same class, same message, same fields.
    An unknown type becomes a RequestError whose message names it."""
    cls = ERROR_CLASSES.get(d.get("type"))  # type: ignore[arg-type]
    message = str(d.get("message", ""))
    if cls is None:
        return RequestError(f"{d.get('type')}: {message}")
    exc = cls.__new__(cls)
    Exception.__init__(exc, message)  # the message as the node wrote it; no constructor re-run
    for key, value in d.items():
        if key in ("type", "message"):
            continue
        if key == "level" and isinstance(value, str):
            value = _level(value)
        setattr(exc, key, value)
    return exc


def _level(name: str):
    from ring.consistency import ConsistencyLevel
    try:
        return ConsistencyLevel[name]
    except KeyError:
        return name
