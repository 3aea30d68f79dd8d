"""The embedded Store API: schema, every write and read form, limits, thresholds, caches, paging."""
import datetime as dt
import uuid

import pytest

from engine.clock import ManualClock
from engine.errors import InvalidRequest, StoreClosedError, TombstoneOverwhelmingError
from engine.store import Store
from engine.token import token


@pytest.fixture
def store(tmp_path):
    s = Store.open(str(tmp_path / "db"), background=False, clock=ManualClock())
    s.create_keyspace("ks")
    s.create_table("ks", "kv", {"k": "blob", "v": "blob"}, primary_key="k")
    s.create_table("ks", "events", {"user": "text", "day": "int", "seq": "int", "what": "text", "n": "bigint"},
                   primary_key=("user", "day", "seq"), clustering_order={"seq": "DESC"})
    yield s
    if not s._closed:
        s.close()


def test_insert_get_overwrite_and_writetime(store):
    ts1 = store.insert("ks", "kv", {"k": b"a", "v": b"1"})
    ts2 = store.insert("ks", "kv", {"k": b"a", "v": b"2"})
    assert ts2 > ts1
    assert store.get("ks", "kv", {"k": b"a"}) == {"k": b"a", "v": b"2"}
    assert store.get("ks", "kv", {"k": b"a"}, writetime=True)["writetime(v)"] == ts2
    assert store.get("ks", "kv", {"k": b"missing"}) is None


def test_client_timestamps_decide_last_writer(store):
    store.insert("ks", "kv", {"k": b"a", "v": b"new"}, timestamp=200)
    store.insert("ks", "kv", {"k": b"a", "v": b"old"}, timestamp=100)
    assert store.get("ks", "kv", {"k": b"a"})["v"] == b"new"
    store.delete("ks", "kv", {"k": b"a"}, timestamp=200)  # a tie goes to the delete
    assert store.get("ks", "kv", {"k": b"a"}) is None


def _events(store, user="u"):
    for day in (1, 2):
        for seq in range(5):
            store.insert("ks", "events", {"user": user, "day": day, "seq": seq, "what": f"{day}-{seq}", "n": seq})


def test_clustering_order_slices_and_limits(store):
    _events(store)
    rows = store.select("ks", "events", {"user": "u"})
    assert [(r["day"], r["seq"]) for r in rows] == [(d, s) for d in (1, 2) for s in (4, 3, 2, 1, 0)]
    day1 = store.select("ks", "events", {"user": "u"}, start=(1,), end=(1,))
    assert [r["seq"] for r in day1] == [4, 3, 2, 1, 0]
    part = store.select("ks", "events", {"user": "u"}, start=(1, 3), end=(1, 1), end_inclusive=False)
    assert [r["seq"] for r in part] == [3, 2]
    assert [r["seq"] for r in store.select("ks", "events", {"user": "u"}, limit=2)] == [4, 3]
    assert [r["seq"] for r in store.select("ks", "events", {"user": "u"}, reverse=True, limit=2)] == [0, 1]
    cols = store.select("ks", "events", {"user": "u"}, columns=["what"], limit=1)
    assert cols == [{"user": "u", "day": 1, "seq": 4, "what": "1-4"}]


def test_every_delete_level(store):
    _events(store)
    store.delete("ks", "events", {"user": "u", "day": 1, "seq": 4}, columns=["what"])     # cell
    store.delete("ks", "events", {"user": "u", "day": 1, "seq": 3})                       # row
    store.delete("ks", "events", {"user": "u"}, start=(1, 2), end=(1, 1))                 # range
    store.delete("ks", "events", {"user": "u", "day": 2})                                 # prefix range
    rows = store.select("ks", "events", {"user": "u"})
    assert [(r["day"], r["seq"], r.get("what")) for r in rows] == [(1, 4, None), (1, 0, "1-0")]
    store.flush()
    assert store.select("ks", "events", {"user": "u"}) == rows
    store.delete("ks", "events", {"user": "u"})                                           # partition
    assert store.select("ks", "events", {"user": "u"}) == []
    store.insert("ks", "events", {"user": "u", "day": 9, "seq": 9})
    assert store.select("ks", "events", {"user": "u"}) == [{"user": "u", "day": 9, "seq": 9}]


def test_ttl_expires_with_the_clock(store):
    store.insert("ks", "kv", {"k": b"t", "v": b"x"}, ttl=10)
    store.clock.advance(9)
    assert store.get("ks", "kv", {"k": b"t"}) is not None
    store.clock.advance(1)
    assert store.get("ks", "kv", {"k": b"t"}) is None


