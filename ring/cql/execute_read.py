"""SELECT for the CQL executor (execute.py), sans-IO: the read half of an `Execution`.

`read(ex, ...)` is a generator run inside `Execution._run`: it yields lists of (op, args) node
requests and receives their replies, and returns the ROWS result. Reads run their operations one
at a time in order, fetching at most what still fits in the page, so a page never overflows and
the paging state (paging.py) resumes exactly after the last row fetched, on any node. A point
read of a table without clustering columns takes `_read_row` (one request, one page); IN with
ORDER BY is merged whole (`_read_ordered`, one page, as Cassandra refuses to page it).
"""
from __future__ import annotations

from engine import mutation as mut
from engine.errors import EngineError, InvalidRequest
from ring.cql import json_values, paging
from ring.cql.plan import UNSET, ReadPlan, resolve
from ring.cql.prepare import PreparedStatement
from ring.cql.result import Rows, RowsMetadata
from ring.cql.selection import RowSink, Selection
from ring.cql.types import deserialize, parse_type, serialize
from ring.errors import RequestError
from ring.messages import Reply

SCAN_ROWS_MAX = 10_000           # the node's scan and index_query page limit


def read(ex, p: PreparedStatement, plan: ReadPlan, values: list, params, level: str):
    table = ex.node.store.table(plan.keyspace, plan.table)
    selection = Selection(p.statement, table, p.json_columns or p.result_columns, plan.filters, values)
    if _is_row_read(plan, table, params):
        ops = plan.operations(values)
        if len(ops) == 1:
            return (yield from _read_row(ex, p, ops[0], selection, params, level))
    ppl = resolve(plan.per_partition_limit, values) if plan.per_partition_limit is not None else None
    if ppl is not None and ppl is not UNSET and ppl <= 0:
        raise InvalidRequest("PER PARTITION LIMIT must be strictly positive")
    statement = p.query_id[:8]
    state = paging.decode(params.paging_state, statement) if params.paging_state else paging.PagingState(statement)
    sink = RowSink(selection, plan.limit_value(values), None if ppl is UNSET else ppl, plan.distinct, plan.count,
                   state.emitted, state.partition, state.partition_rows)
    page_size = None if plan.count else params.page_size
    ops = distinct_keys(plan.operations(values))
    filtered = [c for c, _, _ in plan.filters if c in {col.name for col in table.regular}]
    for _, args in ops:                     # rows must carry the columns ALLOW FILTERING tests
        if filtered and args.get("columns") is not None:
            args["columns"] = list(dict.fromkeys(list(args["columns"]) + filtered))
    if len(ops) > 1 and p.statement.order_by:
        return (yield from _read_ordered(ex, p, plan, ops, table, selection, sink, params, level))
    i, cursor, more = state.op, state.cursor, None
    while i < len(ops) and not sink.limit_reached:
        room = None if page_size is None else page_size - len(sink.rows)
        if room == 0:
            more = paging.PagingState(statement, i, cursor, sink.emitted, sink.partition, sink.partition_rows)
            break
        op, args = ops[i]
        args = dict(args, consistency=level)
        if op == "select":
            fetch = _select_fetch(args, table, cursor, room, sink, plan)
            if fetch == 0:
                i, cursor = i + 1, None
                continue
            (reply,) = yield [(op, args)]
            rows = reply_result(reply)
            for row in rows:
                sink.offer(row)
            if fetch is not None and len(rows) >= fetch and table.clustering \
                    and rows[-1].get(table.clustering[0].name) is not None:   # not the static row alone
                cursor = [serialize(parse_type(c.cql_type), rows[-1][c.name]) for c in table.clustering]
            else:
                i, cursor = i + 1, None
        else:
            chunk = min(x for x in (SCAN_ROWS_MAX, room, _left(sink)) if x is not None)
            args["page_size"] = chunk
            if cursor is not None:
                args["paging_state"] = cursor
            (reply,) = yield [(op, args)]
            result = reply_result(reply)
            for row in result["rows"]:
                sink.offer(row)
            cursor = result.get("paging_state")
            if cursor is None:
                i += 1
    rows = _as_json(p, [[sink.counted]] if plan.count else sink.rows)
    return Rows.from_values(RowsMetadata(p.result_columns, paging_state=more.encode() if more else None,
                                         no_metadata=params.skip_metadata, specs=p.result_specs), rows)

