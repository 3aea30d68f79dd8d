"""ALTER TABLE and ALTER KEYSPACE as pure functions: an old definition in, a new one out.

Each function validates with Cassandra's messages and returns a new frozen Table / Keyspace
stamped with the ALTER's timestamp (`altered_us`); nothing is applied here (engine/catalog.py
swaps the definition in, ring/schema_sync.py spreads it). Invariants:

* a column id is never reused: ADD takes `table.next_column_id`, so cells of a dropped column
  (stored under its old id) can never reappear under a re-added column of the same name;
* DROP remembers (type, dropped_us, id) in `table.dropped`; a re-add keeps that entry, so the
  re-added column's cells written at or before the drop stay hidden (engine/dropped_columns.py);
* a re-added column must have the dropped column's type (Cassandra's rule);
* RENAME applies to PRIMARY KEY columns only and changes no id: keys are stored by position.
"""
from __future__ import annotations

import dataclasses

from engine import cql_types
from engine.errors import InvalidRequest
from engine.schema import DEFAULT_TABLE_OPTIONS, STATIC_SUFFIX, Column, Keyspace, Table, check_name


def _stamp(table: Table, ts: int, **changes) -> Table:
    return dataclasses.replace(table, altered_us=max(ts, table.altered_us + 1), **changes)


def add_columns(table: Table, columns: list[tuple[str, str]], ts: int, if_not_exists: bool = False) -> Table:
    """ALTER TABLE t ADD [IF NOT EXISTS] c type | ADD (c1 t1, c2 t2)."""
    cols, dropped = list(table.columns), dict(table.dropped)
    next_id = table.next_column_id
    added = False
    for name, cql_type in columns:
        check_name("column", name)
        static = cql_type.endswith(STATIC_SUFFIX)
        cql_type = cql_type.removesuffix(STATIC_SUFFIX)
        if static and not table.clustering:
            raise InvalidRequest(f"Static columns are not allowed in tables with no clustering columns ({name})")
        if any(c.name == name for c in cols):
            if if_not_exists:
                continue
            raise InvalidRequest(f"Column with name '{name}' already exists")
        if cql_type not in cql_types.TYPES:
            raise InvalidRequest(f"column {name}: type {cql_type} is not supported by the storage engine yet "
                                 f"(supported: {', '.join(cql_types.TYPES)})")
        if name in dropped and dropped[name][0] != cql_type:
            raise InvalidRequest(f"Cannot re-add previously dropped column '{name}' of type {cql_type}, "
                                 f"incompatible with previous type {dropped[name][0]}")
        cols.append(Column(name, cql_type, "regular", next_id, static=static))
        next_id += 1
        added = True
    return _stamp(table, ts, columns=tuple(cols)) if added else table


def drop_columns(table: Table, names: list[str], ts: int, if_exists: bool = False) -> Table:
    """ALTER TABLE t DROP [IF EXISTS] c | DROP (c1, c2) [USING TIMESTAMP ts]: cells at or before `ts` die."""
    cols, dropped = list(table.columns), dict(table.dropped)
    changed = False
    for name in names:
        col = next((c for c in cols if c.name == name), None)
        if col is None:
            if if_exists:
                continue
            raise InvalidRequest(f"Column {name} was not found in table {table.name}")
        if col.kind != "regular":
            raise InvalidRequest(f"Cannot drop PRIMARY KEY column {name}")
        indexes = [i.name for i in table.indexes if i.column == name]
        if indexes:
            raise InvalidRequest(f"Cannot drop column {name} because it has dependent secondary indexes "
                                 f"({', '.join(indexes)})")
        cols.remove(col)
        dropped[name] = (col.cql_type, ts, col.id)
        changed = True
    if not changed:
        return table
    return _stamp(table, ts, columns=tuple(cols), dropped=dropped)


def rename_columns(table: Table, renames: list[tuple[str, str]], ts: int, if_exists: bool = False) -> Table:
    """ALTER TABLE t RENAME [IF EXISTS] a TO b [AND c TO d]: PRIMARY KEY columns only."""
    cols = list(table.columns)
    changed = False
    for old, new in renames:
        check_name("column", new)
        i = next((i for i, c in enumerate(cols) if c.name == old), None)
        if i is None:
            if if_exists:
                continue
            raise InvalidRequest(f"Column {old} was not found in table {table.name}")
        if cols[i].kind == "regular":
            raise InvalidRequest(f"Cannot rename non PRIMARY KEY column {old}")
        if any(c.name == new for c in cols):
            raise InvalidRequest(f"Cannot rename column {old} to {new} in table '{table.name}'; another column "
                                 f"with that name already exists")
        indexes = [x.name for x in table.indexes if x.column == old]
        if indexes:
            raise InvalidRequest(f"Cannot rename column {old} because it has dependent secondary indexes "
                                 f"({', '.join(indexes)})")
        cols[i] = dataclasses.replace(cols[i], name=new)
        changed = True
    return _stamp(table, ts, columns=tuple(cols)) if changed else table


def with_options(table: Table, options: dict, ts: int) -> Table:
    """ALTER TABLE t WITH opt = v AND ...: the given options replace the table's, others stay."""
    unknown = set(options) - set(DEFAULT_TABLE_OPTIONS)
    if unknown:
        raise InvalidRequest(f"unknown table options {sorted(unknown)}; known: {sorted(DEFAULT_TABLE_OPTIONS)}")
    merged = dict(table.options)
    merged.update(options)
    return _stamp(table, ts, options=merged)


def alter_keyspace(ks: Keyspace, replication: dict | None, durable_writes: bool | None, ts: int) -> Keyspace:
    """ALTER KEYSPACE k WITH replication = {...} AND durable_writes = b (either may be absent)."""
    if replication is not None and replication.get("class", "").rsplit(".", 1)[-1] != \
            str(ks.replication.get("class", "")).rsplit(".", 1)[-1] and "LocalStrategy" in str(ks.replication):
        raise InvalidRequest(f"Cannot alter the replication of keyspace {ks.name}")
    return dataclasses.replace(ks, replication=dict(replication) if replication is not None else ks.replication,
                               durable_writes=ks.durable_writes if durable_writes is None else durable_writes,
                               altered_us=max(ts, ks.altered_us + 1))
