"""Differential test: random INSERT / UPDATE / DELETE / SELECT statements through cassandra-driver
on a real node (`LocalCluster`, n=1) against the same operations on an embedded engine `Store`;
both must give the same rows. Every write carries USING TIMESTAMP (small numbers, so ties
between writes and deletes happen) and no TTL, so the results are deterministic. Statements
go as simple QUERY text or as prepared EXECUTEs (hypothesis picks); reads cover the whole
partition with writetime(), a clustering slice, ORDER BY DESC with LIMIT, COUNT(*), and a
paged scan of the example's partitions.

Examples: 15 in the default (ci) profile, 8 in dev, the profile's own number (1000) in nightly.
Each example writes its own partitions (keys offset by the example number), so no DDL per
example and no state shared between examples.
"""
from __future__ import annotations

import itertools
import os

import pytest
from cassandra import ConsistencyLevel
from cassandra.query import SimpleStatement
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.store import Store
from tests.cql.one_node import one_node

pytestmark = pytest.mark.slow

PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")
EXAMPLES = {"ci": 15, "dev": 8}.get(PROFILE, settings.default.max_examples)

KEYS, CLUSTERINGS = st.integers(0, 2), st.integers(0, 3)   # dense: statements collide
TIMESTAMPS = st.integers(1, 30)
TEXT = st.text("ab'", max_size=3)
BIG = st.integers(-(2**63), 2**63 - 1)
STATEMENTS = st.one_of(
    st.tuples(st.just("insert"), KEYS, CLUSTERINGS, TEXT, BIG, TIMESTAMPS),
    st.tuples(st.just("insert_v"), KEYS, CLUSTERINGS, TEXT, TIMESTAMPS),
    st.tuples(st.just("update"), KEYS, CLUSTERINGS, TEXT, TIMESTAMPS),
    st.tuples(st.just("update_w"), KEYS, CLUSTERINGS, BIG, TIMESTAMPS),
    st.tuples(st.just("delete_row"), KEYS, CLUSTERINGS, TIMESTAMPS),
    st.tuples(st.just("delete_cell"), KEYS, CLUSTERINGS, TIMESTAMPS),
    st.tuples(st.just("delete_range"), KEYS, CLUSTERINGS, CLUSTERINGS, TIMESTAMPS),
    st.tuples(st.just("delete_partition"), KEYS, TIMESTAMPS),
)


def as_cql(s, base: int) -> tuple[str, tuple]:
    """(CQL with ? markers, values) for one statement; keys are offset by `base`."""
    kind, k = s[0], s[1] + base
    if kind == "insert":
        return "INSERT INTO ks.t (k, c, v, w) VALUES (?, ?, ?, ?) USING TIMESTAMP ?", (k, s[2], s[3], s[4], s[5])
    if kind == "insert_v":
        return "INSERT INTO ks.t (k, c, v) VALUES (?, ?, ?) USING TIMESTAMP ?", (k, s[2], s[3], s[4])
    if kind == "update":
        return "UPDATE ks.t USING TIMESTAMP ? SET v = ? WHERE k = ? AND c = ?", (s[4], s[3], k, s[2])
    if kind == "update_w":
        return "UPDATE ks.t USING TIMESTAMP ? SET w = ? WHERE k = ? AND c = ?", (s[4], s[3], k, s[2])
    if kind == "delete_row":
        return "DELETE FROM ks.t USING TIMESTAMP ? WHERE k = ? AND c = ?", (s[3], k, s[2])
    if kind == "delete_cell":
        return "DELETE v FROM ks.t USING TIMESTAMP ? WHERE k = ? AND c = ?", (s[3], k, s[2])
    if kind == "delete_range":
        lo, hi = sorted(s[2:4])
        return "DELETE FROM ks.t USING TIMESTAMP ? WHERE k = ? AND c >= ? AND c < ?", (s[4], k, lo, hi)
    return "DELETE FROM ks.t USING TIMESTAMP ? WHERE k = ?", (s[2], k)


