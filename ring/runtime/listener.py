"""The node's own-protocol port (`port`): inbound peer and client connections of the asyncio runtime.

Every connection starts with the hello (optionally followed by the HMAC challenge; docs/format.md
(wire)), which fixes its role. A peer connection then carries internode messages, handed to the
node with `NodeProcess.step`; a client connection carries `ClientRequest`s, handed to the node
with `NodeProcess.submit`, and each reply goes back as a `ClientResponse` with the client's own
request id. Replies to one connection are coalesced into one write per loop iteration.

Each connection is an asyncio.Protocol (`ClientConnection`): the loop calls `data_received` with
what the socket had, the frames in it are split and dispatched in that call (no reader task or
StreamReader per connection). Counters: `peer_reads` (data_received calls on peer connections)
and `peer_frames_received` (their frames): frames per inbound read; `client_reads` (data_received
calls on client connections, the one completing the hello included) and `client_writes` (their
transport writes).

Bad input: a bad frame closes only its connection. A client first gets the error (id 0), then the
node half-closes and discards what the client still sends for up to LINGER_S (a lingering close,
as HTTP servers do), so the error is not lost to a TCP reset while, say, the rest of a frame over
`max_frame_bytes` is still in flight. A well-framed
message from a peer that does not decode is counted (`malformed_messages`), logged and skipped,
since the frame was whole and checksummed and the connection stays in step.
"""
from __future__ import annotations

import asyncio
import functools
import logging

from engine.errors import InvalidRequest
from ring.errors import ProtocolError
from ring.messages import ClientRequest, ClientResponse, decode, encode
from ring.runtime.frames import FrameDecoder, ServerError, ServerHandshake, encode_frame, error_to_wire, refuse
from ring.runtime.peers import HANDSHAKE_TIMEOUT_S, REFUSALS

log = logging.getLogger("dynatable.runtime")
LINGER_S = 2.0      # how long a refused client's remaining bytes are read and discarded


def wire_result(result):
    """A node result as msgpack-able data (a ScanPage becomes {"rows", "paging_state"})."""
    if type(result) is dict or result is None:
        return result               # the common case: no attribute probing
    if hasattr(result, "rows") and hasattr(result, "paging_state"):
        return {"rows": result.rows, "paging_state": result.paging_state}
    if hasattr(result, "to_dict"):
        return result.to_dict()
    return result


class ClientConnection(asyncio.Protocol):
    """One inbound connection as an asyncio.Protocol: `data_received` feeds the frame decoder and
    dispatches every whole frame at once (no reader task, no StreamReader). Frames written during
    one loop iteration leave in one transport write. While the transport's write buffer is over
    its high-water mark (`pause_writing`), the connection stops reading, so a client that does not
    read its responses cannot make the node buffer without bound."""

    def __init__(self, listener: Listener):
        self.listener = listener
        process = listener.process
        s = process.settings
        self.process = process
        self.stats = process.stats
        self.transport: asyncio.Transport | None = None
        self.peername = None
        self.role: str | None = None
        self.remote_endpoint = ""
        self.closed = False
        self.lingering = False
        self._outbox: list[bytes] = []
        self._decoder = FrameDecoder(s.max_frame_bytes)
        self._handshake: ServerHandshake | None = ServerHandshake(process.endpoint, s.cluster_name,
                                                                  s.cluster_secret)
        self._timer: asyncio.TimerHandle | None = None
        self._dispatch = None           # set by the handshake: the role's per-message handler
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- asyncio.Protocol ------------------------------------------------------------------------

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.peername = transport.get_extra_info("peername")
        self.listener.connections.add(self)
        # the loop, once: asyncio.get_running_loop() costs a getpid() system call on Python 3.11
        self._loop = loop = asyncio.get_running_loop()
        self._timer = loop.call_later(HANDSHAKE_TIMEOUT_S, self._handshake_timed_out)

    def data_received(self, data: bytes) -> None:
        if self.lingering or self.closed:
            return                      # a refused client's remaining bytes are discarded
        if self.role == "peer":
            self.stats["peer_reads"] += 1
        elif self.role == "client":
            self.stats["client_reads"] += 1     # socket reads of client connections (cql_socket_reads' twin)
        decoder = self._decoder
        try:
            decoder.feed(data)
            if self._handshake is not None:
                if not self._handshake_step():
                    return
                if self.role == "client":
                    self.stats["client_reads"] += 1     # the read that completed the hello counts too
            dispatch = self._dispatch
            while (payload := decoder.next_payload()) is not None:
                dispatch(payload)
                if self.closed or self.lingering:
                    return
        except (ProtocolError, InvalidRequest) as e:
            self.listener._on_bad_input(self, e)
            if self.role == "client":
                self._linger()
            else:
                self.close()
        except Exception:
            log.exception("connection from %s failed", self.peername)
            self.close()

    def eof_received(self):
        return None                     # the transport closes itself

    def connection_lost(self, exc) -> None:
        self.closed = True
        self._outbox.clear()
        if self._timer is not None:
            self._timer.cancel()
        self.listener.connections.discard(self)

    def pause_writing(self) -> None:
        if self.transport is not None and not self.lingering:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.transport is not None and not self.closed and not self.lingering:
            self.transport.resume_reading()

    # -- the handshake ---------------------------------------------------------------------------

    def _handshake_step(self) -> bool:
        """Feed handshake frames; True once done (the role is known), False while waiting or refused."""
        handshake = self._handshake
        try:
            while not handshake.done:
                payload = self._decoder.next_payload()
                if payload is None:
                    return False
                self.transport.write(handshake.receive(payload))
        except REFUSALS as e:
            self.stats["connections_refused"] += 1
            log.warning("refused connection from %s: %s", self.peername, e)
            self.transport.write(encode_frame(refuse(e)))
            self.close()
            return False
        self._handshake = None
        self._timer.cancel()
        self._timer = None
        self.role, self.remote_endpoint = handshake.role, handshake.remote_endpoint
        if self.role == "client":
            self._dispatch = self._on_client_payload
        else:
            self._dispatch = self._on_peer_payload
        return True

    def _handshake_timed_out(self) -> None:
        self._timer = None
        if self._handshake is not None and not self.closed:
            log.warning("handshake from %s timed out; closing", self.peername)
            self.close()

    # -- messages --------------------------------------------------------------------------------

    def _on_peer_payload(self, payload: bytes) -> None:
        msg = self.listener._decode(self, payload)
        if msg is None:
            return
        process = self.process
        stats = self.stats
        stats["messages_received"] += 1
        stats["peer_frames_received"] += 1
        if isinstance(msg, (ClientRequest, ClientResponse)):
            raise ProtocolError(f"peer {self.remote_endpoint} sent a {type(msg).__name__} on a peer connection")
        src = self.remote_endpoint
        if src in process.peers.dropped:
            self.stats["nemesis_dropped"] += 1
            return
        process.step(src, msg)

    def _on_client_payload(self, payload: bytes) -> None:
        msg = decode(payload)
        self.stats["messages_received"] += 1
        if not isinstance(msg, ClientRequest):
            raise ProtocolError(f"a client sent {type(msg).__name__}; clients send ClientRequest only")
        if msg.op == "nemesis_drop":
            self.listener._set_drop_rules(self, msg)
            return
        self.process.submit(msg.op, msg.args, functools.partial(self.listener._respond, self, msg.id))

    # -- writing and closing ---------------------------------------------------------------------

    def write(self, frame: bytes) -> None:
        if self.closed:
            return
        if not self._outbox:
            self._loop.call_soon(self.flush)
        self._outbox.append(frame)

    def flush(self) -> None:
        if self._outbox and not self.closed:
            if self.role == "client":
                self.stats["client_writes"] += 1
            outbox = self._outbox
            self.transport.write(outbox[0] if len(outbox) == 1 else b"".join(outbox))
        self._outbox.clear()

    def close(self) -> None:
        if self.closed:
            return
        self.flush()
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.transport is not None:
            self.transport.close()

    def _linger(self) -> None:
        """Send what is queued, half-close, and discard input until EOF or LINGER_S: closing with
        unread input would reset the connection and the client could lose the error just sent."""
        self.flush()
        self.lingering = True
        transport = self.transport
        transport.resume_reading()
        if transport.can_write_eof():
            transport.write_eof()
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self._loop.call_later(LINGER_S, self.close)


