"""Secondary indexes on a real 3-node RF 3 cluster of OS processes: the Session API end to end.

QUORUM writes, an index created after the data exists (built on every node, learned by schema
sync), equality and range queries paged at QUORUM, the same with one node killed, a restart that
rebuilds the index from disk, and the asyncio session.
"""
import asyncio
import time

import pytest

from engine.errors import IndexNotReady, InvalidRequest
from ring.client import AsyncCluster
from tools.cluster import LocalCluster

pytestmark = pytest.mark.slow

SETTINGS = {"gossip_interval_ms": 500, "phi_convict_threshold": 2.0, "num_tokens": 8}
N = 300


def city(i: int) -> str:
    return ("oslo", "lima", "pune", "kyiv")[i % 4]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = LocalCluster.create("idx", n=3, root=str(tmp_path_factory.mktemp("clusters")), settings=SETTINGS)
    try:
        c.start(timeout_s=60)
        yield c
    finally:
        c.remove()


@pytest.fixture(scope="module")
def session(cluster):
    client = cluster.client()
    s = client.connect()
    s.create_keyspace("shop", {"class": "SimpleStrategy", "replication_factor": 3})
    s.create_table("users", {"id": "int", "city": "text", "age": "int", "name": "text"}, primary_key="id",
                   keyspace="shop")
    shop = client.connect("shop")
    for i in range(N):
        shop.insert("users", {"id": i, "city": city(i), "age": i % 90, "name": f"u{i}"}, consistency="QUORUM")
    yield shop
    client.shutdown()


def eventually(call, timeout_s: float = 30):
    """Index queries fail with IndexNotReady (or an unknown index) while nodes build or learn it."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return call()
        except (IndexNotReady, InvalidRequest):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_index_created_after_data_pages_every_match_exactly_once(cluster, session):
    with pytest.raises(InvalidRequest, match="create_index"):
        session.index_query("users", [("city", "=", "lima")])
    session.create_index("users", "city")
    session.create_index("users", "age", name="users_by_age")
    cluster.wait_until_converged()
    rows = eventually(lambda: list(session.index_query_all("users", [("city", "=", "lima")], page_size=17,
                                                           consistency="QUORUM")))
    assert sorted(r["id"] for r in rows) == [i for i in range(N) if city(i) == "lima"]
    assert rows[0] == {"id": rows[0]["id"], "city": "lima", "age": rows[0]["id"] % 90, "name": f"u{rows[0]['id']}"}
    page = session.index_query("users", [("city", "=", "lima")], page_size=10, consistency="QUORUM")
    assert len(page.rows) == 10 and page.paging_state is not None
    ranged = eventually(lambda: list(session.index_query_all(
        "users", [("age", ">=", 20), ("age", "<", 25), ("city", "=", "oslo")], page_size=4, consistency="QUORUM")))
    assert sorted(r["id"] for r in ranged) == [i for i in range(N) if 20 <= i % 90 < 25 and city(i) == "oslo"]


def test_quorum_index_query_with_a_node_down_sees_quorum_overwrites(cluster, session):
    victim = cluster.nodes[2]
    cluster.kill(victim)
    cluster.wait_for_down(victim)
    session.cluster.refresh_metadata()
    for i in range(0, 40, 4):                                  # oslo -> lima while node3 is down
        session.insert("users", {"id": i, "city": "lima"}, consistency="QUORUM")
    lima = sorted(r["id"] for r in session.index_query_all("users", [("city", "=", "lima")], page_size=13,
                                                           consistency="QUORUM"))
    assert lima == sorted({i for i in range(N) if city(i) == "lima"} | set(range(0, 40, 4)))
    cluster.restart(victim)                                    # node3 rebuilds its index from disk
    cluster.wait_for_up(victim)
    session.cluster.refresh_metadata()
    oslo = eventually(lambda: sorted(r["id"] for r in session.index_query_all(
        "users", [("city", "=", "oslo")], consistency="ALL", page_size=50)))
    assert oslo == [i for i in range(40, N) if city(i) == "oslo"]   # node3's stale oslo rows never surface


def test_async_session_and_drop_index(cluster, session):
    async def run():
        async with AsyncCluster(cluster.contact_points()) as client:
            s = await client.connect("shop")
            page = await s.index_query("users", [("city", "=", "pune")], page_size=5, consistency="QUORUM")
            got = [r["id"] async for r in s.index_query_all("users", [("city", "=", "pune")], page_size=9,
                                                             consistency="QUORUM")]
            await s.drop_index("users_by_age")
            return page, got
    page, got = eventually(lambda: asyncio.run(run()))
    assert len(page.rows) == 5 and sorted(got) == [i for i in range(N) if city(i) == "pune"]
    cluster.wait_until_converged()
    with pytest.raises(InvalidRequest, match="create_index"):
        session.index_query("users", [("age", "=", 3)])