def apply_model(store: Store, s, base: int) -> None:
    kind, k = s[0], s[1] + base
    if kind == "insert":
        store.insert("ks", "t", {"k": k, "c": s[2], "v": s[3], "w": s[4]}, timestamp=s[5])
    elif kind == "insert_v":
        store.insert("ks", "t", {"k": k, "c": s[2], "v": s[3]}, timestamp=s[4])
    elif kind in ("update", "update_w"):   # dynatable's UPDATE writes the row marker too (docs/cql.md)
        store.insert("ks", "t", {"k": k, "c": s[2], "v" if kind == "update" else "w": s[3]}, timestamp=s[4])
    elif kind == "delete_row":
        store.delete("ks", "t", {"k": k, "c": s[2]}, timestamp=s[3])
    elif kind == "delete_cell":
        store.delete("ks", "t", {"k": k, "c": s[2]}, columns=["v"], timestamp=s[3])
    elif kind == "delete_range":
        lo, hi = sorted(s[2:4])
        store.delete("ks", "t", {"k": k}, start=(lo,), end=(hi,), end_inclusive=False, timestamp=s[4])
    else:
        store.delete("ks", "t", {"k": k}, timestamp=s[2])


def literal(value) -> str:
    return "'" + value.replace("'", "''") + "'" if isinstance(value, str) else str(value)


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    with one_node(tmp_path_factory, "differential", {"num_tokens": 4, "log_level": "WARNING"},
                  "CREATE TABLE ks.t (k int, c int, v text, w bigint, PRIMARY KEY (k, c))") as (_, session):
        store = Store.open(str(tmp_path_factory.mktemp("model")), background=False)
        store.create_keyspace("ks")
        store.create_table("ks", "t", {"k": "int", "c": "int", "v": "text", "w": "bigint"}, primary_key=("k", "c"))
        yield session, store, itertools.count(), {}
        store.close()


def rows(session, query: str, values=(), fetch_size=None) -> list[tuple]:
    statement = SimpleStatement(query, fetch_size=fetch_size, consistency_level=ConsistencyLevel.ALL)
    return [tuple(r) for r in session.execute(statement, values)]


@settings(max_examples=EXAMPLES, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(statements=st.lists(st.tuples(STATEMENTS, st.booleans()), min_size=1, max_size=25),
       slice_=st.tuples(CLUSTERINGS, CLUSTERINGS), limit=st.integers(1, 4), fetch=st.integers(1, 5))
def test_random_statements_match_an_embedded_store(both, statements, slice_, limit, fetch):
    session, store, examples, prepared = both
    base = 10 * next(examples)
    for s, use_prepared in statements:
        query, values = as_cql(s, base)
        if use_prepared:
            if query not in prepared:
                prepared[query] = session.prepare(query)
            session.execute(prepared[query], values)
        else:                                       # a simple statement with the values as literals
            text = query.replace("?", "{}").format(*(literal(v) for v in values))
            session.execute(text)
        apply_model(store, s, base)
    lo, hi = sorted(slice_)
    for k in range(base, base + 3):
        model = store.select("ks", "t", {"k": k}, writetime=True)
        expected = [(r["k"], r["c"], r.get("v"), r.get("w"), r.get("writetime(v)")) for r in model]
        assert rows(session, "SELECT k, c, v, w, writetime(v) FROM ks.t WHERE k = %s", (k,)) == expected
        sliced = [e[:4] for e in expected if lo < e[1] <= hi]
        assert rows(session, "SELECT k, c, v, w FROM ks.t WHERE k = %s AND c > %s AND c <= %s", (k, lo, hi)) == sliced
        assert rows(session, f"SELECT c FROM ks.t WHERE k = %s ORDER BY c DESC LIMIT {limit}", (k,)) == \
            [(e[1],) for e in expected[::-1][:limit]]
        assert rows(session, "SELECT COUNT(*) FROM ks.t WHERE k = %s", (k,)) == [(len(expected),)]
    paged = rows(session, f"SELECT k, c, v FROM ks.t WHERE k IN ({base}, {base + 1}, {base + 2})", fetch_size=fetch)
    assert paged == [(r["k"], r["c"], r.get("v")) for k in range(base, base + 3) for r in store.select("ks", "t", {"k": k})]
