"""The node's own-protocol port (`port`): inbound peer and client connections of the asyncio runtime.

Every connection starts with the hello (optionally followed by the HMAC challenge; docs/format.md
(wire)), which fixes its role. A peer connection then carries internode messages, handed to the
node with `NodeProcess.step`; a client connection carries `ClientRequest`s, handed to the node
with `NodeProcess.submit`, and each reply goes back as a `ClientResponse` with the client's own
request id. Replies to one connection are coalesced into one write per loop iteration.

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
from ring.runtime.peers import HANDSHAKE_TIMEOUT_S, READ_CHUNK_BYTES, REFUSALS, read_payload

log = logging.getLogger("dynatable.runtime")
LINGER_S = 2.0      # how long a refused client's remaining bytes are read and discarded


def wire_result(result):
    """A node result as msgpack-able data (a ScanPage becomes {"rows", "paging_state"})."""
    if hasattr(result, "rows") and hasattr(result, "paging_state"):
        return {"rows": result.rows, "paging_state": result.paging_state}
    if hasattr(result, "to_dict"):
        return result.to_dict()
    return result


class ClientConnection:
    """An inbound connection; frames are coalesced into one write per loop iteration."""

    def __init__(self, writer: asyncio.StreamWriter):
        self.writer = writer
        self.peername = writer.get_extra_info("peername")
        self.role: str | None = None
        self.remote_endpoint = ""
        self.closed = False
        self._outbox: list[bytes] = []

    def write(self, frame: bytes) -> None:
        if self.closed:
            return
        if not self._outbox:
            asyncio.get_running_loop().call_soon(self.flush)
        self._outbox.append(frame)

    def flush(self) -> None:
        if self._outbox and not self.closed:
            self.writer.write(b"".join(self._outbox))
        self._outbox.clear()

    def close(self) -> None:
        self.flush()
        self.closed = True
        self.writer.close()


async def linger(conn: ClientConnection, reader: asyncio.StreamReader) -> None:
    """Send what is queued, half-close, and discard input until EOF or LINGER_S: closing with
    unread input would reset the connection and the peer could lose the error just sent."""
    try:
        conn.flush()
        if conn.writer.can_write_eof():
            conn.writer.write_eof()
        async with asyncio.timeout(LINGER_S):
            while await reader.read(READ_CHUNK_BYTES):
                pass
    except (OSError, TimeoutError):
        pass


class Listener:
    """Serves the own-protocol port of one NodeProcess (its settings, stats, step and submit)."""

    def __init__(self, process):
        self.process = process
        self.connections: set[ClientConnection] = set()
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        s = self.process.settings
        self._server = await asyncio.start_server(self._serve, s.listen_address, s.port, reuse_address=True)

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

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = ClientConnection(writer)
        self.connections.add(conn)
        decoder = FrameDecoder(self.process.settings.max_frame_bytes)
        try:
            if not await self._accept(conn, reader, decoder):
                return
            while True:
                data = await reader.read(READ_CHUNK_BYTES)
                if not data:
                    return
                decoder.feed(data)
                while (payload := decoder.next_payload()) is not None:
                    msg = self._decode(conn, payload)
                    if msg is not None:
                        self._on_message(conn, msg)
                await writer.drain()
        except (ProtocolError, InvalidRequest) as e:
            self._on_bad_input(conn, e)
            if conn.role == "client":
                await linger(conn, reader)
        except (OSError, asyncio.IncompleteReadError):
            pass
        except Exception:
            log.exception("connection from %s failed", conn.peername)
        finally:
            self.connections.discard(conn)
            conn.close()

    async def _accept(self, conn: ClientConnection, reader, decoder: FrameDecoder) -> bool:
        s, stats = self.process.settings, self.process.stats
        handshake = ServerHandshake(self.process.endpoint, s.cluster_name, s.cluster_secret)
        try:
            async with asyncio.timeout(HANDSHAKE_TIMEOUT_S):
                while not handshake.done:
                    conn.writer.write(handshake.receive(await read_payload(reader, decoder)))
        except TimeoutError:
            log.warning("handshake from %s timed out; closing", conn.peername)
            return False
        except REFUSALS as e:
            stats["connections_refused"] += 1
            log.warning("refused connection from %s: %s", conn.peername, e)
            conn.writer.write(encode_frame(refuse(e)))
            return False
        conn.role, conn.remote_endpoint = handshake.role, handshake.remote_endpoint
        return True

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

    def _on_message(self, conn: ClientConnection, msg) -> None:
        process = self.process
        process.stats["messages_received"] += 1
        if conn.role == "client":
            if not isinstance(msg, ClientRequest):
                raise ProtocolError(f"a client sent {type(msg).__name__}; clients send ClientRequest only")
            if msg.op == "nemesis_drop":
                self._set_drop_rules(conn, msg)
                return
            process.submit(msg.op, msg.args, functools.partial(self._respond, conn, msg.id))
        else:
            if isinstance(msg, (ClientRequest, ClientResponse)):
                raise ProtocolError(f"peer {conn.remote_endpoint} sent a {type(msg).__name__} on a peer connection")
            if conn.remote_endpoint in process.peers.dropped:
                process.stats["nemesis_dropped"] += 1
                return
            process.step(conn.remote_endpoint, msg)

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
