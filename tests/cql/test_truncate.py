"""TRUNCATE through the CQL executor on a 3-node simulated cluster (ring/ops/truncate.py): every
node drops the rows, a restart does not bring them back, and a down node makes it Unavailable at
ALL before anything is sent; a node that does not answer makes it a Truncate_error."""
from ring.cql.responses import Error, ErrorCode, Unavailable
from ring.cql.result import Void
from tests.cql.test_execute import cluster, fill


def _count(c, node: str) -> int:
    return len(c.rows(node, "SELECT * FROM ks.t", consistency="ONE"))


def test_truncate_empties_every_node_and_survives_a_crash_restart():
    c = cluster()
    fill(c)
    c.sim.run_for(1000)
    assert {_count(c, n) for n in ("n1", "n2", "n3")} == {20}
    assert isinstance(c.run("n2", "TRUNCATE ks.t"), Void)
    for n in ("n1", "n2", "n3"):
        assert _count(c, n) == 0
        assert c.sim.local_row(n, "ks", "t", {"k": 1, "c": 1}) is None
    c.ok("n1", "INSERT INTO ks.t (k, c, v) VALUES (9, 9, 'after')", consistency="ALL")
    c.sim.crash("n3", lose_unsynced=False)     # the commit log still holds the truncated writes
    c.sim.restart("n3")
    c.sim.run_for(5000)
    assert c.rows("n3", "SELECT k, c, v FROM ks.t", consistency="ALL") == [(9, 9, "after")]
    assert c.sim.local_row("n3", "ks", "t", {"k": 9, "c": 9})["v"] == "after"
    assert c.sim.local_row("n3", "ks", "t", {"k": 1, "c": 1}) is None
    assert c.run("n1", "TRUNCATE TABLE ks.nope").code == ErrorCode.INVALID
    c.sim.close()


def test_truncate_needs_every_node_alive():
    c = cluster({"gossip_interval_ms": 200, "phi_convict_threshold": 4.0})
    fill(c, partitions=2, rows=2)
    c.sim.pause("n3")
    c.sim.run_for(60_000)                      # convicted: refused before anything is sent
    u = c.run("n1", "TRUNCATE ks.t")
    assert isinstance(u, Unavailable) and (u.required, u.alive) == (3, 2)
    assert "Cannot achieve consistency level ALL" in u.message
    assert _count(c, "n1") == 4                # nothing was truncated anywhere
    c.sim.close()


def test_a_silent_node_makes_it_a_truncate_error():
    c = cluster({"gossip_interval_ms": 1000, "phi_convict_threshold": 12.0})  # slow to convict
    c.sim.pause("n3")
    e = c.run("n1", "TRUNCATE ks.t")
    assert isinstance(e, Error) and e.code == ErrorCode.TRUNCATE_ERROR and "10.0.0.3" in e.message
    c.sim.close()


def _hinted_on_n1(c, rows):
    """Writes coordinated by n1 while the n1 <-> n3 link is cut: n3 never acknowledges, so n1
    stores a hint for each (and cannot deliver it while the link stays cut)."""
    for k, v in rows:
        c.ok("n1", f"INSERT INTO ks.t (k, c, v) VALUES ({k}, 1, '{v}')", consistency="QUORUM")
    c.sim.run_for(5000)                        # the write timeouts: n3 is hinted


def test_hints_stored_before_a_truncate_are_dropped_by_the_replica():
    c = cluster()
    c.sim.partition({"n1"}, {"n3"})            # n3 stays alive to everyone through n2's gossip
    _hinted_on_n1(c, [(k, "before") for k in range(5)])
    hints = c.sim.nodes["n1"].node.hints
    assert hints.pending.get(c.sim.nodes["n3"].node.config.host_id) == 5
    assert isinstance(c.run("n2", "TRUNCATE ks.t"), Void)      # reaches n3 through n2
    _hinted_on_n1(c, [(7, "after")])           # created after the truncate: must arrive
    c.sim.crash("n3", lose_unsynced=False)     # the truncation time comes back from truncated.db
    c.sim.restart("n3")
    c.sim.heal()
    c.sim.run_for(20_000)                      # every hint delivered (and acknowledged)
    assert hints.stats["hints_delivered"] == 6 and not any(hints.pending.values())
    assert [c.sim.local_row("n3", "ks", "t", {"k": k, "c": 1}) for k in range(5)] == [None] * 5
    assert c.sim.local_row("n3", "ks", "t", {"k": 7, "c": 1})["v"] == "after"
    assert c.rows("n3", "SELECT k, v FROM ks.t", consistency="ALL") == [(7, "after")]
    c.sim.close()
