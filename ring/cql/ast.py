"""The CQL syntax tree: small frozen dataclasses for statements and terms. No behaviour.

Names are already case-folded (unquoted names lower case, quoted names as written). A literal
keeps its kind and text, as Cassandra's Constants.Literal does, because its type is only known
once the statement meets the schema (`1` may be an int, a bigint, a double or a decimal):
prepare.py converts it. Bind markers are numbered 0, 1, ... in the order they appear in the
text; `name` is set for `:name` markers. Operators are the text Cassandra uses ("=", "<", ...,
"IN"). `parser.parse` builds these; `render.render` turns them back into CQL text.
"""
from __future__ import annotations

from dataclasses import dataclass

from ring.cql.types import CqlType

# -- terms --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Constant:
    kind: str       # "string" | "integer" | "float" | "boolean" | "uuid" | "hex"
    text: str       # unescaped string; number as written; "true"/"false"; lower-case uuid; hex digits


@dataclass(frozen=True, slots=True)
class Null:
    pass


@dataclass(frozen=True, slots=True)
class BindMarker:
    index: int
    name: str | None = None


@dataclass(frozen=True, slots=True)
class ListLiteral:
    items: tuple = ()


@dataclass(frozen=True, slots=True)
class SetLiteral:
    items: tuple = ()


@dataclass(frozen=True, slots=True)
class MapLiteral:
    entries: tuple = ()     # ((key term, value term), ...)


@dataclass(frozen=True, slots=True)
class TupleLiteral:
    items: tuple = ()


@dataclass(frozen=True, slots=True)
class FunctionCall:
    """`now()`, `uuid()`, ... in a value position (prepare.py says which it supports)."""
    name: str
    args: tuple = ()


@dataclass(frozen=True, slots=True)
class CollectionUpdate:
    """The right side of `c = c + x`, `c = c - x` or (prepend=True) `c = x + c`."""
    op: str                     # "+" | "-"
    value: object
    prepend: bool = False


@dataclass(frozen=True, slots=True)
class Element:
    """`c[key]`: the left side of `c[key] = value` (value set) or a DELETE target (value None)."""
    key: object
    value: object = None


@dataclass(frozen=True, slots=True)
class InValues:
    """The right side of `col IN (a, b, ?)`; `col IN ?` is a plain BindMarker instead."""
    items: tuple = ()


# -- selectors and relations ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ColumnRef:
    name: str


@dataclass(frozen=True, slots=True)
class WriteTime:
    column: str


@dataclass(frozen=True, slots=True)
class Ttl:
    column: str


@dataclass(frozen=True, slots=True)
class TokenOf:
    columns: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class CountRows:
    """COUNT(*) or COUNT(1)."""
    argument: str = "*"


@dataclass(frozen=True, slots=True)
class Selector:
    expression: object          # ColumnRef | WriteTime | Ttl | TokenOf | CountRows
    alias: str | None = None


@dataclass(frozen=True, slots=True)
class Relation:
    column: str
    op: str                     # = < <= > >= != IN
    value: object


@dataclass(frozen=True, slots=True)
class TokenRelation:
    columns: tuple[str, ...]
    op: str                     # = < <= > >=
    value: object


@dataclass(frozen=True, slots=True)
class Condition:
    """An LWT condition `IF col op value` (parsed now, applied once Paxos exists)."""
    column: str
    op: str
    value: object


# -- statements ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Use:
    keyspace: str


@dataclass(frozen=True, slots=True)
class CreateKeyspace:
    name: str
    if_not_exists: bool = False
    properties: tuple = ()      # ((name, Constant | MapLiteral), ...) in the order written


@dataclass(frozen=True, slots=True)
class DropKeyspace:
    name: str
    if_exists: bool = False


@dataclass(frozen=True, slots=True)
class ColumnDefinition:
    name: str
    type: CqlType
    static: bool = False


