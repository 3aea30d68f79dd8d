"""One real 3-node cluster (OS processes on loopback) shared by every persistency test that needs
one; each test gets its own keyspace (replication factor 3) and clients."""
import itertools

import pytest

from persistency.native_backend import DynatableClient
from tools.cluster import LocalCluster

SETTINGS = {"gossip_interval_ms": 500, "phi_convict_threshold": 2.0, "num_tokens": 8, "log_level": "WARNING"}
_names = itertools.count(1)


@pytest.fixture(scope="package")
def cluster(tmp_path_factory):
    c = LocalCluster.create("persistency", n=3, root=str(tmp_path_factory.mktemp("clusters")), settings=SETTINGS)
    try:
        c.start(timeout_s=90)
        yield c
    finally:
        c.remove()


@pytest.fixture
def keyspace(cluster):
    name = f"ps{next(_names)}"
    admin = cluster.client()
    try:
        admin.connect().create_keyspace(name, {"class": "SimpleStrategy", "replication_factor": 3})
    finally:
        admin.shutdown()
    return name


@pytest.fixture
def make_client(cluster, keyspace):
    """Clients of the test's keyspace; each call is a separate client (the original's tests used one
    for the endpoint and another for the data source)."""
    made = []

    def make(**kw):
        c = DynatableClient(cluster.contact_points(), keyspace, **kw)
        made.append(c)
        return c
    yield make
    for c in made:
        c.close()
