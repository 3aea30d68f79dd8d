"""engine/truncation.py through the Store facade: TRUNCATE discards memtable and SSTables, keeps
later writes, and a reopen (commit-log replay) never brings truncated rows back."""
import os

import pytest

from engine import truncation
from engine.errors import CorruptionError
from engine.store import Store


def _open(path, **kw):
    return Store.open(str(path), commitlog_sync="batch", **kw)


@pytest.fixture
def path(tmp_path):
    p = tmp_path / "db"
    s = _open(p)
    s.create_keyspace("ks")
    s.create_table("ks", "kv", {"k": "int", "v": "text"}, primary_key="k")
    s.create_table("ks", "other", {"k": "int", "v": "text"}, primary_key="k")
    s.close()
    return p


def _rows(store, table="kv"):
    return {r["k"]: r["v"] for r in store.scan_all("ks", table)}


def _fill(store, keys, table="kv"):
    for k in keys:
        store.insert("ks", table, {"k": k, "v": f"v{k}"})


def test_truncate_discards_memtable_and_sstables_keeps_other_tables_and_later_writes(path):
    with _open(path) as s:
        _fill(s, range(20))
        s.flush()
        _fill(s, range(20, 30))                   # still in the memtable
        _fill(s, range(5), table="other")
        at = s.truncate("ks", "kv")
        assert at == s.clock.wall_ms() or at <= s.clock.wall_ms()
        assert _rows(s) == {}
        assert s.get("ks", "kv", {"k": 3}) is None
        assert len(_rows(s, "other")) == 5
        cfs = s.cfs[s.table("ks", "kv").id]
        assert cfs.sstables == [] and len(cfs.memtable) == 0
        assert not [n for n in os.listdir(cfs.directory) if n.startswith("dt-")]
        snaps = [i for i in s.list_snapshots() if i.table == "kv"]
        assert len(snaps) == 1 and snaps[0].tag.startswith("truncated-")   # auto_snapshot
        _fill(s, [100, 101])
        assert _rows(s) == {100: "v100", 101: "v101"}
        s.check_invariants()


@pytest.mark.parametrize("how", ["close", "crash"])
def test_a_reopen_does_not_resurrect_truncated_rows(path, how):
    s = _open(path)
    _fill(s, range(10))
    s.flush()
    _fill(s, range(10, 20))                       # only in the commit log and memtable
    s.truncate("ks", "kv", auto_snapshot=False)
    _fill(s, [7, 50])                             # after the truncate: kept
    s.close() if how == "close" else s.crash()
    with _open(path) as s:
        assert _rows(s) == {7: "v7", 50: "v50"}
        assert truncation.load(str(path))[s.table("ks", "kv").id][1] > 0
        assert not [i for i in s.list_snapshots()]


def test_a_crash_between_the_record_and_the_manifest_drops_the_old_sstables_at_open(path):
    s = _open(path)
    _fill(s, range(10))
    s.flush()
    table_id = s.table("ks", "kv").id
    # the record is written first; pretend the process died before the MANIFEST commit
    truncation.save(str(path), {table_id: (tuple(s.commit_log.current_position()), 1)})
    s.crash()
    with _open(path) as s:
        assert _rows(s) == {}
        _fill(s, [1])
    with _open(path) as s:
        assert _rows(s) == {1: "v1"}              # SSTables flushed after the truncate stay


def test_truncation_record_round_trip_and_corruption_is_reported_with_offset(path):
    records = {"a" * 32: ((3, 4096), 1_700_000_000_000)}
    data = truncation.encode(records)
    assert data[:5] == b"DTTR\x01"
    assert truncation.decode(data, "x") == records
    bad = bytearray(data)
    bad[7] ^= 0xFF
    with pytest.raises(CorruptionError, match="crc32") as e:
        truncation.decode(bytes(bad), "x")
    assert e.value.offset == len(data) - 4
    with pytest.raises(CorruptionError, match="version"):
        truncation.decode(data[:4] + b"\x09" + data[5:], "x")
    with _open(path) as s:
        s.truncate("ks", "kv", auto_snapshot=False)
    with open(truncation.path_of(str(path)), "r+b") as f:
        f.seek(6)
        f.write(b"\xee")
    with pytest.raises(CorruptionError, match="truncated.db"):
        _open(path)


def test_the_documented_example_matches_the_code():
    import pathlib
    import re
    doc = (pathlib.Path(__file__).parents[2] / "docs" / "format.md").read_text()
    vector = re.search(r"<!-- truncation-vector -->\n```\n(.*?)\n```", doc, re.S).group(1)
    assert truncation.encode({"a" * 32: ((3, 4096), 1_700_000_000_000)}).hex(" ") == vector
