"""The `logged_batch` op: a LOGGED batch, all or nothing eventually, through the batchlog.

`logged_batch(mutations=[[op, args], ...], consistency=, timestamp=)`, each op an insert, update
or delete with the arguments of its own op (ops/data.py, ops/lwt.py; no conditions). Statements
without their own timestamp share one, the batch's. Statements on the same partition of a table
merge into one mutation. Like Cassandra, a batch of one mutation skips the batchlog (it is
atomic already) and is a plain write. Otherwise (Cassandra's StorageProxy.mutateAtomically):

1. Unavailable before anything is sent if some mutation's level cannot be met, or if no node can
   hold the batchlog entry (ring/batchlog.py `choose_endpoints`).
2. The entry (every mutation, encoded once, with a batch id and the write time) is written to the
   one or two batchlog endpoints at ONE / TWO; a timeout there is WriteTimeout(write type BATCH_LOG).
3. The mutations go to their replicas at the requested level, exactly as plain writes (down or
   silent replicas are hinted); a timeout is WriteTimeout(write type BATCH): the batchlog stays,
   and its replay finishes the batch.
4. Once every mutation met its level the client has its answer and the entries are removed, without
   waiting for the removal (a lost removal only costs a harmless replay).

Rule: the op plans (replicas, endpoints, encodings) with the node; `LoggedBatch` decides from
replies through its `BatchPart`s and the Context. Test-only: the fault `stop_after_batchlog`
(ring/faults.py) makes the coordinator go silent right after step 2, as if it died there.
"""
from __future__ import annotations

from engine import mutation as mut
from engine.errors import InvalidRequest
from engine.partition import encode_partition, merge_all
from engine.token import token as token_of
from ring import batchlog
from ring import consistency as cl
from ring.coordinator import WriteHandler
from ring.errors import UnavailableError
from ring.faults import Faults
from ring.messages import MutationRequest, Reply, Send
from ring.ops import data, lwt

MAX_BATCH_STATEMENTS = 65_535       # the native protocol's count is a [short]
BATCHLOG = -1                       # the part index of the batchlog write


def logged_batch(node, rid: int, args: dict) -> list:
    statements = args.get("mutations")
    if not isinstance(statements, (list, tuple)) or not 0 < len(statements) <= MAX_BATCH_STATEMENTS:
        raise InvalidRequest(f"logged_batch needs mutations=[[op, args], ...], 1 to {MAX_BATCH_STATEMENTS}")
    level = data.level_of(args)
    cl.validate_for_write(level)
    ts = node.new_timestamp(args.get("timestamp"))
    now_s = node.clock.wall_us() // 1_000_000
    groups: dict[tuple[str, bytes], list] = {}
    for i, statement in enumerate(statements):
        table, key, update = _update_of(node, i, statement, ts, now_s)
        groups.setdefault((table.id, key), [table, []])[1].append(update)
    mutations = [(table, key, encode_partition(merge_all(updates))) for (_, key), (table, updates) in groups.items()]
    if len(mutations) == 1:
        (table, key, payload), = mutations
        return data.coordinate_write(node, rid, table.keyspace, table, key, payload, level, ts)
    plans = []
    for table, key, payload in mutations:
        token = token_of(key)
        pending = node.pending_endpoints(table.keyspace, token)
        replicas, live, rf_by_dc, replica_dc = data.live_plan(node, table.keyspace, token, level, True, pending)
        plans.append((table, key, payload, replicas, live, rf_by_dc, replica_dc, pending))
    endpoints = batchlog.choose_endpoints(node.endpoint, node.config.rack, _local_racks(node), node.is_alive,
                                          node.rng)
    if not endpoints and level is cl.ConsistencyLevel.ANY:
        endpoints = [node.endpoint]          # Cassandra: at ANY, the coordinator's own batchlog
    if not endpoints:
        raise UnavailableError(cl.ConsistencyLevel.ONE, 1, 0)   # no live node for the batchlog
    written_at = node.clock.wall_us()
    batch_id = written_at.to_bytes(8, "big") + node.rng.getrandbits(64).to_bytes(8, "big")
    blob = batchlog.encode_entry([(table.id, key, payload) for table, key, payload in mutations])
    entry = batchlog.entry_write(node.store, batch_id, written_at, blob, now_s)
    removal = batchlog.entry_removal(node.store, batch_id, max(written_at + 1, node.new_timestamp(None)), now_s)
    node.meter.count("logged_batches")
    return LoggedBatch(node.context, rid, level, ts, plans, endpoints, entry, removal, node.hint,
                       node.config.faults).start()


