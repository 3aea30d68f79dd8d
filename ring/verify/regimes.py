"""Named fault regimes a swarm plan draws beside its phases: `split_dc` and `rolling_restart`.

A regime ties faults together that only matter in conjunction, as the phase regimes of
ring/verify/swarm.py do, but across the cluster's shape (data centers) or across the whole run:

* `split_dc` (a phase regime, two-DC plans only, drawn with odds SPLIT_DC_ODDS): each strike
  takes one node X of one DC away (crash or pause) and cuts a bridge node C of the *other* DC off
  from its own DC's peers (only those links: C still reaches the other DC, and gossip relayed
  through it keeps C and its peers alive to each other). C convicts X and hints it at write time;
  C's writes reach its own replica and the other DC, never its DC peers. At EACH_QUORUM a correct
  coordinator then times out (one real acknowledgement in its DC); a coordinator that counts the
  hint for X in its own DC (a canary mutant of ring/faults.py) acknowledges a write that only
  C holds in its DC, and a LOCAL_QUORUM read through C's peers misses it (P1).
* `rolling_restart` (every swarm plan, `Plan.restarts`): late in the run every node in turn is
  stopped (a process crash that loses nothing unsynced: a clean restart) and started again with a
  new gossip generation, one at a time, each after the previous one is back. A node that accepts
  an older generation from gossip (a canary mutant of ring/faults.py) keeps the restarted node's
  old state, whose heartbeat version (one per gossip round and one per LOAD change under writes)
  outnumbers the new one for longer than the rest of the run, so the restarted node is still seen
  down after the final heal (P8).

Invariants: a regime is only legal faults (crash, pause, partition), so the promised properties
must hold under it and the controls stay clean. Both are drawn from their own random streams
(`f"{seed}:regimes"`), so a plan's other knobs draw what they drew before; the classic `Plan()`
has no regime (no restarts, no split_dc phase) and replays draw-for-draw.
"""
from __future__ import annotations

import math
import random
from dataclasses import replace

SPLIT_DC_ODDS = 0.9           # share of two-DC plans with split_dc phases
RESTARTS = (1, 2)             # how many nodes a rolling restart restarts
MIN_VERSION = 170             # only a node whose heartbeat version is this high restarts (RollingRestart)
STRETCH_MAX_MS = 90_000       # the rolling restart stretch ends after this much virtual time at most
RESTART_DOWN = (1.0, 1.2)     # a restarting node stays down this many times its conviction time


def draw_restarts(seed: int, nodes: int) -> tuple[str, ...]:
    """The rolling restart: how many nodes restart (the tuple's length) and the order that
    breaks ties between nodes up equally long (RollingRestart)."""
    rng = random.Random(f"{seed}:regimes:restart")
    names = [f"n{i + 1}" for i in range(nodes)]
    rng.shuffle(names)
    return tuple(names[:rng.choice(RESTARTS)])


def draw_split_dc(seed: int, phases: tuple, node_options: dict, convict_ms: int) -> tuple[tuple, dict]:
    """Two-DC plans: with odds SPLIT_DC_ODDS, two or three phases become `split_dc` phases, and hints
    are on with no window shorter than a split (the regime is about what a hint may count for).
    Returns the phases and the node options."""
    rng = random.Random(f"{seed}:regimes:split_dc")
    if rng.random() >= SPLIT_DC_ODDS:
        return phases, node_options
    node_options = {k: v for k, v in node_options.items() if k not in ("hinted_handoff_enabled", "max_hint_window_ms")}
    chosen = rng.sample(range(len(phases)), rng.choice([2, 2, 3]))
    out = list(phases)
    for i in chosen:
        down = max(3000, convict_ms * 2)
        out[i] = replace(phases[i], regime="split_dc", kinds=("split_dc",), fault_rate=rng.uniform(0.05, 0.15),
                         max_down=1, down_ms=(down, down * 2), partition_ms=(down, down * 2),
                         issue_p=rng.uniform(0.6, 0.9), write_p=rng.choice([0.3, 0.45]),
                         delete_p=rng.choice([0.0, 0.05]), hot_p=rng.choice([0.5, 0.8, 1.0]),
                         net_drop=0.0, net_reorder=False, net_delay_ms=rng.choice([5, 20]),
                         step_ms=rng.choice([10, 20]))
    return tuple(out), node_options


