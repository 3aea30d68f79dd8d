"""The dump tools print what docs/format.md describes, through the `dynatable` CLI."""
import glob
import os

from click.testing import CliRunner

from engine.store import Store
from tools.cli import main


def test_sstable_and_commitlog_dump(tmp_path):
    path = str(tmp_path / "db")
    with Store.open(path, background=False) as s:
        s.create_keyspace("ks")
        s.create_table("ks", "kv", {"k": "int", "v": "text"}, primary_key="k")
        s.insert("ks", "kv", {"k": 1, "v": "hello"})
        s.flush()
        s.insert("ks", "kv", {"k": 2, "v": "world"})
        segment = s.commit_log.segment_paths()[-1]
        s.commit_log.sync()
        runner = CliRunner()
        out = runner.invoke(main, ["commitlog", "dump", segment])
        assert out.exit_code == 0, out.output
        assert "size=" in out.output and "crc=ok" in out.output
    data = sorted(glob.glob(os.path.join(path, "data", "ks", "kv-*", "dt-*-Data.db")))[0]
    out = CliRunner().invoke(main, ["sstable", "dump", data])
    assert out.exit_code == 0, out.output
    assert "partition_count" in out.output and "68656c6c6f" in out.output  # "hello" in hex


def test_tour_runs(tmp_path):
    out = CliRunner().invoke(main, ["tour", "--dir", str(tmp_path / "tour"), "--rows", "2000"])
    assert out.exit_code == 0, out.output
    assert "mismatches: 0" in out.output
