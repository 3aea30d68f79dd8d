"""The asyncio TCP runtime and the client over real sockets.

Most tests drive `NodeProcess` in a thread of this process with `StoreNode`, a one-node stand-in
for ring.node.Node that answers client ops straight from its Store: they test the driver
(handshake, auth, frames, bad input, id mapping, peer links) without the ring's logic. The last
test starts a real `python -m ring.runtime.asyncio_tcp` process with the real ring.node.Node
(skipped while ring/node.py is not importable).
"""
from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import threading
import time
import types

import pytest

from engine.errors import InvalidRequest
from ring.client import AsyncCluster, Cluster, OperationTimedOut
from ring.errors import ConfigurationError, ProtocolError, UnavailableError
from ring.messages import ClientRequest, ClientResponse, GossipSyn, Reply, Send, decode, encode, packb
from ring.placement.token_ring import allocate_tokens
from ring.runtime import frames
from ring.runtime.asyncio_tcp import NodeProcess
from ring.runtime.config import NodeSettings, dump
from ring.runtime.frames import AuthenticationError, FrameDecoder, encode_frame


class StoreNode:
    """Answers client ops from its own Store (RF 1, one node); records internode messages."""

    def __init__(self, config, store, rng, clock):
        self.config, self.store, self.received, self.ticks = config, store, [], 0

    def start(self, now_ms):
        return []

    def stop(self):
        pass

    def tick(self, now_ms):
        self.ticks += 1
        return []

    def metrics(self):
        return {"ticks": self.ticks, "reads": {"local": 3}, "name": "not a number"}

    def step(self, now_ms, src, msg):
        self.received.append((src, msg))
        if isinstance(msg, GossipSyn) and msg.cluster_name == "ping":  # answer to the sender
            return [Send(src, GossipSyn("pong", []))]
        return []

    def submit(self, now_ms, req):
        try:
            return [Reply(req.id, self._answer(req.op, dict(req.args)))]
        except Exception as e:  # noqa: BLE001 - the driver sends it back as an error dict
            return [Reply(req.id, None, e)]

    def _answer(self, op, a):
        s = self.store
        consistency = a.pop("consistency", "ONE")
        if consistency == "ALL":
            raise UnavailableError("ALL", 3, 1)
        if op == "describe_ring":
            ep = self.config.endpoint
            return {"endpoints": {ep: {"datacenter": "datacenter1", "rack": "rack1", "status": "UP",
                                       "tokens": allocate_tokens(self.config.host_id, 4)}},
                    "keyspaces": {ks.name: ks.replication for ks in s.keyspaces.values()}}
        if op == "describe_schema":
            return {"tables": [t.to_dict() for ks in s.keyspaces.values() for t in ks.tables.values()]}
        return getattr(s, op)(**a)


class SendingNode(StoreNode):
    def submit(self, now_ms, req):
        if req.op == "send":
            return [Send(req.args["to"], GossipSyn(req.args["name"], [])), Reply(req.id, "sent")]
        if req.op == "slow":
            return []  # never answered: the client times out
        if req.op == "blob":
            return [Reply(req.id, b"x" * req.args["n"])]
        return super().submit(now_ms, req)


def stand_in_config(settings, host_id):
    return types.SimpleNamespace(endpoint=settings.endpoint(), host_id=host_id)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class NodeThread:
    def __init__(self, tmp_path, name="n1", **settings):
        settings.setdefault("port", free_port())
        self.settings = NodeSettings(data_directory=str(tmp_path / name), **settings)
        self.process = NodeProcess(self.settings, SendingNode, stand_in_config)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.run(self.process.start())
        self.endpoint = self.settings.endpoint()

    def run(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)

    def stop(self):
        if not self.loop.is_running():
            return
        self.run(self.process.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@pytest.fixture
def node(tmp_path):
    n = NodeThread(tmp_path)
    yield n
    n.stop()


def raw_client(endpoint, cluster_name="dynatable"):
    host, port = endpoint.rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=5)
    sock.sendall(encode_frame(frames.hello("client", "", cluster_name)))
    return sock


