"""Lightweight transactions in CQL (ring/cql/cas.py) on a 3-node simulated cluster: the IF forms,
Cassandra's [applied] results and their column order, SERIAL reads, conditional batches and the
errors Cassandra answers."""
import pytest

from ring.cql.result import Rows
from ring.cql.types import parse_type
from ring.runtime.sim import Simulation
from tests.cql.cql_sim import CqlSim, decode, encode
from tests.cql.test_execute import FAST, error

INT = parse_type("int")


@pytest.fixture(scope="module")
def cql():
    sim = Simulation(11, node_options=FAST)
    sim.run_for(3000)
    c = CqlSim(sim)
    c.ok("n1", "CREATE KEYSPACE ks WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 3}")
    c.ok("n1", "CREATE TABLE ks.acct (k int, c int, bal int, owner text, PRIMARY KEY (k, c))")
    c.ok("n1", "CREATE TABLE ks.u (name text PRIMARY KEY, email text, age int)")
    c.agree()
    yield c
    sim.close()


def result(response) -> tuple[list[str], list[tuple]]:
    assert isinstance(response, Rows), response
    return [c.name for c in response.metadata.columns], decode(response)


def test_insert_if_not_exists_answers_applied_then_the_current_row(cql):
    q = "INSERT INTO ks.u (name, email, age) VALUES ('ada', 'a@x', 36) IF NOT EXISTS"
    assert result(cql.run("n1", q)) == (["[applied]"], [(True,)])
    names, rows = result(cql.run("n2", "INSERT INTO ks.u (name, email) VALUES ('ada', 'other') IF NOT EXISTS"))
    assert names == ["[applied]", "name", "age", "email"]                  # SELECT * order
    assert rows == [(False, "ada", 36, "a@x")]
    before = cql.sim.nodes["n3"].node.stats.get("serial_reads", 0)
    assert cql.rows("n3", "SELECT email FROM ks.u WHERE name = 'ada'", consistency="SERIAL") == [("a@x",)]
    assert cql.sim.nodes["n3"].node.stats.get("serial_reads", 0) == before + 1      # a Paxos read


def test_update_if_conditions_in_if_order_and_every_operator(cql):
    cql.ok("n1", "INSERT INTO ks.acct (k, c, bal, owner) VALUES (1, 1, 100, 'me') IF NOT EXISTS")
    assert result(cql.run("n2", "UPDATE ks.acct SET bal = 70 WHERE k = 1 AND c = 1 IF bal = 100")) == \
        (["[applied]"], [(True,)])
    names, rows = result(cql.run("n3", "UPDATE ks.acct SET bal = 0 WHERE k = 1 AND c = 1 IF owner = 'you' AND bal = 5"))
    assert (names, rows) == (["[applied]", "owner", "bal"], [(False, "me", 70)])   # conditioned columns only
    for cond, applies in (("bal != 70", False), ("bal < 71", True), ("bal <= 69", False), ("bal > 69", True),
                          ("bal >= 71", False), ("bal IN (1, 70)", True), ("bal IN (1, null)", False),
                          ("bal > 60 AND bal < 80", True), ("owner = null", False), ("owner != null", True)):
        got = result(cql.run("n1", f"UPDATE ks.acct SET owner = 'me' WHERE k = 1 AND c = 1 IF {cond}"))[1][0][0]
        assert got is applies, cond
    assert result(cql.run("n1", "UPDATE ks.acct SET bal = 1 WHERE k = 1 AND c = 9 IF bal = 3")) == \
        (["[applied]"], [(False,)])                                      # no row: only [applied]
    assert result(cql.run("n1", "UPDATE ks.acct SET bal = 1 WHERE k = 1 AND c = 9 IF bal = null"))[1] == [(True,)]
    assert result(cql.run("n2", "UPDATE ks.acct SET bal = 2 WHERE k = 1 AND c = 8 IF EXISTS"))[1] == [(False,)]
    assert result(cql.run("n2", "UPDATE ks.acct SET bal = 2 WHERE k = 1 AND c = 9 IF EXISTS"))[1] == [(True,)]


