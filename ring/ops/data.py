"""Data operations a client sends a coordinator: insert, delete, get, select, scan, index_query.

Rule: an op validates its arguments, builds the mutation (encoded here, once: the replicas log
these bytes) or the read, and starts a coordinator handler (ring/coordinator.py,
ring/index_query.py); it returns the handler's first effects. The
replica plan (`live_plan`) is computed once per request: natural replicas (plus pending ones for
writes), the live ones among them, and the level's arithmetic; UnavailableError is raised before
anything is sent if too few are alive. Each op is `op(node, request_id, args) -> effects`.
"""
from __future__ import annotations

from engine import mutation as mut
from engine import row_decode
from engine.errors import InvalidRequest
from engine.partition import encode_partition, live_rows
from engine.schema import Table
from engine.token import MAX_TOKEN, MIN_TOKEN, token as token_of
from ring import consistency as cl
from ring import index_query, speculative_retry
from ring.coordinator import ReadHandler, ScanHandler, WriteHandler
from ring.errors import UnavailableError
from ring.messages import MutationRequest, Send, packb, unpackb


def table_args(node, args: dict) -> tuple[str, Table]:
    keyspace = args.get("keyspace")
    if not keyspace:
        raise InvalidRequest("no keyspace given: pass keyspace= or connect(keyspace)")
    return keyspace, node.store.table(keyspace, args.get("table"))


def level_of(args: dict, default: str = "ONE"):
    return cl.ConsistencyLevel.parse(str(args.get("consistency") or default))


def insert(node, rid: int, args: dict) -> list:
    keyspace, table = table_args(node, args)
    ts = node.new_timestamp(args.get("timestamp"))
    key, _, payload = mut.build_insert_encoded(table, args.get("row") or {}, ts, node.clock.wall_us() // 1_000_000,
                                               args.get("ttl"), node.store.options["max_value_bytes"])
    return coordinate_write(node, rid, keyspace, table, key, payload, level_of(args), ts)


def delete(node, rid: int, args: dict) -> list:
    keyspace, table = table_args(node, args)
    ts = node.new_timestamp(args.get("timestamp"))
    key, update = mut.build_delete(table, args.get("key") or {}, ts, node.clock.wall_us() // 1_000_000,
                                   args.get("columns"), args.get("start"), args.get("end"),
                                   args.get("start_inclusive", True), args.get("end_inclusive", True))
    return coordinate_write(node, rid, keyspace, table, key, encode_partition(update), level_of(args), ts)


def select(node, rid: int, args: dict, exact: bool = False) -> list:
    keyspace, table = table_args(node, args)
    key_values = args.get("key") or {}
    pk = mut.partition_key_bytes(table, key_values)
    columns = args.get("columns")
    if columns is not None:
        for c in columns:
            table.column(c)
    if exact and table.clustering:
        missing = [c.name for c in table.clustering if c.name not in key_values]
        if missing:
            raise InvalidRequest(f"get needs the full primary key; missing {missing}. Use select for slices")
        lo = mut.clustering_prefix(table, key_values)
        hi = mut.successor(lo)
    else:
        lo, hi = mut.slice_bounds(table, args.get("start"), args.get("end"), args.get("start_inclusive", True),
                                  args.get("end_inclusive", True))
    limit = 1 if exact else args.get("limit")
    reverse = bool(args.get("reverse"))
    writetime = bool(args.get("writetime"))
    paths = bool(args.get("paths"))         # lists as [(path, value), ...]: CQL's l[i] = v reads them
    pk_values = {c.name: key_values[c.name] for c in table.partition_key}
    now_s = node.clock.wall_us() // 1_000_000
    ttl_now = now_s if args.get("ttl") else None    # 'ttl(col)': seconds left at the node's clock

    def finish(p):
        rows = []
        if p is not None:
            for ck, cells in live_rows(p, now_s, lo, hi, reverse):
                rows.append(row_decode.row_dict(table, pk_values, ck, cells, columns, writetime, paths, ttl_now))
                if limit is not None and len(rows) >= limit:
                    break
        if exact:
            return rows[0] if rows else None
        return rows

    return coordinate_read(node, rid, keyspace, table, pk, lo, hi, level_of(args), finish)


