"""The manifest: the crash-safe list of a table's live SSTables (and their levels).

An SSTable exists for reads only once the manifest names it; a compaction's outputs replace its
inputs in one manifest write. The file is replaced atomically (write `MANIFEST.tmp`, fsync,
rename over `MANIFEST`, fsync the directory), so after a crash it is either the old or the new
list, never a mix. On open, SSTable files the manifest does not name are leftovers of an
interrupted flush or compaction and are deleted. Layout: docs/format.md#manifest.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

import msgpack

from engine.encoding import U16, check, frame_checksummed, unframe_checksummed
from engine.files import write_atomically

MAGIC = b"DTMF"
VERSION = 1
FILE_NAME = "MANIFEST"


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
        path = os.path.join(directory, FILE_NAME)
        if not os.path.exists(path):
            return cls(directory)
        with open(path, "rb") as f:
            data = f.read()
        check(len(data) >= 6 and data[:4] == MAGIC, path, 0, "manifest magic mismatch")
        (version,) = U16.unpack_from(data, 4)
        check(version == VERSION, path, 4, f"manifest version {version} is not supported (expected {VERSION})")
        payload, end = unframe_checksummed(data, 6, path)
        check(end == len(data), path, end, "trailing bytes after the manifest frame")
        body = msgpack.unpackb(payload, strict_map_key=False)
        check(isinstance(body, dict) and "sstables" in body, path, 6, "manifest body is malformed")
        return cls(directory, {int(g): int(lvl) for g, lvl in body["sstables"]}, int(body["next_generation"]))

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
