"""How a swarm run ends, and the replica watch (P9) that observes each replica's own data.

A swarm plan (`ring.verify.swarm.Plan`) names its endings in `Plan.endings`; `Workload.finish`
runs them, in that order, after the run's last requests are answered or marked info and before
the final heal, hint delivery and repair:

* `tail` (`Plan.tail` steps; always last): heal, crash one node, write and delete, then truncate
  every node's hints (`nodetool truncatehints`): the crashed replica misses writes only repair
  brings back, and it restarts (a new gossip generation) at the final heal.
* `lonely`: heal, cut one node off until both others convict it, then write through the two
  survivors over a slow link between them. Each coordinator stores a hint for the cut-off replica
  at once and applies its own copy; a correct coordinator still waits for the other survivor's
  acknowledgement (or times out), so an ok write is on a quorum of real replicas. Then the
  cut-off node comes back and its hints are delivered within the hint window.
* `gc_grace`: write every key, cut one replica off, delete every key through the others, wait a
  few gossip rounds: each acknowledged tombstone must still be on enough replicas (gc_grace_seconds
  is 3600 s), then heal and read every key through every node: the cut-off replica still holds the
  deleted values, and only the tombstones shadow them.
* `sloppy`: cut one node off and write through it until it convicts its peers (its copies time out
  and live on it alone, with no hint), heal, then read every key through each node in turn, the
  cut-off one first, before any repair: a read meeting the lone copy must write it back first.
  After the final heal and hint delivery, before the repair, the watch checks every obligation
  against each replica's own data (what a read at ONE through that replica alone would see).

The replica watch (`ReplicaWatch`, property P9: acknowledged data is on enough replicas) is the
one assertion the endings add, and it is true of a correct node at any moment after the
acknowledgement: an ok write or delete at level W with timestamp T means replicas satisfying W
applied a mutation at ts >= T; an ok read at a level with blocking read repair (QUORUM, ALL,
EACH_QUORUM, LOCAL_QUORUM in one DC) that returned a value at ts T means as many replicas as the
level blocks for (counted as the read counts them: at EACH_QUORUM from any DC, as Cassandra's
ReadCallback does) hold ts >= T (the digests matched, or the stale ones were repaired before the
answer).
Nothing a correct node does takes a replica below T within the run: writes only add timestamps,
tombstones are kept for gc_grace_seconds (3600 s, far past a run's virtual time), a process crash
keeps what reached the OS. A crashed node's store cannot be read, so it counts as a holder (the
watch never guesses against the cluster). Not checked: ANY writes (a hint may be the only copy),
reads at levels without blocking read repair (ONE reads are P0's business).

Invariants: the watch reads local stores only (no message, no random draw, no virtual time), so it
does not change the run it observes; the classic `Plan()` has no endings and no watch; an
ending draws only from `random.Random(f"{seed}:ending")`.
"""
from __future__ import annotations

import random

from engine.mutation import partition_key_bytes
from ring import consistency as cl
from ring.verify.history import Op
from ring.verify.swarm import Phase

ENDINGS = ("tail", "lonely", "gc_grace", "sloppy")
NEVER = -(2**63)


def newest_ts(p) -> int:
    """The newest timestamp a replica's partition holds: a cell, a row or partition deletion, a
    range tombstone (what a read at ONE through that replica alone would resolve against)."""
    if p is None:
        return NEVER
    top = p.deletion[0] if p.deletion else NEVER
    for row in p.rows.values():
        if row.deletion and row.deletion[0] > top:
            top = row.deletion[0]
        for cell in row.cells.values():
            if cell[0] > top:
                top = cell[0]
    for r in p.ranges:
        top = max(top, r[2])
    return top