def get(node, rid: int, args: dict) -> list:
    return select(node, rid, args, exact=True)


def scan(node, rid: int, args: dict) -> list:
    keyspace, table = table_args(node, args)
    level = level_of(args)
    cl.validate_for_range_read(level)
    page_size = args.get("page_size") or 1000
    if not isinstance(page_size, int) or page_size < 1 or page_size > 10_000:
        raise InvalidRequest(f"page_size must be an integer from 1 to 10000, got {page_size!r}")
    state = args.get("paging_state")
    resume = tuple(unpackb(state)) if state else None
    columns = args.get("columns")
    writetime = bool(args.get("writetime"))
    subranges = scan_subranges(node, keyspace, level, args.get("start_token"), args.get("end_token"))
    now_s = node.clock.wall_us() // 1_000_000
    ttl_now = now_s if args.get("ttl") else None

    def emit(token, key, p, rows, resume_at):
        lo = b""
        if resume_at is not None and (token, key) == (resume_at[0], resume_at[1]):
            lo = resume_at[2] + b"\x00"
        key_values = row_decode.decode_key(table, key)
        for ck, cells in live_rows(p, now_s, lo, None, False):
            rows.append(row_decode.row_dict(table, key_values, ck, cells, columns, writetime, ttl_now=ttl_now))
            if len(rows) >= page_size:
                return packb([token, key, ck])
        return None

    handler = ScanHandler(node.context, rid, level, table, subranges, resume, page_size,
                          node.now_ms + node.config.range_request_timeout_ms, emit,
                          speculative_retry.threshold_ms(table.option("speculative_retry"), node.read_latency))
    node.meter.count("scans")
    return handler.start()


def query_index(node, rid: int, args: dict) -> list:
    """A secondary-index query over the whole ring (ring/index_query.py)."""
    keyspace, table = table_args(node, args)
    level = level_of(args)
    cl.validate_for_range_read(level)
    return index_query.start(node.context, rid, level, table, args, scan_subranges(node, keyspace, level, None, None))


# -- the coordinator's plans ------------------------------------------------------------------------

def live_plan(node, keyspace: str, token: int, level, for_write: bool, pending=()):
    """Natural replicas (plus, for writes, the pending ones), the live ones among them, and the
    level's arithmetic; UnavailableError before anything is sent if too few are alive."""
    replicas = node.replicas(keyspace, token) + list(pending)
    rf_by_dc = node.rf_by_dc(keyspace)
    replica_dc = {ep: node.snitch.datacenter(ep) for ep in replicas}
    live = [ep for ep in replicas if node.is_alive(ep)]
    if for_write:
        cl.validate_for_write(level)
    else:
        cl.validate_for_read(level)
    if level is not cl.ConsistencyLevel.ANY:
        cl.assure_sufficient_live(level, live, replica_dc, rf_by_dc, node.config.datacenter,
                                  pending_by_dc=_by_dc(pending, replica_dc))
    return replicas, live, rf_by_dc, replica_dc


def coordinate_write(node, request_id: int, keyspace: str, table: Table, key: bytes, payload: bytes, level,
                     ts) -> list:
    """Send the encoded partition update `payload` to every live replica: the same bytes go to
    each (this node's own copy included) and into each replica's commit log."""
    token = token_of(key)
    pending = node.pending_endpoints(keyspace, token)
    replicas, live, rf_by_dc, replica_dc = live_plan(node, keyspace, token, level, True, pending)
    dead = [ep for ep in replicas if ep not in live]
    if dead and node.config.hinted_handoff_enabled:
        node.hints.check_capacity()
    handler = WriteHandler(request_id, level, rf_by_dc, node.config.datacenter, replica_dc,
                           node.now_ms + node.config.write_request_timeout_ms,
                           pending_by_dc=_by_dc(pending, replica_dc))
    handler.result = {"timestamp": ts}
    if level is cl.ConsistencyLevel.ANY:
        handler.block_for = 1
    handler.faults = node.config.faults
    msg_id = node.register_handler(handler)
    handler.mutation = (table, key, payload)
    handler.sent_to = set(live)
    node.meter.count("writes")
    effects = []
    for ep in dead:  # known down: hint now (a hint never counts toward the level, except ANY)
        if node.hint(ep, table, key, payload):
            effects += handler.on_hint_stored(ep)
    if not live and not effects:
        node.forget(msg_id)
        raise UnavailableError(level, 1, 0)
    request = MutationRequest(msg_id, table.id, key, payload)   # one message: the peer links encode it once
    return effects + [Send(ep, request) for ep in live]


