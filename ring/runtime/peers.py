"""Outbound internode traffic of the asyncio runtime: one `PeerLink` per peer, gathered in `Peers`.

A link owns one connection of our own to the peer (hello with role "peer", then the optional HMAC
challenge; docs/format.md (wire)) and a bounded queue of encoded frames. It connects lazily on the
first frame, reconnects with backoff 100 ms -> 5 s, drops the oldest frame when the queue is full
(`peer_queue_frames_max`), and writes every frame queued during one loop iteration in one write,
from a callback at the end of the iteration (no task wakes per message). While the connection's
write buffer is over its high-water mark the link stops writing until it drains. A frame still
queued after `write_request_timeout_ms` is dropped unsent (its request has timed out and been
hinted, as Cassandra expires internode messages). The peer never writes on this connection:
data or EOF from it means the link is broken.

`Peers.dropped` holds the nemesis's drop rules (a partition without root privileges): messages to
those peers are counted and dropped here, messages from them by the listener.
"""
from __future__ import annotations

import asyncio
import collections
import logging
import time

from engine.errors import EngineError
from ring.errors import ConfigurationError, RequestError
from ring.messages import encode
from ring.runtime.frames import ConnectorHandshake, FrameDecoder, encode_frame, split_endpoint

log = logging.getLogger("dynatable.runtime")

BACKOFF_MIN_S = 0.1
BACKOFF_MAX_S = 5.0
HANDSHAKE_TIMEOUT_S = 10.0
READ_CHUNK_BYTES = 256 * 1024
REFUSALS = (RequestError, ConfigurationError, EngineError)


async def read_payload(reader: asyncio.StreamReader, decoder: FrameDecoder) -> bytes:
    """The next frame's payload; ConnectionResetError at EOF."""
    while (payload := decoder.next_payload()) is None:
        data = await reader.read(READ_CHUNK_BYTES)
        if not data:
            raise ConnectionResetError("connection closed by the other side")
        decoder.feed(data)
    return payload


