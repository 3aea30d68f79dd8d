"""The manifest: the crash-safe list of a table's live SSTables (and their levels).

An SSTable exists for reads only once the manifest names it; a compaction's outputs replace its
inputs in one manifest write. The file is replaced atomically (write `MANIFEST.tmp`, fsync,
rename over `MANIFEST`, fsync the directory), so after a crash it is either the old or the new
list, never a mix. On open, SSTable files the manifest does not name are leftovers of an
interrupted flush or compaction and are deleted. Layout: docs/format.md#manifest.

A table directory gets its (empty) MANIFEST before its first SSTable is written, so a directory
holding SSTable files but no MANIFEST has lost it: `load` refuses (CorruptionError naming the
file and the repair command, `dynatable sstable repair`) rather than let the open delete every
SSTable as a leftover. An unreadable MANIFEST is refused the same way.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

import msgpack

from engine.encoding import U16, check, frame_checksummed, unframe_checksummed
from engine.errors import CorruptionError
from engine.files import write_atomically

MAGIC = b"DTMF"
VERSION = 1
FILE_NAME = "MANIFEST"
REPAIR = "dynatable sstable repair {store}"


def store_path(table_directory: str) -> str:
    """The store's path for a table directory `<store>/data/<keyspace>/<table>-<id>`."""
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(table_directory))))


def repair_hint(table_directory: str) -> str:
    return "rebuild it with: " + REPAIR.format(store=store_path(table_directory))


def sstable_files(directory: str) -> list[str]:
    """Names of the SSTable files (`dt-*`) in a table directory, sorted."""
    try:
        return sorted(n for n in os.listdir(directory) if n.startswith("dt-"))
    except FileNotFoundError:
        return []


def sstable_directories(data_directory: str) -> list[str]:
    """Table directories `<data>/<keyspace>/<table>-<id>` that hold SSTable files, sorted."""
    out = []
    for ks in sorted(os.listdir(data_directory)) if os.path.isdir(data_directory) else []:
        ks_dir = os.path.join(data_directory, ks)
        for table in sorted(os.listdir(ks_dir)) if os.path.isdir(ks_dir) else []:
            if sstable_files(os.path.join(ks_dir, table)):
                out.append(os.path.join(ks_dir, table))
    return out


@dataclass
class Manifest:
    directory: str
    levels: dict[int, int] = field(default_factory=dict)  # generation -> level
    next_generation: int = 1

    @property
    def path(self) -> str:
        return os.path.join(self.directory, FILE_NAME)

    @classmethod
    def load(cls, directory: str) -> "Manifest":
        """The table's manifest; a new directory gets an empty one written at once."""
        path = os.path.join(directory, FILE_NAME)
        if not os.path.exists(path):
            files = sstable_files(directory)
            if files:
                raise CorruptionError(path, 0, f"missing while {len(files)} SSTable files exist "
                                      f"(e.g. {files[0]}); {repair_hint(directory)}")
            manifest = cls(directory)
            manifest.commit({}, [])
            return manifest
        try:
            return cls._decode(directory, path)
        except CorruptionError as e:
            raise CorruptionError(e.path, e.offset, f"{e.what}; {repair_hint(directory)}") from None

    @classmethod
    def _decode(cls, directory: str, path: str) -> "Manifest":
        with open(path, "rb") as f:
            data = f.read()
        check(len(data) >= 6 and data[:4] == MAGIC, path, 0, "manifest magic mismatch")
        (version,) = U16.unpack_from(data, 4)
        check(version == VERSION, path, 4, f"manifest version {version} is not supported (expected {VERSION})")
        payload, end = unframe_checksummed(data, 6, path)
        check(end == len(data), path, end, "trailing bytes after the manifest frame")
        try:
            body = msgpack.unpackb(payload, strict_map_key=False)
            levels = {int(g): int(lvl) for g, lvl in body["sstables"]}
            return cls(directory, levels, int(body["next_generation"]))
        except (ValueError, TypeError, KeyError, msgpack.UnpackException):
            raise CorruptionError(path, 6, "manifest body is malformed") from None

    def new_generation(self) -> int:
        gen = self.next_generation
        self.next_generation += 1
        return gen

    def commit(self, added: dict[int, int], removed: list[int]) -> None:
        """Atomically add generations (with levels) and remove others."""
        levels = dict(self.levels)
        for gen in removed:
            levels.pop(gen, None)
        levels.update(added)
        body = {"sstables": sorted(levels.items()), "next_generation": self.next_generation}
        data = MAGIC + U16.pack(VERSION) + frame_checksummed(msgpack.packb(body, use_bin_type=True))
        write_atomically(self.path, data)
        self.levels = levels
