"""The clustering workload: rows, range deletes and flushes in the simulator, checked against a model.

One client, one operation at a time, on a fault-free 3-node cluster (RF 3): partitions `p` with
clustering rows `c`, written and range-deleted (`DELETE ... WHERE p = ? AND c > a AND c < b`) at
ALL, read back whole at QUORUM, with every node flushing often, so a partition's rows, the range
tombstones that cover them and the later rows land in different SSTables and every read merges
them. Each operation is ALL and finishes before the next starts, 2 ms apart, so the last write wins
without ties: the model (a dict per partition) is the only correct answer of every read.

`check_clustering` compares each read with the model and names what differs: a row the model
deleted that came back (`resurrected`), a row it holds that is missing (`lost`), or a value that
differs (`wrong`). The canary that skips older SSTables' range tombstones (ring/faults.py
`skip_older_range_tombstones`) must fail it.
Invariant: the workload draws everything from `random.Random(f"{seed}:clustering")`; same seed, same
operations, same trace.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field

from ring.runtime.sim import Simulation

STEPS = 200
PARTITIONS = 3
CLUSTERINGS = 12
NODES = ("n1", "n2", "n3")
OPTS = {"gossip_interval_ms": 500, "write_request_timeout_ms": 1000, "read_request_timeout_ms": 1000}


@dataclass
class ClusteringResult:
    seed: int
    reads: list = field(default_factory=list)       # (step, p, expected rows, rows read)
    counts: dict = field(default_factory=lambda: {"insert": 0, "range_delete": 0, "flush": 0, "read": 0})
    digest: str = ""


class ClusteringWorkload:
    """One seeded run: `run()` returns the reads with what the model expected of each."""

    def __init__(self, seed: int, node_options: dict | None = None):
        self.seed = seed
        self.node_options = {**OPTS, **(node_options or {})}
        self.rng = random.Random(f"{seed}:clustering")

    def run(self, steps: int = STEPS) -> ClusteringResult:
        result = ClusteringResult(self.seed)
        model: dict[int, dict[int, str]] = {p: {} for p in range(PARTITIONS)}
        rng = self.rng
        with Simulation(self.seed, node_options=self.node_options) as sim:
            sim.run_for(4000)
            sim.request("n1", "create_keyspace", name="ks",
                        replication={"class": "SimpleStrategy", "replication_factor": 3})
            sim.request("n1", "create_table", keyspace="ks", name="ct", columns={"p": "int", "c": "int", "v": "text"},
                        primary_key=("p", "c"))
            sim.run_for(2000)
            for step in range(steps):
                node, p, roll = rng.choice(NODES), rng.randrange(PARTITIONS), rng.random()
                if roll < 0.45:
                    c, v = rng.randrange(CLUSTERINGS), f"v{step}"
                    sim.request(node, "insert", keyspace="ks", table="ct", row={"p": p, "c": c, "v": v},
                                consistency="ALL")
                    model[p][c] = v
                    result.counts["insert"] += 1
                elif roll < 0.6:
                    a = rng.randrange(CLUSTERINGS - 2)
                    b = rng.randrange(a + 2, CLUSTERINGS + 1)
                    sim.request(node, "delete", keyspace="ks", table="ct", key={"p": p}, start={"c": a}, end={"c": b},
                                start_inclusive=False, end_inclusive=False, consistency="ALL")
                    model[p] = {c: v for c, v in model[p].items() if not a < c < b}
                    result.counts["range_delete"] += 1
                elif roll < 0.75:
                    for name in NODES:
                        sim.request(name, "flush")
                    result.counts["flush"] += 1
                else:
                    rows = sim.request(node, "select", keyspace="ks", table="ct", key={"p": p}, consistency="QUORUM")
                    result.reads.append((step, p, dict(model[p]), {r["c"]: r["v"] for r in rows}))
                    result.counts["read"] += 1
                sim.run_for(2)
            result.digest = sim.trace_digest()
        return result


@dataclass
class ClusteringReport:
    problems: list[str]
    reads: int

    @property
    def ok(self) -> bool:
        return not self.problems

    def __str__(self) -> str:
        head = f"check_clustering: {len(self.problems)} bad read(s) of {self.reads}"
        return "\n  ".join([head] + self.problems[:10])


def check_clustering(result: ClusteringResult) -> ClusteringReport:
    """Every read against the model: resurrected, lost and wrong rows, by step and partition."""
    problems = []
    for step, p, expected, got in result.reads:
        resurrected = sorted(set(got) - set(expected))
        lost = sorted(set(expected) - set(got))
        wrong = sorted(c for c in set(got) & set(expected) if got[c] != expected[c])
        if resurrected or lost or wrong:
            problems.append(f"step {step} p={p}: resurrected c={resurrected} lost c={lost} wrong c={wrong}")
    return ClusteringReport(problems, len(result.reads))


def run_clustering_seed(seed: int, mutant: str = "", steps: int | None = None):
    """One run and its report; the failed property is "rows" (a read that differs from the model)."""
    result = ClusteringWorkload(seed, {"canary_mutant": mutant} if mutant else None).run(steps or STEPS)
    report = check_clustering(result)
    return result, report, set() if report.ok else {"rows"}
