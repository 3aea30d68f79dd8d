"""The replica side of the internode protocol: requests answered from the local `Store`.

Rule: replica.py answers; it never sends and never coordinates. Each `answer_*` function takes
the store and one request message and returns exactly one response message; a request the
replica cannot serve (unknown table id, schema not yet agreed, a bad range or depth, a payload
that does not decode, an engine error) becomes the response's `error` string, never an exception,
so the coordinator's handler decides what it means. The store is reached only through its replica
API (engine/store.py: table_by_id, apply_mutation, read_partition, scan_partitions, ...).

A mutation's payload is the coordinator's bytes: decoded once by the store (to check it and for
the memtable) and logged as received, never re-encoded. `answer_mutation` also returns the
commit-log position the ack must wait for (batch and group sync), which the node hands to its
driver as a `Durable` effect, so no fsync wait ever runs inside the node.
"""
from __future__ import annotations

from engine import restriction as rs
from engine import truncation
from engine.errors import EngineError, InvalidRequest
from engine.partition import encode_partition, slice_partition
from engine.schema import Table
from engine.token import token as token_of
from ring.anti_entropy import scan_bounds, unwrap
from ring.coordinator import canonical_payload, digest_of
from ring.index_query import MAX_FETCH_ROWS, MAX_PAGE_ROWS, MAX_RESPONSE_BYTES, row_slice
from ring.merkle import MerkleTree
from ring.messages import (HintRequest, IndexReadRequest, IndexReadResponse, MutationRequest, MutationResponse, RangeReadRequest,
                           RangeReadResponse, ReadRequest, ReadResponse, RowsReadRequest, StreamRequest,
                           StreamResponse, TruncateRequest, TruncateResponse, ValidationRequest,
                           ValidationResponse)
from ring.streaming import MAX_PAGE_PARTITIONS, page_checksum


def _error(e: Exception) -> str:
    return f"{type(e).__name__}: {e}"


def local_table(store, table_id: str) -> Table | None:
    """The local schema's table with this id, or None (not created, or not yet learned)."""
    return store.table_by_id(table_id)


def table_by_id(store, table_id: str) -> Table:
    table = local_table(store, table_id)
    if table is None:
        raise InvalidRequest(f"unknown table id {table_id} (schema not yet agreed)")
    return table


def answer_mutation(store, msg: MutationRequest) -> tuple[MutationResponse, tuple | None]:
    """The response and the commit-log position it may be sent after (None: at once)."""
    try:
        table = table_by_id(store, msg.table_id)
        return MutationResponse(msg.id, None), store.apply_mutation(table, msg.key, msg.payload)
    except (InvalidRequest, EngineError, ValueError) as e:
        return MutationResponse(msg.id, _error(e)), None


def answer_hint(store, msg: HintRequest) -> tuple[MutationResponse, tuple | None]:
    """A hint is applied as a mutation unless its table was truncated here at or after the hint
    was created: then it is acknowledged and dropped, so TRUNCATE stays a TRUNCATE."""
    truncated_ms = truncation.truncated_at_ms(store, msg.table_id)
    if truncated_ms is not None and msg.created_us <= truncated_ms * 1000:
        return MutationResponse(msg.id, None), None
    return answer_mutation(store, MutationRequest(msg.id, msg.table_id, msg.key, msg.payload))


def answer_read(store, msg: ReadRequest) -> ReadResponse:
    try:
        table = table_by_id(store, msg.table_id)
        p = store.read_partition(table, msg.key)
        payload = canonical_payload(slice_partition(p, msg.lo, msg.hi)) if p is not None else None
        if msg.digest_only:
            return ReadResponse(msg.id, None, digest_of(payload), None)
        return ReadResponse(msg.id, payload, digest_of(payload), None)
    except (InvalidRequest, EngineError) as e:
        return ReadResponse(msg.id, None, b"", _error(e))


def answer_range_read(store, msg: RangeReadRequest) -> RangeReadResponse:
    try:
        table = table_by_id(store, msg.table_id)
        start = tuple(msg.start) if msg.start else None
        end = tuple(msg.end) if msg.end else None
        limit = max(1, min(int(msg.limit), 10_000))
        out = []
        for tok, key, p in store.scan_partitions(table, start, end):
            out.append([tok, key, encode_partition(p)])
            if len(out) >= limit:
                return RangeReadResponse(msg.id, out, False, None)
        return RangeReadResponse(msg.id, out, True, None)
    except (InvalidRequest, EngineError) as e:
        return RangeReadResponse(msg.id, [], True, _error(e))


def answer_validation(store, msg: ValidationRequest) -> ValidationResponse:
    """A validation scan: the Merkle tree of (lo, hi] of one table, from every local source."""
    try:
        table = table_by_id(store, msg.table_id)
        if not 0 <= int(msg.depth) <= 20:
            raise InvalidRequest(f"merkle depth {msg.depth} is outside 0..20")
        tree = MerkleTree(msg.lo, msg.hi, int(msg.depth))
        count = 0
        for lo, hi in unwrap(msg.lo, msg.hi):
            start, end = scan_bounds(lo, hi)
            count += tree.add_many((tok, key, payload) for tok, key, p in store.scan_partitions(table, start, end)
                                   if (payload := canonical_payload(p)) is not None)
        return ValidationResponse(msg.id, tree.to_wire(), count, None)
    except (InvalidRequest, EngineError, ValueError) as e:
        return ValidationResponse(msg.id, None, 0, _error(e))