def test_bad_input_is_rejected_and_nothing_applied(store):
    cases = [
        (lambda: store.insert("nope", "kv", {"k": b"a"}), "keyspace 'nope' does not exist"),
        (lambda: store.insert("ks", "nope", {"k": b"a"}), "table 'ks.nope' does not exist"),
        (lambda: store.insert("ks", "kv", {"k": b"a", "zzz": b"1"}), "unknown column 'zzz'"),
        (lambda: store.insert("ks", "kv", {"k": "text", "v": b"1"}), "column 'k' is blob"),
        (lambda: store.insert("ks", "kv", {"v": b"1"}), "missing partition key column 'k'"),
        (lambda: store.insert("ks", "kv", {"k": b"x" * 65536}), "exceeds the maximum of 65535 bytes"),
        (lambda: store.insert("ks", "kv", {"k": b"a", "v": b"x" * (1024 * 1024 + 1)}), "max_value_bytes"),
        (lambda: store.insert("ks", "kv", {"k": b"a"}, ttl=-1), "ttl must be"),
        (lambda: store.insert("ks", "events", {"user": "u", "day": 1}), "missing clustering column"),
        (lambda: store.get("ks", "events", {"user": "u", "day": 1}), "full primary key"),
    ]
    for call, message in cases:
        with pytest.raises(InvalidRequest, match=message):
            call()
    with pytest.raises(InvalidRequest, match="max_batch_bytes"):
        with store.batch() as b:
            for i in range(20):
                b.insert("ks", "kv", {"k": bytes([i]), "v": b"x" * 1_000_000})
    assert store.get("ks", "kv", {"k": b"a"}) is None
    assert list(store.scan_all("ks", "kv")) == []


def test_batch_is_one_record(store):
    with store.batch() as b:
        for i in range(100):
            b.insert("ks", "kv", {"k": b"%03d" % i, "v": b"v"})
    assert len(list(store.scan_all("ks", "kv"))) == 100
    assert store.commit_log.stats["records"] == 1


def test_scan_pages_in_token_order_and_wraps(store):
    keys = [b"key%d" % i for i in range(50)]
    for k in keys:
        store.insert("ks", "kv", {"k": k, "v": k})
    store.flush()
    for k in keys[:10]:
        store.insert("ks", "kv", {"k": k, "v": b"new"})
    rows = list(store.scan_all("ks", "kv", page_size=7))
    assert [r["k"] for r in rows] == sorted(keys, key=lambda k: (token(k), k))
    assert sum(r["v"] == b"new" for r in rows) == 10
    mid = token(sorted(keys, key=token)[25])
    first = [r["k"] for r in store.scan_all("ks", "kv", None, mid)]
    second = [r["k"] for r in store.scan_all("ks", "kv", mid, None)]
    assert first + second == [r["k"] for r in rows]
    wrapped = [r["k"] for r in store.scan_all("ks", "kv", mid, mid - 1)]
    assert wrapped == second + first[:-1]  # (mid, MAX] then [MIN, mid - 1]


def test_scan_pages_inside_wide_partitions(store):
    _events(store, "a")
    _events(store, "b")
    pages, state = [], None
    while True:
        page = store.scan("ks", "events", page_size=3, paging_state=state)
        pages.append(page.rows)
        state = page.paging_state
        if state is None:
            break
    flat = [r for p in pages for r in p]
    assert len(flat) == 20 and all(len(p) <= 3 for p in pages)
    assert len({(r["user"], r["day"], r["seq"]) for r in flat}) == 20


def test_tombstone_thresholds(tmp_path):
    s = Store.open(str(tmp_path / "t"), background=False, tombstone_warn_threshold=5, tombstone_failure_threshold=20)
    s.create_keyspace("ks")
    s.create_table("ks", "q", {"p": "int", "c": "int", "v": "int"}, primary_key=("p", "c"))
    for c in range(10):
        s.insert("ks", "q", {"p": 1, "c": c, "v": c})
        s.delete("ks", "q", {"p": 1, "c": c})
    assert s.select("ks", "q", {"p": 1}) == []
    assert s.tablestats()[0]["tombstone_warnings"] == 1
    for c in range(10, 30):
        s.delete("ks", "q", {"p": 1, "c": c})
    with pytest.raises(TombstoneOverwhelmingError, match="scanned over 20 tombstones"):
        s.select("ks", "q", {"p": 1})
    s.close()


