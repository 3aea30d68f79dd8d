"""A seeded client workload against the simulator, recording a history for the checkers.

Closed-loop clients (one request in flight each) write unique values, delete and read a few keys
at a pair of consistency levels through random live coordinators, while a seeded nemesis
partitions, crashes and restarts (a process crash: what reached the OS survives), pauses and, if
allowed, skews clocks. Then everything heals, hints are delivered, every node repairs, and the
final replica cells are collected. `expectations()` says which properties the level pair promises
(specs/testing.md §4): overlap is computed by brute force over replica subsets.

The shape of the run (fault mix and intensities, keys, clients, mix, node settings) is a
`ring.verify.swarm.Plan`; the default `Plan()` is the classic gentle run, draw-for-draw.
"""
from __future__ import annotations

import itertools
import random
from dataclasses import dataclass, field

from engine.errors import InvalidRequest
from ring import consistency as cl
from ring.errors import OverloadedError, ReadFailure, ReadTimeout, RepairFailure, UnavailableError, WriteFailure, WriteTimeout
from ring.verify import endings, regimes
from ring.verify.history import History
from ring.verify.swarm import Phase, Plan
from ring.runtime.sim import Simulation

FAST = {"gossip_interval_ms": 500, "phi_convict_threshold": 2.0, "write_request_timeout_ms": 1000,
        "read_request_timeout_ms": 1000}
PROBER = "probe"         # the client that reads every key through every node after a heal or a return
KEYS = ("a", "b", "c", "d", "e", "f", "g", "h", "i", "j")


@dataclass
class RunResult:
    seed: int
    write_cl: str
    read_cl: str
    history: History
    replica_cells: dict
    expectations: dict
    events: dict = field(default_factory=dict)
    trace: list | None = None
    digest: str = ""
    plan: Plan | None = None
    unseen: list = field(default_factory=list)   # (observer, peer): a live peer still seen down after the heal
    observed: list = field(default_factory=list)  # P9 (ring/verify/endings.py): (key, why, op) not on enough replicas


def _replicas_by_dc(dcs: list[str]) -> list[tuple[str, str]]:
    return [(f"n{i + 1}", dc) for i, dc in enumerate(dcs)]


def overlaps(write_cl: str, read_cl: str, dcs: list[str], rf_by_dc: dict[str, int]) -> bool:
    """Every possible write ack set meets every possible read set, for coordinators in any DC."""
    reps = _replicas_by_dc(dcs)
    w, r = cl.ConsistencyLevel.parse(write_cl), cl.ConsistencyLevel.parse(read_cl)
    if w is cl.ConsistencyLevel.ANY:
        return False

    def sets(level):
        out = []
        for local in set(dcs):
            for n in range(1, len(reps) + 1):
                for subset in itertools.combinations(reps, n):
                    acks: dict[str, int] = {}
                    for _, dc in subset:
                        acks[dc] = acks.get(dc, 0) + 1
                    if cl.tally(level, acks, rf_by_dc, local):
                        out.append({name for name, _ in subset})
        return out
    return all(a & b for a in sets(w) for b in sets(r))


def expectations(write_cl: str, read_cl: str, dcs: list[str], rf_by_dc: dict[str, int], skew: bool) -> dict:
    overlap = overlaps(write_cl, read_cl, dcs, rf_by_dc)
    monotonic = overlap and read_cl in ("QUORUM", "ALL", "EACH_QUORUM") or (
        overlap and read_cl == "LOCAL_QUORUM" and len(set(dcs)) == 1)
    return {"overlap": overlap, "monotonic": monotonic, "ryw": overlap, "linearizable": monotonic and not skew}


