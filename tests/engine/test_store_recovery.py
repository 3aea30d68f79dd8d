"""Issue 11: a Store's recovery refuses instead of losing data: a bit flip in the newest commit-log
segment, a missing MANIFEST or a truncated schema is an error naming the file, and `repair` (the
operator's choice) rebuilds or quarantines, never silently."""
import glob
import os

import pytest

from engine.errors import CorruptionError
from engine.store import Store


def _kv_store(path, rows=0, **kw):
    s = Store.open(path, background=False, commitlog_sync="batch", **kw)
    s.create_keyspace("ks")
    s.create_table("ks", "kv", {"k": "int", "v": "blob"}, primary_key="k")
    for i in range(rows):
        s.insert("ks", "kv", {"k": i, "v": b"value-%d" % i})
    return s


def _flushed_kv_store(path, sstables: int) -> str:
    """A closed store of `sstables` SSTables of 100 rows each (k i, v b"value-i"); its table directory."""
    s = _kv_store(path)
    for batch in range(sstables):
        for i in range(batch * 100, batch * 100 + 100):
            s.insert("ks", "kv", {"k": i, "v": b"value-%d" % i})
        s.flush()
    table_dir = next(iter(s.cfs.values())).directory
    s.close()
    return table_dir


def _flip_byte(path, offset):
    with open(path, "r+b") as f:
        f.seek(offset)
        b = f.read(1)
        f.seek(offset)
        f.write(bytes([b[0] ^ 0x01]))


