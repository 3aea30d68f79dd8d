"""engine/snapshot.py through the Store facade: take, list, clear, and the restore (with a reopen
that replays the commit log, which must not bring back what the restore replaced)."""
import os

import pytest

from engine import snapshot
from engine.errors import CorruptionError, InvalidRequest
from engine.store import Store


def _open(path, **kw):
    return Store.open(str(path), commitlog_sync="batch", **kw)


@pytest.fixture
def store(tmp_path):
    s = _open(tmp_path / "db")
    s.create_keyspace("ks")
    s.create_table("ks", "kv", {"k": "int", "v": "text"}, primary_key="k")
    s.create_table("ks", "other", {"k": "int", "v": "text"}, primary_key="k")
    yield s
    s.close()


def _rows(store, table="kv"):
    return {r["k"]: r["v"] for r in store.scan_all("ks", table)}


def test_snapshot_hard_links_every_component_and_records_the_schema(store):
    for k in range(50):
        store.insert("ks", "kv", {"k": k, "v": f"v{k}"})  # only in the memtable: the snapshot flushes
    infos = store.snapshot("t1", "ks", "kv")
    assert [(i.tag, i.keyspace, i.table, i.sstables) for i in infos] == [("t1", "ks", "kv", 1)]
    d = infos[0].directory
    assert d.endswith(os.path.join("snapshots", "t1"))
    names = sorted(os.listdir(d))
    assert "snapshot.json" in names and sum(n.startswith("dt-") for n in names) == 5  # all five components (format 2)
    table_dir = os.path.dirname(os.path.dirname(d))
    for n in names:
        if n.startswith("dt-"):
            assert os.path.samefile(os.path.join(d, n), os.path.join(table_dir, n))  # a hard link, not a copy
    meta = snapshot.load_manifest(d)
    assert meta["schema"]["name"] == "kv" and meta["table_id"] == store.table("ks", "kv").id
    assert infos[0].true_size_bytes < 1000 < infos[0].size_bytes  # only snapshot.json is its own
    with pytest.raises(InvalidRequest, match="already exists"):
        store.snapshot("t1", "ks", "kv")
    with pytest.raises(InvalidRequest, match="tag"):
        store.snapshot("../evil")
    with pytest.raises(InvalidRequest, match="does not exist"):
        store.snapshot("t2", "nosuchks")


def test_list_and_clear_by_tag_and_keyspace(store):
    store.insert("ks", "kv", {"k": 1, "v": "a"})
    store.snapshot("a")  # every non-system table
    store.snapshot("b", "ks", "other")
    listed = sorted((i.tag, i.table) for i in store.list_snapshots())
    assert listed == [("a", "kv"), ("a", "other"), ("b", "other")]
    assert [i.table for i in store.clear_snapshot("a", "ks")] == ["kv", "other"]
    assert [(i.tag, i.table) for i in store.list_snapshots()] == [("b", "other")]
    assert store.clear_snapshot("nosuch") == []
    assert len(store.clear_snapshot()) == 1 and store.list_snapshots() == []


def test_true_size_grows_once_compaction_replaces_the_live_sstables(store):
    for k in range(100):
        store.insert("ks", "kv", {"k": k, "v": "x" * 50})
    store.flush()
    store.insert("ks", "kv", {"k": 1000, "v": "y"})
    (info,) = store.snapshot("before", "ks", "kv")
    assert info.sstables == 2 and info.true_size_bytes < 1000
    store.compact("ks", "kv")
    (after,) = store.list_snapshots()
    assert after.true_size_bytes == after.size_bytes  # nothing shared with the live data any more


