"""Local multi-process clusters, in the spirit of ccm: `dynatable cluster ...` and the tests' API.

`addresses` (one loopback address per node, ports free on all of them), `layout` (the files), `processes` (pid files, signals, spawning), `waits` (polling until the ring
is whole, a node is Down or Up, a joining node is NORMAL), `operations` (add, decommission,
removenode) and `local_cluster` (`LocalCluster`, which ties them together).
"""
from tools.cluster.addresses import free_ports
from tools.cluster.layout import ClusterError, default_root, parse_datacenters
from tools.cluster.local_cluster import LocalCluster
from tools.cluster.processes import NodeHandle

__all__ = ["ClusterError", "LocalCluster", "NodeHandle", "default_root", "free_ports", "parse_datacenters"]