class ReplicaWatch:
    """P9: each acknowledged write, delete and blocking-read-repaired read is on replicas that
    satisfy its level. Checked at the acknowledgement (the op's key) and at `check_all`."""

    def __init__(self, workload, monotonic: bool):
        self.sim = workload.sim
        self.dc_of = {f"n{i + 1}": dc for i, dc in enumerate(workload.dcs)}
        self.rf_by_dc = workload.rf_by_dc
        self.levels = {"write": None if workload.write_cl == "ANY" else workload.write_cl,
                       "delete": None if workload.write_cl == "ANY" else workload.write_cl,
                       "read": workload.read_cl if monotonic else None}
        # every node is a replica of every key (RF = nodes per DC, at most 3); otherwise no watch
        self.active = all(workload.dcs.count(dc) == rf for dc, rf in self.rf_by_dc.items())
        self.need: dict[str, dict[str, Op]] = {}     # key -> level -> the newest obligation's op
        self.violations: list[tuple[str, str, Op]] = []
        self.reported: set[tuple[str, int]] = set()
        self.met: dict[tuple[str, str], int] = {}    # (key, level) -> newest ts seen met at an acknowledgement
        self.checks = 0

    def _newest_by_node(self, key: str) -> dict[str, int | None]:
        out = {}
        for name, sn in self.sim.nodes.items():
            if sn.node is None:                     # crashed: its store cannot be read; counts as a holder
                out[name] = None
                continue
            table = sn.store.table("ks", "kv")
            out[name] = newest_ts(sn.store.read_partition(table, partition_key_bytes(table, {"k": key})))
        self.checks += 1
        return out

    def _check(self, op: Op, level: str, newest: dict, when: str) -> bool:
        """Whether the replicas holding ts >= op.ts satisfy `level`; if not, a violation (once)."""
        holders = [n for n, ts in newest.items() if ts is None or ts >= op.ts]
        acks: dict[str, int] = {}
        for n in holders:
            acks[self.dc_of[n]] = acks.get(self.dc_of[n], 0) + 1
        lvl = cl.ConsistencyLevel.parse(level)
        if op.kind == "read":        # a read answers after block_for replies from any DC that counts
            #   (coordinator.ReadHandler, as Cassandra's ReadCallback: EACH_QUORUM's are not per DC)
            if any(sum(n for dc, n in acks.items() if cl.counts_towards(lvl, dc, local))
                   >= cl.block_for(lvl, self.rf_by_dc, local) for local in self.rf_by_dc):
                return True
        elif any(cl.tally(lvl, acks, self.rf_by_dc, local) for local in self.rf_by_dc):
            return True
        if (op.key, op.ts) in self.reported:
            return False
        self.reported.add((op.key, op.ts))
        seen = ", ".join(f"{n}={'down' if ts is None else ts}" for n, ts in sorted(newest.items()))
        self.violations.append((op.key, f"{op.kind} acknowledged at {level} with ts {op.ts}, but {when} only "
                                        f"{sorted(holders)} hold ts >= it (newest per replica: {seen})", op))
        return False

    def on_ok(self, op: Op) -> None:
        """An op was just acknowledged: it must already be on enough replicas."""
        level = self.levels.get(op.kind)
        if not self.active or level is None or op.ts is None or (op.kind == "read" and op.value is None):
            return
        mine = self.need.setdefault(op.key, {})
        met = self.met.get((op.key, level))
        if met is None or op.ts > met:     # holders of ts >= met only grow: an older or equal ts is met too
            if self._check(op, level, self._newest_by_node(op.key), "at its acknowledgement"):
                self.met[(op.key, level)] = op.ts
        if level not in mine or mine[level].ts < op.ts:
            mine[level] = op

    def check_all(self, when: str) -> None:
        """Every key's newest obligation per level, against every replica's data now."""
        if not self.active:
            return
        for key, by_level in self.need.items():
            newest = self._newest_by_node(key)
            for level, op in by_level.items():
                self._check(op, level, newest, when)


# -- endings -----------------------------------------------------------------------------------------

def _fresh_processes(w) -> None:
    for client in w.clients:                        # some finished with an info op: fresh processes
        w.process[client] = f"{client}.{next(w.seq)}"


def _drive(w, steps: int, wait_ms: int | None = None) -> None:
    """The clients issue requests for `steps` steps, then whatever is unanswered becomes info:
    after `wait_ms` (every write's deadline passed, so its coordinator hinted the replicas that
    did not answer), or as soon as every client has its answer (None)."""
    sim = w.sim
    for _ in range(steps):
        for client in w.clients:
            if client not in w.pending and w.rng.random() < w.phase.issue_p:
                w._issue(client)
        sim.run_for(w.rng.randint(1, w.phase.step_ms))
        w._collect()
    if wait_ms is not None:
        sim.run_for(wait_ms)
        w._collect()
    _settle(w, 3000 if wait_ms is None else 0)