def read_payloads(sock, n=1):
    decoder, out = FrameDecoder(), []
    while len(out) < n:
        data = sock.recv(65536)
        if not data:
            break
        decoder.feed(data)
        while (p := decoder.next_payload()) is not None:
            out.append(p)
    return out


def use_table(session):
    session.create_keyspace("ks", {"class": "SimpleStrategy", "replication_factor": 1})
    session.create_table("t", {"id": "int", "c": "int", "v": "text"}, primary_key=("id", "c"), keyspace="ks")


def test_client_round_trip_and_errors(node):
    with Cluster([node.endpoint], timeout_s=2) as cluster:
        session = cluster.connect("ks")
        use_table(session)
        assert ("ks", "t") in cluster.metadata.tables  # refreshed after the schema change
        ts = session.insert("t", {"id": 1, "c": 1, "v": "a"}, consistency="QUORUM")
        session.insert("t", {"id": 1, "c": 2, "v": "b"})
        assert session.get("t", {"id": 1, "c": 1}) == {"id": 1, "c": 1, "v": "a"}
        assert session.get("t", {"id": 1, "c": 1}, writetime=True)["writetime(v)"] == ts
        assert [r["v"] for r in session.select("t", {"id": 1}, reverse=True)] == ["b", "a"]
        page = session.scan("t", page_size=1)
        assert len(page.rows) == 1 and page.paging_state is not None
        assert len(list(session.scan_all("t", page_size=1))) == 2
        session.delete("t", {"id": 1, "c": 1})
        assert session.get("t", {"id": 1, "c": 1}) is None
        with pytest.raises(UnavailableError, match="Cannot achieve consistency level ALL") as e:
            session.get("t", {"id": 1, "c": 2}, consistency="ALL")
        assert (e.value.required, e.value.alive) == (3, 1)
        with pytest.raises(InvalidRequest, match="does not exist"):
            session.get("nope", {"id": 1})
        assert cluster.metadata.replicas("ks", "t", {"id": 1}) == [node.endpoint]
        cluster.timeout_s = 0.3
        with pytest.raises(OperationTimedOut):
            session.execute("slow")  # never answered
        cluster.timeout_s = 2
        assert session.get("t", {"id": 1, "c": 2})["v"] == "b"  # the late-answer path stays usable


def test_async_client_pipelines(node):
    async def main():
        async with AsyncCluster([node.endpoint]) as cluster:
            session = await cluster.connect("ks")
            await session.create_keyspace("ks")
            await session.create_table("t", {"id": "int", "c": "int", "v": "text"}, primary_key=("id", "c"))
            await asyncio.gather(*(session.insert("t", {"id": i % 7, "c": i, "v": str(i)}) for i in range(200)))
            rows = [r async for r in session.scan_all("t", page_size=33)]
            assert len(rows) == 200
            with pytest.raises(UnavailableError):
                await session.get("t", {"id": 1, "c": 1}, consistency="ALL")
    asyncio.run(main())


def test_a_client_that_does_not_read_stops_the_node_reading_it(tmp_path):
    """Backpressure of the Protocol listener: responses piling up over the transport's high-water
    mark pause reading from that client; once it reads them all, reading resumes, none lost."""
    n = NodeThread(tmp_path)
    try:
        sock = raw_client(n.endpoint)
        assert frames.decode_handshake(read_payloads(sock)[0], ("ready",))[1] == n.endpoint
        count, size = 40, 256 * 1024
        sock.sendall(b"".join(encode_frame(encode(ClientRequest(i, "blob", {"n": size}))) for i in range(count)))

        def reading() -> list[bool]:
            async def probe():
                return [c.transport.is_reading() for c in n.process.listener.connections if c.role == "client"]
            return n.run(probe())
        deadline = time.monotonic() + 5
        while reading() != [False] and time.monotonic() < deadline:
            time.sleep(0.01)
        assert reading() == [False]          # paused while the responses sit unread
        got = [decode(p) for p in read_payloads(sock, count)]
        assert [(r.id, len(r.result)) for r in got] == [(i, size) for i in range(count)]
        deadline = time.monotonic() + 5
        while reading() != [True] and time.monotonic() < deadline:
            time.sleep(0.01)
        assert reading() == [True]           # drained: reading again
        sock.close()
    finally:
        n.stop()


