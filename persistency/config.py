"""The persistency's cluster configuration in one place, `CassandraConfig`, and the one way to
choose a backend, `open_backend(config)`.

Names are GigaSpaces' (spec 2.1: hosts, port, keyspaceName, readConsistencyLevel,
writeConsistencyLevel, columnFamilyGcGraceSeconds) in Python spelling, plus the driver settings a
CQL cluster needs (username/password for PlainTextAuthProvider, local_dc, protocol_version,
timeouts). `backend` is "cql" (cassandra-driver: dynatable's CQL front end, Apache Cassandra,
ScyllaDB) or "native" (dynatable's own client; `hosts` are then host:port contact points of the
node API). docs/persistency.md#configuration.
"""
from __future__ import annotations

from dataclasses import dataclass

from engine.errors import InvalidRequest
from persistency.backend import check_options

BACKENDS = ("cql", "native")


@dataclass(frozen=True, slots=True)
class CassandraConfig:
    hosts: str | tuple[str, ...]                 # "a,b,c" (GigaSpaces) or a sequence of addresses
    keyspace_name: str                           # must exist: the persistency never creates keyspaces
    port: int | None = None                      # CQL: 9042 when None; native: in each host:port
    read_consistency_level: str = "QUORUM"       # never ANY
    write_consistency_level: str = "QUORUM"
    column_family_gc_grace_seconds: int | None = None
    username: str | None = None                  # with password: PlainTextAuthProvider
    password: str | None = None
    local_dc: str | None = None                  # DCAwareRoundRobinPolicy; None: the first contact's DC
    protocol_version: int | None = None          # None: negotiate (v5 on dynatable and Cassandra 4+)
    connect_timeout_s: float = 10.0
    request_timeout_s: float = 12.0
    max_in_flight: int = 128                     # concurrent requests of one apply / read_rows
    backend: str = "cql"

    def __post_init__(self):
        if not self.host_list():
            raise InvalidRequest(f"hosts must name at least one host, got {self.hosts!r}")
        if not self.keyspace_name:
            raise InvalidRequest("keyspace_name is required (an existing keyspace)")
        if self.port is not None and (not isinstance(self.port, int) or not 0 < self.port < 65536):
            raise InvalidRequest(f"port must be an integer from 1 to 65535, got {self.port!r}")
        if self.backend not in BACKENDS:
            raise InvalidRequest(f"backend must be one of {BACKENDS}, got {self.backend!r}")
        if (self.username is None) != (self.password is None):
            raise InvalidRequest("give both username and password (PlainTextAuthProvider), or neither")
        if not isinstance(self.max_in_flight, int) or self.max_in_flight < 1:
            raise InvalidRequest(f"max_in_flight must be a positive integer, got {self.max_in_flight!r}")
        check_options(self.read_consistency_level, self.write_consistency_level, self.column_family_gc_grace_seconds)

    def host_list(self) -> tuple[str, ...]:
        hosts = self.hosts.split(",") if isinstance(self.hosts, str) else self.hosts
        return tuple(h.strip() for h in hosts if h and h.strip())


def open_backend(config: CassandraConfig):
    """A connected backend.Backend for `config` (the caller closes it)."""
    if config.backend == "native":
        from persistency.native_backend import DynatableClient
        if config.username is not None:
            raise InvalidRequest("the native backend has no authentication; use backend='cql' for username/password")
        hosts = [h if ":" in h or config.port is None else f"{h}:{config.port}" for h in config.host_list()]
        return DynatableClient(hosts, config.keyspace_name, read_consistency=config.read_consistency_level,
                               write_consistency=config.write_consistency_level,
                               gc_grace_seconds=config.column_family_gc_grace_seconds,
                               max_in_flight=config.max_in_flight)
    from persistency.cql_backend import (
        CqlBackend,  # cassandra-driver is needed only here
    )
    return CqlBackend(config)
