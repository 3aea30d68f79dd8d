"""The Python client: token-aware, with a blocking `Cluster`/`Session` and an asyncio twin.

    with Cluster(["127.0.0.1:9100"]) as cluster:
        session = cluster.connect("ks")
        session.insert("users", {"id": 1, "name": "ada"}, consistency="QUORUM")
        session.get("users", {"id": 1})

A Session mirrors the embedded Store's table API (engine/store.py) with `consistency` (a level
name, default "ONE") and `keyspace` (default: the session's) on each call. Each call is one
`ClientRequest(id, op, args)` (docs/format.md (wire)); an error answer is raised as the same
exception class the node raised.

Routing (pure, `ClusterMetadata`): the partition key's token picks a replica of the keyspace
(ring from `describe_ring`, tables from `describe_schema`), then the other live nodes.
Retries: reads and describe calls move to the next node after any connection failure or client
timeout; writes move on only if the request was never sent (the connection could not be made),
never after a timeout. Metadata is refreshed after schema changes and every 30 s.
The sync and async variants share everything but the socket calls.
"""
from __future__ import annotations

import asyncio
import itertools
import random
import select
import socket
import threading
import time
from collections.abc import Iterable

from engine.errors import InvalidRequest
from engine.mutation import partition_key_bytes
from engine.schema import Table
from engine.store import ScanPage
from engine.token import token as token_of
from ring.errors import RequestError, RequestTimeout
from ring.messages import ClientRequest, ClientResponse, decode, encode
from ring.replication import from_options
from ring.ring import TokenRing
from ring.runtime.frames import (MAX_FRAME_BYTES, ConnectorHandshake, FrameDecoder, encode_frame,
                                 error_from_wire)
from ring.snitch import PropertyFileSnitch

DEFAULT_PORT = 9100
REFRESH_INTERVAL_S = 5.0   # ring and Up/Down view; nodes push no events, so poll often
HANDSHAKE_TIMEOUT_S = 10.0
READ_OPS = frozenset({"get", "select", "scan", "describe_ring", "describe_schema", "status", "info",
                      "tablestats", "getendpoints", "index_query"})
SCHEMA_AGREEMENT_WAIT_S = 10.0   # the Python driver's max_schema_agreement_wait
SCHEMA_AGREEMENT_POLL_S = 0.2
SCHEMA_OPS = frozenset({"create_keyspace", "create_table", "drop_table", "drop_keyspace", "create_index",
                        "drop_index"})
KEYED_OPS = {"insert": "row", "delete": "key", "get": "key", "select": "key"}


class NoHostAvailable(RequestError):
    """No node could be asked (or, for reads, none answered). `errors` maps endpoint -> error."""

    retryable = True

    def __init__(self, errors: dict[str, BaseException]):
        self.errors = dict(errors)
        detail = "; ".join(f"{ep}: {e}" for ep, e in self.errors.items()) or "no nodes known"
        super().__init__(f"no host available ({detail})")


class OperationTimedOut(RequestTimeout):
    """The client gave up waiting for the coordinator. A write may or may not be applied."""

    def __init__(self, endpoint: str, timeout_s: float):
        self.endpoint = endpoint
        super().__init__(f"no answer from {endpoint} within {timeout_s:g} s; a write may or may not be "
                         "applied; retry only if it is idempotent")


class ConnectionLost(RequestError):
    """The connection broke after the request was sent; its fate is unknown."""


class ConnectionRefused(RequestError):
    """The connection could not be made: the request was never sent (safe to try elsewhere)."""


UNREACHABLE = (NoHostAvailable, ConnectionRefused, ConnectionLost, OperationTimedOut)


def normalize_endpoint(contact_point: str) -> str:
    """ "10.0.0.1" -> "10.0.0.1:9100"; "host:9200" and "[::1]:9200" are kept."""
    if contact_point.startswith("[") or contact_point.count(":") == 1:
        return contact_point
    if ":" in contact_point:
        return f"[{contact_point}]:{DEFAULT_PORT}"
    return f"{contact_point}:{DEFAULT_PORT}"


