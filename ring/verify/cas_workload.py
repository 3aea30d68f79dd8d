"""A compare-and-set register workload on a few hot keys, for lightweight transactions.

Closed-loop clients, through random live coordinators, either compare-and-set a key from the
value they last saw to a fresh unique value (`insert(if_not_exists)` when they saw nothing,
`update(if_={"v": seen})`, now and then `delete(if_={"v": seen})`), committing at ONE or QUORUM,
or read it at SERIAL. A seeded nemesis meanwhile uses every fault the simulator has: partitions
(symmetric or not), crashes that lose what was not fsynced (the cluster runs with
durability="batch", so an acknowledged promise is on disk, as Paxos requires), pauses, clock skew
and jumps, and lossy, duplicating, reordering links. Then everything heals and every key gets one
last SERIAL read. The history goes to the WGL checker (`linearizability.check_linearizable`), which models
the register with cas ops (ring/verify/history.py).

An applied cas is `ok`; a cas not applied is the read of the current value it returned; a
timeout (WriteTimeout, written CAS, or no answer) is `info`: it may apply later or never. The
`info` count is reported (`events["cas_undecided"]`), never hidden.

`shape="list"` is the CAS-built append-only list (Jepsen's cas-list): a key's value is a list of
unique elements, written as text joined by ","; a client appends one fresh element to the list it
last saw (`update(if_={"v": seen})`, or `insert(if_not_exists)` of a one-element list) and never
deletes. Besides the WGL check of the register, `check_append_only` checks every list observed
(reads, not-applied answers, the final reads): on each key they are prefixes of one another, with
no duplicate element, and every acknowledged append is in the key's final list.
"""
from __future__ import annotations

import itertools
import random
from dataclasses import dataclass, field

from engine.errors import InvalidRequest
from ring.errors import OverloadedError, ReadFailure, ReadTimeout, UnavailableError, WriteFailure, WriteTimeout
from ring.runtime.sim import Simulation
from ring.verify.history import History
from ring.verify.workload import FAST

HOT_KEYS = ("a", "b", "c")
LINK_DELAY_MS = (2, 25)


@dataclass
class CasResult:
    seed: int
    history: History
    events: dict = field(default_factory=dict)
    digest: str = ""


