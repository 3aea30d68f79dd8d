"""The blocking driver: `Cluster` and `Session`, sockets and threads over protocol.ClientCore.

    with Cluster(["127.0.0.1:9100"]) as cluster:
        session = cluster.connect("ks")
        session.insert("users", {"id": 1, "name": "ada"}, consistency="QUORUM")
        session.get("users", {"id": 1})

One socket per node, opened on first use (TCP_NODELAY, the connection handshake first); a lock
serializes request/answer exchanges on it, so a Cluster may be shared by threads. This file only
moves bytes and waits: what to send where, and what to do when it fails, is ClientCore's.
"""
from __future__ import annotations

import select
import socket
import threading
import time

from ring.client.protocol import (HANDSHAKE_TIMEOUT_S, SCHEMA_AGREEMENT_WAIT_S, TRANSPORT_ERRORS, ClientCore,
                                  ConnectionLost, ConnectionRefused, Flow, OperationTimedOut, ReplyReader, Send,
                                  encode_request, refusal_of)
from ring.client.session import SessionAPI
from ring.messages import ClientRequest, ClientResponse
from ring.runtime.frames import split_endpoint


class Connection:
    """One blocking socket to one node."""

    def __init__(self, endpoint: str, cluster: Cluster):
        self.endpoint = endpoint
        self.lock = threading.Lock()
        self.reader = ReplyReader(cluster.max_frame_bytes)
        try:
            self.sock = socket.create_connection(split_endpoint(endpoint),
                                                 timeout=min(cluster.timeout_s, HANDSHAKE_TIMEOUT_S))
        except OSError as e:
            raise ConnectionRefused(f"cannot connect to {endpoint}: {e}") from None
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            handshake = cluster.handshake()
            self.sock.sendall(handshake.start())
            while not handshake.done:
                reply = handshake.receive(self._read(self.reader.next_payload))
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

    def _read(self, next_item):
        while (item := next_item()) is None:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionResetError(f"{self.endpoint} closed the connection")
            self.reader.feed(data)
        return item

    def request(self, req: ClientRequest, timeout_s: float) -> ClientResponse:
        with self.lock:
            try:
                self.sock.sendall(encode_request(req, self.reader.frames.max_frame_bytes))
            except OSError as e:
                self.close()
                raise ConnectionLost(f"sending to {self.endpoint} failed: {e}") from None
            deadline = time.monotonic() + timeout_s
            while True:
                try:
                    self.sock.settimeout(max(0.001, deadline - time.monotonic()))
                    response = self._read(self.reader.next_reply)
                except (TimeoutError, socket.timeout):
                    raise OperationTimedOut(self.endpoint, timeout_s) from None
                except OSError as e:
                    self.close()
                    raise ConnectionLost(f"connection to {self.endpoint} lost: {e}") from None
                if response.id == req.id:
                    return response
                if (refused := refusal_of(response)) is not None:
                    self.close()  # the node refused the connection (a bad frame) and closed it
                    raise refused
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


class Session(SessionAPI):
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


class Cluster(ClientCore):
    """Blocking client: one socket per node, opened on first use."""

    def __init__(self, contact_points: list[str], **kwargs):
        super().__init__(contact_points, clock=time.monotonic, **kwargs)
        self._connections: dict[str, Connection] = {}
        self._connect_lock = threading.Lock()

    def connect(self, keyspace: str | None = None) -> Session:
        self.refresh_metadata()
        return Session(self, keyspace)

    def request(self, op: str, args: dict):
        return self.run(self.call(op, args))

    def refresh_metadata(self) -> None:
        self.run(self.refresh())

    def wait_for_schema_agreement(self, timeout_s: float = SCHEMA_AGREEMENT_WAIT_S) -> bool:
        """True once every Up node answers the same schema version (ClientCore.agree_on_schema)."""
        return self.run(self.agree_on_schema(timeout_s))

    def run(self, flow: Flow):
        """Carry out a ClientCore flow's effects until it returns (or raises)."""
        try:
            effect = next(flow)
            while True:
                if type(effect) is Send:
                    try:
                        response = self._connection(effect.endpoint).request(effect.request, self.timeout_s)
                    except TRANSPORT_ERRORS as e:
                        effect = flow.throw(e)
                    else:
                        effect = flow.send(response)
                else:
                    time.sleep(effect.seconds)
                    effect = flow.send(None)
        except StopIteration as stop:
            return stop.value

    def _connection(self, ep: str) -> Connection:
        with self._connect_lock:
            conn = self._connections.get(ep)
            if conn is None or conn.closed or (not conn.lock.locked() and conn.is_stale()):
                if conn is not None:
                    conn.close()
                conn = self._connections[ep] = Connection(ep, self)
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
