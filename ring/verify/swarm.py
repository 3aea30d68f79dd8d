"""Swarm testing (Groce et al., ISSTA 2012): each seed draws its own fault mix and workload shape.

A `Plan` is everything about a run that is not the seed's own interleaving. Per seed: the node
settings (hints on or off, the hint window, failure detection, timeouts), the clients and keys,
whether clocks may skew, the number of steps, and with `levels="random"` the level pair. The run
is cut into `Phase`s of equal length, each with its own fault mix and workload mix: which fault
kinds the nemesis may use and how often, how long a node stays down and how many may be down at
once (up to RF-1 and beyond), partition shapes, flaky and slow links, reordering, the
read/write/delete mix and a hot key. Each phase first draws a regime (REGIMES): `mixed` draws
every knob on its own; `lonely`, `returning` and `racy` tie together the knobs that only matter in
conjunction (docs/simulation.md). Phases let one seed visit several regimes, so a sweep reaches
each interleaving class more often than one regime per seed would. `Plan.probe` adds a client that
reads every key through every node after each heal or return. `Plan.endings` and `Plan.tail`
say how the run ends (ring/verify/endings.py): the `lonely`, `gc_grace` and `sloppy` endings and
the replica watch (P9), then writes that one crashed replica misses with no hints left to replay
them: the final repair's work.

Invariants:
* `Plan()` is the classic, gentle run: the workload driven by it draws exactly the random numbers
  it drew before the swarm existed, so `dynatable sim --seed N` prints what it always printed.
* `draw(seed, ...)` uses only `random.Random(f"{seed}:swarm")`: a seed replays exactly. The
  level pair is drawn last, so a seed has the same faults with fixed or random levels.
* A plan changes what is promised only through the level pair and `skew` (the checkers'
  preconditions, `workload.expectations`): every other knob is a fault or a legal configuration
  under which the promised properties must still hold. Faults that Cassandra itself does not
  survive (a lost disk, acknowledged writes lost from an unsynced commit log) are never drawn.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field, replace

from ring.verify import regimes

WRITES = ("ONE", "TWO", "QUORUM", "ALL", "LOCAL_QUORUM", "EACH_QUORUM", "LOCAL_ONE", "ANY")
READS = ("ONE", "TWO", "QUORUM", "ALL", "LOCAL_QUORUM", "EACH_QUORUM", "LOCAL_ONE")
KINDS = ("partition", "crash", "pause", "flaky")        # and "skew" when the plan allows it
ODDS = {"partition": 0.6, "crash": 0.5, "pause": 0.4, "flaky": 0.4}   # a kind is on in this share of phases
SHAPES = ("isolate", "split", "bridge", "asymmetric", "scatter")
# A phase's regime. mixed: every knob drawn on its own. lonely: short scatter or isolate partitions
# with a read-heavy, hot-key mix (a value on one replica, read through it and around it). returning:
# short crash/pause cycles on a slow reordering network (a coordinator still convicts a node that
# the others already read from). racy: a slow reordering network and contended keys, no node down
# (reads and deletes inside one network delay of an acknowledgement).
REGIMES = ("mixed", "lonely", "lonely", "returning", "racy", "racy")   # lonely and racy drawn twice as often
PHASES = 4
STEPS = 4000


@dataclass(frozen=True)
class Phase:
    """One stretch of the run: its fault mix and its workload mix."""
    regime: str = "mixed"                       # REGIMES; mixed draws every knob on its own
    fault_rate: float = 0.02                    # chance per step that the nemesis strikes
    kinds: tuple[str, ...] = ("partition", "crash", "pause")
    max_down: int | None = None                 # nodes crashed or paused at once; None: half the nodes
    down_ms: tuple[int, int] = (500, 5000)      # how long a crashed or paused node stays away
    partition_ms: tuple[int, int] = (500, 4000)
    shapes: tuple[str, ...] = ("isolate",)      # isolate: one node vs the rest (symmetric or not);
    #   split: two random sides; bridge: two sides, the victim sees both; asymmetric: one direction
    #   only; scatter: every node alone (no quorum anywhere)
    flaky_drop: float = 0.0                     # a flaky node's links: loss, delay, reordering
    flaky_delay_ms: int = 5
    net_drop: float = 0.0                       # every link, through the phase
    net_delay_ms: int = 5
    net_reorder: bool = False                   # links are not FIFO (Cassandra 4 has several per peer)
    skew_ms: int = 200
    issue_p: float = 0.6                        # an idle client issues a request this step
    write_p: float = 0.45
    delete_p: float = 0.10                      # the rest are reads
    hot_p: float = 0.0                          # share of requests that go to the first key
    step_ms: int = 40                           # virtual time between steps: 1..step_ms

    def describe(self) -> str:
        kinds, idle = set(self.kinds), set()
        if "partition" not in kinds:
            idle |= {"partition_ms", "shapes"}
        if "flaky" not in kinds:
            idle |= {"flaky_drop", "flaky_delay_ms"}
        if not kinds & {"crash", "pause"}:
            idle |= {"max_down", "down_ms"}
        if "skew" not in kinds:
            idle.add("skew_ms")
        if not self.hot_p:
            idle.add("hot_p")
        return _diff(self, Phase(), idle)


@dataclass(frozen=True)
class Plan:
    phases: tuple[Phase, ...] = (Phase(),)
    skew: bool = False                          # the nemesis may skew clocks (P3 is then not promised)
    keys: int = 4
    clients: int = 4
    steps: int = 300                            # workload steps (an explicit --steps wins)
    probe: int = 0                              # after each heal or return, read every key through
    #   every node this many times over, one read at a time (0: no prober)
    node_options: dict = field(default_factory=dict)   # legal settings; promises do not depend on them
    tail: int = 0                               # after the run (and its endings): this many steps of writes
    #   and deletes while one node is cut off (crashed, with endings), then every node's hints are
    #   truncated (nodetool truncatehints), so that only repair can bring that replica back (0: no tail)
    endings: tuple[str, ...] = ()               # after the run, before the tail: ring/verify/endings.py
    #   (`lonely`, `gc_grace`, `sloppy`); a plan with endings also runs the replica watch (P9)
    restarts: tuple[str, ...] = ()              # the rolling restart after the last step (ring/verify/
    #   regimes.py): this many nodes, one at a time, each with a new gossip generation (empty: none)
    write_cl: str | None = None                 # the level pair, when drawn (`levels="random"`)
    read_cl: str | None = None

    def phase_at(self, step: int, steps: int) -> Phase:
        return self.phases[min(len(self.phases) - 1, step * len(self.phases) // max(1, steps))]

    def describe(self) -> str:
        """Lines for the run's output: the knobs that differ from the classic run and matter."""
        head = _diff(self, Plan(), {"phases", "write_cl", "read_cl"})
        return "\n".join([head] + [f"  phase {i + 1}: {p.describe()}" for i, p in enumerate(self.phases)])