class PeerLink:
    """Outbound frames to one peer over one connection of our own (role "peer")."""

    def __init__(self, endpoint: str, local_endpoint: str, settings, stats: collections.Counter):
        self.endpoint = endpoint
        self.local_endpoint = local_endpoint
        self.settings = settings
        self.stats = stats
        self.queue: collections.deque[tuple[float, bytes]] = collections.deque()
        self.dropped = 0
        self.expired = 0
        self.connected = False
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._writer: asyncio.StreamWriter | None = None     # set while connected and not draining
        self._flush_soon = False
        self._loop: asyncio.AbstractEventLoop | None = None

    def send(self, frame: bytes) -> None:
        if len(self.queue) >= self.settings.peer_queue_frames_max:
            self.queue.popleft()
            self.dropped += 1
        self.queue.append((time.monotonic(), frame))
        if self._task is None:
            self._task = asyncio.ensure_future(self._run())
            self._loop = asyncio.get_running_loop()  # once: each call costs a getpid() on Python 3.11
        if not self._flush_soon:
            self._flush_soon = True
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        """End of the loop iteration: write what was queued, or leave it to the pump."""
        self._flush_soon = False
        if self._writer is not None:
            self._write(self._writer)
        else:
            self._wakeup.set()

    def _write(self, writer: asyncio.StreamWriter) -> None:
        oldest = time.monotonic() - self.settings.write_request_timeout_ms / 1000
        queue = self.queue
        if not queue:
            return
        if queue[0][0] >= oldest:
            frames = [frame for _, frame in queue]
        else:
            frames = [frame for queued_at, frame in queue if queued_at >= oldest]
            self.expired += len(queue) - len(frames)
        queue.clear()
        if not frames:
            return
        writer.write(frames[0] if len(frames) == 1 else b"".join(frames))
        stats = self.stats
        stats["peer_frames_sent"] += len(frames)
        stats["peer_writes"] += 1
        transport = writer.transport
        if transport.get_write_buffer_size() > transport.get_write_buffer_limits()[1]:
            self._writer = None             # over the high-water mark: the pump drains first
            self._wakeup.set()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        backoff, failures = BACKOFF_MIN_S, 0
        while True:
            writer = None
            try:
                reader, writer = await asyncio.wait_for(asyncio.open_connection(*split_endpoint(self.endpoint)),
                                                        HANDSHAKE_TIMEOUT_S)
                await asyncio.wait_for(self._handshake(reader, writer), HANDSHAKE_TIMEOUT_S)
                self.connected, backoff, failures = True, BACKOFF_MIN_S, 0
                log.info("connected to peer %s", self.endpoint)
                await self._pump(reader, writer)
            except asyncio.CancelledError:
                raise
            except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError) as e:
                failures += 1
                if failures == 1 or self.connected:
                    log.info("peer %s unreachable (%s); retrying with backoff", self.endpoint, e or type(e).__name__)
            except REFUSALS as e:
                failures += 1
                log.error("peer %s refused or broke the connection: %s", self.endpoint, e)
            finally:
                self.connected = False
                if writer is not None:
                    writer.close()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, BACKOFF_MAX_S)

    async def _handshake(self, reader, writer) -> None:
        s = self.settings
        handshake = ConnectorHandshake("peer", self.local_endpoint, s.cluster_name, s.cluster_secret)
        decoder = FrameDecoder(s.max_frame_bytes)
        writer.write(handshake.start())
        while not handshake.done:
            reply = handshake.receive(await read_payload(reader, decoder))
            if reply:
                writer.write(reply)

    async def _pump(self, reader, writer) -> None:
        closed = asyncio.ensure_future(reader.read(1))  # the peer sends nothing here: data or EOF = broken
        woken = None
        try:
            while True:
                if closed.done():
                    raise ConnectionResetError("peer closed the connection")
                await writer.drain()
                if self.queue:
                    self._write(writer)         # what was queued while unconnected or draining
                    if writer.transport.get_write_buffer_size() > writer.transport.get_write_buffer_limits()[1]:
                        continue
                self._writer = writer           # from here on _flush writes directly
                self._wakeup.clear()
                woken = asyncio.ensure_future(self._wakeup.wait())
                await asyncio.wait((woken, closed), return_when=asyncio.FIRST_COMPLETED)
                woken.cancel()
                self._writer = None
        finally:
            self._writer = None
            closed.cancel()
            if woken is not None:
                woken.cancel()


class Peers:
    """Every outbound link of one node; a message to the node itself is delivered on the loop."""

    def __init__(self, local_endpoint: str, settings, stats: collections.Counter, deliver_local):
        self.local_endpoint = local_endpoint
        self.settings = settings
        self.stats = stats
        self._deliver_local = deliver_local     # deliver_local(src, msg), called soon on the loop
        self.links: dict[str, PeerLink] = {}
        self.dropped: set[str] = set()          # the nemesis's drop rules
        self._last: tuple = (None, b"")          # (message, its frame): one message to n replicas is encoded once

    def send(self, to: str, msg) -> None:
        if to in self.dropped:
            self.stats["nemesis_dropped"] += 1
            return
        if to == self.local_endpoint:
            asyncio.get_running_loop().call_soon(self._deliver_local, to, msg)   # rare: the node delivers its own
            return
        link = self.links.get(to)
        if link is None:
            link = self.links[to] = PeerLink(to, self.local_endpoint, self.settings, self.stats)
        last, frame = self._last
        if msg is not last:             # messages are frozen: the same object encodes to the same frame
            frame = encode_frame(encode(msg))
            self._last = (msg, frame)
        link.send(frame)

    async def close(self) -> None:
        await asyncio.gather(*(link.close() for link in self.links.values()))

    def metrics(self) -> dict[str, int]:
        links = self.links.values()
        return {"peer_links_up": sum(1 for link in links if link.connected),
                "peer_frames_queued": sum(len(link.queue) for link in links),
                "peer_frames_expired": sum(link.expired for link in links),
                "peer_frames_dropped": sum(link.dropped for link in links)}