def split_endpoint(ep: str) -> tuple[str, int]:
    host, _, port = ep.rpartition(":")
    return host.strip("[]"), int(port)


def level_name(consistency) -> str:
    return getattr(consistency, "name", str(consistency)).strip().upper()


# -- metadata and routing (pure) -----------------------------------------------------------------

NOT_OWNING = ("BOOT", "BOOT_REPLACE", "LEFT", "removed", "UNKNOWN")  # outside ring/topology.py's current ring


class ClusterMetadata:
    """The ring and schema as this client last saw them, and the routing decisions they imply."""

    def __init__(self, contact_points: Iterable[str] = ()):
        self.contact_points = [normalize_endpoint(cp) for cp in contact_points]
        self.endpoints: dict[str, dict] = {}       # ep -> {"datacenter", "rack", "status", "tokens"}
        self.keyspaces: dict[str, dict] = {}       # name -> replication options
        self.tables: dict[tuple[str, str], Table] = {}
        self.ring = TokenRing()
        self.snitch = PropertyFileSnitch({})
        self.refreshed_at = float("-inf")

    def update_ring(self, answer: dict) -> None:
        self.endpoints = dict(answer.get("endpoints") or {})
        self.keyspaces = dict(answer.get("keyspaces") or {})
        self.ring = TokenRing.from_endpoints({ep: info.get("tokens") or () for ep, info in self.endpoints.items()
                                              if str(info.get("status", "NORMAL")) not in NOT_OWNING})
        self.snitch = PropertyFileSnitch(
            {ep: (info.get("datacenter", "datacenter1"), info.get("rack", "rack1"))
             for ep, info in self.endpoints.items()}, default=("datacenter1", "rack1"))

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

    def is_up(self, ep: str) -> bool:
        info = self.endpoints.get(ep, {})
        if info.get("up") is False:
            return False  # the node's failure detector convicted it
        status = str(info.get("status", "UP")).upper()
        return not any(word in status for word in ("DOWN", "LEFT", "REMOVED"))

    def replicas(self, keyspace: str, table: str, key: dict) -> list[str]:
        """The replicas of `key`'s partition in placement order, or [] if unknown."""
        schema = self.tables.get((keyspace, table))
        options = self.keyspaces.get(keyspace)
        if schema is None or options is None or not self.ring.tokens or not isinstance(key, dict):
            return []
        try:
            tok = token_of(partition_key_bytes(schema, key))
            dcs = sorted({self.snitch.datacenter(ep) for ep in self.ring.endpoints})
            strategy = from_options(options, dcs)
        except (InvalidRequest, RequestError):
            return []  # let the coordinator say what is wrong with the request
        return strategy.replicas(self.ring, tok, self.snitch)

    def query_plan(self, op: str, args: dict, rng: random.Random, local_dc: str | None = None) -> list[str]:
        """Endpoints to try, in order: live replicas (local DC first, shuffled), the other live
        nodes (shuffled), then everything else known (down nodes, contact points) as a last resort."""
        replicas: list[str] = []
        if op in KEYED_OPS:
            replicas = self.replicas(args.get("keyspace"), args.get("table"), args.get(KEYED_OPS[op]))
        live_replicas = [ep for ep in replicas if self.is_up(ep)]
        rng.shuffle(live_replicas)
        if local_dc is not None:
            live_replicas.sort(key=lambda ep: self.snitch.datacenter(ep) != local_dc)
        others = [ep for ep in self.endpoints if self.is_up(ep) and ep not in live_replicas]
        rng.shuffle(others)
        if local_dc is not None:
            others.sort(key=lambda ep: self.snitch.datacenter(ep) != local_dc)
        plan = live_replicas + others
        for ep in itertools.chain(replicas, self.endpoints, self.contact_points):
            if ep not in plan:
                plan.append(ep)
        return plan


def scan_result(result) -> ScanPage:
    return ScanPage(list(result.get("rows") or []), result.get("paging_state"))


def answer_of(response: ClientResponse):
    if response.error is not None:
        raise error_from_wire(response.error)
    return response.result


# -- the API, defined once for both variants ------------------------------------------------------

