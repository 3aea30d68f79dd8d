"""A second, independent client: acsylla 1.2.0 (Python over ScyllaDB's C/C++ driver), against a
real 3-node cluster (`LocalCluster`, node N on 127.0.0.N, one CQL port for all, as acsylla needs):
connect and discover the ring, DDL, prepared writes and reads, paging with the page state, and
server errors raised as acsylla's own classes. Nothing here shares code with cassandra-driver."""
from __future__ import annotations

import asyncio

import acsylla
import pytest
from acsylla import errors

from tools.cluster import LocalCluster

pytestmark = pytest.mark.slow

SETTINGS = {"gossip_interval_ms": 250, "phi_convict_threshold": 3.0, "num_tokens": 4, "log_level": "WARNING"}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = LocalCluster.create("acsylla", n=3, root=str(tmp_path_factory.mktemp("clusters")), settings=SETTINGS)
    with c:
        c.start(timeout_s=60)
        yield c
    c.remove()


def run(cluster: LocalCluster, scenario) -> object:
    """Run `scenario(session)` in a fresh acsylla Cluster connected to every node."""
    hosts = [nh.cql_endpoint.rsplit(":", 1)[0] for nh in cluster.nodes]
    port = int(cluster.nodes[0].cql_endpoint.rsplit(":", 1)[1])
    assert all(nh.cql_endpoint.endswith(f":{port}") for nh in cluster.nodes)

    async def main():
        client = acsylla.create_cluster(hosts, port=port, connect_timeout=10, request_timeout=20,
                                        consistency=acsylla.Consistency.QUORUM)
        session = await client.create_session()
        try:
            return await scenario(session)
        finally:
            await session.close()
    return asyncio.run(main())


def test_ddl_prepared_writes_reads_and_paging(cluster):
    async def scenario(session):
        await session.execute(acsylla.create_statement(
            "CREATE KEYSPACE ks WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 3}"))
        await session.execute(acsylla.create_statement(
            "CREATE TABLE ks.items (k int, c int, v text, d date, ip inet, s smallint, PRIMARY KEY (k, c))"))
        await session.use_keyspace("ks")
        table = session.get_metadata().get_table_meta("ks", "items")   # from system_schema, as we serve it
        assert {c.name: (c.type, c.kind) for c in table.columns} == {
            "k": ("int", "partition_key"), "c": ("int", "clustering"), "v": ("text", "regular"),
            "d": ("date", "regular"), "ip": ("inet", "regular"), "s": ("smallint", "regular")}
        insert = await session.create_prepared("INSERT INTO items (k, c, v, s) VALUES (?, ?, ?, ?)")
        for k in range(3):
            for c in range(25):
                await session.execute(insert.bind([k, c, f"v{k}-{c}", c - 12]))
        select = await session.create_prepared("SELECT c, v, s FROM items WHERE k = ?")
        rows = (await session.execute(select.bind([1]))).all()
        assert [r.as_tuple() for r in rows] == [(c, f"v1-{c}", c - 12) for c in range(25)]
        pages, state = [], None
        while True:
            result = await session.execute(select.bind([2], page_size=7, page_state=state))
            pages.append([r.as_dict()["c"] for r in result.all()])
            if not result.has_more_pages():
                break
            state = result.page_state()
        assert [c for page in pages for c in page] == list(range(25)) and max(map(len, pages)) == 7
        count = (await session.execute(acsylla.create_statement("SELECT COUNT(*) FROM items"))).first()
        return count.as_list()[0]
    assert run(cluster, scenario) == 75


def test_server_errors_are_acsyllas_classes(cluster):
    async def scenario(session):
        caught = []
        for query, cls in [("SELEC * FROM ks.items", errors.CassErrorServerSyntaxError),
                           ("SELECT * FROM ks.nope", errors.CassErrorServerInvalidQuery),
                           ("CREATE TABLE ks.items (k int PRIMARY KEY)", errors.CassErrorServerAlreadyExists),
                           ("SELECT * FROM ks.items WHERE v = 'x'", errors.CassErrorServerInvalidQuery)]:
            with pytest.raises(cls) as e:
                await session.execute(acsylla.create_statement(query))
            caught.append(str(e.value))
        ok = await session.execute(acsylla.create_statement("SELECT k FROM ks.items WHERE k = 0 LIMIT 1"))
        return caught, ok.count()
    caught, served = run(cluster, scenario)
    assert "ALLOW FILTERING" in caught[3] and served == 1   # the node serves on after each error