def coordinate_read(node, request_id: int, keyspace: str, table: Table, key: bytes, lo, hi, level, finish) -> list:
    token = token_of(key)
    replicas, live, rf_by_dc, replica_dc = live_plan(node, keyspace, token, level, False)
    block_for = cl.block_for(level, rf_by_dc, node.config.datacenter)
    ordered = _closest_first(node, [ep for ep in live if cl.counts_towards(level, replica_dc[ep],
                                                                           node.config.datacenter)])
    if level is cl.ConsistencyLevel.EACH_QUORUM:
        targets = _each_quorum_targets(ordered, replica_dc, rf_by_dc)
    else:
        targets = ordered[:block_for]
    wait = speculative_retry.threshold_ms(table.option("speculative_retry"), node.read_latency)
    handler = ReadHandler(node.context, request_id, level, table, key, lo, hi, targets, block_for,
                          node.now_ms + node.config.read_request_timeout_ms, finish,
                          table.option("read_repair") != "NONE"
                          and not node.config.faults.skip_read_repair_writeback,
                          extra=[ep for ep in ordered if ep not in targets],
                          speculate_at_ms=None if wait is None else node.now_ms + wait)
    msg_id = node.register_handler(handler)
    node.meter.count("reads")
    return handler.requests(msg_id)


def scan_subranges(node, keyspace: str, level, start_token, end_token) -> list:
    """Split (start, end] into the ring's ranges, each with the replicas to ask."""
    ring_tokens = sorted(node.ring.tokens) if hasattr(node.ring, "tokens") else []
    out = []
    for lo, hi in split_range(start_token, end_token, ring_tokens):
        probe = MIN_TOKEN + 1 if lo is None else lo + 1
        replicas, live, rf_by_dc, replica_dc = live_plan(node, keyspace, probe, level, False)
        block_for = cl.block_for(level, rf_by_dc, node.config.datacenter)
        ordered = _closest_first(node, [ep for ep in live if cl.counts_towards(level, replica_dc[ep],
                                                                               node.config.datacenter)])
        start = (lo + 1, b"") if lo is not None else None
        end = (hi + 1, b"") if hi is not None and hi < MAX_TOKEN else None
        out.append((start, end, ordered[:block_for], ordered[block_for:]))  # the rest: for speculation
    return out


def split_range(start, end, ring_tokens: list[int]) -> list[tuple]:
    """(start, end] (None = ring minimum / maximum; start >= end wraps) cut at the ring's tokens."""
    if start is not None and end is not None and start >= end:
        return split_range(start, None, ring_tokens) + split_range(None, end, ring_tokens)
    lo = start
    pieces = []
    for t in ring_tokens:
        if (lo is None or t > lo) and (end is None or t < end):
            pieces.append((lo, t))
            lo = t
    pieces.append((lo, end))
    return pieces


def _closest_first(node, candidates: list[str]) -> list[str]:
    """By the dynamic snitch's proximity, with the local replica first (it answers fastest)."""
    ordered = node.snitch.sorted_by_proximity(node.endpoint, candidates)
    if node.endpoint in ordered:
        ordered.remove(node.endpoint)
        ordered.insert(0, node.endpoint)
    return ordered


def _by_dc(endpoints, replica_dc: dict) -> dict[str, int] | None:
    if not endpoints:
        return None
    out: dict[str, int] = {}
    for ep in endpoints:
        out[replica_dc[ep]] = out.get(replica_dc[ep], 0) + 1
    return out


def _each_quorum_targets(ordered: list[str], replica_dc: dict, rf_by_dc: dict) -> list[str]:
    targets = []
    for dc, rf in rf_by_dc.items():
        need = cl.quorum_for(rf) if rf else 0
        targets += [ep for ep in ordered if replica_dc[ep] == dc][:need]
    return sorted(targets, key=ordered.index)
