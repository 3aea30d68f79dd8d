"""The deterministic simulator: many production `Node`s in one thread, in virtual time.

Each node runs the real `ring.node.Node` over a real engine `Store` in its own temporary
directory (no background threads). Everything that could vary is derived from one seed, split per
subsystem (`random.Random(f"{seed}:net")`, `...:node:n2`, ...), and time is virtual: one event
heap of (time, sequence, event). The network delays, drops, duplicates and reorders per link and
partitions (symmetric or not, checked at delivery); nodes crash (losing what was not fsynced),
restart, are wiped, pause (inbound queued, timers frozen) and have skewed or jumping wall clocks.
The commit log is synced every `sync_interval_ms` of virtual time (periodic mode in virtual time),
or per write with durability="batch", where a node's `Durable` effects complete at once, after
the other effects of the same call (docs/simulation.md#durability). Every delivery and reply feeds `trace_digest()`: the same
seed gives the same digest, whatever PYTHONHASHSEED is. A message that does not decode is
counted (`counters["malformed"]`) and dropped; an exception raised by a node fails the run, with
a note naming the node, the message and the virtual time.
"""
from __future__ import annotations

import heapq
import logging
import os
import random
import shutil
import tempfile
from dataclasses import dataclass, field

import xxhash

from engine.errors import EngineError, InvalidRequest
from engine.store import Store
from ring.messages import ClientRequest, Durable, Reply, Send, decode, encode
from ring.node import Node, NodeConfig

log = logging.getLogger("dynatable.sim")
EPOCH_US = 1_700_000_000_000_000
TICK_MS = 100


@dataclass
class Link:
    drop: float = 0.0
    dup: float = 0.0
    delay_ms: tuple[int, int] = (1, 5)
    reorder: bool = False
    last_delivery_ms: int = 0


class SimClock:
    """A node's wall clock: virtual time plus its own offset (skew) and drift."""

    def __init__(self, sim: "Simulation"):
        self.sim = sim
        self.offset_us = 0
        self.drift_ppm = 0

    def wall_us(self) -> int:
        t = self.sim.now_ms * 1000
        return EPOCH_US + t + t * self.drift_ppm // 1_000_000 + self.offset_us

    def wall_ms(self) -> int:
        return self.wall_us() // 1000

    def now_s(self) -> int:
        return self.wall_us() // 1_000_000

    def monotonic(self) -> float:
        return self.sim.now_ms / 1000


@dataclass
class SimNode:
    name: str
    endpoint: str
    index: int
    datacenter: str
    directory: str
    clock: SimClock
    node: Node | None = None
    store: Store | None = None
    paused: bool = False
    held: list = field(default_factory=list)   # messages that arrived while paused
    options: dict = field(default_factory=dict)  # NodeConfig options of this node only


def scratch_dir() -> str | None:
    """Where a simulation's stores live when no root is given: `DYNATABLE_SIM_DIR`, else a memory
    file system (/dev/shm) when there is one, else the system temp dir. The files, fsyncs and
    renames are the engine's real ones either way; on tmpfs an fsync costs no disk flush, which is
    most of a sweep's time (the simulator models process crashes, which lose nothing the OS holds)."""
    chosen = os.environ.get("DYNATABLE_SIM_DIR")
    if chosen:
        return chosen
    shm = "/dev/shm"
    return shm if os.path.isdir(shm) and os.access(shm, os.W_OK) else None


