"""One replica's protocol logic, sans-IO: `start`, `submit`, `step`, `tick` return effects.

Rule: node.py wires and sends; gossip.py, coordinator.py, consistency.py and replication.py
decide. No sockets, sleeps, clocks or global randomness here: monotonic time arrives as `now_ms`,
the wall clock (write timestamps, gossip generation) and the rng are injected, and the local
engine `Store` is called synchronously. The contract with drivers is docs/node_api.md.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field

import xxhash

from engine import mutation as mut
from engine.errors import EngineError, InvalidRequest
from engine.partition import decode_partition, encode_partition, live_rows, slice_partition
from engine.schema import Table
from engine.token import MAX_TOKEN, MIN_TOKEN, token as token_of
from ring import consistency as cl
from ring import membership as ms
from ring.anti_entropy import RepairSession, scan_bounds, unwrap
from ring.coordinator import ReadHandler, ScanHandler, WriteHandler, canonical_payload, digest_of
from ring.errors import OverloadedError, ProtocolError, UnavailableError
from ring.failure_detector import FailureDetector
from ring.gossip import Gossiper
from ring.merkle import MerkleTree
from ring.hinted_handoff import HintDelivery, HintStore
from ring import index_query
from ring.messages import (ClientRequest, FetchRanges, FetchRangesDone, GossipAck, GossipAck2, GossipSyn,
                           IndexReadRequest, IndexReadResponse, RowsReadRequest,
                           MutationRequest, MutationResponse, RangeReadRequest, RangeReadResponse, ReadRequest,
                           ReadResponse, Reply, SchemaPull, SchemaPush, Send, StreamRequest, StreamResponse,
                           ValidationRequest, ValidationResponse, packb, unpackb)
from ring.replication import from_options
from ring.ring import TokenRing, allocate_tokens
from ring.schema_sync import SchemaRegistry
from ring.snitch import DynamicSnitch, GossipingPropertyFileSnitch
from ring.streaming import StreamSession, create_system_tables, fetch_done, serve_page
from ring.topology import PendingIndex, Topology, pending_index, topology_from_states
from ring import speculative_retry
from ring import topology_change as tc

RELEASE_VERSION = "0.1.0"
SNITCH_RESET_INTERVAL_MS = 600_000
LATENCY_BUCKETS_MS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000)
_MEASURED_OPS = frozenset({"insert", "delete", "get", "select", "scan", "index_query"})


class RequestStats:
    """Per (op, consistency level): count, errors by type, and a latency histogram (ms buckets)."""

    __slots__ = ("count", "errors", "sum_ms", "buckets")

    def __init__(self):
        self.count = 0
        self.errors: dict[str, int] = {}
        self.sum_ms = 0
        self.buckets = [0] * (len(LATENCY_BUCKETS_MS) + 1)

    def observe(self, latency_ms: int, error: BaseException | None) -> None:
        self.count += 1
        self.sum_ms += latency_ms
        i = 0
        while i < len(LATENCY_BUCKETS_MS) and latency_ms > LATENCY_BUCKETS_MS[i]:
            i += 1
        self.buckets[i] += 1
        if error is not None:
            name = type(error).__name__
            self.errors[name] = self.errors.get(name, 0) + 1


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
    ring_delay_ms: int = 5000         # wait for gossip to settle around a topology change
    # test-only canary mutants, which the simulation's checkers must catch: "ack_w_minus_1",
    # "hints_count", "no_read_repair_writeback", "early_tombstone_purge". Never set in production.
    canary_mutant: str = ""


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
        self.snitch = DynamicSnitch(GossipingPropertyFileSnitch(config.endpoint, config.datacenter, config.rack,
                                                                self._peer_location))
        self.schema = SchemaRegistry(store)
        self.hints = HintStore(store, max_hint_window_ms=config.max_hint_window_ms,
                               max_hints_in_flight=config.max_hints_in_flight)
        self.down_since: dict[str, int] = {}
        self._strategies: dict[str, tuple] = {}
        self.started_ms = 0
        self._snitch_reset_ms = 0
        self._in_flight: dict[int, tuple[int, str, str]] = {}
        self.request_stats: dict[tuple[str, str], RequestStats] = {}
        self.tokens = sorted(allocate_tokens(config.host_id, config.num_tokens))
        self.ring = TokenRing.from_endpoints({self.endpoint: self.tokens})
        self.topology = Topology(self.ring, self.ring, {self.endpoint: ms.Status.NORMAL})
        self._pending: dict[str, tuple[object, PendingIndex]] = {}
        self.mode = "NORMAL"              # STARTING, JOINING, NORMAL, LEAVING, DECOMMISSIONED
        self.bootstrap: tc.Bootstrap | None = None
        self.topology_change = None       # the Decommission or RemoveNode in progress here
        self.fetches: dict[str, StreamSession] = {}
        self.read_latency = speculative_retry.LatencyTracker()  # replica read latencies, for 99p
        self.fetched: dict[str, dict] = {}  # operation -> summary of fetches done (answers to repeats)
        create_system_tables(store)
        self._ring_key = None
        self.handlers: dict[int, object] = {}
        self._sent_at: dict[int, int] = {}
        self._next_id = 1
        self._last_ts = 0
        self._schema_pulls: dict[str, tuple] = {}
        self.now_ms = 0
        self.stats = {"writes": 0, "reads": 0, "scans": 0, "unavailable": 0, "write_timeouts": 0,
                      "read_timeouts": 0, "digest_mismatches": 0, "read_repairs": 0, "speculative_retries": 0,
                      "dropped_messages": 0, "replica_mutations": 0, "replica_reads": 0}

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self, now_ms: int) -> list:
        self.now_ms = now_ms
        self.started_ms = now_ms
        tc.refuse_if_decommissioned(self.store)
        self.tokens = tc.saved_tokens(self.store) or self.tokens  # a bootstrapped node keeps its tokens
        state = tc.bootstrap_state(self.store)
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
            ms.ApplicationState.LOAD: str(self._load()),
        }
        if not joining:
            states[ms.ApplicationState.TOKENS] = ms.tokens_value(self.tokens)
            states[ms.ApplicationState.STATUS] = ms.status_value(ms.Status.NORMAL, self.tokens[0])
        self.gossiper.start(generation, states)
        if joining:  # learn the ring and the schema first; tc.Bootstrap announces BOOT
            self.mode = "JOINING"
            self.bootstrap = tc.Bootstrap(self)
            self.register_handler(self.bootstrap)
        elif state is None:
            tc.set_bootstrap_state(self.store, "COMPLETED")
        self._refresh_ring()
        return self.gossiper.tick(now_ms)

    def announce(self, status: ms.Status) -> None:
        """Gossip this node's tokens with a new STATUS (BOOT, NORMAL, LEAVING or LEFT)."""
        self.gossiper.set_app_state(ms.ApplicationState.TOKENS, ms.tokens_value(self.tokens))
        fields = [self.tokens[0]]
        if status is ms.Status.LEFT:  # Cassandra's LEFT carries an expiry for the gossip state (3 days)
            fields.append(self.clock.wall_us() // 1000 + 3 * 86400 * 1000)
        self.gossiper.set_app_state(ms.ApplicationState.STATUS, ms.status_value(status, *fields))
        self._refresh_ring()

    def stop(self) -> None:
        self.handlers.clear()

    def _load(self) -> int:
        return sum(c.disk_bytes() for c in self.store.cfs.values())

    # -- topology -----------------------------------------------------------------------------

    def _peer_location(self, ep: str):
        dc = self.gossiper.app_state(ep, ms.ApplicationState.DC)
        rack = self.gossiper.app_state(ep, ms.ApplicationState.RACK)
        return (dc, rack) if dc and rack else None

    def _refresh_ring(self) -> None:
        """The current ring (reads, natural replicas) and the future one, from gossip STATUS."""
        key = tuple(sorted((ep, s.get(ms.ApplicationState.STATUS), s.get(ms.ApplicationState.TOKENS))
                           for ep, s in self.gossiper.states.items()))
        if key != self._ring_key:
            self._ring_key = key
            self.topology = topology_from_states(self.gossiper.states)
            self.ring = self.topology.current
            self._pending.clear()

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
        return self.strategy(keyspace).replicas(self.ring, token, self.snitch)

    def rf_by_dc(self, keyspace: str) -> dict[str, int]:
        return self.strategy(keyspace).rf_by_dc(self.ring, self.snitch, self.config.datacenter)

    def is_alive(self, ep: str) -> bool:
        return self.gossiper.is_alive(ep, self.now_ms)

    def register_handler(self, handler) -> int:
        """A fresh message id routing responses to `handler`; its previous id stops routing."""
        previous = getattr(handler, "msg_id", None)
        if previous is not None:
            self._forget(previous)
        msg_id = self._next_id
        self._next_id += 1
        handler.msg_id = msg_id
        self.handlers[msg_id] = handler
        self._sent_at[msg_id] = self.now_ms
        return msg_id

    # -- timers -------------------------------------------------------------------------------

    def tick(self, now_ms: int) -> list:
        self.now_ms = now_ms
        self.detector.tick(now_ms)
        if now_ms - self._snitch_reset_ms >= SNITCH_RESET_INTERVAL_MS:  # Cassandra's dynamic_snitch_reset
            self._snitch_reset_ms = now_ms
            self.snitch.reset()
        self._refresh_ring()
        self.gossiper.set_app_state(ms.ApplicationState.SCHEMA, self.schema.version())
        effects = self.gossiper.tick(now_ms)
        if effects:  # once per gossip round
            self.gossiper.set_app_state(ms.ApplicationState.LOAD, str(self._load()))
            if self.config.canary_mutant == "early_tombstone_purge":
                self._canary_purge()
            effects += self._pull_schema_if_needed(now_ms)
        self._track_down(now_ms)
        for msg_id in list(self.handlers):
            handler = self.handlers.get(msg_id)
            if handler is None:
                continue
            effects += self._local(handler.on_tick(now_ms))
            if handler.finished:
                self._forget(handler.msg_id)
                if type(handler) is WriteHandler:
                    self._hint_unacked(handler)
        effects += self._deliver_hints(now_ms)
        return effects

    def _canary_purge(self) -> None:
        """Canary mutant: purge tombstones at once, ignoring gc_grace_seconds (must be caught)."""
        self.store.options["canary_gc_grace_seconds"] = 0
        self.store.flush()
        for cfs in list(self.store.cfs.values()):
            if cfs.table.keyspace != "system" and cfs.sstables:
                self.store.compact(cfs.table.keyspace, cfs.table.name, major=True)

    def _track_down(self, now_ms: int) -> None:
        for ep in self.gossiper.peers():
            if self.is_alive(ep):
                if self.down_since.pop(ep, None) is not None:
                    self.snitch.forget(ep)  # back up: forget the silence speculation recorded
            else:
                self.down_since.setdefault(ep, now_ms)

    def _host_id(self, ep: str) -> str | None:
        return self.gossiper.app_state(ep, ms.ApplicationState.HOST_ID)

    def _store_hint(self, ep: str, table: Table, key: bytes, payload: bytes) -> bool:
        host = self._host_id(ep)
        if not self.config.hinted_handoff_enabled or host is None or ep == self.endpoint:
            return False
        down_since = self.down_since.get(ep)
        if not self.hints.should_hint(None if down_since is None else self.now_ms - down_since):
            return False
        self.hints.store_hint(host, ep, table, key, payload, self.clock.wall_us())
        return True

    def _hint_unacked(self, handler: WriteHandler) -> None:
        if handler.mutation is None:
            return
        table, key, payload = handler.mutation
        for ep in handler.unacked():
            self._store_hint(ep, table, key, payload)

    def _deliver_hints(self, now_ms: int) -> list:
        out = []
        for host in list(self.hints.pending):
            ep = self.hints.endpoints.get(host)
            if ep is None or not self.is_alive(ep) or self._host_id(ep) != host:
                continue
            if self.gossiper.app_state(ep, ms.ApplicationState.SCHEMA) != self.schema.version():
                continue  # Cassandra delivers only to hosts with a matching schema
            for row in self.hints.next_batch(host, self.config.hints_per_tick):
                delivery = HintDelivery(self.hints, host, row["id"], now_ms + self.config.write_request_timeout_ms)
                msg_id = self.register_handler(delivery)
                out.append(Send(ep, MutationRequest(msg_id, row["table_id"], row["key"], row["payload"])))
        return out

    def _forget(self, msg_id: int) -> None:
        self.handlers.pop(msg_id, None)
        self._sent_at.pop(msg_id, None)

    def _pull_schema_if_needed(self, now_ms: int) -> list:
        mine = self.schema.version()
        out = []
        for ep in self.gossiper.peers():
            theirs = self.gossiper.app_state(ep, ms.ApplicationState.SCHEMA)
            if theirs and theirs != mine and self.is_alive(ep):
                last = self._schema_pulls.get(ep)
                if last is None or last[0] != theirs or now_ms - last[1] > 5000:
                    self._schema_pulls[ep] = (theirs, now_ms)
                    out.append(Send(ep, SchemaPull(0)))
        return out

    # -- internode messages --------------------------------------------------------------------

    def step(self, now_ms: int, src: str, msg) -> list:
        self.now_ms = now_ms
        try:
            return self._local(self._dispatch(now_ms, src, msg))
        except (ProtocolError, InvalidRequest, ValueError, TypeError, KeyError) as e:
            self.stats["dropped_messages"] += 1
            return [] if not hasattr(e, "args") else []

    def _dispatch(self, now_ms: int, src: str, msg) -> list:
        kind = type(msg)
        if kind is GossipSyn:
            return self.gossiper.on_syn(now_ms, src, msg)
        if kind is GossipAck:
            out = self.gossiper.on_ack(now_ms, src, msg)
            self._refresh_ring()
            return out
        if kind is GossipAck2:
            self.gossiper.on_ack2(now_ms, src, msg)
            self._refresh_ring()
            return []
        if kind is MutationRequest:
            return [Send(src, self._apply_mutation(msg))]
        if kind is ReadRequest:
            return [Send(src, self._read_local(msg))]
        if kind is RangeReadRequest:
            return [Send(src, self._range_read_local(msg))]
        if kind is MutationResponse:
            return self._on_response(src, msg.id, lambda h: (h.on_mutation_response(src, msg.error, now_ms)
                                                               if isinstance(h, ReadHandler)
                                                               else h.on_response(src, msg.error, now_ms)))
        if kind is ReadResponse:
            return self._on_response(src, msg.id, lambda h: h.on_response(src, msg.payload, msg.digest, msg.error,
                                                                          now_ms))
        if kind is RangeReadResponse:
            return self._on_response(src, msg.id, lambda h: (h.on_range if isinstance(h, RepairSession)
                                                               else h.on_response)(src, msg.partitions, msg.exhausted,
                                                                                   msg.error, now_ms))
        if kind is ValidationRequest:
            return [Send(src, self._validate_local(msg))]
        if kind is ValidationResponse:
            return self._on_response(src, msg.id, lambda h: h.on_validation(src, msg.tree, msg.partitions, msg.error,
                                                                            now_ms))
        if kind is StreamRequest:
            return [Send(src, self._serve_stream(msg))]
        if kind is StreamResponse:
            return self._on_response(src, msg.id, lambda h: h.on_stream(src, msg, now_ms))
        if kind is FetchRanges:
            return self._fetch_ranges(src, msg)
        if kind is FetchRangesDone:
            return self._on_response(src, msg.id, lambda h: h.on_fetch_done(src, msg.summary, msg.error, now_ms))
        if kind is IndexReadRequest:
            return [Send(src, index_query.serve_index_read(self.store, msg))]
        if kind is RowsReadRequest:
            return [Send(src, index_query.serve_rows_read(self.store, msg))]
        if kind is IndexReadResponse:
            return self._on_response(src, msg.id, lambda h: h.on_rows(src, msg.rows, msg.exhausted, msg.error, now_ms))
        if kind is SchemaPull:
            return [Send(src, SchemaPush(msg.id, self.schema.export()))]
        if kind is SchemaPush:
            if self.schema.merge(msg.schema):
                self.gossiper.set_app_state(ms.ApplicationState.SCHEMA, self.schema.version())
            return []
        raise ProtocolError(f"unexpected message {kind.__name__} from {src}")

    def _on_response(self, src: str, msg_id: int, call) -> list:
        handler = self.handlers.get(msg_id)
        if handler is None:
            return []  # late answer to a finished request
        sent = self._sent_at.get(msg_id)
        if sent is not None and src != self.endpoint:
            self.snitch.record_latency(src, self.now_ms - sent, self.now_ms)
        effects = call(handler)
        if handler.finished:
            self._forget(handler.msg_id)
        return effects

    def _local(self, effects: list) -> list:
        """Deliver effects addressed to ourselves synchronously; return the rest."""
        out = []
        queue = list(effects)
        while queue:
            eff = queue.pop(0)
            if type(eff) is Send and eff.to == self.endpoint:
                queue.extend(self._dispatch(self.now_ms, self.endpoint, eff.msg))
            else:
                if type(eff) is Reply:
                    self._observe(eff)
                out.append(eff)
        return out

    def _observe(self, reply: Reply) -> None:
        started = self._in_flight.pop(reply.request_id, None)
        if started is None:
            return
        at, op, level = started
        stats = self.request_stats.get((op, level))
        if stats is None:
            stats = self.request_stats[(op, level)] = RequestStats()
        stats.observe(self.now_ms - at, reply.error)

    # -- replica side ----------------------------------------------------------------------

    def _table_by_id(self, table_id: str) -> Table:
        cfs = self.store.cfs.get(table_id)
        if cfs is None:
            raise InvalidRequest(f"unknown table id {table_id} (schema not yet agreed)")
        return cfs.table

    def _apply_mutation(self, msg: MutationRequest) -> MutationResponse:
        try:
            table = self._table_by_id(msg.table_id)
            self.store.apply([(table, msg.key, decode_partition(msg.payload))])
            self.stats["replica_mutations"] += 1
            return MutationResponse(msg.id, None)
        except (InvalidRequest, EngineError, ValueError) as e:
            return MutationResponse(msg.id, f"{type(e).__name__}: {e}")

    def _read_local(self, msg: ReadRequest) -> ReadResponse:
        try:
            table = self._table_by_id(msg.table_id)
            p = self.store.cfs[table.id].read_partition(token_of(msg.key), msg.key)
            payload = canonical_payload(slice_partition(p, msg.lo, msg.hi)) if p is not None else None
            self.stats["replica_reads"] += 1
            if msg.digest_only:
                return ReadResponse(msg.id, None, digest_of(payload), None)
            return ReadResponse(msg.id, payload, digest_of(payload), None)
        except (InvalidRequest, EngineError) as e:
            return ReadResponse(msg.id, None, b"", f"{type(e).__name__}: {e}")

    def _range_read_local(self, msg: RangeReadRequest) -> RangeReadResponse:
        try:
            table = self._table_by_id(msg.table_id)
            start = tuple(msg.start) if msg.start else None
            end = tuple(msg.end) if msg.end else None
            limit = max(1, min(int(msg.limit), 10_000))
            out = []
            for tok, key, p in self.store.cfs[table.id].scan_partitions(start, end):
                out.append([tok, key, encode_partition(p)])
                if len(out) >= limit:
                    return RangeReadResponse(msg.id, out, False, None)
            return RangeReadResponse(msg.id, out, True, None)
        except (InvalidRequest, EngineError) as e:
            return RangeReadResponse(msg.id, [], True, f"{type(e).__name__}: {e}")

    def _serve_stream(self, msg: StreamRequest) -> StreamResponse:
        try:
            return serve_page(self.store, self._table_by_id(msg.table_id), msg)
        except (InvalidRequest, EngineError, ValueError, TypeError) as e:
            return StreamResponse(msg.id, [], True, 0, f"{type(e).__name__}: {e}")

    def _fetch_ranges(self, src: str, msg: FetchRanges) -> list:
        """Another node (a decommission or removenode) asks us to fetch the ranges we gain."""
        running = self.fetches.get(msg.operation)
        if running is not None and not running.finished:  # asked again: answer this request when done
            running.on_done = self._fetched(msg.operation, fetch_done(msg.id, src))
            return []
        if msg.operation in self.fetched:  # done already; the answer was lost
            return [Send(src, FetchRangesDone(msg.id, self.fetched[msg.operation], None))]
        try:
            tasks = tc.local_plan(self, msg.plan)
        except (InvalidRequest, ValueError, TypeError) as e:
            return [Send(src, FetchRangesDone(msg.id, {}, f"{type(e).__name__}: {e}"))]
        session = StreamSession(self, msg.operation, tasks, self._fetched(msg.operation, fetch_done(msg.id, src)),
                                self.config.range_request_timeout_ms)
        self.fetches[msg.operation] = session
        return session.start()

    def _fetched(self, operation: str, answer):
        def done(summary: dict, error: str | None) -> list:
            session = self.fetches.pop(operation, None)
            if error is None and session is not None:
                session.forget_progress()
                self.fetched[operation] = summary
                while len(self.fetched) > 64:
                    self.fetched.pop(next(iter(self.fetched)))
            return answer(summary, error)
        return done

    def _validate_local(self, msg: ValidationRequest) -> ValidationResponse:
        """A validation scan: the Merkle tree of (lo, hi] of one table, from every local source."""
        try:
            table = self._table_by_id(msg.table_id)
            if not 0 <= int(msg.depth) <= 20:
                raise InvalidRequest(f"merkle depth {msg.depth} is outside 0..20")
            tree = MerkleTree(msg.lo, msg.hi, int(msg.depth))
            count = 0
            cfs = self.store.cfs[table.id]
            for lo, hi in unwrap(msg.lo, msg.hi):
                start, end = scan_bounds(lo, hi)
                count += tree.add_many((tok, key, payload) for tok, key, p in cfs.scan_partitions(start, end)
                                       if (payload := canonical_payload(p)) is not None)
            return ValidationResponse(msg.id, tree.to_wire(), count, None)
        except (InvalidRequest, EngineError, ValueError) as e:
            return ValidationResponse(msg.id, None, 0, f"{type(e).__name__}: {e}")

    # -- coordinator side --------------------------------------------------------------------

    def submit(self, now_ms: int, request: ClientRequest) -> list:
        self.now_ms = now_ms
        try:
            op = _CLIENT_OPS.get(request.op)
            if op is None:
                raise InvalidRequest(f"unknown operation {request.op!r}; known: {', '.join(sorted(_CLIENT_OPS))}")
            if len(self.handlers) >= self.config.max_pending_requests:
                raise OverloadedError(f"{len(self.handlers)} requests in flight (max_pending_requests="
                                      f"{self.config.max_pending_requests}); retry later")
            args = request.args if isinstance(request.args, dict) else {}
            if self.mode == "DECOMMISSIONED" and request.op in _MEASURED_OPS:
                raise InvalidRequest("this node was decommissioned and serves no requests; send them to "
                                     "another node")
            if request.op in _MEASURED_OPS:
                self._in_flight[request.id] = (now_ms, request.op, str(args.get("consistency") or "ONE").upper())
            return self._local(op(self, request.id, args))
        except Exception as e:  # every failure becomes the client's error reply
            if isinstance(e, UnavailableError):
                self.stats["unavailable"] += 1
            if not isinstance(e, (InvalidRequest, EngineError)) and not hasattr(e, "retryable"):
                if isinstance(e, (TypeError, ValueError, KeyError)):
                    e = InvalidRequest(f"bad arguments for {request.op}: {type(e).__name__}: {e}")
                else:
                    raise
            return self._local([Reply(request.id, error=e)])

    def new_timestamp(self, given) -> int:
        if given is not None:
            return self.store.new_timestamp(given)
        ts = self.clock.wall_us()
        if ts <= self._last_ts:
            ts = self._last_ts + 1
        self._last_ts = ts
        return ts

    def _level(self, args: dict, default: str = "ONE"):
        return cl.ConsistencyLevel.parse(str(args.get("consistency") or default))

    def _live_plan(self, keyspace: str, token: int, level, for_write: bool, pending=()):
        """Natural replicas (plus, for writes, the pending ones), the live ones among them, and the
        level's arithmetic; UnavailableError before anything is sent if too few are alive."""
        replicas = self.replicas(keyspace, token) + list(pending)
        rf_by_dc = self.rf_by_dc(keyspace)
        replica_dc = {ep: self.snitch.datacenter(ep) for ep in replicas}
        live = [ep for ep in replicas if self.is_alive(ep)]
        if for_write:
            cl.validate_for_write(level)
        else:
            cl.validate_for_read(level)
        if level is not cl.ConsistencyLevel.ANY:
            cl.assure_sufficient_live(level, live, replica_dc, rf_by_dc, self.config.datacenter,
                                      pending_by_dc=_by_dc(pending, replica_dc))
        return replicas, live, rf_by_dc, replica_dc

    def coordinate_write(self, request_id: int, keyspace: str, table: Table, key: bytes, update, level, ts) -> list:
        token = token_of(key)
        pending = self.pending_endpoints(keyspace, token)
        replicas, live, rf_by_dc, replica_dc = self._live_plan(keyspace, token, level, True, pending)
        dead = [ep for ep in replicas if ep not in live]
        if dead and self.config.hinted_handoff_enabled:
            self.hints.check_capacity()
        handler = WriteHandler(request_id, level, rf_by_dc, self.config.datacenter, replica_dc,
                               self.now_ms + self.config.write_request_timeout_ms,
                               pending_by_dc=_by_dc(pending, replica_dc))
        handler.result = {"timestamp": ts}
        if level is cl.ConsistencyLevel.ANY:
            handler.block_for = 1
        handler.canary = self.config.canary_mutant
        msg_id = self.register_handler(handler)
        payload = encode_partition(update)
        handler.mutation = (table, key, payload)
        handler.sent_to = set(live)
        self.stats["writes"] += 1
        effects = []
        for ep in dead:  # known down: hint now (a hint never counts toward the level, except ANY)
            if self._store_hint(ep, table, key, payload):
                effects += handler.on_hint_stored(ep)
        if not live and not effects:
            self._forget(msg_id)
            raise UnavailableError(level, 1, 0)
        return effects + [Send(ep, MutationRequest(msg_id, table.id, key, payload)) for ep in live]

    def coordinate_read(self, request_id: int, keyspace: str, table: Table, key: bytes, lo, hi, level,
                        finish) -> list:
        token = token_of(key)
        replicas, live, rf_by_dc, replica_dc = self._live_plan(keyspace, token, level, False)
        block_for = cl.block_for(level, rf_by_dc, self.config.datacenter)
        candidates = [ep for ep in live if cl.counts_towards(level, replica_dc[ep], self.config.datacenter)]
        ordered = self.snitch.sorted_by_proximity(self.endpoint, candidates)
        if self.endpoint in ordered:  # the local replica answers fastest
            ordered.remove(self.endpoint)
            ordered.insert(0, self.endpoint)
        if level is cl.ConsistencyLevel.EACH_QUORUM:
            targets = _each_quorum_targets(ordered, replica_dc, rf_by_dc)
        else:
            targets = ordered[:block_for]
        wait = speculative_retry.threshold_ms(table.option("speculative_retry"), self.read_latency)
        handler = ReadHandler(self, request_id, level, table, key, lo, hi, targets, block_for,
                              self.now_ms + self.config.read_request_timeout_ms, finish,
                              table.option("read_repair") != "NONE"
                              and self.config.canary_mutant != "no_read_repair_writeback",
                              extra=[ep for ep in ordered if ep not in targets],
                              speculate_at_ms=None if wait is None else self.now_ms + wait)
        msg_id = self.register_handler(handler)
        self.stats["reads"] += 1
        return handler.requests(msg_id)

    # -- metrics and admin -----------------------------------------------------------------

    def metrics(self) -> dict:
        out = dict(self.stats)
        out["pending_requests"] = len(self.handlers)
        out["live_peers"] = sum(1 for ep in self.gossiper.peers() if self.is_alive(ep))
        out["gossip_rounds"] = self.gossiper.rounds
        out.update(self.hints.stats)
        out["requests"] = {f"{op}_{level}": {"count": st.count, "errors": sum(st.errors.values())}
                           for (op, level), st in sorted(self.request_stats.items())}
        out["hints_pending"] = sum(self.hints.pending.values())
        for s in self.store.tablestats():
            out["memtable_bytes"] = out.get("memtable_bytes", 0) + s["memtable_bytes"]
            out["sstable_count"] = out.get("sstable_count", 0) + s["sstable_count"]
            out["pending_compactions"] = out.get("pending_compactions", 0) + s["compacting"]
        return out

    def status(self) -> list[dict]:
        self._refresh_ring()
        rows = []
        strategy_ownership = _primary_ownership(self.ring)
        for ep in sorted(self.gossiper.states):
            state = self.gossiper.states[ep]
            status = state.get(ms.ApplicationState.STATUS)
            if status and ms.parse_status(status)[0] in (ms.Status.LEFT, ms.Status.REMOVED):
                continue  # gone from the ring, as in Cassandra's nodetool status
            rows.append({
                "endpoint": ep,
                "datacenter": state.get(ms.ApplicationState.DC),
                "rack": state.get(ms.ApplicationState.RACK),
                "up": self.is_alive(ep),
                "state": ms.parse_status(status)[0] if status else "UNKNOWN",
                "load_bytes": int(state.get(ms.ApplicationState.LOAD) or 0),
                "tokens": len(ms.parse_tokens(state.get(ms.ApplicationState.TOKENS) or "")),
                "owns": strategy_ownership.get(ep, 0.0),
                "host_id": state.get(ms.ApplicationState.HOST_ID),
                "schema": state.get(ms.ApplicationState.SCHEMA),
                "generation": state.generation,
                "phi": 0.0 if ep == self.endpoint else self.detector.phi(ep, self.now_ms),
            })
        return rows


def _primary_ownership(ring: TokenRing) -> dict[str, float]:
    try:
        from ring.ring import primary_ownership
        return primary_ownership(ring)
    except Exception:
        return {}


def _by_dc(endpoints, replica_dc: dict) -> dict[str, int] | None:
    if not endpoints:
        return None
    out: dict[str, int] = {}
    for ep in endpoints:
        out[replica_dc[ep]] = out.get(replica_dc[ep], 0) + 1
    return out


def _each_quorum_targets(ordered: list[str], replica_dc: dict, rf_by_dc: dict) -> list[str]:
    targets = []
    for dc, rf in rf_by_dc.items():
        need = cl.quorum_for(rf) if rf else 0
        targets += [ep for ep in ordered if replica_dc[ep] == dc][:need]
    return sorted(targets, key=ordered.index)


# -- client operations ------------------------------------------------------------------------

def _table_args(node: Node, args: dict) -> tuple[str, Table]:
    keyspace = args.get("keyspace")
    if not keyspace:
        raise InvalidRequest("no keyspace given: pass keyspace= or connect(keyspace)")
    return keyspace, node.store.table(keyspace, args.get("table"))


def _op_insert(node: Node, rid: int, args: dict) -> list:
    keyspace, table = _table_args(node, args)
    ts = node.new_timestamp(args.get("timestamp"))
    key, update = mut.build_insert(table, args.get("row") or {}, ts, node.clock.wall_us() // 1_000_000,
                                   args.get("ttl"), node.store.options["max_value_bytes"])
    return node.coordinate_write(rid, keyspace, table, key, update, node._level(args), ts)


def _op_delete(node: Node, rid: int, args: dict) -> list:
    keyspace, table = _table_args(node, args)
    ts = node.new_timestamp(args.get("timestamp"))
    key, update = mut.build_delete(table, args.get("key") or {}, ts, node.clock.wall_us() // 1_000_000,
                                   args.get("columns"), args.get("start"), args.get("end"),
                                   args.get("start_inclusive", True), args.get("end_inclusive", True))
    return node.coordinate_write(rid, keyspace, table, key, update, node._level(args), ts)


def _op_select(node: Node, rid: int, args: dict, exact: bool = False) -> list:
    keyspace, table = _table_args(node, args)
    key_values = args.get("key") or {}
    pk = mut.partition_key_bytes(table, key_values)
    columns = args.get("columns")
    if columns is not None:
        for c in columns:
            table.column(c)
    if exact and table.clustering:
        missing = [c.name for c in table.clustering if c.name not in key_values]
        if missing:
            raise InvalidRequest(f"get needs the full primary key; missing {missing}. Use select for slices")
        lo = mut.clustering_prefix(table, key_values)
        hi = mut.successor(lo)
    else:
        lo, hi = mut.slice_bounds(table, args.get("start"), args.get("end"), args.get("start_inclusive", True),
                                  args.get("end_inclusive", True))
    limit = 1 if exact else args.get("limit")
    reverse = bool(args.get("reverse"))
    writetime = bool(args.get("writetime"))
    pk_values = {c.name: key_values[c.name] for c in table.partition_key}
    now_s = node.clock.wall_us() // 1_000_000

    def finish(p):
        rows = []
        if p is not None:
            for ck, cells in live_rows(p, now_s, lo, hi, reverse):
                rows.append(mut.row_dict(table, pk_values, ck, cells, columns, writetime))
                if limit is not None and len(rows) >= limit:
                    break
        if exact:
            return rows[0] if rows else None
        return rows

    return node.coordinate_read(rid, keyspace, table, pk, lo, hi, node._level(args), finish)


def _op_get(node: Node, rid: int, args: dict) -> list:
    return _op_select(node, rid, args, exact=True)


def _op_scan(node: Node, rid: int, args: dict) -> list:
    keyspace, table = _table_args(node, args)
    level = node._level(args)
    cl.validate_for_read(level)
    page_size = args.get("page_size") or 1000
    if not isinstance(page_size, int) or page_size < 1 or page_size > 10_000:
        raise InvalidRequest(f"page_size must be an integer from 1 to 10000, got {page_size!r}")
    state = args.get("paging_state")
    resume = tuple(unpackb(state)) if state else None
    columns = args.get("columns")
    writetime = bool(args.get("writetime"))
    subranges = _scan_subranges(node, keyspace, level, args.get("start_token"), args.get("end_token"))
    now_s = node.clock.wall_us() // 1_000_000

    def emit(token, key, p, rows, resume_at):
        lo = b""
        if resume_at is not None and (token, key) == (resume_at[0], resume_at[1]):
            lo = resume_at[2] + b"\x00"
        key_values = mut.decode_key(table, key)
        for ck, cells in live_rows(p, now_s, lo, None, False):
            rows.append(mut.row_dict(table, key_values, ck, cells, columns, writetime))
            if len(rows) >= page_size:
                return packb([token, key, ck])
        return None

    handler = ScanHandler(node, rid, level, table, subranges, resume, page_size,
                          node.now_ms + node.config.range_request_timeout_ms, emit,
                          speculative_retry.threshold_ms(table.option("speculative_retry"), node.read_latency))
    node.stats["scans"] += 1
    return handler.start()


def _op_index_query(node: Node, rid: int, args: dict) -> list:
    """A secondary-index query over the whole ring (ring/index_query.py)."""
    keyspace, table = _table_args(node, args)
    level = node._level(args)
    cl.validate_for_read(level)
    return index_query.start(node, rid, level, table, args, _scan_subranges(node, keyspace, level, None, None))


def _scan_subranges(node: Node, keyspace: str, level, start_token, end_token) -> list:
    """Split (start, end] into the ring's ranges, each with the replicas to ask."""
    ring_tokens = sorted(node.ring.tokens) if hasattr(node.ring, "tokens") else []
    pieces = _split_range(start_token, end_token, ring_tokens)
    out = []
    for lo, hi in pieces:
        probe = MIN_TOKEN + 1 if lo is None else lo + 1
        replicas, live, rf_by_dc, replica_dc = node._live_plan(keyspace, probe, level, False)
        block_for = cl.block_for(level, rf_by_dc, node.config.datacenter)
        candidates = [ep for ep in live if cl.counts_towards(level, replica_dc[ep], node.config.datacenter)]
        ordered = node.snitch.sorted_by_proximity(node.endpoint, candidates)
        if node.endpoint in ordered:
            ordered.remove(node.endpoint)
            ordered.insert(0, node.endpoint)
        start = (lo + 1, b"") if lo is not None else None
        end = (hi + 1, b"") if hi is not None and hi < MAX_TOKEN else None
        out.append((start, end, ordered[:block_for], ordered[block_for:]))  # the rest: for speculation
    return out


def _split_range(start, end, ring_tokens: list[int]) -> list[tuple]:
    """(start, end] (None = ring minimum / maximum; start >= end wraps) cut at the ring's tokens."""
    if start is not None and end is not None and start >= end:
        return _split_range(start, None, ring_tokens) + _split_range(None, end, ring_tokens)
    lo = start
    pieces = []
    for t in ring_tokens:
        if (lo is None or t > lo) and (end is None or t < end):
            pieces.append((lo, t))
            lo = t
    pieces.append((lo, end))
    return pieces


def _op_create_keyspace(node: Node, rid: int, args: dict) -> list:
    replication = args.get("replication") or {"class": "SimpleStrategy", "replication_factor": 1}
    from_options(replication)  # validates
    if args.get("if_not_exists") and args["name"] in node.store.keyspaces:
        return [Reply(rid, result={"schema_version": node.schema.version()})]  # IF NOT EXISTS: a no-op
    node.schema.create_keyspace(args["name"], replication, node.new_timestamp(None))
    return _schema_changed(node, rid)


def _op_create_table(node: Node, rid: int, args: dict) -> list:
    speculative_retry.parse((args.get("options") or {}).get("speculative_retry"))  # validates
    ks = node.store.keyspaces.get(args["keyspace"])
    if args.get("if_not_exists") and ks is not None and args["name"] in ks.tables:
        return [Reply(rid, result={"schema_version": node.schema.version()})]  # IF NOT EXISTS: a no-op
    node.schema.create_table(args["keyspace"], args["name"], args["columns"], args["primary_key"],
                             args.get("clustering_order"), args.get("options"), node.new_timestamp(None),
                             table_id=f"{node.rng.getrandbits(128):032x}")  # from the injected rng: replayable
    return _schema_changed(node, rid)


def _op_create_index(node: Node, rid: int, args: dict) -> list:
    keyspace, table = _table_args(node, args)
    node.schema.create_index(keyspace, table.name, args.get("column"), args.get("name"),
                             args.get("if_not_exists", True), node.new_timestamp(None))
    return _schema_changed(node, rid)


def _op_drop_index(node: Node, rid: int, args: dict) -> list:
    if not args.get("keyspace"):
        raise InvalidRequest("no keyspace given: pass keyspace= or connect(keyspace)")
    node.schema.drop_index(args["keyspace"], args.get("name"), args.get("if_exists", True), node.new_timestamp(None))
    return _schema_changed(node, rid)


def _op_drop_table(node: Node, rid: int, args: dict) -> list:
    node.schema.drop_table(args["keyspace"], args["name"], node.new_timestamp(None))
    return _schema_changed(node, rid)


def _op_drop_keyspace(node: Node, rid: int, args: dict) -> list:
    node.schema.drop_keyspace(args["name"], node.new_timestamp(None))
    return _schema_changed(node, rid)


def _schema_changed(node: Node, rid: int) -> list:
    version = node.schema.version()
    node.gossiper.set_app_state(ms.ApplicationState.SCHEMA, version)
    push = SchemaPush(0, node.schema.export())
    peers = [ep for ep in node.gossiper.peers() if node.is_alive(ep)]
    return [Send(ep, push) for ep in peers] + [Reply(rid, result={"schema_version": version})]


def _op_describe_ring(node: Node, rid: int, args: dict) -> list:
    node._refresh_ring()
    endpoints = {}
    for row in node.status():
        tokens = ms.parse_tokens(node.gossiper.app_state(row["endpoint"], ms.ApplicationState.TOKENS) or "")
        endpoints[row["endpoint"]] = {"datacenter": row["datacenter"], "rack": row["rack"], "up": row["up"],
                                      "status": row["state"], "tokens": tokens}
    keyspaces = {name: ks.replication for name, ks in node.store.keyspaces.items() if name != "system"}
    return [Reply(rid, result={"endpoints": endpoints, "keyspaces": keyspaces})]


def _op_describe_schema(node: Node, rid: int, args: dict) -> list:
    export = node.schema.export()
    return [Reply(rid, result={"keyspaces": export["keyspaces"], "tables": export["tables"],
                               "version": node.schema.version()})]


def _op_status(node: Node, rid: int, args: dict) -> list:
    return [Reply(rid, result=node.status())]


def _op_info(node: Node, rid: int, args: dict) -> list:
    me = node.gossiper.states[node.endpoint]
    return [Reply(rid, result={"endpoint": node.endpoint, "host_id": node.config.host_id,
                               "datacenter": node.config.datacenter, "rack": node.config.rack,
                               "generation": me.generation, "load_bytes": node._load(),
                               "tokens": len(node.tokens), "schema_version": node.schema.version(),
                               "mode": node.mode,
                               "uptime_ms": node.now_ms - node.started_ms, "metrics": node.metrics()})]


def _op_flush(node: Node, rid: int, args: dict) -> list:
    return [Reply(rid, result={"flushed": node.store.flush(args.get("keyspace"), args.get("table"))})]


def _op_compact(node: Node, rid: int, args: dict) -> list:
    done = 0
    for cfs in list(node.store.cfs.values()):
        t = cfs.table
        if (args.get("keyspace") in (None, t.keyspace)) and (args.get("table") in (None, t.name)):
            done += node.store.compact(t.keyspace, t.name, major=True)
    return [Reply(rid, result={"compactions": done})]


def _op_tablestats(node: Node, rid: int, args: dict) -> list:
    return [Reply(rid, result=[s for s in node.store.tablestats() if not s["table"].startswith("system.")])]


def _op_getendpoints(node: Node, rid: int, args: dict) -> list:
    keyspace, table = _table_args(node, args)
    key = mut.partition_key_bytes(table, args.get("key") or {})
    return [Reply(rid, result={"token": token_of(key), "endpoints": node.replicas(keyspace, token_of(key))})]


def _op_set_clock_offset(node: Node, rid: int, args: dict) -> list:
    offset = int(args.get("offset_ms", 0))
    node.clock.offset_us = offset * 1000
    return [Reply(rid, result={"offset_ms": offset})]


def _op_repair(node: Node, rid: int, args: dict) -> list:
    """nodetool repair for one table: full repair of the ranges this node replicates (-pr: its
    primary ranges only); preview compares and streams nothing."""
    keyspace, table = _table_args(node, args)
    node._refresh_ring()
    strategy = node.strategy(keyspace)
    ring = node.ring
    jobs = []
    for i, tok in enumerate(ring.tokens):
        prev = ring.tokens[i - 1]
        replicas = strategy.replicas(ring, tok, node.snitch)
        mine = ring.owners[i] == node.endpoint if args.get("primary_range") else node.endpoint in replicas
        if mine and len(replicas) > 1:
            jobs.append((prev, tok, replicas))
    local = sum(s.stats.partition_count for s in node.store.cfs[table.id].sstables) + \
        len(node.store.cfs[table.id].memtable)
    max_depth = int(args.get("max_depth") or 18)
    sized = []
    for lo, hi, replicas in jobs:  # about two leaves per partition, from the range's share of the ring
        estimate = local * (((hi - lo) % 2**64) or 2**64) / 2**64
        sized.append((lo, hi, replicas, MerkleTree.choose_depth(max(1, int(2 * estimate)), max_depth=max_depth)))
    session = RepairSession(node, rid, table, sized, bool(args.get("preview")),
                            node.now_ms + int(args.get("timeout_ms") or 600_000))
    return session.start()


def _op_listpendinghints(node: Node, rid: int, args: dict) -> list:
    return [Reply(rid, result=node.hints.list_pending())]


def _op_truncatehints(node: Node, rid: int, args: dict) -> list:
    host = args.get("host_id")
    if host is None and args.get("target"):  # the endpoint whose hints to drop
        host = node._host_id(args["target"])
        if host is None:
            raise InvalidRequest(f"no node {args['target']} in this node's gossip view")
    return [Reply(rid, result={"removed": node.hints.truncate(host)})]


def _op_decommission(node: Node, rid: int, args: dict) -> list:
    """nodetool decommission: answers once this node's ranges are on their new owners and it LEFT."""
    _one_change_at_a_time(node)
    node.topology_change = tc.Decommission(node, rid, node.now_ms + int(args.get("timeout_ms") or 3_600_000))
    node.register_handler(node.topology_change)
    return []


def _op_removenode(node: Node, rid: int, args: dict) -> list:
    """nodetool removenode HOST_ID: re-replicate a dead node's ranges from the live replicas."""
    host_id = args.get("host_id")
    if not host_id or not isinstance(host_id, str):
        raise InvalidRequest("removenode needs host_id= (nodetool status lists them)")
    _one_change_at_a_time(node)
    node.topology_change = tc.RemoveNode(node, rid, host_id, node.now_ms + int(args.get("timeout_ms") or 3_600_000))
    node.register_handler(node.topology_change)
    return []


def _one_change_at_a_time(node: Node) -> None:
    change = node.topology_change
    if change is not None and not change.finished:
        raise InvalidRequest(f"{change.operation} is still running on this node ({change.phase}); "
                             f"wait for it (nodetool netstats shows its progress)")


def _op_cleanup(node: Node, rid: int, args: dict) -> list:
    """nodetool cleanup [KS [TABLE]]: drop the partitions of ranges this node no longer replicates
    (after a node joined), by rewriting each SSTable. Refused while the ring is changing."""
    node._refresh_ring()
    if node.topology.moving or node.mode != "NORMAL":
        raise InvalidRequest("Node is involved in cluster membership changes. Not safe to run cleanup; "
                             "run it once every node is NORMAL (nodetool status)")
    dropped = {}
    for strategy, table in tc.user_tables(node):
        if args.get("keyspace") not in (None, table.keyspace) or args.get("table") not in (None, table.name):
            continue
        ring = node.ring
        if not ring.tokens:
            continue
        owned = [node.endpoint in strategy.replicas(ring, tok, node.snitch) for tok in ring.tokens]
        dropped[table.qualified_name] = node.store.cleanup(
            table.keyspace, table.name, lambda token, ring=ring, owned=owned: owned[ring.first_token_index(token)])
    return [Reply(rid, result={"partitions_dropped": dropped})]


def _op_netstats(node: Node, rid: int, args: dict) -> list:
    """Mode and the progress of streams: bootstrap, decommission / removenode, fetches for others."""
    out = {"mode": node.mode, "operations": []}
    if node.bootstrap is not None:
        out["operations"].append(node.bootstrap.progress())
    if node.topology_change is not None:
        out["operations"].append(node.topology_change.progress())
    out["operations"] += [session.progress() for session in node.fetches.values()]
    return [Reply(rid, result=out)]


_CLIENT_OPS = {
    "insert": _op_insert, "delete": _op_delete, "get": _op_get, "select": _op_select, "scan": _op_scan,
    "create_keyspace": _op_create_keyspace, "create_table": _op_create_table, "drop_table": _op_drop_table,
    "drop_keyspace": _op_drop_keyspace, "describe_ring": _op_describe_ring, "describe_schema": _op_describe_schema,
    "status": _op_status, "info": _op_info, "flush": _op_flush, "compact": _op_compact,
    "tablestats": _op_tablestats, "getendpoints": _op_getendpoints, "set_clock_offset": _op_set_clock_offset,
    "listpendinghints": _op_listpendinghints, "truncatehints": _op_truncatehints, "repair": _op_repair,
    "decommission": _op_decommission, "removenode": _op_removenode, "netstats": _op_netstats,
    "cleanup": _op_cleanup,
    "create_index": _op_create_index, "drop_index": _op_drop_index, "index_query": _op_index_query,
}


def schema_digest(obj) -> str:
    return xxhash.xxh64(packb(obj)).hexdigest()
