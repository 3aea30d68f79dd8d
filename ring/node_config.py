"""A node's configuration: what node.toml and the simulator set, with Cassandra's option names.

Invariant: `faults` is derived from `canary_mutant` (ring/faults.py) and is the only policy the
seams read; an unknown mutant name is refused at construction.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ring import batchlog
from ring.faults import Faults


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