def _settle(w, limit_ms: int = 3000) -> None:
    """Let the requests in flight be answered (timeouts are shorter than `limit_ms`); what is still
    unanswered becomes info."""
    sim, until = w.sim, w.sim.now_ms + limit_ms
    while w.pending and sim.now_ms < until:
        sim.run_for(50)
        w._collect()
    for client, (rid, handle, _) in list(w.pending.items()):
        w.history.complete(handle, "info")
    w.pending.clear()


def _calm(w, phase: Phase) -> None:
    """How each ending starts: no flaky links, `phase`'s network and clients, every partition
    healed, then up to 30 s (virtual) for membership to converge."""
    sim = w.sim
    w.flaky.clear()
    w.phase = phase
    w._shape_links()
    sim.heal_all()
    sim.run_until(sim.now_ms + 30_000, stop=sim.converged)


def tail(w) -> None:
    """Heal, crash one node, write and delete for `plan.tail` steps, then truncate every node's
    hints: the crashed replica misses those writes and only repair brings them (Cassandra's
    `nodetool truncatehints`: legal, repair must make up for it). An ANY write may live only in a
    hint, so at ANY the hints stay. The crashed node restarts at the final heal, with a new gossip
    generation shortly before the membership check (P8). With a swarm plan's endings (`w.watch`)
    the node is crashed; without them (a plan that only has a tail) it is cut off, as before."""
    sim = w.sim
    _calm(w, Phase(write_p=0.8, delete_p=0.2, issue_p=0.8, step_ms=20))
    names = list(sim.nodes)
    victim = w.nemesis.choice(names)
    if w.watch:
        sim.crash(victim, lose_unsynced=False)
    else:
        sim.partition({victim}, {n for n in names if n != victim})
    w.event("tail")
    _fresh_processes(w)
    _drive(w, w.plan.tail, wait_ms=3000)            # then the hints for the crashed node exist: truncate them
    if w.write_cl != "ANY":
        for node in sim.nodes.values():
            if node.node is not None:
                w.event("hints_truncated", node.node.hints.truncate())