@pytest.mark.parametrize("bad,expect", [
    (b"GET / HTTP/1.1\r\n\r\n", "bad frame magic"),
    (b"DT\x07\x00" + b"\x00" * 8, "protocol version 7 is not supported (this node speaks 1)"),
    (b"DT\x01\x00\x7f\xff\xff\xff" + b"x" * 16, "exceeds max_frame_bytes=16777216"),
    (encode_frame(b"\x93\x01\x02")[:-4] + b"\0\0\0\0", "checksum mismatch"),
    (encode_frame(packb([99, 1])), "unknown message type 99"),
    (encode_frame(encode(GossipSyn("x", []))), "clients send ClientRequest only"),
])
def test_bad_frames_close_only_their_connection(node, bad, expect):
    sock = raw_client(node.endpoint)
    assert frames.decode_handshake(read_payloads(sock)[0], ("ready",))[1] == node.endpoint
    sock.sendall(bad)
    payloads = read_payloads(sock, 2)
    response = decode(payloads[0])
    assert isinstance(response, ClientResponse) and response.id == 0 and expect in response.error["message"]
    assert len(payloads) == 1  # and then the node closed the connection
    with Cluster([node.endpoint]) as cluster:  # the node keeps serving
        assert cluster.connect().execute("describe_schema") == {"tables": []}


def test_garbage_before_hello_is_refused(node):
    host, port = node.endpoint.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(b"DT\x09\x00\x00\x00\x00\x00")
        with pytest.raises(ProtocolError, match="protocol version 9"):
            frames.decode_handshake(read_payloads(sock)[0], ("ready",))
    with raw_client(node.endpoint, cluster_name="other") as sock:
        with pytest.raises(ConfigurationError, match="cluster name mismatch"):
            frames.decode_handshake(read_payloads(sock)[0], ("ready",))


def test_shared_secret(tmp_path):
    n = NodeThread(tmp_path, cluster_secret="s3cret")
    try:
        with Cluster([n.endpoint], cluster_secret="s3cret") as cluster:
            assert cluster.connect().execute("describe_schema") == {"tables": []}
        for wrong in ("", "guess"):
            with pytest.raises(AuthenticationError, match="authentication failed: wrong or missing cluster_secret"):
                Cluster([n.endpoint], cluster_secret=wrong).connect()
    finally:
        n.stop()


def test_peer_links_deliver_queue_and_reconnect(tmp_path):
    a, b = NodeThread(tmp_path, "a"), NodeThread(tmp_path, "b")
    dead = f"127.0.0.1:{free_port()}"
    try:
        with Cluster([a.endpoint]) as cluster:
            session = cluster.connect()
            for i in range(5):
                assert session.execute("send", to=b.endpoint, name=f"m{i}") == "sent"
            session.execute("send", to=a.endpoint, name="self")
            session.execute("send", to=dead, name="lost")
        deadline = time.monotonic() + 5
        while len(b.process.node.received) < 5 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert [(src, m.cluster_name) for src, m in b.process.node.received] == [(a.endpoint, f"m{i}") for i in range(5)]
        assert (a.endpoint, GossipSyn("self", [])) in a.process.node.received
        assert a.process.peers.links[dead].queue  # queued while unreachable, bounded
        b.stop()  # b goes away; a's link backs off and reconnects when b is back on the same port
        with Cluster([a.endpoint]) as cluster:
            cluster.connect().execute("send", to=b.endpoint, name="after")
        b = NodeThread(tmp_path, "b", port=b.settings.port)
        deadline = time.monotonic() + 5
        while not b.process.node.received and time.monotonic() < deadline:
            time.sleep(0.02)
        assert [m.cluster_name for _, m in b.process.node.received] == ["after"]
    finally:
        a.stop()
        b.stop()


