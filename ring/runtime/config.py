"""A node's settings: cassandra.yaml's keys (where Cassandra has one), read from a TOML file.

Every key has a default; a file names only what it changes. An unknown key or a value of the
wrong type is a ConfigurationError naming the key. A relative `data_directory` is resolved
against the config file's directory. `dynatable node --print-default-config` prints
`dump_default()`: every key, its default and a one-line comment, as valid TOML.
"""
from __future__ import annotations

import dataclasses
import difflib
import json
import os
import tomllib
from dataclasses import dataclass, field

from ring.errors import ConfigurationError

MiB = 1024 * 1024
EVENT_LOOPS = ("auto", "uvloop", "asyncio")


def _key(default, comment: str, **kw):
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata={"comment": comment, **kw})
    return field(default=default, metadata={"comment": comment, **kw})


@dataclass
class NodeSettings:
    cluster_name: str = _key("dynatable", "nodes with another cluster_name are refused")
    listen_address: str = _key("127.0.0.1", "address to bind and to announce to peers")
    port: int = _key(9100, "one TCP port for internode and client traffic")
    native_transport_port: int = _key(9042, "CQL native protocol port, bound to listen_address")
    metrics_port: int = _key(0, "Prometheus /metrics on this port; 0 = off")
    data_directory: str = _key("data", "store root (data/, commitlog/, schema.db) and host_id")
    seeds: list = _key([], "endpoints (host:port) contacted first by gossip")
    datacenter: str = _key("datacenter1", "this node's datacenter")
    rack: str = _key("rack1", "this node's rack")
    num_tokens: int = _key(16, "vnodes per node")
    commitlog_sync: str = _key("periodic", "periodic | batch | group")
    commitlog_sync_period_ms: int = _key(10_000, "fsync interval in periodic mode")
    commitlog_segment_size_bytes: int = _key(32 * MiB, "commit log segment size")
    commitlog_ignore_replay_errors: bool = _key(
        False, "on a corrupt synced commit-log section: skip it (logged, segment kept in commitlog/corrupt/) "
        "instead of refusing to start; also env DYNATABLE_COMMITLOG_IGNORE_REPLAY_ERRORS=true")
    memtable_flush_threshold_bytes: int = _key(64 * MiB, "flush memtables past this many bytes")
    concurrent_compactors: int = _key(2, "compaction threads")
    flush_worker_min_bytes: int = _key(
        16 * MiB, "background flushes of memtables this big are written by a child process (the flush worker, "
        "on another core); 0 = never")
    tombstone_warn_threshold: int = _key(1000, "log a warning past this many tombstones in one read")
    tombstone_failure_threshold: int = _key(100_000, "abort a read past this many tombstones")
    write_request_timeout_ms: int = _key(2000, "coordinator timeout for writes")
    read_request_timeout_ms: int = _key(5000, "coordinator timeout for single-partition reads")
    range_request_timeout_ms: int = _key(10_000, "coordinator timeout for scans")
    phi_convict_threshold: float = _key(8.0, "failure detector: convict a peer past this phi")
    gossip_interval_ms: int = _key(1000, "one gossip round every this many ms")
    max_frame_bytes: int = _key(16 * MiB, "refuse (and close) connections sending bigger frames")
    max_pending_requests: int = _key(4096, "client requests in flight before OverloadedError")
    hinted_handoff_enabled: bool = _key(True, "store hints for down or timed-out replicas")
    max_hint_window_ms: int = _key(3 * 3600 * 1000, "no new hints for a node down longer than this")
    max_hints_in_flight: int = _key(1024, "hints being delivered at once before OverloadedError")
    hints_per_tick: int = _key(64, "hint delivery throttle: hints per target per 100 ms tick")
    auto_bootstrap: bool = _key(True, "a new non-seed node streams its ranges before it becomes NORMAL")
    ring_delay_ms: int = _key(5000, "wait for gossip to settle around a join or a leave")
    peer_queue_frames_max: int = _key(10_000, "frames queued per unreachable peer before dropping")
    cluster_secret: str = _key("", "shared secret for HMAC connection auth; empty = no auth")
    log_level: str = _key("INFO", "DEBUG | INFO | WARNING | ERROR")
    gc_young_threshold: int = _key(
        5_000, "after startup: gc.freeze() and this generation-0 threshold (Python's is 700); 0 = leave the "
        "collector as Python sets it")
    gil_switch_interval_ms: float = _key(
        0.5, "sys.setswitchinterval of the node process: how long the event loop waits for the GIL while a flush or "
        "compaction thread runs (Python's default is 5 ms; docs/operations.md)")
    event_trace: bool = _key(False, "benchmarks only: write loop stalls, GC pauses, flushes, compactions and commit-log "
                             "rolls to <data_directory>/events.jsonl (ring/runtime/event_trace.py)")
    gc_log_threshold_ms: int = _key(200, "log a garbage-collector pause of at least this many ms at INFO")
    native_transport_max_concurrent_connections: int = _key(
        1024, "CQL connections at once; more are answered Overloaded and closed")
    native_transport_max_requests_per_connection: int = _key(
        2048, "CQL statements in flight on one connection before Overloaded")
    native_transport_max_concurrent_requests: int = _key(
        4096, "CQL statements in flight on the node before Overloaded")
    authenticator: str = _key(
        "AllowAllAuthenticator", "CQL logins: AllowAllAuthenticator (none) | PasswordAuthenticator (roles in "
        "system_auth.roles; default superuser cassandra/cassandra, change it)")
    superuser_setup_delay_ms: int = _key(
        10_000, "PasswordAuthenticator: wait this long after start before creating the default superuser")
    batchlog_replay_interval_ms: int = _key(10_000, "list this node's batchlog and replay entries older than "
                                             "2 x write_request_timeout_ms this often")
    event_loop: str = _key("auto", "auto | uvloop | asyncio: the node's event loop (auto = uvloop where importable, "
                           "the optional `fast` extra)")
    canary_mutant: str = _key("", "test-only: a fault of ring/faults.py to inject; never set in production")

    def endpoint(self) -> str:
        host = self.listen_address
        return f"[{host}]:{self.port}" if ":" in host else f"{host}:{self.port}"

    def store_options(self) -> dict:
        """Options for engine.store.Store.open."""
        return {"commitlog_sync": self.commitlog_sync,
                "commitlog_sync_period_ms": self.commitlog_sync_period_ms,
                "commitlog_segment_size_bytes": self.commitlog_segment_size_bytes,
                # None leaves the choice to the environment variable (Cassandra's -D property)
                "commitlog_ignore_replay_errors": True if self.commitlog_ignore_replay_errors else None,
                "memtable_flush_threshold_bytes": self.memtable_flush_threshold_bytes,
                "concurrent_compactors": self.concurrent_compactors,
                "flush_worker_min_bytes": self.flush_worker_min_bytes or None,
                "tombstone_warn_threshold": self.tombstone_warn_threshold,
                "tombstone_failure_threshold": self.tombstone_failure_threshold}


