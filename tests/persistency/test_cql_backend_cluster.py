"""CqlBackend against the real 3-node cluster, where only the CQL backend is concerned: a keyspace
created after the driver connected is found although the driver's control connection is being
re-established at that moment (as after a node restart)."""
import pytest

from persistency.cql_backend import CqlBackend, connect
from tests.persistency.conftest import config_of, create_keyspace

pytestmark = pytest.mark.slow


def test_a_new_keyspace_is_found_while_the_control_connection_reconnects(cluster):
    session = connect(config_of(cluster, "system", "cql"))
    try:
        name = create_keyspace(cluster)   # after the driver connected: not in its metadata yet
        control = session.cluster.control_connection
        control._connection.close()   # what a restart of the control connection's node does to it
        backend = CqlBackend(config_of(cluster, name, "cql"), session)
        try:
            assert name in session.cluster.metadata.keyspaces
        finally:
            backend.close()
    finally:
        session.cluster.shutdown()
