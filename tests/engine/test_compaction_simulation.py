"""The compaction pickers in a simulated loop: write amplification of STCS and LCS over many
flushes, and hypothesis properties (the plan contract, determinism, and a loop with tasks running
concurrently that terminates and keeps levels >= 1 non-overlapping).
"""
from __future__ import annotations

import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.compaction import leveled, picker
from engine.compaction.picker import plan, plan_major
from engine.compaction.task import MAX_LEVEL, NO_DELETION_TIME, check_level_invariants
from tests.engine.compaction_snapshots import (DAY, LCS, MAX_TOKEN, MIB, MIN_TOKEN, NOW, STCS, apply_task,
                                               check_task, drain, plan_of, sst)


def test_a_lone_sstable_over_its_level_target_goes_up_alone():
    """One partition too large to split: two flushes at one token make a single 4 MiB L1
    sstable, over L1's 2 MiB target with no neighbour to pair with; it goes up alone, and the
    loop settles with every level within its target (hypothesis found the stuck level)."""
    opts = {**LCS, "sstable_size_in_mb": 1, "fanout_size": 2, "tombstone_compaction_interval": 0}
    snapshot = [sst(1, 2 * MIB, 0, 0, 0, created=0), sst(2, 2 * MIB + 1, 0, 0, 0, created=0)]
    snapshot, _, _ = drain(opts, snapshot, 3, DAY)
    levels = {s.level: s.size_bytes for s in snapshot}
    assert levels == {2: 4 * MIB + 1}  # L1 (target 2 MiB) -> L2 (4 MiB, within the 1.001 slack)
    lone = plan(opts, [sst(5, 4 * MIB + 1, 1, 0, 0)], frozenset(), DAY, 0)
    assert lone.inputs == (5,) and lone.output_level == 2 and lone.reason == "L1->L2 alone"


def simulate_write_amplification(options, flushes: int, flush_bytes: int, sequential=False, seed=1):
    """Flush `flushes` equal sstables, compacting to quiescence after each; return (write
    amplification = bytes written by flush and compaction / bytes flushed, final snapshot).
    Random keys: each flush spans the whole token range (a memtable of random writes does);
    sequential: flush i holds the i-th slice of the token range (no two flushes overlap)."""
    rng = random.Random(seed)
    snapshot, next_gen, written = [], 1, 0
    width = 2**64 // flushes
    for i in range(flushes):
        if sequential:
            lo, hi = MIN_TOKEN + i * width, MIN_TOKEN + (i + 1) * width - 1
        else:
            lo, hi = MIN_TOKEN + rng.randrange(2**20), MAX_TOKEN - rng.randrange(2**20)
        snapshot.append(sst(next_gen, flush_bytes, 0, lo, hi, max_ts=i, min_ts=i, created=i))
        next_gen += 1
        written += flush_bytes
        snapshot, next_gen, w = drain(options, snapshot, next_gen, now_s=i)
        written += w
    return written / (flushes * flush_bytes), snapshot


def test_write_amplification(capsys):
    flush = 16 * MIB
    rows = []
    for name, options in [("STCS", STCS), ("LCS", LCS), ("LCS fanout 4", {**LCS, "fanout_size": 4})]:
        for sequential in (False, True):
            wa, snap = simulate_write_amplification(options, 400, flush, sequential)
            levels = {}
            for s in snap:
                levels[s.level] = levels.get(s.level, 0) + 1
            keys = "sequential" if sequential else "random"
            rows.append(f"{name:12} {keys:10} keys: 400 flushes of 16 MiB -> write amplification {wa:5.2f}, "
                        f"{len(snap)} sstables by level {dict(sorted(levels.items()))}")
            assert 1 <= wa < 40
    with capsys.disabled():
        print("\n" + "\n".join(rows))


# -- properties -------------------------------------------------------------------------------

tokens = st.integers(min_value=-1000, max_value=1000)


@st.composite
def sstables(draw, max_level=MAX_LEVEL):
    n = draw(st.integers(min_value=0, max_value=40))
    gens = draw(st.lists(st.integers(min_value=1, max_value=10_000), min_size=n, max_size=n, unique=True))
    out = []
    for g in gens:
        a, b = sorted(draw(st.tuples(tokens, tokens)))
        cells = draw(st.integers(min_value=0, max_value=100))
        out.append(sst(g, draw(st.integers(min_value=0, max_value=400 * MIB)),
                       draw(st.integers(min_value=0, max_value=max_level)), a, b,
                       fk=draw(st.sampled_from([b"", b"a"])), lk=draw(st.sampled_from([b"", b"z"])),
                       min_ts=draw(st.integers(0, 100)), max_ts=draw(st.integers(100, 200)),
                       ldt=draw(st.sampled_from([0, NOW, NO_DELETION_TIME])),
                       droppable=draw(st.integers(min_value=0, max_value=cells)), cells=cells,
                       created=draw(st.integers(min_value=0, max_value=NOW))))
    return out


