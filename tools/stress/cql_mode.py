"""`dynatable stress ... --mode cql`: the same workloads over CQL, through cassandra-driver.

So one command measures dynatable and any Cassandra-compatible cluster (Apache Cassandra,
ScyllaDB) alike. `CqlCluster` / `CqlSession` offer the few calls the workloads make of
ring.client's AsyncCluster / session (connect, shutdown; insert, get, scan, create_keyspace,
create_table, execute("status"), cluster.metadata.keyspaces / tables), each as CQL:

- every data operation is a **prepared** statement (prepared once per column set), bound and run
  with the driver's default TokenAwarePolicy(DCAwareRoundRobinPolicy()), so a replica coordinates;
- insert = `INSERT INTO ks.t ("c", ...) VALUES (?, ...)`; get = `SELECT ... WHERE pk = ?`;
  scan = `SELECT ... WHERE token(pk) > ? LIMIT ?`; names are always quoted (standard1's columns
  are "C0".."C4", as cassandra-stress writes them);
- "status" reads system.local and system.peers: one row per node with its schema_version and the
  driver's view of it being up, which is what schema agreement needs;
- driver futures complete on the driver's threads and are handed to the asyncio loop; a driver
  InvalidRequest / SyntaxException / Unauthorized becomes engine.errors.InvalidRequest (it ends
  the run: retrying cannot help); NoHostAvailable becomes ring.client's (the one-line CLI error);
  every other failure keeps the driver's class name in the error counts.

Contact points: `-node HOST[:PORT]` (default CQL port 9042), else the current local cluster's CQL
endpoints. Credentials: `-mode cql user=U password=P` (PlainTextAuthProvider).
"""
from __future__ import annotations

import asyncio

from engine.errors import InvalidRequest
from engine.schema import make_table

CQL_PORT_DEFAULT = 9042
CONNECT_TIMEOUT_S = 10


def require_driver() -> None:
    try:
        import cassandra.cluster  # noqa: F401
    except ImportError:
        raise InvalidRequest("--mode cql needs cassandra-driver: pip install 'cassandra-driver>=3.28,<4' "
                             "(it comes with dynatable[test])") from None


def cluster_for(s, contact_points: list[str]) -> "CqlCluster":
    """The CQL cluster for `contact_points` ("host:port", as `cql_contact` made them)."""
    hosts = [c.rsplit(":", 1)[0] for c in contact_points]
    return CqlCluster(hosts, int(contact_points[0].rsplit(":", 1)[1]), user=s.user, password=s.password,
                      timeout_s=s.timeout_s)


def cql_contact(s) -> tuple[list[str], int]:
    """(hosts, port) for CQL mode: -node as written (port 9042 unless given), else the local cluster's."""
    if s.node_words:
        hosts, ports = [], set()
        for part in (p.strip() for w in s.node_words for p in w.split(",") if p.strip()):
            host, sep, port = part.rpartition(":")
            host, port = (host, int(port)) if sep else (part, CQL_PORT_DEFAULT)
            hosts.append(host.strip("[]"))
            ports.add(port)
        if len(ports) > 1:
            raise InvalidRequest(f"-node in CQL mode: one CQL port for every node (cassandra-driver's rule), "
                                 f"got {sorted(ports)}")
        return hosts, ports.pop()
    from tools.cluster import ClusterError, LocalCluster
    current = LocalCluster.current_name()
    if current is not None:
        try:
            c = LocalCluster.load(current)
            endpoints = [nh.cql_endpoint for nh in c.nodes if nh.cql_endpoint]
            if endpoints:
                return [e.rsplit(":", 1)[0] for e in endpoints], int(endpoints[0].rsplit(":", 1)[1])
        except ClusterError:
            pass
    return ["127.0.0.1"], CQL_PORT_DEFAULT


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class _Metadata:
    """`keyspaces` (names) and `tables[(ks, t)]` (engine Tables, for keys and tokens), from the driver's."""

    def __init__(self, driver_cluster):
        self._meta = driver_cluster.metadata

    @property
    def keyspaces(self):
        return set(self._meta.keyspaces)

    @property
    def tables(self) -> dict:
        out = {}
        for ks_name, ks in list(self._meta.keyspaces.items()):
            for name, t in list(ks.tables.items()):
                columns = {c.name: c.cql_type for c in t.columns.values()}
                pk = tuple(c.name for c in t.partition_key)
                ck = tuple(c.name for c in t.clustering_key)
                try:
                    key = ((pk,) + ck) if ck or len(pk) > 1 else pk[0]
                    out[(ks_name, name)] = make_table(ks_name, name, columns, key)
                except InvalidRequest:
                    continue        # a type the engine does not model: not a stress table
        return out


class CqlCluster:
    def __init__(self, hosts: list[str], port: int, *, user: str | None = None, password: str | None = None,
                 timeout_s: float = 12.0):
        from cassandra.auth import PlainTextAuthProvider
        from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
        from cassandra.policies import DCAwareRoundRobinPolicy, TokenAwarePolicy
        profile = ExecutionProfile(load_balancing_policy=TokenAwarePolicy(DCAwareRoundRobinPolicy()),
                                   request_timeout=timeout_s)
        self.hosts, self.port = hosts, port
        self.driver = Cluster(hosts, port=port, execution_profiles={EXEC_PROFILE_DEFAULT: profile},
                              auth_provider=PlainTextAuthProvider(user, password) if user is not None else None,
                              connect_timeout=CONNECT_TIMEOUT_S)
        self.metadata = _Metadata(self.driver)

    async def connect(self) -> "CqlSession":
        from cassandra.cluster import NoHostAvailable as DriverNoHost

        from ring.client import NoHostAvailable
        loop = asyncio.get_running_loop()
        try:
            session = await loop.run_in_executor(None, self.driver.connect)
        except DriverNoHost as e:
            raise NoHostAvailable({str(h): err for h, err in e.errors.items()}) from None
        return CqlSession(self, session, loop)

    async def shutdown(self) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self.driver.shutdown)