def split_dc(workload, bridge: str) -> bool:
    """One split_dc strike with `bridge` as C (see the module docstring). False: nothing done
    (a partition already on, a node already down, or one DC only)."""
    sim, rng, plan = workload.sim, workload.nemesis, workload.phase
    dc_of = dict(zip(sim.nodes, workload.dcs))
    if workload.partitioned_until or workload.down or len(set(workload.dcs)) < 2:
        return False
    peers = {n for n in sim.nodes if n != bridge and dc_of[n] == dc_of[bridge]}
    others = sorted(n for n in sim.nodes if dc_of[n] != dc_of[bridge])
    away = rng.choice(others)
    if rng.random() < 0.5:
        sim.crash(away, lose_unsynced=False)
    else:
        sim.pause(away)
    until = sim.now_ms + rng.randint(*plan.down_ms)
    workload.down[away] = until
    sim.partition({bridge}, peers)
    workload.partitioned_until = until - rng.randint(0, 1000)
    workload.event("split_dc")
    return True


class RollingRestart:
    """The rolling restart stretch, after the run's last step (`Plan.restarts`).

    The clients go on with the last phase's mix and the nemesis strikes no more (what it did
    expires as drawn). Then, one at a time, `len(plan.restarts)` nodes restart: each time the live
    node with the highest heartbeat version (the plan's order breaks ties), once that is at least
    MIN_VERSION (a version the new generation, at about two per second, cannot reach in the ~70 s
    of virtual time from there to the run's final checks), down for 1-1.5 times the silence its
    peers convict it after. The stretch ends when
    the last one is back, or after STRETCH_MAX_MS of virtual time."""

    def __init__(self, workload):
        self.workload = workload
        self.order = list(workload.plan.restarts)     # breaks ties between nodes up equally long
        self.left = len(self.order)
        self._quiet = None
        self.until_ms: int | None = None                 # the stretch ends by then, whatever is left
        self.rng = random.Random(f"{workload.seed}:regimes:restart:down")
        self.current: str | None = None
        # the silence after which its peers convict a node: phi * ln 10 mean heartbeat intervals, the
        # mean starting at 2 gossip intervals (ring/failure_detector.py)
        options = workload.sim.node_options
        self.convict_ms = int(options.get("phi_convict_threshold", 8.0) * math.log(10)
                              * 2 * options.get("gossip_interval_ms", 1000))

    def quiet(self, phase):
        """The stretch's phase: the last phase's network and keys, no new fault, long steps (a
        stretch of a minute is a few hundred steps, not thousands) and a few writes every gossip
        round (each then also bumps every replica's LOAD, so versions grow twice as fast)."""
        if self._quiet is None:
            self._quiet = replace(phase, fault_rate=0.0, issue_p=0.1, write_p=0.8, delete_p=0.05, step_ms=200)
        return self._quiet

    def extends(self) -> bool:
        """Whether the stretch goes on (called once per step after the run's last)."""
        w = self.workload
        if self.until_ms is None:
            self.until_ms, self.began_ms = w.sim.now_ms + STRETCH_MAX_MS, w.sim.now_ms
        if (self.left > 0 or self.current in w.down) and w.sim.now_ms < self.until_ms:
            return True
        w.event("restart_stretch_ms", w.sim.now_ms - self.began_ms)
        return False

    def versions(self) -> dict[str, int]:
        """Live nodes (not crashed, paused or due back) -> the heartbeat version of their own gossip
        state: what a peer holding their current generation has to be outcounted from."""
        out = {}
        for name, sn in self.workload.sim.nodes.items():
            if sn.node is not None and not sn.paused and name not in self.workload.down:
                gossiper = sn.node.gossiper
                out[name] = gossiper.states[gossiper.endpoint].heartbeat.version
        return out

    def step(self) -> None:
        """Once per step; restarts only in the stretch (once `extends` was called)."""
        w = self.workload
        if self.until_ms is None or not self.left or self.current in w.down:
            return                                   # one at a time: the previous node is back first
        versions = self.versions()
        if not versions:
            return
        rank = {n: -self.order.index(n) if n in self.order else -len(self.order) for n in versions}
        node = max(versions, key=lambda n: (versions[n], rank[n]))
        if versions[node] < MIN_VERSION:
            return
        self.left -= 1
        self.current = node
        w.sim.crash(node, lose_unsynced=False)
        w.down[node] = w.sim.now_ms + int(self.convict_ms * self.rng.uniform(*RESTART_DOWN))
        w.event("rolling_restart")