def _diff(obj, base, idle: set) -> str:
    parts = []
    for name in obj.__dataclass_fields__:
        value = getattr(obj, name)
        if name in idle or value == getattr(base, name):
            continue
        if isinstance(value, float):
            value = round(value, 3)
        elif isinstance(value, tuple) and all(isinstance(x, str) for x in value):
            value = "+".join(value)
        elif isinstance(value, tuple):
            value = "..".join(map(str, value))
        elif isinstance(value, dict):
            value = ",".join(f"{k}={v}" for k, v in sorted(value.items()))
        parts.append(f"{name}={value}")
    return " ".join(parts) or "classic"


def _log_uniform(rng: random.Random, lo: float, hi: float) -> float:
    return lo * (hi / lo) ** rng.random()


def draw_phase(rng: random.Random, *, rf: int, skew: bool, convict_ms: int = 2500) -> Phase:
    """One phase: a regime, then its knobs. `mixed` draws every knob on its own (Groce's swarm);
    the others tie knobs together that only matter in conjunction (see REGIMES)."""
    regime = rng.choice(REGIMES)
    phase = _draw_mixed(rng, rf=rf, skew=skew)
    if regime == "mixed":
        return phase
    quick = dict(regime=regime, issue_p=rng.uniform(0.6, 0.95), hot_p=rng.choice([0.5, 0.8, 1.0]),
                 step_ms=rng.choice([5, 10, 20]), skew_ms=phase.skew_ms)
    extra = ("skew",) if skew else ()
    if regime == "lonely":       # writes that reach one replica, then many reads before the next write
        return replace(phase, **quick, kinds=("partition",) + extra, fault_rate=_log_uniform(rng, 0.02, 0.08),
                       shapes=rng.choice([("scatter",), ("isolate",), ("scatter", "isolate")]),
                       partition_ms=(500, rng.choice([1500, 3000])), write_p=rng.choice([0.05, 0.1, 0.15]),
                       delete_p=rng.choice([0.0, 0.0, 0.03]), net_drop=0.0, net_reorder=False,
                       net_delay_ms=rng.choice([5, 20]))
    if regime == "returning":    # nodes come back while some coordinators still think them down
        quick.pop("step_ms")
        return replace(phase, **quick, kinds=rng.choice([("crash",), ("pause",), ("crash", "pause")]) + extra,
                       fault_rate=_log_uniform(rng, 0.03, 0.1), max_down=rng.choice([1, rf - 1]),
                       down_ms=(convict_ms, convict_ms * 2), write_p=rng.choice([0.25, 0.45]),
                       delete_p=rng.choice([0.1, 0.2, 0.3]), net_drop=rng.uniform(0.15, 0.4),
                       net_delay_ms=rng.choice([40, 80, 150]), step_ms=rng.choice([20, 40, 80]),
                       net_reorder=True)
    # racy: no node fault, a slow reordering network, contended keys, deletes racing writes
    return replace(phase, **quick, kinds=("flaky",) + extra, fault_rate=_log_uniform(rng, 0.005, 0.03),
                   flaky_drop=rng.uniform(0.0, 0.2), net_drop=0.0, net_delay_ms=rng.choice([40, 80, 150]),
                   net_reorder=True, write_p=rng.choice([0.25, 0.45]), delete_p=rng.choice([0.15, 0.3]))


