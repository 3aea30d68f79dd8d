"""Print an sstable: its statistics (field names as in docs/format.md (SSTables)), then one line per
partition: token, key (hex) and the payload (engine.partition.describe when importable, else hex).

Usage: python -m tools.sstable_dump <any component of the sstable, e.g. dt-3-Data.db>
On corruption the error (file and offset) is printed and the dump stops.
"""
from __future__ import annotations

import os
import re
import sys
from typing import Callable, TextIO

from engine.errors import CorruptionError
from engine.sstable_reader import SSTableReader
from engine.sstable_stats import FIELD_NAMES

_NAME_RE = re.compile(r"^dt-(\d+)-[A-Za-z]+\.(db|txt)$")


def parse_component_path(path: str) -> tuple[str, int]:
    """(directory, generation) of a component path like .../dt-3-Index.db."""
    name = os.path.basename(path)
    m = _NAME_RE.match(name)
    if not m:
        raise ValueError(f"{path!r} is not an sstable component (expected dt-<generation>-...)")
    return os.path.dirname(path) or ".", int(m.group(1))


def _describer() -> Callable[[bytes], str]:
    try:
        from engine.partition import describe  # written by the engine owners; optional here
    except ImportError:
        return lambda payload: "payload=" + payload.hex()

    def safe(payload: bytes) -> str:
        try:
            return describe(payload)
        except Exception as exc:  # a payload the engine cannot decode: still show its bytes
            return f"payload={payload.hex()} (undecodable: {exc})"
    return safe


def format_stat(name: str, value) -> str:
    if isinstance(value, bytes):
        return f"{name}: {value.hex()}"
    return f"{name}: {value}"


def dump_sstable(path_of_any_component: str, out: TextIO) -> None:
    directory, generation = parse_component_path(path_of_any_component)
    try:
        reader = SSTableReader.open(directory, generation)
    except CorruptionError as exc:
        out.write(f"corruption: {exc.path} at offset {exc.offset}: {exc.what}\n")
        return
    with reader:
        out.write(f"sstable: {directory} generation {generation} ({reader.size_bytes} bytes)\n")
        for name in FIELD_NAMES:
            out.write(format_stat(name, getattr(reader.stats, name)) + "\n")
        describe = _describer()
        try:
            for token, key, payload in reader.scan():
                out.write(f"token={token} key={key.hex()} {describe(payload)}\n")
        except CorruptionError as exc:
            out.write(f"corruption: {exc.path} at offset {exc.offset}: {exc.what}\n")


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
    dump_sstable(args[0], sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
