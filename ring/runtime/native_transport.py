"""The CQL port of a node process (`native_transport_port`, default 9042, bound to listen_address).

A thin asyncio driver around the sans-IO server (ring/cql/server.py), in the node's own loop: it
reads bytes into a `ServerConnection`, writes what comes out, hands each node request a statement
makes to `NodeProcess.submit` (the same entry point as the own protocol's requests) and feeds the
reply back, and pushes EVENTs to the connections that registered for them: SCHEMA_CHANGE from
DDL results and from a schema learnt through gossip (its version compared on every tick), TOPOLOGY_CHANGE and STATUS_CHANGE from the gossip view, compared on every tick.

With PasswordAuthenticator it creates system_auth locally at start (roles.ensure_schema) and,
`superuser_setup_delay_ms` later, runs roles.setup_default_superuser through the node (retried
until it succeeds).

Writes are coalesced: what a connection's statements answer during one loop iteration goes out in
one `write` (one send() instead of one per response). Backpressure: reading a connection waits
for its writes to drain. A connection's failure closes only that connection; an exception that
escaped an execution is logged and counted
(`cql_server_errors`), and the node keeps serving.
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

READ_CHUNK_BYTES = 256 * 1024
SUPERUSER_SETUP_RETRY_S = 2


class NativeTransport:
    def __init__(self, process, port: int):
        self.process = process
        self.port = port
        self.server: NativeServer | None = None
        self._asyncio_server: asyncio.Server | None = None
        self._writers: dict[ServerConnection, asyncio.StreamWriter] = {}
        self._outbox: dict[ServerConnection, list[bytes]] = {}     # written at the end of this iteration
        self._schema_version = None
        self._superuser_setup_at: float | None = None    # when to (re)try the default superuser setup

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
        self._asyncio_server = await asyncio.start_server(self._serve, s.listen_address, self.port,
                                                          reuse_address=True)
        log.info("CQL native transport listening on %s:%d", s.listen_address, self.port)

    def close(self) -> None:
        if self._asyncio_server is not None:
            self._asyncio_server.close()
        for writer in list(self._writers.values()):
            writer.close()

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
                "cql_requests_overloaded": self.server.overloaded}

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = self.server.connect()
        self._writers[conn] = writer
        try:
            while not writer.is_closing():
                data = await reader.read(READ_CHUNK_BYTES)
                if not data:
                    return
                self._perform(conn, conn.receive_data(data))
                await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        except Exception:
            log.exception("CQL connection from %s failed", writer.get_extra_info("peername"))
        finally:
            self._flush()                       # what is already answered still goes out
            self.server.disconnect(conn)
            self._writers.pop(conn, None)
            writer.close()

    def _perform(self, conn: ServerConnection, out: Output) -> None:
        writer = self._writers.get(conn)
        if writer is None:
            return
        if out.data:
            self._write(conn, out.data)
        self._log_bugs()
        for req in out.requests:
            self.process.submit(req.op, req.args, functools.partial(self._on_reply, conn, req.id))
        for event in out.events + (self._schema_events(out.events) if out.events else []):
            self._push(event)
        if out.close:
            self._flush()
            writer.close()

    def _on_reply(self, conn: ServerConnection, request_id: int, result, error) -> None:
        self._perform(conn, conn.on_reply(Reply(request_id, result, error)))

    def _push(self, event) -> None:
        for conn, data in self.server.push(event):
            self._write(conn, data)

    def _write(self, conn: ServerConnection, data: bytes) -> None:
        """Queue `data`; the queue is written once at the end of this loop iteration."""
        if not self._outbox:
            asyncio.get_running_loop().call_soon(self._flush)
        self._outbox.setdefault(conn, []).append(data)

    def _flush(self) -> None:
        outbox, self._outbox = self._outbox, {}
        for conn, chunks in outbox.items():
            writer = self._writers.get(conn)
            if writer is not None and not writer.is_closing():
                writer.write(chunks[0] if len(chunks) == 1 else b"".join(chunks))

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
