"""The CQL backend: `CqlBackend`, the store boundary (backend.Backend) on cassandra-driver.

The same tables as the native backend (backend.py), through CQL only, so it runs on dynatable's
CQL front end and unchanged on Apache Cassandra 4/5 or ScyllaDB (docs/persistency.md#cql-backend):

* prepared statements, cached per (statement, table); token-aware routing
  (TokenAwarePolicy(DCAwareRoundRobinPolicy)); three execution profiles: "read" and "write" at
  the configured levels, "metadata" at METADATA_LEVEL;
* every mutation carries its timestamp (`USING TIMESTAMP ?`), so UPDATE's delete-then-write and
  replayed batches write the very same cells whatever order they arrive in;
* scans page with the driver (`fetch_size` = the page size), by `token(key)` range when asked;
* index queries ask the server's secondary index for `value = ?` only and keep the rows whose
  `column1` is the path (no ALLOW FILTERING, which Cassandra would demand for the pair);
* DDL is `CREATE ... IF NOT EXISTS`, then `control_connection.wait_for_schema_agreement()`.
Driver errors a retry cannot fix (syntax, invalid, unauthorized, configuration) become
engine.errors.InvalidRequest, so the mirror parks instead of retrying; those of the cluster's state
(timeouts, unavailable, overloaded, no host, lost connections) become backend.StoreUnavailable,
which the mirror retries.
"""
from __future__ import annotations

import datetime as dt
import time
from itertools import groupby
from typing import TYPE_CHECKING, Self

from cassandra import ConsistencyLevel, DriverException, ReadFailure
from cassandra import InvalidRequest as DriverInvalidRequest
from cassandra.auth import PlainTextAuthProvider
from cassandra.cluster import (
    EXEC_PROFILE_DEFAULT,
    Cluster,
    ExecutionProfile,
    NoHostAvailable,
)
from cassandra.concurrent import execute_concurrent
from cassandra.connection import ConnectionException
from cassandra.policies import DCAwareRoundRobinPolicy, TokenAwarePolicy
from cassandra.protocol import ConfigurationException, SyntaxException, Unauthorized
from cassandra.query import BatchStatement, BatchType, dict_factory

from engine.errors import InvalidRequest
from engine.schema import check_name
from persistency.backend import (
    DEAD_LETTER_TABLE,
    METADATA_LEVEL,
    METADATA_TABLE,
    VALUE_INDEX,
    Put,
    StoreUnavailable,
    check_options,
)

if TYPE_CHECKING:
    from persistency.config import CassandraConfig

INDEX_NOT_READY_RETRIES = 20     # about 20 s in all
SCHEMA_AGREEMENT_WAIT_S = 10.0   # the driver's max_schema_agreement_wait default
BATCH_STATEMENTS_MAX = 100       # statements in one single-partition batch (batch_size_warn_threshold)
DETERMINISTIC = (DriverInvalidRequest, SyntaxException, Unauthorized, ConfigurationException)
TRANSIENT = (DriverException, NoHostAvailable, ConnectionException, OSError)


def translate(error: BaseException) -> BaseException:
    """A driver error in the project's terms: one a retry cannot fix is an InvalidRequest (the mirror
    parks it), one of the cluster's state a StoreUnavailable (retried); others stay as they are."""
    if isinstance(error, DETERMINISTIC):
        e = InvalidRequest(f"{type(error).__name__}: {error}")
    elif isinstance(error, TRANSIENT):
        e = StoreUnavailable(f"{type(error).__name__}: {error}")
    else:
        return error
    e.__cause__ = error
    return e


def _level(name: str) -> int:
    return getattr(ConsistencyLevel, name)


def _driver_options(config: CassandraConfig) -> dict:
    """Settings of the driver clusters we create. max_schema_agreement_wait=0: the driver does not
    poll for agreement after each DDL (every 0.2 s); _ddl waits itself, then reads the table."""
    options = {"connect_timeout": config.connect_timeout_s, "max_schema_agreement_wait": 0}
    if config.protocol_version is not None:
        options["protocol_version"] = config.protocol_version
    if config.username is not None:
        options["auth_provider"] = PlainTextAuthProvider(config.username, config.password or "")
    return options


def connect(config: CassandraConfig):
    """A connected driver Session for `config`, to share between backends (CqlBackend(config, session));
    the caller shuts its cluster down."""
    return Cluster(list(config.host_list()), port=config.port or 9042, **_driver_options(config)).connect()


