"""Replica placement: which endpoints hold a token, under SimpleStrategy or NetworkTopologyStrategy.

Rule: placement is a pure function of (ring, token, snitch); the same inputs give the same list,
in Cassandra's order (the first replica is the primary owner; the rest follow the ring walk).

* SimpleStrategy(rf): walk clockwise from the first ring token >= t, taking distinct endpoints
  until rf (or every endpoint) is taken.
* NetworkTopologyStrategy({dc: rf}): one walk serves every DC. Per DC,
  rf_left = min(RF_dc, nodes_dc) and acceptable_rack_repeats = RF_dc - racks_dc. A node in a rack
  not yet used (in its DC) is always taken; a node in a used rack only while repeats > 0 (each
  such take spends one). Skipped nodes are never revisited. The walk ends when every DC is full.
  DCs with RF 0 or no nodes are ignored. (`o.a.c.locator.NetworkTopologyStrategy`, 4.0.)

Checked against cassandra-driver's placement in tests/ring/test_placement.py.
Rules in docs/ring.md#placement.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping

from ring.errors import InvalidRequest
from ring.placement.snitch import DEFAULT_DC, Snitch
from ring.placement.token_ring import TokenRing

_PREFIX = "org.apache.cassandra.locator."
SIMPLE = "SimpleStrategy"
NTS = "NetworkTopologyStrategy"


def _parse_rf(value: object, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise InvalidRequest(f"Replication factor for {where} must be an integer; found {value!r}")
    text = str(value).strip()
    if "/" in text:
        raise InvalidRequest(
            f"Transient replication ({text!r} for {where}) is not supported; use a plain integer")
    if not text.lstrip("-").isdigit():
        raise InvalidRequest(f"Replication factor for {where} must be numeric; found {value!r}")
    rf = int(text)
    if rf < 0:
        raise InvalidRequest(f"Replication factor for {where} must be non-negative; found {rf}")
    return rf


class SimpleStrategy:
    """`rf` distinct endpoints clockwise from the token's owner; blind to DCs and racks."""

    __slots__ = ("rf",)

    def __init__(self, rf: int):
        assert rf >= 0
        self.rf = rf

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SimpleStrategy) and other.rf == self.rf

    def __hash__(self) -> int:
        return hash((SIMPLE, self.rf))

    def __repr__(self) -> str:
        return f"SimpleStrategy(rf={self.rf})"

    def replicas(self, ring: TokenRing, token: int, snitch: Snitch | None = None) -> list[str]:
        if not ring.tokens:
            return []
        return self._replicas_at(ring, ring.first_token_index(token), snitch)

    def _replicas_at(self, ring: TokenRing, start: int, snitch: Snitch | None) -> list[str]:
        out: list[str] = []
        if self.rf == 0:
            return out
        for _, ep in ring.walk(start):
            if ep not in out:
                out.append(ep)
                if len(out) == self.rf:
                    break
        return out

    def rf_by_dc(self, ring: TokenRing, snitch: Snitch, local_dc: str | None = None) -> dict[str, int]:
        """SimpleStrategy has one RF for the whole ring. For consistency arithmetic it is filed
        under `local_dc` (else the ring's only DC, else "datacenter1"), which gives Cassandra's
        block_for for every level (its LOCAL_QUORUM is a quorum of the whole RF here too)."""
        if local_dc is None:
            dcs = sorted({snitch.datacenter(ep) for ep in ring.endpoints}) if snitch else []
            local_dc = dcs[0] if len(dcs) == 1 else DEFAULT_DC
        return {local_dc: self.rf}


