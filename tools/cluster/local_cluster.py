"""`LocalCluster`: a local multi-process cluster, in the spirit of ccm (the CLI's and the tests' API).

    with LocalCluster.create("dev", n=3, root=tmp, settings={"gossip_interval_ms": 500}) as c:
        c.start()                       # blocks until every node sees every node Up and NORMAL
        session = c.client().connect()
        c.kill("node3"); c.wait_for_down("node3")
        c.restart("node3")              # start + wait until the ring is whole again

This class holds creation and loading, node selection, process control and asking nodes; the
files are `layout.py`'s, the processes `processes.py`'s, the waits `waits.py`'s and the topology
changes `operations.py`'s. Nothing is kept between commands: a loaded cluster knows its nodes from
cluster.toml and whether they run from their pid files.
"""
from __future__ import annotations

import os
import shutil
import signal
import time
from collections.abc import Callable

from ring.runtime import config as config_mod
from tools.cluster import addresses, layout, processes
from tools.cluster.layout import ClusterError, default_root
from tools.cluster.operations import TopologyOperations
from tools.cluster.processes import NodeHandle
from tools.cluster.waits import ClusterWaits

POLL_TIMEOUT_S = 2.0
NATIVE_TRANSPORT_PORT = 9042  # every node's CQL port, on its own address, when it is free  # one status request; a paused node must not stall a wait for long


