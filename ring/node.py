"""One replica's protocol logic, sans-IO: `start`, `submit`, `step`, `tick` return effects.

Rule: node.py wires and routes; it decides nothing. The deciders: gossip.py (membership),
ops/ (client and admin operations, one registry), coordinator.py and the other handlers (requests
in flight, through one Handler protocol, ring/context.py), replica.py (answers from the local
store), consistency.py and placement/ (the arithmetic). No sockets, sleeps, clocks or global
randomness here: monotonic time arrives as `now_ms`, the wall clock (write timestamps, gossip
generation) and the rng are injected, and the local engine `Store` is called synchronously,
except for durability: an ack that must wait for an fsync (batch and group commit-log sync)
leaves as a `Durable(position, effects)` effect, which the driver completes off its loop and
hands back through `durable` (the fifth entry point).

Invariants: every handler in `handlers` is reachable by exactly its current `msg_id`; effects
addressed to this node are delivered synchronously (`_local`), so drivers only ever see `Send`s
to peers and `Reply`s. `step` never swallows an exception: a malformed message is rejected by
the codec before it gets here (ring/messages.py), so anything raised inside is a bug and reaches
the driver. The contract with drivers is docs/node_api.md.
"""
from __future__ import annotations

import collections
import dataclasses
import random
from dataclasses import dataclass, field

from engine.errors import EngineError, InvalidRequest
from ring import batchlog
from ring import membership as ms
from ring import replica
from ring import speculative_retry
from ring.context import Context
from ring.coordinator import WriteHandler
from ring.errors import ConfigurationError, OverloadedError, ProtocolError, RequestError, UnavailableError
from ring.failure_detector import FailureDetector
from ring.faults import Faults
from ring.gossip import Gossiper
from ring.hinted_handoff import Handoff, HintStore
from ring.messages import (ClientRequest, Durable, FetchRanges, FetchRangesDone, GossipAck, GossipAck2, GossipSyn,
                           HintRequest, IndexReadResponse, MutationRequest, MutationResponse, PrepareResponse,
                           ProposeResponse, RangeReadResponse, ReadResponse, Reply, SchemaPull, SchemaPush, Send, StreamResponse,
                           TruncateResponse, ValidationResponse)
from ring.paxos import acceptor as paxos_acceptor
from ring.paxos import state as paxos_state
from ring.paxos.ballot import BallotClock
from ring.gossip_settle import GossipSettle
from ring.operations.bootstrap import (Bootstrap, bootstrap_state, refuse_if_decommissioned, saved_tokens,
                                      set_bootstrap_state)
from ring.ops import OPS, WRITES
from ring.ops.admin import status_rows
from ring.placement.pending import PendingIndex, Topology, pending_index, topology_from_states
from ring.placement.snitch import DynamicSnitch, GossipingPropertyFileSnitch
from ring.placement.strategy import SimpleStrategy, from_options
from ring.placement.token_ring import TokenRing, allocate_tokens
from ring.schema_sync import SchemaRegistry, peers_to_pull
from ring.stats import MEASURED_OPS, Metrics
from ring.streaming import Fetches, create_system_tables

RELEASE_VERSION = "0.1.0"
SNITCH_RESET_INTERVAL_MS = 600_000
# replies routed by their `id` to the handler that sent the request
REPLIES = frozenset({MutationResponse, ReadResponse, RangeReadResponse, ValidationResponse, StreamResponse,
                     FetchRangesDone, IndexReadResponse, PrepareResponse, ProposeResponse, TruncateResponse})


