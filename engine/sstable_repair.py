"""Rebuild lost or unreadable MANIFESTs from the SSTables on disk (LevelDB's RepairDB, in the
spirit of Cassandra's sstablescrub). `dynatable sstable repair STORE_DIR` drives it.

For each table directory under `<store>/data/` whose MANIFEST is missing or unreadable:
every complete SSTable (TOC.txt present) is opened and read whole (`check_invariants`: every
block CRC, index <-> data agreement, statistics); one that passes is kept, one that fails, and
every file of an incomplete generation, is moved to `<table dir>/quarantine/` (never deleted).
The new MANIFEST names the kept SSTables at level 0 (compaction re-levels them) and a
next_generation above every generation seen. The old unreadable MANIFEST is moved aside too.
Tables whose MANIFEST loads are left alone. Run it with the store closed.
Keeping every complete SSTable may keep inputs of a compaction whose outputs are kept as well:
duplicates reconcile to the same rows. Operations: docs/operations.md (repair).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Callable

from engine.errors import CorruptionError
from engine.files import fsync_directory
from engine.manifest import FILE_NAME, Manifest
from engine.sstable_files import component_paths, list_generations
from engine.sstable_reader import SSTableReader

QUARANTINE_DIR = "quarantine"


@dataclass
class TableRepair:
    directory: str
    status: str                                   # "ok" (manifest loads) | "rebuilt"
    kept: list[int] = field(default_factory=list)
    quarantined: list[tuple[int, str]] = field(default_factory=list)   # (generation, why)


def table_directories(store: str) -> list[str]:
    data = os.path.join(store, "data")
    out = []
    for ks in sorted(os.listdir(data)) if os.path.isdir(data) else []:
        ks_dir = os.path.join(data, ks)
        if os.path.isdir(ks_dir):
            out += [os.path.join(ks_dir, t) for t in sorted(os.listdir(ks_dir))
                    if os.path.isdir(os.path.join(ks_dir, t))]
    return out


def repair_store(store: str, progress: Callable[[str], None] = lambda line: None) -> list[TableRepair]:
    """Repair every table directory of the store at `store`; `progress` gets one line per step."""
    if not os.path.isdir(os.path.join(store, "data")):
        raise FileNotFoundError(f"{store} has no data/ directory: not a dynatable store")
    return [repair_table(d, progress) for d in table_directories(store)]


def repair_table(directory: str, progress: Callable[[str], None]) -> TableRepair:
    path = os.path.join(directory, FILE_NAME)
    if os.path.exists(path):
        try:
            manifest = Manifest.load(directory)
            progress(f"{directory}: MANIFEST ok ({len(manifest.levels)} sstables), left alone")
            return TableRepair(directory, "ok", sorted(manifest.levels))
        except CorruptionError as e:
            progress(f"{directory}: MANIFEST unreadable ({e.what.split(';')[0]} at offset "
                     f"{e.offset}); moving it to {QUARANTINE_DIR}/")
            _quarantine(directory, [path])
    else:
        progress(f"{directory}: MANIFEST missing")
    result = TableRepair(directory, "rebuilt")
    complete = list_generations(directory)
    seen = {int(n.split("-")[1]) for n in os.listdir(directory)
            if n.startswith("dt-") and n.split("-")[1].isdigit()}
    for i, gen in enumerate(complete, 1):
        progress(f"  [{i}/{len(complete)}] checking generation {gen}")
        why = _check(directory, gen)
        if why is None:
            result.kept.append(gen)
        else:
            progress(f"    quarantined: {why}")
            result.quarantined.append((gen, why))
            _quarantine(directory, component_paths(directory, gen))
    for gen in sorted(seen - set(complete)):
        progress(f"  generation {gen} is incomplete (no TOC.txt): quarantined")
        result.quarantined.append((gen, "incomplete: no TOC.txt"))
        _quarantine(directory, component_paths(directory, gen))
    manifest = Manifest(directory, {}, max(seen, default=0) + 1)
    manifest.commit({gen: 0 for gen in result.kept}, [])
    progress(f"{directory}: MANIFEST rebuilt: kept {len(result.kept)} sstables "
             f"{result.kept}, quarantined {len(result.quarantined)}")
    return result


def _check(directory: str, generation: int) -> str | None:
    """None if the SSTable reads whole and checks out, else why not."""
    try:
        with SSTableReader.open(directory, generation) as reader:
            reader.check_invariants(bloom_sample=10**9)
    except CorruptionError as e:
        return f"corruption in {e.path} at offset {e.offset}: {e.what}"
    except AssertionError as e:
        return f"inconsistent: {e}"
    except OSError as e:
        return f"unreadable: {e}"
    return None


def _quarantine(directory: str, paths: list[str]) -> None:
    target = os.path.join(directory, QUARANTINE_DIR)
    os.makedirs(target, exist_ok=True)
    for path in paths:
        os.replace(path, os.path.join(target, os.path.basename(path)))
    fsync_directory(directory)
