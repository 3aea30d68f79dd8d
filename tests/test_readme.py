"""The README's Python examples run as written.

Each fenced ```python block of README.md runs unchanged in a fresh interpreter. The cluster example
names `127.0.0.1:9100`, so a local cluster of three nodes is started on that port (node N on
127.0.0.N, as `dynatable cluster create` places them); the CQL example connects to 127.0.0.1 on
the default CQL port 9042, which such a cluster takes when it is free on 127.0.0.1-3; the embedding example writes `/tmp/dynatable-data`, which is removed before and after.
"""
from __future__ import annotations

import pathlib
import re
import shutil
import socket
import subprocess
import sys
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
EMBED_DIR = "/tmp/dynatable-data"
CQL_PORT = 9042


def python_blocks() -> list[str]:
    text = (ROOT / "README.md").read_text()
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def block_naming(fragment: str) -> str:
    found = [b for b in python_blocks() if fragment in b]
    assert len(found) == 1, f"expected one README python block naming {fragment!r}, found {len(found)}"
    return found[0]


def run_block(code: str, timeout_s: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout_s)


def ports_free(port: int, nodes: int) -> bool:
    for n in range(1, nodes + 1):
        with socket.socket() as s:
            try:
                s.bind((f"127.0.0.{n}", port))
            except OSError:
                return False
    return True


def wait_ports_free(port: int, nodes: int, timeout_s: float = 90) -> bool:
    """Whether `port` is free on 127.0.0.1..N within `timeout_s`: other tests' clusters (and other
    checkouts' README tests) hold 9100 and 9042 while they run."""
    deadline = time.monotonic() + timeout_s
    while not ports_free(port, nodes) and time.monotonic() < deadline:
        time.sleep(0.5)
    return ports_free(port, nodes)


def test_every_python_block_is_covered():
    blocks = python_blocks()
    assert len(blocks) == 3, "a new README python block needs a test here"
    assert [sum(fragment in b for b in blocks) for fragment in ("Store.open", "127.0.0.1:9100", "cassandra.cluster")] \
        == [1, 1, 1]


def test_embedding_example_runs_as_written():
    shutil.rmtree(EMBED_DIR, ignore_errors=True)
    try:
        result = run_block(block_naming("Store.open"))
        assert result.returncode == 0, result.stderr
        # the example prints the scanned row: the insert, the TTL'd write and the cell delete all landed
        assert "'customer': 'ada'" in result.stdout and "'note'" not in result.stdout, result.stdout
    finally:
        shutil.rmtree(EMBED_DIR, ignore_errors=True)


@pytest.mark.slow
def test_cluster_example_runs_as_written(tmp_path):
    from tools.cluster import LocalCluster

    code = block_naming("127.0.0.1:9100")
    port = int(re.search(r"127\.0\.0\.1:(\d+)", code).group(1))
    assert wait_ports_free(port, 3), f"port {port} is taken on 127.0.0.1-3; the README example needs it"
    cluster = LocalCluster.create("readme", 3, root=str(tmp_path), base_port=port,
                                  settings={"num_tokens": 8, "log_level": "WARNING"})
    try:
        cluster.start()
        result = run_block(code)
        assert result.returncode == 0, result.stderr
        assert "'id': 1" in result.stdout and "total" in result.stdout, result.stdout
    finally:
        cluster.stop()


@pytest.mark.slow
def test_cql_example_runs_as_written(tmp_path):
    pytest.importorskip("cassandra", reason="cassandra-driver is a test extra")
    from tools.cluster import LocalCluster

    code = block_naming("cassandra.cluster")
    assert wait_ports_free(CQL_PORT, 3), f"port {CQL_PORT} is taken on 127.0.0.1-3; the README CQL example needs it"
    cluster = LocalCluster.create("readme-cql", 3, root=str(tmp_path),
                                  settings={"num_tokens": 8, "log_level": "WARNING"})
    try:
        assert [nh.cql_endpoint for nh in cluster.nodes] == [f"127.0.0.{n}:{CQL_PORT}" for n in (1, 2, 3)]
        cluster.start()
        result = run_block(code)
        assert result.returncode == 0, result.stderr
        assert "Row(id=1, item='tea', qty=2)" in result.stdout, result.stdout
    finally:
        cluster.stop()
