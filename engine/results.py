"""What reads return: rows shaped as dicts, pages (ScanPage; a scan's are engine/scan_cursor.py's), and a table's statistics.

Each function reads one table's storage (a ColumnFamilyStore) and shapes what it finds; the
Store facade checks that it is open and resolves names first. Rows are produced from reconciled
partitions with every tombstone level and TTL applied (partition.live_rows); tombstones met are
counted and the read fails with TombstoneOverwhelmingError past `tombstone_failure_threshold`
(ColumnFamilyStore.guard).

Paging: a page holds at most `page_size` rows, and `paging_state` is None on the last page; else
it is msgpack [token, partition key, clustering] of the page's last row, and the next page starts
just after that row. Token ranges are Cassandra's (start, end]; a wrapping range (start >= end)
covers (start, MAX] and [MIN, end].
"""
from __future__ import annotations

from functools import partial

import msgpack

from engine import collections as coll
from engine import cql_types
from engine import mutation as mut
from engine import row_decode
from engine import restriction as rs
from engine.column_family import ColumnFamilyStore
from engine.merge import reconcile
from engine.mutation import MAX_KEY_BYTES
from engine.errors import InvalidRequest
from engine.partition import live_row
from engine.plain_rows import simple_row_cells
from engine.schema import Table
from engine.secondary_index import decode_paging_state
from engine.token import MAX_TOKEN, MIN_TOKEN, token as token_of

_unpackb = msgpack.unpackb


class ScanPage:
    __slots__ = ("rows", "paging_state")

    def __init__(self, rows: list[dict], paging_state: bytes | None):
        self.rows = rows
        self.paging_state = paging_state

    def __repr__(self):
        return f"ScanPage({len(self.rows)} rows, more={self.paging_state is not None})"


def project(table: Table, row: dict, columns) -> dict:
    """The row restricted to `columns` plus the primary key (all columns when None)."""
    if columns is None:
        return row
    for c in columns:
        table.column(c)
    keep = set(columns) | {c.name for c in table.partition_key} | {c.name for c in table.clustering}
    return {k: v for k, v in row.items() if k in keep}


def check_columns(table: Table, columns) -> None:
    """InvalidRequest unless every name in `columns` (None: all) is a column of `table`."""
    if columns is not None:
        for c in columns:
            table.column(c)


def check_page_size(page_size) -> None:
    if not isinstance(page_size, int) or page_size < 1:
        raise InvalidRequest(f"page_size must be a positive integer, got {page_size!r}")


def read_row(t: Table, cfs: ColumnFamilyStore, key: dict, columns, writetime: bool, clock) -> dict | None:
    """One row by its full primary key (or the first live row of a partition without clustering).

    Fast path: a table without clustering (nor dropped columns, nor row cache) reads its
    versions with cfs.read_payloads (a miss costs one hash and the bloom bits), keyed straight
    by the dict's bytes when the partition key is one blob column; one stored version that is a
    plain live row (plain_rows.simple_row_cells) skips the Partition objects altogether;
    asked for every column without writetime, the row dict is filled straight from the payload
    (simple_row), as a scan does. Several versions are reconciled from what was read."""
    if not t.clustering and cfs.row_cache is None and not t.dropped:  # dropped columns: visible() below
        if columns is not None:
            check_columns(t, columns)
        plan = t.__dict__.get("_read_plan") or read_plan(t)
        blob_key = plan[0]
        pk = key.get(blob_key) if blob_key is not None else None
        if pk.__class__ is not bytes or not 0 < len(pk) <= MAX_KEY_BYTES:
            pk = mut.partition_key_bytes(t, key)  # any other key, or the InvalidRequest
        payloads = cfs.read_payloads(None, pk)
        if not payloads:
            return None
        return versions_row(t, cfs, key, pk, payloads, plan, columns, writetime, clock)
    if t.clustering:
        missing = [c.name for c in t.clustering if c.name not in key]
        if missing:
            raise InvalidRequest(f"get needs the full primary key; missing {missing}. Use select for slices")
    check_columns(t, columns)
    pk = mut.partition_key_bytes(t, key)
    ck = mut.clustering_prefix(t, key) if t.clustering else b""
    p = cfs.read_partition(token_of(pk), pk)
    if p is None:
        return None
    counter = [0]
    cells = live_row(p, ck, clock.now_s(), counter)
    cfs.guard(counter, f"{t.qualified_name} partition {pk.hex()[:32]}")
    if cells is None:
        return None
    key_values = {c.name: key[c.name] for c in t.partition_key}
    return row_decode.row_dict(t, key_values, ck, cells, columns, writetime)


