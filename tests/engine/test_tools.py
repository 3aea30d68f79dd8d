"""The dump tools print what docs/format.md describes, through the `dynatable` CLI, as a user
runs them: names from the store's schema.db, --limit and --key, one-line errors and exit codes."""
import glob
import os
import shutil

import pytest
from click.testing import CliRunner

from engine.store import Store
from tools.cli import main


@pytest.fixture
def store_path(tmp_path):
    path = str(tmp_path / "db")
    with Store.open(path, background=False) as s:
        s.create_keyspace("ks")
        s.create_table("ks", "kv", {"k": "int", "c": "text", "v": "text", "b": "blob"}, primary_key=("k", "c"))
        for k in range(10):
            s.insert("ks", "kv", {"k": k, "c": "x", "v": f"hello{k}", "b": b"\x01"})
        s.flush()
        s.insert("ks", "kv", {"k": 2, "c": "y", "v": "world"})
        s.delete("ks", "kv", {"k": 3})
        s.commit_log.sync()
        s.crash()  # keep the commit log as a crash leaves it: a clean close empties it now
    return path


def run(*args):
    return CliRunner().invoke(main, list(args))


def data_file(store_path):
    return sorted(glob.glob(os.path.join(store_path, "data", "ks", "kv-*", "dt-*-Data.db")))[0]


def test_sstable_dump_shows_names_and_honours_limit_and_key(store_path):
    out = run("sstable", "dump", data_file(store_path))
    assert out.exit_code == 0, out.output
    assert "partition_count: 10" in out.output and "table: ks.kv (id " in out.output
    assert "key=(k=1) row(c='x') row_marker(ts=" in out.output and "v='hello1'(ts=" in out.output
    assert "b=0x01(ts=" in out.output and "#3" not in out.output
    out = run("sstable", "dump", data_file(store_path), "--limit", "3")
    assert out.exit_code == 0 and len([ln for ln in out.output.splitlines() if ln.startswith("token=")]) == 3
    assert "(--limit 3: 7 more partitions not shown)" in out.output
    out = run("sstable", "dump", data_file(store_path), "--key", "7")
    (line,) = [ln for ln in out.output.splitlines() if ln.startswith("token=")]
    assert "key=(k=7)" in line and "v='hello7'" in line
    out = run("sstable", "dump", data_file(store_path), "--key", "77")
    assert out.exit_code == 0 and "key 77 (0000004d): not in this SSTable" in out.output
    out = run("sstable", "dump", data_file(store_path), "--key", "seven")
    assert out.exit_code == 1 and out.output.strip().startswith("error: key 'seven' is not a valid int")


def test_sstable_dump_outside_a_store_shows_ids_with_a_note(store_path, tmp_path):
    src = os.path.dirname(data_file(store_path))
    loose = tmp_path / "loose"
    shutil.copytree(src, loose)
    out = run("sstable", "dump", str(loose / "dt-1-Data.db"), "--key", "0x00000002")
    assert out.exit_code == 0, out.output
    assert "note: no schema.db in" in out.output and "columns by id" in out.output
    assert "key=00000002 row[780000] row_marker(ts=" in out.output and "#3=68656c6c6f32(ts=" in out.output
    out = run("sstable", "dump", str(loose / "dt-1-Data.db"), "--key", "2")
    assert out.exit_code == 1 and "--key takes the key's bytes in hex" in out.output


def test_sstable_dump_errors_are_one_line(store_path, tmp_path):
    out = run("sstable", "dump", "/etc/passwd")
    assert out.exit_code == 1 and out.output.count("\n") == 1 and "Traceback" not in out.output
    assert out.output.startswith("error: /etc/passwd is not an SSTable component: expected a name like dt-3-Data.db")
    lone = tmp_path / "dt-9-Data.db"
    shutil.copy(data_file(store_path), lone)   # a misnamed SSTable: its other components are not dt-9-*
    out = run("sstable", "dump", str(lone))
    assert out.exit_code == 1 and out.output.count("\n") == 1
    assert out.output.startswith(f"error: SSTable generation 9 in {tmp_path} is incomplete: ") and "is missing" in out.output
    garbage = tmp_path / "dt-4-Data.db"
    for src in glob.glob(os.path.join(os.path.dirname(data_file(store_path)), "dt-1-*")):
        shutil.copy(src, tmp_path / os.path.basename(src).replace("dt-1-", "dt-4-"))
    data = bytearray(garbage.read_bytes())
    data[-3] ^= 0xFF
    garbage.write_bytes(bytes(data))
    out = run("sstable", "dump", str(garbage))
    assert out.exit_code == 1 and f"corruption: {garbage} at offset " in out.output


def test_commitlog_dump_decodes_mutations(store_path):
    (segment,) = glob.glob(os.path.join(store_path, "commitlog", "*"))
    out = run("commitlog", "dump", segment)
    assert out.exit_code == 0, out.output
    assert "crc=ok mutations=1" in out.output and "payload=" not in out.output
    assert "  ks.kv key=(k=1) row(c='x') row_marker(ts=" in out.output and "v='hello1'" in out.output
    assert "  ks.kv key=(k=3) partition_deletion(mfda=" in out.output
    out = run("commitlog", "dump", segment, "--limit", "2")
    assert out.exit_code == 0
    assert len([ln for ln in out.output.splitlines() if ln.startswith("offset=")]) == 2
    assert "(--limit 2: 11 more records and sync markers not shown)" in out.output
    assert out.output.splitlines()[-1].startswith("records=12 sync_markers=1")


def test_commitlog_dump_errors_exit_non_zero(store_path, tmp_path):
    out = run("commitlog", "dump", "/etc/passwd")
    assert out.exit_code == 1 and out.output.count("\n") == 1 and "Traceback" not in out.output
    assert out.output.startswith("error: /etc/passwd is not a commit log segment (it starts with b'root'")
    (segment,) = glob.glob(os.path.join(store_path, "commitlog", "*"))
    damaged = bytearray(open(segment, "rb").read())
    damaged[40] ^= 0xFF    # inside the first record, a synced section
    bad = tmp_path / "bad.log"
    bad.write_bytes(bytes(damaged))
    out = run("commitlog", "dump", str(bad))
    assert out.exit_code == 1 and f"CORRUPTION file={bad} offset=30" in out.output


def test_tour_runs(tmp_path):
    out = CliRunner().invoke(main, ["tour", "--dir", str(tmp_path / "tour"), "--rows", "2000"])
    assert out.exit_code == 0, out.output
    assert "mismatches: 0" in out.output
