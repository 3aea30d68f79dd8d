"""The real-process runtime: one sans-IO `ring.node.Node` behind one TCP port, driven by asyncio.

Rule: the node decides; this driver only moves bytes and time. It feeds `now_ms` (monotonic),
inbound messages (`step`), client requests (`submit`) and a tick every 100 ms, and performs the
effects: `Send` goes to the peer's outbound link, `Reply` to the client connection that asked,
`Durable` to the durability waiter (ring/runtime/durability.py: the fsync wait of batch and group
commit-log sync runs in a worker thread, never on the loop; then `Node.durable` releases it).

Connections (docs/format.md (wire)): the first frame is the hello (optionally followed by an HMAC
challenge). Inbound peer connections carry internode messages; inbound client connections carry
ClientRequests, which get node-unique request ids mapped back to (connection, client id).
Outbound, one `PeerLink` per peer: lazy connect, backoff 100 ms -> 5 s, a bounded queue
(oldest dropped), queued frames written in one write; a frame still queued after
write_request_timeout_ms is dropped (its request has timed out and been hinted, as Cassandra
expires internode messages). A bad frame closes only its connection; a well-framed message
from a peer that does not decode is counted (`malformed_messages`), logged and skipped. An
exception raised by the node is logged with the message type and counted (`node_errors`); the
node keeps serving.

Data directory layout: `<data_directory>/host_id` (uuid4 hex, created once, fsynced) and the
engine Store rooted at `<data_directory>` (data/, commitlog/, schema.db; docs/format.md).
Run: `python -m ring.runtime.asyncio_tcp --config node.toml` (or `dynatable node --config`).
"""
from __future__ import annotations

import argparse
import asyncio
import collections
import itertools
import logging
import os
import random
import signal
import sys
import time
import uuid

from engine.errors import EngineError, InvalidRequest
from ring.errors import ConfigurationError, ProtocolError, RequestError
from ring.messages import ClientRequest, ClientResponse, Durable, Reply, Send, decode, encode
from ring.runtime import config as config_mod
from ring.runtime.durability import DurabilityWaiter
from ring.runtime.frames import (ConnectorHandshake, FrameDecoder, ServerError, ServerHandshake, encode_frame,
                                 error_to_wire, refuse, split_endpoint)

log = logging.getLogger("dynatable.runtime")

TICK_INTERVAL_S = 0.1
METRICS_INTERVAL_S = 1.0
BACKOFF_MIN_S = 0.1
BACKOFF_MAX_S = 5.0
HANDSHAKE_TIMEOUT_S = 10.0
READ_CHUNK_BYTES = 256 * 1024
_REFUSALS = (RequestError, ConfigurationError, EngineError)


def now_ms() -> int:
    return int(time.monotonic() * 1000)


