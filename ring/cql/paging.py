"""The CQL paging state: where a paged SELECT resumes, opaque to the client, valid on any node. Pure.

A client repeats the same statement with the paging_state of the previous page; any node can
resume from it, because it holds only positions in the data, never node-local ids. Layout
(docs/cql.md#paging-state; on the wire, so versioned and checksummed, never unpickled):

    magic      2 bytes  "DP"
    version    1 byte   0x01
    body       msgpack array of 6: statement (8 bytes), op (int), cursor, emitted (int),
               partition (bytes or nil), partition_rows (int)
    crc32      4 bytes  big-endian zlib.crc32 of magic + version + body

* statement: the first 8 bytes of the prepared id (MD5 of keyspace + query), so a state is
  refused for another statement;
* op: the index of the node operation to resume in `plan.operations(values)`;
* cursor: for a `scan` / `index_query` the node's own paging_state (bytes); for a `select` the
  last row's clustering values, each serialized with its CQL type (array of bytes);
* emitted: rows returned so far (LIMIT); partition and partition_rows: the partition key bytes
  of the last row returned and how many rows of it were returned (PER PARTITION LIMIT, DISTINCT).

Anything else (wrong magic, version, checksum, shape) is InvalidRequest, never data.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass

import msgpack

from engine.errors import InvalidRequest

MAGIC = b"DP"
VERSION = 1
STATE_BYTES_MAX = 64 * 1024


@dataclass(frozen=True)
class PagingState:
    statement: bytes
    op: int = 0
    cursor: object = None           # bytes | list[bytes] | None
    emitted: int = 0
    partition: bytes | None = None
    partition_rows: int = 0

    def encode(self) -> bytes:
        body = msgpack.packb([self.statement, self.op, self.cursor, self.emitted, self.partition,
                              self.partition_rows], use_bin_type=True)
        head = MAGIC + bytes([VERSION]) + body
        return head + zlib.crc32(head).to_bytes(4, "big")


def _bad(what: str) -> InvalidRequest:
    return InvalidRequest(f"Invalid value for the paging state: {what}; page again from the start of the query")


def decode(data: bytes, statement: bytes) -> PagingState:
    """The state a client sent back for `statement` (the prepared id's first 8 bytes)."""
    if not isinstance(data, (bytes, bytearray)) or len(data) < 7 or len(data) > STATE_BYTES_MAX:
        raise _bad(f"{len(data) if isinstance(data, (bytes, bytearray)) else type(data).__name__} bytes")
    data = bytes(data)
    if data[:2] != MAGIC:
        raise _bad(f"magic {data[:2].hex()} at offset 0 is not {MAGIC.hex()}")
    if data[2] != VERSION:
        raise _bad(f"version {data[2]} at offset 2 (this node reads version {VERSION})")
    crc = zlib.crc32(data[:-4])
    if crc.to_bytes(4, "big") != data[-4:]:
        raise _bad(f"checksum mismatch at offset {len(data) - 4} (stored {data[-4:].hex()}, computed {crc:08x})")
    try:
        fields = msgpack.unpackb(data[3:-4], raw=False, use_list=True, strict_map_key=True,
                                 max_bin_len=STATE_BYTES_MAX, max_str_len=0, max_array_len=64, max_map_len=0,
                                 max_ext_len=0)
    except (ValueError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError) as e:
        raise _bad(f"malformed body at offset 3: {e}")
    if not (isinstance(fields, list) and len(fields) == 6):
        raise _bad("the body is not an array of 6")
    stmt, op, cursor, emitted, partition, partition_rows = fields
    cursor_ok = cursor is None or isinstance(cursor, bytes) or (
        isinstance(cursor, list) and all(isinstance(c, bytes) for c in cursor))
    ints_ok = all(type(v) is int and v >= 0 for v in (op, emitted, partition_rows))
    if not (isinstance(stmt, bytes) and cursor_ok and ints_ok and (partition is None or isinstance(partition, bytes))):
        raise _bad("a field has the wrong type")
    if stmt != statement:
        raise _bad("it belongs to another statement")
    return PagingState(stmt, op, cursor, emitted, partition, partition_rows)
