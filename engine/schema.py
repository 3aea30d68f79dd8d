"""Keyspaces and tables: the schema a Store validates every request against.

A table has partition-key columns, clustering columns (each ASC or DESC) and regular columns.
Every column has a small integer id, stable for the table's life and never reused; cells are
stored by id. Id 0 is the row's liveness marker (written by INSERT, as in Cassandra).
A static column (declared with the type suffix " static": `{"s": "int static"}`, CQL's STATIC)
is a regular column holding one value per partition: its cells live in the partition's static
row, the row at clustering b"" (clustering keys are non-empty, so it sorts first); only tables
with clustering columns may have them (docs/format.md#partition-payload).
Table options use Cassandra's names and defaults (docs/architecture.md#table-options).
ALTER TABLE (engine/schema_change.py) makes a new Table with a later `altered_us`: an added column
gets the next id never used (`next_column_id`), a dropped one is remembered in `dropped`
(name -> (type, dropped_us, id)) so cells written at or before the drop stay invisible, even
under a re-added column of the same name (engine/dropped_columns.py).
"""
from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field

from engine import collections, cql_types
from engine.errors import InvalidRequest

MARKER_COLUMN_ID = 0
STATIC_SUFFIX = " static"   # {"s": "int static"}: a static column (make_table)
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
    static: bool = False  # a regular column with one value per partition (the row at clustering b"")


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
    dropped: dict = field(default_factory=dict)   # column name -> (cql type, dropped_us, last id)
    altered_us: int = 0                            # the last ALTER's timestamp; 0 = never altered

    def __post_init__(self):
        by_name = {c.name: c for c in self.columns}
        object.__setattr__(self, "by_name", by_name)
        object.__setattr__(self, "by_id", {c.id: c for c in self.columns if c.kind == "regular"})
        object.__setattr__(self, "partition_key", tuple(c for c in self.columns if c.kind == "partition_key"))
        object.__setattr__(self, "clustering", tuple(c for c in self.columns if c.kind == "clustering"))
        object.__setattr__(self, "regular", tuple(c for c in self.columns if c.kind == "regular"))
        object.__setattr__(self, "statics", tuple(c for c in self.regular if c.static))
        # col id -> the newest timestamp hidden by a drop of its name (only ids that have one)
        floors = {c.id: self.dropped[c.name][1] for c in self.regular if c.name in self.dropped}
        object.__setattr__(self, "dropped_floor", floors)

    @property
    def next_column_id(self) -> int:
        """The id an added column gets: never one a column of this table ever had."""
        return 1 + max([c.id for c in self.columns] + [d[2] for d in self.dropped.values()])

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
             "columns": [[c.name, c.cql_type, c.kind, c.id, c.descending] + ([True] if c.static else [])
                         for c in self.columns]}  # the static flag only when set: old digests stay
        if self.indexes:  # absent when empty: schemas without indexes keep their digest
            d["indexes"] = sorted([i.name, i.column] for i in self.indexes)  # canonical: digests agree
        if self.dropped:  # absent when empty, like indexes
            d["dropped"] = {name: list(v) for name, v in sorted(self.dropped.items())}
        if self.altered_us:
            d["altered_us"] = self.altered_us
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Table":
        cols = tuple(Column(n, t, k, i, bool(desc), bool(static and static[0]))
                     for n, t, k, i, desc, *static in d["columns"])
        indexes = tuple(IndexMetadata(n, c) for n, c in d.get("indexes") or ())
        dropped = {name: tuple(v) for name, v in (d.get("dropped") or {}).items()}
        return cls(d["keyspace"], d["name"], d["id"], cols, dict(d.get("options") or {}), indexes, dropped,
                   d.get("altered_us") or 0)


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
    statics = {n for n, t in columns.items() if isinstance(t, str) and t.endswith(STATIC_SUFFIX)}
    columns = {n: t[:-len(STATIC_SUFFIX)] if n in statics else t for n, t in columns.items()}
    for n in sorted(statics):
        if n in pk_names + ck_names:
            raise InvalidRequest(f"Static column {n} cannot be part of the PRIMARY KEY")
        if not ck_names:
            raise InvalidRequest("Static columns are only useful (and thus allowed) if the table has at least one "
                                 "clustering column")
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
        cols.append(Column(col_name, cql_type, kind, next_id, order.get(col_name) == "DESC", col_name in statics))
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
    durable_writes: bool = True
    altered_us: int = 0                         # the last ALTER KEYSPACE's timestamp; 0 = never

    def to_dict(self) -> dict:
        d = {"name": self.name, "replication": self.replication}
        if not self.durable_writes:   # absent when default: older schemas keep their digest
            d["durable_writes"] = False
        if self.altered_us:
            d["altered_us"] = self.altered_us
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Keyspace":
        return cls(d["name"], d["replication"], {}, d.get("durable_writes", True), d.get("altered_us") or 0)
