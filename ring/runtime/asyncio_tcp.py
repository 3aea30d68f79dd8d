"""The real-process runtime: one sans-IO `ring.node.Node` in one process, driven by asyncio.

Rule: the node decides; this driver only moves bytes and time. `NodeProcess` wires the rooms of
the runtime around the node and feeds it `now_ms` (monotonic), inbound internode messages
(`step`), client requests (`submit`, from every client protocol) and a tick every 100 ms, and
performs the effects: `Send` goes to the peer's outbound link (ring/runtime/peers.py), `Reply` to
the callback of the request it answers, `Durable` to the durability waiter
(ring/runtime/durability.py: the fsync wait of batch and group commit-log sync runs in a worker
thread, never on the loop; then `Node.durable` releases it). An exception raised by the node is
logged with the message type and counted (`node_errors`); the node keeps serving.

Rooms: listener.py (the own-protocol port: peers and clients), native_transport.py (the CQL
port), peers.py (outbound links), metrics_http.py (Prometheus), durability.py, gc_inspector.py
(the collector tuned once started, its pauses counted), event_trace.py (`event_trace = true`: a
timeline of loop stalls and background work). Data directory layout: `<data_directory>/host_id`
(uuid4 hex, created once, fsynced) and the engine Store rooted at `<data_directory>` (data/,
commitlog/, schema.db; docs/format.md).
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

from ring.errors import ConfigurationError
from ring.messages import ClientRequest, Durable, Reply, Send
from ring.runtime import config as config_mod, scheduling
from ring.runtime.durability import DurabilityWaiter
from ring.runtime.frames import ServerError
from ring.runtime.event_trace import open_trace
from ring.runtime.gc_inspector import GcInspector, tune as tune_gc
from ring.runtime.listener import Listener
from ring.runtime.metrics_http import MetricsHttp
from ring.runtime.native_transport import NativeTransport
from ring.runtime.peers import Peers

log = logging.getLogger("dynatable.runtime")

TICK_INTERVAL_S = 0.1
METRICS_INTERVAL_S = 1.0


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


class NodeProcess:
    """One node: the store, the sans-IO node, its listeners, the tick loop and the peer links."""

    def __init__(self, settings: config_mod.NodeSettings, node_factory=None,
                 config_factory=config_mod.to_node_config):
        self.settings = settings
        self.endpoint = settings.endpoint()
        self._node_factory = node_factory      # tests and tools may drive a stand-in node
        self._config_factory = config_factory
        self.stats = collections.Counter()
        self.peers = Peers(self.endpoint, settings, self.stats, self.step)
        self.listener = Listener(self)
        self.metrics = MetricsHttp(self)
        self.extra_metrics: list = []          # more snapshot sources: () -> {name: value}
        self.native_transport: NativeTransport | None = None
        self._requests: dict[int, object] = {}  # node request id -> on_reply(result, error)
        self._request_ids = itertools.count(1)
        self._tasks: list[asyncio.Task] = []
        self.node = None
        self.store = None
        self.gc: GcInspector | None = None
        self.trace = None                      # ring/runtime/event_trace.py, with event_trace = true

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
        await self.listener.start()
        self._perform(self.node.start(now_ms()))  # a refusal (e.g. decommissioned) stops the process
        if self._node_factory is None:    # a stand-in test node has no CQL to serve (nor a free 9042 each)
            self.native_transport = NativeTransport(self, s.native_transport_port)
            self.extra_metrics.append(self.native_transport.metrics)
            if self.node.gossip_settled(now_ms()):
                await self.native_transport.start()
            else:     # a restarted member: opened by the tick loop (ring/gossip_settle.py)
                log.info("waiting for gossip to settle before starting the CQL native transport")
        self._tasks.append(asyncio.ensure_future(self._tick_loop()))
        self.gc = GcInspector(s.gc_log_threshold_ms)
        self.extra_metrics.append(self.gc.metrics)
        if s.event_trace:
            self.trace = open_trace(s.data_directory, self.store)
            self.gc.listener = self.trace.gc_pause
            self.trace.start(asyncio.get_running_loop())
        if s.metrics_port:
            self.metrics.start(s.listen_address, s.metrics_port)
        log.info("listening on %s (host id %s, data %s)", self.endpoint, self.host_id, s.data_directory)

    async def stop(self) -> None:
        self.listener.stop_accepting()
        if self.native_transport is not None:
            self.native_transport.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.peers.close()
        await self.durability.close()
        self.listener.close()
        await asyncio.sleep(0)
        try:
            self.node.stop()
        finally:
            if self.trace is not None:
                self.trace.close()
            self.store.close()
            self.metrics.shutdown()
            if self.gc is not None:
                self.gc.close()
        log.info("stopped")

    async def _tick_loop(self) -> None:
        last_metrics = 0.0
        while True:
            await asyncio.sleep(TICK_INTERVAL_S)
            self._perform(self._call(self.node.tick))
            if self.native_transport is not None:
                if self.native_transport.server is not None:
                    self.native_transport.tick()
                elif self.node.gossip_settled(now_ms()):
                    await self._open_native_transport()
            if self.settings.metrics_port and time.monotonic() - last_metrics >= METRICS_INTERVAL_S:
                last_metrics = time.monotonic()
                self.metrics.snapshot()

    async def _open_native_transport(self) -> None:
        """Open the CQL port once gossip settled after a restart; a port taken meanwhile leaves
        the node serving without CQL (logged: restart it once the port is free)."""
        try:
            await self.native_transport.start()
        except OSError as e:
            log.error("cannot start the CQL native transport on port %d: %s; restart the node once the port "
                      "is free", self.native_transport.port, e)
            self.extra_metrics.remove(self.native_transport.metrics)
            self.native_transport = None

    def _call(self, fn, *args) -> list:
        """Call the node with the current time; a node exception is logged, never fatal."""
        try:
            return fn(now_ms(), *args) or []
        except Exception:
            log.exception("node.%s failed", getattr(fn, "__name__", fn))
            return []

    # -- the node's entry points, for the listeners --------------------------------------------

    def step(self, src: str, msg) -> None:
        """An internode message into the node. An exception there is a bug: logged with the
        message type and counted; the node keeps serving the other messages."""
        try:
            effects = self.node.step(now_ms(), src, msg)
        except Exception:
            self.stats["node_errors"] += 1
            log.exception("node.step failed on %s from %s", type(msg).__name__, src)
            return
        self._perform(effects)

    def submit(self, op: str, args: dict, on_reply) -> None:
        """A client operation into the node; `on_reply(result, error)` is called once, on the loop,
        when the node replies (never if the node drops the request)."""
        request_id = next(self._request_ids)
        self._requests[request_id] = on_reply
        try:
            effects = self.node.submit(now_ms(), ClientRequest(request_id, op, args))
        except Exception as e:
            log.exception("node.submit(%s) failed", op)
            effects = [Reply(request_id, None, ServerError(f"{type(e).__name__}: {e}"))]
        self._perform(effects)

    def requests_in_flight(self) -> int:
        return len(self._requests)

    # -- effects ----------------------------------------------------------------------------

    def _perform(self, effects) -> None:
        for effect in effects:
            if isinstance(effect, Send):
                self.peers.send(effect.to, effect.msg)
            elif isinstance(effect, Reply):
                on_reply = self._requests.pop(effect.request_id, None)
                if on_reply is not None:
                    on_reply(effect.result, effect.error)
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


# -- entry points ----------------------------------------------------------------------------------

def setup_logging(settings: config_mod.NodeSettings) -> None:
    logging.basicConfig(stream=sys.stderr, level=settings.log_level.upper(), force=True,
                        format=f"%(asctime)s %(levelname)s {settings.endpoint()} %(name)s: %(message)s")


async def serve(settings: config_mod.NodeSettings, node_factory=None, loop_name: str = "asyncio") -> None:
    """Run a node until SIGTERM or SIGINT, then stop it and close its store."""
    process = NodeProcess(settings, node_factory)
    await process.start()
    log.info("event loop: %s (event_loop = %s)", loop_name, settings.event_loop)   # once started: a
    #   node that refuses to start says only why (one line)
    tune_gc(settings.gc_young_threshold)     # the process is ours alone (not in tests' NodeProcesses)
    log.info("scheduling: %s", scheduling.apply(settings.gil_switch_interval_ms))
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
    name, run = config_mod.event_loop_runner(settings.event_loop)
    run(serve(settings, node_factory, name))


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
