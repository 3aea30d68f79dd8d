"""Gossip state: what each node knows about each endpoint, and how two views are merged.

An EndpointState is a HeartbeatState(generation, version) plus application states, each a
VersionedValue(value, version). The generation is the owner's start time in epoch seconds; every
version (the heartbeat's and each application state's) comes from one per-process counter that
starts at 1 and only grows, so within a generation a higher version is newer.

Rules (Cassandra's Gossiper, 4.0; docs/ring.md#gossip-state):

* `merge(local, remote)`: a higher generation wins wholesale; the same generation merges per key,
  the higher version winning (on a tie, the greater value, for determinism); the heartbeat with
  the higher version wins. It is a lattice join: commutative, associative, idempotent. One rule
  is not: a remote generation more than a year ahead (of `now_s` when given, else of the local
  generation) is rejected as corrupt, and the local state kept.
* `examine` is Cassandra's examineGossiper: the receiver of a SYN compares digests and answers
  what to request and what to send (the ACK); `answer_requests` builds the ACK2.

Pure: frozen values and functions only. `to_wire`/`from_wire` use plain lists, ints and strs for
msgpack; never pickle.
"""
from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from ring.errors import ProtocolError

MAX_GENERATION_DIFFERENCE = 86400 * 365  # seconds: a generation further ahead is corrupt
EMPTY_VERSION = -1  # "send everything": every version is greater


class ApplicationState(enum.StrEnum):
    """Names of gossiped application states (Cassandra's, minus the deprecated pre-4.0 ones).
    On the wire as these strings: never rename. Unknown names from peers are kept as is."""

    STATUS = "STATUS"
    LOAD = "LOAD"
    SCHEMA = "SCHEMA"
    DC = "DC"
    RACK = "RACK"
    RELEASE_VERSION = "RELEASE_VERSION"
    HOST_ID = "HOST_ID"
    TOKENS = "TOKENS"
    RPC_ADDRESS = "RPC_ADDRESS"
    RPC_READY = "RPC_READY"
    NET_VERSION = "NET_VERSION"
    SEVERITY = "SEVERITY"
    INTERNAL_ADDRESS_AND_PORT = "INTERNAL_ADDRESS_AND_PORT"
    NATIVE_ADDRESS_AND_PORT = "NATIVE_ADDRESS_AND_PORT"  # "host:port" of the CQL server (system.peers)
    REMOVAL_COORDINATOR = "REMOVAL_COORDINATOR"


class Status(enum.StrEnum):
    """The first field of a STATUS value ("NORMAL,<token>" style), Cassandra's spelling."""

    BOOT = "BOOT"
    BOOT_REPLACE = "BOOT_REPLACE"
    NORMAL = "NORMAL"
    LEAVING = "LEAVING"
    LEFT = "LEFT"
    MOVING = "MOVING"
    REMOVING = "removing"
    REMOVED = "removed"
    HIBERNATE = "hibernate"
    SHUTDOWN = "shutdown"


DEAD_STATES = frozenset({Status.REMOVING, Status.REMOVED, Status.LEFT, Status.HIBERNATE})


def status_value(status: Status, *fields: object) -> str:
    return ",".join([status.value, *(str(f) for f in fields)])


def parse_status(value: str) -> tuple[str, list[str]]:
    """ "LEFT,123,1700000000" -> ("LEFT", ["123", "1700000000"])."""
    head, *rest = value.split(",")
    return head, rest


NATIVE_TRANSPORT_PORT = 9042  # CQL's port when a node does not gossip NATIVE_ADDRESS_AND_PORT


def endpoint_host(endpoint: str) -> str:
    """ "10.0.0.1:9100" -> "10.0.0.1"; "[::1]:9100" -> "::1"."""
    host = endpoint.rsplit(":", 1)[0] if endpoint.count(":") == 1 or endpoint.startswith("[") else endpoint
    return host[1:-1] if host.startswith("[") and host.endswith("]") else host


def endpoint_port(endpoint: str, default: int) -> int:
    """ "10.0.0.1:9100" -> 9100; an endpoint without a port -> `default`."""
    if endpoint.startswith("[") and "]:" in endpoint or not endpoint.startswith("[") and endpoint.count(":") == 1:
        tail = endpoint.rsplit(":", 1)[1]
        if tail.isdigit():
            return int(tail)
    return default