class Listener:
    """Serves the own-protocol port of one NodeProcess (its settings, stats, step and submit)."""

    def __init__(self, process):
        self.process = process
        self.connections: set[ClientConnection] = set()
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        s = self.process.settings
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: ClientConnection(self), s.listen_address, s.port,
                                                reuse_address=True)

    def stop_accepting(self) -> None:
        if self._server is not None:
            self._server.close()

    def close(self) -> None:
        self.stop_accepting()
        for conn in list(self.connections):
            conn.close()

    def metrics(self) -> dict[str, int]:
        return {"client_connections": sum(1 for c in self.connections if c.role == "client"),
                "peer_connections_in": sum(1 for c in self.connections if c.role == "peer")}

    def _decode(self, conn: ClientConnection, payload: bytes):
        """The frame's message; a malformed one from a peer is counted, logged and skipped; from a
        client, the error goes back to it and its connection is closed."""
        try:
            return decode(payload)
        except InvalidRequest as e:
            if conn.role != "peer":
                raise
            self.process.stats["malformed_messages"] += 1
            log.warning("rejected a message from peer %s: %s", conn.remote_endpoint, e)
            return None

    @staticmethod
    def _respond(conn: ClientConnection, client_id: int, result, error) -> None:
        if conn.closed:
            return
        try:
            payload = encode(ClientResponse(client_id, wire_result(result) if error is None else None,
                                            error_to_wire(error) if error is not None else None))
        except (TypeError, ValueError, OverflowError) as e:
            log.error("result of client request %d does not encode: %s", client_id, e)
            payload = encode(ClientResponse(client_id, None, error_to_wire(ServerError(f"result does not encode: {e}"))))
        conn.write(encode_frame(payload))

    def _set_drop_rules(self, conn: ClientConnection, req: ClientRequest) -> None:
        """Fault injection for the real-process nemesis: drop every message to and from these
        peers (a partition without root privileges). `peers=[]` heals."""
        peers = req.args.get("peers") if isinstance(req.args, dict) else None
        dropped = self.process.peers.dropped
        dropped.clear()
        dropped.update(peers or [])
        log.warning("nemesis: dropping messages to and from %s", sorted(dropped) or "nobody")
        conn.write(encode_frame(encode(ClientResponse(req.id, {"dropped": sorted(dropped)}, None))))

    def _on_bad_input(self, conn: ClientConnection, exc: Exception) -> None:
        self.process.stats["protocol_errors"] += 1
        log.warning("closing connection from %s (%s %s): %s", conn.peername, conn.role or "before hello",
                    conn.remote_endpoint, exc)
        if conn.role == "client":
            conn.write(encode_frame(encode(ClientResponse(0, None, error_to_wire(exc)))))
        elif conn.role is None:
            conn.write(encode_frame(refuse(exc)))