option_sets = st.sampled_from([
    STCS, {"min_threshold": 2, "max_threshold": 3, "min_sstable_size": 0}, {"unchecked_tombstone_compaction": True},
    {**LCS, "sstable_size_in_mb": 1, "fanout_size": 2}, LCS, {**LCS, "tombstone_compaction_interval": 0},
])


@settings(max_examples=300, deadline=None)
@given(option_sets, sstables(), st.data())
def test_plan_contract_and_determinism(options, snapshot, data):
    compacting = frozenset(data.draw(st.sets(st.sampled_from([s.generation for s in snapshot]))) if snapshot else ())
    task = plan_of(options, snapshot, compacting)
    shuffled = data.draw(st.permutations(snapshot))
    assert plan_of(options, shuffled, compacting) == task
    major = plan_major(options, snapshot, compacting)
    assert plan_major(options, shuffled, compacting) == major
    gens = {s.generation for s in snapshot}
    for t in (task, major):
        if t is not None:
            assert t.inputs == tuple(sorted(set(t.inputs)))
            assert set(t.inputs) <= gens - compacting
            assert len(t.inputs) >= 2 or t.reason in ("tombstone", "major") or t.reason.endswith(" alone")
            assert 0 <= t.output_level <= MAX_LEVEL


ops = st.lists(st.one_of(
    st.tuples(st.just("flush"), tokens, tokens, st.integers(1, 3 * MIB), st.integers(0, 50)),
    st.tuples(st.just("plan")),
    st.tuples(st.just("finish"), st.integers(0, 10)),
), max_size=80)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from([
    {**LCS, "sstable_size_in_mb": 1, "fanout_size": 2, "tombstone_compaction_interval": 0},
    {**LCS, "sstable_size_in_mb": 2, "fanout_size": 3},
    {"min_threshold": 2, "min_sstable_size": 0, "tombstone_compaction_interval": 0},
    STCS,
]), ops)
def test_simulated_loop_with_concurrent_tasks(options, program):
    """Tasks planned while others run never collide; the loop terminates; levels stay valid."""
    snapshot, in_flight, next_gen, now = [], [], 1, 0
    for op in program:
        now += 3600
        if op[0] == "flush":
            _, a, b, size, droppable = op
            a, b = sorted((a, b))
            snapshot.append(sst(next_gen, size, 0, a, b, droppable=droppable, cells=100, created=now,
                                min_ts=now, max_ts=now))
            next_gen += 1
        elif op[0] == "plan":
            busy = frozenset().union(*(t.inputs for t in in_flight))
            task = plan(options, snapshot, busy, now, 0)
            if task is not None:
                check_task(task, snapshot, in_flight)
                in_flight.append(task)
        elif in_flight:
            task = in_flight.pop(op[1] % len(in_flight))
            snapshot, next_gen, _ = apply_task(snapshot, task, next_gen, now)
        check_level_invariants(snapshot)
    for task in in_flight:
        snapshot, next_gen, _ = apply_task(snapshot, task, next_gen, now)
        check_level_invariants(snapshot)
    snapshot, next_gen, _ = drain(options, snapshot, next_gen, now + DAY)
    if options.get("class") == "LeveledCompactionStrategy":
        opts = picker.validate_options(options)
        for n in range(1, MAX_LEVEL):  # quiescent: no level >= 1 is over its target
            assert sum(s.size_bytes for s in snapshot if s.level == n) <= \
                leveled.SCORE_SLACK * leveled.max_bytes_for_level(opts, n)
    task = plan(options, snapshot, frozenset(), now + DAY, 0)
    assert task is None
    major = plan_major(options, snapshot, frozenset())
    if major is not None:
        snapshot, next_gen, _ = apply_task(snapshot, major, next_gen, now + DAY)
        check_level_invariants(snapshot)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 2**32), st.integers(1, 150), st.integers(0, 12), st.randoms())
def test_saturated_concurrent_plans(seed, flushes, fresh, rnd):
    """Build leveled data with fanout 10, then plan with fanout 2 until nothing more can start
    (many level pushes run at once), finishing the tasks in a random order."""
    gen_rng = random.Random(seed)

    def flush(gen):
        a, b = sorted(gen_rng.randrange(-10**6, 10**6) for _ in range(2))
        return sst(gen, gen_rng.randrange(1, 3 * MIB), 0, a, b)

    built = {**LCS, "sstable_size_in_mb": 1, "fanout_size": 10}
    snapshot, next_gen = [], 1
    for _ in range(flushes):
        snapshot.append(flush(next_gen))
        snapshot, next_gen, _ = drain(built, snapshot, next_gen + 1, 0)
    for _ in range(fresh):
        snapshot.append(flush(next_gen))
        next_gen += 1
    options = {**LCS, "sstable_size_in_mb": 1, "fanout_size": 2}
    while True:
        in_flight = []
        while (task := plan(options, snapshot, frozenset().union(*(t.inputs for t in in_flight)), 0, 0)):
            check_task(task, snapshot, in_flight)
            in_flight.append(task)
        if not in_flight:
            break
        rnd.shuffle(in_flight)
        for task in in_flight:
            snapshot, next_gen, _ = apply_task(snapshot, task, next_gen, 0)
            check_level_invariants(snapshot)