def test_delete_if_and_serial_levels(cql):
    cql.ok("n1", "INSERT INTO ks.u (name, email, age) VALUES ('bob', 'b@x', 5)")
    names, rows = result(cql.run("n1", "DELETE FROM ks.u WHERE name = 'bob' IF age > 10", serial="LOCAL_SERIAL"))
    assert (names, rows) == (["[applied]", "age"], [(False, 5)])
    assert result(cql.run("n1", "DELETE email FROM ks.u WHERE name = 'bob' IF age = 5"))[1] == [(True,)]
    assert cql.rows("n2", "SELECT name, email, age FROM ks.u WHERE name = 'bob'", consistency="LOCAL_SERIAL") == \
        [("bob", None, 5)]
    assert result(cql.run("n3", "DELETE FROM ks.u WHERE name = 'bob' IF EXISTS", consistency="QUORUM"))[1] == [(True,)]
    assert result(cql.run("n3", "DELETE FROM ks.u WHERE name = 'bob' IF EXISTS"))[1] == [(False,)]
    assert cql.rows("n1", "SELECT * FROM ks.u WHERE name = 'bob'", consistency="SERIAL") == []


def test_prepared_conditional_statements_bind_their_conditions(cql):
    p = cql.prepare("n1", "UPDATE ks.acct SET bal = ? WHERE k = ? AND c = ? IF bal = ? AND owner IN ?")
    assert [s.name for s in p.bind] == ["bal", "k", "c", "bal", "in(owner)"]
    assert p.pk_indexes == (1,)
    cql.ok("n1", "INSERT INTO ks.acct (k, c, bal, owner) VALUES (2, 1, 10, 'x')")
    values = [encode(INT, 20), encode(INT, 2), encode(INT, 1), encode(INT, 10),
              encode(parse_type("list<text>"), ["y", "x"])]
    assert decode(cql.execute("n1", p.query_id, values=values)) == [(True,)]
    names, rows = result(cql.execute("n1", p.query_id, values=values))
    assert (names, rows) == (["[applied]", "bal", "owner"], [(False, 20, "x")])


def test_conditional_batches_on_one_partition(cql):
    cql.ok("n1", "INSERT INTO ks.acct (k, c, bal) VALUES (3, 1, 100)")
    cql.ok("n1", "INSERT INTO ks.acct (k, c, bal) VALUES (3, 2, 0)")
    move = ("BEGIN BATCH UPDATE ks.acct SET bal = 70 WHERE k = 3 AND c = 1 IF bal = 100; "
            "UPDATE ks.acct SET bal = 30 WHERE k = 3 AND c = 2 IF bal = 0; "
            "INSERT INTO ks.acct (k, c, bal) VALUES (3, 3, 1) APPLY BATCH")
    assert result(cql.run("n2", move)) == (["[applied]"], [(True,)])
    names, rows = result(cql.run("n3", move))
    assert names == ["[applied]", "k", "c", "bal"]                       # primary key, then conditioned
    assert rows == [(False, 3, 1, 70), (False, 3, 2, 30)]
    assert cql.rows("n1", "SELECT c, bal FROM ks.acct WHERE k = 3", consistency="SERIAL") == [(1, 70), (2, 30), (3, 1)]
    p = cql.prepare("n1", "UPDATE ks.acct SET bal = ? WHERE k = 3 AND c = 1 IF bal = ?")
    r = cql.batch("n1", [(p.query_id, [encode(INT, 5), encode(INT, 70)]),
                         ("DELETE FROM ks.acct WHERE k = 3 AND c = 3", [])])
    assert decode(r) == [(True,)]
    assert cql.rows("n1", "SELECT c, bal FROM ks.acct WHERE k = 3", consistency="SERIAL") == [(1, 5), (2, 30)]


@pytest.mark.parametrize("query, message", [
    ("INSERT INTO ks.u (name) VALUES ('z') IF NOT EXISTS USING TIMESTAMP 5",
     "Cannot provide custom timestamp for conditional updates"),
    ("UPDATE ks.u USING TIMESTAMP 5 SET age = 1 WHERE name = 'z' IF EXISTS",
     "Cannot provide custom timestamp for conditional updates"),
    ("BEGIN BATCH UPDATE ks.acct SET bal = 1 WHERE k = 1 AND c = 1 IF bal = 1; "
     "UPDATE ks.acct SET bal = 1 WHERE k = 2 AND c = 1 APPLY BATCH", "cannot span multiple partitions"),
    ("BEGIN BATCH UPDATE ks.acct SET bal = 1 WHERE k = 1 AND c = 1 IF bal = 1; "
     "UPDATE ks.u SET age = 1 WHERE name = 'a' APPLY BATCH", "cannot span multiple tables"),
    ("BEGIN BATCH USING TIMESTAMP 3 UPDATE ks.acct SET bal = 1 WHERE k = 1 AND c = 1 IF bal = 1 APPLY BATCH",
     "Cannot provide custom timestamp for conditional BATCH"),
    ("UPDATE ks.acct SET bal = 1 WHERE k IN (1, 2) AND c = 1 IF bal = 1",
     "IN on the partition key is not supported with conditional updates"),
    ("UPDATE ks.acct SET bal = 1 WHERE k = 1 AND c = 1 IF c = 1", "PRIMARY KEY column 'c' cannot have IF conditions"),
    ("UPDATE ks.acct SET bal = 1 WHERE k = 1 AND c = 1 IF bal > null", "Invalid comparison with null"),
    ("DELETE FROM ks.acct WHERE k = 1 IF EXISTS", "must restrict all PRIMARY KEY columns"),
    ("SELECT * FROM ks.acct", "one partition at a time"),
    ("SELECT * FROM ks.acct WHERE k IN (1, 2)", "one partition at a time"),
])
def test_errors_as_cassandra_answers_them(cql, query, message):
    consistency = "SERIAL" if query.startswith("SELECT") else "ONE"
    code, text = error(cql.run("n1", query, consistency=consistency))
    assert message in text, text