@dataclass
class NodeConfig:
    endpoint: str
    host_id: str
    cluster_name: str = "dynatable"
    datacenter: str = "datacenter1"
    rack: str = "rack1"
    seeds: list = field(default_factory=list)
    num_tokens: int = 16
    write_request_timeout_ms: int = 2000
    read_request_timeout_ms: int = 5000
    range_request_timeout_ms: int = 10000
    phi_convict_threshold: float = 8.0
    gossip_interval_ms: int = 1000
    max_pending_requests: int = 4096
    hinted_handoff_enabled: bool = True
    max_hint_window_ms: int = 3 * 3600 * 1000
    max_hints_in_flight: int = 1024
    hints_per_tick: int = 64          # delivery throttle per target, per tick (~100 ms)
    auto_bootstrap: bool = False      # a new non-seed node streams its ranges before it serves
    cas_contention_timeout_ms: int = 1000  # a lightweight transaction retries contention this long
    ring_delay_ms: int = 5000         # wait for gossip to settle around a topology change
    batchlog_replay_interval_ms: int = batchlog.REPLAY_INTERVAL_MS  # list the batchlog, replay old entries
    # test-only: the name of a canary mutant the simulation's checkers must catch (ring/faults.py
    # lists them); it becomes `faults`, the policy the seams read. Never set in production.
    canary_mutant: str = ""
    # the CQL server's address (native_address, default: the endpoint's host) and port
    # (native_transport_port, default 9042), gossiped as NATIVE_ADDRESS_AND_PORT for system.peers
    native_address: str | None = None
    native_transport_port: int | None = None

    def __post_init__(self) -> None:
        self.faults = Faults.mutant(self.canary_mutant)  # refuses an unknown name, listing the known ones


