"""One native-protocol connection, sans-IO (h11's shape): bytes in, request events out; responses
in, bytes out. It never touches a socket, a clock or randomness.

    conn = Connection()
    for event in conn.receive_data(data):      # Options, Startup, Query, ... or Rejected
        ...                                    # decide, then
        sock.write(conn.send(response, event.stream))

Contract and invariants:
* The first frame fixes the version for the connection. A version outside `versions` is
  answered (Rejected, close=True) with a PROTOCOL_ERROR whose text contains "unsupported protocol
  version" (drivers step down only on that text), framed in the client's version when it is an
  older one we know the layout of, else in our highest; a later frame of another version is fatal.
* Phases: UNINITIALIZED (only OPTIONS and STARTUP) -> STARTING (after a STARTUP event, input is
  paused until the reply is sent) -> READY, or AUTHENTICATING (only AUTH_RESPONSE and OPTIONS)
  -> READY. Compression chosen in STARTUP starts with the READY / AUTHENTICATE reply. In v5 both
  directions switch to segments right after that reply. After sending it, call
  `receive_data(b"")` to collect requests that arrived meanwhile.
* A malformed body or a state violation yields Rejected(close=False): the frame boundary is
  intact and the connection serves on. Unframeable input (a response frame, a negative length, a
  segment checksum mismatch, a version change) yields Rejected(close=True) and the connection
  ignores all later input. A frame over `max_frame_bytes` is rejected and its body skipped.
* Responses carry the request's stream id, so they may be sent in any order; EVENTs use -1.
  `send` returns whole frames (or segments), never part of one.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass

from ring.cql.frame import (
    _HEADER, FLAG_COMPRESSION, FLAG_CUSTOM_PAYLOAD, FLAG_TRACING, FLAG_WARNING, RESPONSE_BIT, FrameDecoder,
    Opcode, OversizedFrame, compress_body, decode_header, decompress_body, encode_frame,
)
from ring.cql.execute_frames import next_execute
from ring.cql.notation import ProtocolException, Reader, encode_string_list
from ring.cql.requests import AuthResponse, Options, Register, Request, Startup, decode_request
from ring.cql.responses import Authenticate, AuthSuccess, Error, ErrorCode, Ready, Response, Supported
from ring.cql.segment import SegmentDecoder, encode_frames, encode_segments

FRAME_BYTES_MAX_DEFAULT = 16 * 1024 * 1024   # Cassandra's native_transport_max_frame_size
CQL_VERSION = "3.4.5"
_KNOWN_OLD_VERSIONS = (1, 2, 3, 4)           # answered in their own framing when unsupported


_RESULT_HEADER = _HEADER.pack
_RESULT = int(Opcode.RESULT)


class Phase(enum.Enum):
    UNINITIALIZED = "uninitialized"
    STARTING = "starting"
    AUTHENTICATING = "authenticating"
    READY = "ready"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class Rejected:
    """Input the connection refused: send `error` on `stream`, then close if `close`."""

    stream: int
    error: Error
    close: bool


def _protocol_error(message: str) -> Error:
    return Error(ErrorCode.PROTOCOL_ERROR, message)


class Connection:
    def __init__(self, *, versions: tuple[int, ...] = (4, 5), max_frame_bytes: int = FRAME_BYTES_MAX_DEFAULT,
                 cql_versions: tuple[str, ...] = (CQL_VERSION,), compressions: tuple[str, ...] = ("lz4",)):
        assert versions and set(versions) <= {4, 5}, versions
        self.versions = tuple(sorted(versions))
        self.max_frame_bytes = max_frame_bytes
        self.cql_versions = cql_versions
        self.compressions = compressions
        self.version: int | None = None
        self.phase = Phase.UNINITIALIZED
        self.compression: str | None = None
        self.registered: frozenset[str] = frozenset()
        self.lz4_bodies = False                    # v4 with lz4: frame bodies compressed (v5: segments are)
        self._inbox = bytearray()                  # received bytes not yet cut into frames
        self._frames = FrameDecoder(max_frame_bytes)
        self._segments: SegmentDecoder | None = None
        self._startup: Startup | None = None
        self._reply_version = self.versions[-1]
        self.execute_fields = False                # flagless EXECUTEs as (fields, stream) tuples, execute_frames.py

    @property
    def closed(self) -> bool:
        return self.phase is Phase.CLOSED

    @property
    def uses_segments(self) -> bool:
        return self._segments is not None

    def supported(self) -> Supported:
        """The SUPPORTED answer to OPTIONS (the keys cassandra-driver requires are always present)."""
        return Supported({
            "CQL_VERSION": list(self.cql_versions),
            "COMPRESSION": list(self.compressions),
            "PROTOCOL_VERSIONS": [f"{v}/v{v}" for v in self.versions],
        })

    # -- input --------------------------------------------------------------------------------

    def receive_data(self, data: bytes) -> list[Request | Rejected | tuple]:
        """Every whole request in the bytes received so far, in arrival order; [] means "need more
        data". With `execute_fields` set, an EXECUTE frame without flags comes as the plain tuple
        (fields, stream) of execute_frames.next_execute (execute_frames.execute_event: its Execute)."""
        if self.phase is Phase.CLOSED:
            return []
        if self.phase is Phase.READY and self._segments is None and not self._inbox:
            self._frames.feed(data)                 # v4 READY: straight into the frame buffer
        else:
            self._inbox += data
        events: list[Request | Rejected | tuple] = []
        while self.phase not in (Phase.STARTING, Phase.CLOSED):
            try:
                if self.phase is Phase.READY and not self._frames.skipping:
                    self._pump()
                    if self._executes(events):      # the common EXECUTEs in one pass (execute_frames.py)
                        if not self._frames.buffer and not self._inbox:
                            break                   # the read held EXECUTEs only: nothing left to cut
                        continue
                event = self._next_event()
            except ProtocolException as e:
                assert e.fatal, e
                event = self._fatal(self._peek_stream(), e.message)
            if event is None:
                break
            events.append(event)
        if self._segments is not None and self._segments.failure is not None and self.phase is not Phase.CLOSED:
            events.append(self._fatal(self._peek_stream(), self._segments.failure.message))
        return events

    def _executes(self, events: list) -> bool:
        """The run of EXECUTE frames at the start of the frame buffer into `events`, consumed at once."""
        buf, version, limit, fields, pos = self._frames.buffer, self.version, self.max_frame_bytes, self.execute_fields, 0
        lz4, size = self.lz4_bodies, len(buf)
        while size - pos >= 9 and (found := next_execute(buf, version, limit, fields, pos, lz4)) is not None:
            events.append(found[0])
            pos = found[1]
        if not pos:
            return False
        del buf[:pos]
        return True

    def _pump(self) -> None:
        if not self._inbox:
            return
        if self._segments is None:
            self._frames.feed(self._inbox)          # copied into the frame buffer, then cleared
            self._inbox.clear()
            return
        segments = self._segments.feed(self._inbox)
        self._inbox.clear()
        if segments:
            self._frames.feed(segments[0].payload if len(segments) == 1 else
                              b"".join([segment.payload for segment in segments]))

    def _peek_stream(self) -> int:
        header = decode_header(self._frames.buffer)
        return header.stream if header is not None else 0

    def _fatal(self, stream: int, message: str) -> Rejected:
        self.phase = Phase.CLOSED
        return Rejected(stream, _protocol_error(message), close=True)

    def _next_event(self) -> Request | Rejected | None:
        self._pump()
        buf, header = self._frames.buffer, None
        if buf and not self._frames.skipping and (self.version is None or buf[0] & 0x7F != self.version):
            header = decode_header(buf)      # only the first frame's and a changed version's
        if header is not None and not header.is_response:
            if self.version is None and header.version not in self.versions:
                self._reply_version = header.version if header.version in _KNOWN_OLD_VERSIONS else self.versions[-1]
                supported = ", ".join(f"{v}/v{v}" for v in self.versions)
                return self._fatal(header.stream, f"Invalid or unsupported protocol version ({header.version}); "
                                                  f"supported versions are ({supported})")
            if self.version is None:
                self.version = self._reply_version = header.version
            elif header.version != self.version:
                return self._fatal(header.stream, f"Invalid message version. Got {header.version} but previous "
                                                  f"messages on this connection had version {self.version}")
        item = self._frames.next()
        if item is None:
            return None
        if isinstance(item, OversizedFrame):
            return Rejected(item.header.stream, _protocol_error(
                f"Request is too big: length {item.header.length} exceeds maximum allowed length "
                f"{item.limit}"), close=False)
        try:
            return self._admit(self._decode(item.header, item.body))
        except ProtocolException as e:
            assert not e.fatal, e
            return Rejected(item.header.stream, _protocol_error(e.message), close=False)

    def _decode(self, header, body: bytes) -> Request:
        if header.flags & FLAG_COMPRESSION:
            if self._segments is not None:
                raise ProtocolException("frame sets the compression flag inside v5 segments")
            if self.compression is None:
                raise ProtocolException("Received frame with compression flag set, but no compressor configured")
            body = decompress_body(body, self.max_frame_bytes)
        custom = None
        if header.flags & FLAG_CUSTOM_PAYLOAD:
            reader = Reader(body)
            custom = reader.bytes_map()
            body = body[reader.pos:]
        return decode_request(header.opcode, body, self.version, stream=header.stream,
                              tracing=bool(header.flags & FLAG_TRACING), custom_payload=custom)

    def _admit(self, request: Request) -> Request | Rejected:
        """The phase rules: which request may come when."""
        if isinstance(request, Options):
            return request
        name = request.opcode.name
        if self.phase is Phase.UNINITIALIZED:
            if not isinstance(request, Startup):
                raise ProtocolException(f"Unexpected message {name}, expecting STARTUP or OPTIONS")
            self._check_startup(request)
            self._startup = request
            self.phase = Phase.STARTING
            return request
        if self.phase is Phase.AUTHENTICATING:
            if not isinstance(request, AuthResponse):
                raise ProtocolException(f"Unexpected message {name}, expecting AUTH_RESPONSE")
            return request
        if isinstance(request, (Startup, AuthResponse)):
            raise ProtocolException(f"Unexpected message {name}, the connection is already initialized")
        if isinstance(request, Register):
            self.registered |= frozenset(request.event_types)
        return request

    def _check_startup(self, startup: Startup) -> None:
        cql_version = startup.options.get("CQL_VERSION")
        if cql_version is None:
            raise ProtocolException("Missing value CQL_VERSION in STARTUP message")
        if not cql_version.startswith("3."):
            raise ProtocolException(f"Unsupported CQL version {cql_version!r}; supported: "
                                    f"{', '.join(self.cql_versions)}")
        compression = startup.options.get("COMPRESSION")
        if compression is not None and compression.lower() not in self.compressions:
            raise ProtocolException(f"Unknown compression algorithm: {compression}; supported: "
                                    f"{', '.join(self.compressions) or 'none'}")

    # -- output -------------------------------------------------------------------------------

    def send(self, response: Response, stream: int, *, tracing_id: bytes | None = None,
             warnings: list[str] | None = None, sealed: bool = True) -> bytes:
        """The bytes of `response` on `stream` (framed, compressed and segmented as negotiated).
        `sealed=False` on a READY connection: the frame without its v5 segment, for `seal`."""
        version = self._reply_version if self.version is None else self.version
        flags, prefix = 0, b""
        if tracing_id is not None:
            assert len(tracing_id) == 16
            flags, prefix = flags | FLAG_TRACING, prefix + tracing_id
        if warnings:
            flags, prefix = flags | FLAG_WARNING, prefix + encode_string_list(warnings)
        body = prefix + response.encode_body(version)
        if self.lz4_bodies and body:
            flags, body = flags | FLAG_COMPRESSION, compress_body(body)
        frame = encode_frame(version, flags, stream, response.opcode, body)
        if self._segments is not None and sealed:
            frame = encode_segments(frame, compressed=self.compression is not None)
        self._after_send(response, stream)
        return frame

    def result_frame(self, body: bytes, stream: int) -> bytes:
        """The RESULT frame of `body` on `stream` on a READY connection (the point lane's answers:
        no tracing, no warnings), not yet in v5 segments (`seal`): one header pack; v4 with lz4
        compresses the body, as `send` does."""
        flags = 0
        if self.lz4_bodies and body:
            flags, body = FLAG_COMPRESSION, compress_body(body)
        return _RESULT_HEADER(RESPONSE_BIT | self.version, flags, stream, _RESULT, len(body)) + body

    def seal(self, frames: list[bytes]) -> bytes:
        """Frames made with `sealed=False` / `result_frame`, ready to write: in v5, as few segments
        as hold them (segment.encode_frames: one for a usual flush); in v4 the frames themselves."""
        if self._segments is None:
            return b"".join(frames)
        return encode_frames(frames, self.compression is not None)

    def _after_send(self, response: Response, stream: int) -> None:
        if self.phase is Phase.STARTING and stream == self._startup.stream:
            if isinstance(response, (Ready, Authenticate)):
                compression = self._startup.options.get("COMPRESSION")
                self.compression = compression.lower() if compression else None
                self.lz4_bodies = self.compression is not None and self.version < 5
                self.phase = Phase.READY if isinstance(response, Ready) else Phase.AUTHENTICATING
                if self.version >= 5:
                    self._begin_segments()
            elif isinstance(response, Error):
                self.phase = Phase.UNINITIALIZED
        elif self.phase is Phase.AUTHENTICATING and isinstance(response, AuthSuccess):
            self.phase = Phase.READY

    def _begin_segments(self) -> None:
        """From here on both directions are segments; bytes already cut as frames are moved back."""
        self._segments = SegmentDecoder(compressed=self.compression is not None)
        self._inbox[:0] = self._frames.buffer
        self._frames.buffer.clear()
