"""The CQL port of a node process (`native_transport_port`, default 9042, bound to listen_address).

A thin asyncio driver around the sans-IO server (ring/cql/server.py), in the node's own loop: one
`CqlProtocol` (an asyncio.Protocol, no streams) per client connection feeds the bytes it receives
into a `ServerConnection` (which buffers them and cuts frames with the frame decoder), writes what
comes out, hands each node request a statement
makes to `NodeProcess.submit` (the same entry point as the own protocol's requests) and feeds the
reply back, and pushes EVENTs to the connections that registered for them: SCHEMA_CHANGE from
DDL results and from a schema learnt through gossip (its version compared on every tick), TOPOLOGY_CHANGE and STATUS_CHANGE from the gossip view, compared on every tick.

With PasswordAuthenticator it creates system_auth locally at start (roles.ensure_schema) and,
`superuser_setup_delay_ms` later, runs roles.setup_default_superuser through the node (retried
until it succeeds).

Writes are coalesced: what a connection's statements answer during one loop iteration goes out in
one `transport.write` (one send() instead of one per response); on a v5 connection the point
lane's answers of that iteration share one segment (ServerConnection.point_frame, Connection.seal). Backpressure: when a connection's
transport buffer passes WRITE_BUFFER_HIGH_BYTES (the client does not read its answers), reading
from it pauses until the buffer drains below WRITE_BUFFER_LOW_BYTES. A client that half-closes
still gets what is already answered. A connection's failure closes only that connection; an
exception that escaped an execution is logged and counted (`cql_server_errors`), and the node
keeps serving.
"""
from __future__ import annotations

import asyncio
import functools
import logging

from ring.cql import auth, roles
from ring.cql.execute import CqlSession, Execution
from ring.cql.server import NativeServer, Output, ServerConnection
from ring.messages import Reply

log = logging.getLogger("dynatable.cql")

WRITE_BUFFER_HIGH_BYTES = 1024 * 1024
WRITE_BUFFER_LOW_BYTES = 256 * 1024
SUPERUSER_SETUP_RETRY_S = 2


class CqlProtocol(asyncio.Protocol):
    """One client connection: bytes in -> its ServerConnection; answers out, one write per loop
    iteration (NativeTransport._flush)."""

    def __init__(self, owner: "NativeTransport"):
        self.owner = owner
        self.transport: asyncio.Transport | None = None
        self.conn: ServerConnection | None = None
        self.outbox: list[bytes] = []            # written at the end of this loop iteration
        self.frames: list[bytes] = []            # point-lane answers, sealed together at the flush
        self.closed = False

    def connection_made(self, transport) -> None:
        self.transport = transport
        transport.set_write_buffer_limits(high=WRITE_BUFFER_HIGH_BYTES, low=WRITE_BUFFER_LOW_BYTES)
        self.conn = self.owner.server.connect()
        self.owner._protocols[self.conn] = self

    def data_received(self, data: bytes) -> None:
        if self.closed:
            return
        self.owner.reads += 1
        try:
            self.owner._perform(self.conn, self.conn.receive_data(data))
        except Exception:
            log.exception("CQL connection from %s failed", self.transport.get_extra_info("peername"))
            self.close()

    def eof_received(self) -> bool:
        self.flush()                              # what is already answered still goes out
        return False                              # then the transport closes

    def connection_lost(self, exc) -> None:
        self.closed = True
        self.outbox.clear()
        self.frames.clear()
        self.owner.server.disconnect(self.conn)
        self.owner._protocols.pop(self.conn, None)

    def pause_writing(self) -> None:
        if not self.closed:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        if not self.closed:
            self.transport.resume_reading()

    def flush(self) -> None:
        out, self.outbox = self.outbox, []
        frames, self.frames = self.frames, []
        if (out or frames) and not self.closed and not self.transport.is_closing():
            self.owner.writes += 1
            self.owner.responses_written += len(out) + len(frames)
            if frames:                            # v5: one segment for them all (Connection.seal)
                out.append(self.conn.connection.seal(frames))
            self.transport.write(out[0] if len(out) == 1 else b"".join(out))

    def close(self) -> None:
        self.flush()
        self.closed = True
        self.transport.close()