class CasWorkload:
    def __init__(self, seed: int, *, clients: int = 5, faults: bool = True, node_options: dict | None = None,
                 serial: str = "SERIAL", shape: str = "register"):
        assert shape in ("register", "list"), shape
        self.seed, self.shape = seed, shape
        self.serial = serial
        self.rng = random.Random(f"{seed}:cas-workload")
        self.nemesis = random.Random(f"{seed}:cas-nemesis")
        self.faults = faults
        self.sim = Simulation(seed, 3, durability="batch",
                              node_options={**FAST, "cas_contention_timeout_ms": 2000, **(node_options or {})})
        self.history = History()
        self.clients = [f"c{i}" for i in range(clients)]
        self.process = {c: f"{c}.0" for c in self.clients}
        self.seen = {c: {} for c in self.clients}        # client -> key -> the value it last saw
        self.pending: dict[str, tuple] = {}
        self.follow: dict[str, str] = {}                  # client -> the key it just changed
        self.seq = itertools.count(1)
        self.events: dict[str, int] = {}
        self.down: dict[str, int] = {}
        self.until: dict[str, int] = {}                   # fault -> virtual time to undo it

    def event(self, name: str, n: int = 1) -> None:
        self.events[name] = self.events.get(name, 0) + n

    def setup(self) -> None:
        sim = self.sim
        sim.run_for(4000)
        sim.request("n1", "create_keyspace", name="ks",
                    replication={"class": "SimpleStrategy", "replication_factor": 3})
        sim.request("n1", "create_table", keyspace="ks", name="kv", columns={"k": "text", "v": "text"},
                    primary_key="k", options={"gc_grace_seconds": 3600})
        sim.run_until(sim.now_ms + 10_000, stop=sim.converged)
        for a in sim.nodes:  # a slower network than the default: rounds overlap more
            for b in sim.nodes:
                if a != b:
                    sim.link(a, b).delay_ms = LINK_DELAY_MS

    # -- clients -------------------------------------------------------------------------------

    def _issue(self, client: str) -> None:
        sim, rng = self.sim, self.rng
        live = sim.live()
        if not live:
            return
        coordinator = rng.choice(live)
        key = rng.choice(HOT_KEYS)
        process = self.process[client]
        base = {"keyspace": "ks", "table": "kv"}
        follow = self.follow.pop(client, None)
        if follow is not None and rng.random() < 0.5:   # read back what it just wrote
            key = follow
        if follow == key or rng.random() < 0.4:
            handle = self.history.invoke(process, "read", key, None, self.serial)
            rid = sim.submit(coordinator, "get", **base, key={"k": key}, consistency=self.serial)
            self.pending[client] = (rid, handle, "read", key, None)
            return
        expected = self.seen[client].get(key)
        if rng.random() < 0.1:            # a stale expectation now and then
            expected = None
        commit = rng.choice(["ONE", "QUORUM"])
        args = dict(base, consistency=commit, serial_consistency=self.serial)
        if expected is not None and rng.random() < 0.12 and self.shape == "register":
            new = None
            rid = sim.submit(coordinator, "delete", **args, key={"k": key}, if_={"v": expected})
        else:
            new = f"{client}-{next(self.seq)}"
            if self.shape == "list" and expected is not None:
                new = f"{expected},{new}"             # append to the list it last saw
            if expected is None and rng.random() < 0.7:
                rid = sim.submit(coordinator, "insert", **args, row={"k": key, "v": new}, if_not_exists=True)
            else:
                rid = sim.submit(coordinator, "update", **args, key={"k": key}, set={"v": new}, if_={"v": expected})
        handle = self.history.invoke(process, "cas", key, new, f"{self.serial}/{commit}", expected=expected)
        self.pending[client] = (rid, handle, "cas", key, new)

    def _collect(self) -> None:
        for client, (rid, handle, kind, key, new) in list(self.pending.items()):
            reply = self.sim.replies.pop(rid, None)
            if reply is None:
                continue
            del self.pending[client]
            self._complete(client, handle, kind, key, new, reply.result, reply.error)

    def _complete(self, client, handle, kind, key, new, result, err) -> None:
        if err is None:
            if kind == "read":
                value = result.get("v") if result else None
                self.seen[client][key] = value
                self.history.complete(handle, "ok", value)
                self.event("ok_serial_read")
            elif result["applied"]:
                self.seen[client][key] = new
                self.follow[client] = key
                self.history.complete(handle, "ok")
                self.event("cas_applied")
            else:
                value = result.get("v")
                self.seen[client][key] = value
                self.history.complete(handle, "ok", value, as_read=True)
                self.event("cas_not_applied")
        elif isinstance(err, (UnavailableError, InvalidRequest, OverloadedError)) or \
                (isinstance(err, ConnectionError) and not isinstance(err, TimeoutError)):
            self.event(type(err).__name__)
            self.history.complete(handle, "fail")
        else:
            assert isinstance(err, (WriteTimeout, ReadTimeout, WriteFailure, ReadFailure, TimeoutError)), repr(err)
            self.event(type(err).__name__)
            if kind == "cas":
                self.event("cas_undecided")
            self.history.complete(handle, "info")
            self.process[client] = f"{client}.{next(self.seq)}"

    # -- nemesis -------------------------------------------------------------------------------

    def _undo(self) -> None:
        sim, now = self.sim, self.sim.now_ms
        for node, until in list(self.down.items()):
            if now >= until:
                if sim.nodes[node].node is None:
                    sim.restart(node)
                elif sim.nodes[node].paused:
                    sim.resume(node)
                del self.down[node]
        if now >= self.until.get("net", 1 << 62):
            sim.heal()
            for link in sim.links.values():
                link.reorder, link.delay_ms = False, LINK_DELAY_MS
            del self.until["net"]

    def _nemesis(self) -> None:
        self._undo()
        sim, rng = self.sim, self.nemesis
        if rng.random() > 0.015:
            return
        names = list(sim.nodes)
        victim = rng.choice(names)
        fault = rng.choice(["partition", "crash", "pause", "skew", "jump", "lossy"])
        if fault in ("partition", "lossy") and "net" not in self.until:
            if fault == "partition":
                sim.partition({victim}, {n for n in names if n != victim}, symmetric=rng.random() < 0.7)
            else:
                for a in names:
                    for b in names:
                        if a != b:
                            link = sim.link(a, b)
                            link.drop, link.dup, link.reorder = 0.25, 0.1, True
                            link.delay_ms = (1, 40)
            self.until["net"] = sim.now_ms + rng.randint(500, 4000)
        elif fault in ("crash", "pause") and victim not in self.down and len(self.down) < 1:
            if fault == "crash":
                sim.crash(victim, lose_unsynced=True)
            else:
                sim.pause(victim)
            self.down[victim] = sim.now_ms + rng.randint(500, 5000)
        elif fault == "skew":
            sim.skew(victim, rng.randint(-500, 500))
        elif fault == "jump":
            sim.clock_jump(victim, rng.choice([-1, 1]) * rng.randint(100, 3000))
        else:
            return
        self.event(fault)

    # -- the run -------------------------------------------------------------------------------

    def run(self, steps: int = 1500) -> CasResult:
        self.setup()
        for _ in range(steps):
            for client in self.clients:
                if client not in self.pending and self.rng.random() < 0.6:
                    self._issue(client)
            if self.faults:
                self._nemesis()
            self.sim.run_for(self.rng.randint(1, 10))
            self._collect()
        return self.finish()

    def finish(self) -> CasResult:
        sim = self.sim
        sim.run_for(5000)
        self._collect()
        for client, (rid, handle, kind, key, new) in list(self.pending.items()):
            self._complete(client, handle, kind, key, new, None, TimeoutError("never answered"))
        self.pending.clear()
        sim.heal_all()
        for link in sim.links.values():
            link.reorder = False
        sim.run_until(sim.now_ms + 30_000, stop=sim.converged)
        for key in HOT_KEYS:  # one last SERIAL read of every key, after the storm
            handle = self.history.invoke(f"final-{key}", "read", key, None, self.serial)
            reply = sim.wait(sim.submit("n1", "get", keyspace="ks", table="kv", key={"k": key},
                                        consistency=self.serial))
            if reply.error is None:
                self.history.complete(handle, "ok", reply.result.get("v") if reply.result else None)
            else:
                self.event("final_read_failed")
                self.history.complete(handle, "info")
        for sn in sim.nodes.values():
            for name in ("cas_contention", "cas_finish_in_progress", "cas_repair_commits"):
                self.event(name, sn.node.stats.get(name, 0))
        result = CasResult(self.seed, self.history, dict(self.events), sim.trace_digest())
        sim.close()
        return result