class _SessionAPI:
    """Every Session method builds (op, args) and hands it to `_run`, which blocks (Session) or
    returns a coroutine (AsyncSession)."""

    keyspace: str | None

    def _ks(self, keyspace: str | None) -> str:
        ks = keyspace or self.keyspace
        if not ks:
            raise InvalidRequest("no keyspace: pass keyspace= or connect(keyspace)")
        return ks

    def _data(self, op: str, table: str, keyspace, consistency, post=None, **args):
        args = {"keyspace": self._ks(keyspace), "table": table, "consistency": level_name(consistency), **args}
        return self._run(op, args, post)

    def insert(self, table: str, row: dict, ttl: int | None = None, timestamp: int | None = None,
               consistency="ONE", keyspace: str | None = None):
        return self._data("insert", table, keyspace, consistency, row=row, ttl=ttl, timestamp=timestamp)

    def delete(self, table: str, key: dict, columns=None, start=None, end=None, start_inclusive: bool = True,
               end_inclusive: bool = True, timestamp: int | None = None, consistency="ONE",
               keyspace: str | None = None):
        return self._data("delete", table, keyspace, consistency, key=key, columns=columns, start=start, end=end,
                          start_inclusive=start_inclusive, end_inclusive=end_inclusive, timestamp=timestamp)

    def get(self, table: str, key: dict, columns=None, writetime: bool = False, consistency="ONE",
            keyspace: str | None = None):
        return self._data("get", table, keyspace, consistency, key=key, columns=columns, writetime=writetime)

    def select(self, table: str, key: dict, start=None, end=None, start_inclusive: bool = True,
               end_inclusive: bool = True, limit: int | None = None, columns=None, writetime: bool = False,
               reverse: bool = False, consistency="ONE", keyspace: str | None = None):
        return self._data("select", table, keyspace, consistency, key=key, start=start, end=end,
                          start_inclusive=start_inclusive, end_inclusive=end_inclusive, limit=limit,
                          columns=columns, writetime=writetime, reverse=reverse)

    def scan(self, table: str, start_token: int | None = None, end_token: int | None = None,
             page_size: int = 1000, paging_state: bytes | None = None, columns=None, writetime: bool = False,
             consistency="ONE", keyspace: str | None = None):
        return self._data("scan", table, keyspace, consistency, scan_result, start_token=start_token,
                          end_token=end_token, page_size=page_size, paging_state=paging_state,
                          columns=columns, writetime=writetime)

    def create_keyspace(self, name: str, replication: dict | None = None, if_not_exists: bool = True):
        replication = replication or {"class": "SimpleStrategy", "replication_factor": 1}
        return self._run("create_keyspace", {"name": name, "replication": replication,
                                             "if_not_exists": if_not_exists})

    def create_table(self, name: str, columns: dict, primary_key, clustering_order: dict | None = None,
                     options: dict | None = None, if_not_exists: bool = True, keyspace: str | None = None):
        return self._run("create_table", {"keyspace": self._ks(keyspace), "name": name, "columns": columns,
                                          "primary_key": primary_key, "clustering_order": clustering_order,
                                          "options": options, "if_not_exists": if_not_exists})

    def drop_table(self, name: str, keyspace: str | None = None):
        return self._run("drop_table", {"keyspace": self._ks(keyspace), "name": name})

    def drop_keyspace(self, name: str):
        return self._run("drop_keyspace", {"name": name})

    def create_index(self, table: str, column: str, name: str | None = None, keyspace: str | None = None,
                     if_not_exists: bool = True):
        """CREATE INDEX [name] ON table (column); default name f"{table}_{column}_idx". Every node
        builds its local index in the background; queries raise IndexNotReady until it is built."""
        return self._run("create_index", {"keyspace": self._ks(keyspace), "table": table, "column": column,
                                          "name": name, "if_not_exists": if_not_exists})

    def drop_index(self, name: str, keyspace: str | None = None, if_exists: bool = True):
        return self._run("drop_index", {"keyspace": self._ks(keyspace), "name": name, "if_exists": if_exists})

    def index_query(self, table: str, where, columns=None, consistency="ONE", page_size: int = 1000,
                    paging_state: bytes | None = None, keyspace: str | None = None):
        """Rows matching every (column, op, value) of `where` (op: =, <, <=, >, >=), answered from
        the index of one restricted column, in token order: a ScanPage (rows, paging_state)."""
        return self._data("index_query", table, keyspace, consistency, scan_result,
                          where=[list(w) for w in where] if isinstance(where, (list, tuple)) else where,
                          columns=columns, page_size=page_size, paging_state=paging_state)

    def execute(self, op: str, **args):
        """Any op (admin ops for nodetool: status, info, flush, compact, tablestats, ...).
        `endpoint="host:port"` sends it to that node instead of routing it."""
        return self._run(op, args)

    def _run(self, op: str, args: dict, post=None):
        raise NotImplementedError


