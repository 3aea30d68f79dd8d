"""What each consistency level really guarantees, checked on seeded simulation runs.

Hypothesis drives the faults (partitions, crashes, restarts, pauses, skew, time) while a seeded
closed-loop workload issues writes, deletes and reads at a drawn pair of levels; the checkers
assert exactly the properties whose preconditions the pair meets (specs/testing.md §4), and the
convergence properties after heal, hints and repair for every pair. A failure prints the seed
and the `dynatable sim` command that replays it. Coverage is asserted, not assumed: every level
must have successful operations, and the runs must include read repairs, delivered hints and
unavailable errors.
"""
import os

import pytest
from hypothesis import Phase, event, note, settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, rule

from ring.verify.workload import Workload
from tools.sim_run import check_run, replay_command

WRITES = ["ONE", "TWO", "QUORUM", "ALL", "LOCAL_QUORUM", "EACH_QUORUM", "LOCAL_ONE", "ANY"]
READS = ["ONE", "TWO", "QUORUM", "ALL", "LOCAL_QUORUM", "EACH_QUORUM", "LOCAL_ONE"]
TWO_DCS = ["dc1", "dc1", "dc1", "dc2", "dc2", "dc2"]
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")
EXAMPLES = {"dev": 6, "ci": 16, "nightly": 400}.get(PROFILE, 16)

COVERAGE: dict[str, int] = {}
LEVEL_RUNS: list = []


def _record(result, in_hypothesis: bool = False) -> None:
    for name, n in result.events.items():
        COVERAGE[name] = COVERAGE.get(name, 0) + n
        if n and in_hypothesis:
            event(name)  # hypothesis' statistics show how often each event happened


def _check(result, seed, write_cl, read_cl, dcs, skew=False):
    failures = check_run(result)
    assert not failures, (f"seed={seed}\nreplay: {replay_command(seed, write_cl, read_cl, dcs, skew)}\n"
                          + "\n".join(str(f) for f in failures))


