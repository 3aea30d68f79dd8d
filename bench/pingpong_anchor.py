"""The cluster benchmark's anchor: asyncio request/response ping-pong over loopback TCP.

specs/performance.md's floor "asyncio server, 32 concurrent connections ~30k msgs/s", measured in
the same run as the cluster figures so ratios do not depend on how noisy the machine is today.

- server: its own process, `asyncio.start_server`, echoes every length-prefixed frame
  (4-byte big-endian length + payload) back on the same connection;
- client: another process, one asyncio loop, 32 connections; each connection sends one ~100-byte
  frame, waits for the echo, and repeats (one request in flight per connection), for N seconds;
- a "message" is one completed request/response round trip; the figure is round trips per second;
- `event_loop` ("asyncio" or "uvloop", ring/runtime/config.py's setting): both processes run on
  that loop, so the cluster bench compares nodes on uvloop with a uvloop anchor (the twin) and
  nodes on asyncio with the asyncio anchor.

    python -m bench.pingpong_anchor --seconds 5 [--event-loop uvloop]
"""
from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import socket
import struct
import time

CONNECTIONS = 32
PAYLOAD_BYTES = 100
_LEN = struct.Struct(">I")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        while True:
            header = await reader.readexactly(4)
            payload = await reader.readexactly(_LEN.unpack(header)[0])
            writer.write(header + payload)
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


def _runner(event_loop: str):
    from ring.runtime.config import event_loop_runner
    name, run = event_loop_runner(event_loop)
    if event_loop != "auto" and name != event_loop:
        raise RuntimeError(f"anchor asked for {event_loop}, got {name}")
    return run


def _serve(port: int, ready, event_loop: str = "asyncio") -> None:
    async def main() -> None:
        server = await asyncio.start_server(_echo, "127.0.0.1", port, backlog=128)
        ready.set()
        async with server:
            await server.serve_forever()
    try:
        _runner(event_loop)(main())
    except KeyboardInterrupt:
        pass


async def _client_main(port: int, seconds: float, connections: int) -> tuple[int, float]:
    conns = [await asyncio.open_connection("127.0.0.1", port) for _ in range(connections)]
    for _, w in conns:
        w.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    frame = _LEN.pack(PAYLOAD_BYTES) + os.urandom(PAYLOAD_BYTES)
    counts = [0] * connections
    stop = False

    async def one(i: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        n = 0
        while not stop:
            writer.write(frame)
            header = await reader.readexactly(4)
            await reader.readexactly(_LEN.unpack(header)[0])
            n += 1
        counts[i] = n

    async def timer() -> None:
        nonlocal stop
        await asyncio.sleep(seconds)
        stop = True

    for r, w in conns:  # one round trip each, so connection setup stays out of the timed window
        w.write(frame)
        await r.readexactly(4 + PAYLOAD_BYTES)
    t0 = time.perf_counter()
    await asyncio.gather(timer(), *(one(i, r, w) for i, (r, w) in enumerate(conns)))
    elapsed = time.perf_counter() - t0
    for _, w in conns:
        w.close()
    return sum(counts), elapsed


def _client(port: int, seconds: float, connections: int, out, event_loop: str = "asyncio") -> None:
    out.put(_runner(event_loop)(_client_main(port, seconds, connections)))


def measure_pingpong(seconds: float = 5.0, connections: int = CONNECTIONS, event_loop: str = "asyncio") -> float:
    """Round trips per second: echo server in one process, `connections` clients in another, both
    on `event_loop` ("asyncio" or "uvloop")."""
    ctx = mp.get_context("spawn")
    port = _free_port()
    ready = ctx.Event()
    server = ctx.Process(target=_serve, args=(port, ready, event_loop), daemon=True)
    server.start()
    try:
        if not ready.wait(30):
            raise RuntimeError("echo server did not start")
        out = ctx.Queue()
        client = ctx.Process(target=_client, args=(port, seconds, connections, out, event_loop),
                             daemon=True)
        client.start()
        msgs, elapsed = out.get(timeout=seconds + 60)
        client.join(10)
        return msgs / elapsed
    finally:
        server.terminate()
        server.join(10)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--connections", type=int, default=CONNECTIONS)
    ap.add_argument("--event-loop", choices=("asyncio", "uvloop"), default="asyncio")
    args = ap.parse_args()
    rate = measure_pingpong(args.seconds, args.connections, args.event_loop)
    print(f"{args.event_loop} ping-pong, {args.connections} connections, {PAYLOAD_BYTES} B: {rate:,.0f} msgs/s")


if __name__ == "__main__":
    main()
