"""The ring and schema as a client last saw them, and the routing they imply (pure, no I/O).

`ClusterMetadata` is filled from two answers: `describe_ring` (endpoints with datacenter, rack,
status, Up/Down and tokens; keyspaces with their replication options) and `describe_schema`
(tables). Routing: a keyed request (insert, delete, get, select) goes first to a live replica of
its partition (the partition key's Murmur3 token placed by the keyspace's strategy, exactly as the
nodes place it), local datacenter first, shuffled to spread load; then to the other live nodes
(shuffled); then to everything else known (down nodes, contact points) as a last resort. A request
the metadata cannot route (unknown table, malformed key, no ring yet) goes anywhere: the
coordinator says what is wrong with it.

Endpoints are "host:port" strings ("[v6]:port" for IPv6); `normalize_endpoint` adds the default
port to a bare host.
"""
from __future__ import annotations

import itertools
import random
from collections.abc import Iterable

from engine.errors import InvalidRequest
from engine.mutation import partition_key_bytes
from engine.schema import Table
from engine.token import token as token_of
from ring.errors import RequestError
from ring.placement.snitch import PropertyFileSnitch
from ring.placement.strategy import from_options
from ring.placement.token_ring import TokenRing

DEFAULT_PORT = 9100
KEYED_OPS = {"insert": "row", "delete": "key", "get": "key", "select": "key"}   # op -> its key argument
NOT_OWNING = ("BOOT", "BOOT_REPLACE", "LEFT", "removed", "UNKNOWN")  # outside ring/placement/pending.py's current ring


def normalize_endpoint(contact_point: str) -> str:
    """ "10.0.0.1" -> "10.0.0.1:9100"; "host:9200" and "[::1]:9200" are kept."""
    if contact_point.startswith("[") or contact_point.count(":") == 1:
        return contact_point
    if ":" in contact_point:
        return f"[{contact_point}]:{DEFAULT_PORT}"
    return f"{contact_point}:{DEFAULT_PORT}"