def test_schema_survives_reopen_and_drop(tmp_path):
    path = str(tmp_path / "s")
    with Store.open(path, background=False) as s:
        s.create_keyspace("ks", {"class": "SimpleStrategy", "replication_factor": 3})
        s.create_table("ks", "t", {"id": "uuid", "at": "timestamp", "ok": "boolean", "price": "decimal"},
                       primary_key="id")
        u = uuid.uuid4()
        s.insert("ks", "t", {"id": u, "at": dt.datetime(2024, 1, 2, tzinfo=dt.timezone.utc), "ok": True})
    with Store.open(path, background=False) as s:
        assert s.keyspaces["ks"].replication["replication_factor"] == 3
        row = s.get("ks", "t", {"id": u})
        assert row["at"] == dt.datetime(2024, 1, 2, tzinfo=dt.timezone.utc) and row["ok"] is True
        s.drop_table("ks", "t")
        with pytest.raises(InvalidRequest):
            s.get("ks", "t", {"id": u})
    with Store.open(path, background=False) as s:
        assert "t" not in s.keyspaces["ks"].tables
        s.drop_keyspace("ks")
    with Store.open(path, background=False) as s:
        assert s.keyspaces == {}


def test_caches_report_hit_rates(tmp_path):
    s = Store.open(str(tmp_path / "c"), background=False, row_cache_size=10)
    s.create_keyspace("ks")
    s.create_table("ks", "kv", {"k": "int", "v": "int"}, primary_key="k")
    for i in range(100):
        s.insert("ks", "kv", {"k": i, "v": i})
    s.flush()
    for _ in range(3):
        assert s.get("ks", "kv", {"k": 5}) == {"k": 5, "v": 5}
    stats = s.tablestats()[0]
    assert stats["row_cache_hit_rate"] == pytest.approx(2 / 3)
    s.insert("ks", "kv", {"k": 5, "v": 6})          # a write invalidates the cached partition
    assert s.get("ks", "kv", {"k": 5}) == {"k": 5, "v": 6}
    s.close()


def test_closed_store_says_so(tmp_path):
    s = Store.open(str(tmp_path / "x"), background=False)
    s.close()
    with pytest.raises(StoreClosedError, match="open it again"):
        s.create_keyspace("ks")


def test_background_flush_and_compaction(tmp_path):
    s = Store.open(str(tmp_path / "bg"), memtable_flush_threshold_bytes=20_000)
    s.create_keyspace("ks")
    s.create_table("ks", "kv", {"k": "int", "v": "blob"}, primary_key="k",
                   options={"compaction": {"class": "SizeTieredCompactionStrategy", "min_threshold": 2}})
    for i in range(3000):
        s.insert("ks", "kv", {"k": i, "v": b"x" * 50})
    s.close()
    s = Store.open(str(tmp_path / "bg"))
    assert len(list(s.scan_all("ks", "kv"))) == 3000
    stats = s.tablestats()[0]
    assert stats["flushes"] >= 0 and not s.errors
    s.check_invariants()
    s.close()


@pytest.mark.parametrize("options", [
    {"compression": "lz4"},
    {"compaction": {"class": "LeveledCompactionStrategy", "sstable_size_in_mb": 1}},
])
def test_table_options_lz4_and_leveled_compaction(tmp_path, options):
    from engine.compaction.task import check_level_invariants
    s = Store.open(str(tmp_path / "o"), background=False, memtable_flush_threshold_bytes=64 * 1024)
    s.create_keyspace("ks")
    s.create_table("ks", "kv", {"k": "int", "v": "text"}, primary_key="k", options=options)
    for round_ in range(3):
        for i in range(3000):
            s.insert("ks", "kv", {"k": i, "v": f"value {i} round {round_} " * 3})
        s.flush()
    s.compact("ks", "kv", major=False)
    cfs = next(iter(s.cfs.values()))
    check_level_invariants(cfs.infos(s.clock.now_s()))
    rows = list(s.scan_all("ks", "kv", page_size=1000))
    assert len(rows) == 3000 and all(r["v"].endswith("round 2 ") for r in rows)
    s.close()
    s = Store.open(str(tmp_path / "o"), background=False)
    assert s.get("ks", "kv", {"k": 2999})["v"].startswith("value 2999 round 2")
    s.check_invariants()
    s.close()


def test_load_bytes_counts_memtables_as_well_as_sstables(store):
    assert store.load_bytes() == 0
    for i in range(500):
        store.insert("ks", "kv", {"k": i.to_bytes(4, "big"), "v": b"x" * 100})
    in_memory = store.load_bytes()
    assert in_memory >= 500 * 100  # before any flush: what gossip's LOAD shows must not be ~0
    store.flush()
    on_disk = store.load_bytes()
    assert on_disk > 0 and sum(c.memtable.size_bytes for c in store.cfs.values()) == 0


def test_apply_of_no_updates_is_accepted(store):
    store.apply([])
    store.apply_mutations([])
    assert store.get("ks", "kv", {"k": b"a"}) is None