def test_sync_client_reconnects_after_a_node_restart(tmp_path):
    n = NodeThread(tmp_path)
    with Cluster([n.endpoint]) as cluster:
        session = cluster.connect("ks")
        use_table(session)
        n.stop()
        n = NodeThread(tmp_path, port=n.settings.port)
        time.sleep(0.05)
        session.insert("t", {"id": 2, "c": 2, "v": "after"})  # the dead socket is noticed before sending
        assert session.get("t", {"id": 2, "c": 2})["v"] == "after"
    n.stop()


def test_host_id_is_created_once(tmp_path):
    n = NodeThread(tmp_path)
    first = n.process.host_id
    n.stop()
    n = NodeThread(tmp_path)
    assert n.process.host_id == first and len(first) == 32
    n.stop()


def test_metrics_endpoint(tmp_path):
    pytest.importorskip("prometheus_client")
    import urllib.request
    n = NodeThread(tmp_path, metrics_port=free_port())
    try:
        time.sleep(1.2)
        body = urllib.request.urlopen(f"http://127.0.0.1:{n.settings.metrics_port}/metrics", timeout=5).read().decode()
        assert "dynatable_ticks " in body and "dynatable_reads_local 3.0" in body
        assert "dynatable_peer_frames_dropped" in body and "not a number" not in body
    finally:
        n.stop()


def test_real_node_process(tmp_path):
    pytest.importorskip("ring.node")
    port = free_port()
    cfg = tmp_path / "node.toml"
    metrics_port = free_port()
    cfg.write_text(dump(NodeSettings(port=port, data_directory=str(tmp_path / "data"), num_tokens=4,
                                     metrics_port=metrics_port, native_transport_port=free_port())))
    proc = subprocess.Popen([sys.executable, "-m", "ring.runtime.asyncio_tcp", "--config", str(cfg)],
                            stderr=subprocess.PIPE, text=True, cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    endpoint = f"127.0.0.1:{port}"
    try:
        _wait_listening(proc, port)
        with Cluster([endpoint], timeout_s=10) as cluster:
            session = cluster.connect("ks")
            use_table(session)
            session.insert("t", {"id": 1, "c": 1, "v": "a"})
            assert session.get("t", {"id": 1, "c": 1}) == {"id": 1, "c": 1, "v": "a"}
            for bad in (b"garbage!" * 4, b"DT\x01\x00\x7f\xff\xff\xff", b"DT\x07\x00\x00\x00\x00\x00"):
                sock = raw_client(endpoint)
                read_payloads(sock)
                sock.sendall(bad)
                assert decode(read_payloads(sock)[0]).error["type"] == "ProtocolError"
                sock.close()
            assert session.get("t", {"id": 1, "c": 1})["v"] == "a"
            assert session.scan("t").rows == [{"id": 1, "c": 1, "v": "a"}]
            import urllib.request
            time.sleep(1.2)  # the metrics snapshot is refreshed every second
            text = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).read().decode()
            assert 'dynatable_request_latency_seconds_count{consistency="ONE",op="insert"} 1.0' in text
            assert 'dynatable_request_latency_seconds_bucket{consistency="ONE",le="+Inf",op="get"}' in text
            assert "dynatable_memtable_bytes" in text
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err[-3000:]
    assert "stopped" in err and endpoint in err


def _wait_listening(proc, port, timeout_s=10.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"node exited: {proc.stderr.read()[-3000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError("node did not start listening")