class ClusterMachine(RuleBasedStateMachine):
    """Faults are rules (hypothesis shrinks them); the workload between them is seeded."""

    @initialize(seed=st.integers(0, 2**32 - 1), write_cl=st.sampled_from(WRITES), read_cl=st.sampled_from(READS),
                two_dcs=st.booleans())
    def boot(self, seed, write_cl, read_cl, two_dcs):
        self.dcs = TWO_DCS if two_dcs else None
        self.seed, self.write_cl, self.read_cl = seed, write_cl, read_cl
        note(f"seed={seed} replay: {replay_command(seed, write_cl, read_cl, self.dcs)}")
        self.w = Workload(seed, write_cl, read_cl, dcs=self.dcs, faults=False)
        self.w.setup()
        self.names = list(self.w.sim.nodes)

    def _work(self, steps=20):
        w = self.w
        for _ in range(steps):
            for client in w.clients:
                if client not in w.pending and w.rng.random() < 0.6:
                    w._issue(client)
            w.sim.run_for(w.rng.randint(1, 40))
            w._collect()

    @rule(victim=st.integers(0, 5), symmetric=st.booleans())
    def partition_one(self, victim, symmetric):
        name = self.names[victim % len(self.names)]
        self.w.sim.partition({name}, set(self.names) - {name}, symmetric=symmetric)
        self._work()

    @rule()
    def heal(self):
        self.w.sim.heal()
        self._work()

    @rule(victim=st.integers(0, 5))
    def crash(self, victim):
        name = self.names[victim % len(self.names)]
        down = [n for n in self.names if self.w.sim.nodes[n].node is None]
        if len(down) < len(self.names) // 2:
            self.w.sim.crash(name, lose_unsynced=False)
        self._work()

    @rule()
    def restart_all(self):
        for n in self.names:
            self.w.sim.restart(n)
        self._work()

    @rule(victim=st.integers(0, 5), ms=st.integers(200, 3000))
    def pause(self, victim, ms):
        name = self.names[victim % len(self.names)]
        self.w.sim.pause(name)
        self._work(ms // 20)
        self.w.sim.resume(name)

    @rule(ms=st.integers(1, 3000))
    def advance(self, ms):
        self.w.sim.run_for(ms)
        self._work(5)

    def teardown(self):
        if not hasattr(self, "w"):
            return
        result = self.w.finish()
        _record(result, in_hypothesis=True)
        _check(result, self.seed, self.write_cl, self.read_cl, self.dcs)


# Shrinking whole simulations is slow; a failure prints its seed and replay command instead.
# The nightly profile shrinks.
_PHASES = list(Phase) if PROFILE == "nightly" else [Phase.explicit, Phase.reuse, Phase.generate]
ClusterMachine.TestCase.settings = settings(max_examples=EXAMPLES, stateful_step_count=6, deadline=None,
                                            phases=_PHASES)
TestClusterMachine = ClusterMachine.TestCase


@pytest.mark.parametrize("write_cl,read_cl", [("QUORUM", "QUORUM"), ("ALL", "ONE"), ("ONE", "ALL"),
                                              ("LOCAL_QUORUM", "LOCAL_QUORUM"), ("EACH_QUORUM", "LOCAL_QUORUM")])
def test_seed_sweep_with_the_nemesis(write_cl, read_cl):
    two_dcs = "LOCAL" in write_cl + read_cl or "EACH" in write_cl
    dcs = TWO_DCS if two_dcs else None
    for seed in range(3):
        w = Workload(seed, write_cl, read_cl, dcs=dcs, faults=True)
        result = w.run(200)
        _record(result)
        _check(result, seed, write_cl, read_cl, dcs)


@pytest.mark.parametrize("write_cl,read_cl", [(w, "QUORUM") for w in WRITES] + [("ALL", r) for r in READS])
def test_every_level_under_faults(write_cl, read_cl):
    """One seeded run per write level and per read level (two DCs where the level is local)."""
    LEVEL_RUNS.append((write_cl, read_cl))
    dcs = TWO_DCS if ("LOCAL" in write_cl + read_cl or "EACH" in write_cl + read_cl) else None
    seed = WRITES.index(write_cl) * 10 + READS.index(read_cl)
    result = Workload(seed, write_cl, read_cl, dcs=dcs, faults=True).run(150)
    _record(result)
    _check(result, seed, write_cl, read_cl, dcs)


def test_weak_pairs_really_return_stale_data_under_faults():
    """ONE/ONE promises no overlap: somewhere across seeds a read misses an acknowledged write."""
    from ring.verify.checkers import check_lww
    stale = 0
    for seed in range(12):
        result = Workload(seed, "ONE", "ONE", faults=True).run(200)
        report = check_lww(result.history, expect_overlap=True, expect_monotonic=False, expect_ryw=False)
        stale += not report.ok
        if stale:
            break
    assert stale, "ONE/ONE never returned stale data: the nemesis is too gentle to show the difference"


def test_coverage_is_not_vacuous():
    """Runs after the sweeps: every level succeeded somewhere, and the interesting events happened."""
    if len(LEVEL_RUNS) < len(WRITES) + len(READS):
        pytest.skip("needs every test_every_level_under_faults run in the same session")
    ok_writes = {name.split("_", 2)[2] for name, n in COVERAGE.items() if name.startswith("ok_write_") and n}
    ok_reads = {name.split("_", 2)[2] for name, n in COVERAGE.items() if name.startswith("ok_read_") and n}
    assert set(WRITES) <= ok_writes, f"levels without a successful write: {set(WRITES) - ok_writes}"
    assert set(READS) <= ok_reads, f"levels without a successful read: {set(READS) - ok_reads}"
    for name in ("read_repairs", "hints_delivered", "UnavailableError"):
        assert COVERAGE.get(name, 0) > 0, (name, COVERAGE)
