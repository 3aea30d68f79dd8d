"""The prepared-statement point fast path, sans-IO: EXECUTE of a point INSERT or a point SELECT
without the general executor (execute.py's generator, plan.operations, RowSink, Rows objects).

At the first EXECUTE of a prepared statement, `compile_point` looks at its plan and the live
table and, for the two shapes below, builds a `Point`: the bind slots in order, the node op's
fixed args, and (SELECT) the getters and the encoded result metadata per protocol version.
`request(...)` then goes from the wire [value]s straight to one `ClientRequest` and a RESULT maker
((node result, version) -> the RESULT body); `execution(...)` wraps the two for the general
server path, and the server's point lane (server.py) uses them without the wrapper.

* INSERT: a WritePlan "insert" whose every key column is a plain `?` or a literal (no IN), every
  value a plain `?` or a literal (no collection operation), no JSON, no IF, no USING TTL /
  TIMESTAMP (the protocol's default timestamp is honoured, as by the general path).
* SELECT by the full primary key: a ReadPlan "select" with `=` on every partition key column and
  every clustering column (start == end, inclusive), no ALLOW FILTERING, filters, LIMIT, PER PARTITION LIMIT,
  DISTINCT, COUNT or JSON, and a page size of None or > 1 (so one page always holds the answer).

Invariant (tests/cql/test_point.py, differential): for every statement and values it accepts,
the node request and the response bytes are exactly those of the general path, except that a
SELECT's `columns` list is left out when it names every regular column of the table (the
coordinator then returns the same row without filtering it; the table is the compiled one, so no
column added since can appear). It never makes
an error of its own: named values, a wrong arity, a null or unset key value, a value that does
not deserialize, a SERIAL read, a paging state, or a table that changed since compiling (its
identity in the live schema) all return None from `execution`, and the caller runs the general
path, which answers them as before (an unknown id is Unprepared there too).
"""
from __future__ import annotations

import struct
from typing import Callable

from engine.errors import EngineError, InvalidRequest
from ring.cql import ast, responses
from ring.cql.collection_ops import CollectionSource
from ring.cql.notation import UNSET as WIRE_UNSET
from ring.cql.plan import ReadPlan, WritePlan
from ring.cql.responses import Response
from ring.cql.result import EncodedResult, ResultKind, RowsMetadata, Void
from ring.cql.selection import Selection
from ring.cql.types import deserialize, serialize
from ring.errors import ConfigurationError, RequestError
from ring.messages import ClientRequest, Reply

_I32 = struct.Struct(">i")
_I64 = struct.Struct(">q")
_ROWS = _I32.pack(ResultKind.ROWS)
_NULL_CELL = _I32.pack(-1)
_SERIAL = frozenset({"SERIAL", "LOCAL_SERIAL"})
_I32_UNPACK, _I64_UNPACK = _I32.unpack, _I64.unpack
_INLINE = frozenset({"int", "bigint", "blob"})    # types whose plain values `request` decodes inline


class PointExecution:
    """One EXECUTE on the point path; the Execution interface the server drives. Its RESULT is
    encoded here, in `on_reply` (the server's try/except around it), never later at sending."""

    __slots__ = ("done", "response", "events", "_request", "_finish", "_version")

    def __init__(self, request: ClientRequest, finish, version: int):
        self.done = False
        self.response = None
        self.events = ()
        self._request = request
        self._finish = finish               # (node result, version) -> the RESULT body
        self._version = version             # the connection's protocol version

    def start(self) -> list[ClientRequest]:
        return [self._request]

    def on_reply(self, reply: Reply) -> list[ClientRequest]:
        if self.done or reply.request_id != self._request.id:
            return []
        if reply.error is None:
            body = result_body(self._finish, reply.result, self._version)
            self.response = EncodedResult(body) if type(body) is bytes else body
        else:
            self.response = error_response(reply.error)
        self.done = True
        return []


def result_body(finish, result, version: int) -> bytes | Response:
    """The RESULT body `finish` makes of a node result, or the ERROR answering an engine error it
    raises (a row that no longer fits the statement's types: INVALID, as the general path answers).
    Any other exception is a bug and escapes to the caller (ServerError on the stream). A `finish`
    that is bytes is the answer itself, whatever the result (INSERT: its VOID body)."""
    if type(finish) is bytes:
        return finish
    try:
        return finish(result, version)
    except (EngineError, RequestError) as e:
        return responses.error_for(e)


def error_response(error) -> Response:
    """The ERROR answering a point request's node error (as the general path answers it)."""
    if not isinstance(error, (EngineError, RequestError, ConfigurationError)):
        error = RequestError(f"{type(error).__name__}: {error}")
    return responses.error_for(error)


class Point:
    """A compiled point statement: `slots` are (bind index, type) in marker order."""

    def __init__(self, table, types: tuple, key_slots: tuple, build, finishes):
        self.table = table
        self.decoders = tuple((t.name if t.name in _INLINE else None, _decoder(t)) for t in types)   # by marker index: (inline
        # kind: "int", "bigint", "blob" or None; bytes -> value)
        self.key_slots = key_slots          # marker indexes that may be neither null nor unset
        self.build = build                  # (values, level, page size, timestamp) -> (op, args) or None
        self.finishes = finishes            # by skip_metadata: (node result, version) -> RESULT body, or the body