class Workload:
    def __init__(self, seed: int, write_cl: str = "QUORUM", read_cl: str = "QUORUM", *, dcs: list[str] | None = None,
                 clients: int | None = None, faults: bool = True, skew: bool = False,
                 node_options: dict | None = None, trace: bool = False, plan: Plan | None = None):
        self.plan = plan or Plan(skew=skew)
        self.phase = self.plan.phases[0]
        self.seed = seed
        self.write_cl, self.read_cl = write_cl, read_cl
        self.dcs = dcs or ["dc1"] * 3
        dc_names = sorted(set(self.dcs))
        self.rf_by_dc = {dc: min(3, self.dcs.count(dc)) for dc in dc_names}
        self.rng = random.Random(f"{seed}:workload")
        self.nemesis = random.Random(f"{seed}:nemesis")
        self.faults, self.skew = faults, self.plan.skew or skew
        self.keys = KEYS[:self.plan.keys]
        options = {**FAST, **self.plan.node_options, **(node_options or {})}
        self.sim = Simulation(seed, len(self.dcs), dcs=self.dcs, node_options=options, trace=trace)
        self.history = History()
        self.clients = [f"c{i}" for i in range(clients or self.plan.clients)]
        self.process = {c: f"{c}.0" for c in self.clients}
        self.pending: dict[str, tuple[int, int, str]] = {}   # client -> (request id, history handle, kind)
        self.seq = itertools.count(1)
        self.events: dict[str, int] = {}
        self.down: dict[str, int] = {}                       # node -> virtual time to bring it back
        self.partitioned_until = 0
        self.flaky: dict[str, int] = {}                      # node -> virtual time its links recover
        self.probes: list[tuple[str, str]] = []              # (coordinator, key) reads the prober owes
        if self.plan.probe:
            self.process[PROBER] = f"{PROBER}.0"
        self.watch = None                                    # P9, when the plan has endings (endings.py)
        if self.plan.endings:
            exp = expectations(write_cl, read_cl, self.dcs, self.rf_by_dc, self.skew)
            self.watch = endings.ReplicaWatch(self, exp["monotonic"])
        self.shaped = any(p.net_drop > 0 or p.net_delay_ms != Phase.net_delay_ms or p.net_reorder or
                          "flaky" in p.kinds for p in self.plan.phases)

    def event(self, name: str, n: int = 1) -> None:
        self.events[name] = self.events.get(name, 0) + n

    # -- setup -------------------------------------------------------------------------------

    def setup(self) -> None:
        sim = self.sim
        sim.run_for(4000)
        if len(self.rf_by_dc) == 1:
            replication = {"class": "SimpleStrategy", "replication_factor": 3}
        else:
            replication = {"class": "NetworkTopologyStrategy", **self.rf_by_dc}
        sim.request("n1", "create_keyspace", name="ks", replication=replication)
        sim.request("n1", "create_table", keyspace="ks", name="kv", columns={"k": "text", "v": "text"},
                    primary_key="k", options={"gc_grace_seconds": 3600})
        sim.run_until(sim.now_ms + 10_000, stop=sim.converged)
        self._shape_links()

    def _shape_links(self) -> None:
        """Every link gets the phase's network; a flaky node's links also lose, delay and reorder."""
        if not self.shaped:
            return
        plan = self.phase
        for a in self.sim.nodes:
            for b in self.sim.nodes:
                if a == b:
                    continue
                link = self.sim.link(a, b)
                flaky = a in self.flaky or b in self.flaky
                link.drop = plan.net_drop + (plan.flaky_drop if flaky else 0.0)
                link.dup = plan.net_drop
                link.delay_ms = (1, max(plan.net_delay_ms, plan.flaky_delay_ms if flaky else 1))
                link.reorder = flaky or plan.net_reorder

    # -- clients -------------------------------------------------------------------------------

    def _issue(self, client: str, probe: tuple[str, str] | None = None) -> None:
        sim = self.sim
        live = sim.live()
        if not live:
            return
        plan = self.phase
        if probe is not None:                 # the prober: a read of this key through this node
            coordinator, key = probe
            roll = 1.0
        else:
            coordinator = self.rng.choice(live)
            if plan.hot_p and self.rng.random() < plan.hot_p:
                key = self.keys[0]
            else:
                key = self.rng.choice(self.keys)
            roll = self.rng.random()
        process = self.process[client]
        if roll < plan.write_p:
            value = f"{client}-{next(self.seq)}"
            handle = self.history.invoke(process, "write", key, value, self.write_cl)
            rid = sim.submit(coordinator, "insert", keyspace="ks", table="kv", row={"k": key, "v": value},
                             consistency=self.write_cl)
            kind = "write"
        elif roll < plan.write_p + plan.delete_p:
            handle = self.history.invoke(process, "delete", key, None, self.write_cl)
            rid = sim.submit(coordinator, "delete", keyspace="ks", table="kv", key={"k": key},
                             consistency=self.write_cl)
            kind = "delete"
        else:
            handle = self.history.invoke(process, "read", key, None, self.read_cl)
            rid = sim.submit(coordinator, "get", keyspace="ks", table="kv", key={"k": key}, writetime=True,
                             consistency=self.read_cl)
            kind = "read"
        self.pending[client] = (rid, handle, kind)

    def _collect(self) -> None:
        for client, (rid, handle, kind) in list(self.pending.items()):
            reply = self.sim.replies.pop(rid, None)
            if reply is None:
                continue
            del self.pending[client]
            err = reply.error
            if err is None:
                self.event(f"ok_{kind}_{self.write_cl if kind != 'read' else self.read_cl}")
                if kind == "read":
                    row = reply.result
                    value = row.get("v") if row else None
                    ts = row.get("writetime(v)") if row and value is not None else None
                    self.history.complete(handle, "ok", value, ts)
                else:
                    self.history.complete(handle, "ok", None, reply.result["timestamp"])
                if self.watch:
                    self.watch.on_ok(self.history._done[-1])    # the op just completed
            elif isinstance(err, (UnavailableError, InvalidRequest, OverloadedError)) or \
                    (isinstance(err, ConnectionError) and not isinstance(err, TimeoutError)):
                self.event(type(err).__name__)
                self.history.complete(handle, "fail")
            else:  # timeouts and replica failures: the write may apply later, or never
                assert isinstance(err, (WriteTimeout, ReadTimeout, WriteFailure, ReadFailure, TimeoutError)), err
                self.event(type(err).__name__)
                self.history.complete(handle, "info")
                self.process[client] = f"{client}.{next(self.seq)}"   # Knossos: a crashed process never returns

    # -- nemesis -------------------------------------------------------------------------------

    def _nemesis(self) -> None:
        sim, rng, plan = self.sim, self.nemesis, self.phase
        for node, until in list(self.down.items()):
            if sim.now_ms >= until:
                if sim.nodes[node].node is None:
                    sim.restart(node)
                elif sim.nodes[node].paused:
                    sim.resume(node)
                del self.down[node]
                self._queue_probes()
        if self.partitioned_until and sim.now_ms >= self.partitioned_until:
            sim.heal()
            self.partitioned_until = 0
            self._shape_links()                                # heal() clears every link's loss
            self._queue_probes()
        if self.flaky and any(sim.now_ms >= until for until in self.flaky.values()):
            self.flaky = {n: until for n, until in self.flaky.items() if sim.now_ms < until}
            self._shape_links()
        if rng.random() > plan.fault_rate:
            return
        names = list(sim.nodes)
        kinds = plan.kinds + ("skew",) if self.skew and "skew" not in plan.kinds else plan.kinds
        fault = rng.choice(kinds)
        victim = rng.choice(names)
        max_down = len(names) // 2 if plan.max_down is None else plan.max_down
        if fault == "partition" and not self.partitioned_until:
            self._partition(victim, names)
            self.partitioned_until = sim.now_ms + rng.randint(*plan.partition_ms)
            self.event("partition")
        elif fault == "crash" and victim not in self.down and len(self.down) < max_down:
            sim.crash(victim, lose_unsynced=False)
            self.down[victim] = sim.now_ms + rng.randint(*plan.down_ms)
            self.event("crash")
        elif fault == "pause" and victim not in self.down and len(self.down) < max_down:
            sim.pause(victim)
            self.down[victim] = sim.now_ms + rng.randint(*plan.down_ms)
            self.event("pause")
        elif fault == "flaky" and victim not in self.flaky:
            self.flaky[victim] = sim.now_ms + rng.randint(*plan.partition_ms)
            self._shape_links()
            self.event("flaky")
        elif fault == "skew":
            sim.skew(victim, rng.randint(-plan.skew_ms, plan.skew_ms))
            self.event("skew")
        elif fault == "split_dc":
            regimes.split_dc(self, victim)

    def _queue_probes(self) -> None:
        """After a heal or a return, read every key through every node in turn (one at a time):
        the reads that tell replicas apart while hints and read repair are still catching up."""
        if not self.plan.probe:
            return
        names = list(self.sim.nodes)
        self.nemesis.shuffle(names)
        self.probes = [(n, k) for _ in range(self.plan.probe) for k in self.keys for n in names]

    def _partition(self, victim: str, names: list[str]) -> None:
        """Cut the network in one of the plan's shapes (the classic one: `isolate`)."""
        sim, rng, shapes = self.sim, self.nemesis, self.phase.shapes
        shape = shapes[0] if len(shapes) == 1 else rng.choice(shapes)
        rest = [n for n in names if n != victim]
        if shape == "isolate":
            sim.partition({victim}, set(rest), symmetric=rng.random() < 0.7)
        elif shape == "asymmetric":                           # one direction only, either way
            groups = [{victim}, set(rest)]
            rng.shuffle(groups)
            sim.partition(*groups, symmetric=False)
        elif shape == "split":                                # a random cut into two sides
            shuffled = rest[:]
            rng.shuffle(shuffled)
            cut = rng.randint(0, len(shuffled) - 1)
            sim.partition({victim, *shuffled[:cut]}, set(shuffled[cut:]))
        elif shape == "scatter":                              # every node alone
            sim.partition(*({n} for n in names))
        else:                                                 # bridge: the victim still sees both sides
            shuffled = rest[:]
            rng.shuffle(shuffled)
            cut = rng.randint(1, len(shuffled) - 1)
            sim.partition(set(shuffled[:cut]), set(shuffled[cut:]))
            self.event("bridge")

    # -- the run -------------------------------------------------------------------------------

    def run(self, steps: int | None = None) -> RunResult:
        try:
            return self._run(steps)
        except BaseException:
            self.sim.close()                        # a run that raises leaves no store behind (/dev/shm)
            raise

    def _run(self, steps: int | None) -> RunResult:
        self.setup()
        steps = steps or self.plan.steps
        restart = regimes.RollingRestart(self) if self.plan.restarts and self.faults else None
        for step in itertools.count():
            if step < steps:
                phase = self.plan.phase_at(step, steps)
            elif restart and restart.extends():      # the rolling restart stretch (ring/verify/regimes.py)
                phase = restart.quiet(self.plan.phases[-1])
            else:
                break
            if phase is not self.phase:
                self.phase = phase
                self._shape_links()
                if self.watch:
                    self.watch.check_all(f"at step {step}")
            for client in self.clients:
                if client not in self.pending and self.rng.random() < phase.issue_p:
                    self._issue(client)
            while self.probes and PROBER not in self.pending:
                coordinator, key = self.probes.pop(0)
                if coordinator in self.sim.live():
                    self._issue(PROBER, (coordinator, key))
            if self.faults:
                self._nemesis()
            if restart:
                restart.step()
            self.sim.run_for(self.rng.randint(1, phase.step_ms))
            self._collect()
        return self.finish()

    def finish(self) -> RunResult:
        sim = self.sim
        sim.run_for(3000)
        self._collect()
        for client, (rid, handle, _) in list(self.pending.items()):
            self.history.complete(handle, "info")   # never answered: indeterminate
        self.pending.clear()
        endings.run(self)                           # the tail, lonely, ... (ring/verify/endings.py)
        self.flaky.clear()
        self.phase = Phase()                        # the classic network: quick, FIFO, lossless
        self._shape_links()
        sim.heal_all()
        sim.run_until(sim.now_ms + 30_000, stop=sim.converged)
        unseen = [(a, f"sees {b} down") for a in sim.live() for b in sim.live()
                  if a != b and not sim.nodes[a].node.is_alive(sim.nodes[b].endpoint)]
        sim.run_for(5000)                           # hints flow to the nodes that were down
        if self.watch and "sloppy" in self.plan.endings:
            self.watch.check_all("after the final heal and hint delivery, before repair")
        for node in sim.nodes.values():
            self.event("hints_delivered", node.node.hints.stats["hints_delivered"])
            self.event("read_repairs", node.node.stats["read_repairs"])
        for name in sim.nodes if not unseen else ():  # a node seen down fails repair; P8 reports it
            try:
                summary = sim.request(name, "repair", keyspace="ks", table="kv")
            except RepairFailure as e:                # a replica seen down (again) after the heal
                unseen.append((name, f"repair failed: {e}"))
                break
            self.event("repair_rows_streamed", summary["rows_streamed"])
        cells = {name: {k: _cell(sim.local_row(name, "ks", "kv", {"k": k})) for k in self.keys}
                 for name in sim.nodes}
        exp = expectations(self.write_cl, self.read_cl, self.dcs, self.rf_by_dc, self.skew)
        result = RunResult(self.seed, self.write_cl, self.read_cl, self.history, cells, exp, dict(self.events),
                           sim.trace, sim.trace_digest(), self.plan, unseen,
                           self.watch.violations if self.watch else [])
        sim.close()
        return result


def _cell(row):
    if row is None or row.get("v") is None:
        return None
    return (row["v"], row["writetime(v)"])
