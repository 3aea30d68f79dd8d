"""The CQL executor, sans-IO: a statement becomes the node's client requests, their replies a RESULT.

An `Execution` runs one QUERY, EXECUTE or BATCH for a connection's `CqlSession` (its keyspace
and a reference to the node's `PreparedCache`). The driver (the CQL server, the simulator, a
test) submits the `ClientRequest`s that `start()` and `on_reply()` return to `Node.submit`, feeds
every `Reply` back, and when `done` sends `response` (a RESULT or an ERROR) and pushes `events`
(SCHEMA_CHANGE) to the connections that registered for them. Request ids come from the
injected `ids()`; nothing here touches sockets, clocks or randomness.

Rules: writes of one statement or UNLOGGED batch go out together and the statement answers VOID
once all are acknowledged (the first error wins; a batch's WriteTimeout says UNLOGGED_BATCH). A
LOGGED batch of more than one statement is one `logged_batch` op (ring/ops/batchlog.py: the
batchlog, then the mutations; its WriteTimeout says BATCH_LOG or BATCH). SELECTs are
execute_read.py's (one operation at a time, a page never overflows). system.* and system_schema.* are
answered locally (system_tables.py). DDL checks existence first: CREATE of an existing keyspace
or table is AlreadyExists unless IF NOT EXISTS (then VOID, as a no-op is in Cassandra).
"""
from __future__ import annotations

from engine.errors import AlreadyExists, EngineError, InvalidRequest
from ring.cql import cas, collection_ops, ddl_plans, responses, role_statements
from ring.cql.describe import DescribePlan
from ring.cql.execute_read import distinct_keys, read
from ring.cql.execute_read import reply_result as _result
from ring.cql.notation import UNSET as WIRE_UNSET
from ring.cql.plan import UNSET, BatchPlan, ReadPlan, SchemaPlan, UsePlan, WritePlan
from ring.cql.prepare import PreparedCache, PreparedStatement
from ring.cql.result import Prepared, Rows, RowsMetadata, SchemaChangeResult, SetKeyspace, Void
from ring.cql.system_tables import VirtualPlan, is_virtual
from ring.cql.types import deserialize
from ring.errors import ConfigurationError, RequestError, WriteTimeout
from ring.messages import ClientRequest, Reply


class CqlSession:
    """One connection's state: the current keyspace (USE), the logged-in role and the node's
    prepared statements."""

    def __init__(self, prepared: PreparedCache, keyspace: str | None = None):
        self.prepared = prepared
        self.keyspace = keyspace
        self.user: str | None = None          # the logged-in role (PasswordAuthenticator), auth.py

    def prepare(self, node, query: str, keyspace: str | None = None) -> PreparedStatement:
        return self.prepared.prepare(query, keyspace or self.keyspace, node.store.keyspaces)


def prepare_result(node, session: CqlSession, query: str, keyspace: str | None = None):
    """The answer to PREPARE: a Prepared result, or the ERROR."""
    try:
        p = session.prepare(node, query, keyspace)
    except (EngineError, RequestError) as e:
        return responses.error_for(e)
    return Prepared(p.query_id, p.bind, p.pk_indexes, RowsMetadata(p.result_columns, no_metadata=not p.result_columns),
                    p.result_metadata_id)


def bind_values(prepared: PreparedStatement, raw, names=None) -> list:
    """Wire [value]s (bytes, None = null, notation.UNSET) to Python values by the bind specs."""
    specs = prepared.bind
    if names is not None:
        position = {}
        for i, spec in enumerate(specs):
            position.setdefault(spec.name, i)
        ordered = [WIRE_UNSET] * len(specs)
        for name, value in zip(names, raw):
            if name not in position:
                raise InvalidRequest(f"Invalid bind variable name {name}: the statement has no such marker")
            ordered[position[name]] = value
        raw = ordered
    if len(raw) != len(specs):
        raise InvalidRequest(f"There were {len(specs)} markers(?) in CQL but {len(raw)} bound variables")
    out = []
    for spec, value in zip(specs, raw):
        if value is WIRE_UNSET:
            out.append(UNSET)
        elif value is None:
            out.append(None)
        else:
            try:
                out.append(deserialize(spec.type, value))
            except InvalidRequest as e:
                raise InvalidRequest(f"Invalid value for {spec.name} of type {spec.type}: {e}")
    return out


