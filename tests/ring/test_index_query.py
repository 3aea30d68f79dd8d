"""Index queries over the ring, in the deterministic simulator (real Nodes and Stores, virtual time).

Checked against the rows written: the fan-out at ONE / QUORUM / ALL, paging (every matching row
exactly once), ranges, an index created after the data (and learned by schema sync), a replica
that missed an overwrite (its stale match must not surface: replica filtering protection), a
node down at QUORUM, and the errors.
"""
import pytest

from engine.errors import InvalidRequest
from ring.errors import UnavailableError
from ring.messages import packb
from ring.runtime.sim import Simulation

FAST = {"gossip_interval_ms": 500, "phi_convict_threshold": 2.0, "hinted_handoff_enabled": False}
N = 120


def color(i: int) -> str:
    return ("red", "green", "blue")[i % 3]


@pytest.fixture
def sim():
    s = Simulation(11, node_options=FAST)
    s.run_for(4000)
    s.request("n1", "create_keyspace", name="ks", replication={"class": "SimpleStrategy", "replication_factor": 3})
    s.request("n1", "create_table", keyspace="ks", name="t", columns={"k": "int", "c": "int", "color": "text",
                                                                      "size": "int"}, primary_key=("k", "c"))
    s.run_for(2000)
    for i in range(N):
        s.request(f"n{i % 3 + 1}", "insert", keyspace="ks", table="t", consistency="QUORUM",
                  row={"k": i % 40, "c": i, "color": color(i), "size": i})
    s.run_for(1000)
    yield s
    s.close()


def query_all(sim, node, where, page_size=1000, **args):
    rows, state, pages = [], None, 0
    while True:
        page = sim.request(node, "index_query", keyspace="ks", table="t", where=where, page_size=page_size,
                           paging_state=state, **args)
        assert len(page["rows"]) <= page_size
        rows += page["rows"]
        pages += 1
        if (state := page["paging_state"]) is None:
            return rows, pages


def keys(rows):
    return sorted((r["k"], r["c"]) for r in rows)


def test_index_created_after_data_answers_everywhere_with_paging(sim):
    with pytest.raises(InvalidRequest, match="create_index"):
        sim.request("n2", "index_query", keyspace="ks", table="t", where=[["color", "=", "red"]])
    sim.request("n1", "create_index", keyspace="ks", table="t", column="color")
    sim.request("n3", "create_index", keyspace="ks", table="t", column="size", name="by_size")
    sim.run_for(3000)                                   # schema sync: every node builds both indexes
    assert sim.converged()
    for node in ("n1", "n2", "n3"):                      # nodetool tablestats shows each index's state
        stats = next(t for t in sim.request(node, "tablestats") if t["table"] == "ks.t")
        assert stats["index t_color_idx"].startswith(f"READY, {N} entries")
        assert stats["index by_size"].startswith(f"READY, {N} entries")
    red = [(i % 40, i) for i in range(N) if color(i) == "red"]
    for node, level in (("n1", "ONE"), ("n2", "QUORUM"), ("n3", "ALL")):
        rows, pages = query_all(sim, node, [["color", "=", "red"]], page_size=7, consistency=level)
        assert keys(rows) == sorted(red) and len(rows) == len(red)       # each row exactly once
        assert pages >= len(red) // 7
        assert all(set(r) == {"k", "c", "color", "size"} for r in rows)   # every column, like scan
    rows, _ = query_all(sim, "n2", [["size", ">=", 30], ["size", "<", 60], ["color", "=", "blue"]],
                        page_size=4, consistency="QUORUM")
    assert keys(rows) == sorted((i % 40, i) for i in range(30, 60) if color(i) == "blue")
    rows, _ = query_all(sim, "n1", [["size", "<", 10]], columns=["size"], consistency="QUORUM")
    assert keys(rows) == sorted((i % 40, i) for i in range(10)) and "color" not in rows[0]


def test_a_replica_that_missed_an_overwrite_never_surfaces_its_stale_match(sim):
    sim.request("n1", "create_index", keyspace="ks", table="t", column="color")
    sim.run_for(3000)
    sim.partition({"n1", "n2"}, {"n3"})                 # n3 misses the overwrites (no hints)
    sim.run_for(3000)
    for i in range(0, 30, 3):                           # red rows become green on n1 and n2 only
        sim.request("n1", "insert", keyspace="ks", table="t", consistency="QUORUM",
                    row={"k": i % 40, "c": i, "color": "green"})
    sim.heal()
    sim.run_for(3000)
    assert sim.local_row("n3", "ks", "t", {"k": 0, "c": 0})["color"] == "red"      # n3 is stale
    red = sorted((i % 40, i) for i in range(30, N) if color(i) == "red")
    green = sorted((i % 40, i) for i in range(N) if color(i) == "green" or (i < 30 and color(i) == "red"))
    for node in ("n1", "n2", "n3"):
        assert keys(query_all(sim, node, [["color", "=", "red"]], page_size=5, consistency="ALL")[0]) == red
        assert keys(query_all(sim, node, [["color", "=", "green"]], page_size=5, consistency="ALL")[0]) == green
    assert sum(sim.nodes[n].node.stats.get("index_row_fetches", 0) for n in sim.nodes) > 0


