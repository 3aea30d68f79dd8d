"""RESULT messages: Void, Rows, Set_keyspace, Prepared and Schema_change, with their metadata.

Rows metadata (v4 spec 4.2.5.2; v5 adds metadata_changed):

    <flags:int><columns_count:int>[<paging_state:bytes>][<new_metadata_id:short bytes>]
    [<keyspace:string><table:string>]   if flag 0x0001 Global_tables_spec
    <col_spec> x columns_count          unless flag 0x0004 No_metadata
    col_spec = [<keyspace><table>] <name:string> <type:option>

Flags: 0x0001 Global_tables_spec (set whenever every column shares one keyspace and table),
0x0002 Has_more_pages (paging_state follows), 0x0004 No_metadata (the client asked to skip it),
0x0008 Metadata_changed (v5 only; new_metadata_id follows). Prepared metadata adds the
pk_indexes: the bind-marker positions of the partition key columns, in partition-key order,
which is what token-aware routing uses. Cells are already serialized bytes (None = null).
"""
from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import ClassVar

from ring.cql.frame import Opcode
from ring.cql.notation import encode_bytes, encode_int, encode_short, encode_short_bytes, encode_string
from ring.cql.responses import Response, SchemaChange
from ring.cql.types import CqlType, encode_option, serialize

GLOBAL_TABLES_SPEC, HAS_MORE_PAGES, NO_METADATA, METADATA_CHANGED = 0x0001, 0x0002, 0x0004, 0x0008


class ResultKind(enum.IntEnum):
    """RESULT kinds. On the wire: never renumber."""

    VOID = 0x0001
    ROWS = 0x0002
    SET_KEYSPACE = 0x0003
    PREPARED = 0x0004
    SCHEMA_CHANGE = 0x0005


@dataclass(frozen=True, slots=True)
class EncodedResult(Response):
    """A RESULT whose body is already encoded (the point path's, point.py), sent as it is."""

    opcode: ClassVar[Opcode] = Opcode.RESULT
    body: bytes

    def encode_body(self, version: int) -> bytes:
        return self.body


@dataclass(frozen=True, slots=True)
class ColumnSpec:
    keyspace: str
    table: str
    name: str
    type: CqlType


def encode_specs(columns: tuple[ColumnSpec, ...]) -> tuple[int, bytes]:
    """(the Global_tables_spec flag or 0, the encoded table spec and column specs). A prepared
    statement keeps its own (PreparedStatement.result_specs): drivers that never ask to skip the
    metadata (cassandra-driver) get it with every page."""
    tables = {(c.keyspace, c.table) for c in columns}
    if len(tables) == 1:
        ((keyspace, table),) = tables
        out = encode_string(keyspace) + encode_string(table)
        return GLOBAL_TABLES_SPEC, out + b"".join(encode_string(c.name) + encode_option(c.type) for c in columns)
    return 0, b"".join(encode_string(c.keyspace) + encode_string(c.table) + encode_string(c.name)
                       + encode_option(c.type) for c in columns)


@dataclass(frozen=True, slots=True)
class RowsMetadata:
    columns: tuple[ColumnSpec, ...] = ()
    paging_state: bytes | None = None
    no_metadata: bool = False
    new_metadata_id: bytes | None = None      # v5: the result metadata changed since PREPARE
    specs: tuple[int, bytes] | None = None    # encode_specs(columns), when the caller has it already

    def encode(self, version: int) -> bytes:
        flags = (HAS_MORE_PAGES if self.paging_state is not None else 0) | (NO_METADATA if self.no_metadata else 0)
        changed = version >= 5 and self.new_metadata_id is not None and not self.no_metadata
        flags |= METADATA_CHANGED if changed else 0
        specs = b""
        if not self.no_metadata and self.columns:
            spec_flag, specs = self.specs or encode_specs(self.columns)
            flags |= spec_flag
        out = encode_int(flags) + encode_int(len(self.columns))
        if self.paging_state is not None:
            out += encode_bytes(self.paging_state)
        if changed:
            out += encode_short_bytes(self.new_metadata_id)
        return out + specs


@dataclass(frozen=True, slots=True)
class Result(Response):
    opcode: ClassVar[Opcode] = Opcode.RESULT
    kind: ClassVar[ResultKind]

    def encode_body(self, version: int) -> bytes:
        return encode_int(self.kind) + self.encode_kind(version)

    def encode_kind(self, version: int) -> bytes:
        return b""


@dataclass(frozen=True, slots=True)
class Void(Result):
    kind: ClassVar[ResultKind] = ResultKind.VOID


@dataclass(frozen=True, slots=True)
class Rows(Result):
    kind: ClassVar[ResultKind] = ResultKind.ROWS
    metadata: RowsMetadata
    rows: tuple[tuple[bytes | None, ...], ...] = ()

    @classmethod
    def from_values(cls, metadata: RowsMetadata, rows) -> "Rows":
        """Serialize Python values by the metadata's column types (None stays a null)."""
        types = [c.type for c in metadata.columns]
        return cls(metadata, tuple(
            tuple(None if v is None else serialize(t, v) for t, v in zip(types, row)) for row in rows))

    def encode_kind(self, version: int) -> bytes:
        width = len(self.metadata.columns)
        out = [self.metadata.encode(version), encode_int(len(self.rows))]
        for row in self.rows:
            assert len(row) == width, f"row of {len(row)} cells under metadata of {width} columns"
            out.extend(encode_bytes(cell) for cell in row)
        return b"".join(out)


@dataclass(frozen=True, slots=True)
class SetKeyspace(Result):
    kind: ClassVar[ResultKind] = ResultKind.SET_KEYSPACE
    keyspace: str

    def encode_kind(self, version: int) -> bytes:
        return encode_string(self.keyspace)


@dataclass(frozen=True, slots=True)
class Prepared(Result):
    """`bind` are the bind markers' specs; `result_metadata` has no columns for non-SELECTs."""

    kind: ClassVar[ResultKind] = ResultKind.PREPARED
    query_id: bytes
    bind: tuple[ColumnSpec, ...] = ()
    pk_indexes: tuple[int, ...] = ()
    result_metadata: RowsMetadata = RowsMetadata(no_metadata=True)
    result_metadata_id: bytes = b""            # v5

    def encode_kind(self, version: int) -> bytes:
        out = encode_short_bytes(self.query_id)
        if version >= 5:
            out += encode_short_bytes(self.result_metadata_id)
        spec_flag, specs = encode_specs(self.bind) if self.bind else (0, b"")
        out += encode_int(spec_flag) + encode_int(len(self.bind)) + encode_int(len(self.pk_indexes))
        out += b"".join(encode_short(i) for i in self.pk_indexes)
        return out + specs + self.result_metadata.encode(version)


@dataclass(frozen=True, slots=True)
class SchemaChangeResult(Result):
    kind: ClassVar[ResultKind] = ResultKind.SCHEMA_CHANGE
    change: SchemaChange

    def encode_kind(self, version: int) -> bytes:
        return self.change.encode_change()