def _update_of(node, i: int, statement, ts: int, now_s: int):
    """(table, partition key, Partition) of one insert, update or delete of the batch."""
    if not isinstance(statement, (list, tuple)) or len(statement) != 2 or not isinstance(statement[1], dict):
        raise InvalidRequest(f"batch statement {i} must be [op, args]")
    op, args = statement
    _, table = data.table_args(node, args)
    if args.get("if_") or args.get("if_exists") or args.get("if_not_exists"):
        raise InvalidRequest("a logged_batch takes no conditions; conditional batches are the batch op")
    if args.get("timestamp") is not None:
        ts = node.new_timestamp(args["timestamp"])
    max_value = node.store.options["max_value_bytes"]
    if op == "insert":
        return (table, *mut.build_insert(table, args.get("row") or {}, ts, now_s, args.get("ttl"), max_value))
    if op == "update":
        values = args.get("set") or {}
        if not isinstance(values, dict) or not values:
            raise InvalidRequest(f"batch statement {i}: update needs set={{column: value, ...}}")
        for name in values:
            if table.column(name).kind != "regular":
                raise InvalidRequest(f"PRIMARY KEY column '{name}' cannot be updated; pass it in key=")
        key_values = args.get("key") or {}
        return (table, mut.partition_key_bytes(table, key_values),
                lwt._update_partition(node, table, key_values, values, args.get("ttl"), ts, now_s))
    if op == "delete":
        return (table, *mut.build_delete(table, args.get("key") or {}, ts, now_s, args.get("columns"),
                                         args.get("start"), args.get("end"), args.get("start_inclusive", True),
                                         args.get("end_inclusive", True)))
    raise InvalidRequest(f"batch statement {i}: op {op!r} is not insert, update or delete")


def _local_racks(node) -> dict[str, list[str]]:
    """rack -> the ring's endpoints of this node's datacenter on it (this node included)."""
    racks: dict[str, list[str]] = {}
    dc = node.config.datacenter
    for ep in sorted(set(node.ring.endpoints) | {node.endpoint}):
        if node.snitch.datacenter(ep) == dc:
            racks.setdefault(node.snitch.rack(ep), []).append(ep)
    return racks


class LoggedBatch:
    """The coordinator of one logged batch: the batchlog write, the mutations, the removal."""

    def __init__(self, ctx, request_id: int, level, ts: int, plans: list, endpoints: list[str],
                 entry: tuple[bytes, bytes], removal: tuple[bytes, bytes], hint, faults: Faults):
        self.ctx, self.request_id, self.level, self.ts = ctx, request_id, level, ts
        self.plans, self.endpoints = plans, endpoints
        self.entry, self.removal = entry, removal
        self.hint, self.faults = hint, faults
        self.waiting = len(plans)
        self.done = False

    def start(self) -> list:
        writes = batchlog.write_handler(self.ctx, BATCHLOG, batchlog.level_for(self.endpoints), self.endpoints,
                                        "BATCH_LOG")
        writes.sent_to = set(self.endpoints)
        msg_id = self.ctx.register(batchlog.BatchPart(self, BATCHLOG, writes))
        key, payload = self.entry
        return [Send(ep, MutationRequest(msg_id, batchlog.TABLE_ID, key, payload)) for ep in self.endpoints]

    def on_part(self, index: int, reply: Reply) -> list:
        if self.done:
            return []
        if reply.error is not None:          # WriteTimeout says BATCH_LOG or BATCH (its part's write type)
            self.done = True
            return [Reply(self.request_id, error=reply.error)]
        if index == BATCHLOG:
            if self.faults.stop_after_batchlog:   # test-only: the coordinator dies here
                self.done = True
                return []
            return self._apply()
        self.waiting -= 1
        if self.waiting:
            return []
        self.done = True
        key, payload = self.removal
        return [Reply(self.request_id, result={"timestamp": self.ts})] + [
            Send(ep, MutationRequest(0, batchlog.TABLE_ID, key, payload)) for ep in self.endpoints]

    def on_part_finished(self, index: int, writes) -> list:
        if index != BATCHLOG and writes.mutation is not None:
            table, key, payload = writes.mutation
            for ep in writes.unacked():
                self.hint(ep, table, key, payload)
        return []

    def _apply(self) -> list:
        """Step 3: every mutation as a plain write at the batch's level (ops/data.py coordinate_write)."""
        ctx, out = self.ctx, []
        for i, (table, key, payload, replicas, live, rf_by_dc, replica_dc, pending) in enumerate(self.plans):
            writes = WriteHandler(i, self.level, rf_by_dc, ctx.config.datacenter, replica_dc,
                                           ctx.now_ms + ctx.config.write_request_timeout_ms, "BATCH",
                                           pending_by_dc=data._by_dc(pending, replica_dc))
            writes.result = {"timestamp": self.ts}
            if self.level is cl.ConsistencyLevel.ANY:
                writes.block_for = 1
            writes.faults = self.faults
            writes.mutation = (table, key, payload)
            writes.sent_to = set(live)
            part = batchlog.BatchPart(self, i, writes)
            msg_id = ctx.register(part)
            ctx.count("writes")
            for ep in replicas:
                if ep not in live and self.hint(ep, table, key, payload):
                    out += part.relay(writes.on_hint_stored(ep))
            out += [Send(ep, MutationRequest(msg_id, table.id, key, payload)) for ep in live]
        return out