def load_host_id(data_directory: str) -> str:
    """The node's host id: read from <data_directory>/host_id, created (and fsynced) once."""
    path = os.path.join(data_directory, "host_id")
    if os.path.exists(path):
        with open(path) as f:
            host_id = f.read().strip()
        if len(host_id) != 32 or any(c not in "0123456789abcdef" for c in host_id):
            raise ConfigurationError(f"{path} does not hold a uuid hex host id: {host_id!r}")
        return host_id
    host_id = uuid.uuid4().hex
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(host_id + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return host_id


async def read_payload(reader: asyncio.StreamReader, decoder: FrameDecoder) -> bytes:
    while (payload := decoder.next_payload()) is None:
        data = await reader.read(READ_CHUNK_BYTES)
        if not data:
            raise ConnectionResetError("connection closed by the other side")
        decoder.feed(data)
    return payload


def wire_result(result):
    """A node result as msgpack-able data (a ScanPage becomes {"rows", "paging_state"})."""
    if hasattr(result, "rows") and hasattr(result, "paging_state"):
        return {"rows": result.rows, "paging_state": result.paging_state}
    if hasattr(result, "to_dict"):
        return result.to_dict()
    return result


class PeerLink:
    """Outbound frames to one peer over one connection of our own (role "peer")."""

    def __init__(self, process: NodeProcess, endpoint: str):
        self.process = process
        self.endpoint = endpoint
        self.queue: collections.deque[tuple[float, bytes]] = collections.deque()
        self.dropped = 0
        self.expired = 0
        self.connected = False
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task | None = None

    def send(self, frame: bytes) -> None:
        if len(self.queue) >= self.process.settings.peer_queue_frames_max:
            self.queue.popleft()
            self.dropped += 1
        self.queue.append((time.monotonic(), frame))
        self._wakeup.set()
        if self._task is None:
            self._task = asyncio.ensure_future(self._run())

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
            except _REFUSALS as e:
                failures += 1
                log.error("peer %s refused or broke the connection: %s", self.endpoint, e)
            finally:
                self.connected = False
                if writer is not None:
                    writer.close()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, BACKOFF_MAX_S)

    async def _handshake(self, reader, writer) -> None:
        s = self.process.settings
        handshake = ConnectorHandshake("peer", self.process.endpoint, s.cluster_name, s.cluster_secret)
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
                if not self.queue:
                    self._wakeup.clear()
                    woken = asyncio.ensure_future(self._wakeup.wait())
                    await asyncio.wait((woken, closed), return_when=asyncio.FIRST_COMPLETED)
                    woken.cancel()
                if closed.done():
                    raise ConnectionResetError("peer closed the connection")
                oldest = time.monotonic() - self.process.settings.write_request_timeout_ms / 1000
                frames = [frame for queued_at, frame in self.queue if queued_at >= oldest]
                self.expired += len(self.queue) - len(frames)
                self.queue.clear()
                if not frames:
                    continue
                writer.write(b"".join(frames))
                self.process.stats["peer_frames_sent"] += len(frames)
                await writer.drain()
        finally:
            closed.cancel()
            if woken is not None:
                woken.cancel()


class ClientConnection:
    """An inbound connection; replies are coalesced into one write per loop iteration."""

    def __init__(self, writer: asyncio.StreamWriter):
        self.writer = writer
        self.peername = writer.get_extra_info("peername")
        self.role: str | None = None
        self.remote_endpoint = ""
        self.closed = False
        self._outbox: list[bytes] = []

    def write(self, frame: bytes) -> None:
        if self.closed:
            return
        if not self._outbox:
            asyncio.get_running_loop().call_soon(self._flush)
        self._outbox.append(frame)

    def _flush(self) -> None:
        if self._outbox and not self.closed:
            self.writer.write(b"".join(self._outbox))
        self._outbox.clear()

    def close(self) -> None:
        self._flush()
        self.closed = True
        self.writer.close()