def tokens_value(tokens: Iterable[int]) -> str:
    return ";".join(str(t) for t in sorted(tokens))


def parse_tokens(value: str) -> list[int]:
    try:
        return [int(t) for t in value.split(";") if t]
    except ValueError:
        raise ProtocolError(f"TOKENS value is not a list of integers: {value[:80]!r}") from None


@dataclass(frozen=True, slots=True)
class HeartbeatState:
    generation: int
    version: int


@dataclass(frozen=True, slots=True)
class VersionedValue:
    value: str
    version: int


@dataclass(frozen=True, slots=True)
class EndpointState:
    heartbeat: HeartbeatState
    app_states: Mapping[str, VersionedValue] = field(default_factory=dict)

    def __post_init__(self) -> None:
        frozen = MappingProxyType(dict(sorted(self.app_states.items())))
        object.__setattr__(self, "app_states", frozen)

    def __hash__(self) -> int:
        return hash((self.heartbeat, tuple(self.app_states.items())))

    @property
    def generation(self) -> int:
        return self.heartbeat.generation

    @property
    def max_version(self) -> int:
        """The largest version in the state (Cassandra's getMaxEndpointStateVersion)."""
        return max([self.heartbeat.version, *(v.version for v in self.app_states.values())])

    def get(self, key: str) -> str | None:
        vv = self.app_states.get(key)
        return None if vv is None else vv.value

    def with_heartbeat(self, heartbeat: HeartbeatState) -> EndpointState:
        return EndpointState(heartbeat, self.app_states)

    def with_app_state(self, key: str, value: str, version: int) -> EndpointState:
        return EndpointState(self.heartbeat, {**self.app_states, key: VersionedValue(value, version)})

    def to_wire(self) -> list:
        """[generation, heartbeat_version, [[key, value, version], ...]] (keys sorted)."""
        hb = self.heartbeat
        return [hb.generation, hb.version, [[k, v.value, v.version] for k, v in self.app_states.items()]]

    @classmethod
    def from_wire(cls, obj: object) -> EndpointState:
        if not (isinstance(obj, (list, tuple)) and len(obj) == 3):
            raise ProtocolError("EndpointState must be [generation, version, app_states]")
        gen, version, states = obj
        _check_int(gen, "heartbeat generation")
        _check_int(version, "heartbeat version")
        if not isinstance(states, (list, tuple)):
            raise ProtocolError("EndpointState app_states must be a list")
        app: dict[str, VersionedValue] = {}
        for item in states:
            if not (isinstance(item, (list, tuple)) and len(item) == 3):
                raise ProtocolError("an application state must be [key, value, version]")
            key, value, v = item
            if not isinstance(key, str) or not isinstance(value, str):
                raise ProtocolError("application state key and value must be strings")
            _check_int(v, f"version of {key}")
            app[key] = VersionedValue(value, v)
        return cls(HeartbeatState(gen, version), app)


def _check_int(x: object, what: str) -> None:
    if type(x) is not int:
        raise ProtocolError(f"{what} must be an int, got {type(x).__name__}")


# --- merge ------------------------------------------------------------------------------------


def merge(local: EndpointState | None, remote: EndpointState, *, now_s: int | None = None,
          by_version_only: bool = False) -> EndpointState:
    """The state a node keeps after learning `remote` (see the module docstring).
    `by_version_only` is the canary `Faults.gossip_by_version_only` (ring/faults.py)."""
    if local is None:
        return remote
    lg, rg = local.generation, remote.generation
    limit = (now_s if now_s is not None else lg) + MAX_GENERATION_DIFFERENCE
    if lg != 0 and rg > limit:
        return local  # an unbelievable generation: some peer's memory is corrupt
    if rg != lg and by_version_only:  # canary: an older generation with a higher version wins
        return remote if remote.heartbeat.version > local.heartbeat.version else local
    if rg != lg:
        return remote if rg > lg else local
    heartbeat = max(local.heartbeat, remote.heartbeat, key=lambda h: h.version)
    states = dict(local.app_states)
    for key, theirs in remote.app_states.items():
        ours = states.get(key)
        if ours is None or (theirs.version, theirs.value) > (ours.version, ours.value):
            states[key] = theirs
    if heartbeat == local.heartbeat and states == local.app_states:
        return local
    return EndpointState(heartbeat, states)


