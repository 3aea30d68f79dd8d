"""The CQL server of one node, sans-IO: request events in, node requests and response bytes out.

`NativeServer` is node-wide (the prepared-statement cache, the limits, the authenticator, every
connection, the ring view behind pushed EVENTs); `ServerConnection` is one client connection: a `Connection` (bytes <->
events), a `CqlSession` (keyspace, prepared statements) and the statements in flight. A driver
(ring/runtime/native_transport.py) feeds `receive_data(bytes)` and `on_reply(Reply)` and performs
the `Output`: write `data`, submit each of `requests` to `Node.submit` (the same entry point as
the own protocol) and feed its reply back, push `events` with `NativeServer.push`, close if
`close`. Statements are `ring.cql.execute.Execution`s, so the simulator can drive the same path.
With PasswordAuthenticator, STARTUP is answered AUTHENTICATE and an AUTH_RESPONSE is an Execution
too (roles.login: it reads the role through the node); see auth.py.

Invariants: every request event is answered exactly once, on its stream, in completion order
(pipelined responses come back out of order); pushed EVENTs use stream -1 and go only to
connections that REGISTERed for their type. Limits answer Overloaded and the node serves on:
`max_requests_per_connection` statements in flight on one connection,
`max_concurrent_requests` on the node, `max_connections` connections (a connection over the limit
answers every request with the error, then closes). Frames over `max_frame_bytes` are refused
by the Connection. An exception escaping an execution is a bug: it answers ServerError on its
stream, is kept in `NativeServer.bugs` for the driver to log, and the connection serves on.

The point lane: an EXECUTE frame without flags of a compiled point statement (point.py) goes from
its decoded fields (execute_frames.py; the Connection hands them over as a (fields, stream) tuple,
and `receive_data` offers it to the lane in arrival order, so limits see the statements in the
order they came) straight to its node request, with no Execute, Execution or Output object; `points` maps the request id to (stream, RESULT maker), and `point_reply` turns
its node reply into the answer's bytes (the driver calls it first, and `on_reply` when it returns
None); a RESULT its maker cannot make for an engine error is that error (INVALID), any other
exception a bug (ServerError). Whatever the lane declines (a limit reached, a frame with flags, anything point.py does not
take) runs the general path, which answers it as before.
"""
from __future__ import annotations

import itertools

from ring.cql import auth, execute, point, roles
from ring.cql.connection import Connection, Rejected
from ring.cql.execute_frames import execute_event
from ring.cql.requests import (F_SKIP_METADATA, AuthResponse, Batch, Execute, Options, Prepare, Query, Register,
                               Startup)
from ring.cql.responses import (Authenticate, Error, ErrorCode, Ready, Response, SchemaChange, StatusChange,
                                TopologyChange)
from ring.messages import ClientRequest, Reply

CONNECTIONS_MAX_DEFAULT = 1024
REQUESTS_PER_CONNECTION_MAX_DEFAULT = 2048
CONCURRENT_REQUESTS_MAX_DEFAULT = 4096
FRAME_BYTES_MAX_DEFAULT = 16 * 1024 * 1024
EVENT_STREAM = -1


class Output:
    """What the driver does next, in order: write `data`, submit `requests`, push `events`, close.
    (A plain class with slots: one is made per socket read and per reply, so it is kept cheap.)"""

    __slots__ = ("data", "requests", "events", "close")

    def __init__(self, data: bytes = b"", requests: list[ClientRequest] | None = None,
                 events: list[Response] | None = None, close: bool = False):
        self.data = data
        self.requests = [] if requests is None else requests
        self.events = [] if events is None else events
        self.close = close

    def __eq__(self, other) -> bool:
        return isinstance(other, Output) and (self.data, self.requests, self.events, self.close) == (
            other.data, other.requests, other.events, other.close)

    def __repr__(self) -> str:
        return (f"Output(data={self.data!r}, requests={self.requests!r}, events={self.events!r}, "
                f"close={self.close!r})")

    def extend(self, other: "Output") -> None:
        self.data += other.data
        self.requests += other.requests
        self.events += other.events
        self.close = self.close or other.close