class ClusterMetadata:
    """The ring and schema as this client last saw them, and the routing decisions they imply.

    `refreshed_at` is the client clock's reading at the last refresh (-inf: never, or stale)."""

    def __init__(self, contact_points: Iterable[str] = ()):
        self.contact_points = [normalize_endpoint(cp) for cp in contact_points]
        self.endpoints: dict[str, dict] = {}       # ep -> {"datacenter", "rack", "status", "tokens"}
        self.keyspaces: dict[str, dict] = {}       # name -> replication options
        self.tables: dict[tuple[str, str], Table] = {}
        self.ring = TokenRing()
        self.snitch = PropertyFileSnitch({})
        self.refreshed_at = float("-inf")
        self._live: dict[str, None] = {}           # Up endpoints, in endpoint order (derived from endpoints)
        self._strategies: dict[str, object] = {}   # keyspace -> its replication strategy (derived, cached)
        # (keyspace, ring index) -> the plan's parts before shuffling (derived, cached): placement
        # depends only on the ring position a token falls in (num_tokens x nodes positions)
        self._plans: dict[tuple, tuple[tuple[str, ...], ...]] = {}

    def update_ring(self, answer: dict) -> None:
        self.endpoints = dict(answer.get("endpoints") or {})
        self.keyspaces = dict(answer.get("keyspaces") or {})
        self.ring = TokenRing.from_endpoints({ep: info.get("tokens") or () for ep, info in self.endpoints.items()
                                              if str(info.get("status", "NORMAL")) not in NOT_OWNING})
        self.snitch = PropertyFileSnitch(
            {ep: (info.get("datacenter", "datacenter1"), info.get("rack", "rack1"))
             for ep, info in self.endpoints.items()}, default=("datacenter1", "rack1"))
        self._live = dict.fromkeys(ep for ep in self.endpoints if self.is_up(ep))
        self._strategies = {}
        self._plans = {}

    def update_schema(self, answer) -> None:
        tables = answer.get("tables", answer) if isinstance(answer, dict) else answer
        if isinstance(tables, dict):
            tables = list(tables.values())
        self.tables = {}
        for d in tables or ():
            t = Table.from_dict(d)
            self.tables[(t.keyspace, t.name)] = t
        if isinstance(answer, dict) and isinstance(answer.get("keyspaces"), dict):
            for name, replication in answer["keyspaces"].items():
                self.keyspaces.setdefault(name, replication)
        self._strategies = {}
        self._plans = {}

    def is_up(self, ep: str) -> bool:
        info = self.endpoints.get(ep, {})
        if info.get("up") is False:
            return False  # the node's failure detector convicted it
        status = str(info.get("status", "UP")).upper()
        return not any(word in status for word in ("DOWN", "LEFT", "REMOVED"))

    def live_endpoints(self) -> list[str]:
        return list(self._live)

    def _strategy(self, keyspace: str, options: dict):
        strategy = self._strategies.get(keyspace)
        if strategy is None:
            dcs = sorted({self.snitch.datacenter(ep) for ep in self.ring.endpoints})
            strategy = self._strategies[keyspace] = from_options(options, dcs)
        return strategy

    def replicas(self, keyspace: str, table: str, key: dict) -> list[str]:
        """The replicas of `key`'s partition in placement order, or [] if unknown."""
        position = self._position(keyspace, table, key)
        return [] if position is None else list(self._plan_parts(*position)[0])

    def _position(self, keyspace, table, key) -> tuple[str, int] | None:
        """(keyspace, index of the first ring token >= the key's token), or None if unroutable."""
        schema = self.tables.get((keyspace, table))
        if schema is None or self.keyspaces.get(keyspace) is None or not self.ring.tokens \
                or not isinstance(key, dict):
            return None
        try:
            tok = token_of(partition_key_bytes(schema, key))
        except (InvalidRequest, RequestError):
            return None  # let the coordinator say what is wrong with the request
        return keyspace, self.ring.first_token_index(tok)

    def _plan_parts(self, keyspace: str | None, index: int) -> tuple[tuple[str, ...], ...]:
        """(replicas in placement order, the live ones, the other live nodes, the rest) for a ring
        position (keyspace None: an unkeyed request), computed once per metadata version."""
        parts = self._plans.get((keyspace, index))
        if parts is None:
            replicas: list[str] = []
            if keyspace is not None:
                try:
                    strategy = self._strategy(keyspace, self.keyspaces[keyspace])
                    replicas = strategy.replicas(self.ring, self.ring.tokens[index], self.snitch)
                except (InvalidRequest, RequestError):
                    replicas = []
            live = self._live
            live_replicas = [ep for ep in replicas if ep in live]
            others = [ep for ep in live if ep not in live_replicas]
            seen = set(live_replicas) | set(others)
            rest = [ep for ep in itertools.chain(replicas, self.endpoints, self.contact_points)
                    if not (ep in seen or seen.add(ep))]
            parts = self._plans[(keyspace, index)] = (tuple(replicas), tuple(live_replicas), tuple(others),
                                                      tuple(rest))
        return parts

    def query_plan(self, op: str, args: dict, rng: random.Random, local_dc: str | None = None) -> list[str]:
        """Endpoints to try, in order: live replicas (local DC first, shuffled), the other live
        nodes (shuffled), then everything else known (down nodes, contact points) as a last resort."""
        position = None
        if op in KEYED_OPS:
            position = self._position(args.get("keyspace"), args.get("table"), args.get(KEYED_OPS[op]))
        _, live_replicas, others, rest = self._plan_parts(*(position or (None, 0)))
        live_replicas, others = list(live_replicas), list(others)
        rng.shuffle(live_replicas)
        if local_dc is not None:
            live_replicas.sort(key=lambda ep: self.snitch.datacenter(ep) != local_dc)
        rng.shuffle(others)
        if local_dc is not None:
            others.sort(key=lambda ep: self.snitch.datacenter(ep) != local_dc)
        return live_replicas + others + list(rest)