def test_quorum_index_query_with_one_node_down_and_unavailable_at_all(sim):
    sim.request("n1", "create_index", keyspace="ks", table="t", column="color")
    sim.run_for(3000)
    sim.crash("n3")
    sim.run_for(5000)                                   # n3 is convicted
    blue = sorted((i % 40, i) for i in range(N) if color(i) == "blue")
    assert keys(query_all(sim, "n1", [["color", "=", "blue"]], page_size=9, consistency="QUORUM")[0]) == blue
    with pytest.raises(UnavailableError):
        sim.request("n2", "index_query", keyspace="ks", table="t", where=[["color", "=", "blue"]], consistency="ALL")


def test_deleted_and_dropped(sim):
    sim.request("n1", "create_index", keyspace="ks", table="t", column="color")
    sim.run_for(3000)
    sim.request("n2", "delete", keyspace="ks", table="t", key={"k": 0}, consistency="QUORUM")   # partition 0
    sim.request("n2", "delete", keyspace="ks", table="t", key={"k": 1, "c": 1}, columns=["color"],
                consistency="QUORUM")
    rows, _ = query_all(sim, "n3", [["color", ">=", "a"]], page_size=11, consistency="QUORUM")
    assert keys(rows) == sorted((i % 40, i) for i in range(N) if i % 40 != 0 and i != 1)
    with pytest.raises(InvalidRequest, match="paging_state"):
        sim.request("n1", "index_query", keyspace="ks", table="t", where=[["color", "=", "red"]],
                    paging_state=packb(["not", "a", "state"]))
    sim.request("n1", "drop_index", keyspace="ks", name="t_color_idx")
    sim.run_for(3000)
    for node in ("n1", "n2", "n3"):
        assert sim.nodes[node].store.table("ks", "t").indexes == ()
        with pytest.raises(InvalidRequest, match="create_index"):
            sim.request(node, "index_query", keyspace="ks", table="t", where=[["color", "=", "red"]])


def test_a_node_that_missed_the_table_and_its_index_builds_it_when_it_learns_the_schema(sim):
    sim.crash("n3")
    sim.run_for(5000)
    sim.request("n1", "create_table", keyspace="ks", name="late", columns={"k": "int", "v": "int"}, primary_key="k")
    sim.request("n1", "create_index", keyspace="ks", table="late", column="v")
    for k in range(30):
        sim.request("n2", "insert", keyspace="ks", table="late", row={"k": k, "v": k % 2}, consistency="QUORUM")
    sim.restart("n3")
    sim.run_for(6000)                                   # n3 pulls the schema: the table comes with its index
    assert sim.converged()
    assert [i.name for i in sim.nodes["n3"].store.table("ks", "late").indexes] == ["late_v_idx"]
    page = sim.request("n3", "index_query", keyspace="ks", table="late", where=[["v", "=", 1]], consistency="QUORUM")
    assert sorted(r["k"] for r in page["rows"]) == list(range(1, 30, 2))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_divergent_replicas_index_query_at_all_equals_the_filtered_scan_at_all(seed):
    """Random writes and deletes at ONE through random coordinators while nodes are cut off (no
    hints), so replicas diverge column by column; then at ALL, every index query must return
    exactly the rows, in order, of the scan filtered after reconciliation."""
    import random

    from engine import restriction as rs
    rng = random.Random(seed)
    s = Simulation(100 + seed, node_options=FAST)
    try:
        s.run_for(4000)
        s.request("n1", "create_keyspace", name="ks", replication={"class": "SimpleStrategy", "replication_factor": 3})
        s.request("n1", "create_table", keyspace="ks", name="t", primary_key=("k", "c"),
                  columns={"k": "int", "c": "int", "v": "text", "w": "int"})
        s.request("n1", "create_index", keyspace="ks", table="t", column="v")
        s.request("n1", "create_index", keyspace="ks", table="t", column="w")
        s.run_for(2000)
        for step in range(200):
            if step % 40 == 0:
                cut = rng.choice(["n1", "n2", "n3"])
                s.partition({cut}, {n for n in ("n1", "n2", "n3") if n != cut})
            node = rng.choice(["n1", "n2", "n3"])
            key = {"k": rng.randrange(6), "c": rng.randrange(4)}
            op = rng.random()
            if op < 0.7:
                row = dict(key)
                for col, values in (("v", "xyz"), ("w", range(-2, 3))):
                    if rng.random() < 0.6:
                        row[col] = rng.choice(list(values))
                s.submit(node, "insert", keyspace="ks", table="t", row=row, consistency="ONE")
            elif op < 0.85:
                s.submit(node, "delete", keyspace="ks", table="t", key=key, columns=[rng.choice("vw")],
                         consistency="ONE")
            else:
                s.submit(node, "delete", keyspace="ks", table="t", key=key, consistency="ONE")
            s.run_for(20)
        s.heal()
        s.run_for(6000)
        table = s.nodes["n1"].store.table("ks", "t")
        scan = s.request("n2", "scan", keyspace="ks", table="t", consistency="ALL", page_size=10_000)["rows"]
        for where in ([["v", "=", "x"]], [["v", "=", "y"], ["w", ">", 0]], [["w", ">=", 0], ["v", "<", "z"]],
                      [["w", "<", 1], ["c", "=", 2]]):
            expected = [r for r in scan if rs.matches(table, rs.parse(table, where), r)]
            for node in ("n1", "n2", "n3"):
                rows, _ = query_all(s, node, where, page_size=3, consistency="ALL")
                assert rows == expected, (where, node)
    finally:
        s.close()