def execution(node, session, query_id: bytes, params, ids, version: int) -> PointExecution | None:
    """The point path for this EXECUTE on a connection of protocol `version`, or None: run the
    general path (see the module docstring)."""
    if params.names is not None:
        return None
    started = request(node, session, query_id, params.values, params.consistency, params.page_size,
                      params.paging_state, params.timestamp, params.skip_metadata, ids)
    return None if started is None else PointExecution(*started, version)


def request(node, session, query_id: bytes, raw, consistency, page_size, paging_state, timestamp, skip_metadata,
            ids) -> tuple[ClientRequest, Callable] | None:
    """The node request of a point EXECUTE with these (positional) wire values and its RESULT maker
    (node result -> Response), or None: run the general path. `execution` without the objects."""
    p = session.prepared.get(query_id)
    if p is None or paging_state:
        return None
    point = _compiled(node, p)
    if point is None:
        return None
    decoders = point.decoders
    if len(raw) != len(decoders):
        return None
    values = []
    append = values.append
    for value, (kind, decode) in zip(raw, decoders):
        if value is None or value is WIRE_UNSET:
            append(value)
        elif kind is None:
            try:
                append(decode(value))
            except InvalidRequest:
                return None
        elif kind == "blob" and type(value) is bytes:     # the common types' well-formed values, inline
            append(value)
        elif kind == "int" and len(value) == 4:
            append(_I32_UNPACK(value)[0])
        elif kind == "bigint" and len(value) == 8:
            append(_I64_UNPACK(value)[0])
        else:
            try:
                append(decode(value))
            except InvalidRequest:
                return None
    for i in point.key_slots:
        if values[i] is None or values[i] is WIRE_UNSET:
            return None
    built = point.build(values, consistency._name_, page_size, timestamp)   # _name_: no enum descriptor
    if built is None:
        return None
    op, args = built
    return ClientRequest(ids(), op, args), point.finishes[bool(skip_metadata)]


def _compiled(node, p) -> Point | None:
    """The Point of `p` for the live table (compiled again when the table changed), or None."""
    plan = p.plan
    if not isinstance(plan, (WritePlan, ReadPlan)):
        return None
    ks = node.store.keyspaces.get(plan.keyspace)
    table = ks.tables.get(plan.table) if ks is not None else None
    if table is None:
        return None
    cached = p.__dict__.get("_point")
    if cached is not None and cached[0] is table:
        return cached[1]
    point = compile_point(p, table)
    p.__dict__["_point"] = (table, point)   # PreparedStatement is frozen; this is its cache slot
    return point


def compile_point(p, table) -> Point | None:
    """The Point for prepared statement `p` on `table`, or None when it is not a point shape."""
    if p.json_columns:
        return None
    if isinstance(p.plan, WritePlan):
        return _compile_insert(p, p.plan, table)
    if isinstance(p.plan, ReadPlan):
        return _compile_select(p, p.plan, table)
    return None


def _decoder(t):
    """types.deserialize(t, ·), with the common types' well-formed values decoded inline."""
    name = t.name
    if name == "int":
        unpack = _I32.unpack
        return lambda data: unpack(data)[0] if len(data) == 4 else deserialize(t, data)
    if name == "bigint":
        unpack = _I64.unpack
        return lambda data: unpack(data)[0] if len(data) == 8 else deserialize(t, data)
    if name == "blob":
        return lambda data: data if type(data) is bytes else deserialize(t, data)
    return lambda data: deserialize(t, data)


def _encoder(t):
    """types.serialize(t, ·), with the common types' plain values encoded inline."""
    name = t.name
    if name == "int":
        pack = _I32.pack
        return lambda v: pack(v) if type(v) is int and -0x80000000 <= v <= 0x7FFFFFFF else serialize(t, v)
    if name == "bigint":
        pack = _I64.pack
        return lambda v: pack(v) if type(v) is int and -(1 << 63) <= v < (1 << 63) else serialize(t, v)
    if name == "blob":
        return lambda v: v if type(v) is bytes else serialize(t, v)
    return lambda v: serialize(t, v)


def _source(source):
    """(marker index, None) for a plain marker, (None, value) for a literal; None otherwise."""
    if isinstance(source, ast.BindMarker):
        return source.index, None
    if isinstance(source, CollectionSource) or type(source).__module__ == ast.__name__:
        return None                          # a collection operation or an unconverted term
    return None, source


def _markers_cover(p, slots) -> bool:
    return sorted(i for i, _ in slots if i is not None) == list(range(len(p.bind)))


