"""A local cluster's files: where they live, what they hold, and the only code that writes them.

Layout under `<root>/<name>/`: `cluster.toml` (the cluster's name, datacenters, the settings given
to every node, one `[[nodes]]` entry per node) and per node `nodeN/node.toml` (a full
`ring.runtime.config.NodeSettings`, cassandra.yaml-like keys), `nodeN/data/` (its data directory),
`nodeN/node.log` (stdout and stderr, appended) and `nodeN/node.pid` while it runs. `<root>/current`
names the cluster the CLI uses when no name is given. The root defaults to `$DYNATABLE_HOME` or
`~/.dynatable/clusters`. A node that left the ring keeps its directory as `nodeN.removed`.

Invariant: every entry of cluster.toml names a directory with a node.toml that loads; a bad
setting is refused before cluster.toml names the node.
"""
from __future__ import annotations

import os
import shutil
import time
import tomllib
from typing import NamedTuple

from ring.runtime import config as config_mod
from tools.cluster.processes import NodeHandle

CLUSTER_FILE = "cluster.toml"
CURRENT_FILE = "current"
PER_NODE_SETTINGS = ("port", "metrics_port", "native_transport_port", "data_directory", "seeds", "datacenter", "rack")


class ClusterError(Exception):
    """A cluster-manager problem; the message says what to do about it."""


def default_root() -> str:
    return os.environ.get("DYNATABLE_HOME") or os.path.join(os.path.expanduser("~"), ".dynatable", "clusters")


def check_name(name: str) -> None:
    if not name or name in (".", "..") or "/" in name or os.sep in name or name == CURRENT_FILE:
        raise ClusterError(f"bad cluster name {name!r}: use letters, digits, '-' or '_'")


def parse_datacenters(spec: str) -> list[tuple[str, int]]:
    """ "dc1:3,dc2:2" -> [("dc1", 3), ("dc2", 2)]."""
    out = []
    for part in (p.strip() for p in spec.split(",") if p.strip()):
        name, sep, count = part.partition(":")
        if not sep or not name.strip() or not count.strip().isdigit() or int(count) < 1:
            raise ClusterError(f"bad datacenter spec {part!r}: write NAME:COUNT pairs, e.g. dc1:3,dc2:2")
        out.append((name.strip(), int(count)))
    if not out:
        raise ClusterError("empty datacenter spec: write NAME:COUNT pairs, e.g. dc1:3,dc2:2")
    if len({n for n, _ in out}) != len(out):
        raise ClusterError(f"datacenter named twice in {spec!r}")
    return out


def toml(value) -> str:
    return config_mod._toml_value(value)


class NodePlan(NamedTuple):
    name: str
    datacenter: str
    host: str
    port: int
    metrics_port: int
    native_transport_port: int


def plan_nodes(dcs: list[tuple[str, int]], hosts: list[str], ports: list[int], mports: list[int],
               cql_ports: list[int]) -> list[NodePlan]:
    """One plan per node: node1, node2, ... in datacenter order, the i-th on hosts[i], ports[i]."""
    names = [(f"node{i + 1}", dc) for i, dc in enumerate(dc for dc, count in dcs for _ in range(count))]
    return [NodePlan(name, dc, hosts[i], ports[i], mports[i], cql_ports[i]) for i, (name, dc) in enumerate(names)]


def seeds_of(specs: list[NodePlan]) -> list[str]:
    """The first node of each datacenter."""
    seeds, seen = [], set()
    for spec in specs:
        if spec.datacenter not in seen:
            seen.add(spec.datacenter)
            seeds.append(config_mod.NodeSettings(listen_address=spec.host, port=spec.port).endpoint())
    return seeds


def write_node(ndir: str, title: str, values: dict, cleanup: str) -> config_mod.NodeSettings:
    """A node's directory: data/, node.toml (every setting written out) and node.log. A bad
    setting removes `cleanup` and raises ClusterError naming it."""
    os.makedirs(os.path.join(ndir, "data"), exist_ok=True)
    try:
        s = config_mod.from_dict({**values, "data_directory": "data", "rack": "rack1"})
    except Exception as e:  # noqa: BLE001 - ConfigurationError or a bad value type: say which
        shutil.rmtree(cleanup, ignore_errors=True)
        raise ClusterError(f"bad node settings: {e}") from None
    with open(os.path.join(ndir, "node.toml"), "w") as f:
        f.write(f"# {title}; every key: `dynatable node --print-default-config`\n")
        f.write(config_mod.dump(s))
    open(os.path.join(ndir, "node.log"), "a").close()
    return s