@dataclass(frozen=True, slots=True)
class CreateTable:
    keyspace: str | None
    name: str
    columns: tuple[ColumnDefinition, ...]
    partition_key: tuple[str, ...]
    clustering: tuple[str, ...] = ()
    if_not_exists: bool = False
    clustering_order: tuple = ()    # ((column, "ASC" | "DESC"), ...)
    properties: tuple = ()


@dataclass(frozen=True, slots=True)
class DropTable:
    keyspace: str | None
    name: str
    if_exists: bool = False


@dataclass(frozen=True, slots=True)
class CreateIndex:
    keyspace: str | None
    table: str
    column: str
    name: str | None = None
    if_not_exists: bool = False
    using: str | None = None        # CREATE CUSTOM INDEX ... USING 'class'


@dataclass(frozen=True, slots=True)
class DropIndex:
    keyspace: str | None
    name: str
    if_exists: bool = False


@dataclass(frozen=True, slots=True)
class Truncate:
    keyspace: str | None
    table: str


@dataclass(frozen=True, slots=True)
class AlterTable:
    keyspace: str | None
    name: str
    action: str                 # "add" | "drop" | "rename" | "with"
    items: tuple = ()           # add: ColumnDefinition...; drop: names; rename: (old, new)...
    properties: tuple = ()      # "with": ((name, Constant | MapLiteral), ...)
    if_exists: bool = False     # ALTER TABLE IF EXISTS t
    if_column: bool = False     # ADD IF NOT EXISTS / DROP IF EXISTS / RENAME IF EXISTS
    timestamp: object = None    # DROP ... USING TIMESTAMP n


@dataclass(frozen=True, slots=True)
class AlterKeyspace:
    name: str
    properties: tuple = ()
    if_exists: bool = False


@dataclass(frozen=True, slots=True)
class Describe:
    """DESCRIBE / DESC: kind is keyspaces | keyspace | tables | table | index | cluster | schema |
    types | functions | aggregates | name (a keyspace or table, found at execution)."""
    kind: str
    keyspace: str | None = None
    name: str | None = None
    full: bool = False          # DESCRIBE FULL SCHEMA: system keyspaces too
    only: bool = False          # DESCRIBE ONLY KEYSPACE: the keyspace without its tables


@dataclass(frozen=True, slots=True)
class Insert:
    keyspace: str | None
    table: str
    columns: tuple[str, ...]
    values: tuple
    if_not_exists: bool = False
    ttl: object = None              # a term, or None when absent
    timestamp: object = None
    json: object = None             # INSERT JSON: the document's term (columns and values empty)
    json_default_unset: bool = False    # DEFAULT UNSET (else DEFAULT NULL)


@dataclass(frozen=True, slots=True)
class Update:
    keyspace: str | None
    table: str
    assignments: tuple              # ((column, term), ...)
    where: tuple
    ttl: object = None
    timestamp: object = None
    if_exists: bool = False
    conditions: tuple = ()


@dataclass(frozen=True, slots=True)
class Delete:
    keyspace: str | None
    table: str
    columns: tuple                  # column names, or (name, Element) for DELETE c[key]
    where: tuple
    timestamp: object = None
    if_exists: bool = False
    conditions: tuple = ()


@dataclass(frozen=True, slots=True)
class Select:
    keyspace: str | None
    table: str
    selectors: tuple[Selector, ...] | None      # None = *
    where: tuple = ()
    distinct: bool = False
    order_by: tuple = ()                        # ((column, "ASC" | "DESC"), ...)
    per_partition_limit: object = None
    limit: object = None
    allow_filtering: bool = False
    json: bool = False                          # SELECT JSON


@dataclass(frozen=True, slots=True)
class Batch:
    kind: str                                   # "LOGGED" | "UNLOGGED" | "COUNTER"
    statements: tuple                           # Insert | Update | Delete
    timestamp: object = None


Statement = (Use, CreateKeyspace, DropKeyspace, CreateTable, DropTable, CreateIndex, DropIndex, Truncate,
             AlterTable, AlterKeyspace, Describe,
             Insert, Update, Delete, Select, Batch)
