"""Snitches: where an endpoint lives (datacenter, rack) and which replicas are closest.

Every snitch answers `datacenter(ep)`, `rack(ep)` and `sorted_by_proximity(self_ep, endpoints)`.
They are pure: a snitch reads only what it was given (a properties text, a mapping or callable
for gossiped peers, latencies passed in with their time). Cassandra's names and rules
(`o.a.c.locator`, 4.0); the rules are written down in docs/ring.md#snitches.

Endpoints are ids like "127.0.0.1:9100" or "[::1]:9100"; `host_of` drops the port.
"""
from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable, Mapping, Sequence

from ring.errors import ConfigurationError

DEFAULT_DC = "datacenter1"
DEFAULT_RACK = "rack1"
UNKNOWN_DC = "UNKNOWN_DC"
UNKNOWN_RACK = "UNKNOWN_RACK"


def host_of(ep: str) -> str:
    """ "10.0.1.2:9100" -> "10.0.1.2"; "[::1]:9100" -> "::1"; a bare host is returned as is."""
    if ep.startswith("["):
        return ep[1 : ep.index("]")]
    if ep.count(":") == 1:
        return ep.split(":", 1)[0]
    return ep


class Snitch:
    """The interface; subclasses give `datacenter` and `rack`. Sorting is Cassandra's
    AbstractNetworkTopologySnitch: self first, then the same DC, then the same rack (stable)."""

    def datacenter(self, ep: str) -> str:
        raise NotImplementedError

    def rack(self, ep: str) -> str:
        raise NotImplementedError

    def compare_endpoints(self, target: str, a: str, b: str) -> int:
        if a == target or b == target:
            return (b == target) - (a == target)
        for where in (self.datacenter, self.rack):
            here = where(target)
            a_near, b_near = where(a) == here, where(b) == here
            if a_near != b_near:
                return -1 if a_near else 1
        return 0

    def sorted_by_proximity(self, self_ep: str, endpoints: Iterable[str]) -> list[str]:
        return sorted(endpoints, key=functools.cmp_to_key(
            lambda a, b: self.compare_endpoints(self_ep, a, b)))


class SimpleSnitch(Snitch):
    """One DC ("datacenter1"), one rack ("rack1"); proximity keeps the given order."""

    def datacenter(self, ep: str) -> str:
        return DEFAULT_DC

    def rack(self, ep: str) -> str:
        return DEFAULT_RACK

    def compare_endpoints(self, target: str, a: str, b: str) -> int:
        return 0

    def sorted_by_proximity(self, self_ep: str, endpoints: Iterable[str]) -> list[str]:
        return list(endpoints)


class RackInferringSnitch(Snitch):
    """DC = the 2nd octet and rack = the 3rd octet of the IPv4 address ("10.20.30.4" -> "20", "30")."""

    @staticmethod
    def _octets(ep: str) -> list[str]:
        parts = host_of(ep).split(".")
        if len(parts) != 4 or not all(p.isdigit() and int(p) < 256 for p in parts):
            raise ConfigurationError(f"RackInferringSnitch needs an IPv4 address, got {ep!r}")
        return [str(int(p)) for p in parts]

    def datacenter(self, ep: str) -> str:
        return self._octets(ep)[1]

    def rack(self, ep: str) -> str:
        return self._octets(ep)[2]


def parse_properties(text: str) -> dict[str, str]:
    """Java .properties lines as Cassandra's files use them: `key=value` (or `key: value`),
    `#`/`!` comments, blank lines, `\\:` escapes (IPv6 keys). Later lines win."""
    props: dict[str, str] = {}
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line[0] in "#!":
            continue
        key, sep = [], ""
        i = 0
        while i < len(line):
            ch = line[i]
            if ch == "\\" and i + 1 < len(line):
                key.append(line[i + 1])
                i += 2
                continue
            if ch in "=:":
                sep = ch
                break
            key.append(ch)
            i += 1
        if not sep:
            raise ConfigurationError(f"line {lineno}: expected key=value, got {raw!r}")
        props["".join(key).strip()] = line[i + 1 :].strip()
    return props


def _dc_rack(value: str, where: str) -> tuple[str, str]:
    parts = value.split(":")
    if len(parts) != 2 or not all(p.strip() for p in parts):
        raise ConfigurationError(f"{where}: expected DC:RACK, got {value!r}")
    return parts[0].strip(), parts[1].strip()


class PropertyFileSnitch(Snitch):
    """cassandra-topology.properties: `10.0.0.1=DC1:RAC1`, `default=DC1:r1`.

    A key may be a host or host:port; an endpoint is looked up exactly, then by host, then
    `default`. An endpoint found nowhere with no default is a ConfigurationError."""

    def __init__(self, topology: Mapping[str, tuple[str, str]], default: tuple[str, str] | None = None):
        self._topology = dict(topology)
        self._default = default

    @classmethod
    def from_text(cls, text: str) -> PropertyFileSnitch:
        topology: dict[str, tuple[str, str]] = {}
        default = None
        for key, value in parse_properties(text).items():
            if key == "default":
                default = _dc_rack(value, "default")
            else:
                topology[key.lstrip("/")] = _dc_rack(value, key)
        return cls(topology, default)

    def location(self, ep: str) -> tuple[str, str]:
        found = self._topology.get(ep) or self._topology.get(host_of(ep)) or self._default
        if found is None:
            raise ConfigurationError(
                f"Unknown host {ep} with no default configured; add it (or default=DC:RACK) "
                "to cassandra-topology.properties")
        return found

    def datacenter(self, ep: str) -> str:
        return self.location(ep)[0]

    def rack(self, ep: str) -> str:
        return self.location(ep)[1]


