"""EXECUTE frames in one pass: the header and the body of the common EXECUTE decoded with
`struct.unpack_from` at offsets, without the FrameHeader / Frame / Reader objects of the general
path (frame.py, notation.py, requests.py). A prepared point statement's EXECUTE is the request a
busy client sends most; this is its decoder.

Contract: `next_execute(buf, version, max_body, fields=False, pos=0)` returns `(Execute, where the frame ends)`
for a well-formed EXECUTE request frame at `pos` in `buf` of the connection's `version` with no
custom payload or named values (compressed only on a v4 lz4 connection, `lz4`), or None: not whole yet, another opcode, a flag it
does not take, or anything malformed. None never consumes and never decides an error: the caller
runs the general decoder on the same bytes, which answers what is wrong. Invariant
(tests/cql/test_execute_frames.py, differential and fuzzed): whenever it returns an Execute, it
equals what `decode_request` makes of the same body (v4 and v5). With `fields`, a frame without
flags comes as the plain tuple `(execute_fields(body), stream)` instead (`execute_event` makes
its Execute): the server's point lane decides on it in arrival order, no object made before.
"""
from __future__ import annotations

import struct

from ring.cql.frame import _HEADER, FLAG_COMPRESSION, FLAG_CUSTOM_PAYLOAD, Opcode, decompress_body
from ring.cql.notation import _CONSISTENCY_BY_CODE as _CONSISTENCY, UNSET, ProtocolException
from ring.cql.requests import (
    F_PAGE_SIZE, F_PAGING_STATE, F_SERIAL_CONSISTENCY, F_SKIP_METADATA, F_TIMESTAMP, F_VALUES, Execute,
    QueryParameters,
)

_U16 = struct.Struct(">H").unpack_from
_I32 = struct.Struct(">i").unpack_from
_U32 = struct.Struct(">I").unpack_from
_I64 = struct.Struct(">q").unpack_from
_EXECUTE = int(Opcode.EXECUTE)
_REFUSED_FRAME_FLAGS = FLAG_COMPRESSION | FLAG_CUSTOM_PAYLOAD
_TAKEN = F_VALUES | F_SKIP_METADATA | F_PAGE_SIZE | F_PAGING_STATE | F_SERIAL_CONSISTENCY | F_TIMESTAMP


def next_execute(buf, version: int, max_body: int, fields: bool = False, pos: int = 0,
                 lz4: bool = False) -> tuple[object, int] | None:
    """The EXECUTE frame at `pos` in `buf` (bytes or bytearray) and where it ends, or None. With
    `fields`, a frame without flags comes as the tuple (its execute_fields, its stream). With
    `lz4` (a v4 connection that negotiated lz4), a frame whose only flag is compression is
    inflated first and taken as a frame without flags (its answer is compressed by the sender)."""
    if len(buf) - pos < 9:
        return None
    first, flags, stream, opcode, length = _HEADER.unpack_from(buf, pos)
    if first != version or opcode != _EXECUTE or not 0 <= length <= max_body:
        return None
    end = pos + 9 + length
    if len(buf) < end:
        return None
    body = bytes(buf[pos + 9:end])
    if flags & _REFUSED_FRAME_FLAGS:
        if flags != FLAG_COMPRESSION or not lz4:
            return None
        try:
            body = decompress_body(body, max_body)
        except ProtocolException:
            return None                          # the general decoder answers it
        flags = 0
    decoded = execute_fields(body, version)
    if decoded is None:
        return None
    if fields and not flags:
        return (decoded, stream), end
    return _execute(decoded, stream, bool(flags & 0x02)), end


def execute_event(marker: tuple) -> Execute:
    """The Execute of a `(fields, stream)` tuple `next_execute` returned (a frame without flags)."""
    return _execute(marker[0], marker[1], False)


def decode_execute(body: bytes, version: int, stream: int, tracing: bool) -> Execute | None:
    """The EXECUTE in `body`, or None when the general decoder has to look at it."""
    fields = execute_fields(body, version)
    return None if fields is None else _execute(fields, stream, tracing)


def _execute(fields: tuple, stream: int, tracing: bool) -> Execute:
    query_id, metadata_id, consistency, flags, values, page_size, paging_state, serial, timestamp = fields
    params = QueryParameters(consistency, values, None, bool(flags & F_SKIP_METADATA), page_size, paging_state,
                             serial, timestamp, None, None, bool(flags & F_VALUES))
    return Execute(query_id=query_id, result_metadata_id=metadata_id, parameters=params, stream=stream,
                   tracing=tracing)


def execute_fields(body: bytes, version: int) -> tuple | None:
    """(query_id, result_metadata_id, consistency, flags, values, page_size, paging_state, serial,
    timestamp) of the EXECUTE in `body`, or None when the general decoder has to look at it."""
    try:
        n = _U16(body, 0)[0]
        pos = 2 + n
        query_id = body[2:pos]
        metadata_id = None
        if version >= 5:
            m = _U16(body, pos)[0]
            metadata_id = body[pos + 2:pos + 2 + m]
            pos += 2 + m
        consistency = _CONSISTENCY.get(_U16(body, pos)[0])
        if version >= 5:
            flags = _U32(body, pos + 2)[0]
            pos += 6
        else:
            flags = body[pos + 2]
            pos += 3
        if consistency is None or flags & ~_TAKEN:
            return None
        values = ()
        if flags & F_VALUES:
            count = _U16(body, pos)[0]
            pos += 2
            out = []
            for _ in range(count):
                size = _I32(body, pos)[0]
                pos += 4
                if size >= 0:
                    out.append(body[pos:pos + size])
                    pos += size
                elif size == -1:
                    out.append(None)
                elif size == -2:
                    out.append(UNSET)
                else:
                    return None
            values = tuple(out)
        page_size = paging_state = serial = timestamp = None
        if flags & F_PAGE_SIZE:
            page_size = _I32(body, pos)[0]
            pos += 4
            if page_size <= 0:
                return None
        if flags & F_PAGING_STATE:
            size = _I32(body, pos)[0]
            pos += 4
            if size >= 0:
                paging_state = body[pos:pos + size]
                pos += size
        if flags & F_SERIAL_CONSISTENCY:
            serial = _CONSISTENCY.get(_U16(body, pos)[0])
            pos += 2
            if serial is None:
                return None
        if flags & F_TIMESTAMP:
            timestamp = _I64(body, pos)[0]
            pos += 8
    except (struct.error, IndexError):
        return None
    if pos != len(body):
        return None                              # truncated (a slice ran past the end) or trailing bytes
    return query_id, metadata_id, consistency, flags, values, page_size, paging_state, serial, timestamp