def versions_row(t: Table, cfs: ColumnFamilyStore, key: dict, pk: bytes, payloads, plan: tuple, columns,
                 writetime: bool, clock) -> dict | None:
    """read_row's fast path once the versions of a partition of a table without clustering
    (nor dropped columns, nor row cache) are read: one plain live version is shaped straight
    from its payload (simple_row, or simple_row_cells for a projection or writetime); any other
    is reconciled."""
    blob_key = plan[0]
    if len(payloads) == 1:
        key_values = {blob_key: key[blob_key]} if blob_key is not None else {n: key[n] for n in plan[1]}
        if columns is None and not writetime:  # the whole row: straight from the payload
            row = simple_row(payloads[0], key_values, plan[2])
            if row is not None:
                return row
        else:
            cells = simple_row_cells(payloads[0])
            if cells is not None:
                return row_decode.row_dict(t, key_values, b"", cells, columns, writetime)
    p = reconcile(payloads)
    counter = [0]
    cells = live_row(p, b"", clock.now_s(), counter)
    cfs.guard(counter, f"{t.qualified_name} partition {pk.hex()[:32]}")
    if cells is None:
        return None
    return row_decode.row_dict(t, {n: key[n] for n in plan[1]}, b"", cells, columns, writetime)


def read_plan(t: Table) -> tuple:
    """(the blob partition key's column name or None, the partition key's column names,
    column_converters(t), the blob key's name when the table also has neither clustering nor
    dropped columns, else None): what read_row's fast path (and Store.get's) needs of a table,
    made once per Table object (ALTER TABLE makes a new Table)."""
    blob_key = blob_key_name(t)
    plan = (blob_key, tuple(c.name for c in t.partition_key), column_converters(t),
            blob_key if not t.clustering and not t.dropped else None)
    object.__setattr__(t, "_read_plan", plan)
    return plan


def read_rows(t: Table, cfs: ColumnFamilyStore, key: dict, start, end, start_inclusive: bool,
              end_inclusive: bool, limit: int | None, columns, writetime: bool, reverse: bool) -> list[dict]:
    """Rows of one partition, optionally within a clustering slice, in clustering order."""
    check_columns(t, columns)
    pk = mut.partition_key_bytes(t, key)
    lo, hi = mut.slice_bounds(t, start, end, start_inclusive, end_inclusive)
    p = cfs.read_partition(token_of(pk), pk)
    if p is None:
        return []
    counter = [0]
    key_values = {c.name: key[c.name] for c in t.partition_key}
    out = []
    for ck, cells in cfs.live_rows(p, lo, hi, reverse, counter):
        out.append(row_decode.row_dict(t, key_values, ck, cells, columns, writetime))
        if limit is not None and len(out) >= limit:
            break
    cfs.guard(counter, f"{t.qualified_name} partition {pk.hex()[:32]}")
    return out


def column_converters(t: Table) -> dict:
    """{column id: (name, deserializer or None for blob)} of the regular columns, as row_dict
    converts them; made once per Table object (ALTER TABLE makes a new Table)."""
    out = t.__dict__.get("_column_converters")
    if out is not None:
        return out
    out = {}
    for col_id, col in t.by_id.items():
        if col.cql_type == "blob":
            out[col_id] = (col.name, None)
        elif "<" in col.cql_type:
            out[col_id] = (col.name, partial(coll.deserialize, coll.parse(col.cql_type)))
        else:
            out[col_id] = (col.name, partial(cql_types.deserialize, col.cql_type))
    object.__setattr__(t, "_column_converters", out)
    return out