def test_issue_11_bit_flip_early_in_newest_segment_is_an_error_not_a_loss(tmp_path, caplog):
    path = str(tmp_path / "db")
    s = _kv_store(path, 1000)
    seg = s.commit_log.segment_paths()[-1]
    s.crash()
    size = os.path.getsize(seg)
    _flip_byte(seg, size * 5 // 100)
    with pytest.raises(CorruptionError) as e:
        Store.open(path, background=False)
    assert e.value.path == seg and 0 < e.value.offset <= size * 5 // 100
    assert "commitlog_ignore_replay_errors" in str(e.value)
    assert os.path.getsize(seg) == size                      # the evidence is untouched
    with pytest.raises(CorruptionError):                     # and stays an error
        Store.open(path, background=False)
    with Store.open(path, background=False, commitlog_ignore_replay_errors=True) as s:
        rows = {r["k"]: r["v"] for r in s.scan_all("ks", "kv")}
    assert len(rows) == 999 and all(v == b"value-%d" % k for k, v in rows.items())
    assert "ignored (ignore replay errors)" in caplog.text
    quarantined = os.listdir(os.path.join(path, "commitlog", "corrupt"))
    assert quarantined == [os.path.basename(seg)]
    with Store.open(path, background=False) as s:            # replayed rows were flushed
        assert len(list(s.scan_all("ks", "kv"))) == 999


def test_ignore_replay_errors_from_the_environment(tmp_path, monkeypatch):
    path = str(tmp_path / "db")
    s = _kv_store(path, 50)
    seg = s.commit_log.segment_paths()[-1]
    s.crash()
    _flip_byte(seg, 60)
    with pytest.raises(CorruptionError):
        Store.open(path, background=False)
    monkeypatch.setenv("DYNATABLE_COMMITLOG_IGNORE_REPLAY_ERRORS", "true")
    with Store.open(path, background=False) as s:
        assert len(list(s.scan_all("ks", "kv"))) == 49


def test_issue_11_missing_manifest_refuses_and_repair_rebuilds_it(tmp_path):
    from click.testing import CliRunner
    from tools.cli import main
    path = str(tmp_path / "db")
    table_dir = _flushed_kv_store(path, 3)
    files = sorted(os.listdir(table_dir))
    os.unlink(os.path.join(table_dir, "MANIFEST"))
    with pytest.raises(CorruptionError) as e:
        Store.open(path, background=False)
    assert e.value.path == os.path.join(table_dir, "MANIFEST") and e.value.offset == 0
    assert f"dynatable sstable repair {os.path.abspath(path)}" in str(e.value)
    assert sorted(os.listdir(table_dir)) == [f for f in files if f != "MANIFEST"]  # nothing deleted
    out = CliRunner().invoke(main, ["sstable", "repair", path])
    assert out.exit_code == 0, out.output
    assert "MANIFEST missing" in out.output and "[3/3] checking generation" in out.output
    assert out.output.splitlines()[-1] == "1 tables: 1 manifests rebuilt, 3 sstables kept, 0 quarantined"
    with Store.open(path, background=False) as s:
        rows = {r["k"]: r["v"] for r in s.scan_all("ks", "kv")}
        s.check_invariants()
    assert rows == {i: b"value-%d" % i for i in range(300)}


def test_repair_quarantines_a_corrupt_sstable_and_an_unreadable_manifest(tmp_path):
    from engine.sstable_repair import repair_store
    path = str(tmp_path / "db")
    table_dir = _flushed_kv_store(path, 2)
    manifest = os.path.join(table_dir, "MANIFEST")
    _flip_byte(manifest, os.path.getsize(manifest) - 2)
    with pytest.raises(CorruptionError, match="dynatable sstable repair"):
        Store.open(path, background=False)
    data = sorted(glob.glob(os.path.join(table_dir, "dt-*-Data.db")))[0]
    _flip_byte(data, os.path.getsize(data) // 2)
    lines = []
    (result,) = repair_store(path, lines.append)
    assert result.status == "rebuilt" and len(result.kept) == 1 and len(result.quarantined) == 1
    assert "MANIFEST unreadable" in lines[0] and any("quarantined: corruption in" in x for x in lines)
    assert sorted(os.listdir(os.path.join(table_dir, "quarantine")))[0] == "MANIFEST"
    with Store.open(path, background=False) as s:         # the good sstable, and what the
        rows = {r["k"]: r["v"] for r in s.scan_all("ks", "kv")}   # commit log still holds
    assert len(rows) >= 100 and all(v == b"value-%d" % k for k, v in rows.items())
    (again,) = repair_store(path, lines.append)
    assert again.status == "ok"


def test_new_store_and_new_table_open_fine(tmp_path):
    path = str(tmp_path / "db")
    Store.open(path, background=False).close()
    with _kv_store(path) as s:
        table_dir = next(iter(s.cfs.values())).directory
    assert os.listdir(table_dir) == ["MANIFEST"]
    Store.open(path, background=False).close()


def test_repair_cli_error_is_one_line(tmp_path):
    from click.testing import CliRunner
    from tools.cli import main
    out = CliRunner().invoke(main, ["sstable", "repair", str(tmp_path / "nope")])
    assert out.exit_code == 1 and len(out.output.strip().splitlines()) == 1
    assert "not a dynatable store" in out.output


@pytest.mark.parametrize("cut", [0, 3, 5, 9, 12])
def test_issue_11_truncated_schema_is_a_corruption_error(tmp_path, cut):
    path = str(tmp_path / "db")
    _kv_store(path, 10).close()
    schema = os.path.join(path, "schema.db")
    os.truncate(schema, cut)
    with pytest.raises(CorruptionError) as e:
        Store.open(path, background=False)
    assert e.value.path == schema and e.value.offset >= 0


def test_missing_schema_with_data_refuses(tmp_path):
    path = str(tmp_path / "db")
    s = _kv_store(path, 10)
    s.crash()                                               # rows only in the commit log
    os.unlink(os.path.join(path, "schema.db"))
    with pytest.raises(CorruptionError, match="commit log holds 10 mutations"):
        Store.open(path, background=False)
    _kv_store(str(tmp_path / "db2"), 10).close()            # rows in SSTables
    os.unlink(os.path.join(tmp_path, "db2", "schema.db"))
    with pytest.raises(CorruptionError, match="table directories hold SSTables"):
        Store.open(str(tmp_path / "db2"), background=False)