class NodeProcess:
    """One node: the store, the sans-IO node, the TCP server, the tick loop and the peer links."""

    def __init__(self, settings: config_mod.NodeSettings, node_factory=None,
                 config_factory=config_mod.to_node_config):
        self.settings = settings
        self.endpoint = settings.endpoint()
        self._node_factory = node_factory      # tests and tools may drive a stand-in node
        self._config_factory = config_factory
        self.links: dict[str, PeerLink] = {}
        self.dropped_peers: set[str] = set()   # the nemesis's drop rules (see _set_drop_rules)
        self.connections: set[ClientConnection] = set()
        self._requests: dict[int, tuple[ClientConnection, int]] = {}
        self._request_ids = itertools.count(1)
        self._tasks: list[asyncio.Task] = []
        self.stats = collections.Counter()
        self.metrics_snapshot: dict[str, float] = {}
        self._metrics_server = None
        self.node = None
        self.store = None

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        from engine.clock import SystemClock
        from engine.store import Store
        s = self.settings
        os.makedirs(s.data_directory, exist_ok=True)
        self.host_id = load_host_id(s.data_directory)
        self.store = Store.open(s.data_directory, **s.store_options())
        self.durability = DurabilityWaiter(self.store.await_durable, self._durable)
        factory = self._node_factory
        if factory is None:
            from ring.node import Node as factory
        rng = random.Random(int.from_bytes(os.urandom(8), "big"))
        self.node = factory(self._config_factory(s, self.host_id), self.store, rng, SystemClock())
        self._server = await asyncio.start_server(self._serve, s.listen_address, s.port, reuse_address=True)
        self._perform(self.node.start(now_ms()))  # a refusal (e.g. decommissioned) stops the process
        self._tasks.append(asyncio.ensure_future(self._tick_loop()))
        if s.metrics_port:
            self._start_metrics()
        log.info("listening on %s (host id %s, data %s)", self.endpoint, self.host_id, s.data_directory)

    async def stop(self) -> None:
        self._server.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await asyncio.gather(*(link.close() for link in self.links.values()))
        await self.durability.close()
        for conn in list(self.connections):
            conn.close()
        await asyncio.sleep(0)
        try:
            self.node.stop()
        finally:
            self.store.close()
            if self._metrics_server is not None:
                self._metrics_server.shutdown()
        log.info("stopped")

    async def _tick_loop(self) -> None:
        last_metrics = 0.0
        while True:
            await asyncio.sleep(TICK_INTERVAL_S)
            self._perform(self._call(self.node.tick))
            if self._metrics_server is not None and time.monotonic() - last_metrics >= METRICS_INTERVAL_S:
                last_metrics = time.monotonic()
                self._snapshot_metrics()

    def _call(self, fn, *args) -> list:
        """Call the node with the current time; a node exception is logged, never fatal."""
        try:
            return fn(now_ms(), *args) or []
        except Exception:
            log.exception("node.%s failed", getattr(fn, "__name__", fn))
            return []

    # -- effects ----------------------------------------------------------------------------

    def _perform(self, effects) -> None:
        for effect in effects:
            if isinstance(effect, Send):
                self._send(effect.to, effect.msg)
            elif isinstance(effect, Reply):
                self._reply(effect.request_id, effect.result, effect.error)
            elif isinstance(effect, Durable):
                self.durability.add(effect)
            else:
                log.error("unknown effect %r dropped", effect)

    def _durable(self, effect: Durable, error: str | None) -> None:
        """The waiter saw `effect.position` durable (or failed): the node releases what it held."""
        try:
            effects = self.node.durable(now_ms(), effect, error)
        except Exception:
            self.stats["node_errors"] += 1
            log.exception("node.durable failed")
            return
        self._perform(effects)

    def _send(self, to: str, msg) -> None:
        if to in self.dropped_peers:
            self.stats["nemesis_dropped"] += 1
            return
        if to == self.endpoint:
            asyncio.get_running_loop().call_soon(self._deliver, to, msg)
            return
        link = self.links.get(to)
        if link is None:
            link = self.links[to] = PeerLink(self, to)
        link.send(encode_frame(encode(msg)))

    def _deliver(self, src: str, msg) -> None:
        self._step(src, msg)

    def _reply(self, request_id: int, result, error) -> None:
        conn, client_id = self._requests.pop(request_id, (None, 0))
        if conn is None or conn.closed:
            return
        try:
            payload = encode(ClientResponse(client_id, wire_result(result) if error is None else None,
                                            error_to_wire(error) if error is not None else None))
        except (TypeError, ValueError, OverflowError) as e:
            log.error("result of request %d does not encode: %s", request_id, e)
            payload = encode(ClientResponse(client_id, None, error_to_wire(ServerError(f"result does not encode: {e}"))))
        conn.write(encode_frame(payload))

    # -- inbound ----------------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = ClientConnection(writer)
        self.connections.add(conn)
        decoder = FrameDecoder(self.settings.max_frame_bytes)
        try:
            if not await self._accept(conn, reader, decoder):
                return
            while True:
                data = await reader.read(READ_CHUNK_BYTES)
                if not data:
                    return
                decoder.feed(data)
                while (payload := decoder.next_payload()) is not None:
                    msg = self._decode(conn, payload)
                    if msg is not None:
                        self._on_message(conn, msg)
                await writer.drain()
        except (ProtocolError, InvalidRequest) as e:
            self._on_bad_input(conn, e)
        except (OSError, asyncio.IncompleteReadError):
            pass
        except Exception:
            log.exception("connection from %s failed", conn.peername)
        finally:
            self.connections.discard(conn)
            conn.close()

    async def _accept(self, conn: ClientConnection, reader, decoder: FrameDecoder) -> bool:
        s = self.settings
        handshake = ServerHandshake(self.endpoint, s.cluster_name, s.cluster_secret)
        try:
            async with asyncio.timeout(HANDSHAKE_TIMEOUT_S):
                while not handshake.done:
                    conn.writer.write(handshake.receive(await read_payload(reader, decoder)))
        except TimeoutError:
            log.warning("handshake from %s timed out; closing", conn.peername)
            return False
        except _REFUSALS as e:
            self.stats["connections_refused"] += 1
            log.warning("refused connection from %s: %s", conn.peername, e)
            conn.writer.write(encode_frame(refuse(e)))
            return False
        conn.role, conn.remote_endpoint = handshake.role, handshake.remote_endpoint
        return True

    def _decode(self, conn: ClientConnection, payload: bytes):
        """The frame's message; a malformed one from a peer is counted, logged and skipped (the
        frame was whole and checksummed, so the connection stays in step); from a client, the
        error goes back to it and its connection is closed."""
        try:
            return decode(payload)
        except InvalidRequest as e:
            if conn.role != "peer":
                raise
            self.stats["malformed_messages"] += 1
            log.warning("rejected a message from peer %s: %s", conn.remote_endpoint, e)
            return None

    def _step(self, src: str, msg) -> None:
        """An internode message into the node. An exception there is a bug: logged with the
        message type and counted; the node keeps serving the other messages."""
        try:
            effects = self.node.step(now_ms(), src, msg)
        except Exception:
            self.stats["node_errors"] += 1
            log.exception("node.step failed on %s from %s", type(msg).__name__, src)
            return
        self._perform(effects)

    def _on_message(self, conn: ClientConnection, msg) -> None:
        self.stats["messages_received"] += 1
        if conn.role == "client":
            if not isinstance(msg, ClientRequest):
                raise ProtocolError(f"a client sent {type(msg).__name__}; clients send ClientRequest only")
            if msg.op == "nemesis_drop":
                self._set_drop_rules(conn, msg)
                return
            self._submit(conn, msg)
        else:
            if isinstance(msg, (ClientRequest, ClientResponse)):
                raise ProtocolError(f"peer {conn.remote_endpoint} sent a {type(msg).__name__} on a peer connection")
            if conn.remote_endpoint in self.dropped_peers:
                self.stats["nemesis_dropped"] += 1
                return
            self._step(conn.remote_endpoint, msg)

    def _set_drop_rules(self, conn: ClientConnection, req: ClientRequest) -> None:
        """Fault injection for the real-process nemesis: drop every message to and from these
        peers (a partition without root privileges). `peers=[]` heals."""
        peers = req.args.get("peers") if isinstance(req.args, dict) else None
        self.dropped_peers = set(peers or [])
        log.warning("nemesis: dropping messages to and from %s", sorted(self.dropped_peers) or "nobody")
        conn.write(encode_frame(encode(ClientResponse(req.id, {"dropped": sorted(self.dropped_peers)}, None))))

    def _submit(self, conn: ClientConnection, req: ClientRequest) -> None:
        request_id = next(self._request_ids)
        self._requests[request_id] = (conn, req.id)
        try:
            effects = self.node.submit(now_ms(), ClientRequest(request_id, req.op, req.args))
        except Exception as e:
            log.exception("node.submit(%s) failed", req.op)
            effects = [Reply(request_id, None, ServerError(f"{type(e).__name__}: {e}"))]
        self._perform(effects)

    def _on_bad_input(self, conn: ClientConnection, exc: Exception) -> None:
        self.stats["protocol_errors"] += 1
        log.warning("closing connection from %s (%s %s): %s", conn.peername, conn.role or "before hello",
                    conn.remote_endpoint, exc)
        if conn.role == "client":
            conn.write(encode_frame(encode(ClientResponse(0, None, error_to_wire(exc)))))
        elif conn.role is None:
            conn.write(encode_frame(refuse(exc)))

    # -- metrics ----------------------------------------------------------------------------

    def _snapshot_metrics(self) -> None:
        values: dict[str, float] = {}
        try:
            node_metrics = self.node.metrics() if hasattr(self.node, "metrics") else {}
        except Exception:
            log.exception("node.metrics() failed")
            node_metrics = {}
        _flatten(node_metrics, "", values)
        values.update({
            "client_connections": sum(1 for c in self.connections if c.role == "client"),
            "peer_connections_in": sum(1 for c in self.connections if c.role == "peer"),
            "peer_links_up": sum(1 for link in self.links.values() if link.connected),
            "peer_frames_queued": sum(len(link.queue) for link in self.links.values()),
            "peer_frames_expired": sum(link.expired for link in self.links.values()),
            "peer_frames_dropped": sum(link.dropped for link in self.links.values()),
            "client_requests_in_flight": len(self._requests),
            "durability_waits": self.durability.batches, "durable_acks": self.durability.waited,
            **{k: v for k, v in self.stats.items()},
        })
        self.metrics_snapshot = values

    def _start_metrics(self) -> None:
        from prometheus_client import CollectorRegistry, start_http_server
        from prometheus_client.core import GaugeMetricFamily
        process = self

        class Collector:
            def collect(self):
                for name, value in sorted(process.metrics_snapshot.items()):
                    yield GaugeMetricFamily(f"dynatable_{name}", name, value=value)
                yield from _request_histograms(process.node)

        registry = CollectorRegistry(auto_describe=False)
        registry.register(Collector())
        self._snapshot_metrics()
        started = start_http_server(self.settings.metrics_port, addr=self.settings.listen_address,
                                    registry=registry)
        self._metrics_server = started[0] if isinstance(started, tuple) else None