def digest(state: EndpointState) -> tuple[int, int]:
    """(generation, max version): what a GossipDigest says about one endpoint."""
    return state.generation, state.max_version


Digest = tuple[str, int, int]  # (endpoint, generation, max_version)


def digests(states: Mapping[str, EndpointState]) -> list[Digest]:
    """A SYN's digest list, sorted by endpoint (the gossip driver may shuffle it)."""
    return [(ep, *digest(states[ep])) for ep in sorted(states)]


def states_newer_than(state: EndpointState, version: int) -> EndpointState | None:
    """The part of `state` with versions > `version`, or None if there is none (Cassandra's
    getStateForVersionBiggerThan). When any application state qualifies, the heartbeat is sent
    too, even if older: the receiver's merge throws it away if redundant."""
    newer = {k: v for k, v in state.app_states.items() if v.version > version}
    if not newer and state.heartbeat.version <= version:
        return None
    return EndpointState(state.heartbeat, newer)


def examine(
    local_states: Mapping[str, EndpointState], remote_digests: Iterable[Digest]
) -> tuple[list[Digest], dict[str, EndpointState]]:
    """Compare a SYN's digests with our states (Cassandra's examineGossiper). Returns the ACK:
    (requests, states_to_send). Per endpoint in the SYN:

    * unknown here, or the remote generation is newer: request all, as (ep, remote gen, 0);
    * the remote generation is older: send our whole state;
    * same generation: request versions above our max if the remote max is higher, or send
      our states above the remote max if ours is higher; nothing if equal.

    Endpoints we know that the SYN does not mention are not sent: they travel when we SYN.
    (Like Cassandra, "request all" asks for versions > 0; versions start at 1.)
    """
    requests: list[Digest] = []
    to_send: dict[str, EndpointState] = {}
    for ep, remote_gen, remote_max in remote_digests:
        local = local_states.get(ep)
        if local is None:
            requests.append((ep, remote_gen, 0))
            continue
        local_gen, local_max = digest(local)
        if remote_gen > local_gen:
            requests.append((ep, remote_gen, 0))
        elif remote_gen < local_gen:
            delta = states_newer_than(local, EMPTY_VERSION)
            assert delta is not None
            to_send[ep] = delta
        elif remote_max > local_max:
            requests.append((ep, remote_gen, local_max))
        elif remote_max < local_max:
            delta = states_newer_than(local, remote_max)
            if delta is not None:
                to_send[ep] = delta
    return requests, to_send


def answer_requests(
    local_states: Mapping[str, EndpointState], requests: Iterable[Digest]
) -> dict[str, EndpointState]:
    """The ACK2: for each requested (ep, gen, version), our states of ep newer than version."""
    out: dict[str, EndpointState] = {}
    for ep, _gen, version in requests:
        local = local_states.get(ep)
        if local is not None:
            delta = states_newer_than(local, version)
            if delta is not None:
                out[ep] = delta
    return out


def apply_states(
    local_states: Mapping[str, EndpointState],
    remote_states: Mapping[str, EndpointState],
    *,
    now_s: int | None = None,
    by_version_only: bool = False,
) -> tuple[dict[str, EndpointState], list[str]]:
    """Merge received states into ours. Returns (the new map, the endpoints whose state changed,
    sorted); the input map is not modified."""
    merged = dict(local_states)
    changed = []
    for ep in sorted(remote_states):
        before = merged.get(ep)
        after = merge(before, remote_states[ep], now_s=now_s, by_version_only=by_version_only)
        if after is not before:
            merged[ep] = after
            changed.append(ep)
    return merged, changed


def digests_to_wire(ds: Iterable[Digest]) -> list[list]:
    return [[ep, gen, version] for ep, gen, version in ds]


def digests_from_wire(obj: object) -> list[Digest]:
    if not isinstance(obj, (list, tuple)):
        raise ProtocolError("gossip digests must be a list")
    out = []
    for item in obj:
        if not (isinstance(item, (list, tuple)) and len(item) == 3 and isinstance(item[0], str)):
            raise ProtocolError("a gossip digest must be [endpoint, generation, max_version]")
        _check_int(item[1], "digest generation")
        _check_int(item[2], "digest max_version")
        out.append((item[0], item[1], item[2]))
    return out
