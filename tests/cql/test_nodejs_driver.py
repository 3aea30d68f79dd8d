"""A third independent client: the Node.js cassandra-driver (DataStax, from npm) against a real
3-node cluster. It connects and sees the 3 nodes, writes and reads through prepared statements,
places partition 3 on the replicas `nodetool getendpoints` names (its own token map), and pages
(by pageState, and with eachRow's autoPage). tests/cql/js/driver_check.js is the script.

The driver is installed once into a cache directory ($DYNATABLE_NPM_CACHE, else
~/.cache/dynatable/npm); the test is skipped, saying why, only where node or npm is missing or
npm cannot fetch the package."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile

import pytest

from tools.cluster import LocalCluster

pytestmark = pytest.mark.slow

DRIVER = "cassandra-driver@4"
SCRIPT = os.path.join(os.path.dirname(__file__), "js", "driver_check.js")
SETTINGS = {"gossip_interval_ms": 250, "phi_convict_threshold": 3.0, "num_tokens": 4, "log_level": "WARNING"}


def driver_dir() -> str:
    """A directory whose node_modules holds cassandra-driver 4 (installed on first use)."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node and npm are not installed (apt-get install nodejs npm)")
    cache = os.environ.get("DYNATABLE_NPM_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "dynatable",
                                                                  "npm")
    target = os.path.join(cache, "cassandra-driver-4")
    if os.path.isdir(os.path.join(target, "node_modules", "cassandra-driver")):
        return target
    os.makedirs(cache, exist_ok=True)
    staging = tempfile.mkdtemp(dir=cache, prefix=".install-")
    try:
        done = subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--loglevel=error", "--prefix", staging,
                               DRIVER], capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            pytest.skip(f"npm could not install {DRIVER} (network refused?): {done.stderr.strip()[-300:]}")
        try:
            os.rename(staging, target)          # atomic: a concurrent run sees all or nothing
        except OSError:
            if not os.path.isdir(os.path.join(target, "node_modules", "cassandra-driver")):
                raise
        return target
    finally:
        shutil.rmtree(staging, ignore_errors=True)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = LocalCluster.create("njs", n=3, root=str(tmp_path_factory.mktemp("clusters")), settings=SETTINGS)
    with c:
        c.start(timeout_s=60)
        yield c
    c.remove()


def test_nodejs_driver_connects_writes_reads_and_pages(cluster):
    modules = driver_dir()
    hosts = [nh.cql_endpoint.rsplit(":", 1)[0] for nh in cluster.nodes]
    port = cluster.nodes[0].cql_endpoint.rsplit(":", 1)[1]
    done = subprocess.run(["node", SCRIPT, ",".join(hosts), port, "njs"], capture_output=True, text=True,
                          timeout=120, env=dict(os.environ, NODE_PATH=os.path.join(modules, "node_modules")))
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["hosts"] == sorted(f"{h}:{port}" for h in hosts) and seen["protocolVersion"] >= 4
    assert seen["read"] == ["v3.7"]
    endpoints = cluster.ask(cluster.nodes[0], "getendpoints", keyspace="njs", table="t", key={"k": 3})["endpoints"]
    assert seen["replicas"] == sorted(f"{ep.rsplit(':', 1)[0]}:{port}" for ep in endpoints)
    assert seen["pages"] == [list(range(0, 6)), list(range(6, 12)), list(range(12, 18)), [18, 19]]
    assert seen["scanned"] == 100