class NativeServer:
    def __init__(self, node, *, max_connections: int = CONNECTIONS_MAX_DEFAULT,
                 max_requests_per_connection: int = REQUESTS_PER_CONNECTION_MAX_DEFAULT,
                 max_concurrent_requests: int = CONCURRENT_REQUESTS_MAX_DEFAULT,
                 max_frame_bytes: int = FRAME_BYTES_MAX_DEFAULT, authenticator: str = auth.ALLOW_ALL,
                 point_path: bool = True):
        self.node = node
        self.point_path = point_path            # EXECUTEs of point statements skip the planner (point.py)
        self.authenticator = auth.authenticator_name(authenticator)
        self.prepared = execute.PreparedCache()
        self.max_connections = max_connections
        self.max_requests_per_connection = max_requests_per_connection
        self.max_concurrent_requests = max_concurrent_requests
        self.max_frame_bytes = max_frame_bytes
        self.connections: set[ServerConnection] = set()
        self.in_flight = 0                      # statements in flight on the node
        self.refused_connections = 0
        self.overloaded = 0
        self.point_statements = 0               # EXECUTEs the point fast path started (point.py)
        self.bugs: list[BaseException] = []     # exceptions that escaped an execution, for the driver to log
        self.ids = itertools.count(1).__next__  # ids of the node requests statements make
        self._ring: dict[str, tuple[bool, bool]] = {}   # native "host:port" -> (up, member), for EVENTs
        self._schema: dict[tuple[str, str], object] | None = None   # (keyspace, table or "") -> definition

    def connect(self) -> "ServerConnection":
        """A new connection; over `max_connections` it is one that refuses every request."""
        refusal = None
        if len(self.connections) >= self.max_connections:
            self.refused_connections += 1
            refusal = Error(ErrorCode.OVERLOADED, f"Too many connections: this node allows {self.max_connections} "
                            f"(native_transport_max_concurrent_connections); close idle ones or retry later")
        conn = ServerConnection(self, refusal)
        if refusal is None:
            self.connections.add(conn)
        return conn

    def disconnect(self, conn: "ServerConnection") -> None:
        self.connections.discard(conn)
        self.in_flight -= len(conn.executions) + len(conn.points)
        conn.executions.clear()
        conn.points.clear()
        conn.waiting.clear()
        conn.requests.clear()

    def push(self, event: Response) -> list[tuple["ServerConnection", bytes]]:
        """The bytes of `event` for every connection registered for its type."""
        kind = {SchemaChange: "SCHEMA_CHANGE", TopologyChange: "TOPOLOGY_CHANGE",
                StatusChange: "STATUS_CHANGE"}[type(event)]
        return [(c, c.connection.send(event, EVENT_STREAM)) for c in self.connections
                if kind in c.connection.registered and not c.connection.closed]

    def observe_ring(self, view: dict[str, tuple[bool, bool]]) -> list[Response]:
        """The EVENTs for what changed since the last view: {native "host:port": (up, member)}.
        The first view only sets the baseline."""
        before, self._ring = self._ring, dict(view)
        return ring_events(before, view) if before else []

    def observe_schema(self, view: dict[tuple[str, str], object]) -> list[Response]:
        """The SCHEMA_CHANGE EVENTs for what changed since the last view: {(keyspace, table or ""):
        definition}; a schema learnt from a peer is announced here as well as where the DDL ran
        (as Cassandra does). Prepared statements of a changed or dropped table are forgotten.
        The first view only sets the baseline."""
        before, self._schema = self._schema, dict(view)
        if before is None:
            return []
        events = schema_events(before, view)
        for e in events:
            if e.change_type != "CREATED":
                self.prepared.invalidate(e.keyspace, e.name or None)
        return events


def schema_events(before: dict[tuple[str, str], object], after: dict[tuple[str, str], object]) -> list[Response]:
    """CREATED / UPDATED / DROPPED per keyspace and table; a dropped keyspace's tables go with it
    silently, as in Cassandra."""
    events: list[Response] = []
    dropped_keyspaces = {ks for ks, t in before if not t and (ks, "") not in after}
    for ks, table in sorted(set(before) | set(after)):
        target, name = ("TABLE", table) if table else ("KEYSPACE", "")
        if (ks, table) not in before:
            events.append(SchemaChange("CREATED", target, ks, name))
        elif (ks, table) not in after:
            if not table or ks not in dropped_keyspaces:
                events.append(SchemaChange("DROPPED", target, ks, name))
        elif before[(ks, table)] != after[(ks, table)]:
            events.append(SchemaChange("UPDATED", target, ks, name))
    return events


def ring_events(before: dict[str, tuple[bool, bool]], after: dict[str, tuple[bool, bool]]) -> list[Response]:
    """TOPOLOGY_CHANGE NEW_NODE / REMOVED_NODE for members that joined or left, STATUS_CHANGE
    UP / DOWN for members whose liveness flipped (and UP for a new member that is up)."""
    events: list[Response] = []
    for address in sorted(set(before) | set(after)):
        was_up, was_member = before.get(address, (False, False))
        up, member = after.get(address, (False, False))
        host, port = split_address(address)
        if member and not was_member:
            events.append(TopologyChange("NEW_NODE", host, port))
        elif was_member and not member:
            events.append(TopologyChange("REMOVED_NODE", host, port))
        if member and up != was_up:
            events.append(StatusChange("UP" if up else "DOWN", host, port))
    return events


