"""One real 3-node cluster (OS processes on loopback) shared by every persistency test that needs
one; each test gets its own keyspace (replication factor 3) and clients. `make_client` is
parametrized over both backends (config.BACKENDS): the native client and CQL through
cassandra-driver to the same nodes' CQL port, so every cluster scenario runs on both."""
import itertools

import pytest

from persistency.config import CassandraConfig, open_backend
from persistency.cql_backend import CqlBackend, connect
from tools.cluster import LocalCluster

SETTINGS = {"gossip_interval_ms": 500, "phi_convict_threshold": 2.0, "num_tokens": 8, "log_level": "WARNING"}
_names = itertools.count(1)
OPTION_NAMES = {"read_consistency": "read_consistency_level", "write_consistency": "write_consistency_level",
                "gc_grace_seconds": "column_family_gc_grace_seconds"}


@pytest.fixture(scope="package")
def cluster(tmp_path_factory):
    c = LocalCluster.create("persistency", n=3, root=str(tmp_path_factory.mktemp("clusters")), settings=SETTINGS)
    try:
        c.start(timeout_s=90)
        yield c
    finally:
        c.remove()


def create_keyspace(cluster) -> str:
    """A new keyspace (RF 3) created through the native client; its name."""
    name = f"ps{next(_names)}"
    admin = cluster.client()
    try:
        admin.connect().create_keyspace(name, {"class": "SimpleStrategy", "replication_factor": 3})
    finally:
        admin.shutdown()
    return name


@pytest.fixture
def keyspace(cluster):
    return create_keyspace(cluster)


def config_of(cluster, keyspace: str, backend: str, **kw) -> CassandraConfig:
    """The CassandraConfig of `backend` for the cluster; kw in the native client's names or the config's."""
    kw = {OPTION_NAMES.get(k, k): v for k, v in kw.items()}
    if backend == "native":
        return CassandraConfig(tuple(cluster.contact_points()), keyspace, backend="native", **kw)
    hosts = tuple(nh.cql_endpoint.rsplit(":", 1)[0] for nh in cluster.nodes)
    port = int(cluster.nodes[0].cql_endpoint.rsplit(":", 1)[1])
    return CassandraConfig(hosts, keyspace, port=port, backend="cql", **kw)


@pytest.fixture(params=["native", "cql"])
def backend(request):
    return request.param


@pytest.fixture
def backend_agnostic(backend):
    """For a test whose outcome is decided above the store boundary (validation, metadata encoding):
    it runs on the native backend only, saving CI time (the CQL backend's DDL, about 0.5 s a table)."""
    if backend != "native":
        pytest.skip("decided above the store boundary: runs on the native backend only")


@pytest.fixture
def make_config(cluster, keyspace, backend):
    return lambda **kw: config_of(cluster, keyspace, backend, **kw)


@pytest.fixture(scope="package")
def cql_session(cluster):
    """One driver Session for the package's CQL clients (a driver connects in about a second here)."""
    session = connect(config_of(cluster, "system", "cql"))
    yield session
    session.cluster.shutdown()


@pytest.fixture
def make_client(request, backend, make_config):
    """Clients of the test's keyspace on the test's backend; each call is a separate client (the
    original's tests used one for the endpoint and another for the data source; CQL clients share
    the package's driver session, `fresh=True` connects one of its own)."""
    made = []

    def make(fresh=False, **kw):
        config = make_config(**kw)
        if backend == "cql" and not fresh:
            c = CqlBackend(config, request.getfixturevalue("cql_session"))
        else:
            c = open_backend(config)
        made.append(c)
        return c
    yield make
    for c in made:
        c.close()