class _ClusterBase:
    def __init__(self, contact_points: list[str], *, cluster_secret: str = "", timeout_s: float = 12.0,
                 cluster_name: str = "dynatable", local_dc: str | None = None,
                 max_frame_bytes: int = MAX_FRAME_BYTES, seed: int | None = None):
        if not contact_points:
            raise InvalidRequest("Cluster needs at least one contact point, e.g. ['127.0.0.1:9100']")
        self.metadata = ClusterMetadata(contact_points)
        self.cluster_secret = cluster_secret
        self.timeout_s = timeout_s
        self.cluster_name = cluster_name
        self.local_dc = local_dc
        self.max_frame_bytes = max_frame_bytes
        self._rng = random.Random(seed)
        self._ids = itertools.count(1)

    def _plan(self, op: str, args: dict) -> tuple[list[str], dict]:
        """(endpoints to try, args to send): `endpoint=` in args pins the request to one node."""
        if "endpoint" in args:  # an explicit pin wins over token-aware routing, for every op
            args = dict(args)
            return [normalize_endpoint(args.pop("endpoint"))], args
        return self.metadata.query_plan(op, args, self._rng, self.local_dc), args

    def _handshake(self) -> ConnectorHandshake:
        return ConnectorHandshake("client", "", self.cluster_name, self.cluster_secret)

    @staticmethod
    def _may_try_next(op: str, exc: BaseException) -> bool:
        """After a failed attempt: is trying another node safe?"""
        if isinstance(exc, ConnectionRefused):
            return True  # never sent
        return op in READ_OPS and isinstance(exc, (ConnectionLost, OperationTimedOut))

    def _refresh_due(self) -> bool:
        return time.monotonic() - self.metadata.refreshed_at > REFRESH_INTERVAL_S

    def _apply_refresh(self, ring_answer, schema_answer) -> None:
        self.metadata.update_ring(ring_answer)
        self.metadata.update_schema(schema_answer)
        self.metadata.refreshed_at = time.monotonic()


# -- blocking ------------------------------------------------------------------------------------