def _request_histograms(node):
    """Per op and consistency level: a latency histogram (seconds) and error counts by type."""
    from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily
    from ring.stats import LATENCY_BUCKETS_MS
    stats = dict(getattr(node, "request_stats", {}))
    latency = HistogramMetricFamily("dynatable_request_latency_seconds",
                                    "coordinator request latency by op and consistency level",
                                    labels=["op", "consistency"])
    errors = CounterMetricFamily("dynatable_request_errors", "coordinator request errors by type",
                                 labels=["op", "consistency", "error"])
    for (op, level), st in sorted(stats.items()):
        cumulative, buckets = 0, []
        for bound, n in zip([*LATENCY_BUCKETS_MS, float("inf")], st.buckets):
            cumulative += n
            buckets.append((str(bound / 1000) if bound != float("inf") else "+Inf", cumulative))
        latency.add_metric([op, level], buckets, st.sum_ms / 1000)
        for name, n in sorted(st.errors.items()):
            errors.add_metric([op, level, name], n)
    yield latency
    yield errors


def _flatten(obj: dict, prefix: str, out: dict) -> None:
    for key, value in obj.items():
        name = prefix + "".join(c if c.isalnum() else "_" for c in str(key))
        if isinstance(value, dict):
            _flatten(value, name + "_", out)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            out[name] = value


