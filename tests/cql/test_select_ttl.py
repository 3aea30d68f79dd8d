"""SELECT ttl(col) on a 3-node simulated cluster: the seconds left of the cell's TTL, counted on the
answering node's (virtual) clock; null for a cell without TTL or a null cell; Cassandra's refusals
on primary key columns and non-frozen collections. Every read op answers it: select, scan,
index_query and SERIAL reads."""
import pytest

from ring.cql.responses import ErrorCode
from ring.cql.result import Prepared
from ring.cql.types import parse_type
from tests.cql.cql_sim import decode, encode
from tests.cql.test_execute import cluster, error


@pytest.fixture
def cql():
    c = cluster()
    c.ok("n1", "CREATE TABLE ks.e (k int, c int, v text, w int, s int STATIC, f frozen<list<int>>, l list<int>, "
               "PRIMARY KEY (k, c))")
    c.ok("n1", "CREATE TABLE ks.i (k int PRIMARY KEY, v text, n int)")
    c.ok("n1", "CREATE INDEX ON ks.i (n)")
    c.agree()
    c.ok("n1", "INSERT INTO ks.e (k, c, v, w, f) VALUES (1, 1, 'a', 7, [1, 2]) USING TTL 100", consistency="ALL")
    c.ok("n1", "INSERT INTO ks.e (k, c, v, w) VALUES (1, 2, 'b', 8)", consistency="ALL")   # no TTL
    c.ok("n2", "UPDATE ks.e USING TTL 50 SET w = 9 WHERE k = 1 AND c = 2", consistency="ALL")
    c.ok("n2", "UPDATE ks.e USING TTL 200 SET s = 3 WHERE k = 1", consistency="ALL")
    c.ok("n3", "INSERT INTO ks.i (k, v, n) VALUES (5, 'x', 42) USING TTL 100", consistency="ALL")
    yield c
    c.sim.close()


def left(value, ttl: int, elapsed_s: int = 0) -> bool:
    """The seconds left of a `ttl` set `elapsed_s` ago (the read may fall a second later)."""
    return value is not None and ttl - elapsed_s - 2 <= value <= ttl - elapsed_s


def test_ttl_is_the_seconds_left_and_null_without_ttl(cql):
    rows = cql.rows("n3", "SELECT c, ttl(v), ttl(w), ttl(s), ttl(f) FROM ks.e WHERE k = 1", consistency="QUORUM")
    (c1, v1, w1, s1, f1), (c2, v2, w2, s2, f2) = rows
    assert (c1, c2) == (1, 2)
    assert left(v1, 100) and left(w1, 100) and left(f1, 100) and left(s1, 200) and left(s2, 200)
    assert v2 is None and left(w2, 50)          # 'b' was written without TTL; w updated with TTL 50
    assert f2 is None                           # a null cell has no TTL
    cql.sim.run_for(30_000)
    (_, v1, w1, _, _), (_, _, w2, _, _) = cql.rows("n1", "SELECT c, ttl(v), ttl(w), ttl(s), ttl(f) FROM ks.e "
                                                         "WHERE k = 1", consistency="ONE")
    assert left(v1, 100, 30) and left(w2, 50, 30)


def test_ttl_metadata_alias_prepared_and_every_read_op(cql):
    r = cql.ok("n2", "SELECT ttl(v) AS left, writetime(v) FROM ks.e WHERE k = 1 AND c = 1")
    assert [(c.name, c.type) for c in r.metadata.columns] == [("left", parse_type("int")),
                                                              ("writetime(v)", parse_type("bigint"))]
    p = cql.prepare("n2", "SELECT ttl(v) FROM ks.e WHERE k = ? AND c = ?")
    assert isinstance(p, Prepared) and p.result_metadata.columns[0].name == "ttl(v)"
    INT = parse_type("int")
    (ttl,), = decode(cql.execute("n2", p.query_id, values=[encode(INT, 1), encode(INT, 1)]))
    assert left(ttl, 100)
    scan = cql.rows("n2", "SELECT k, c, ttl(v) FROM ks.e", consistency="QUORUM")
    assert [r[:2] for r in scan] == [(1, 1), (1, 2)] and left(scan[0][2], 100) and scan[1][2] is None
    (k, ttl, n), = cql.rows("n1", "SELECT k, ttl(v), n FROM ks.i WHERE n = 42", consistency="QUORUM")
    assert (k, n) == (5, 42) and left(ttl, 100)
    (ttl,), = cql.rows("n3", "SELECT ttl(v) FROM ks.e WHERE k = 1 AND c = 1", consistency="SERIAL")
    assert left(ttl, 100)


def test_ttl_refused_on_primary_key_and_non_frozen_collections(cql):
    assert error(cql.run("n1", "SELECT ttl(k) FROM ks.e WHERE k = 1")) == (
        ErrorCode.INVALID, "Cannot use selection function ttl on PRIMARY KEY part k")
    assert error(cql.run("n1", "SELECT ttl(c) FROM ks.e WHERE k = 1")) == (
        ErrorCode.INVALID, "Cannot use selection function ttl on PRIMARY KEY part c")
    assert error(cql.run("n1", "SELECT ttl(l) FROM ks.e WHERE k = 1")) == (
        ErrorCode.INVALID, "Cannot use selection function ttl on non-frozen collection l")
