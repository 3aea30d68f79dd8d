"""Lightweight-transaction ops: conditional insert/update/delete and SERIAL reads (docs/lwt.md).

Rule: these wrap the plain data ops. `insert(if_not_exists=True)`, `update(if_={...})` /
`update(if_exists=True)`, `delete(if_exists=True | if_={...})` run a Paxos round
(ring/paxos/proposer.py) at `serial_consistency` (SERIAL, the default, or LOCAL_SERIAL) and
commit at `consistency` (the write's level; ANY allowed, SERIAL not); `get`/`select` at
`consistency="SERIAL"|"LOCAL_SERIAL"` run a round that finishes any in-progress proposal and
read from the promise quorum. Without a condition or a serial level each op is the plain one
(ops/data.py). The result of a conditional write is Cassandra's `[applied]` row:
`{"applied": True}`, or `{"applied": False, ...current values}`.

`batch` is a BATCH on one table: several insert/update/delete statements, each with its own
optional condition. With a condition it must stay on one partition (Cassandra's "Batch with
conditions cannot span multiple partitions") and is one Paxos round: every condition is decided
on the same promise-quorum read and the statements are applied together as one update, stamped
with the ballot's micros, or not at all. Without conditions it is one write of one partition.

Unavailable is raised before anything is sent when fewer participants than the serial quorum
(or fewer replicas than the commit level needs) are alive.
"""
from __future__ import annotations

from engine import mutation as mut
from engine import row_decode
from engine.errors import InvalidRequest
from engine.partition import encode_partition, live_row, live_rows, merge_all
from engine.token import token as token_of
from ring import consistency as cl
from ring.coordinator import WriteHandler
from ring.errors import UnavailableError
from ring.messages import CommitRequest, Send
from ring.ops import data
from ring.ops.data import _by_dc, level_of, live_plan, table_args
from ring.paxos import conditions
from ring.paxos.proposer import Proposer

SERIAL_LEVELS = ("SERIAL", "LOCAL_SERIAL")
MAX_BATCH_STATEMENTS = 256


def serial_level(name) -> str:
    level = str(name or "SERIAL").strip().upper()
    if level not in SERIAL_LEVELS:
        raise InvalidRequest(f"serial_consistency must be SERIAL or LOCAL_SERIAL, got {name!r}")
    return level


def _is_serial(args: dict) -> bool:
    return str(args.get("consistency") or "").strip().upper() in SERIAL_LEVELS


# -- the ops ---------------------------------------------------------------------------------------

def insert(node, rid: int, args: dict) -> list:
    if args.get("if_") or args.get("if_exists"):
        raise InvalidRequest("INSERT takes only if_not_exists=True; use update(if_=...) for conditions")
    if not args.get("if_not_exists"):
        return data.insert(node, rid, args)
    keyspace, table = table_args(node, args)
    row = args.get("row") or {}
    ttl = args.get("ttl")

    def build(micros: int, now_s: int) -> bytes:
        return mut.build_insert_encoded(table, row, micros, now_s, ttl, node.store.options["max_value_bytes"])[2]
    return _cas(node, rid, args, keyspace, table, row, conditions.parse(table, if_not_exists=True), build)