def _draw_mixed(rng: random.Random, *, rf: int, skew: bool) -> Phase:
    kinds = [k for k in KINDS if rng.random() < ODDS[k]] or [rng.choice(KINDS)]
    if skew:
        kinds.append("skew")
    down_lo, part_lo = rng.choice([500, 1500, 3000]), rng.choice([500, 1500, 3000])
    write_p = rng.choice([0.05, 0.1, 0.25, 0.45])
    lossy = rng.random() < 0.3
    return Phase(
        fault_rate=_log_uniform(rng, 0.01, 0.1),
        kinds=tuple(kinds),
        max_down=rng.choice([1, 1, rf - 1, rf - 1, rf]),         # up to RF-1, and beyond
        down_ms=(down_lo, down_lo * rng.choice([2, 4])),
        partition_ms=(part_lo, part_lo * rng.choice([2, 4])),
        shapes=tuple(s for s in SHAPES if rng.random() < 0.5) or (rng.choice(SHAPES),),
        flaky_drop=rng.uniform(0.1, 0.7),
        flaky_delay_ms=rng.choice([5, 50, 300]),
        net_drop=rng.uniform(0.0, 0.05) if lossy else 0.0,
        net_delay_ms=rng.choice([5, 20, 80, 80]),
        net_reorder=rng.random() < 0.5,
        skew_ms=rng.choice([50, 200, 1000]),
        issue_p=rng.uniform(0.3, 0.9),
        write_p=write_p,
        delete_p=rng.choice([0.0, 0.0, 0.05, 0.15, 0.3]),
        hot_p=rng.choice([0.0, 0.0, 0.5, 0.8]),
        step_ms=rng.choice([10, 20, 40]),
    )


def draw(seed: int, *, nodes: int = 3, dcs: int = 1, skew: bool | None = None, levels: str = "fixed") -> Plan:
    """The seed's plan. `skew`: None draws it, True/False forces it. `levels="random"` draws the pair.
    `dcs` > 1: the plan may draw `split_dc` phases (ring/verify/regimes.py)."""
    rng = random.Random(f"{seed}:swarm")
    drawn_skew = rng.random() < 0.25
    skew = drawn_skew if skew is None else skew
    node_options = {"phi_convict_threshold": rng.choice([1.5, 2.0, 4.0, 8.0]),
                    "write_request_timeout_ms": rng.choice([300, 1000, 2000]),
                    "read_request_timeout_ms": rng.choice([300, 1000, 2000])}
    if rng.random() < 0.10:                     # Cassandra allows it; a hint-counting bug is inert then
        node_options["hinted_handoff_enabled"] = False
    elif rng.random() < 0.2:
        node_options["max_hint_window_ms"] = rng.choice([1000, 3000, 10000])
    keys, clients = rng.choice([1, 2, 2, 3, 4, 6]), rng.choice([3, 4, 6, 8])
    # a node is convicted after about phi * ln 10 mean heartbeat intervals of silence (ring/failure_detector.py;
    # heartbeats arrive about every 300 ms with 3 nodes gossiping every 500 ms): `returning` keeps nodes
    # down past that, so that coordinators hint them, and not much longer, so that they come back often
    convict_ms = int(node_options["phi_convict_threshold"] * 2.3 * 300) + 500
    phases = tuple(draw_phase(rng, rf=min(3, nodes), skew=skew, convict_ms=convict_ms) for _ in range(PHASES))
    probe = rng.choice([0, 1, 2, 2])
    plan = Plan(phases=phases, skew=skew, keys=keys, clients=clients, steps=STEPS, node_options=node_options,
                probe=probe)
    if levels == "random":
        plan = replace(plan, write_cl=rng.choice(WRITES), read_cl=rng.choice(READS))
    tail_rng = random.Random(f"{seed}:tail")      # its own stream: the knobs above draw what they drew
    plan = replace(plan, tail=tail_rng.choice([40, 80]), endings=("lonely", "gc_grace", "sloppy"))
    # the named regimes (ring/verify/regimes.py), each from its own stream as the tail
    if dcs > 1:
        phases, options = regimes.draw_split_dc(seed, plan.phases, plan.node_options, convict_ms)
        plan = replace(plan, phases=phases, node_options=options)
    return replace(plan, restarts=regimes.draw_restarts(seed, nodes))
