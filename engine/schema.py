"""Keyspaces and tables: the schema a Store validates every request against.

A table has partition-key columns, clustering columns (each ASC or DESC) and regular columns.
Every column has a small integer id, stable for the table's life and never reused; cells are
stored by id. Id 0 is the row's liveness marker (written by INSERT, as in Cassandra).
Table options use Cassandra's names and defaults (docs/architecture.md#table-options).
"""
from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field

from engine import collections, cql_types
from engine.errors import InvalidRequest

MARKER_COLUMN_ID = 0
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,47}$")

DEFAULT_TABLE_OPTIONS = {
    "gc_grace_seconds": 864000,
    "bloom_filter_fp_chance": 0.01,
    "default_time_to_live": 0,
    "compression": None,  # or "lz4"
    "compaction": {"class": "SizeTieredCompactionStrategy", "min_threshold": 4, "max_threshold": 32,
                   "bucket_low": 0.5, "bucket_high": 1.5, "min_sstable_size": 50 * 1024 * 1024},
    "read_repair": "BLOCKING",
    "speculative_retry": "99p",  # NONE | ALWAYS | <N>ms | <P>p (ring/speculative_retry.py)
    "caching": {"keys": "ALL", "rows_per_partition": "NONE"},
}


def check_name(kind: str, name: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidRequest(
            f"{kind} name {name!r} is invalid: use 1 to 48 letters, digits or underscores, starting with a letter"
        )
    return name


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    cql_type: str
    kind: str  # "partition_key" | "clustering" | "regular"
    id: int
    descending: bool = False


@dataclass(frozen=True, slots=True)
class IndexMetadata:
    """A secondary index on one regular column (Cassandra's IndexMetadata); engine/secondary_index.py."""
    name: str
    column: str


@dataclass(frozen=True)
class Table:
    keyspace: str
    name: str
    id: str
    columns: tuple[Column, ...]
    options: dict = field(default_factory=dict)
    indexes: tuple[IndexMetadata, ...] = ()

    def __post_init__(self):
        by_name = {c.name: c for c in self.columns}
        object.__setattr__(self, "by_name", by_name)
        object.__setattr__(self, "by_id", {c.id: c for c in self.columns if c.kind == "regular"})
        object.__setattr__(self, "partition_key", tuple(c for c in self.columns if c.kind == "partition_key"))
        object.__setattr__(self, "clustering", tuple(c for c in self.columns if c.kind == "clustering"))
        object.__setattr__(self, "regular", tuple(c for c in self.columns if c.kind == "regular"))

    def option(self, name: str):
        return self.options.get(name, DEFAULT_TABLE_OPTIONS.get(name))

    @property
    def qualified_name(self) -> str:
        return f"{self.keyspace}.{self.name}"

    def column(self, name: str) -> Column:
        col = self.by_name.get(name)
        if col is None:
            raise InvalidRequest(f"unknown column '{name}' in table {self.qualified_name}")
        return col

    def index(self, name: str) -> IndexMetadata | None:
        return next((i for i in self.indexes if i.name == name), None)

    def to_dict(self) -> dict:
        d = {"keyspace": self.keyspace, "name": self.name, "id": self.id, "options": self.options,
             "columns": [[c.name, c.cql_type, c.kind, c.id, c.descending] for c in self.columns]}
        if self.indexes:  # absent when empty: schemas without indexes keep their digest
            d["indexes"] = sorted([i.name, i.column] for i in self.indexes)  # canonical: digests agree
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Table":
        cols = tuple(Column(n, t, k, i, bool(desc)) for n, t, k, i, desc in d["columns"])
        indexes = tuple(IndexMetadata(n, c) for n, c in d.get("indexes") or ())
        return cls(d["keyspace"], d["name"], d["id"], cols, dict(d.get("options") or {}), indexes)


def _parse_key_spec(primary_key) -> tuple[list[str], list[str]]:
    """`primary_key` is ("pk", "ck1", ...) or (("pk1", "pk2"), "ck1", ...), as in CQL."""
    if isinstance(primary_key, str):
        return [primary_key], []
    if not primary_key:
        raise InvalidRequest("primary_key must name at least one partition-key column")
    first, *rest = primary_key
    pk = [first] if isinstance(first, str) else list(first)
    return pk, list(rest)


def make_table(keyspace: str, name: str, columns: dict[str, str], primary_key,
               clustering_order: dict[str, str] | None = None, options: dict | None = None,
               table_id: str | None = None) -> Table:
    """Validate a CREATE TABLE and build the Table (column ids in declaration order, from 1)."""
    check_name("table", name)
    if not columns:
        raise InvalidRequest(f"table {keyspace}.{name} needs at least one column")
    pk_names, ck_names = _parse_key_spec(primary_key)
    order = {k: v.upper() for k, v in (clustering_order or {}).items()}
    for col_name, cql_type in columns.items():
        check_name("column", col_name)
        if cql_type not in cql_types.TYPES and collections.parse(cql_type) is None:
            raise InvalidRequest(f"column '{col_name}' has unknown type {cql_type!r}; known: {', '.join(cql_types.TYPES)}")
    for key_name in pk_names + ck_names:
        if key_name not in columns:
            raise InvalidRequest(f"primary key column '{key_name}' is not among the table's columns")
    if len(set(pk_names + ck_names)) != len(pk_names + ck_names):
        raise InvalidRequest("a column appears twice in the primary key")
    for ck, direction in order.items():
        if ck not in ck_names or direction not in ("ASC", "DESC"):
            raise InvalidRequest(f"clustering order {ck} {direction}: only clustering columns, ASC or DESC")
    for key_name in pk_names + ck_names:
        if columns[key_name] == "duration":
            raise InvalidRequest(f"duration type is not supported for PRIMARY KEY column '{key_name}'")
        if collections.is_multicell(columns[key_name]):
            raise InvalidRequest(f"Invalid non-frozen collection type {columns[key_name]} for PRIMARY KEY "
                                 f"component {key_name}")
    for ck in ck_names:
        if columns[ck] == "decimal":
            raise InvalidRequest(f"clustering column '{ck}': decimal is not supported as a clustering type")
    unknown = set(options or {}) - set(DEFAULT_TABLE_OPTIONS)
    if unknown:
        raise InvalidRequest(f"unknown table options {sorted(unknown)}; known: {sorted(DEFAULT_TABLE_OPTIONS)}")
    cols = []
    next_id = 1
    for col_name, cql_type in columns.items():
        if col_name in pk_names:
            kind = "partition_key"
        elif col_name in ck_names:
            kind = "clustering"
        else:
            kind = "regular"
        cols.append(Column(col_name, cql_type, kind, next_id, order.get(col_name) == "DESC"))
        next_id += 1
    # key columns in primary-key order
    rank = {n: i for i, n in enumerate(pk_names + ck_names)}
    cols.sort(key=lambda c: (rank.get(c.name, len(rank)), c.id))
    return Table(keyspace, name, table_id or uuid.uuid4().hex, tuple(cols), dict(options or {}))


@dataclass(frozen=True)
class Keyspace:
    name: str
    replication: dict = field(default_factory=lambda: {"class": "SimpleStrategy", "replication_factor": 1})
    tables: dict = field(default_factory=dict)  # name -> Table

    def to_dict(self) -> dict:
        return {"name": self.name, "replication": self.replication}