PeerLocations = Mapping[str, tuple[str, str]] | Callable[[str], "tuple[str, str] | None"]


class GossipingPropertyFileSnitch(Snitch):
    """This node's DC and rack come from its own config (cassandra-rackdc.properties: `dc=`,
    `rack=`, optional `dc_suffix=`); every other node's come from gossip (its DC and RACK
    application states), given as a mapping or a callable returning (dc, rack) or None. A peer
    not yet gossiped falls back to `fallback` (a PropertyFileSnitch, as Cassandra does when
    cassandra-topology.properties exists), else UNKNOWN_DC / UNKNOWN_RACK."""

    def __init__(self, self_ep: str, dc: str, rack: str, peers: PeerLocations,
                 fallback: Snitch | None = None):
        self.self_ep = self_ep
        self.dc = dc
        self.rack_name = rack
        self._peers = peers
        self._fallback = fallback

    @classmethod
    def from_text(cls, self_ep: str, rackdc_text: str, peers: PeerLocations,
                  fallback: Snitch | None = None) -> GossipingPropertyFileSnitch:
        props = parse_properties(rackdc_text)
        dc = props.get("dc", UNKNOWN_DC).strip() + props.get("dc_suffix", "").strip()
        return cls(self_ep, dc, props.get("rack", UNKNOWN_RACK).strip(), peers, fallback)

    def location(self, ep: str) -> tuple[str, str]:
        if ep == self.self_ep:
            return self.dc, self.rack_name
        peers = self._peers
        found = peers(ep) if callable(peers) else peers.get(ep)
        if found is not None:
            return found
        if self._fallback is not None:
            return self._fallback.datacenter(ep), self._fallback.rack(ep)
        return UNKNOWN_DC, UNKNOWN_RACK

    def datacenter(self, ep: str) -> str:
        return self.location(ep)[0]

    def rack(self, ep: str) -> str:
        return self.location(ep)[1]


class DynamicSnitch(Snitch):
    """Wraps a snitch and reorders replicas by measured latency (DynamicEndpointSnitch, 4.0).

    Each endpoint keeps its last `window` latencies; its score is the exponentially
    time-decayed median (weight e^(alpha * (t - t_newest) / 1 s), alpha 0.75) divided by the
    largest such median (at least 1 ms). An endpoint without samples scores 0. Sorting keeps the
    subsnitch's order unless, at some position, the subsnitch's choice scores more than
    (1 + badness_threshold) times the best score for that position; then it sorts by score
    (ties in subsnitch order). Threshold 1.0 (4.0's default): only a replica more than twice as
    bad is passed over. Cassandra recomputes scores every 100 ms and resets samples every 600 s;
    here scores are recomputed on demand after a new sample (only the medians of endpoints with
    new samples: one per reply, not all of them per read), and the driver calls `reset()`.
    """

    def __init__(self, subsnitch: Snitch, badness_threshold: float = 1.0, window: int = 100,
                 alpha: float = 0.75):
        self.subsnitch = subsnitch
        self.badness_threshold = badness_threshold
        self.window = window
        self.alpha = alpha
        self._samples: dict[str, list[tuple[float, int]]] = {}
        self._scores: dict[str, float] | None = {}
        self._medians: dict[str, float] = {}     # per endpoint, until its next sample

    def datacenter(self, ep: str) -> str:
        return self.subsnitch.datacenter(ep)

    def rack(self, ep: str) -> str:
        return self.subsnitch.rack(ep)

    def record_latency(self, ep: str, latency_ms: float, now_ms: int = 0) -> None:
        samples = self._samples.setdefault(ep, [])
        samples.append((float(latency_ms), now_ms))
        if len(samples) > self.window:
            del samples[0]
        self._medians.pop(ep, None)
        self._scores = None

    def reset(self) -> None:
        self._samples.clear()
        self._medians.clear()
        self._scores = {}

    def forget(self, ep: str) -> None:
        """Drop one endpoint's samples (it came back up: its old latencies say nothing now)."""
        self._medians.pop(ep, None)
        if self._samples.pop(ep, None) is not None:
            self._scores = None

    def _median(self, samples: Sequence[tuple[float, int]]) -> float:
        newest = max(t for _, t in samples)
        weighted = sorted((lat, math.exp(self.alpha * (t - newest) / 1000.0)) for lat, t in samples)
        half = sum(w for _, w in weighted) / 2
        acc = 0.0
        for lat, w in weighted:
            acc += w
            if acc >= half:
                return lat
        return weighted[-1][0]

    def scores(self) -> dict[str, float]:
        if self._scores is None:
            medians = {}
            for ep, samples in sorted(self._samples.items()):
                m = self._medians.get(ep)
                if m is None:
                    m = self._medians[ep] = self._median(samples)
                medians[ep] = m
            worst = max([1.0, *medians.values()])
            self._scores = {ep: m / worst for ep, m in medians.items()}
        return dict(self._scores)

    def sorted_by_proximity(self, self_ep: str, endpoints: Iterable[str]) -> list[str]:
        ordered = self.subsnitch.sorted_by_proximity(self_ep, endpoints)
        if len(ordered) < 2:
            return ordered
        scores = self.scores()
        by_sub = [scores.get(ep, 0.0) for ep in ordered]
        best = sorted(by_sub)
        if self.badness_threshold and all(
            s <= b * (1.0 + self.badness_threshold) for s, b in zip(by_sub, best)
        ):
            return ordered

        def compare(a: str, b: str) -> int:
            sa, sb = scores.get(a, 0.0), scores.get(b, 0.0)
            if sa == sb:
                return self.subsnitch.compare_endpoints(self_ep, a, b)
            return -1 if sa < sb else 1

        return sorted(ordered, key=functools.cmp_to_key(compare))