def lonely(w) -> None:
    """Cut one node off until the others convict it, then write through the survivors over a slow
    link between them: each write is hinted for the cut-off replica at once, and is on one real
    replica until the other survivor's copy arrives. Then the node comes back (hints delivered)."""
    sim, rng = w.sim, random.Random(f"{w.seed}:ending")
    _calm(w, Phase(write_p=0.7, delete_p=0.1, issue_p=0.9, step_ms=rng.choice([5, 10])))
    names = list(sim.nodes)
    victim = rng.choice(names)
    others = [n for n in names if n != victim]
    sim.partition({victim}, set(others))
    ep = sim.nodes[victim].endpoint
    sim.run_until(sim.now_ms + 30_000, stop=lambda: not any(sim.nodes[n].node.is_alive(ep) for n in others))
    w.event("lonely")
    delay = rng.choice([60, 120, 200])
    saved = {}
    for a in others:
        for b in others:
            if a != b:
                link = sim.link(a, b)
                saved[(a, b)] = (link.delay_ms, link.reorder)
                link.delay_ms, link.reorder = (delay // 2, delay), True
    _fresh_processes(w)
    _drive(w, rng.choice([30, 60]))
    for (a, b), (delay_ms, reorder) in saved.items():
        link = sim.link(a, b)
        link.delay_ms, link.reorder = delay_ms, reorder
    sim.heal()
    w._shape_links()


def _await(w, client: str, limit_ms: int = 5000) -> None:
    """Run until `client`'s request is answered (or `limit_ms` passed: then it is info)."""
    sim, until = w.sim, w.sim.now_ms + limit_ms
    while client in w.pending and sim.now_ms < until:
        sim.run_for(10)
        w._collect()
    if client in w.pending:
        _, handle, _ = w.pending.pop(client)
        w.history.complete(handle, "info")
        w.process[client] = f"{client}.{next(w.seq)}"


def sloppy(w) -> None:
    """Cut one node off and write through it until it convicts its peers: its copies time out
    (info) and are on it alone, with no hint anywhere. Heal, let membership converge, then read
    every key at the run's read level through each node in turn, the cut-off one first, before
    any repair: a read that meets the lone copy must write it back (blocking read repair) before
    it answers, which the watch (P9) checks at the acknowledgement."""
    sim, rng = w.sim, random.Random(f"{w.seed}:sloppy")
    _calm(w, Phase(write_p=1.0, delete_p=0.0, issue_p=1.0, step_ms=10))
    names = list(sim.nodes)
    victim = rng.choice(names)
    others = {n for n in names if n != victim}
    sim.partition({victim}, others)
    w.event("sloppy")
    _fresh_processes(w)
    budget = dict.fromkeys(w.clients, 3)          # a few lone copies per client (at ONE each write is ok at once)
    for _ in range(rng.choice([50, 100])):      # 0.5-1 s: before the victim convicts its peers
        for client in w.clients:
            if client not in w.pending and budget[client]:
                budget[client] -= 1
                key = rng.choice(w.keys)
                value = f"{client}-{next(w.seq)}"
                handle = w.history.invoke(w.process[client], "write", key, value, w.write_cl)
                rid = sim.submit(victim, "insert", keyspace="ks", table="kv", row={"k": key, "v": value},
                                 consistency=w.write_cl)
                w.pending[client] = (rid, handle, "write")
        sim.run_for(rng.randint(1, 10))
        w._collect()
    _settle(w)
    sim.heal()
    w._shape_links()
    sim.run_until(sim.now_ms + 30_000, stop=sim.converged)
    reader = "sloppy"
    w.process[reader] = f"{reader}.{next(w.seq)}"
    for key in w.keys:
        for node in [victim] + sorted(others):
            if node in sim.live():
                w._issue(reader, (node, key))
                _await(w, reader)


def _one(w, client: str, coordinator: str, kind: str, key: str) -> None:
    """One write or delete at the run's write level through `coordinator`, awaited."""
    sim = w.sim
    if kind == "write":
        value = f"{client}-{next(w.seq)}"
        handle = w.history.invoke(w.process[client], "write", key, value, w.write_cl)
        rid = sim.submit(coordinator, "insert", keyspace="ks", table="kv", row={"k": key, "v": value},
                         consistency=w.write_cl)
    else:
        handle = w.history.invoke(w.process[client], "delete", key, None, w.write_cl)
        rid = sim.submit(coordinator, "delete", keyspace="ks", table="kv", key={"k": key}, consistency=w.write_cl)
    w.pending[client] = (rid, handle, kind)
    _await(w, client)


def gc_grace(w) -> None:
    """Write every key, cut one replica off, delete every key through the others, and let a few
    gossip rounds pass (a node may flush and compact in them): gc_grace_seconds (3600 s) is far
    away, so each acknowledged tombstone must still be on replicas satisfying the write level
    (the watch checks it), and after the heal no read may bring a deleted value back (the cut-off
    replica still holds it: only the tombstone can shadow it)."""
    sim, rng = w.sim, random.Random(f"{w.seed}:gc_grace")
    _calm(w, Phase())
    names = list(sim.nodes)
    victim = rng.choice(names)
    others = sorted(n for n in names if n != victim)
    client = "gc"
    w.process[client] = f"{client}.{next(w.seq)}"
    for key in w.keys:
        _one(w, client, rng.choice(others), "write", key)
    sim.partition({victim}, set(others))
    w.event("gc_grace")
    for key in w.keys:
        _one(w, client, rng.choice(others), "delete", key)
    sim.run_for(rng.choice([1000, 2000]))
    if w.watch:
        w.watch.check_all("a few seconds after the deletes")
    sim.heal()
    w._shape_links()
    sim.run_until(sim.now_ms + 30_000, stop=sim.converged)
    for key in w.keys:
        for node in others + [victim]:
            if node in sim.live():
                w._issue(client, (node, key))
                _await(w, client)


RUN = {"lonely": lonely, "gc_grace": gc_grace, "sloppy": sloppy}


def run(w) -> None:
    """The plan's endings before the final heal, in order, then the tail if the plan has one: last,
    so that no ending's reads repair what the tail left for the final repair (`sloppy` also names
    the watch's last check in `Workload.finish`, after the heal and the hints)."""
    for name in w.plan.endings:
        if name in RUN:
            RUN[name](w)
            if w.watch:
                w.watch.check_all(f"after the {name} ending")
    if w.plan.tail:
        tail(w)
        if w.watch:
            w.watch.check_all("after the tail")
