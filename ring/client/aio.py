"""The asyncio driver: `AsyncCluster` and `AsyncSession`, streams over protocol.ClientCore.

    async with AsyncCluster(["127.0.0.1:9100"]) as cluster:
        session = await cluster.connect("ks")
        await session.insert("users", {"id": 1, "name": "ada"})

One pipelined connection per node, opened on first use: many requests may be in flight on it,
and answers are matched to them by request id as they are read. Must be used from one event loop. This file
only moves bytes and waits: what to send where, and what to do when it fails, is ClientCore's.
"""
from __future__ import annotations

import asyncio
import math
import time

from engine.errors import InvalidRequest
from ring.client.protocol import (HANDSHAKE_TIMEOUT_S, SCHEMA_AGREEMENT_WAIT_S, TRANSPORT_ERRORS, ClientCore,
                                  ConnectionLost, ConnectionRefused, Flow, OperationTimedOut, ReplyReader, Send,
                                  encode_request, refusal_of)
from ring.client.session import SessionAPI
from ring.errors import RequestError
from ring.messages import ClientRequest, ClientResponse
from ring.runtime.frames import split_endpoint


class AsyncConnection(asyncio.Protocol):
    """One connection to one node as an asyncio.Protocol; requests are pipelined and matched to
    answers by id. Requests made during one loop iteration leave in one transport write (`flush`,
    scheduled by the first of them); `data_received` decodes every whole answer and resolves its
    future in the same call (no reader task, no StreamReader). Timeouts: one timer per connection,
    armed for the earliest deadline in flight (`_sweep` fails the expired requests and re-arms),
    not a timer and a waiter per request."""

    def __init__(self, endpoint: str, cluster: AsyncCluster):
        self.endpoint = endpoint
        self.cluster = cluster
        self.reader = ReplyReader(cluster.max_frame_bytes)
        self.pending: dict[int, tuple[asyncio.Future, float, float]] = {}   # id -> (future, deadline, timeout_s)
        self.closed = False
        self.writes = 0                 # transport writes of requests (each carries >= 1 frame)
        self.transport: asyncio.Transport | None = None
        self._outbox: list[bytes] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._handshake = None
        self._ready: asyncio.Future | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = math.inf

    async def open(self) -> None:
        # the loop, once: asyncio.get_running_loop() costs a getpid() system call on Python 3.11
        self._loop = loop = asyncio.get_running_loop()
        self._ready = loop.create_future()
        host, port = split_endpoint(self.endpoint)
        try:
            await asyncio.wait_for(loop.create_connection(lambda: self, host, port), HANDSHAKE_TIMEOUT_S)
        except (OSError, asyncio.TimeoutError) as e:
            raise ConnectionRefused(f"cannot connect to {self.endpoint}: {e!r}") from None
        try:
            await asyncio.wait_for(self._ready, HANDSHAKE_TIMEOUT_S)
        except (OSError, asyncio.TimeoutError) as e:
            self._close_transport()
            raise ConnectionRefused(f"handshake with {self.endpoint} failed: {e!r}") from None
        except BaseException:
            self._close_transport()
            raise

    # -- asyncio.Protocol ------------------------------------------------------------------------

    def connection_made(self, transport) -> None:
        self.transport = transport
        self._handshake = self.cluster.handshake()
        transport.write(self._handshake.start())

    def data_received(self, data: bytes) -> None:
        if self.closed:
            return
        reader = self.reader
        try:
            reader.feed(data)
            if self._handshake is not None and not self._handshake_step():
                return
            pending = self.pending
            while (response := reader.next_reply()) is not None:
                if (refused := refusal_of(response)) is not None:
                    self.close(refused)
                    return
                entry = pending.pop(response.id, None)
                if entry is not None and not entry[0].done():
                    entry[0].set_result(response)
        except (RequestError, InvalidRequest) as e:
            if self._ready is not None and not self._ready.done():
                self._ready.set_exception(e)     # a refused handshake: open() raises it
            self.close(ConnectionLost(f"connection to {self.endpoint} lost: {e}"))

    def _handshake_step(self) -> bool:
        """Feed handshake frames; True once done, False while more bytes are needed."""
        handshake = self._handshake
        while not handshake.done:
            payload = self.reader.next_payload()
            if payload is None:
                return False
            reply = handshake.receive(payload)
            if reply:
                self.transport.write(reply)
        self._handshake = None
        if not self._ready.done():
            self._ready.set_result(None)
        return True

    def connection_lost(self, exc) -> None:
        error = exc or ConnectionResetError(f"{self.endpoint} closed the connection")
        if self._ready is not None and not self._ready.done():
            self._ready.set_exception(ConnectionResetError(str(error)))   # open() raises ConnectionRefused
        self.close(ConnectionLost(f"connection to {self.endpoint} lost: {error}"))

    # -- requests --------------------------------------------------------------------------------

    async def request(self, req: ClientRequest, timeout_s: float) -> ClientResponse:
        if self.closed:
            raise ConnectionLost(f"connection to {self.endpoint} is closed")
        frame = encode_request(req, self.reader.frames.max_frame_bytes)  # over the limit: raises, unsent
        loop = self._loop
        fut = loop.create_future()
        deadline = loop.time() + timeout_s
        self.pending[req.id] = (fut, deadline, timeout_s)
        outbox = self._outbox
        if not outbox:
            loop.call_soon(self.flush)
        outbox.append(frame)
        if deadline < self._timer_at:
            self._arm(deadline)
        try:
            return await fut
        finally:
            self.pending.pop(req.id, None)

    def flush(self) -> None:
        outbox = self._outbox
        if outbox and not self.closed:
            self.transport.write(outbox[0] if len(outbox) == 1 else b"".join(outbox))
            self.writes += 1
        outbox.clear()

    def _arm(self, when: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = when
        self._timer = self._loop.call_at(when, self._sweep)

    def _sweep(self) -> None:
        """Fail every request past its deadline; re-arm for the earliest one left."""
        self._timer, self._timer_at = None, math.inf
        now = self._loop.time()
        earliest = math.inf
        for fut, deadline, timeout_s in list(self.pending.values()):
            if deadline <= now:
                if not fut.done():
                    fut.set_exception(OperationTimedOut(self.endpoint, timeout_s))
            elif deadline < earliest:
                earliest = deadline
        if earliest < math.inf and not self.closed:
            self._arm(earliest)

    def close(self, failure: BaseException | None = None) -> None:
        self.closed = True
        self._outbox.clear()
        if self._timer is not None:
            self._timer.cancel()
            self._timer, self._timer_at = None, math.inf
        for fut, _, _ in self.pending.values():
            if not fut.done():
                fut.set_exception(failure or ConnectionLost(f"connection to {self.endpoint} closed"))
        self.pending.clear()
        self._close_transport()

    def _close_transport(self) -> None:
        if self.transport is not None:
            self.transport.close()


class AsyncSession(SessionAPI):
    def __init__(self, cluster: AsyncCluster, keyspace: str | None):
        self.cluster = cluster
        self.keyspace = keyspace

    async def _run(self, op: str, args: dict, post=None):
        cluster = self.cluster
        result = await cluster.run(cluster.call(op, args))
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


class AsyncCluster(ClientCore):
    """asyncio client: one pipelined stream per node, opened on first use."""

    def __init__(self, contact_points: list[str], **kwargs):
        super().__init__(contact_points, clock=time.monotonic, **kwargs)
        self._connections: dict[str, AsyncConnection] = {}
        self._connecting: dict[str, asyncio.Lock] = {}

    async def connect(self, keyspace: str | None = None) -> AsyncSession:
        await self.refresh_metadata()
        return AsyncSession(self, keyspace)

    async def request(self, op: str, args: dict):
        return await self.run(self.call(op, args))

    async def refresh_metadata(self) -> None:
        await self.run(self.refresh())

    async def wait_for_schema_agreement(self, timeout_s: float = SCHEMA_AGREEMENT_WAIT_S) -> bool:
        """True once every Up node answers the same schema version (ClientCore.agree_on_schema)."""
        return await self.run(self.agree_on_schema(timeout_s))

    async def run(self, flow: Flow):
        """Carry out a ClientCore flow's effects until it returns (or raises)."""
        try:
            effect = next(flow)
            while True:
                if type(effect) is Send:
                    try:
                        conn = self._connections.get(effect.endpoint)
                        if conn is None or conn.closed:
                            conn = await self._connection(effect.endpoint)
                        response = await conn.request(effect.request, self.timeout_s)
                    except TRANSPORT_ERRORS as e:
                        effect = flow.throw(e)
                    else:
                        effect = flow.send(response)
                else:
                    await asyncio.sleep(effect.seconds)
                    effect = flow.send(None)
        except StopIteration as stop:
            return stop.value

    async def _connection(self, ep: str) -> AsyncConnection:
        async with self._connecting.setdefault(ep, asyncio.Lock()):
            conn = self._connections.get(ep)
            if conn is None or conn.closed:
                conn = AsyncConnection(ep, self)
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
