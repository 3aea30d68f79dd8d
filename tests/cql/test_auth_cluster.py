"""PasswordAuthenticator on a real 3-node cluster, through real clients only: cassandra-driver's
PlainTextAuthProvider with right and wrong credentials, a role created and then used, and
`cqlsh -u -p -e "LIST ROLES"` (the cqlsh from PyPI in this virtualenv)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

import pytest

from cassandra import AuthenticationFailed, ConsistencyLevel, Unauthorized
from cassandra.auth import PlainTextAuthProvider
from cassandra.cluster import Cluster, NoHostAvailable
from cassandra.query import SimpleStatement

from tools.cluster import LocalCluster

pytestmark = pytest.mark.slow

SETTINGS = {"gossip_interval_ms": 250, "phi_convict_threshold": 3.0, "num_tokens": 4, "log_level": "WARNING",
            "authenticator": "PasswordAuthenticator", "superuser_setup_delay_ms": 500}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = LocalCluster.create("auth", n=3, root=str(tmp_path_factory.mktemp("clusters")), settings=SETTINGS)
    with c:
        c.start(timeout_s=60)
        yield c
    c.remove()


def hosts_and_port(c: LocalCluster) -> tuple[list[str], int]:
    return [nh.cql_endpoint.rsplit(":", 1)[0] for nh in c.nodes], int(c.nodes[0].cql_endpoint.rsplit(":", 1)[1])


def connect(c: LocalCluster, user: str, password: str):
    hosts, port = hosts_and_port(c)
    dc = Cluster(hosts, port=port, auth_provider=PlainTextAuthProvider(user, password), connect_timeout=10)
    try:
        return dc, dc.connect()
    except BaseException:
        dc.shutdown()
        raise


@pytest.fixture(scope="module")
def superuser(cluster):
    deadline = time.monotonic() + 30
    while True:      # the default superuser appears superuser_setup_delay_ms after start
        try:
            dc, session = connect(cluster, "cassandra", "cassandra")
            break
        except NoHostAvailable:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    yield session
    dc.shutdown()


def test_default_superuser_sees_three_nodes_and_its_roles(superuser):
    assert len(superuser.cluster.metadata.all_hosts()) == 3
    rows = list(superuser.execute("LIST ROLES"))
    assert [(r.role, r.super, r.login) for r in rows] == [("cassandra", True, True)]


def test_wrong_credentials_get_authentication_failed(cluster, superuser):
    for user, password in (("cassandra", "wrong"), ("nobody", "cassandra")):
        with pytest.raises(NoHostAvailable) as info:
            connect(cluster, user, password)
        errors = list(info.value.errors.values())
        assert errors and all(isinstance(e, AuthenticationFailed) for e in errors), errors
        assert f"Provided username {user} and/or password are incorrect" in str(errors[0])


def test_a_role_is_created_used_and_limited(cluster, superuser):
    superuser.execute("CREATE KEYSPACE IF NOT EXISTS app WITH replication = {'class': 'SimpleStrategy', "
                      "'replication_factor': 3}")
    superuser.execute("CREATE TABLE IF NOT EXISTS app.t (k int PRIMARY KEY, v text)")
    superuser.execute("CREATE ROLE alice WITH PASSWORD = 'wonderland' AND LOGIN = true")
    dc, alice = connect(cluster, "alice", "wonderland")
    try:
        insert = alice.prepare("INSERT INTO app.t (k, v) VALUES (?, ?)")
        insert.consistency_level = ConsistencyLevel.QUORUM
        for k in range(20):
            alice.execute(insert, (k, f"v{k}"))
        select = SimpleStatement("SELECT k FROM app.t", consistency_level=ConsistencyLevel.QUORUM)
        assert sorted(r.k for r in alice.execute(select)) == list(range(20))
        with pytest.raises(Unauthorized):
            alice.execute("CREATE ROLE eve WITH PASSWORD = 'x' AND LOGIN = true")
        with pytest.raises(Unauthorized):
            alice.execute("UPDATE system_auth.roles SET is_superuser = true WHERE role = 'alice'")
        alice.execute("ALTER ROLE alice WITH PASSWORD = 'looking-glass'")
    finally:
        dc.shutdown()
    with pytest.raises(NoHostAvailable):
        connect(cluster, "alice", "wonderland")
    dc, _ = connect(cluster, "alice", "looking-glass")
    dc.shutdown()
    superuser.execute("DROP ROLE alice")
    with pytest.raises(NoHostAvailable):
        connect(cluster, "alice", "looking-glass")


def _cqlsh() -> str | None:
    local = os.path.join(os.path.dirname(sys.executable), "cqlsh")
    return local if os.path.exists(local) else shutil.which("cqlsh")


def test_cqlsh_logs_in_and_lists_roles(cluster, superuser):
    cqlsh = _cqlsh()
    if cqlsh is None:
        pytest.skip("cqlsh is not installed in this virtualenv (pip install cqlsh==6.2.2)")
    hosts, port = hosts_and_port(cluster)
    env = dict(os.environ, CQLSH_NO_BUNDLED="TRUE")
    ok = subprocess.run([cqlsh, hosts[1], str(port), "-u", "cassandra", "-p", "cassandra", "-e", "LIST ROLES"],
                        capture_output=True, text=True, timeout=120, env=env)
    assert ok.returncode == 0, ok.stderr
    assert "cassandra" in ok.stdout and "True" in ok.stdout and "rows)" in ok.stdout, ok.stdout
    bad = subprocess.run([cqlsh, hosts[1], str(port), "-u", "cassandra", "-p", "nope", "-e", "LIST ROLES"],
                         capture_output=True, text=True, timeout=120, env=env)
    assert bad.returncode != 0 and "and/or password are incorrect" in bad.stderr + bad.stdout
