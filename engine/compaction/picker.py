"""Compaction planning: a pure function from a snapshot of SSTables to the next task.

Like mini-lsm's `generate_compaction_task(&snapshot)`: no clock (`now_s` is passed in), no
filesystem, no randomness; the same snapshot always gives the same plan. The executor
(`executor.py`) merges the inputs and commits the outputs. Strategies live in `size_tiered.py`
(STCS, the default) and `leveled.py` (LCS); the types they share in `task.py`, the option
parsers in `options.py`; this module picks the strategy, validates the options and plans.

Contract of every plan: inputs are known generations, unique, sorted, never in `compacting`;
at least 2 inputs unless the reason is "tombstone" (or a user major of one sstable with
tombstones to drop). For an output level >= 1 the closed hull of the inputs overlaps no other
sstable of that level, so outputs written in (token, key) order keep levels >= 1
non-overlapping (`check_level_invariants`). Rules, options and defaults:
docs/compaction.md.
"""
from __future__ import annotations

from engine.compaction import leveled, size_tiered
from engine.compaction.options import COMMON_DEFAULTS, validate_common
from engine.compaction.task import CompactionTask, SSTableInfo, make_task
from engine.errors import InvalidRequest

# the planning API the column family uses; the task types come with it
__all__ = ["CompactionTask", "SSTableInfo", "make_task", "plan", "plan_major", "validate_options"]

_CLASS_PREFIX = "org.apache.cassandra.db.compaction."
STRATEGIES = {"SizeTieredCompactionStrategy": size_tiered, "LeveledCompactionStrategy": leveled}
_UNSUPPORTED = ("TimeWindowCompactionStrategy", "UnifiedCompactionStrategy", "DateTieredCompactionStrategy")


def _strategy_of(options) -> tuple[str, object]:
    if not isinstance(options, dict):
        raise InvalidRequest(f"compaction options must be a map, got {type(options).__name__}")
    name = options.get("class", "SizeTieredCompactionStrategy")
    if not isinstance(name, str):
        raise InvalidRequest(f"compaction option class={name!r} is invalid: expected a class name")
    short = name[len(_CLASS_PREFIX):] if name.startswith(_CLASS_PREFIX) else name
    if short in STRATEGIES:
        return short, STRATEGIES[short]
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