def answer_stream(store, msg: StreamRequest) -> StreamResponse:
    """The source's side of streaming: one page of raw partitions from [start, end)."""
    try:
        table = table_by_id(store, msg.table_id)
        limit = max(1, min(int(msg.limit), MAX_PAGE_PARTITIONS))
        start = tuple(msg.start) if msg.start else None
        end = tuple(msg.end) if msg.end else None
        out = []
        for tok, key, p in store.scan_partitions(table, start, end):
            out.append([tok, key, encode_partition(p)])
            if len(out) >= limit:
                return StreamResponse(msg.id, out, False, page_checksum(out), None)
        return StreamResponse(msg.id, out, True, page_checksum(out), None)
    except (InvalidRequest, EngineError, ValueError, TypeError) as e:
        return StreamResponse(msg.id, [], True, 0, _error(e))


def answer_index_read(store, msg: IndexReadRequest) -> IndexReadResponse:
    """Rows of [start, end) after `after` whose indexed column matches `where` in this node's view
    (ring/index_query.py step 1)."""
    try:
        table = table_by_id(store, msg.table_id)
        restrictions = rs.parse(table, msg.where)
        index = store.local_index(table, restrictions)
        # only the indexed column's restrictions: the others are the coordinator's to check after
        # reconciling, since another replica may hold the newer cell of another column
        restrictions = [r for r in restrictions if r.column == index.meta.column]
        limit = max(1, min(int(msg.limit), MAX_PAGE_ROWS))
        start, end = (tuple(msg.start) if msg.start else None), (tuple(msg.end) if msg.end else None)
        out, size = [], 0
        for token, key, ck, p, _ in store.search_index(table, index, restrictions, start, end,
                                                       tuple(msg.after) if msg.after else None):
            payload = encode_partition(row_slice(p, ck))
            out.append([token, key, ck, payload])
            size += len(key) + len(ck) + len(payload) + 16
            if len(out) >= limit or size >= MAX_RESPONSE_BYTES:
                return IndexReadResponse(msg.id, out, False, None)
        return IndexReadResponse(msg.id, out, True, None)
    except (InvalidRequest, EngineError, ValueError, TypeError) as e:
        return IndexReadResponse(msg.id, [], True, _error(e))


def answer_rows_read(store, msg: RowsReadRequest) -> IndexReadResponse:
    """This node's version of each requested row, None where it has nothing (index_query step 2)."""
    try:
        table = table_by_id(store, msg.table_id)
        if len(msg.rows) > MAX_FETCH_ROWS:
            raise InvalidRequest(f"{len(msg.rows)} rows requested; the maximum is {MAX_FETCH_ROWS}")
        out = []
        for key, ck in msg.rows:
            token = token_of(key)
            p = store.read_partition(table, key)
            out.append([token, key, ck, None if p is None else encode_partition(row_slice(p, ck))])
        return IndexReadResponse(msg.id, out, True, None)
    except (InvalidRequest, EngineError, ValueError, TypeError) as e:
        return IndexReadResponse(msg.id, [], True, _error(e))


# answer_mutation is not here: the node wraps its response in a Durable effect when it must wait
def answer_truncate(store, msg: TruncateRequest) -> TruncateResponse:
    """TRUNCATE on this node: auto_snapshot, then every row dropped (engine/truncation.py)."""
    try:
        table = table_by_id(store, msg.table_id)
        store.truncate(table.keyspace, table.name)
        return TruncateResponse(msg.id, None)
    except (InvalidRequest, EngineError, OSError) as e:
        return TruncateResponse(msg.id, _error(e))


ANSWERS = {ReadRequest: answer_read, RangeReadRequest: answer_range_read,
           ValidationRequest: answer_validation, StreamRequest: answer_stream,
           IndexReadRequest: answer_index_read, RowsReadRequest: answer_rows_read,
           TruncateRequest: answer_truncate}
COUNTED = {ReadRequest: "replica_reads"}


# -- local table bookkeeping (nodetool) -----------------------------------------------------------

def load_bytes(store) -> int:
    """Bytes of every table, on disk and in memtables: gossip's LOAD."""
    return store.load_bytes()


def partition_estimate(store, table: Table) -> int:
    """Partitions in the table's SSTables and memtable (duplicates counted): repair's tree sizing."""
    return store.partition_estimate(table)


def compact_major(store, keyspace: str | None, table: str | None) -> int:
    """nodetool compact: a major compaction of every matching table; the number done."""
    done = 0
    for t in store.tables():
        if keyspace in (None, t.keyspace) and table in (None, t.name):
            done += store.compact(t.keyspace, t.name, major=True)
    return done


def purge_tombstones_now(store) -> None:
    """The seam of `Faults.purge_tombstones_early` (ring/faults.py): purge tombstones at once,
    ignoring gc_grace_seconds, through the engine's `canary_gc_grace_seconds` option."""
    store.options["canary_gc_grace_seconds"] = 0
    for t in store.tables():   # a table whose memtable was empty has had its tombstones purged already
        if t.keyspace != "system" and store.flush(t.keyspace, t.name):
            store.compact(t.keyspace, t.name, major=True)
