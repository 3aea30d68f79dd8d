"""One real node (`LocalCluster`, n=1) with a cassandra-driver session and keyspace `ks` (RF 1).

Shared by the CQL tests that need a single node and a driver: each module makes its own cluster
(its own name and settings) and its own tables, and gets the node's native address too.
"""
from __future__ import annotations

from contextlib import contextmanager

from cassandra.cluster import Cluster

from tools.cluster import LocalCluster


@contextmanager
def one_node(tmp_path_factory, name: str, settings: dict, *tables: str):
    """Yield ((host, port), session) with keyspace `ks` and the given CREATE TABLE statements run."""
    c = LocalCluster.create(name, n=1, root=str(tmp_path_factory.mktemp("clusters")), settings=settings)
    with c:
        c.start(timeout_s=60)
        host, port = c.nodes[0].cql_endpoint.rsplit(":", 1)
        driver = Cluster([host], port=int(port))
        session = driver.connect()
        session.execute("CREATE KEYSPACE ks WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}")
        for statement in tables:
            session.execute(statement)
        try:
            yield (host, int(port)), session
        finally:
            driver.shutdown()
    c.remove()
