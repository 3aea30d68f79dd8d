"""Compaction planning: a pure function from a snapshot of SSTables to the next task.

Like mini-lsm's `generate_compaction_task(&snapshot)`: no clock (`now_s` is passed in), no
filesystem, no randomness; the same snapshot always gives the same plan. The executor
(`executor.py`) merges the inputs and commits the outputs. Strategies live in `size_tiered.py`
(STCS, the default) and `leveled.py` (LCS); this module holds the shared types, the option
checks, the single-sstable tombstone rule and the level invariant.

Contract of every plan: inputs are known generations, unique, sorted, never in `compacting`;
at least 2 inputs unless the reason is "tombstone" (or a user major of one sstable with
tombstones to drop). For an output level >= 1 the closed hull of the inputs overlaps no other
sstable of that level, so outputs written in (token, key) order keep levels >= 1
non-overlapping (`check_level_invariants`). Rules, options and defaults:
docs/compaction.md.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from engine.errors import InvalidRequest

NO_DELETION_TIME = 2**63 - 1
MAX_LEVEL = 8  # LCS has 9 levels, L0..L8 (LeveledManifest)
MIB = 1024 * 1024
_CLASS_PREFIX = "org.apache.cassandra.db.compaction."

COMMON_DEFAULTS = {
    "enabled": True,
    "min_threshold": 4,
    "max_threshold": 32,
    "tombstone_threshold": 0.2,
    "tombstone_compaction_interval": 86400,
    "unchecked_tombstone_compaction": False,
}


@dataclass(frozen=True, slots=True)
class SSTableInfo:
    generation: int
    size_bytes: int
    level: int  # 0 for STCS tables and for LCS L0
    first_token: int
    last_token: int  # signed 64-bit
    first_key: bytes
    last_key: bytes  # partitions are ordered by (token, key)
    min_timestamp: int
    max_timestamp: int  # µs
    max_local_deletion_time: int  # s; NO_DELETION_TIME if none
    droppable_tombstones: int  # tombstones whose ldt < gc_before, computed by the caller for `now`
    cell_count: int
    created_s: int

    @property
    def first(self) -> tuple[int, bytes]:
        return (self.first_token, self.first_key)

    @property
    def last(self) -> tuple[int, bytes]:
        return (self.last_token, self.last_key)


@dataclass(frozen=True, slots=True)
class CompactionTask:
    inputs: tuple[int, ...]  # generations, sorted
    output_level: int
    max_output_bytes: int | None  # split outputs at this size; None = one output
    reason: str  # "size-tiered bucket", "STCS in L0", "L0 in place", "L0->L1", "L1->L2", "tombstone", "major"


def make_task(inputs, output_level: int, max_output_bytes: int | None, reason: str) -> CompactionTask:
    gens = tuple(sorted({s.generation for s in inputs}))
    return CompactionTask(gens, output_level, max_output_bytes, reason)


# -- ranges ------------------------------------------------------------------------------------

def hull(sstables) -> tuple[tuple[int, bytes], tuple[int, bytes]]:
    """The closed (token, key) interval spanning every given sstable."""
    return min(s.first for s in sstables), max(s.last for s in sstables)


def intersects(lo, hi, s: SSTableInfo) -> bool:
    """Does sstable `s` overlap the closed interval [lo, hi]?"""
    return s.first <= hi and lo <= s.last


def overlapping(lo, hi, sstables) -> list[SSTableInfo]:
    return [s for s in sstables if intersects(lo, hi, s)]


# -- the level invariant ------------------------------------------------------------------------

def check_level_invariants(snapshot: list[SSTableInfo]) -> None:
    """Raise AssertionError unless the snapshot is well formed and levels >= 1 never overlap."""
    gens = [s.generation for s in snapshot]
    if len(gens) != len(set(gens)):
        raise AssertionError(f"duplicate generations in snapshot: {sorted(gens)}")
    by_level: dict[int, list[SSTableInfo]] = {}
    for s in snapshot:
        if not 0 <= s.level <= MAX_LEVEL:
            raise AssertionError(f"sstable {s.generation} has level {s.level}, outside 0..{MAX_LEVEL}")
        if s.first > s.last:
            raise AssertionError(f"sstable {s.generation} has first {s.first} > last {s.last}")
        if s.size_bytes < 0:
            raise AssertionError(f"sstable {s.generation} has negative size {s.size_bytes}")
        by_level.setdefault(s.level, []).append(s)
    for level, tables in by_level.items():
        if level == 0:
            continue
        tables.sort(key=lambda s: s.first)
        for a, b in zip(tables, tables[1:]):
            if not a.last < b.first:
                raise AssertionError(
                    f"L{level} sstables {a.generation} {a.first}..{a.last} and "
                    f"{b.generation} {b.first}..{b.last} overlap")


# -- single-sstable tombstone compaction --------------------------------------------------------

def droppable_ratio(s: SSTableInfo) -> float:
    return s.droppable_tombstones / max(1, s.cell_count)


def worth_dropping_tombstones(s: SSTableInfo, snapshot, options: dict, now_s: int, gc_before: int) -> bool:
    """Cassandra's AbstractCompactionStrategy.worthDroppingTombstones, without key estimates.

    Old enough (now >= created + interval), droppable ratio above the threshold, and either
    unchecked, or no other live sstable overlaps it, or it is fully expired (every deletion is
    past gc_before and all its data is older than anything that overlaps it).
    """
    if now_s < s.created_s + options["tombstone_compaction_interval"]:
        return False
    if droppable_ratio(s) <= options["tombstone_threshold"]:
        return False
    if options["unchecked_tombstone_compaction"]:
        return True
    others = [o for o in snapshot if o.generation != s.generation and intersects(s.first, s.last, o)]
    if not others:
        return True
    return s.max_local_deletion_time < gc_before and s.max_timestamp < min(o.min_timestamp for o in others)


# -- options ------------------------------------------------------------------------------------

def _bad(name: str, value, why: str) -> InvalidRequest:
    return InvalidRequest(f"compaction option {name}={value!r} is invalid: {why}")


def parse_int(options: dict, name: str, minimum: int) -> int:
    value = options[name]
    if isinstance(value, bool):
        raise _bad(name, value, "expected an integer")
    if isinstance(value, str):
        try:
            value = int(value.strip())
        except ValueError:
            raise _bad(name, options[name], "expected an integer") from None
    if not isinstance(value, int):
        raise _bad(name, value, "expected an integer")
    if value < minimum:
        raise _bad(name, value, f"must be >= {minimum}")
    return value


def parse_float(options: dict, name: str, minimum: float) -> float:
    value = options[name]
    if isinstance(value, bool):
        raise _bad(name, value, "expected a number")
    try:
        value = float(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError):
        raise _bad(name, options[name], "expected a number") from None
    if not math.isfinite(value):
        raise _bad(name, options[name], "must be finite")
    if value < minimum:
        raise _bad(name, options[name], f"must be >= {minimum}")
    return value


def parse_bool(options: dict, name: str) -> bool:
    value = options[name]
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise _bad(name, value, "expected true or false")


def validate_common(opts: dict) -> None:
    """Check (in place) the options every strategy accepts (CompactionParams, AbstractCompactionStrategy)."""
    opts["enabled"] = parse_bool(opts, "enabled")
    opts["min_threshold"] = parse_int(opts, "min_threshold", 2)
    opts["max_threshold"] = parse_int(opts, "max_threshold", 2)
    if opts["min_threshold"] > opts["max_threshold"]:
        raise _bad("min_threshold", opts["min_threshold"],
                   f"cannot be greater than max_threshold ({opts['max_threshold']})")
    opts["tombstone_threshold"] = parse_float(opts, "tombstone_threshold", 0.0)
    opts["tombstone_compaction_interval"] = parse_int(opts, "tombstone_compaction_interval", 0)
    opts["unchecked_tombstone_compaction"] = parse_bool(opts, "unchecked_tombstone_compaction")


def _strategies() -> dict:
    from engine.compaction import leveled, size_tiered

    return {"SizeTieredCompactionStrategy": size_tiered, "LeveledCompactionStrategy": leveled}


_UNSUPPORTED = ("TimeWindowCompactionStrategy", "UnifiedCompactionStrategy", "DateTieredCompactionStrategy")


def _strategy_of(options) -> tuple[str, object]:
    if not isinstance(options, dict):
        raise InvalidRequest(f"compaction options must be a map, got {type(options).__name__}")
    name = options.get("class", "SizeTieredCompactionStrategy")
    if not isinstance(name, str):
        raise InvalidRequest(f"compaction option class={name!r} is invalid: expected a class name")
    short = name[len(_CLASS_PREFIX):] if name.startswith(_CLASS_PREFIX) else name
    strategies = _strategies()
    if short in strategies:
        return short, strategies[short]
    if short in _UNSUPPORTED:
        raise InvalidRequest(f"compaction option class={name!r}: {short} is not supported by dynatable "
                             f"(use SizeTieredCompactionStrategy or LeveledCompactionStrategy)")
    raise InvalidRequest(f"compaction option class={name!r} is unknown "
                         f"(use SizeTieredCompactionStrategy or LeveledCompactionStrategy)")


def validate_options(options: dict) -> dict:
    """Return a copy of the options with Cassandra's defaults filled in and values typed.

    Raises InvalidRequest naming the option for an unknown class or option, or a bad value.
    Values may be given as numbers/booleans or as strings (CQL maps hold strings).
    """
    short, strategy = _strategy_of(options)
    defaults = {**COMMON_DEFAULTS, **strategy.DEFAULTS}
    unknown = sorted(k for k in options if k != "class" and k not in defaults)
    if unknown:
        raise InvalidRequest(f"compaction option(s) {', '.join(unknown)} are not understood by {short}")
    opts = {**defaults, **{k: v for k, v in options.items() if k != "class"}}
    validate_common(opts)
    strategy.validate(opts)
    return {"class": short, **opts}


def _check_snapshot(snapshot, compacting) -> None:
    gens = [s.generation for s in snapshot]
    assert len(gens) == len(set(gens)), f"duplicate generations in snapshot: {sorted(gens)}"


def plan(options: dict, snapshot: list[SSTableInfo], compacting: frozenset[int], now_s: int,
         gc_grace_seconds: int) -> CompactionTask | None:
    """The next background compaction for a table, or None when nothing is worth doing."""
    opts = validate_options(options)
    if isinstance(gc_grace_seconds, bool) or not isinstance(gc_grace_seconds, int) or gc_grace_seconds < 0:
        raise InvalidRequest(f"gc_grace_seconds={gc_grace_seconds!r} is invalid: must be an integer >= 0")
    _check_snapshot(snapshot, compacting)
    if not opts["enabled"]:
        return None
    _, strategy = _strategy_of(opts)
    return strategy.plan(opts, list(snapshot), frozenset(compacting), now_s, now_s - gc_grace_seconds)


def plan_major(options: dict, snapshot: list[SSTableInfo], compacting: frozenset[int]) -> CompactionTask | None:
    """A user-requested major compaction (`nodetool compact`), regardless of `enabled`."""
    opts = validate_options(options)
    _check_snapshot(snapshot, compacting)
    _, strategy = _strategy_of(opts)
    return strategy.plan_major(opts, list(snapshot), frozenset(compacting))