class LocalCluster(ClusterWaits, TopologyOperations):
    def __init__(self, name: str, root: str, nodes: list[NodeHandle], progress=None):
        self.name = name
        self.root = root
        self.path = os.path.join(root, name)
        self.nodes = nodes
        self.progress: Callable[[str], None] | None = progress  # the CLI shows what is being waited for
        self._clients: dict[str, object] = {}

    # -- creation and loading ------------------------------------------------------------------

    @classmethod
    def create(cls, name: str, n: int = 3, *, datacenters: str | None = None, root: str | None = None,
               base_port: int | None = None, settings: dict | None = None, metrics: bool = False) -> LocalCluster:
        """Write the cluster's directory; nothing is started. `datacenters` ("dc1:3,dc2:2") overrides
        `n`; seeds are the first node of each datacenter. Node N listens on 127.0.0.N, every node
        on the same port: `base_port`, or one free on every address (tools/cluster/addresses.py).
        `metrics=True` gives every node a Prometheus port too (base_port + 100, or a free one).
        The CQL port (native_transport_port) is 9042 on every node when free on every address.
        `settings={"listen_address": H}` puts every node on H, on ports base_port + i."""
        root = os.path.abspath(root or default_root())
        layout.check_name(name)
        path = os.path.join(root, name)
        if os.path.exists(os.path.join(path, layout.CLUSTER_FILE)):
            raise ClusterError(f"a cluster named {name} already exists under {root}; "
                               f"remove it with `dynatable cluster remove {name}` or pick another name")
        dcs = layout.parse_datacenters(datacenters) if datacenters else [("datacenter1", n)]
        total = sum(c for _, c in dcs)
        if total < 1:
            raise ClusterError("a cluster needs at least one node (-n 1 or more)")
        overrides = dict(settings or {})
        for key in layout.PER_NODE_SETTINGS:
            if key in overrides:
                hint = " (pass metrics=True / --metrics for one port per node)" if key == "metrics_port" else ""
                raise ClusterError(f"setting {key!r} is chosen per node by the cluster manager{hint}")
        try:
            hosts = addresses.node_hosts(total, overrides.get("listen_address"))
            fixed = [base_port, base_port + 100 if base_port is not None else None, None]
            ports, mports, cql_ports = addresses.node_ports(hosts, fixed, [None, None, NATIVE_TRANSPORT_PORT])
        except addresses.AddressError as e:
            raise ClusterError(str(e)) from None
        mports = mports if metrics else [0] * total
        specs = layout.plan_nodes(dcs, hosts, ports, mports, cql_ports)
        seeds = layout.seeds_of(specs)
        os.makedirs(path, exist_ok=True)
        for spec in specs:
            layout.write_node(os.path.join(path, spec.name), f"{spec.name} of cluster {name}",
                              {"auto_bootstrap": False, **overrides, "listen_address": spec.host, "port": spec.port,
                               "metrics_port": spec.metrics_port, "native_transport_port": spec.native_transport_port,
                               "seeds": seeds, "datacenter": spec.datacenter},
                              cleanup=path)
        layout.write_cluster_file(path, name, dcs, overrides, specs)
        cluster = cls.load(name, root)
        cluster.set_current()
        return cluster

    @classmethod
    def load(cls, name: str, root: str | None = None) -> LocalCluster:
        root = os.path.abspath(root or default_root())
        path = os.path.join(root, name)
        meta = layout.read_meta(path)
        return cls(meta.get("name", name), root, layout.read_nodes(path, meta))

    @staticmethod
    def current_name(root: str | None = None) -> str | None:
        return layout.current_name(os.path.abspath(root or default_root()))

    @staticmethod
    def list_names(root: str | None = None) -> list[str]:
        return layout.list_names(os.path.abspath(root or default_root()))

    def set_current(self) -> None:
        layout.set_current(self.root, self.name)

    # -- nodes -----------------------------------------------------------------------------------

    def node(self, name_or_index) -> NodeHandle:
        if isinstance(name_or_index, NodeHandle):
            return name_or_index
        if isinstance(name_or_index, int) or (isinstance(name_or_index, str) and name_or_index.isdigit()):
            i = int(name_or_index)
            # an int is a 0-based index; a digit string is "node<N>"'s N, as people type it
            idx = i if isinstance(name_or_index, int) else i - 1
            if 0 <= idx < len(self.nodes):
                return self.nodes[idx]
        else:
            for nh in self.nodes:
                if name_or_index in (nh.name, nh.endpoint):
                    return nh
        names = ", ".join(nh.name for nh in self.nodes)
        raise ClusterError(f"no node {name_or_index!r} in cluster {self.name} (nodes: {names})")

    def _select(self, nodes) -> list[NodeHandle]:
        if nodes is None:
            return list(self.nodes)
        if isinstance(nodes, (str, int, NodeHandle)):
            nodes = [nodes]
        return [self.node(n) for n in nodes]

    def running(self) -> list[NodeHandle]:
        return [nh for nh in self.nodes if nh.is_running()]

    def contact_points(self) -> list[str]:
        return [nh.endpoint for nh in self.nodes]

    def client(self, **kw):
        from ring.client import Cluster
        kw.setdefault("cluster_name", self.setting("cluster_name", "dynatable"))
        secret = self.setting("cluster_secret", "")
        if secret:
            kw.setdefault("cluster_secret", secret)
        return Cluster(self.contact_points(), **kw)

    def setting(self, key: str, default):
        """A node setting as node1 has it (cluster_name, cluster_secret, ...), else `default`."""
        if not self.nodes:
            return default
        try:
            return getattr(config_mod.load(self.nodes[0].config_path), key)
        except Exception:  # noqa: BLE001 - a broken config shows up when the node starts
            return default

    # -- processes -------------------------------------------------------------------------------

    def start(self, nodes=None, *, wait: bool = True, timeout_s: float = 60) -> None:
        chosen = self._select(nodes)
        for nh in chosen:
            if nh.is_running():
                if nh.is_paused():
                    nh.send_signal(signal.SIGCONT)
                continue
            self._note(f"starting {nh.name} on {nh.endpoint}")
            processes.spawn(nh)
        if wait:
            self.wait_until_converged(timeout_s=timeout_s, started=chosen)

    def stop(self, nodes=None, *, timeout_s: float = 20) -> None:
        """SIGTERM, then SIGKILL after `timeout_s`."""
        chosen = [nh for nh in self._select(nodes) if nh.is_running()]
        for nh in chosen:
            self._note(f"stopping {nh.name}")
        processes.terminate(chosen, timeout_s)
        self._drop_clients()

    def kill(self, node) -> None:
        processes.kill(self.node(node))
        self._drop_clients()

    def pause(self, node) -> None:
        nh = self.node(node)
        if not nh.send_signal(signal.SIGSTOP):
            raise ClusterError(f"{nh.name} is not running; start it with `dynatable cluster start`")
        processes.wait_state(nh, paused=True)

    def resume(self, node) -> None:
        nh = self.node(node)
        if not nh.send_signal(signal.SIGCONT):
            raise ClusterError(f"{nh.name} is not running; start it with `dynatable cluster start`")
        processes.wait_state(nh, paused=False)

    def restart(self, node, *, wait: bool = True, timeout_s: float = 60) -> None:
        nh = self.node(node)
        self.stop([nh])
        self.start([nh], wait=wait, timeout_s=timeout_s)

    def remove(self) -> None:
        self.stop(timeout_s=10)
        self._drop_clients()
        shutil.rmtree(self.path, ignore_errors=True)
        layout.clear_current(self.root, self.name)

    def __enter__(self) -> LocalCluster:
        return self

    def __exit__(self, *exc) -> None:
        self.stop(timeout_s=10)

    # -- asking nodes ----------------------------------------------------------------------------

    def ask(self, node, op: str, timeout_s: float = POLL_TIMEOUT_S, **args):
        """`op` answered by that node itself (a pinned request); raises on any failure."""
        from ring.client import Cluster, Session
        nh = self.node(node)
        client = self._clients.get(nh.endpoint)
        if client is None:
            client = self._clients[nh.endpoint] = Cluster([nh.endpoint], timeout_s=timeout_s,
                                                          cluster_name=self.setting("cluster_name", "dynatable"),
                                                          cluster_secret=self.setting("cluster_secret", ""))
        client.timeout_s = timeout_s
        client.metadata.refreshed_at = time.monotonic()  # no ring/schema refresh: the op is pinned
        return Session(client, None).execute(op, endpoint=nh.endpoint, **args)

    def _try_status(self, nh: NodeHandle) -> list[dict] | None:
        try:
            return list(self.ask(nh, "status"))
        except Exception:  # noqa: BLE001 - not answering (down, paused, starting) is the answer
            self._drop_clients(nh.endpoint)
            return None

    def _drop_clients(self, endpoint: str | None = None) -> None:
        for ep in [endpoint] if endpoint else list(self._clients):
            client = self._clients.pop(ep, None)
            if client is not None:
                client.shutdown()

    def status(self) -> list[dict]:
        """The `status` op's answer from the first running node that answers."""
        errors = []
        for nh in self.running():
            if nh.is_paused():
                continue
            try:
                return list(self.ask(nh, "status", timeout_s=5.0))
            except Exception as e:  # noqa: BLE001
                errors.append(f"{nh.name}: {e}")
        if not errors:
            raise ClusterError(f"no node of cluster {self.name} is running; start it with `dynatable cluster start`")
        raise ClusterError("no running node answered: " + "; ".join(errors))

    def _name_of(self, endpoint: str) -> str:
        return next((nh.name for nh in self.nodes if nh.endpoint == endpoint), endpoint)

    def _note(self, msg: str) -> None:
        if self.progress is not None:
            self.progress(msg)

    def __repr__(self) -> str:
        return f"LocalCluster({self.name!r}, {len(self.nodes)} nodes, {self.path!r})"