class _Connection:
    """One blocking socket to one node; a lock serializes request/response exchanges on it."""

    def __init__(self, endpoint: str, cluster: Cluster):
        self.endpoint = endpoint
        self.lock = threading.Lock()
        self.decoder = FrameDecoder(cluster.max_frame_bytes)
        host, port = split_endpoint(endpoint)
        try:
            self.sock = socket.create_connection((host, port), timeout=min(cluster.timeout_s, HANDSHAKE_TIMEOUT_S))
        except OSError as e:
            raise ConnectionRefused(f"cannot connect to {endpoint}: {e}") from None
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            handshake = cluster._handshake()
            self.sock.sendall(handshake.start())
            while not handshake.done:
                reply = handshake.receive(self._read_payload())
                if reply:
                    self.sock.sendall(reply)
        except OSError as e:
            self.close()
            raise ConnectionRefused(f"handshake with {endpoint} failed: {e}") from None
        except BaseException:
            self.close()
            raise
        self.sock.settimeout(cluster.timeout_s)
        self.closed = False

    def _read_payload(self) -> bytes:
        while (payload := self.decoder.next_payload()) is None:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionResetError(f"{self.endpoint} closed the connection")
            self.decoder.feed(data)
        return payload

    def request(self, req: ClientRequest, timeout_s: float) -> ClientResponse:
        with self.lock:
            try:
                self.sock.sendall(encode_frame(encode(req)))
            except OSError as e:
                self.close()
                raise ConnectionLost(f"sending to {self.endpoint} failed: {e}") from None
            deadline = time.monotonic() + timeout_s
            while True:
                try:
                    self.sock.settimeout(max(0.001, deadline - time.monotonic()))
                    response = decode(self._read_payload())
                except (TimeoutError, socket.timeout):
                    raise OperationTimedOut(self.endpoint, timeout_s) from None
                except OSError as e:
                    self.close()
                    raise ConnectionLost(f"connection to {self.endpoint} lost: {e}") from None
                if isinstance(response, ClientResponse) and response.id == req.id:
                    return response
                if isinstance(response, ClientResponse) and response.id == 0 and response.error:
                    self.close()  # the node refused the connection (a bad frame) and closed it
                    raise error_from_wire(response.error)
                # else: a late answer to a request that timed out earlier; skip it

    def is_stale(self) -> bool:
        """Whether the node closed this idle connection (e.g. it restarted): then reconnecting
        is safe, whereas a write sent into it would fail after sending."""
        if self.closed:
            return True
        try:
            poller = select.poll()  # poll, not select(): no limit on the descriptor's number
            poller.register(self.sock, select.POLLIN | select.POLLHUP)
            readable = poller.poll(0)
            return bool(readable) and not self.sock.recv(1, socket.MSG_PEEK)
        except OSError:
            return True

    def close(self) -> None:
        self.closed = True
        try:
            self.sock.close()
        except OSError:
            pass


class Session(_SessionAPI):
    def __init__(self, cluster: Cluster, keyspace: str | None):
        self.cluster = cluster
        self.keyspace = keyspace

    def _run(self, op: str, args: dict, post=None):
        result = self.cluster.request(op, args)
        return post(result) if post else result

    def scan_all(self, table: str, start_token=None, end_token=None, page_size: int = 1000, **kwargs):
        state = None
        while True:
            page = self.scan(table, start_token, end_token, page_size, state, **kwargs)
            yield from page.rows
            if (state := page.paging_state) is None:
                return

    def index_query_all(self, table: str, where, page_size: int = 1000, **kwargs):
        state = None
        while True:
            page = self.index_query(table, where, page_size=page_size, paging_state=state, **kwargs)
            yield from page.rows
            if (state := page.paging_state) is None:
                return


class Cluster(_ClusterBase):
    """Blocking client: one socket per node, opened on first use."""

    def __init__(self, contact_points: list[str], **kwargs):
        super().__init__(contact_points, **kwargs)
        self._connections: dict[str, _Connection] = {}
        self._connect_lock = threading.Lock()

    def connect(self, keyspace: str | None = None) -> Session:
        self.refresh_metadata()
        return Session(self, keyspace)

    def refresh_metadata(self) -> None:
        ring_answer = self._request("describe_ring", {})
        self._apply_refresh(ring_answer, self._request("describe_schema", {}))

    def request(self, op: str, args: dict):
        if self._refresh_due():
            self.refresh_metadata()
        result = self._request(op, args)
        if op in SCHEMA_OPS:
            self.wait_for_schema_agreement()
        return result

    def wait_for_schema_agreement(self, timeout_s: float = SCHEMA_AGREEMENT_WAIT_S) -> bool:
        """After a schema change (done by every DDL call): until every node this client sees Up
        answers the same schema version, as drivers do (the change reaches the other nodes by push
        and gossip, so the next request may go through a node that has not heard of it). False if
        they did not agree within `timeout_s`; the metadata is refreshed either way."""
        deadline = time.monotonic() + timeout_s
        while True:
            self.refresh_metadata()
            versions = set()
            for ep in [ep for ep in self.metadata.endpoints if self.metadata.is_up(ep)]:
                try:
                    versions.add(self._request("describe_schema", {"endpoint": ep}).get("version"))
                except UNREACHABLE:
                    continue  # down but not convicted yet: it catches up by gossip when back
                except RequestError:
                    versions.add(None)  # answering with an error: ask again
            if len(versions) <= 1 or time.monotonic() > deadline:
                return len(versions) <= 1
            time.sleep(SCHEMA_AGREEMENT_POLL_S)

    def _request(self, op: str, args: dict):
        plan, args = self._plan(op, args)
        errors: dict[str, BaseException] = {}
        for ep in plan:
            try:
                return answer_of(self._connection(ep).request(ClientRequest(next(self._ids), op, args),
                                                               self.timeout_s))
            except (ConnectionRefused, ConnectionLost, OperationTimedOut) as e:
                self.metadata.refreshed_at = 0.0  # the ring view may be stale: refresh before the next call
                if not self._may_try_next(op, e):
                    raise
                errors[ep] = e
        raise NoHostAvailable(errors)

    def _connection(self, ep: str) -> _Connection:
        with self._connect_lock:
            conn = self._connections.get(ep)
            if conn is None or conn.closed or (not conn.lock.locked() and conn.is_stale()):
                if conn is not None:
                    conn.close()
                conn = self._connections[ep] = _Connection(ep, self)
            return conn

    def shutdown(self) -> None:
        with self._connect_lock:
            for conn in self._connections.values():
                conn.close()
            self._connections.clear()

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *exc) -> None:
        self.shutdown()