class NativeTransport:
    def __init__(self, process, port: int):
        self.process = process
        self.port = port
        self.server: NativeServer | None = None
        self._asyncio_server: asyncio.Server | None = None
        self._protocols: dict[ServerConnection, CqlProtocol] = {}
        self._dirty: list[CqlProtocol] = []         # protocols with an outbox to write this iteration
        self._loop: asyncio.AbstractEventLoop | None = None
        self._schema_version = None
        self._superuser_setup_at: float | None = None    # when to (re)try the default superuser setup
        self.reads = self.writes = self.responses_written = 0   # data_received calls, transport writes, frames

    async def start(self) -> None:
        s = self.process.settings
        self.server = NativeServer(self.process.node, max_connections=s.native_transport_max_concurrent_connections,
                                   max_requests_per_connection=s.native_transport_max_requests_per_connection,
                                   max_concurrent_requests=s.native_transport_max_concurrent_requests,
                                   max_frame_bytes=s.max_frame_bytes, authenticator=s.authenticator)
        if self.server.authenticator == auth.PASSWORD:
            roles.ensure_schema(self.process.node)
            self._superuser_setup_at = asyncio.get_running_loop().time() + s.superuser_setup_delay_ms / 1000
        self.server.observe_ring(ring_view(self.process.node))
        self.server.observe_schema(schema_view(self.process.node))
        self._loop = loop = asyncio.get_running_loop()
        self._asyncio_server = await loop.create_server(lambda: CqlProtocol(self), s.listen_address, self.port,
                                                        reuse_address=True)
        log.info("CQL native transport listening on %s:%d", s.listen_address, self.port)

    def close(self) -> None:
        if self._asyncio_server is not None:
            self._asyncio_server.close()
        for protocol in list(self._protocols.values()):
            protocol.close()

    def tick(self) -> None:
        """Push TOPOLOGY_CHANGE / STATUS_CHANGE for what gossip changed since the last tick, and
        SCHEMA_CHANGE for a schema learnt from a peer."""
        if self.server is None:
            return
        self._setup_superuser()
        for event in self.server.observe_ring(ring_view(self.process.node)) + self._schema_events():
            self._push(event)

    def _schema_events(self, pushed=()) -> list:
        """SCHEMA_CHANGE for what the schema changed since last seen, less those already `pushed`."""
        version = self.process.node.schema.version()
        if version == self._schema_version:
            return []
        self._schema_version = version
        return [e for e in self.server.observe_schema(schema_view(self.process.node)) if e not in pushed]

    def metrics(self) -> dict[str, int]:
        if self.server is None:
            return {}
        return {"cql_connections": len(self.server.connections), "cql_requests_in_flight": self.server.in_flight,
                "cql_connections_refused": self.server.refused_connections,
                "cql_requests_overloaded": self.server.overloaded, "cql_socket_reads": self.reads,
                "cql_socket_writes": self.writes, "cql_frames_written": self.responses_written,
                "cql_point_statements": self.server.point_statements}

    def _perform(self, conn: ServerConnection, out: Output) -> None:
        protocol = self._protocols.get(conn)
        if protocol is None or protocol.closed:
            return
        if out.data:
            self._write(conn, out.data)
        if self.server.bugs:
            self._log_bugs()
        if out.requests:
            submit, on_reply, partial = self.process.submit, self._on_reply, functools.partial
            for req in out.requests:
                submit(req.op, req.args, partial(on_reply, protocol, req.id))
        if out.events:
            for event in out.events + self._schema_events(out.events):
                self._push(event)
        if out.close:
            protocol.close()

    def _on_reply(self, protocol: CqlProtocol, request_id: int, result, error) -> None:
        conn = protocol.conn
        frame = conn.point_frame(request_id, result, error)      # a point EXECUTE's answer: no Output
        if frame is None:
            self._perform(conn, conn.on_reply(Reply(request_id, result, error)))
            return
        if self.server.bugs:
            self._log_bugs()
        if protocol.closed:                       # the connection went away meanwhile
            return
        frames = protocol.frames
        if not frames and not protocol.outbox:    # _queue, inline: the first answer of this iteration
            if not self._dirty:
                self._loop.call_soon(self._flush)
            self._dirty.append(protocol)
        frames.append(frame)

    def _push(self, event) -> None:
        for conn, data in self.server.push(event):
            self._write(conn, data)

    def _write(self, conn: ServerConnection, data: bytes) -> None:
        """Queue `data`; every queue is written once at the end of this loop iteration."""
        protocol = self._queue(conn)
        if protocol is not None:
            protocol.outbox.append(data)

    def _queue(self, conn: ServerConnection) -> CqlProtocol | None:
        """`conn`'s protocol, marked for this iteration's flush (None: the connection is gone)."""
        protocol = self._protocols.get(conn)
        if protocol is None or protocol.closed:
            return None
        if not protocol.outbox and not protocol.frames:
            if not self._dirty:
                self._loop.call_soon(self._flush)     # the loop, kept: get_running_loop() is a getpid()
            self._dirty.append(protocol)
        return protocol

    def _flush(self) -> None:
        dirty, self._dirty = self._dirty, []
        for protocol in dirty:
            protocol.flush()

    def _setup_superuser(self) -> None:
        """PasswordAuthenticator: once, `superuser_setup_delay_ms` after start, create the default
        superuser if no role exists (roles.py); retried every SUPERUSER_SETUP_RETRY_S on failure."""
        at = self._superuser_setup_at
        loop = asyncio.get_running_loop()
        if at is None or loop.time() < at:
            return
        self._superuser_setup_at = None
        ex = Execution(self.process.node, CqlSession(self.server.prepared), self.server.ids,
                       lambda _ex: roles.setup_default_superuser())

        def advance(requests) -> None:
            for req in requests:
                self.process.submit(req.op, req.args, functools.partial(on_reply, req.id))
            if ex.done:
                error = getattr(ex.response, "message", None) if not isinstance(ex.response, bool) else None
                if error is not None:
                    log.warning("default superuser setup failed (%s); retrying in %d s", error,
                                SUPERUSER_SETUP_RETRY_S)
                    self._superuser_setup_at = loop.time() + SUPERUSER_SETUP_RETRY_S

        def on_reply(request_id, result, error) -> None:
            advance(ex.on_reply(Reply(request_id, result, error)))

        advance(ex.start())

    def _log_bugs(self) -> None:
        while self.server.bugs:
            e = self.server.bugs.pop()
            self.process.stats["cql_server_errors"] += 1
            log.error("a CQL statement failed inside the server: %s", e, exc_info=e)


def schema_view(node) -> dict[tuple[str, str], object]:
    """{(keyspace, table or ""): its definition} of the user schema, compared for SCHEMA_CHANGE."""
    schema = node.schema.export()
    view: dict[tuple[str, str], object] = {(ks["name"], ""): repr(ks["replication"]) for ks in schema["keyspaces"]}
    for t in schema["tables"]:
        view[(t["keyspace"], t["name"])] = repr(t)
    return view


def ring_view(node) -> dict[str, tuple[bool, bool]]:
    """{native "host:port": (up, member)} of every endpoint this node's gossip knows: a member is
    NORMAL (joining, leaving and left nodes are not), up is the failure detector's verdict."""
    from ring import membership as ms
    from ring.cql.system_tables import native_address
    view = {}
    for ep, state in list(node.gossiper.states.items()):
        status = state.get(ms.ApplicationState.STATUS)
        member = bool(status) and ms.parse_status(status)[0] == ms.Status.NORMAL
        host, port = native_address(node, ep)
        view[f"{host}:{port}"] = (ep == node.endpoint or node.is_alive(ep), member)
    return view
