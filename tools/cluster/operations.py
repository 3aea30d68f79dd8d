"""Topology operations on a local cluster: add (bootstrap), decommission, removenode.

A mixin of `LocalCluster` (it uses `node`, `running`, `start`, `stop`, `ask`, `wait_until_joined`
and `_note`). Each is the node's own operation (the `decommission` / `removenode` ops, or a
bootstrap with auto_bootstrap on) plus the bookkeeping in the cluster's files: a node that joins
gets an entry in cluster.toml; a node that left the ring loses it, and its directory is kept as
`<name>.removed` (layout.remove_node).
"""
from __future__ import annotations

import os

from ring.runtime import config as config_mod
from tools.cluster import addresses, layout
from tools.cluster.layout import ClusterError
from tools.cluster.processes import NodeHandle


class TopologyOperations:
    def add(self, name: str | None = None, *, datacenter: str | None = None, start: bool = True,
            timeout_s: float = 900) -> NodeHandle:
        """A new node (ccm add + start): same settings and seeds as the others, auto_bootstrap on,
        its own address (`_place_new_node`). With `start`, waits until it has streamed its ranges and every node sees it
        Up and NORMAL."""
        if not self.nodes:
            raise ClusterError(f"cluster {self.name} has no node to join; create it with `dynatable cluster create`")
        taken = {nh.name for nh in self.nodes}
        if name is None:
            name = next(f"node{i}" for i in range(1, len(taken) + 2) if f"node{i}" not in taken)
        if name in taken or not name.replace("-", "").replace("_", "").isalnum():
            raise ClusterError(f"bad or taken node name {name!r} (nodes: {', '.join(sorted(taken))})")
        first = config_mod.load(self.nodes[0].config_path)
        overrides = dict(layout.read_meta(self.path).get("settings", {}))
        try:
            host, port, mport = self._place_new_node(name, first, overrides.get("listen_address"))
        except addresses.AddressError as e:
            raise ClusterError(str(e)) from None
        ndir = os.path.join(self.path, name)
        s = layout.write_node(ndir, f"{name} of cluster {self.name}, added",
                              {**overrides, "auto_bootstrap": True, "listen_address": host, "port": port,
                               "metrics_port": mport, **self._cql_port_of_new_node(host, first),
                               "seeds": list(first.seeds),
                               "datacenter": datacenter or first.datacenter}, cleanup=ndir)
        layout.append_node(self.path, name, s.datacenter)
        self.nodes = layout.read_nodes(self.path, layout.read_meta(self.path))
        nh = self.node(name)
        if start:
            self.start([nh], wait=False)
            self.wait_until_joined(nh, timeout_s)
        return nh

    def _place_new_node(self, name: str, first, shared_host: str | None) -> tuple[str, int, int]:
        """(address, port, metrics port) of a new node: its own 127.0.0.N (N from its name when no
        node, current or removed, has that address; else the next unused one) on node1's port
        numbers when they are free there; on a shared address, free ports."""
        if shared_host is not None:
            ports = addresses.free_ports(2 if first.metrics_port else 1, shared_host)
            return shared_host, ports[0], ports[1] if first.metrics_port else 0
        used = {addresses.address_number(config_mod.load(cfg).listen_address) for cfg in self._node_configs()}
        wanted = int(name[4:]) if name.startswith("node") and name[4:].isdigit() else None
        n = wanted if wanted is not None and wanted not in used else next(i for i in range(1, 256) if i not in used)
        host = addresses.loopback_address(n)
        preferred = [first.port] + ([first.metrics_port] if first.metrics_port else [])
        ports = addresses.common_free_ports([host], len(preferred), preferred)
        return host, ports[0], ports[1] if first.metrics_port else 0

    def _cql_port_of_new_node(self, host: str, first) -> dict:
        """node1's CQL port when it is free on the new node's address, else a free one."""
        return {"native_transport_port": addresses.common_free_ports([host], 1, [first.native_transport_port])[0]}

    def _node_configs(self) -> list[str]:
        """node.toml of every node directory, removed ones included (their address stays taken)."""
        out = []
        for entry in sorted(os.listdir(self.path)):
            cfg = os.path.join(self.path, entry, "node.toml")
            if os.path.isfile(cfg):
                out.append(cfg)
        return out

    def decommission(self, node, *, timeout_s: float = 3600) -> dict:
        """nodetool decommission on `node`, then stop it and take it out of the cluster's files."""
        nh = self.node(node)
        if not nh.is_running():
            raise ClusterError(f"{nh.name} is not running; start it first (a dead node is removed with removenode)")
        self._note(f"decommissioning {nh.name}: streaming its ranges to their new owners")
        summary = self.ask(nh, "decommission", timeout_s=timeout_s, timeout_ms=int(timeout_s * 1000))
        self.stop([nh])
        self.forget_node(nh)
        return summary

    def removenode(self, host_id: str, *, via=None, timeout_s: float = 3600) -> dict:
        """nodetool removenode HOST_ID, asked of `via` (default: the first running node)."""
        coordinator = self.node(via) if via is not None else next(
            (nh for nh in self.running() if not nh.is_paused()), None)
        if coordinator is None:
            raise ClusterError(f"no node of cluster {self.name} is running to coordinate the removal")
        summary = self.ask(coordinator, "removenode", timeout_s=timeout_s, host_id=host_id,
                           timeout_ms=int(timeout_s * 1000))
        gone = next((nh for nh in self.nodes if nh.endpoint == summary.get("endpoint")), None)
        if gone is not None:
            self.stop([gone])
            self.forget_node(gone)
        return summary

    def forget_node(self, node) -> None:
        """Drop a node that left the ring from cluster.toml; its directory is kept as <name>.removed."""
        nh = self.node(node)
        layout.remove_node(self.path, nh)
        self.nodes = [n for n in self.nodes if n is not nh]
        self._drop_clients(nh.endpoint)