class Node:
    def __init__(self, config: NodeConfig, store, rng: random.Random, wall_clock):
        self.config = config
        self.endpoint = config.endpoint
        self.store = store
        self.rng = rng
        self.clock = wall_clock
        self.detector = FailureDetector(phi_convict_threshold=config.phi_convict_threshold,
                                        gossip_interval_ms=config.gossip_interval_ms)
        self.gossiper = Gossiper(config.endpoint, config.cluster_name, config.seeds, rng, self.detector,
                                 config.gossip_interval_ms)
        self.gossiper.by_version_only = config.faults.gossip_by_version_only  # canary seam (ring/faults.py)
        if config.faults.skip_older_range_tombstones:  # canary seam (ring/faults.py), the engine's option
            store.options["canary_skip_older_range_tombstones"] = True
        self.snitch = DynamicSnitch(GossipingPropertyFileSnitch(config.endpoint, config.datacenter, config.rack,
                                                                self._peer_location))
        self.schema = SchemaRegistry(store)
        self.hints = HintStore(store, max_hint_window_ms=config.max_hint_window_ms,
                               max_hints_in_flight=config.max_hints_in_flight)
        self.meter = Metrics()
        self.stats = self.meter.counters                # counters by name (nodetool info's metrics)
        self.request_stats = self.meter.requests        # (op, level) -> RequestStats
        self.context = Context(self)                    # what handlers see of this node
        self.handoff = Handoff(self.context, self.hints)
        self._strategies: dict[str, tuple] = {}
        # SimpleStrategy placement per (rf, ring index), for the ring it was computed on: a token's
        # replicas depend only on the ring position it falls in (the snitch plays no part)
        self._placements: tuple[TokenRing | None, dict] = (None, {})
        self.started_ms = 0
        self._snitch_reset_ms = 0
        self.tokens = sorted(allocate_tokens(config.host_id, config.num_tokens))
        self.ring = TokenRing.from_endpoints({self.endpoint: self.tokens})
        self.topology = Topology(self.ring, self.ring, {self.endpoint: ms.Status.NORMAL})
        self._pending: dict[str, tuple[object, PendingIndex]] = {}
        self._unlogged: list[MutationRequest] = []  # canary (ring/faults.py): acked, not yet appended
        self.mode = "NORMAL"              # STARTING, JOINING, NORMAL, LEAVING, DECOMMISSIONED, DRAINED
        self.bootstrap: Bootstrap | None = None
        self.topology_change = None       # the Decommission or RemoveNode in progress here
        self.fetches = Fetches(self.context)  # ranges other nodes' topology changes asked us to fetch
        self.read_latency = speculative_retry.LatencyTracker()  # replica read latencies, for 99p
        create_system_tables(store)
        paxos_state.create_table(store)
        batchlog.create_table(store)
        self.batchlog = batchlog.Batchlog(self.context)  # this node's entries of others' logged batches
        self.ballots = BallotClock(config.host_id)  # Paxos ballots of the rounds this node proposes
        self._ring_key = None
        self.settle: GossipSettle | None = None     # set by start
        self.handlers: dict[int, object] = {}
        self._sent_at: dict[int, int] = {}
        self._next_id = 1
        self._last_ts = 0
        self._schema_pulls: dict[str, tuple] = {}
        self.now_ms = 0

    # -- entry points --------------------------------------------------------------------------

    def start(self, now_ms: int) -> list:
        self.now_ms = now_ms
        self.started_ms = now_ms
        refuse_if_decommissioned(self.store)
        self.tokens = saved_tokens(self.store) or self.tokens  # a bootstrapped node keeps its tokens
        state = bootstrap_state(self.store)
        if state is None and any(name != "system" for name in self.store.keyspaces):
            state = "COMPLETED"  # data from before the bootstrap state was kept: not a new node
        joining = (self.config.auto_bootstrap and state != "COMPLETED"  # a seed, or a node without
                   and self.endpoint not in self.config.seeds and bool(self.config.seeds))  # seeds, starts a ring
        generation = self.schema.next_generation(self.clock.wall_us() // 1_000_000)
        states = {
            ms.ApplicationState.DC: self.config.datacenter,
            ms.ApplicationState.RACK: self.config.rack,
            ms.ApplicationState.HOST_ID: self.config.host_id,
            ms.ApplicationState.RELEASE_VERSION: RELEASE_VERSION,
            ms.ApplicationState.SCHEMA: self.schema.version(),
            ms.ApplicationState.LOAD: str(replica.load_bytes(self.store)),
            ms.ApplicationState.NATIVE_ADDRESS_AND_PORT: self.native_address_and_port(),
        }
        if not joining:
            states[ms.ApplicationState.TOKENS] = ms.tokens_value(self.tokens)
            states[ms.ApplicationState.STATUS] = ms.status_value(ms.Status.NORMAL, self.tokens[0])
        self.gossiper.start(generation, states)
        self.settle = GossipSettle(self.store, self.endpoint, now_ms, self.config.gossip_interval_ms, joining)
        if joining:  # learn the ring and the schema first; Bootstrap announces BOOT
            self.mode = "JOINING"
            self.bootstrap = Bootstrap(self.context)
            self.register_handler(self.bootstrap)
        elif state is None:
            set_bootstrap_state(self.store, "COMPLETED")
        self.refresh_ring()
        return self.gossiper.tick(now_ms)

    def submit(self, now_ms: int, request: ClientRequest) -> list:
        """A client request: the op's first effects, or its error as the client's `Reply`."""
        self.now_ms = now_ms
        try:
            return self._local(self._start_op(request))
        except (EngineError, RequestError, ConfigurationError) as e:
            error = e
        except (TypeError, ValueError, KeyError) as e:  # the client's arguments have the wrong shape
            error = InvalidRequest(f"bad arguments for {request.op}: {type(e).__name__}: {e}")
        if isinstance(error, UnavailableError):
            self.meter.count("unavailable")
        return self._local([Reply(request.id, error=error)])

    def step(self, now_ms: int, src: str, msg) -> list:
        """An internode message (already decoded and validated by the codec)."""
        self.now_ms = now_ms
        return self._local(self._dispatch(src, msg))

    def durable(self, now_ms: int, effect: Durable, error: str | None = None) -> list:
        """The driver waited for `effect.position`: its held effects, delivered now. With `error`
        (the commit log failed or closed first) each held response carries that error instead."""
        self.now_ms = now_ms
        effects = effect.effects
        if error is not None:
            effects = [Send(e.to, dataclasses.replace(e.msg, error=error)) for e in effects]
        return self._local(effects)

    def tick(self, now_ms: int) -> list:
        self.now_ms = now_ms
        self.detector.tick(now_ms)
        if now_ms - self._snitch_reset_ms >= SNITCH_RESET_INTERVAL_MS:  # Cassandra's dynamic_snitch_reset
            self._snitch_reset_ms = now_ms
            self.snitch.reset()
        self.refresh_ring()
        self.gossiper.set_app_state(ms.ApplicationState.SCHEMA, self.schema.version())
        for msg in self._unlogged:  # canary (ring/faults.py): the append the ack did not wait for
            replica.answer_mutation(self.store, msg)
        self._unlogged.clear()
        effects = self.gossiper.tick(now_ms)
        if effects:  # once per gossip round
            self.gossiper.set_app_state(ms.ApplicationState.LOAD, str(replica.load_bytes(self.store)))
            if self.config.faults.purge_tombstones_early:  # canary (ring/faults.py)
                replica.purge_tombstones_now(self.store)
            live = {ep: self.gossiper.app_state(ep, ms.ApplicationState.SCHEMA)
                    for ep in self.gossiper.peers() if self.is_alive(ep)}
            effects += [Send(ep, SchemaPull(0))
                        for ep in peers_to_pull(self.schema.version(), live, self._schema_pulls, now_ms)]
        for ep in self.handoff.track_down(now_ms, self.gossiper.peers()):
            self.snitch.forget(ep)  # back up: forget the silence speculation recorded
        for msg_id in list(self.handlers):
            handler = self.handlers.get(msg_id)
            if handler is None:
                continue
            effects += self._local(handler.on_timeout(now_ms))
            if handler.finished:
                self.forget(handler.msg_id)
                if type(handler) is WriteHandler:
                    self.handoff.hint_unacked(handler)
        effects += self.handoff.deliver(now_ms)
        effects += self._local(self.batchlog.tick(now_ms))
        return effects

    def stop(self) -> None:
        self.handlers.clear()

    # -- routing -------------------------------------------------------------------------------

    def _start_op(self, request: ClientRequest) -> list:
        op = OPS.get(request.op)
        if op is None:
            raise InvalidRequest(f"unknown operation {request.op!r}; known: {', '.join(sorted(OPS))}")
        if len(self.handlers) >= self.config.max_pending_requests:
            raise OverloadedError(f"{len(self.handlers)} requests in flight (max_pending_requests="
                                  f"{self.config.max_pending_requests}); retry later")
        args = request.args if isinstance(request.args, dict) else {}
        if self.mode == "DECOMMISSIONED" and request.op in MEASURED_OPS:
            raise InvalidRequest("this node was decommissioned and serves no requests; send them to "
                                 "another node")
        if self.mode == "DRAINED" and request.op in WRITES:
            raise InvalidRequest(f"this node was drained (nodetool drain) and accepts no writes ({request.op}); "
                                 "restart it, or send writes to another node")
        self.meter.begin(request.id, self.now_ms, request.op, str(args.get("consistency") or "ONE").upper())
        return op(self, request.id, args)

    def _dispatch(self, src: str, msg) -> list:
        kind = type(msg)
        if kind is MutationRequest or kind is HintRequest:
            if self.mode == "DRAINED":
                return [Send(src, MutationResponse(msg.id, "this replica was drained (nodetool drain)"))]
            if kind is MutationRequest and self.config.faults.ack_before_append:  # canary (ring/faults.py)
                self._unlogged.append(msg)  # appended and applied at the next tick, after the ack
                return [Send(src, MutationResponse(msg.id, None))]
            answer = replica.answer_mutation if kind is MutationRequest else replica.answer_hint
            response, position = answer(self.store, msg)
            if response.error is None:
                self.meter.count("replica_mutations")
            if position is None:
                return [Send(src, response)]
            return [Durable(position, [Send(src, response)])]
        paxos = paxos_acceptor.ANSWERS.get(kind)
        if paxos is not None:  # promises and accepts are acknowledged once durable, like mutations
            response, position = paxos(self.store, msg, self.config.faults)
            return [Send(src, response)] if position is None else [Durable(position, [Send(src, response)])]
        answer = replica.ANSWERS.get(kind)
        if answer is not None:
            response = answer(self.store, msg)
            if response.error is None and kind in replica.COUNTED:
                self.meter.count(replica.COUNTED[kind])
            return [Send(src, response)]
        if kind in REPLIES:
            return self._on_reply(src, msg)
        if kind is GossipSyn:
            return self.gossiper.on_syn(self.now_ms, src, msg)
        if kind is GossipAck:
            out = self.gossiper.on_ack(self.now_ms, src, msg)
            self.refresh_ring()
            return out
        if kind is GossipAck2:
            self.gossiper.on_ack2(self.now_ms, src, msg)
            self.refresh_ring()
            return []
        if kind is FetchRanges:
            return self.fetches.on_fetch_ranges(src, msg)
        if kind is SchemaPull:
            return [Send(src, SchemaPush(msg.id, self.schema.export()))]
        if kind is SchemaPush:
            if self.schema.merge(msg.schema):
                self.gossiper.set_app_state(ms.ApplicationState.SCHEMA, self.schema.version())
            return []
        raise ProtocolError(f"unexpected message {kind.__name__} from {src}")

    def _on_reply(self, src: str, reply) -> list:
        handler = self.handlers.get(reply.id)
        if handler is None:
            return []  # late answer to a finished request
        sent = self._sent_at.get(reply.id)
        if sent is not None and src != self.endpoint:
            self.snitch.record_latency(src, self.now_ms - sent, self.now_ms)
        effects = handler.on_reply(self.now_ms, src, reply)
        if handler.finished:
            self.forget(handler.msg_id)
        return effects

    def _local(self, effects: list) -> list:
        """Deliver effects addressed to ourselves synchronously; return the rest."""
        if type(effects) is not list:
            effects = list(effects)
        endpoint = self.endpoint
        for eff in effects:    # the common case (a replica's answer): nothing to deliver or observe
            kind = type(eff)
            if kind is Reply or kind is Send and eff.to == endpoint:
                break
        else:
            return effects
        out = []
        queue = collections.deque(effects)
        while queue:
            eff = queue.popleft()
            if type(eff) is Send and eff.to == endpoint:
                queue.extend(self._dispatch(endpoint, eff.msg))
            else:
                if type(eff) is Reply:
                    self.meter.observe(eff.request_id, self.now_ms, eff.error)
                out.append(eff)
        return out

    def register_handler(self, handler) -> int:
        """A fresh message id routing replies to `handler`; its previous id stops routing."""
        previous = getattr(handler, "msg_id", None)
        if previous is not None:
            self.forget(previous)
        msg_id = self._next_id
        self._next_id += 1
        handler.msg_id = msg_id
        self.handlers[msg_id] = handler
        self._sent_at[msg_id] = self.now_ms
        return msg_id

    def forget(self, msg_id: int) -> None:
        self.handlers.pop(msg_id, None)
        self._sent_at.pop(msg_id, None)

    # -- ring and gossip -----------------------------------------------------------------------

    def refresh_ring(self) -> None:
        """The current ring (reads, natural replicas) and the future one, from gossip STATUS."""
        key = tuple(sorted((ep, s.get(ms.ApplicationState.STATUS), s.get(ms.ApplicationState.TOKENS))
                           for ep, s in self.gossiper.states.items()))
        if key != self._ring_key:
            self._ring_key = key
            self.topology = topology_from_states(self.gossiper.states)
            self.ring = self.topology.current
            self._pending.clear()
            if self.settle is not None:
                self.settle.observe(self.gossiper.states, self.now_ms)

    def gossip_settled(self, now_ms: int) -> bool:
        """Whether gossip has settled since start (ring/gossip_settle.py): the CQL port waits for it."""
        return self.settle is None or self.settle.settled(self.gossiper.states, now_ms)

    def announce(self, status: ms.Status) -> None:
        """Gossip this node's tokens with a new STATUS (BOOT, NORMAL, LEAVING or LEFT)."""
        self.gossiper.set_app_state(ms.ApplicationState.TOKENS, ms.tokens_value(self.tokens))
        fields = [self.tokens[0]]
        if status is ms.Status.LEFT:  # Cassandra's LEFT carries an expiry for the gossip state (3 days)
            fields.append(self.clock.wall_us() // 1000 + 3 * 86400 * 1000)
        self.gossiper.set_app_state(ms.ApplicationState.STATUS, ms.status_value(status, *fields))
        self.refresh_ring()

    def pending_endpoints(self, keyspace: str, token: int) -> tuple[str, ...]:
        """Endpoints that will replicate `token` once the moves in progress complete."""
        if not self.topology.moving:
            return ()
        strategy = self.strategy(keyspace)
        cached = self._pending.get(keyspace)
        if cached is None or cached[0] is not strategy:
            cached = self._pending[keyspace] = (strategy, pending_index(strategy, self.topology, self.snitch))
        return cached[1].lookup(token)

    def strategy(self, keyspace: str):
        ks = self.store.keyspaces.get(keyspace)
        if ks is None:
            raise InvalidRequest(f"keyspace '{keyspace}' does not exist")
        cached = self._strategies.get(keyspace)
        if cached is None or cached[0] is not ks:
            cached = self._strategies[keyspace] = (ks, from_options(ks.replication))
        return cached[1]

    def replicas(self, keyspace: str, token: int) -> list[str]:
        strategy = self.strategy(keyspace)
        ring = self.ring
        if type(strategy) is not SimpleStrategy or not ring.tokens:
            return strategy.replicas(ring, token, self.snitch)
        computed_on, placements = self._placements
        if computed_on is not ring:
            self._placements = (ring, placements := {})
        index = ring.first_token_index(token)
        found = placements.get((strategy.rf, index))
        if found is None:
            found = placements[(strategy.rf, index)] = strategy.replicas(ring, ring.tokens[index], self.snitch)
        return list(found)

    def rf_by_dc(self, keyspace: str) -> dict[str, int]:
        return self.strategy(keyspace).rf_by_dc(self.ring, self.snitch, self.config.datacenter)

    def is_alive(self, ep: str) -> bool:
        return self.gossiper.is_alive(ep, self.now_ms)

    def native_address_and_port(self) -> str:
        """Where this node's CQL server listens, "host:port" ("[v6]:port"); docs/cql.md."""
        host = self.config.native_address or ms.endpoint_host(self.endpoint)
        port = self.config.native_transport_port or ms.NATIVE_TRANSPORT_PORT
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    def host_id_of(self, ep: str) -> str | None:
        return self.gossiper.app_state(ep, ms.ApplicationState.HOST_ID)

    def _peer_location(self, ep: str):
        dc = self.gossiper.app_state(ep, ms.ApplicationState.DC)
        rack = self.gossiper.app_state(ep, ms.ApplicationState.RACK)
        return (dc, rack) if dc and rack else None

    # -- writes: timestamps and hints ------------------------------------------------------------

    def new_timestamp(self, given) -> int:
        if given is not None:
            return self.store.new_timestamp(given)
        ts = self.clock.wall_us()
        if ts <= self._last_ts:
            ts = self._last_ts + 1
        self._last_ts = ts
        return ts

    def hint(self, ep: str, table, key: bytes, payload: bytes) -> bool:
        """Keep a mutation for replica `ep` (down, or silent past the write timeout)."""
        return self.handoff.hint(ep, table, key, payload)

    # -- inspection ------------------------------------------------------------------------------

    def metrics(self) -> dict:
        return self.meter.snapshot(
            pending_requests=len(self.handlers), gossip_rounds=self.gossiper.rounds,
            live_peers=sum(1 for ep in self.gossiper.peers() if self.is_alive(ep)),
            hint_stats=self.hints.stats, hints_pending=sum(self.hints.pending.values()),
            tablestats=self.store.tablestats())

    def status(self) -> list[dict]:
        return status_rows(self)