# -- asyncio -------------------------------------------------------------------------------------

class _AsyncConnection:
    """One asyncio stream to one node; requests are pipelined and matched to answers by id."""

    def __init__(self, endpoint: str, cluster: AsyncCluster):
        self.endpoint = endpoint
        self.cluster = cluster
        self.decoder = FrameDecoder(cluster.max_frame_bytes)
        self.pending: dict[int, asyncio.Future] = {}
        self.closed = False

    async def open(self) -> None:
        host, port = split_endpoint(self.endpoint)
        try:
            self.reader, self.writer = await asyncio.wait_for(asyncio.open_connection(host, port),
                                                              HANDSHAKE_TIMEOUT_S)
        except (OSError, asyncio.TimeoutError) as e:
            raise ConnectionRefused(f"cannot connect to {self.endpoint}: {e!r}") from None
        try:
            await asyncio.wait_for(self._handshake(), HANDSHAKE_TIMEOUT_S)
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError) as e:
            self.writer.close()
            raise ConnectionRefused(f"handshake with {self.endpoint} failed: {e!r}") from None
        except BaseException:
            self.writer.close()
            raise
        self._reader_task = asyncio.ensure_future(self._read_loop())

    async def _handshake(self) -> None:
        handshake = self.cluster._handshake()
        self.writer.write(handshake.start())
        while not handshake.done:
            reply = handshake.receive(await self._read_payload())
            if reply:
                self.writer.write(reply)

    async def _read_payload(self) -> bytes:
        while (payload := self.decoder.next_payload()) is None:
            data = await self.reader.read(65536)
            if not data:
                raise ConnectionResetError(f"{self.endpoint} closed the connection")
            self.decoder.feed(data)
        return payload

    async def _read_loop(self) -> None:
        failure: BaseException = ConnectionLost(f"connection to {self.endpoint} lost")
        try:
            while True:
                response = decode(await self._read_payload())
                if not isinstance(response, ClientResponse):
                    continue
                if response.id == 0 and response.error:
                    failure = error_from_wire(response.error)
                    return
                fut = self.pending.pop(response.id, None)
                if fut is not None and not fut.done():
                    fut.set_result(response)
        except (OSError, RequestError, InvalidRequest) as e:
            failure = ConnectionLost(f"connection to {self.endpoint} lost: {e}")
        finally:
            self.close(failure)

    async def request(self, req: ClientRequest, timeout_s: float) -> ClientResponse:
        if self.closed:
            raise ConnectionLost(f"connection to {self.endpoint} is closed")
        fut = asyncio.get_running_loop().create_future()
        self.pending[req.id] = fut
        self.writer.write(encode_frame(encode(req)))
        try:
            return await asyncio.wait_for(fut, timeout_s)
        except asyncio.TimeoutError:
            raise OperationTimedOut(self.endpoint, timeout_s) from None
        finally:
            self.pending.pop(req.id, None)

    def close(self, failure: BaseException | None = None) -> None:
        self.closed = True
        for fut in self.pending.values():
            if not fut.done():
                fut.set_exception(failure or ConnectionLost(f"connection to {self.endpoint} closed"))
        self.pending.clear()
        if hasattr(self, "writer"):
            self.writer.close()