def check_append_only(history: History) -> list[str]:
    """The cas-list properties of a history (shape="list"); the problems found, [] when none.

    Per key, every list observed by an ok operation (a read, a cas answered not applied) must be
    a prefix of the longest one or extend it, and hold no element twice; every applied append must
    be in the final list (the last observed, which the final SERIAL reads make the newest)."""
    problems = []
    by_key: dict[str, list] = {}
    for op in history.ops:
        if op.outcome == "ok":
            by_key.setdefault(op.key, []).append(op)
    for key, ops in sorted(by_key.items()):
        observed = [op.value.split(",") for op in ops if op.kind == "read" and op.value]
        applied = [op.value.split(",")[-1] for op in ops if op.kind == "cas" and op.value]
        longest: list = []
        for lst in sorted(observed, key=len):
            if len(set(lst)) != len(lst):
                problems.append(f"{key}: an element appears twice in {lst}")
            if lst[:len(longest)] != longest:
                problems.append(f"{key}: {lst} does not extend {longest}: an append was lost or reordered")
            longest = lst
        final = [op for op in ops if op.process.startswith("final-")]
        if final:
            last = set(final[-1].value.split(",")) if final[-1].value else set()
            lost = [a for a in applied if a not in last]
            if lost:
                problems.append(f"{key}: acknowledged appends missing from the final list: {lost[:5]}")
    return problems