class NetworkTopologyStrategy:
    """RF per DC; replicas spread over racks within each DC (see the module docstring)."""

    __slots__ = ("datacenters",)

    def __init__(self, datacenters: Mapping[str, int]):
        assert all(rf >= 0 for rf in datacenters.values())
        self.datacenters: dict[str, int] = dict(sorted(datacenters.items()))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, NetworkTopologyStrategy) and other.datacenters == self.datacenters

    def __hash__(self) -> int:
        return hash((NTS, tuple(self.datacenters.items())))

    def __repr__(self) -> str:
        return f"NetworkTopologyStrategy({self.datacenters!r})"

    def replicas(self, ring: TokenRing, token: int, snitch: Snitch) -> list[str]:
        if not ring.tokens:
            return []
        return self._replicas_at(ring, ring.first_token_index(token), _Topology(ring, snitch))

    def _replicas_at(self, ring: TokenRing, start: int, topo: _Topology) -> list[str]:
        rf_left: dict[str, int] = {}
        repeats: dict[str, int] = {}
        for dc, rf in self.datacenters.items():
            nodes = topo.nodes.get(dc, 0)
            if rf <= 0 or nodes <= 0:
                continue
            rf_left[dc] = min(rf, nodes)
            repeats[dc] = rf - topo.racks.get(dc, 0)
        out: list[str] = []
        taken: set[str] = set()
        seen_racks: set[tuple[str, str]] = set()
        dcs_to_fill = len(rf_left)
        for _, ep in ring.walk(start):
            if dcs_to_fill == 0:
                break
            location = topo.location[ep]
            dc = location[0]
            if rf_left.get(dc, 0) == 0 or ep in taken:
                continue
            if location in seen_racks:
                if repeats[dc] <= 0:
                    continue  # skipped for good: the rest of this DC's RF must go to new racks
                repeats[dc] -= 1
            else:
                seen_racks.add(location)
            out.append(ep)
            taken.add(ep)
            rf_left[dc] -= 1
            if rf_left[dc] == 0:
                dcs_to_fill -= 1
        return out

    def rf_by_dc(self, ring: TokenRing, snitch: Snitch, local_dc: str | None = None) -> dict[str, int]:
        """The configured RF of each DC with RF > 0 (Cassandra's block_for uses the configured
        RF, even when a DC has fewer nodes; then ALL and quorums report Unavailable)."""
        return {dc: rf for dc, rf in self.datacenters.items() if rf > 0}


class _Topology:
    """Per-call view of the ring through the snitch: each endpoint's (dc, rack), and the node
    and rack counts of each DC (Cassandra's TokenMetadata.Topology)."""

    __slots__ = ("location", "nodes", "racks")

    def __init__(self, ring: TokenRing, snitch: Snitch):
        self.location = {ep: (snitch.datacenter(ep), snitch.rack(ep)) for ep in ring.endpoints}
        self.nodes: dict[str, int] = {}
        racks: dict[str, set[str]] = {}
        for dc, rack in self.location.values():
            self.nodes[dc] = self.nodes.get(dc, 0) + 1
            racks.setdefault(dc, set()).add(rack)
        self.racks = {dc: len(r) for dc, r in racks.items()}


Strategy = SimpleStrategy | NetworkTopologyStrategy


def from_options(options: Mapping[str, object], datacenters: Iterable[str] | None = None) -> Strategy:
    """Parse CQL replication options: {"class": "SimpleStrategy", "replication_factor": 3} or
    {"class": "NetworkTopologyStrategy", "dc1": 3, "dc2": 2}. Class names may be short or full
    ("org.apache.cassandra.locator.SimpleStrategy"); RFs may be ints or digit strings. As in
    Cassandra 4.0, NTS's "replication_factor" expands to every DC in `datacenters` (explicit
    DC entries win). Bad input raises InvalidRequest naming the option."""
    if not isinstance(options, Mapping) or "class" not in options:
        raise InvalidRequest("Missing replication strategy class; give {'class': 'SimpleStrategy', ...}")
    cls = str(options["class"]).strip()
    short = cls[len(_PREFIX):] if cls.startswith(_PREFIX) else cls
    rest = {str(k): v for k, v in options.items() if k != "class"}
    if short == SIMPLE:
        if "replication_factor" not in rest:
            raise InvalidRequest("SimpleStrategy requires a replication_factor strategy option.")
        unknown = sorted(set(rest) - {"replication_factor"})
        if unknown:
            raise InvalidRequest(
                f"Unrecognized strategy option {{{', '.join(unknown)}}} passed to SimpleStrategy")
        return SimpleStrategy(_parse_rf(rest["replication_factor"], "replication_factor"))
    if short == NTS:
        per_dc: dict[str, int] = {}
        if "replication_factor" in rest:
            default = _parse_rf(rest.pop("replication_factor"), "replication_factor")
            if datacenters is None:
                raise InvalidRequest(
                    "NetworkTopologyStrategy's replication_factor option needs the known "
                    "datacenters; list each DC explicitly, e.g. {'dc1': 3}")
            per_dc = {dc: default for dc in datacenters}
        for dc, value in rest.items():
            if not dc.strip():
                raise InvalidRequest("Datacenter names in replication options must not be empty")
            per_dc[dc] = _parse_rf(value, dc)
        if not per_dc:
            raise InvalidRequest(
                "Configuration for at least one datacenter must be present, e.g. "
                "{'class': 'NetworkTopologyStrategy', 'dc1': 3}")
        return NetworkTopologyStrategy(per_dc)
    raise InvalidRequest(
        f"Unable to find replication strategy class '{cls}'; use SimpleStrategy or "
        "NetworkTopologyStrategy")