_FIELDS = {f.name: f for f in dataclasses.fields(NodeSettings)}


def _check_type(name: str, value):
    default = NodeSettings.__dataclass_fields__[name]
    expected = default.type
    ok = {"str": isinstance(value, str), "bool": isinstance(value, bool),
          "int": isinstance(value, int) and not isinstance(value, bool),
          "float": isinstance(value, (int, float)) and not isinstance(value, bool),
          "list": isinstance(value, list) and all(isinstance(v, str) for v in value)}[expected]
    if not ok:
        want = "a list of strings" if expected == "list" else f"a {expected}"
        raise ConfigurationError(f"config key '{name}' must be {want}, got {value!r}")
    return float(value) if expected == "float" else value


def from_dict(values: dict, base_dir: str | None = None) -> NodeSettings:
    for name in values:
        if name not in _FIELDS:
            close = difflib.get_close_matches(name, _FIELDS, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise ConfigurationError(f"unknown config key '{name}'{hint}")
    settings = NodeSettings(**{k: _check_type(k, v) for k, v in values.items()})
    if base_dir is not None and not os.path.isabs(settings.data_directory):
        settings.data_directory = os.path.normpath(os.path.join(base_dir, settings.data_directory))
    _validate(settings)
    return settings


def _validate(s: NodeSettings) -> None:
    for name in ("native_transport_max_concurrent_connections", "native_transport_max_requests_per_connection",
                 "native_transport_max_concurrent_requests"):
        if getattr(s, name) <= 0:
            raise ConfigurationError(f"config key '{name}' must be positive, got {getattr(s, name)}")
    from ring.cql.auth import authenticator_name
    authenticator_name(s.authenticator)  # validates
    if s.superuser_setup_delay_ms < 0:
        raise ConfigurationError(f"config key 'superuser_setup_delay_ms' must be >= 0, got {s.superuser_setup_delay_ms}")
    if not 0 < s.gil_switch_interval_ms <= 1000:
        raise ConfigurationError(f"gil_switch_interval_ms must be in (0, 1000], got {s.gil_switch_interval_ms}")
    if s.event_loop not in EVENT_LOOPS:
        raise ConfigurationError(f"event_loop must be one of {', '.join(EVENT_LOOPS)}, not {s.event_loop!r}")
    if s.commitlog_sync not in ("periodic", "batch", "group"):
        raise ConfigurationError(f"commitlog_sync must be periodic, batch or group, not {s.commitlog_sync!r}")
    for name in ("port", "num_tokens", "max_frame_bytes", "max_pending_requests", "peer_queue_frames_max",
                 "batchlog_replay_interval_ms"):
        if getattr(s, name) <= 0:
            raise ConfigurationError(f"config key '{name}' must be positive, got {getattr(s, name)}")
    if not 0 <= s.metrics_port < 65536 or not 0 < s.port < 65536 or not 0 < s.native_transport_port < 65536:
        raise ConfigurationError("port, native_transport_port and metrics_port must be in 1..65535 "
                                 "(metrics_port 0 = off)")


def event_loop_runner(choice: str = "auto"):
    """(name, run) for `event_loop`: run(coro) runs it to completion on a new loop of that kind.
    auto = uvloop if importable, else asyncio; "uvloop" without uvloop installed is a
    ConfigurationError (pip install -e '.[fast]')."""
    import asyncio
    if choice not in EVENT_LOOPS:
        raise ConfigurationError(f"event_loop must be one of {', '.join(EVENT_LOOPS)}, not {choice!r}")
    if choice != "asyncio":
        try:
            import uvloop
        except ImportError:
            if choice == "uvloop":
                raise ConfigurationError("event_loop = \"uvloop\" but uvloop is not installed "
                                         "(pip install -e '.[fast]'), or set event_loop = \"auto\"") from None
        else:
            def run(coro):
                with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                    return runner.run(coro)
            return "uvloop", run
    return "asyncio", asyncio.run


def load(path: str) -> NodeSettings:
    try:
        with open(path, "rb") as f:
            values = tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise ConfigurationError(f"{path} is not valid TOML: {e}") from None
    except OSError as e:
        raise ConfigurationError(f"cannot read config {path}: {e}") from None
    return from_dict(values, os.path.dirname(os.path.abspath(path)))


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return json.dumps(value)  # a JSON string or list of strings is valid TOML


def dump_default() -> str:
    lines = ["# dynatable node configuration (TOML). Every key is optional; these are the defaults."]
    defaults = NodeSettings()
    for f in dataclasses.fields(NodeSettings):
        lines.append(f"# {f.metadata['comment']}")
        lines.append(f"{f.name} = {_toml_value(getattr(defaults, f.name))}")
    return "\n".join(lines) + "\n"


def dump(settings: NodeSettings) -> str:
    """`settings` as TOML (the cluster manager writes node configs with this)."""
    return "".join(f"{f.name} = {_toml_value(getattr(settings, f.name))}\n"
                   for f in dataclasses.fields(NodeSettings))


def to_node_config(settings: NodeSettings, host_id: str):
    """The sans-IO node's config. Keys NodeConfig does not have are left out."""
    from ring.node import NodeConfig
    known = {f.name for f in dataclasses.fields(NodeConfig)}
    values = {"endpoint": settings.endpoint(), "host_id": host_id}
    values.update({k: getattr(settings, k) for k in _FIELDS if k in known and k not in values})
    return NodeConfig(**values)