class Execution:
    """One statement's run. `start()` -> requests; `on_reply(reply)` -> more requests; then `done`."""

    def __init__(self, node, session: CqlSession, ids, body):
        self.node, self.session, self._ids = node, session, ids
        self.done = False
        self.response = None
        self.events: list[responses.SchemaChange] = []
        self._gen = self._guard(body)
        self._waiting: dict[int, int] = {}
        self._replies: list = []

    @classmethod
    def query(cls, node, session: CqlSession, query: str, params, ids) -> "Execution":
        def body(ex):
            p = session.prepare(node, query, params.keyspace)
            return (yield from ex._run(p, bind_values(p, params.values, params.names), params))
        return cls(node, session, ids, body)

    @classmethod
    def execute(cls, node, session: CqlSession, query_id: bytes, params, ids) -> "Execution":
        def body(ex):
            p = session.prepared.get(query_id)
            if p is None:
                return responses.Unprepared(message=f"Prepared query with ID {query_id.hex()} not found (either the "
                                            "query was not prepared on this host (maybe the host has been restarted?)"
                                            " or you have prepared too many queries)", query_id=query_id)
            return (yield from ex._run(p, bind_values(p, params.values, params.names), params))
        return cls(node, session, ids, body)

    @classmethod
    def batch(cls, node, session: CqlSession, batch, ids) -> "Execution":
        """A protocol BATCH (requests.Batch): query strings and prepared ids, each with its values."""
        def body(ex):
            ops, conditional = [], []
            for statement in batch.statements:
                if isinstance(statement.query_or_id, bytes):
                    p = session.prepared.get(statement.query_or_id)
                    if p is None:
                        return responses.Unprepared(message=f"Prepared query with ID {statement.query_or_id.hex()} "
                                                    "not found", query_id=statement.query_or_id)
                else:
                    p = session.prepare(node, statement.query_or_id, batch.keyspace)
                if not isinstance(p.plan, (WritePlan, cas.CasPlan)):
                    raise InvalidRequest("Invalid statement in batch: only UPDATE, INSERT and DELETE statements are "
                                         "allowed.")
                values = bind_values(p, statement.values)
                conditional.append((p, values))
                if isinstance(p.plan, WritePlan):
                    ops += p.plan.operations(values)
            if any(isinstance(p.plan, cas.CasPlan) for p, _ in conditional):
                # the protocol's default timestamp (drivers send one) is ignored, as by Cassandra:
                # a conditional update is stamped with its ballot; only USING TIMESTAMP is refused
                plans = [p.plan if isinstance(p.plan, cas.CasPlan) else cas.as_cas(p.statement, p.plan)
                         for p, _ in conditional]
                plan = cas.prepare_cas_batch(plans, batch.keyspace)
                args = {"keyspace": plans[0].keyspace, "table": plans[0].table,
                        "statements": [pl.statement(v) for pl, (_, v) in zip(plans, conditional)]}
                return (yield from ex._cas(plan, [("batch", args)], batch.consistency.name, batch.serial_consistency))
            return (yield from ex._write(ops, batch.consistency.name, batch.timestamp, True,
                                         batch.batch_type.name == "LOGGED"))
        return cls(node, session, ids, body)

    # -- the driver's side ---------------------------------------------------------------------

    def start(self) -> list[ClientRequest]:
        return self._advance(None)

    def on_reply(self, reply: Reply) -> list[ClientRequest]:
        index = self._waiting.pop(reply.request_id, None)
        if index is None:
            return []                   # not ours, or a duplicate
        self._replies[index] = reply
        return [] if self._waiting else self._advance(self._replies)

    def _advance(self, value) -> list[ClientRequest]:
        calls = self._gen.send(value)
        while calls == []:
            calls = self._gen.send([])
        if calls is None:
            return []
        self._replies = [None] * len(calls)
        out = []
        for i, (op, args) in enumerate(calls):
            rid = self._ids()
            self._waiting[rid] = i
            out.append(ClientRequest(rid, op, args))
        return out

    def _guard(self, body):
        """Runs `body`; its result or its error becomes `response`; then yields None forever."""
        try:
            self.response = yield from body(self)
        except (EngineError, RequestError, ConfigurationError) as e:
            self.response = responses.error_for(e)
        self.done = True
        while True:
            yield None

    # -- statements ----------------------------------------------------------------------------

    def _run(self, p: PreparedStatement, values: list, params):
        plan = p.plan
        level = params.consistency.name
        if isinstance(plan, UsePlan):
            if plan.keyspace not in self.node.store.keyspaces and not is_virtual(plan.keyspace):
                raise InvalidRequest(f"Keyspace '{plan.keyspace}' does not exist")
            self.session.keyspace = plan.keyspace
            return SetKeyspace(plan.keyspace)
        if isinstance(plan, SchemaPlan):
            return (yield from self._ddl(plan))
        if isinstance(plan, role_statements.RolePlan):
            return (yield from role_statements.run(self.session, plan.statement, params.skip_metadata))
        if isinstance(plan, (cas.CasPlan, cas.CasBatchPlan)):
            return (yield from self._cas(plan, plan.operations(values), level, params.serial_consistency))
        if level in ("SERIAL", "LOCAL_SERIAL") and isinstance(plan, ReadPlan) and (
                plan.op != "select" or len(distinct_keys(plan.operations(values))) > 1):
            raise InvalidRequest("SERIAL/LOCAL_SERIAL consistency may only be requested for one partition at a time")
        if isinstance(plan, (WritePlan, BatchPlan)):
            return (yield from self._write(plan.operations(values), level, params.timestamp,
                                           isinstance(plan, BatchPlan),
                                           isinstance(plan, BatchPlan) and plan.kind == "LOGGED"))
        if isinstance(plan, (VirtualPlan, DescribePlan)):
            return Rows.from_values(RowsMetadata(p.result_columns, no_metadata=params.skip_metadata),
                                    plan.run(self.node, values))
        assert isinstance(plan, ReadPlan), plan
        return (yield from read(self, p, plan, values, params, level))

    def _write(self, ops: list, level: str, timestamp: int | None, batch: bool, logged: bool = False):
        yield from self._settle_lists(ops, level)
        for _, args in ops:
            args["consistency"] = level
            if timestamp is not None:
                args.setdefault("timestamp", timestamp)
        if logged and len(ops) > 1:   # the node's logged_batch op (ring/ops/batchlog.py): one timestamp,
            (reply,) = yield [("logged_batch", {"mutations": [[op, args] for op, args in ops],  # the batchlog
                                                "consistency": level, "timestamp": timestamp})]
            _result(reply)             # its WriteTimeout already says BATCH_LOG or BATCH
            return Void()
        replies = yield ops
        for reply in replies:
            if isinstance(reply.error, WriteTimeout) and batch:
                e = reply.error
                raise WriteTimeout(e.level, e.received, e.block_for, "UNLOGGED_BATCH")
            _result(reply)
        return Void()

    def _cas(self, plan, ops: list, level: str, serial):
        """A conditional statement or batch: one Paxos round on the node (ring/ops/lwt.py); the
        answer is the [applied] ROWS result."""
        (op, args), = ops
        args.update(consistency=level, serial_consistency=serial.name if serial is not None else "SERIAL")
        table = self.node.store.table(args["keyspace"], args["table"])
        (reply,) = yield [(op, args)]
        return cas.result_rows(table, plan, _result(reply))

    def _settle_lists(self, ops: list, level: str):
        """List operations by index or by value read the row's list first (collection_ops.py)."""
        for _, args in ops:
            columns = collection_ops.pending_reads(args)
            if not columns:
                continue
            table = self.node.store.table(args["keyspace"], args["table"])
            given = args["row"] if "row" in args else args["key"]
            key = {c.name: given[c.name] for c in table.partition_key + table.clustering if c.name in given}
            (reply,) = yield [("get", {"keyspace": table.keyspace, "table": table.name, "key": key,
                                       "columns": columns, "paths": True,
                                       "consistency": "ONE" if level == "ANY" else level})]
            row = _result(reply) or {}
            if "row" in args:
                for name in columns:
                    args["row"][name] = collection_ops.settle(args["row"][name], row.get(name), name)
            else:
                args["columns"] = [c if isinstance(c, str) or not collection_ops.needs_read(c[1]) else
                                   (c[0], collection_ops.settle(c[1], row.get(c[0]), c[0])) for c in args["columns"]]

    def _ddl(self, plan: SchemaPlan):
        args = plan.args
        keyspaces = self.node.store.keyspaces
        if plan.op == "truncate":  # every node drops the table's rows; no schema change (Cassandra's VOID)
            (reply,) = yield [("truncate", dict(args))]
            _result(reply)
            return Void()
        if plan.op in ("alter_table", "alter_keyspace"):
            return (yield from self._alter(plan))
        if plan.op in ("create_keyspace", "drop_keyspace"):
            exists = args["name"] in keyspaces
            change = responses.SchemaChange("CREATED" if plan.op == "create_keyspace" else "DROPPED", "KEYSPACE",
                                            args["name"])
        else:
            ks = keyspaces.get(args["keyspace"])
            if ks is None:
                raise InvalidRequest(f"Keyspace '{args['keyspace']}' doesn't exist")
            if plan.op in ("create_table", "drop_table"):
                exists = args["name"] in ks.tables
                change = responses.SchemaChange("CREATED" if plan.op == "create_table" else "DROPPED", "TABLE",
                                                args["keyspace"], args["name"])
            elif plan.op == "create_index":
                exists = bool(args.get("name")) and any(t.index(args["name"]) for t in ks.tables.values())
                change = responses.SchemaChange("UPDATED", "TABLE", args["keyspace"], args["table"])
            else:
                owner = next((t.name for t in ks.tables.values() if t.index(args["name"]) is not None), None)
                exists = owner is not None
                change = responses.SchemaChange("UPDATED", "TABLE", args["keyspace"], owner or "")
        if plan.op.startswith("create") and exists:
            if args.get("if_not_exists"):
                return Void()
            if plan.op == "create_index":
                raise InvalidRequest(f"Index '{args['name']}' already exists")
            raise AlreadyExists(args["keyspace"] if plan.op != "create_keyspace" else args["name"],
                                args["name"] if plan.op == "create_table" else "")
        if plan.op.startswith("drop") and not exists:
            if args.get("if_exists"):
                return Void()
            what = {"drop_keyspace": "keyspace", "drop_table": "table", "drop_index": "index"}[plan.op]
            raise InvalidRequest(f"Cannot drop non existing {what} '{args['name']}'")
        (reply,) = yield [(plan.op, dict(args))]
        _result(reply)
        if plan.op.startswith("drop") or plan.op == "create_index":
            self.session.prepared.invalidate(change.keyspace, change.name or None)
        self.events.append(change)
        return SchemaChangeResult(change)

    def _alter(self, plan: SchemaPlan):
        """ALTER TABLE / KEYSPACE: UPDATED TABLE / KEYSPACE; a table's prepared statements are forgotten."""
        target = ddl_plans.alter_target(plan, self.node.store.keyspaces)
        if target is None:
            return Void()
        (reply,) = yield [(plan.op, dict(plan.args))]
        _result(reply)
        keyspace, table = target
        change = responses.SchemaChange("UPDATED", "TABLE" if table else "KEYSPACE", keyspace, table)
        if table:
            self.session.prepared.invalidate(keyspace, table)
        self.events.append(change)
        return SchemaChangeResult(change)


__all__ = ["AlreadyExists", "CqlSession", "Execution", "bind_values", "prepare_result"]