# -- entry points ----------------------------------------------------------------------------------

def setup_logging(settings: config_mod.NodeSettings) -> None:
    logging.basicConfig(stream=sys.stderr, level=settings.log_level.upper(), force=True,
                        format=f"%(asctime)s %(levelname)s {settings.endpoint()} %(name)s: %(message)s")


async def serve(settings: config_mod.NodeSettings, node_factory=None) -> None:
    """Run a node until SIGTERM or SIGINT, then stop it and close its store."""
    process = NodeProcess(settings, node_factory)
    await process.start()
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    await stopping.wait()
    log.info("signal received; stopping")
    await process.stop()


def run_node(config_path: str | None, node_factory=None) -> None:
    settings = config_mod.load(config_path) if config_path else config_mod.NodeSettings()
    setup_logging(settings)
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass
    asyncio.run(serve(settings, node_factory))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dynatable node", description="Run one dynatable node.")
    parser.add_argument("--config", help="node settings (TOML); see --print-default-config")
    parser.add_argument("--print-default-config", action="store_true", help="print every key and its default")
    parser.add_argument("--ignore-replay-errors", action="store_true",
                        help="skip corrupt synced commit-log sections instead of refusing to start")
    args = parser.parse_args(argv)
    if args.print_default_config:
        sys.stdout.write(config_mod.dump_default())
        return 0
    from engine.errors import CorruptionError
    from engine.recovery import IGNORE_REPLAY_ERRORS_ENV
    if args.ignore_replay_errors:
        os.environ[IGNORE_REPLAY_ERRORS_ENV] = "true"
    try:
        run_node(args.config)
    except ConfigurationError as e:
        print(f"dynatable node: {e}", file=sys.stderr)
        return 2
    except CorruptionError as e:  # the store refused to open: one line that says what to do
        text = str(e)
        hint = ("" if "repair" in text else " (for a node: the flag --ignore-replay-errors)"
                if "ignore_replay_errors" in text else "; keep a copy of the data directory, then start "
                "with --ignore-replay-errors to skip what is damaged (and run nodetool repair)")
        print(f"dynatable node: {e}{hint}", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