def node_entry(name: str, datacenter: str) -> str:
    return (f"\n[[nodes]]\nname = {toml(name)}\ndatacenter = {toml(datacenter)}\n"
            f"config = {toml(os.path.join(name, 'node.toml'))}\n")


def write_cluster_file(path: str, name: str, dcs, overrides: dict, specs) -> None:
    with open(os.path.join(path, CLUSTER_FILE), "w") as f:
        f.write(f"name = {toml(name)}\n")
        f.write(f"datacenters = {toml(','.join(f'{dc}:{c}' for dc, c in dcs))}\n")
        f.write(f"created = {toml(time.strftime('%Y-%m-%dT%H:%M:%S'))}\n")
        f.write("\n[settings]  # given to every node; the rest is in nodeN/node.toml\n")
        for key, value in sorted(overrides.items()):
            f.write(f"{key} = {toml(value)}\n")
        for spec in specs:
            f.write(node_entry(spec.name, spec.datacenter))


def append_node(path: str, name: str, datacenter: str) -> None:
    with open(os.path.join(path, CLUSTER_FILE), "a") as f:
        f.write(node_entry(name, datacenter))


def remove_node(path: str, nh: NodeHandle) -> None:
    """Drop the node's entry from cluster.toml (atomically) and rename its directory `.removed`."""
    cluster_file = os.path.join(path, CLUSTER_FILE)
    with open(cluster_file) as f:
        blocks = f.read().split("\n[[nodes]]\n")
    kept = [blocks[0]] + [b for b in blocks[1:] if f"name = {toml(nh.name)}" not in b.splitlines()]
    with open(cluster_file + ".tmp", "w") as f:
        f.write("\n[[nodes]]\n".join(kept))
    os.replace(cluster_file + ".tmp", cluster_file)
    target = nh.directory + ".removed"
    shutil.rmtree(target, ignore_errors=True)
    os.rename(nh.directory, target)


def read_meta(path: str) -> dict:
    """cluster.toml as a dict; ClusterError if it is missing or not TOML."""
    root, name = os.path.split(path)
    try:
        with open(os.path.join(path, CLUSTER_FILE), "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ClusterError(f"no cluster named {name} under {root}; "
                           f"create it with `dynatable cluster create {name}`") from None
    except tomllib.TOMLDecodeError as e:
        raise ClusterError(f"{os.path.join(path, CLUSTER_FILE)} is not valid TOML: {e}") from None


def read_nodes(path: str, meta: dict) -> list[NodeHandle]:
    nodes = []
    for entry in meta.get("nodes", []):
        ndir = os.path.join(path, entry["name"])
        cfg = os.path.join(path, entry.get("config", os.path.join(entry["name"], "node.toml")))
        s = config_mod.load(cfg)
        nodes.append(NodeHandle(name=entry["name"], endpoint=s.endpoint(), datacenter=s.datacenter,
                                rack=s.rack, config_path=cfg, data_dir=s.data_directory,
                                log_path=os.path.join(ndir, "node.log"), directory=ndir,
                                cql_endpoint=config_mod.NodeSettings(listen_address=s.listen_address,
                                                                     port=s.native_transport_port).endpoint()))
    return nodes


def current_name(root: str) -> str | None:
    try:
        with open(os.path.join(root, CURRENT_FILE)) as f:
            return f.read().strip() or None
    except OSError:
        return None


def set_current(root: str, name: str) -> None:
    with open(os.path.join(root, CURRENT_FILE), "w") as f:
        f.write(name + "\n")


def clear_current(root: str, name: str) -> None:
    if current_name(root) == name:
        try:
            os.unlink(os.path.join(root, CURRENT_FILE))
        except FileNotFoundError:
            pass


def list_names(root: str) -> list[str]:
    try:
        return sorted(d for d in os.listdir(root) if os.path.isfile(os.path.join(root, d, CLUSTER_FILE)))
    except OSError:
        return []
