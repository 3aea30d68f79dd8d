"""`dynatable sstable dump FILE`: an SSTable's statistics (field names as in docs/format.md
(SSTables)), then one line per partition: token, key and rows with their cells.

Inside a store (<store>/data/<ks>/<table>-<id>/dt-N-Data.db) keys, clustering and columns are shown
by name with decoded values, from the store's schema.db; elsewhere as hex and numeric column ids,
with a note. `limit` stops after that many partitions; `key` shows one partition (typed as its
columns' values, "a:b" for a composite key, or 0x<hex> bytes without a schema).

`dump_sstable` returns 0, or 1 after printing a corruption (file and offset; the dump stops).
It raises ValueError for a file that is not named as an SSTable component or a bad key, and
OSError for a missing component: the CLI prints those as one line and exits 1.
"""
from __future__ import annotations

import os
import re
import sys
from typing import TextIO

from engine.errors import CorruptionError
from engine.sstable_reader import SSTableReader
from engine.sstable_stats import FIELD_NAMES
from engine.token import token as token_of
from tools.partition_text import key_bytes, key_text, partition_text, store_root_of_sstable, table_of_sstable, tables_near

_NAME_RE = re.compile(r"^dt-(\d+)-[A-Za-z]+\.(db|txt)$")


def parse_component_path(path: str) -> tuple[str, int]:
    """(directory, generation) of a component path like .../dt-3-Index.db."""
    name = os.path.basename(path)
    m = _NAME_RE.match(name)
    if not m:
        raise ValueError(f"{path} is not an SSTable component: expected a name like dt-3-Data.db "
                         "(any file of <store>/data/<keyspace>/<table>-<id>/dt-N-*)")
    return os.path.dirname(path) or ".", int(m.group(1))


def format_stat(name: str, value) -> str:
    if isinstance(value, bytes):
        return f"{name}: {value.hex()}"
    return f"{name}: {value}"


def dump_sstable(path_of_any_component: str, out: TextIO, limit: int | None = None, key: str | None = None) -> int:
    directory, generation = parse_component_path(path_of_any_component)
    tables, note = tables_near(store_root_of_sstable(path_of_any_component))
    table = table_of_sstable(path_of_any_component, tables)
    if table is None and note is None:
        note = "note: the store's schema.db has no table for this directory (dropped?); columns shown by id"
    wanted = _wanted_key(table, key) if key is not None else None
    try:
        reader = SSTableReader.open(directory, generation)
    except CorruptionError as exc:
        out.write(f"corruption: {exc.path} at offset {exc.offset}: {exc.what}\n")
        return 1
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"SSTable generation {generation} in {directory} is incomplete: "
                                f"{exc.filename or exc} is missing") from None
    with reader:
        out.write(f"sstable: {directory} generation {generation} ({reader.size_bytes} bytes)\n")
        out.write(f"table: {table.qualified_name} (id {table.id})\n" if table is not None else note + "\n")
        for name in FIELD_NAMES:
            out.write(format_stat(name, getattr(reader.stats, name)) + "\n")
        try:
            if wanted is not None:
                payload = reader.get(token_of(wanted), wanted)
                if payload is None:
                    out.write(f"key {key} ({wanted.hex()}): not in this SSTable\n")
                else:
                    out.write(_line(table, token_of(wanted), wanted, payload))
                return 0
            shown = 0
            for token, pkey, payload in reader.scan():
                if limit is not None and shown >= limit:
                    out.write(f"(--limit {limit}: {reader.stats.partition_count - shown} more partitions not shown)\n")
                    break
                out.write(_line(table, token, pkey, payload))
                shown += 1
        except CorruptionError as exc:
            out.write(f"corruption: {exc.path} at offset {exc.offset}: {exc.what}\n")
            return 1
    return 0


def _wanted_key(table, key: str) -> bytes:
    if table is not None:
        return key_bytes(table, key)
    if not key.lower().startswith("0x"):
        raise ValueError("without the store's schema.db, --key takes the key's bytes in hex, e.g. 0x00000001")
    return bytes.fromhex(key[2:])


def _line(table, token: int, key: bytes, payload: bytes) -> str:
    try:
        text = partition_text(table, payload)
    except Exception as exc:  # noqa: BLE001 - a payload that does not decode: still show its bytes
        text = f"payload={payload.hex()} (undecodable: {exc})"
    return f"token={token} key={key_text(table, key)} {text}\n"


def hexdump(data: bytes) -> str:
    """`offset  16 hex bytes  |ascii|` lines, as in the worked example of the format doc."""
    lines = []
    for off in range(0, len(data), 16):
        chunk = data[off:off + 16]
        hexpart = " ".join(f"{b:02x}" for b in chunk)
        text = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
        lines.append(f"{off:04x}  {hexpart:<47}  |{text}|")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        sys.stderr.write("usage: python -m tools.sstable_dump <dt-N-Component.db>\n")
        return 2
    try:
        return dump_sstable(args[0], sys.stdout)
    except (ValueError, OSError) as e:
        sys.stderr.write(f"error: {e}\n")
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