def _read_row(ex, p: PreparedStatement, op: tuple, selection: Selection, params, level: str):
    """The common point read (one partition of a table without clustering columns, no LIMIT,
    filter or paging state): at most one row, so one page; what `_read` would answer."""
    name, args = op
    args["consistency"] = level
    (reply,) = yield [(name, args)]
    rows = _as_json(p, [selection.project(row) for row in reply_result(reply)])
    return Rows.from_values(RowsMetadata(p.result_columns, no_metadata=params.skip_metadata,
                                         specs=p.result_specs), rows)

def _read_ordered(ex, p, plan: ReadPlan, ops: list, table, selection: Selection, sink: RowSink, params, level):
    """IN with ORDER BY: every partition's rows, merged in clustering order, then LIMIT; one page
    (Cassandra refuses to page these; we answer them whole)."""
    rows = []
    for op, args in ops:
        (reply,) = yield [(op, dict(args, consistency=level))]
        admitted = [r for r in reply_result(reply) if selection.admits(r)]
        rows += admitted[:sink.ppl] if sink.ppl is not None else admitted
    rows.sort(key=lambda r: mut.clustering_prefix(table, selection.clustering(r)), reverse=plan.reverse)
    sink.ppl = None
    for row in rows:
        sink.offer(row)
    out = _as_json(p, [[sink.counted]] if plan.count else sink.rows)
    return Rows.from_values(RowsMetadata(p.result_columns, no_metadata=params.skip_metadata), out)


def _as_json(p: PreparedStatement, rows: list) -> list:
    """SELECT JSON: each row as its one `[json]` value (json_values.py)."""
    if not p.json_columns:
        return rows
    return [[json_values.row_to_json(p.json_columns, row)] for row in rows]


def _is_row_read(plan: ReadPlan, table, params) -> bool:
    return (plan.op == "select" and not table.clustering and not plan.filters and plan.limit is None
            and plan.per_partition_limit is None and not plan.distinct and not plan.count
            and not params.paging_state)


def reply_result(reply: Reply):
    if reply.error is not None:
        raise reply.error if isinstance(reply.error, (EngineError, RequestError)) else \
            RequestError(f"{type(reply.error).__name__}: {reply.error}")
    return reply.result


def _left(sink: RowSink) -> int | None:
    return None if sink.limit is None or sink.count else sink.limit - sink.emitted


def distinct_keys(ops: list) -> list:
    """`k IN (1, 1)` reads partition 1 once, as in Cassandra."""
    seen, out = set(), []
    for op, args in ops:
        key = repr(sorted(args.get("key", {}).items())) if op == "select" else None
        if key is None or key not in seen:
            seen.add(key)
            out.append((op, args))
    return out


def _select_fetch(args: dict, table, cursor, room, sink: RowSink, plan: ReadPlan) -> int | None:
    """Set the select's bounds (resuming after `cursor`) and limit; returns the limit (None: all)."""
    args.pop("limit", None)
    if cursor is not None:
        values = tuple(deserialize(parse_type(c.cql_type), v) for c, v in zip(table.clustering, cursor))
        side = "end" if args.get("reverse") else "start"
        args[side], args[f"{side}_inclusive"] = values, False
    caps = [room]
    if not plan.filters:
        caps.append(_left(sink))
        caps.append(sink.partition_room(mut.partition_key_bytes(table, args["key"])))
    caps = [c for c in caps if c is not None]
    if not caps:
        return None
    args["limit"] = fetch = max(0, min(caps))
    return fetch