def test_serial_as_commit_level_and_plain_writes_at_serial_are_refused(cql):
    _, text = error(cql.run("n1", "UPDATE ks.u SET age = 1 WHERE name = 'q' IF EXISTS", consistency="SERIAL"))
    assert "SERIAL is not supported as conditional update commit consistency" in text
    _, text = error(cql.run("n1", "UPDATE ks.u SET age = 1 WHERE name = 'q'", consistency="SERIAL"))
    assert "You must use conditional updates for serializable writes" in text


def test_static_columns_through_cql_and_conditions_on_them(cql):
    cql.ok("n1", "CREATE TABLE ks.st (k int, c int, s int STATIC, v int, PRIMARY KEY (k, c))")
    cql.agree()
    kinds = cql.rows("n1", "SELECT column_name, kind FROM system_schema.columns WHERE keyspace_name = 'ks' "
                           "AND table_name = 'st'")
    assert dict(kinds) == {"k": "partition_key", "c": "clustering", "s": "static", "v": "regular"}
    cql.ok("n1", "INSERT INTO ks.st (k, s) VALUES (1, 10)", consistency="QUORUM")          # static only
    assert cql.rows("n2", "SELECT * FROM ks.st WHERE k = 1", consistency="QUORUM") == [(1, None, 10, None)]
    assert cql.rows("n2", "SELECT * FROM ks.st WHERE k = 1 AND c > 0", consistency="QUORUM") == []
    cql.ok("n1", "INSERT INTO ks.st (k, c, v) VALUES (1, 1, 100)", consistency="QUORUM")
    cql.ok("n1", "INSERT INTO ks.st (k, c, v) VALUES (1, 2, 200)", consistency="QUORUM")
    assert cql.rows("n3", "SELECT * FROM ks.st WHERE k = 1", consistency="QUORUM") == [(1, 1, 10, 100), (1, 2, 10, 200)]
    assert cql.rows("n3", "SELECT DISTINCT k, s FROM ks.st WHERE k = 1", consistency="QUORUM") == [(1, 10)]
    assert result(cql.run("n1", "UPDATE ks.st SET s = 11 WHERE k = 1 IF s = 10")) == (["[applied]"], [(True,)])
    assert result(cql.run("n1", "UPDATE ks.st SET s = 12 WHERE k = 1 IF s = 10")) == (["[applied]", "s"], [(False, 11)])
    assert result(cql.run("n2", "UPDATE ks.st SET v = 7 WHERE k = 1 AND c = 5 IF s = 11"))[1] == [(True,)]
    assert result(cql.run("n2", "INSERT INTO ks.st (k, s) VALUES (1, 0) IF NOT EXISTS"))[1] == [(False, 1, None, 11, None)]
    move = ("BEGIN BATCH UPDATE ks.st SET s = 12 WHERE k = 1 IF s = 11; "
            "INSERT INTO ks.st (k, c, v) VALUES (1, 3, 300) APPLY BATCH")
    assert result(cql.run("n3", move))[1] == [(True,)]
    assert cql.rows("n1", "SELECT c, s, v FROM ks.st WHERE k = 1", consistency="SERIAL") == [
        (1, 12, 100), (2, 12, 200), (3, 12, 300), (5, 12, 7)]
    cql.ok("n1", "DELETE s FROM ks.st WHERE k = 1", consistency="QUORUM")
    assert cql.rows("n1", "SELECT c, s FROM ks.st WHERE k = 1 AND c = 1", consistency="QUORUM") == [(1, None)]
    code, text = error(cql.run("n1", "CREATE TABLE ks.bad (k int PRIMARY KEY, s int STATIC)"))
    assert "only useful (and thus allowed) if the table has at least one clustering column" in text
