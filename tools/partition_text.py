"""Partitions as text for the dump tools: keys, clustering and cells by name, values decoded.

`tables_near(path)` reads the schema.db of the store a file sits in (an SSTable at
`<store>/data/<ks>/<table>-<id>/dt-N-Data.db`, a commit-log segment at `<store>/commitlog/`), as
{table id: Table}. Without a schema (or for a table it does not list) every form falls back to
what the bytes say: hex keys and clustering, numeric column ids (`#3`), hex values; the tools then
print a note saying so. Rendering never raises: a value that does not decode as its column's type
is shown in hex. Field names follow docs/format.md (mfda, ldt, ts, ttl); column id 0 is the
row_marker (an INSERT's primary key liveness).
"""
from __future__ import annotations

import os

from engine import collections, cql_types
from engine.catalog import load_schema
from engine.errors import CorruptionError
from engine.mutation import partition_key_bytes
from engine.row_decode import decode_clustering, decode_key
from engine.partition import decode_partition, sorted_cells
from engine.schema import MARKER_COLUMN_ID, Table


def store_root_of_sstable(path: str) -> str:
    """<store> for <store>/data/<ks>/<table>-<id>/dt-N-Data.db."""
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(path)))))


def store_root_of_segment(path: str) -> str:
    """<store> for <store>/commitlog/<segment>."""
    return os.path.dirname(os.path.dirname(os.path.abspath(path)))


def tables_near(root: str) -> tuple[dict[str, Table], str | None]:
    """({table id: Table} of the store at `root`, None) or ({}, a note saying why there are none)."""
    try:
        keyspaces = load_schema(root) if os.path.isfile(os.path.join(root, "schema.db")) else None
    except (CorruptionError, OSError, ValueError, KeyError, TypeError) as e:
        return {}, f"note: {os.path.join(root, 'schema.db')} is unreadable ({e}); columns shown by id"
    if keyspaces is None:
        return {}, f"note: no schema.db in {root} (not inside a store); keys in hex, columns by id"
    return {t.id: t for ks in keyspaces.values() for t in ks.tables.values()}, None


def table_of_sstable(path: str, tables: dict[str, Table]) -> Table | None:
    """The table whose directory (<table>-<id>) holds the SSTable at `path`."""
    table_id = os.path.basename(os.path.dirname(os.path.abspath(path))).rpartition("-")[2]
    return tables.get(table_id)


def key_text(table: Table | None, key: bytes) -> str:
    if table is not None:
        try:
            return "(" + ", ".join(f"{k}={v!r}" for k, v in decode_key(table, key).items()) + ")"
        except Exception:  # noqa: BLE001 - a key that does not decode is shown as bytes
            pass
    return key.hex()


def key_bytes(table: Table, text: str) -> bytes:
    """The partition key typed on the command line ("a", or "a:b" for a composite key), as bytes.
    Raises ValueError saying how to write it."""
    from tools.nodetool import parse_key
    cols = table.partition_key
    parts = text.split(":") if len(cols) > 1 else [text]
    if len(parts) != len(cols):
        raise ValueError(f"{table.qualified_name} has a {len(cols)}-column partition key; "
                         f"write it as {':'.join(c.name for c in cols)}")
    return partition_key_bytes(table, {c.name: parse_key(p, c.cql_type) for c, p in zip(cols, parts)})


def _value(table: Table | None, col_id: int, value: bytes) -> tuple[str, str]:
    if col_id == MARKER_COLUMN_ID and not value:
        return "row_marker", ""   # the INSERT's primary key liveness (docs/format.md)
    col = table.by_id.get(col_id) if table is not None else None
    if col is None:
        return f"#{col_id}", value.hex()
    if col.cql_type == "blob":
        return col.name, "0x" + value.hex()
    try:
        if "<" in col.cql_type:
            return col.name, repr(collections.deserialize(collections.parse(col.cql_type), value))
        return col.name, repr(cql_types.deserialize(col.cql_type, value))
    except Exception:  # noqa: BLE001 - not a value of the column's type: show its bytes
        return col.name, value.hex()


def _element_text(table: Table | None, col_id: int, path: bytes, value: bytes | None) -> tuple[str, str]:
    """A collection element's `[key]` and value as text: a set element or map key decoded, a list
    element by its path's hex; bytes in hex when the schema is unknown or does not decode them."""
    col = table.by_id.get(col_id) if table is not None else None
    t = collections.parse(col.cql_type) if col is not None and "<" in col.cql_type else None
    if not path:
        return "[]", ""
    try:
        key = path.hex() if t is None or t.name == "list" else repr(collections.decode_ordered(t.params[0], path, 0)[0])
        if value is None or t is None or t.name == "set":
            return f"[{key}]", "" if value is None or t is not None else value.hex()
        return f"[{key}]", repr(collections.deserialize(t.params[-1], value))
    except Exception:  # noqa: BLE001 - not an element of the column's type: show its bytes
        return f"[{path.hex()}]", "" if value is None else value.hex()


def _clustering(table: Table | None, ck: bytes) -> str:
    if table is not None and table.clustering:
        try:
            return "(" + ", ".join(f"{k}={v!r}" for k, v in decode_clustering(table, ck).items()) + ")"
        except Exception:  # noqa: BLE001
            pass
    return f"[{ck.hex()}]"


def partition_text(table: Table | None, payload: bytes) -> str:
    """One line: deletions, then each row with its cells (name=value(ts=..., ttl=...))."""
    p = decode_partition(payload)
    parts = []
    if p.deletion:
        parts.append(f"partition_deletion(mfda={p.deletion[0]}, ldt={p.deletion[1]})")
    for lo, hi, mfda, ldt in p.ranges:
        parts.append(f"range_tombstone([{lo.hex()}, {hi.hex() if hi is not None else 'inf'}) mfda={mfda} ldt={ldt})")
    for ck in sorted(p.rows):
        row = p.rows[ck]
        cells = []
        for col_id, (ts, ldt, ttl, value) in sorted_cells(row.cells):
            path = ""
            if col_id.__class__ is tuple:      # a collection element (or its tombstone, path empty)
                col_id, path, element = col_id[0], *_element_text(table, col_id[0], col_id[1], value)
            if value is None:
                name = _value(table, col_id, b"")[0] + path
                cells.append(f"{name}=tombstone(ts={ts}, ldt={ldt})")
                continue
            name, shown = _value(table, col_id, value)
            if path:
                name, shown = name + path, element
            name = name if name == "row_marker" else f"{name}="
            cells.append(f"{name}{shown}(ts={ts}, ttl={ttl}, expires={ldt})" if ttl else f"{name}{shown}(ts={ts})")
        rdel = f" row_deletion(mfda={row.deletion[0]}, ldt={row.deletion[1]})" if row.deletion else ""
        parts.append(f"row{_clustering(table, ck)}{rdel} {' '.join(cells)}".rstrip())
    return "; ".join(parts)