def update(node, rid: int, args: dict) -> list:
    """UPDATE: the `set` columns of the row `key`, without a row marker (a row with only nulls
    then no longer exists, as in Cassandra)."""
    keyspace, table = table_args(node, args)
    key_values = args.get("key") or {}
    values = args.get("set") or {}
    if not isinstance(values, dict) or not values:
        raise InvalidRequest("update needs set={column: value, ...}")
    for name in values:
        if table.column(name).kind != "regular":
            raise InvalidRequest(f"PRIMARY KEY column '{name}' cannot be updated; pass it in key=")
    ttl = args.get("ttl")

    def build(micros: int, now_s: int) -> bytes:
        return encode_partition(_update_partition(node, table, key_values, values, ttl, micros, now_s))
    if not (args.get("if_") or args.get("if_exists")):
        if args.get("if_not_exists"):
            raise InvalidRequest("UPDATE takes if_={...} or if_exists=True, not if_not_exists")
        ts = node.new_timestamp(args.get("timestamp"))
        key = mut.partition_key_bytes(table, key_values)
        return data.coordinate_write(node, rid, keyspace, table, key, build(ts, node.clock.wall_us() // 1_000_000),
                                     level_of(args), ts)
    cond = conditions.parse(table, args.get("if_"), bool(args.get("if_exists")))
    return _cas(node, rid, args, keyspace, table, key_values, cond, build)


def _update_partition(node, table, key_values: dict, values: dict, ttl, micros: int, now_s: int):
    _, p = mut.build_insert(table, {**key_values, **values}, micros, now_s, ttl, node.store.options["max_value_bytes"])
    for row in p.rows.values():
        row.cells.pop(0, None)  # no row marker: UPDATE is not INSERT
    return p


def delete(node, rid: int, args: dict) -> list:
    if not (args.get("if_") or args.get("if_exists")):
        return data.delete(node, rid, args)
    keyspace, table = table_args(node, args)
    key_values = args.get("key") or {}
    columns = args.get("columns")

    def build(micros: int, now_s: int) -> bytes:
        return encode_partition(mut.build_delete(table, key_values, micros, now_s, columns)[1])
    cond = conditions.parse(table, args.get("if_"), bool(args.get("if_exists")))
    return _cas(node, rid, args, keyspace, table, key_values, cond, build)


def batch(node, rid: int, args: dict) -> list:
    """BATCH: `statements` = [{"op": "insert", "row", "ttl", "if_not_exists"} | {"op": "update", "key",
    "set", "ttl", "if_", "if_exists"} | {"op": "delete", "key", "columns", "if_", "if_exists"}, ...]."""
    keyspace, table = table_args(node, args)
    statements = args.get("statements")
    if not isinstance(statements, (list, tuple)) or not 0 < len(statements) <= MAX_BATCH_STATEMENTS:
        raise InvalidRequest(f"batch needs statements=[...], 1 to {MAX_BATCH_STATEMENTS} of them")
    parsed = [_batch_statement(node, table, i, s) for i, s in enumerate(statements)]
    conditional = any(cond is not None for _, cond, _ in parsed)
    if any(s.get("table", table.name) != table.name for s in statements):
        raise InvalidRequest("Batch with conditions cannot span multiple tables" if conditional else
                             "a batch must stay on one table (multi-table logged batches are not built)")
    keys = {mut.partition_key_bytes(table, kv) for kv, _, _ in parsed}
    if len(keys) > 1:
        raise InvalidRequest("Batch with conditions cannot span multiple partitions" if conditional else
                             "a batch without conditions must stay on one partition (multi-partition "
                             "logged batches are not built); send one write per partition")
    key = keys.pop()

    def build(micros: int, now_s: int) -> bytes:
        return encode_partition(merge_all([b(micros, now_s) for _, _, b in parsed]))
    build(0, node.clock.wall_us() // 1_000_000)   # invalid values: InvalidRequest before anything is sent
    if not conditional:
        ts = node.new_timestamp(args.get("timestamp"))
        return data.coordinate_write(node, rid, keyspace, table, key, build(ts, node.clock.wall_us() // 1_000_000),
                                     level_of(args), ts)
    if args.get("timestamp") is not None:
        raise InvalidRequest("Cannot provide custom timestamp for conditional BATCH")
    return _cas_batch(node, rid, args, keyspace, table, key, parsed, build)


def _batch_statement(node, table, i: int, s) -> tuple:
    """(key values, condition or None, build(micros, now_s) -> Partition) of one batch statement."""
    if not isinstance(s, dict) or s.get("op") not in ("insert", "update", "delete"):
        raise InvalidRequest(f"batch statement {i} must be a dict with op insert, update or delete")
    op, ttl, cond = s["op"], s.get("ttl"), None
    if s.get("if_") or s.get("if_exists") or s.get("if_not_exists"):
        if op == "insert" and (s.get("if_") or s.get("if_exists")):
            raise InvalidRequest(f"batch statement {i}: INSERT takes only if_not_exists=True")
        if op != "insert" and s.get("if_not_exists"):
            raise InvalidRequest(f"batch statement {i}: {op.upper()} takes if_={{...}} or if_exists=True")
        cond = conditions.parse(table, s.get("if_"), bool(s.get("if_exists")), bool(s.get("if_not_exists")))
    if op == "insert":
        row = s.get("row") or {}
        return row, cond, lambda micros, now_s: mut.build_insert(table, row, micros, now_s, ttl,
                                                                 node.store.options["max_value_bytes"])[1]
    key_values = s.get("key") or {}
    if op == "update":
        values = s.get("set") or {}
        if not isinstance(values, dict) or not values:
            raise InvalidRequest(f"batch statement {i}: update needs set={{column: value, ...}}")
        for name in values:
            if table.column(name).kind != "regular":
                raise InvalidRequest(f"PRIMARY KEY column '{name}' cannot be updated; pass it in key=")
        return key_values, cond, lambda micros, now_s: _update_partition(node, table, key_values, values, ttl,
                                                                         micros, now_s)
    columns = s.get("columns")
    return key_values, cond, lambda micros, now_s: mut.build_delete(table, key_values, micros, now_s, columns)[1]


def _cas_batch(node, rid: int, args: dict, keyspace: str, table, key: bytes, parsed: list, build) -> list:
    """One Paxos round for a conditional batch: every row's conditions on one read, all or nothing."""
    level = serial_level(args.get("serial_consistency"))
    if _is_serial(args):
        raise InvalidRequest(f"{args['consistency']} is not supported as conditional update commit consistency; "
                             "pass it as serial_consistency=")
    commit_level = level_of(args)
    by_row: dict[bytes, list] = {}                       # clustering bytes -> the conditions on that row
    for key_values, cond, _ in parsed:
        if cond is not None:
            conds = by_row.setdefault(_row_bounds(table, key_values)[0], [])
            if conds and {c.kind for c in conds} | {cond.kind} not in ({"columns"}, {"exists"}, {"not_exists"}):
                raise InvalidRequest("Cannot mix IF conditions, IF EXISTS and IF NOT EXISTS for the same row")
            conds.append(cond)
    lo = min(by_row) if table.clustering else b""
    his = [mut.successor(ck) for ck in by_row] if table.clustering else [None]
    hi = None if None in his else max(his)
    pk_values = row_decode.decode_key(table, key)
    key_names = [c.name for c in table.partition_key] + [c.name for c in table.clustering]

    def decide(current, micros: int):
        now_s = node.clock.wall_us() // 1_000_000
        rows, applied = [], True
        for ck, conds in by_row.items():
            row = _current_row(table, current, pk_values, ck, None, now_s, conds[0].kind == "columns")
            applied &= all(conditions.applies(c, row) for c in conds)
            if row is not None:
                merged = conditions.Condition(conds[0].kind, tuple(c for cond in conds for c in cond.columns))
                rows.append(conditions.not_applied(merged, row, key_names))
        if not applied:
            return None, {"applied": False, "rows": rows}
        return build(micros, now_s), {"applied": True}

    def commit(ballot: bytes, update: bytes, result: dict) -> list:
        return _commit(node, rid, keyspace, table, key, ballot, update, commit_level, result)

    if commit_level is not cl.ConsistencyLevel.ANY:
        live_plan(node, keyspace, token_of(key), commit_level, True, node.pending_endpoints(keyspace, token_of(key)))
    node.meter.count("cas_writes")
    return _start(node, rid, keyspace, table, key, lo, hi, level, decide, commit, is_read=False)


def get(node, rid: int, args: dict) -> list:
    return serial_read(node, rid, args, exact=True) if _is_serial(args) else data.get(node, rid, args)


def select(node, rid: int, args: dict) -> list:
    return serial_read(node, rid, args, exact=False) if _is_serial(args) else data.select(node, rid, args)


# -- the rounds ------------------------------------------------------------------------------------

def _current_row(table, current, pk_values: dict, lo: bytes, hi: bytes | None, now_s: int, statics: bool):
    """The row a condition is decided on: the row at `lo` (its static cells shown), the static
    row itself when lo is b"" on a table with clustering (a statement on static columns only),
    or, for column conditions, the static row when the row does not exist (a condition on a
    static column holds against the partition's static value)."""
    if current is None:
        return None
    if not lo and table.clustering:
        cells = live_row(current, b"", now_s)
        return row_decode.row_dict(table, pk_values, b"", cells) if cells else None
    cells = live_row(current, lo, now_s)
    if not cells and statics and table.statics:
        cells, lo = live_row(current, b"", now_s), b""
    return row_decode.row_dict(table, pk_values, lo, cells) if cells else None


def _row_bounds(table, key_values: dict) -> tuple[bytes, bytes | None]:
    """The clustering slice a conditional statement reads: its row; b"" up to b"\x00" (the static
    row alone) when it names no clustering value on a table with static columns."""
    if not table.clustering:
        return b"", None
    missing = [c.name for c in table.clustering if c.name not in key_values]
    if missing and table.statics and len(missing) == len(table.clustering):
        return b"", b"\x00"
    if missing:
        raise InvalidRequest(f"a conditional write needs the full primary key; missing {missing}")
    lo = mut.clustering_prefix(table, key_values)
    return lo, mut.successor(lo)


def _cas(node, rid: int, args: dict, keyspace: str, table, key_values: dict, cond, build) -> list:
    level = serial_level(args.get("serial_consistency"))
    if _is_serial(args):
        raise InvalidRequest(f"{args['consistency']} is not supported as conditional update commit consistency; "
                             "pass it as serial_consistency=")
    commit_level = level_of(args)
    key = mut.partition_key_bytes(table, key_values)
    lo, hi = _row_bounds(table, key_values)
    pk_values = {c.name: key_values[c.name] for c in table.partition_key}
    key_names = [c.name for c in table.partition_key] + [c.name for c in table.clustering]

    if not lo and table.clustering:
        build(0, node.clock.wall_us() // 1_000_000)    # statics only: InvalidRequest before anything is sent

    def decide(current, micros: int):
        now_s = node.clock.wall_us() // 1_000_000
        row = _current_row(table, current, pk_values, lo, hi, now_s, cond.kind == "columns")
        if not conditions.applies(cond, row):
            return None, conditions.not_applied(cond, row, key_names)
        return build(micros, now_s), {"applied": True}

    def commit(ballot: bytes, update: bytes, result: dict) -> list:
        return _commit(node, rid, keyspace, table, key, ballot, update, commit_level, result)

    if commit_level is not cl.ConsistencyLevel.ANY:  # the commit's level, checked before anything is sent
        live_plan(node, keyspace, token_of(key), commit_level, True, node.pending_endpoints(keyspace, token_of(key)))
    node.meter.count("cas_writes")
    return _start(node, rid, keyspace, table, key, lo, hi, level, decide, commit, is_read=False)


def serial_read(node, rid: int, args: dict, exact: bool) -> list:
    """A read at SERIAL / LOCAL_SERIAL: a Paxos round (finishing what is in progress), no proposal."""
    level = serial_level(args.get("consistency"))
    if node.config.faults.serial_read_plain:  # canary: no Paxos round at all
        plain = dict(args, consistency="ONE" if level == "SERIAL" else "LOCAL_ONE")
        return data.get(node, rid, plain) if exact else data.select(node, rid, plain)
    keyspace, table = table_args(node, args)
    key_values = args.get("key") or {}
    key = mut.partition_key_bytes(table, key_values)
    if exact:
        lo, hi = _row_bounds(table, key_values)
    else:
        lo, hi = mut.slice_bounds(table, args.get("start"), args.get("end"), args.get("start_inclusive", True),
                                  args.get("end_inclusive", True))
    columns = args.get("columns")
    limit = 1 if exact else args.get("limit")
    reverse, writetime = bool(args.get("reverse")), bool(args.get("writetime"))
    pk_values = {c.name: key_values[c.name] for c in table.partition_key}

    def decide(current, micros: int):
        rows = []
        if current is not None:
            now_s = node.clock.wall_us() // 1_000_000
            for ck, cells in live_rows(current, now_s, lo, hi, reverse):
                rows.append(row_decode.row_dict(table, pk_values, ck, cells, columns, writetime,
                                         ttl_now=now_s if args.get("ttl") else None))
                if limit is not None and len(rows) >= limit:
                    break
        return None, ((rows[0] if rows else None) if exact else rows)

    node.meter.count("serial_reads")
    return _start(node, rid, keyspace, table, key, lo, hi, level, decide, None, is_read=True)


def _participants(node, keyspace: str, token: int, level: str):
    """Cassandra's Paxos participants: natural plus pending replicas (the local DC's only for
    LOCAL_SERIAL); a quorum of the configured RF plus every pending one must promise and accept."""
    natural = node.replicas(keyspace, token)
    pending = list(node.pending_endpoints(keyspace, token))
    rf_by_dc = node.rf_by_dc(keyspace)   # the configured RF: a node that sees too small a ring
    rf = sum(rf_by_dc.values())          # (just restarted, gossip not settled) is Unavailable
    if level == "LOCAL_SERIAL":
        dc = node.config.datacenter
        natural = [ep for ep in natural if node.snitch.datacenter(ep) == dc]
        pending = [ep for ep in pending if node.snitch.datacenter(ep) == dc]
        rf = rf_by_dc.get(dc, 0)
    required = cl.quorum_for(rf) + len(pending)
    live = [ep for ep in natural + pending if node.is_alive(ep)]
    if len(live) < required:
        raise UnavailableError(level, required, len(live))
    return live, required


def _start(node, rid, keyspace, table, key, lo, hi, level, decide, commit, is_read: bool) -> list:
    token = token_of(key)
    _participants(node, keyspace, token, level)  # Unavailable before anything is sent
    config = node.config
    proposer = Proposer(node.context, rid, table=table, key=key, lo=lo, hi=hi, level=level,
                        plan=lambda: _participants(node, keyspace, token, level), decide=decide, commit=commit,
                        ballots=node.ballots, rng=node.rng,
                        deadline_ms=node.now_ms + config.cas_contention_timeout_ms,
                        round_timeout_ms=config.write_request_timeout_ms, is_read=is_read, faults=config.faults)
    return proposer.start()


def _commit(node, rid: int, keyspace: str, table, key: bytes, ballot: bytes, update: bytes, level, result) -> list:
    """The decided update to every replica at the write's commit level, answered by a WriteHandler
    (write type CAS): its acknowledgement is the client's "applied"."""
    token = token_of(key)
    node.meter.count("paxos_round_trips")   # the commit: the fourth exchange of an uncontended CAS
    pending = list(node.pending_endpoints(keyspace, token))
    replicas = node.replicas(keyspace, token) + pending
    rf_by_dc = node.rf_by_dc(keyspace)
    replica_dc = {ep: node.snitch.datacenter(ep) for ep in replicas}
    live = [ep for ep in replicas if node.is_alive(ep)]
    handler = WriteHandler(rid, level, rf_by_dc, node.config.datacenter, replica_dc,
                           node.now_ms + node.config.write_request_timeout_ms, write_type="CAS",
                           pending_by_dc=_by_dc(pending, replica_dc))
    handler.result = result
    if level is cl.ConsistencyLevel.ANY:
        handler.block_for = 1
    handler.faults = node.config.faults
    msg_id = node.register_handler(handler)
    handler.mutation = (table, key, update)   # replicas that never acknowledge get it as a hint
    handler.sent_to = set(live)
    effects = []
    for ep in replicas:
        if ep not in live and node.hint(ep, table, key, update):
            effects += handler.on_hint_stored(ep)
    return effects + [Send(ep, CommitRequest(msg_id, table.id, key, ballot, update)) for ep in live]