class AsyncSession(_SessionAPI):
    def __init__(self, cluster: AsyncCluster, keyspace: str | None):
        self.cluster = cluster
        self.keyspace = keyspace

    async def _run(self, op: str, args: dict, post=None):
        result = await self.cluster.request(op, args)
        return post(result) if post else result

    async def scan_all(self, table: str, start_token=None, end_token=None, page_size: int = 1000, **kwargs):
        state = None
        while True:
            page = await self.scan(table, start_token, end_token, page_size, state, **kwargs)
            for row in page.rows:
                yield row
            if (state := page.paging_state) is None:
                return

    async def index_query_all(self, table: str, where, page_size: int = 1000, **kwargs):
        state = None
        while True:
            page = await self.index_query(table, where, page_size=page_size, paging_state=state, **kwargs)
            for row in page.rows:
                yield row
            if (state := page.paging_state) is None:
                return


class AsyncCluster(_ClusterBase):
    """asyncio client: one pipelined stream per node, opened on first use."""

    def __init__(self, contact_points: list[str], **kwargs):
        super().__init__(contact_points, **kwargs)
        self._connections: dict[str, _AsyncConnection] = {}
        self._connecting: dict[str, asyncio.Lock] = {}

    async def connect(self, keyspace: str | None = None) -> AsyncSession:
        await self.refresh_metadata()
        return AsyncSession(self, keyspace)

    async def refresh_metadata(self) -> None:
        ring_answer = await self._request("describe_ring", {})
        self._apply_refresh(ring_answer, await self._request("describe_schema", {}))

    async def request(self, op: str, args: dict):
        if self._refresh_due():
            await self.refresh_metadata()
        result = await self._request(op, args)
        if op in SCHEMA_OPS:
            await self.wait_for_schema_agreement()
        return result

    async def wait_for_schema_agreement(self, timeout_s: float = SCHEMA_AGREEMENT_WAIT_S) -> bool:
        """Cluster.wait_for_schema_agreement, for asyncio."""
        deadline = time.monotonic() + timeout_s
        while True:
            await self.refresh_metadata()
            versions = set()
            for ep in [ep for ep in self.metadata.endpoints if self.metadata.is_up(ep)]:
                try:
                    versions.add((await self._request("describe_schema", {"endpoint": ep})).get("version"))
                except UNREACHABLE:
                    continue
                except RequestError:
                    versions.add(None)
            if len(versions) <= 1 or time.monotonic() > deadline:
                return len(versions) <= 1
            await asyncio.sleep(SCHEMA_AGREEMENT_POLL_S)

    async def _request(self, op: str, args: dict):
        plan, args = self._plan(op, args)
        errors: dict[str, BaseException] = {}
        for ep in plan:
            try:
                conn = await self._connection(ep)
                return answer_of(await conn.request(ClientRequest(next(self._ids), op, args), self.timeout_s))
            except (ConnectionRefused, ConnectionLost, OperationTimedOut) as e:
                self.metadata.refreshed_at = 0.0  # the ring view may be stale: refresh before the next call
                if not self._may_try_next(op, e):
                    raise
                errors[ep] = e
        raise NoHostAvailable(errors)

    async def _connection(self, ep: str) -> _AsyncConnection:
        async with self._connecting.setdefault(ep, asyncio.Lock()):
            conn = self._connections.get(ep)
            if conn is None or conn.closed:
                conn = _AsyncConnection(ep, self)
                await conn.open()
                self._connections[ep] = conn
            return conn

    async def shutdown(self) -> None:
        for conn in self._connections.values():
            conn.close()
        self._connections.clear()

    async def __aenter__(self) -> AsyncCluster:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.shutdown()