class CqlSession:
    def __init__(self, cluster: CqlCluster, session, loop):
        self.cluster, self._session, self._loop = cluster, session, loop
        self._prepared: dict[str, object] = {}

    # -- the driver, in asyncio ----------------------------------------------------------------

    async def _prepare(self, query: str):
        p = self._prepared.get(query)
        if p is None:
            p = self._prepared[query] = await self._run(lambda: self._session.prepare(query))
        return p

    async def _run(self, call):
        try:
            return await self._loop.run_in_executor(None, call)
        except Exception as e:  # noqa: BLE001 - translated, see the module docstring
            raise _translate(e) from None

    async def _execute(self, statement, values=(), consistency: str | None = None):
        from cassandra import ConsistencyLevel
        bound = statement.bind(values)
        if consistency is not None:
            bound.consistency_level = ConsistencyLevel.name_to_value[consistency]
        future = self._session.execute_async(bound)
        done = self._loop.create_future()

        def ok(rows, done=done):
            self._loop.call_soon_threadsafe(_settle, done, rows, None)

        def failed(error, done=done):
            self._loop.call_soon_threadsafe(_settle, done, None, _translate(error))

        future.add_callbacks(ok, failed)
        rows = await done
        if future.has_more_pages:       # the statements here fit one page; a paged answer is read whole
            rows = list(rows) + list(await self._run(lambda: list(future.result())))
        return rows

    # -- the session interface the workloads use -------------------------------------------------

    async def insert(self, table: str, row: dict, *, keyspace: str, consistency: str | None = None) -> None:
        names = tuple(row)
        p = await self._prepare(f"INSERT INTO {_quote(keyspace)}.{_quote(table)} ({', '.join(map(_quote, names))}) "
                                f"VALUES ({', '.join('?' * len(names))})")
        await self._execute(p, [row[n] for n in names], consistency)

    async def get(self, table: str, key: dict, *, keyspace: str, columns=None, consistency: str | None = None):
        selected = "*" if columns is None else ", ".join(_quote(c) for c in list(key) + list(columns))
        where = " AND ".join(f"{_quote(k)} = ?" for k in key)
        p = await self._prepare(f"SELECT {selected} FROM {_quote(keyspace)}.{_quote(table)} WHERE {where} LIMIT 1")
        rows = await self._execute(p, list(key.values()), consistency)
        rows = list(rows)
        return rows[0]._asdict() if rows else None

    async def scan(self, table: str, *, keyspace: str, start_token: int, page_size: int,
                   consistency: str | None = None) -> list:
        t = self.cluster.metadata.tables[(keyspace, table)]
        pk = ", ".join(_quote(c.name) for c in t.partition_key)
        p = await self._prepare(f"SELECT * FROM {_quote(keyspace)}.{_quote(table)} WHERE token({pk}) > ? LIMIT ?")
        return list(await self._execute(p, [start_token, page_size], consistency))

    async def create_keyspace(self, name: str, replication: dict, if_not_exists: bool = False) -> None:
        options = ", ".join(f"'{k}': '{v}'" for k, v in replication.items())
        ine = "IF NOT EXISTS " if if_not_exists else ""
        await self._run(lambda: self._session.execute(f"CREATE KEYSPACE {ine}{_quote(name)} WITH replication = "
                                                      f"{{{options}}}"))

    async def create_table(self, table: str, columns: dict, *, primary_key: str, keyspace: str,
                           if_not_exists: bool = False) -> None:
        body = ", ".join(f"{_quote(n)} {t}" for n, t in columns.items())
        ine = "IF NOT EXISTS " if if_not_exists else ""
        await self._run(lambda: self._session.execute(
            f"CREATE TABLE {ine}{_quote(keyspace)}.{_quote(table)} ({body}, PRIMARY KEY ({_quote(primary_key)}))"))
        await self._run(lambda: self.cluster.driver.refresh_table_metadata(keyspace, table))

    async def execute(self, what: str):
        """Only "status": one row per node, {"schema": its schema_version, "up": the driver's view}."""
        assert what == "status", what
        local = list(await self._run(lambda: self._session.execute("SELECT schema_version FROM system.local")))
        peers = list(await self._run(lambda: self._session.execute("SELECT peer, schema_version FROM system.peers")))
        up = {str(h.address): h.is_up for h in self.cluster.driver.metadata.all_hosts()}
        return ([{"schema": r.schema_version, "up": True} for r in local]
                + [{"schema": r.schema_version, "up": up.get(str(r.peer), False)} for r in peers])


def _settle(future, result, error) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


def _translate(e: BaseException) -> BaseException:
    from cassandra import InvalidRequest as DriverInvalid
    from cassandra import Unauthorized
    from cassandra.protocol import SyntaxException
    if isinstance(e, (DriverInvalid, SyntaxException, Unauthorized)):
        return InvalidRequest(f"{type(e).__name__}: {getattr(e, 'message', e)}")
    return e