class Simulation:
    def __init__(self, seed: int, nodes: int = 3, *, dcs: list[str] | None = None, durability: str = "periodic",
                 node_options: dict | None = None, root: str | None = None, sync_interval_ms: int = 1000,
                 trace: bool = False):
        self.seed = seed
        self.now_ms = 0
        self.rng_net = random.Random(f"{seed}:net")
        self.durability = durability
        self.sync_interval_ms = sync_interval_ms
        self.node_options = dict(node_options or {})
        self.root = root or tempfile.mkdtemp(prefix=f"dynatable-sim-{seed}-", dir=scratch_dir())
        self._own_root = root is None
        self.events: list = []
        self._seq = 0
        self._digest = xxhash.xxh64()
        self.trace: list[str] | None = [] if trace else None
        self.links: dict[tuple[str, str], Link] = {}
        self.cut: set[tuple[str, str]] = set()      # directed links that deliver nothing
        self.replies: dict[int, Reply] = {}
        self._rid = 0
        self.counters = {"delivered": 0, "dropped": 0, "duplicated": 0, "malformed": 0, "crashes": 0, "restarts": 0}
        dcs = dcs or ["datacenter1"] * nodes
        self.nodes: dict[str, SimNode] = {}
        for i in range(nodes):
            name = f"n{i + 1}"
            sn = SimNode(name, f"10.0.0.{i + 1}:9100", i, dcs[i], os.path.join(self.root, name), SimClock(self))
            self.nodes[name] = sn
        self.by_endpoint = {sn.endpoint: sn for sn in self.nodes.values()}
        for sn in self.nodes.values():
            self._boot(sn)
        self._schedule(TICK_MS, "tick", None)
        self._schedule(self.sync_interval_ms, "sync", None)

    # -- lifecycle ---------------------------------------------------------------------------

    def _boot(self, sn: SimNode) -> None:
        sync = "batch" if self.durability == "batch" else "periodic"
        sn.store = Store.open(sn.directory, background=False, clock=sn.clock, commitlog_sync=sync,
                              commitlog_sync_period_ms=3_600_000, commitlog_segment_size_bytes=1 << 20)
        seeds = [s.endpoint for s in self.nodes.values() if s.index == 0 or s.datacenter != self.nodes["n1"].datacenter
                 and s.index == min(x.index for x in self.nodes.values() if x.datacenter == s.datacenter)]
        config = NodeConfig(endpoint=sn.endpoint, host_id=f"host-{sn.name}", datacenter=sn.datacenter,
                            seeds=seeds, **{**self.node_options, **sn.options})
        sn.node = Node(config, sn.store, random.Random(f"{self.seed}:node:{sn.name}:{self.counters['restarts']}"),
                       sn.clock)
        self._perform(sn, sn.node.start(self.now_ms))

    def add_node(self, datacenter: str | None = None, **options) -> str:
        """A new node (auto_bootstrap unless told otherwise) joins the running cluster."""
        i = len(self.nodes)
        name = f"n{i + 1}"
        sn = SimNode(name, f"10.0.0.{i + 1}:9100", i, datacenter or self.nodes["n1"].datacenter,
                     os.path.join(self.root, name), SimClock(self), options={"auto_bootstrap": True, **options})
        self.nodes[name] = sn
        self.by_endpoint[sn.endpoint] = sn
        self._note(f"add {name}")
        self._boot(sn)
        return name

    def close(self) -> None:
        for sn in self.nodes.values():
            if sn.store is not None:
                sn.store.close()
                sn.store = None
        if self._own_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- events ------------------------------------------------------------------------------

    def _schedule(self, at_ms: int, kind: str, payload) -> None:
        self._seq += 1
        heapq.heappush(self.events, (at_ms, self._seq, kind, payload))

    def _note(self, line: str) -> None:
        self._digest.update(line.encode())
        if self.trace is not None:
            self.trace.append(f"{self.now_ms:>8} {line}")

    def trace_digest(self) -> str:
        return self._digest.hexdigest()

    def link(self, a: str, b: str) -> Link:
        key = (self.nodes[a].endpoint, self.nodes[b].endpoint)
        if key not in self.links:
            self.links[key] = Link()
        return self.links[key]

    def _send(self, src: SimNode, msg) -> None:
        dst = self.by_endpoint.get(msg.to)
        if dst is None:
            return
        link = self.links.get((src.endpoint, dst.endpoint)) or Link()
        rng = self.rng_net
        if rng.random() < link.drop:
            self.counters["dropped"] += 1
            return
        data = encode(msg.msg)
        copies = 2 if rng.random() < link.dup else 1
        self.counters["duplicated"] += copies - 1
        for _ in range(copies):
            at = self.now_ms + rng.randint(*link.delay_ms)
            if not link.reorder:
                at = max(at, link.last_delivery_ms)  # FIFO per link
                link.last_delivery_ms = at
            self.links.setdefault((src.endpoint, dst.endpoint), link)
            self._schedule(at, "deliver", (src.endpoint, dst.endpoint, data))

    def _perform(self, sn: SimNode, effects) -> None:
        durable = []
        for eff in effects:
            if type(eff) is Send:
                self._send(sn, eff)
            elif type(eff) is Durable:
                durable.append(eff)
            else:
                self.replies[eff.request_id] = eff
                err = type(eff.error).__name__ if eff.error is not None else "ok"
                self._note(f"{sn.name} reply {eff.request_id} {err}")
        for eff in durable:  # after the batch's other effects, as the node's own acks came before
            self._complete_durable(sn, eff)

    def _complete_durable(self, sn: SimNode, eff: Durable) -> None:
        """A `Durable` completes at once, in virtual time 0: only durability="batch" produces
        them, and there each write's record is fsynced before its ack, as in a real batch log."""
        error = None
        try:
            sn.store.await_durable(eff.position)
        except EngineError as e:
            error = f"{type(e).__name__}: {e}"
        self._perform(sn, sn.node.durable(self.now_ms, eff, error))

    def _deliver(self, src: str, dst: str, data: bytes) -> None:
        target = self.by_endpoint[dst]
        if target.node is None or (src, dst) in self.cut:
            self.counters["dropped"] += 1
            return
        if target.paused:
            target.held.append((src, data))
            return
        try:
            msg = decode(data)
        except InvalidRequest as e:  # rejected at decode: counted and logged, never stepped
            self.counters["malformed"] += 1
            log.warning("%s: dropped a malformed message from %s: %s", target.name, src, e)
            return
        self.counters["delivered"] += 1
        self._note(f"{self.by_endpoint[src].name}->{target.name} {type(msg).__name__} {xxhash.xxh64(data).hexdigest()}")
        try:
            effects = target.node.step(self.now_ms, src, msg)
        except Exception as e:  # a bug in the node: the run fails, saying where
            e.add_note(f"in {target.name}.step({type(msg).__name__} from {self.by_endpoint[src].name}) at "
                       f"{self.now_ms} ms of the simulation with seed {self.seed}")
            raise
        self._perform(target, effects)

    def _tick_all(self) -> None:
        for sn in self.nodes.values():
            if sn.node is not None and not sn.paused:
                self._perform(sn, sn.node.tick(self.now_ms))

    def _sync_all(self) -> None:
        for sn in self.nodes.values():
            if sn.store is not None and not sn.paused:
                sn.store.commit_log.sync()

    def run_until(self, until_ms: int, stop=None) -> bool:
        """Process events up to virtual time `until_ms`; stop early when `stop()` is true."""
        while self.events and self.events[0][0] <= until_ms:
            at, _, kind, payload = heapq.heappop(self.events)
            self.now_ms = max(self.now_ms, at)
            if kind == "deliver":
                self._deliver(*payload)
            elif kind == "tick":
                self._tick_all()
                self._schedule(self.now_ms + TICK_MS, "tick", None)
            elif kind == "sync":
                self._sync_all()
                self._schedule(self.now_ms + self.sync_interval_ms, "sync", None)
            if stop is not None and stop():
                return True
        self.now_ms = max(self.now_ms, until_ms)
        return stop() if stop is not None else True

    def run_for(self, ms: int) -> None:
        self.run_until(self.now_ms + ms)

    # -- clients -----------------------------------------------------------------------------

    def submit(self, node: str, op: str, **args) -> int:
        """Send a client request to `node` as coordinator; returns its request id."""
        self._rid += 1
        sn = self.nodes[node]
        if sn.node is None or sn.paused:
            self.replies[self._rid] = Reply(self._rid, error=ConnectionError(f"{node} is not serving"))
            return self._rid
        self._note(f"{node} submit {self._rid} {op}")
        self._perform(sn, sn.node.submit(self.now_ms, ClientRequest(self._rid, op, args)))
        return self._rid

    def wait(self, rid: int, timeout_ms: int = 30_000) -> Reply:
        self.run_until(self.now_ms + timeout_ms, stop=lambda: rid in self.replies)
        reply = self.replies.pop(rid, None)
        if reply is None:
            return Reply(rid, error=TimeoutError(f"request {rid} got no reply in {timeout_ms} ms"))
        return reply

    def request(self, node: str, op: str, **args):
        reply = self.wait(self.submit(node, op, **args))
        if reply.error is not None:
            raise reply.error
        return reply.result

    # -- faults ------------------------------------------------------------------------------

    def partition(self, *groups: set[str], symmetric: bool = True) -> None:
        """Cut every link between the groups (names); asymmetric cuts only group i -> group j, i < j."""
        self.cut.clear()
        for i, g in enumerate(groups):
            for j, h in enumerate(groups):
                if i == j or (not symmetric and j < i):
                    continue
                for a in g:
                    for b in h:
                        self.cut.add((self.nodes[a].endpoint, self.nodes[b].endpoint))
        self._note(f"partition {[sorted(g) for g in groups]} symmetric={symmetric}")

    def heal(self) -> None:
        self.cut.clear()
        for link in self.links.values():
            link.drop = link.dup = 0.0
        self._note("heal")

    def crash(self, node: str, lose_unsynced: bool = True) -> None:
        sn = self.nodes[node]
        if sn.node is None:
            return
        sn.store.crash(lose_unsynced=lose_unsynced)
        sn.node, sn.store, sn.paused, sn.held = None, None, False, []
        self.counters["crashes"] += 1
        self._note(f"crash {node} lose_unsynced={lose_unsynced}")

    def restart(self, node: str) -> None:
        sn = self.nodes[node]
        if sn.node is not None:
            return
        self.counters["restarts"] += 1
        self._note(f"restart {node}")
        self._boot(sn)

    def wipe(self, node: str) -> None:
        """Permanent loss of the node's disk; it comes back empty under the same identity."""
        self.crash(node)
        shutil.rmtree(self.nodes[node].directory, ignore_errors=True)
        self._note(f"wipe {node}")

    def pause(self, node: str) -> None:
        self.nodes[node].paused = True
        self._note(f"pause {node}")

    def resume(self, node: str) -> None:
        sn = self.nodes[node]
        sn.paused = False
        held, sn.held = sn.held, []
        self._note(f"resume {node}")
        for src, data in held:
            self._deliver(src, sn.endpoint, data)

    def skew(self, node: str, offset_ms: int, drift_ppm: int = 0) -> None:
        clock = self.nodes[node].clock
        clock.offset_us = offset_ms * 1000
        clock.drift_ppm = drift_ppm
        self._note(f"skew {node} {offset_ms}ms {drift_ppm}ppm")

    def clock_jump(self, node: str, delta_ms: int) -> None:
        self.nodes[node].clock.offset_us += delta_ms * 1000
        self._note(f"clock_jump {node} {delta_ms}ms")

    def heal_all(self) -> None:
        self.heal()
        for name, sn in self.nodes.items():
            if sn.paused:
                self.resume(name)
            if sn.node is None:
                self.restart(name)
            sn.clock.offset_us = sn.clock.drift_ppm = 0

    # -- inspection --------------------------------------------------------------------------

    def live(self) -> list[str]:
        return [n for n, sn in self.nodes.items() if sn.node is not None and not sn.paused]

    def converged(self) -> bool:
        """Every live node sees every live node up, with one schema version."""
        live = [self.nodes[n] for n in self.live()]
        versions = {sn.node.schema.version() for sn in live}
        return len(versions) == 1 and all(sn.node.is_alive(other.endpoint) for sn in live for other in live)

    def local_row(self, node: str, keyspace: str, table: str, key: dict, writetime: bool = True):
        return self.nodes[node].store.get(keyspace, table, key, writetime=writetime)
