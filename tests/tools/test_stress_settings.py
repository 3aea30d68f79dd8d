"""The `dynatable stress` command line: cassandra-stress's shapes parse, bad words are named."""
import pytest

from engine.errors import InvalidRequest
from tools.stress.distribution import Fixed, Gaussian, Sequence, Uniform
from tools.stress.settings import parse


def test_the_issue_examples_parse():
    s = parse(["write", "n=100000", "cl=QUORUM", "-rate", "threads=32", "-node", "127.0.0.1:9042",
               "-col", "n=5", "size=fixed(34)", "-pop", "dist=uniform(1..100000)"])
    assert (s.command, s.n, s.duration_s, s.consistency, s.threads) == ("write", 100000, None, "QUORUM", 32)
    assert s.nodes == ["127.0.0.1:9042"] and s.rate is None and not s.open_loop
    assert s.col_count == Fixed(5) and s.col_size == Fixed(34) and s.population == Uniform(1, 100000)
    s = parse(["mixed", "ratio(write=1,read=3)", "duration=30s", "-rate", "throttle=5000/s", "threads=8"])
    assert s.ratio == {"write": 1, "read": 3} and s.duration_s == 30.0 and s.n is None
    assert s.rate == 5000.0 and s.rate_mode == "throttle" and s.threads == 8 and s.open_loop
    s = parse(["read", "duration=2m", "-rate", "fixed=250", "-schema", "replication(factor=3)", "keyspace=ks2",
               "--json", "o.json", "--csv", "o.csv", "--plot", "o.png", "-seed", "7", "-node", "a,b:9200"])
    assert s.duration_s == 120.0 and s.rate == 250.0 and s.rate_mode == "fixed"
    assert s.replication_factor == 3 and s.keyspace == "ks2" and s.seed == 7
    assert (s.json_path, s.csv_path, s.plot_path) == ("o.json", "o.csv", "o.png")
    assert s.nodes == ["a:9100", "b:9200"]


def test_defaults_follow_cassandra_stress():
    w = parse(["write", "n=1000"])
    assert w.population == Sequence(1, 1000) and w.consistency == "LOCAL_ONE"
    assert (w.keyspace, w.table, w.replication_factor) == ("keyspace1", "standard1", 1)
    assert w.col_count == Fixed(5) and w.col_size == Fixed(34)
    r = parse(["read", "duration=5s"])
    assert r.population == Gaussian(1, 1_000_000)
    assert parse(["write", "n=100k"]).n == 100_000 and parse(["write", "n=2M"]).n == 2_000_000


def test_ycsb_words():
    s = parse(["ycsb", "--workload", "E", "run", "-p", "recordcount=5000", "-p", "operationcount=10",
               "-threads", "4", "-target", "100", "cl=QUORUM"])
    assert s.ycsb_workload == "e" and s.ycsb_phases == ("run",) and s.threads == 4
    assert s.ycsb_properties == {"recordcount": "5000", "operationcount": "10"}
    assert s.rate == 100.0 and (s.keyspace, s.table) == ("ycsb", "usertable")
    assert parse(["ycsb", "workload=b"]).ycsb_phases == ("load", "run")
    assert parse(["ycsb", "--workload", "c", "run", "load"]).ycsb_phases == ("load", "run")


@pytest.mark.parametrize("argv, names", [
    ([], "write|read|mixed|ycsb"),
    (["scan", "n=1"], "'scan'"),
    (["write"], "n=100000"),
    (["write", "n=10", "duration=1s"], "not both"),
    (["write", "n=ten"], "n="),
    (["write", "n=0"], "between 1"),
    (["write", "n=1", "cl=MOST"], "cl='MOST'"),
    (["write", "n=1", "duration=soon"], "duration="),
    (["write", "n=1", "-rate", "threads=5000"], "threads="),
    (["write", "n=1", "-rate", "throttle=fast"], "throttle="),
    (["write", "n=1", "-rate", "speed=3"], "speed=3"),
    (["write", "n=1", "-col", "size=huge(3)"], "-col size="),
    (["write", "n=1", "-col", "size=fixed(2000000)"], "at most"),
    (["write", "n=1", "-col", "n=fixed(0)"], "-col n="),
    (["write", "n=1", "-pop", "dist=uniform(10..1)"], "MIN 10 is greater than MAX 1"),
    (["write", "n=1", "-pop", "dist=uniform(1..10,3)"], "only gaussian"),
    (["write", "n=1", "-node", "h:99999"], "-node"),
    (["write", "n=1", "-schema", "replication(factor=0)"], "factor"),
    (["write", "n=1", "-schema", "keyspace=1bad"], "keyspace=1bad"),
    (["write", "n=1", "-bogus", "x"], "'-bogus'"),
    (["write", "n=1", "--plot", "out.txt"], ".png"),
    (["write", "n=1", "--json"], "--json needs a value"),
    (["write", "n=1", "ratio(write=1)"], "only applies to `mixed`"),
    (["mixed", "n=1", "ratio(write=1,scan=2)"], "ratio(write=1,read=3)"),
    (["mixed", "n=1", "ratio(write=0,read=0)"], "above 0"),
    (["ycsb"], "--workload"),
    (["ycsb", "--workload", "g"], "'g'"),
    (["ycsb", "--workload", "a", "-col", "n=3"], "-p fieldcount"),
    (["ycsb", "--workload", "a", "-threads"], "-threads takes one value"),
])
def test_bad_lines_name_the_problem(argv, names):
    with pytest.raises(InvalidRequest) as e:
        parse(argv)
    assert names in str(e.value)


def test_cql_mode_words_and_credentials():
    from tools.stress.cql_mode import cql_contact
    assert parse(["write", "n=10"]).protocol == "dynatable"
    for argv in (["write", "n=10", "--mode", "cql"], ["write", "n=10", "-mode", "native", "cql3"]):
        assert parse(argv).protocol == "cql"
    s = parse(["write", "n=10", "-mode", "cql", "user=alice", "password=wonder", "-node", "10.0.0.1,10.0.0.2"])
    assert (s.user, s.password) == ("alice", "wonder")
    assert cql_contact(s) == (["10.0.0.1", "10.0.0.2"], 9042)
    assert cql_contact(parse(["write", "n=10", "--mode", "cql", "-node", "h1:9043,h2:9043"])) == (["h1", "h2"], 9043)
    with pytest.raises(InvalidRequest, match="one CQL port"):
        cql_contact(parse(["write", "n=10", "--mode", "cql", "-node", "h1:9043,h2:9044"]))
    for argv, words in ((["write", "n=10", "--mode", "thrift"], "use cql"),
                        (["write", "n=10", "-mode", "user=alice"], "go together"),
                        (["write", "n=10", "-mode", "user=a", "password=b"], "add --mode cql")):
        with pytest.raises(InvalidRequest, match=words):
            parse(argv)
