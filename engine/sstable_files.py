"""SSTable files on disk: the names of an sstable's components, which generations are complete,
reading a component whole, deleting an sstable (TOC.txt first), and the Data.db magic both
formats share. Shared by the format-2 reader (engine/sstable_reader.py), the read-only format-1
reader (engine/sstable_v1.py), the writer, compaction, snapshots and repair.

Invariant: an sstable is complete exactly when its `dt-<generation>-TOC.txt` exists; the writer
writes it last and `delete_sstable` removes it first.
"""
from __future__ import annotations

import os
import re

from engine.sstable_stats import fsync_directory

DATA_MAGIC = b"DTSD"
SCAN_CHUNK_BYTES = 256 * 1024           # sequential reads of Data.db by scans and validation
_TOC_RE = re.compile(r"^dt-(\d+)-TOC\.txt$")


def component_path(directory: str, generation: int, component: str) -> str:
    return os.path.join(directory, f"dt-{generation}-{component}")


def list_generations(directory: str) -> list[int]:
    """Generations of complete sstables (TOC.txt present), sorted."""
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return []
    return sorted(int(m.group(1)) for m in map(_TOC_RE.match, names) if m)


def component_paths(directory: str, generation: int) -> list[str]:
    """Every file of a generation, complete or not (temporary files included), sorted."""
    prefix = f"dt-{generation}-"
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return []
    return sorted(os.path.join(directory, n) for n in names if n.startswith(prefix))


def sstable_components(directory: str, generation: int) -> tuple[str, ...]:
    """The components TOC.txt lists (either format), TOC.txt last; FileNotFoundError if none."""
    toc = read_whole(component_path(directory, generation, "TOC.txt")).decode("ascii", "replace")
    names = tuple(line for line in toc.split("\n") if line)
    return tuple(n for n in names if n != "TOC.txt") + ("TOC.txt",)


def delete_sstable(directory: str, generation: int) -> None:
    """Remove TOC.txt first (the sstable stops being complete), then the rest; fsync the dir."""
    toc = component_path(directory, generation, "TOC.txt")
    if os.path.exists(toc):
        os.remove(toc)
    for path in component_paths(directory, generation):
        os.remove(path)
    fsync_directory(directory)


def read_whole(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


