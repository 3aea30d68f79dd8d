"""Swarm testing (Groce et al., ISSTA 2012): each seed draws its own fault mix and workload shape.

A `Plan` is everything about a run that is not the seed's own interleaving: which fault kinds the
nemesis may use and how often, how long a node stays down and how many may be down at once
(up to RF-1 and beyond), partition shapes, flaky links, clock skew, the workload's keys, clients,
read/write/delete mix and hot key, a few node settings (hints on or off, the hint window, failure
detection, timeouts) and, with `levels="random"`, the level pair.

Invariants:
* `Plan()` is the classic, gentle run: the workload driven by it draws exactly the random numbers
  it drew before the swarm existed, so `dynatable sim --seed N` prints what it always printed.
* `draw(seed, ...)` uses only `random.Random(f"{seed}:swarm")`: a seed replays exactly. The
  level pair is drawn last, so a seed has the same faults with fixed or random levels.
* A plan never changes what is promised except through the level pair and `skew` (the checkers'
  preconditions, `workload.expectations`): every other knob is a fault or a legal configuration
  under which the promised properties must still hold. Faults that Cassandra itself does not
  survive (losing a disk, losing fsynced-but-unsynced acknowledged writes) are not drawn.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field, replace

WRITES = ("ONE", "TWO", "QUORUM", "ALL", "LOCAL_QUORUM", "EACH_QUORUM", "LOCAL_ONE", "ANY")
READS = ("ONE", "TWO", "QUORUM", "ALL", "LOCAL_QUORUM", "EACH_QUORUM", "LOCAL_ONE")
KINDS = ("partition", "crash", "pause", "flaky", "skew")
SHAPES = ("isolate", "split", "bridge", "asymmetric", "scatter")
STEPS = 2000
ODDS = {"partition": 0.75, "crash": 0.6, "pause": 0.5, "flaky": 0.5}   # a fault kind is on in this share of seeds


@dataclass(frozen=True)
class Plan:
    # -- faults
    fault_rate: float = 0.02                    # chance per step that the nemesis strikes
    kinds: tuple[str, ...] = ("partition", "crash", "pause")   # "skew" is added by `skew`
    max_down: int | None = None                 # nodes crashed or paused at once; None: half the nodes
    down_ms: tuple[int, int] = (500, 5000)      # how long a crashed or paused node stays away
    partition_ms: tuple[int, int] = (500, 4000)
    shapes: tuple[str, ...] = ("isolate",)      # isolate: one node vs the rest (symmetric or not);
    #   split: two random sides; bridge: two sides and the victim sees both; asymmetric: one direction;
    #   scatter: every node alone (no quorum anywhere)
    flaky_drop: float = 0.0                     # a flaky node's links: loss, delay, reordering
    flaky_delay_ms: int = 5
    net_drop: float = 0.0                       # every link, the whole run
    net_delay_ms: int = 5
    net_reorder: bool = False                   # links are not FIFO (Cassandra 4 has several per peer)
    skew: bool = False
    skew_ms: int = 200
    # -- workload
    keys: int = 4
    clients: int = 4
    issue_p: float = 0.6                        # an idle client issues a request this step
    write_p: float = 0.45
    delete_p: float = 0.10                      # the rest are reads
    hot_p: float = 0.0                          # share of requests that go to the first key
    step_ms: int = 40                           # virtual time between steps: 1..step_ms
    steps: int = 300                            # workload steps (an explicit --steps wins)
    # -- node settings (legal configurations; promises do not depend on them)
    node_options: dict = field(default_factory=dict)
    # -- the level pair, when drawn (`levels="random"`)
    write_cl: str | None = None
    read_cl: str | None = None

    def describe(self) -> str:
        """One line for the run's output: the knobs that differ from the classic run and matter."""
        base, kinds = Plan(), set(self.kinds)
        idle = set()
        if "partition" not in kinds:
            idle |= {"partition_ms", "shapes"}
        if "flaky" not in kinds:
            idle |= {"flaky_drop", "flaky_delay_ms"}
        if not kinds & {"crash", "pause"}:
            idle |= {"max_down", "down_ms"}
        if not self.skew:
            idle.add("skew_ms")
        if not self.hot_p:
            idle.add("hot_p")
        parts = []
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if value == getattr(base, name) or name in idle or name in ("write_cl", "read_cl"):
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


def draw(seed: int, *, nodes: int = 3, skew: bool | None = None, levels: str = "fixed") -> Plan:
    """The seed's plan. `skew`: None draws it, True/False forces it. `levels="random"` draws the pair."""
    rng = random.Random(f"{seed}:swarm")
    kinds = [k for k in KINDS if k != "skew" and rng.random() < ODDS[k]] or [rng.choice(KINDS[:4])]
    drawn_skew = rng.random() < 0.25
    skew = drawn_skew if skew is None else skew
    if skew:
        kinds.append("skew")
    rf = min(3, nodes)
    max_down = rng.choice([1, 1, rf - 1, rf - 1, rf])           # up to RF-1, and beyond
    down_lo = rng.choice([500, 1500, 3000])
    part_lo = rng.choice([500, 1500, 3000])
    shapes = tuple(s for s in SHAPES if rng.random() < 0.5) or ("isolate",)
    lossy = rng.random() < 0.4
    hints = rng.random() < 0.8
    node_options = {"phi_convict_threshold": rng.choice([1.5, 2.0, 4.0, 8.0]),
                    "write_request_timeout_ms": rng.choice([300, 1000, 2000]),
                    "read_request_timeout_ms": rng.choice([300, 1000, 2000])}
    if not hints:
        node_options["hinted_handoff_enabled"] = False
    elif rng.random() < 0.3:
        node_options["max_hint_window_ms"] = rng.choice([1000, 3000])
    write_p = rng.uniform(0.2, 0.55)
    plan = Plan(
        fault_rate=_log_uniform(rng, 0.01, 0.1),
        kinds=tuple(kinds),
        max_down=max_down,
        down_ms=(down_lo, down_lo * rng.choice([2, 4])),
        partition_ms=(part_lo, part_lo * rng.choice([2, 4])),
        shapes=shapes,
        flaky_drop=rng.uniform(0.1, 0.7),
        flaky_delay_ms=rng.choice([5, 50, 300]),
        net_drop=rng.uniform(0.0, 0.05) if lossy else 0.0,
        net_delay_ms=rng.choice([5, 20, 80, 80]),
        net_reorder=rng.random() < 0.5,
        skew=skew,
        skew_ms=rng.choice([50, 200, 1000]),
        keys=rng.choice([1, 2, 2, 3, 4, 6]),
        clients=rng.choice([3, 4, 6, 8]),
        issue_p=rng.uniform(0.3, 0.9),
        write_p=write_p,
        delete_p=rng.uniform(0.0, min(0.35, 0.9 - write_p)),
        hot_p=rng.choice([0.0, 0.0, 0.5, 0.8]),
        step_ms=rng.choice([10, 20, 40]),
        steps=STEPS,
        node_options=node_options,
    )
    if levels == "random":
        plan = replace(plan, write_cl=rng.choice(WRITES), read_cl=rng.choice(READS))
    return plan