def split_address(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


class ServerConnection:
    def __init__(self, server: NativeServer, refusal: Error | None = None):
        self.server = server
        self.connection = Connection(max_frame_bytes=server.max_frame_bytes)
        self.session = execute.CqlSession(server.prepared)
        self.refusal = refusal
        self.executions: dict[object, int] = {}         # Execution -> stream
        self.waiting: dict[int, object] = {}            # node request id -> Execution
        self.requests: dict[object, list[int]] = {}     # Execution -> its node request ids
        self.points: dict[int, tuple] = {}               # point lane: node request id -> (stream, RESULT maker)
        self.connection.execute_fields = server.point_path   # flagless EXECUTEs as (fields, stream): the lane

    # -- input ----------------------------------------------------------------------------------

    def receive_data(self, data: bytes) -> Output:
        out = Output()
        events = self.connection.receive_data(data)
        i = 0
        while i < len(events):
            event = events[i]
            i += 1
            if type(event) is tuple:                   # a flagless EXECUTE's (fields, stream), in arrival order
                req = self._point_lane(event)
                if req is not None:
                    out.requests.append(req)
                    continue
                event = execute_event(event)           # the general path takes it
            if type(event) is Execute and self.refusal is None:
                self._statement(event, out)            # the common request, straight into `out`
                continue
            out.extend(self._handle(event))
            if isinstance(event, Startup):
                events += self.connection.receive_data(b"")   # what arrived while STARTUP was pending
            if out.close:
                break
        return out

    def on_reply(self, reply: Reply) -> Output:
        """A node reply to one of this connection's requests."""
        if reply.request_id in self.points:
            return Output(data=self.point_reply(reply.request_id, reply.result, reply.error))
        ex = self.waiting.pop(reply.request_id, None)
        if ex is None:
            return Output()                         # the connection went away meanwhile
        try:
            more = ex.on_reply(reply)
        except Exception as e:  # noqa: BLE001 - a bug in the executor answers its stream, see the docstring
            return self._bug(ex, e)
        return self._follow(ex, more)

    def point_reply(self, request_id: int, result, error) -> bytes | None:
        """`on_reply` for a request of the point lane: its answer's bytes; None for any other id."""
        frame = self.point_frame(request_id, result, error)
        return None if frame is None else self.connection.seal([frame])

    def point_frame(self, request_id: int, result, error) -> bytes | None:
        """`point_reply`'s answer as a frame not yet in v5 segments (Connection.seal makes one
        segment of a flush's frames); None for an id that is not the point lane's."""
        found = self.points.pop(request_id, None)
        if found is None:
            return None
        stream, finish = found
        self.server.in_flight -= 1
        connection = self.connection
        if error is None:
            if type(finish) is bytes:                 # a constant answer (INSERT: VOID): no call
                return connection.result_frame(finish, stream)
            try:
                body = point.result_body(finish, result, connection.version)
            except Exception as e:  # noqa: BLE001 - a bug in the executor answers its stream, see the docstring
                self.server.bugs.append(e)
                return connection.send(Error(ErrorCode.SERVER_ERROR, f"{type(e).__name__}: {e}"), stream, sealed=False)
            if type(body) is bytes:
                return connection.result_frame(body, stream)
            return connection.send(body, stream, sealed=False)      # an engine error making the RESULT: INVALID
        return connection.send(point.error_response(error), stream, sealed=False)

    def _point_lane(self, marker: tuple) -> ClientRequest | None:
        """A point EXECUTE (point.py) from its (decoded fields, stream) to its node request, or
        None: the general path takes the frame (and answers limits, errors and everything else)."""
        server = self.server
        if (not server.point_path or self.refusal is not None or server.in_flight >= server.max_concurrent_requests
                or len(self.executions) + len(self.points) >= server.max_requests_per_connection):
            return None
        fields, stream = marker
        query_id, _, consistency, flags, values, page_size, paging_state, _, timestamp = fields
        try:
            started = point.request(server.node, self.session, query_id, values, consistency, page_size,
                                    paging_state, timestamp, flags & F_SKIP_METADATA, server.ids)
        except Exception:  # noqa: BLE001 - the general path runs it again and reports the bug
            return None
        if started is None:
            return None
        req, finish = started
        self.points[req.id] = (stream, finish)
        server.in_flight += 1
        server.point_statements += 1
        return req

    # -- handling -------------------------------------------------------------------------------

    def _respond(self, response: Response, stream: int, close: bool = False) -> Output:
        return Output(data=self.connection.send(response, stream), close=close)

    def _handle(self, event) -> Output:
        if isinstance(event, Rejected):
            return self._respond(event.error, event.stream, event.close)
        if self.refusal is not None:
            return self._respond(self.refusal, event.stream, close=True)
        if isinstance(event, Options):
            return self._respond(self.connection.supported(), event.stream)
        if isinstance(event, Startup) and self.server.authenticator == auth.PASSWORD:
            return self._respond(Authenticate(auth.PASSWORD_AUTHENTICATOR_CLASS), event.stream)
        if isinstance(event, (Startup, Register)):
            return self._respond(Ready(), event.stream)
        if isinstance(event, Prepare):
            return self._respond(execute.prepare_result(self.server.node, self.session, event.query,
                                                           event.keyspace), event.stream)
        if isinstance(event, (Query, Execute, Batch, AuthResponse)):
            return self._statement(event)
        return self._respond(Error(ErrorCode.PROTOCOL_ERROR, f"Unexpected message {event.opcode.name}"),
                             event.stream)

    def _statement(self, event, into: Output | None = None) -> Output:
        """Start the statement; what it answers or requests goes into `into` (a new Output if None)."""
        out = Output() if into is None else into
        server = self.server
        if len(self.executions) + len(self.points) >= server.max_requests_per_connection:
            server.overloaded += 1
            out.extend(self._respond(Error(ErrorCode.OVERLOADED, f"Too many requests in flight on this connection "
                                           f"(max {server.max_requests_per_connection}); wait for responses or "
                                           f"open another connection"), event.stream))
            return out
        if server.in_flight >= server.max_concurrent_requests:
            server.overloaded += 1
            out.extend(self._respond(Error(ErrorCode.OVERLOADED, f"Too many requests in flight on this node "
                                           f"(max {server.max_concurrent_requests}); retry later or on another "
                                           f"node"), event.stream))
            return out
        Execution = execute.Execution
        node, session = server.node, self.session
        try:
            if isinstance(event, Query):
                ex = Execution.query(node, session, event.query, event.parameters, server.ids)
            elif isinstance(event, Execute):
                ex = server.point_path and point.execution(node, session, event.query_id, event.parameters,
                                                           server.ids, self.connection.version)
                if ex:
                    server.point_statements += 1
                else:
                    ex = Execution.execute(node, session, event.query_id, event.parameters, server.ids)
            elif isinstance(event, AuthResponse):      # PasswordAuthenticator's login, roles.py
                ex = Execution(node, session, server.ids, lambda _ex: roles.login(session, event.token))
            else:
                ex = Execution.batch(node, session, event, server.ids)
        except Exception as e:  # noqa: BLE001 - a bug in the executor answers its stream, see the docstring
            server.bugs.append(e)
            out.extend(self._respond(Error(ErrorCode.SERVER_ERROR, f"{type(e).__name__}: {e}"), event.stream))
            return out
        self.executions[ex] = event.stream
        server.in_flight += 1
        try:
            more = ex.start()
        except Exception as e:  # noqa: BLE001 - a bug in the executor answers its stream, see the docstring
            out.extend(self._bug(ex, e))
            return out
        return self._follow(ex, more, out)

    def _follow(self, ex, more: list[ClientRequest], into: Output | None = None) -> Output:
        """What `ex` asks next (`more`), or its answer when done, added to `into` (or a new Output)."""
        if more:
            ids = self.requests.setdefault(ex, [])
            for req in more:
                self.waiting[req.id] = ex
                ids.append(req.id)
        if not ex.done:
            if into is None:
                return Output(requests=list(more))
            into.requests += more
            return into
        out = self._respond(ex.response, self._finish(ex))
        out.events = list(ex.events)
        if into is None:
            return out
        into.extend(out)
        return into

    def _finish(self, ex) -> int:
        stream = self.executions.pop(ex)
        self.server.in_flight -= 1
        for rid in self.requests.pop(ex, ()):
            self.waiting.pop(rid, None)
        return stream

    def _bug(self, ex, e: BaseException) -> Output:
        self.server.bugs.append(e)
        stream = self._finish(ex)
        return self._respond(Error(ErrorCode.SERVER_ERROR, f"{type(e).__name__}: {e}"), stream)