def test_restore_brings_back_the_snapshot_rows_and_survives_a_reopen(tmp_path, store):
    for k in range(200):
        store.insert("ks", "kv", {"k": k, "v": f"old{k}"})
    store.insert("ks", "other", {"k": 1, "v": "untouched"})
    store.snapshot("keep", "ks", "kv")
    for k in range(0, 200, 2):
        store.insert("ks", "kv", {"k": k, "v": "new"})       # overwritten
    for k in range(1, 200, 4):
        store.delete("ks", "kv", {"k": k})                     # deleted
    store.insert("ks", "kv", {"k": 999, "v": "born after"})  # written after the snapshot
    store.flush()
    store.compact("ks", "kv")
    store.insert("ks", "kv", {"k": 998, "v": "only in the memtable and commit log"})
    assert _rows(store)[0] == "new"
    assert store.restore_snapshot("ks", "kv", "keep") == 1
    expected = {k: f"old{k}" for k in range(200)}
    assert _rows(store) == expected
    assert store.get("ks", "kv", {"k": 4}) == {"k": 4, "v": "old4"}
    store.insert("ks", "kv", {"k": 500, "v": "after restore"})  # the table takes writes again
    store.check_invariants()
    store.close()
    reopened = _open(tmp_path / "db")  # replay must skip every pre-restore write of the table
    try:
        assert _rows(reopened) == {**expected, 500: "after restore"}
        assert _rows(reopened, "other") == {1: "untouched"}
        reopened.check_invariants()
    finally:
        reopened.close()
    store._closed = True


def test_restore_refuses_a_corrupt_snapshot_and_keeps_the_live_data(store):
    store.insert("ks", "kv", {"k": 1, "v": "old"})
    (info,) = store.snapshot("s", "ks", "kv")
    store.insert("ks", "kv", {"k": 1, "v": "new"})
    data = next(os.path.join(info.directory, n) for n in os.listdir(info.directory) if n.endswith("Data.db"))
    os.unlink(data)  # break the link first: corrupting the shared inode would corrupt the live table too
    with open(os.path.join(os.path.dirname(os.path.dirname(info.directory)),
                           os.path.basename(data)), "rb") as f:
        raw = bytearray(f.read())
    raw[len(raw) // 2] ^= 0xFF
    with open(data, "wb") as f:
        f.write(raw)
    with pytest.raises(CorruptionError) as e:
        store.restore_snapshot("ks", "kv", "s")
    assert e.value.path == data
    assert store.get("ks", "kv", {"k": 1})["v"] == "new"
    with pytest.raises(InvalidRequest, match="no snapshot nosuch"):
        store.restore_snapshot("ks", "kv", "nosuch")


def test_a_tampered_snapshot_manifest_is_corruption(store):
    store.insert("ks", "kv", {"k": 1, "v": "a"})
    (info,) = store.snapshot("s", "ks", "kv")
    path = os.path.join(info.directory, "snapshot.json")
    text = open(path).read().replace('"kv"', '"kx"')
    open(path, "w").write(text)
    with pytest.raises(CorruptionError, match="crc32 mismatch"):
        store.restore_snapshot("ks", "kv", "s")


def test_pool_stats_show_a_running_compaction_with_progress(tmp_path):
    import threading
    s = Store.open(str(tmp_path / "c"), background=False)
    try:
        s.create_keyspace("ks")
        s.create_table("ks", "big", {"k": "int", "v": "text"}, primary_key="k")
        for part in range(2):
            for k in range(part, 30_000, 2):
                s.insert("ks", "big", {"k": k, "v": "v" * 20})
            s.flush()
        stats = s.pool_stats()
        assert stats["MemtableFlushWriter"]["completed"] >= 2 and stats["compactions"] == []
        seen = []
        worker = threading.Thread(target=s.compact, args=("ks", "big"))
        worker.start()
        while worker.is_alive():
            seen += s.pool_stats()["compactions"]
        worker.join()
        assert seen, "no progress was ever visible while the compaction ran"
        assert {c["kind"] for c in seen} == {"major"} and seen[0]["partitions_total"] == 30_000
        done = [c["partitions_done"] for c in seen]
        assert done == sorted(done) and 0 < max(done) <= 30_000 and seen[-1]["bytes_read"] > 0
        after = s.pool_stats()
        assert after["compactions"] == [] and after["CompactionExecutor"]["completed"] == 1
    finally:
        s.close()


def test_the_documented_snapshot_json_example_decodes_and_reencodes_byte_for_byte():
    doc = open(os.path.join(os.path.dirname(__file__), "..", "..", "docs", "format.md")).read()
    example = doc.split("<!-- snapshot-json-vector -->\n```\n")[1].split("```\n<!-- end")[0].encode()
    body = snapshot.decode_manifest(example, "format.md")
    assert body["sstables"] == [3] and body["schema"]["name"] == "kv"
    assert snapshot.encode_manifest(body) == example
    with pytest.raises(CorruptionError, match="crc32 mismatch"):
        snapshot.decode_manifest(example.replace(b'"kv"', b'"kw"', 1), "format.md")