class CqlBackend:
    """A backend.Backend on a Cassandra-compatible cluster and an existing keyspace (never created here)."""

    def __init__(self, config: CassandraConfig, session=None):
        """Connect as `config` says; or use `session`, a connected driver Session shared with other
        backends (then its Cluster is the caller's: close() leaves it open)."""
        self.config = config
        read, write = check_options(config.read_consistency_level, config.write_consistency_level,
                                    config.column_family_gc_grace_seconds)
        self.keyspace = config.keyspace_name
        self.read_consistency, self.write_consistency = read, write
        self._prepared: dict[tuple[str, str], object] = {}
        self._closed = False
        self._owned = session is None
        self.profiles = {"read": f"dynatable-{read}", "write": f"dynatable-{write}",
                         "metadata": f"dynatable-{METADATA_LEVEL}"}
        if session is None:
            self.cluster = Cluster(list(config.host_list()), port=config.port or 9042,
                                   execution_profiles={EXEC_PROFILE_DEFAULT: self._profile(read)},
                                   **_driver_options(config))
        else:
            self.cluster = session.cluster
        try:
            self.session = self.cluster.connect() if session is None else session
            for name in set(self.profiles.values()):
                if name not in self.cluster.profile_manager.profiles:
                    self.cluster.add_execution_profile(name, self._profile(name.split("-", 1)[1]))
            if self.keyspace not in self.cluster.metadata.keyspaces:   # created since we connected?
                self._refresh_keyspace()
            if self.keyspace not in self.cluster.metadata.keyspaces:
                raise InvalidRequest(f"Keyspace {self.keyspace} does not exist; create it first (the persistency "
                                     "never creates keyspaces)")
        except BaseException:
            self.close()
            raise

    def _refresh_keyspace(self) -> None:
        """The keyspace's metadata, through the driver's control connection. A node restart can
        leave that connection being re-established for a moment (the refresh then fails with
        "Keyspace metadata was not refreshed"), so a transient failure is retried for up to
        `connect_timeout_s`; then it is a StoreUnavailable."""
        deadline = time.monotonic() + self.config.connect_timeout_s
        while True:
            try:
                self.cluster.refresh_keyspace_metadata(self.keyspace)
                return
            except TRANSIENT as e:
                if time.monotonic() >= deadline:
                    raise translate(e) from e
                time.sleep(0.25)

    def _profile(self, level: str) -> ExecutionProfile:
        return ExecutionProfile(load_balancing_policy=TokenAwarePolicy(DCAwareRoundRobinPolicy(self.config.local_dc)),
                                consistency_level=_level(level), request_timeout=self.config.request_timeout_s,
                                row_factory=dict_factory)

    # -- statements ------------------------------------------------------------------------------

    def _name(self, table: str) -> str:
        return f'"{self.keyspace}"."{table}"'

    def _statement(self, kind: str, table: str, key_column: str = "key"):
        """The prepared statement `kind` on `table` (prepared once per client)."""
        found = self._prepared.get((kind, table))
        if found is None:
            t, k = self._name(table), f'"{key_column}"'
            cql = {
                "put": f"INSERT INTO {t} ({k}, column1, value) VALUES (?, ?, ?) USING TIMESTAMP ?",
                "delete": f"DELETE FROM {t} USING TIMESTAMP ? WHERE {k} = ?",
                "row": f"SELECT column1, value FROM {t} WHERE {k} = ?",
                "scan": f"SELECT {k}, column1, value FROM {t}",
                "range": f"SELECT {k}, column1, value FROM {t} WHERE token({k}) > ? AND token({k}) <= ?",
                "index": f"SELECT {k}, column1 FROM {t} WHERE value = ?",
                "meta_put": f"INSERT INTO {t} (type_name, metadata) VALUES (?, ?)",
                "meta_get": f"SELECT metadata FROM {t} WHERE type_name = ?",
                "meta_all": f"SELECT type_name, metadata FROM {t}",
                "park": f"INSERT INTO {t} (operation_id, type_name, operation_type, operation, error, parked_at) "
                        "VALUES (?, ?, ?, ?, ?, ?)",
                "parked": f"SELECT * FROM {t}",
            }[kind]
            found = self._prepared[(kind, table)] = self._run(lambda: self.session.prepare(cql))
        return found

    @staticmethod
    def _run(call):
        try:
            return call()
        except TRANSIENT as e:
            raise translate(e) from e

    def _execute(self, kind: str, table: str, params=(), profile: str = "read", key_column: str = "key",
                 page_size: int | None = None, paging_state=None):
        stmt = self._statement(kind, table, key_column).bind(params)
        if page_size is not None:
            stmt.fetch_size = page_size
        return self._run(lambda: self.session.execute(stmt, execution_profile=self.profiles[profile],
                                                      paging_state=paging_state))

    def _rows(self, result):
        """Every row of a result, fetching the next pages as it goes (driver errors translated)."""
        yield from result.current_rows
        while result.has_more_pages:
            self._run(result.fetch_next_page)
            yield from result.current_rows

    def _concurrent(self, statements: list, profile: str) -> list:
        """Execute bound statements concurrently (at most max_in_flight); raise the first error."""
        if not statements:
            return []
        results = self._run(lambda: execute_concurrent(
            self.session, [(s, None) for s in statements], concurrency=self.config.max_in_flight,
            raise_on_first_error=False, results_generator=False, execution_profile=self.profiles[profile]))
        out = []
        for ok, result in results:
            if not ok:
                raise translate(result)
            out.append(list(self._rows(result)))
        return out

    # -- tables ----------------------------------------------------------------------------------

    def _ddl(self, cql: str) -> None:
        self._run(lambda: self.session.execute(cql, timeout=max(30.0, self.config.request_timeout_s)))
        self.wait_for_schema_agreement()

    def wait_for_schema_agreement(self) -> bool:
        """Every live node on the same schema version (the driver's wait, at most SCHEMA_AGREEMENT_WAIT_S)."""
        return self._run(lambda: self.cluster.control_connection.wait_for_schema_agreement(
            wait_time=SCHEMA_AGREEMENT_WAIT_S))

    def _columns(self, name: str, refresh: bool = False) -> dict | None:
        """The table's {column: type} from the driver's metadata (kept current by schema events)."""
        if refresh:
            self._run(lambda: self.cluster.refresh_table_metadata(self.keyspace, name))
        table = self.cluster.metadata.keyspaces[self.keyspace].tables.get(name)
        return None if table is None else {c.name: c.cql_type for c in table.columns.values()}

    def ensure_table(self, name: str, key_column: str, key_type: str) -> None:
        """Create a type's table unless it exists (idempotent; safe when endpoints race)."""
        check_name("table", name)
        self._ensure(name, {key_column: key_type, "column1": "text", "value": "blob"}, f'"{key_column}", column1')

    def ensure_metadata_table(self) -> None:
        self._ensure(METADATA_TABLE, {"type_name": "text", "metadata": "blob"}, "type_name")

    def ensure_dead_letter_table(self) -> None:
        self._ensure(DEAD_LETTER_TABLE, {"operation_id": "text", "type_name": "text", "operation_type": "text",
                                         "operation": "blob", "error": "text", "parked_at": "timestamp"},
                     "operation_id")

    def _ensure(self, name: str, columns: dict, primary_key: str) -> None:
        have = self._columns(name)
        if have is None:
            body = ", ".join(f'"{c}" {t}' for c, t in columns.items())
            grace = self.config.column_family_gc_grace_seconds
            options = f" WITH gc_grace_seconds = {grace}" if grace is not None else ""
            self._ddl(f"CREATE TABLE IF NOT EXISTS {self._name(name)} ({body}, PRIMARY KEY ({primary_key})){options}")
            have = self._columns(name, refresh=True)
        if have != columns:
            raise InvalidRequest(f"table {self.keyspace}.{name} exists with columns {have}, not {columns}: "
                                 "another type or application uses that name; configure a name converter")

    def create_index(self, table: str) -> None:
        """The secondary index on a type table's `value` column (one per table; idempotent)."""
        index = VALUE_INDEX.format(table=table)
        self._ddl(f'CREATE INDEX IF NOT EXISTS "{index}" ON {self._name(table)} (value)')

    # -- metadata --------------------------------------------------------------------------------

    def write_metadata(self, type_name: str, data: bytes) -> None:
        self._execute("meta_put", METADATA_TABLE, (type_name, data), "metadata")

    def read_metadata(self, type_name: str) -> bytes | None:
        rows = list(self._rows(self._execute("meta_get", METADATA_TABLE, (type_name,), "metadata")))
        return rows[0]["metadata"] if rows else None

    def read_all_metadata(self) -> list[tuple[str, bytes]]:
        rows = self._rows(self._execute("meta_all", METADATA_TABLE, (), "metadata", page_size=1000))
        return [(r["type_name"], r["metadata"]) for r in rows if r["metadata"] is not None]

    # -- data ------------------------------------------------------------------------------------

    def apply(self, mutations: list) -> None:
        """One UNLOGGED BATCH per row (a single partition: one mutation on its replicas, each
        statement with its own timestamp), the rows concurrently."""
        rows: dict[tuple, list] = {}
        for m in mutations:
            if isinstance(m, Put):
                stmt = self._statement("put", m.table, m.key_column)
                bound = stmt.bind((m.key, m.column, m.value, m.timestamp))
            else:
                stmt = self._statement("delete", m.table, m.key_column)
                bound = stmt.bind((m.timestamp, m.key))
            rows.setdefault((m.table, bound.routing_key), []).append(bound)
        statements = []
        for bounds in rows.values():
            for i in range(0, len(bounds), BATCH_STATEMENTS_MAX):
                chunk = bounds[i:i + BATCH_STATEMENTS_MAX]
                if len(chunk) == 1:
                    statements.append(chunk[0])
                    continue
                batch = BatchStatement(batch_type=BatchType.UNLOGGED)
                for b in chunk:
                    batch.add(b)
                statements.append(batch)
        self._concurrent(statements, "write")

    def read_row(self, table: str, key_column: str, key) -> list[tuple[str, bytes]]:
        return self.read_rows(table, key_column, [key])[0]

    def read_rows(self, table: str, key_column: str, keys: list) -> list[list[tuple[str, bytes]]]:
        """Each key's columns [(name, value)] in name order ([] if the row is absent), in `keys` order."""
        stmt = self._statement("row", table, key_column)
        results = self._concurrent([stmt.bind((k,)) for k in keys], "read")
        return [[(r["column1"], r["value"]) for r in rows if r["value"] is not None] for rows in results]

    def scan_rows(self, table: str, key_column: str, page_size: int, token_range: tuple[int, int] | None = None):
        """Every row (or those whose token is in (start, end]) as (key, [(name, value)]) in token
        order, one page of cells in memory at a time (the driver fetches the next page on demand)."""
        if token_range is None:
            rows = self._rows(self._execute("scan", table, (), key_column=key_column, page_size=page_size))
        else:
            rows = self._rows(self._execute("range", table, token_range, key_column=key_column, page_size=page_size))
        cells = ((r[key_column], r["column1"], r["value"]) for r in rows if r["value"] is not None)
        for key, group in groupby(cells, key=lambda c: c[0]):
            yield key, [(c[1], c[2]) for c in group]

    def index_keys(self, table: str, key_column: str, column: str, value: bytes, page_size: int):
        """Row keys whose column `column` holds `value`, from the server's secondary index, page by page."""
        state = None
        while True:
            for attempt in range(INDEX_NOT_READY_RETRIES + 1):
                try:
                    page = self._execute("index", table, (value,), key_column=key_column, page_size=page_size,
                                         paging_state=state)
                    break
                except (StoreUnavailable, InvalidRequest) as e:   # just created: every node builds its index
                    if attempt == INDEX_NOT_READY_RETRIES or "not ready" not in str(e).lower() \
                            and not isinstance(e.__cause__, ReadFailure):
                        raise
                    time.sleep(0.1 * (attempt + 1))
            keys = [r[key_column] for r in page.current_rows if r["column1"] == column]
            yield list(dict.fromkeys(keys))
            if (state := page.paging_state) is None:
                return

    # -- dead letters ----------------------------------------------------------------------------

    def park(self, operation_id: str, type_name: str, operation_type: str, operation: bytes, error: str) -> None:
        now = dt.datetime.now(dt.UTC)
        self._execute("park", DEAD_LETTER_TABLE, (operation_id, type_name, operation_type, operation, error[:4000],
                                                  now), "write")

    def dead_letters(self) -> list[dict]:
        rows = self._rows(self._execute("parked", DEAD_LETTER_TABLE, (), page_size=1000))
        return [{**r, "parked_at": _millis(r["parked_at"])} for r in rows]

    # -- life ------------------------------------------------------------------------------------

    def close(self) -> None:
        """Idempotent. The endpoint and the data source never close a client they were given."""
        if self._closed:
            return
        self._closed = True
        if self._owned:
            self.cluster.shutdown()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _millis(value) -> int | None:
    """A timestamp column as epoch milliseconds (what the native backend returns)."""
    if value is None or isinstance(value, int):
        return value
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return int(value.timestamp() * 1000)