def simple_row(payload: bytes, row: dict, converters: dict) -> dict | None:
    """`row` (the partition key's columns) completed with the cells of a plain single-row
    payload: the dict row_decode.row_dict builds from simple_row_cells(payload), with no cells dict
    in between; None (and `row` to be discarded) for exactly the payloads simple_row_cells
    refuses (plain_rows.simple_row_cells states them). The plain form (payload version 3)
    is one flat list: its (column id, value) pairs go straight into `row`."""
    try:
        struct = _unpackb(payload)
    except ValueError:
        return None
    if struct[0].__class__ is int:     # [ts, col, value, col, value, ...]
        if len(struct) == 3:  # one column: no loop (0.48 -> 0.29 us a row with its dict, bench/README.md)
            conv = converters.get(struct[1])
            if conv is not None:
                fn = conv[1]
                row[conv[0]] = struct[2] if fn is None else fn(struct[2])
            return row
        get = converters.get
        for i in range(1, len(struct), 2):
            conv = get(struct[i])
            if conv is not None:
                fn = conv[1]
                row[conv[0]] = struct[i + 1] if fn is None else fn(struct[i + 1])
        return row
    get = converters.get
    pdel, prows, ranges = struct
    if pdel is not None or ranges or len(prows) != 1:
        return None
    r = prows[0]
    if r[0] != b"" or r[1] is not None or len(r) == 3:
        return None
    for i in range(3, len(r)):
        c = r[i]
        if len(c) != 3 or type(c[2]) is not bytes or type(c[0]) is not int:  # (id, path): a collection element
            return None
    for i in range(3, len(r)):
        c = r[i]
        conv = get(c[0])
        if conv is not None:
            name, fn = conv
            row[name] = c[2] if fn is None else fn(c[2])
    return row


def blob_key_name(t: Table) -> str | None:
    """The partition key column's name when it is one blob column (its bytes are the key)."""
    cols = t.partition_key
    return cols[0].name if len(cols) == 1 and cols[0].cql_type == "blob" else None


def token_ranges(start: int | None, end: int | None) -> list[tuple]:
    """(start, end] as one or two non-wrapping ranges; None is the end of the ring."""
    if start is not None and end is not None and start >= end:
        return [(start, None), (None, end)]  # wrapping range
    for bound in (start, end):
        if bound is not None and not MIN_TOKEN <= bound <= MAX_TOKEN:
            raise InvalidRequest(f"token {bound} is outside [{MIN_TOKEN}, {MAX_TOKEN}]")
    return [(start, end)]


def index_page(t: Table, cfs: ColumnFamilyStore, where, columns, page_size: int,
               paging_state: bytes | None) -> ScanPage:
    """One page of the rows matching every restriction of `where`, answered from the index of
    one restricted column (docs/secondary_indexes.md), in token order."""
    check_page_size(page_size)
    restrictions = rs.parse(t, where)
    index = cfs.indexes[rs.choose_index(t, restrictions).name]
    index.check_ready(t)
    after = decode_paging_state(paging_state)
    rows: list[dict] = []
    for token, key, ck, _, row in index.search(cfs, t, restrictions, after=after):
        rows.append(project(t, row, columns))
        if len(rows) >= page_size:
            return ScanPage(rows, msgpack.packb([token, key, ck], use_bin_type=True))
    return ScanPage(rows, None)


def table_stats(cfs: ColumnFamilyStore) -> dict:
    """nodetool tablestats for one table: sizes, caches, compaction and index figures."""
    kc_req = sum(s.key_cache_requests for s in cfs.sstables)
    kc_hit = sum(s.key_cache_hits for s in cfs.sstables)
    rc = cfs.row_cache
    return {
        "table": cfs.table.qualified_name, "sstable_count": len(cfs.sstables),
        "space_used_bytes": cfs.disk_bytes(), "memtable_bytes": cfs.memtable.size_bytes,
        "memtable_partitions": len(cfs.memtable), "pending_flushes": len(cfs.flushing),
        "compacting": len(cfs.compacting),
        "key_cache_hit_rate": (kc_hit / kc_req) if kc_req else None,
        "row_cache_hit_rate": (rc.hits / rc.requests) if rc and rc.requests else None,
        **cfs.stats,
        **{f"index {name}": index.stats() for name, index in cfs.indexes.items()},
    }