def _compile_insert(p, plan: WritePlan, table) -> Point | None:
    if plan.op != "insert" or plan.json is not None or plan.ttl is not None or plan.timestamp is not None:
        return None
    if any(is_in for _, _, is_in in plan.key):
        return None
    if isinstance(p.statement, ast.Insert) and p.statement.if_not_exists:
        return None
    key = [(column, _source(source)) for column, source, _ in plan.key]
    row = [(column, _source(source)) for column, source in plan.row]
    if any(s is None for _, s in key + row) or not _markers_cover(p, [s for _, s in key + row]):
        return None
    keyspace, name = plan.keyspace, plan.table
    key_slots = tuple(i for _, (i, _) in key if i is not None)
    if any(c is None for _, (i, c) in key if i is None):
        return None                          # a literal null key: the general path's error
    fields = tuple((column, i, c) for column, (i, c) in key + row)
    void = Void().encode_body(4)            # the same bytes in every version

    def build(values, level, page_size, timestamp):
        out = {}
        for column, i, constant in fields:
            if i is None:
                out[column] = constant
                continue
            v = values[i]
            if v is not WIRE_UNSET:
                out[column] = v
        args = {"keyspace": keyspace, "table": name, "row": out, "consistency": level}
        if timestamp is not None:
            args["timestamp"] = timestamp
        return "insert", args

    return Point(table, tuple(s.type for s in p.bind), key_slots, build, (void, void))   # bytes: no call


def _compile_select(p, plan: ReadPlan, table) -> Point | None:
    if (plan.op != "select" or plan.filters or plan.limit is not None or plan.per_partition_limit is not None
            or plan.distinct or plan.count or p.statement.order_by or p.statement.allow_filtering):
        return None
    if any(is_in for _, _, is_in in plan.key) or len(plan.key) != len(table.partition_key):
        return None
    clustering = [c.name for c in table.clustering]
    if clustering:
        if (plan.start != plan.end or not plan.start_inclusive or not plan.end_inclusive
                or [c for c, _ in plan.start] != clustering):
            return None
    elif plan.start or plan.end:
        return None
    key = [(column, _source(source)) for column, source, _ in plan.key]
    bounds = [(column, _source(source)) for column, source in plan.start]
    if any(s is None for _, s in key + bounds) or not _markers_cover(p, [s for _, s in key + bounds]):
        return None
    if any(i is None and c is None for _, (i, c) in key + bounds):
        return None
    selection = Selection(p.statement, table, p.result_columns, (), ())
    getters = selection.getters
    types = [c.type for c in p.result_columns]
    if len(getters) != len(types) or any(g is None for g in getters):
        return None
    base = plan.request_base()
    if "columns" in base and {c.name for c in table.regular} <= set(base["columns"]):
        del base["columns"]                  # every regular column: the same row without the coordinator's filter
    key_fields = tuple((column, i, c) for column, (i, c) in key)
    bound_fields = tuple((i, c) for _, (i, c) in bounds)
    key_slots = tuple(i for _, i, _ in key_fields if i is not None) + tuple(i for i, _ in bound_fields
                                                                             if i is not None)
    metadata = _metadata_encoder(p)
    with_clustering = bool(clustering)
    # per result column: (the row dict's key for a plain column's getter, else None; the getter;
    # the encoder; whether it is a blob, whose bytes are its cell as they are)
    columns = tuple((getattr(g, "column", None), g, _encoder(t), t.name == "blob") for g, t in zip(getters, types))

    def build(values, level, page_size, timestamp):
        if level in _SERIAL:
            return None
        if with_clustering and page_size is not None and page_size <= 1:
            return None
        args = dict(base)
        key = args["key"] = {}                    # a loop, not a comprehension: no function call
        for column, i, c in key_fields:
            key[column] = c if i is None else values[i]
        if with_clustering:
            bound = tuple(c if i is None else values[i] for i, c in bound_fields)
            args["start"], args["start_inclusive"] = bound, True
            args["end"], args["end_inclusive"] = bound, True
            args["consistency"] = level
            if page_size is not None:
                args["limit"] = page_size
        else:
            args["consistency"] = level
        return "select", args

    def finish_with(skip: bool):
        meta, heads = metadata(skip), {}          # heads: version -> the encoded metadata

        def finish(rows, version):
            head = heads.get(version)
            if head is None:
                head = heads[version] = meta(version)
            cells = []
            append = cells.append
            for row in rows:
                for name, getter, encode, blob in columns:
                    v = getter(row) if name is None else row.get(name)
                    if v is None:
                        append(_NULL_CELL)
                    else:
                        b = v if blob and type(v) is bytes else encode(v)
                        append(_I32.pack(len(b)))
                        append(b)
            return _ROWS + head + _I32.pack(len(rows)) + b"".join(cells)
        return finish

    return Point(table, tuple(s.type for s in p.bind), key_slots, build, (finish_with(False), finish_with(True)))


def _metadata_encoder(p):
    """skip_metadata -> (version -> the encoded RowsMetadata of a one-page answer), memoised."""
    memo: dict[tuple[bool, int], bytes] = {}

    def for_skip(skip: bool):
        def encode(version: int) -> bytes:
            found = memo.get((skip, version))
            if found is None:
                found = memo[(skip, version)] = RowsMetadata(p.result_columns, no_metadata=skip,
                                                             specs=p.result_specs).encode(version)
            return found
        return encode
    return for_skip
