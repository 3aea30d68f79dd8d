"""The asyncio driver: `AsyncCluster` and `AsyncSession`, streams over protocol.ClientCore.

    async with AsyncCluster(["127.0.0.1:9100"]) as cluster:
        session = await cluster.connect("ks")
        await session.insert("users", {"id": 1, "name": "ada"})

One pipelined stream per node, opened on first use: many requests may be in flight on it, and a
reader task matches answers to them by request id. Must be used from one event loop. This file
only moves bytes and waits: what to send where, and what to do when it fails, is ClientCore's.
"""
from __future__ import annotations

import asyncio
import time

from engine.errors import InvalidRequest
from ring.client.protocol import (HANDSHAKE_TIMEOUT_S, SCHEMA_AGREEMENT_WAIT_S, TRANSPORT_ERRORS, ClientCore,
                                  ConnectionLost, ConnectionRefused, Flow, OperationTimedOut, ReplyReader, Send,
                                  encode_request, refusal_of)
from ring.client.session import SessionAPI
from ring.errors import RequestError
from ring.messages import ClientRequest, ClientResponse
from ring.runtime.frames import split_endpoint


class AsyncConnection:
    """One asyncio stream to one node; requests are pipelined and matched to answers by id."""

    def __init__(self, endpoint: str, cluster: AsyncCluster):
        self.endpoint = endpoint
        self.cluster = cluster
        self.reader = ReplyReader(cluster.max_frame_bytes)
        self.pending: dict[int, asyncio.Future] = {}
        self.closed = False

    async def open(self) -> None:
        try:
            self.stream, self.writer = await asyncio.wait_for(asyncio.open_connection(*split_endpoint(self.endpoint)),
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
        handshake = self.cluster.handshake()
        self.writer.write(handshake.start())
        while not handshake.done:
            reply = handshake.receive(await self._read(self.reader.next_payload))
            if reply:
                self.writer.write(reply)

    async def _read(self, next_item):
        while (item := next_item()) is None:
            data = await self.stream.read(65536)
            if not data:
                raise ConnectionResetError(f"{self.endpoint} closed the connection")
            self.reader.feed(data)
        return item

    async def _read_loop(self) -> None:
        failure: BaseException = ConnectionLost(f"connection to {self.endpoint} lost")
        try:
            while True:
                response = await self._read(self.reader.next_reply)
                if (refused := refusal_of(response)) is not None:
                    failure = refused
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
        frame = encode_request(req, self.reader.frames.max_frame_bytes)  # over the limit: raises, unsent
        fut = asyncio.get_running_loop().create_future()
        self.pending[req.id] = fut
        self.writer.write(frame)
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


class AsyncSession(SessionAPI):
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
