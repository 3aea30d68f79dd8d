"""Faults: torn and bit-flipped commit logs and SSTables, crashes mid-compaction, kill -9.

The rule: recovery, or CorruptionError naming the file and offset — never wrong data.
"""
import glob
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from engine.commit_log_segment import MARKER_SIZE
from engine.compaction.executor import execute
from engine.errors import CorruptionError
from engine.store import Store


def _open(path, **kw):
    return Store.open(path, background=False, commitlog_sync="batch", **kw)


def _fill(store, n, start=0, table="kv"):
    for i in range(start, start + n):
        store.insert("ks", table, {"k": i, "v": b"value-%d" % i})


def _setup(path, **kw):
    s = _open(path, **kw)
    s.create_keyspace("ks")
    s.create_table("ks", "kv", {"k": "int", "v": "blob"}, primary_key="k")
    return s


def _flip(path, offset):
    with open(path, "r+b") as f:
        f.seek(offset)
        byte = f.read(1)
        f.seek(offset)
        f.write(bytes([byte[0] ^ 0x40]))


def test_torn_commit_log_tail_is_tolerated(tmp_path):
    path = str(tmp_path / "db")
    s = _setup(path)
    _fill(s, 50)
    seg = s.commit_log.segment_paths()[-1]
    s.crash()
    with open(seg, "r+b") as f:          # tear the last sync marker and the last record in half
        size = os.path.getsize(seg)
        f.truncate(size - MARKER_SIZE - 7)
    s = _open(path)
    rows = {r["k"] for r in s.scan_all("ks", "kv")}
    assert rows == set(range(49))        # everything but the torn record
    s.close()


def test_corrupt_commit_log_before_the_tail_raises(tmp_path):
    path = str(tmp_path / "db")
    s = _setup(path, commitlog_segment_size_bytes=4096)
    _fill(s, 200)
    segments = s.commit_log.segment_paths()
    assert len(segments) > 2
    s.crash()
    _flip(segments[0], 200)
    with pytest.raises(CorruptionError) as err:
        _open(path, commitlog_segment_size_bytes=4096)
    assert err.value.path == segments[0] and err.value.offset > 0


@pytest.mark.parametrize("component", ["Data", "Summary", "Filter", "Statistics"])
def test_corrupt_sstable_component_is_detected(tmp_path, component):
    path = str(tmp_path / "db")
    s = _setup(path)
    _fill(s, 300)
    s.flush()
    s.close()
    (victim,) = glob.glob(os.path.join(path, "data", "ks", "kv-*", f"dt-*-{component}.db"))
    size = os.path.getsize(victim)
    _flip(victim, size // 2)
    try:
        s = _open(path)
    except CorruptionError as e:
        assert e.path == victim
        return
    # opened: every read either returns the right row or raises CorruptionError naming the file
    errors = 0
    for i in range(300):
        try:
            row = s.get("ks", "kv", {"k": i})
        except CorruptionError as e:
            assert e.path == victim
            errors += 1
            continue
        assert row is None or row == {"k": i, "v": b"value-%d" % i}
        if component != "Filter":
            assert row is not None
    assert errors > 0 or component == "Filter"
    s.close()


def test_crash_after_compaction_outputs_loses_and_duplicates_nothing(tmp_path):
    path = str(tmp_path / "db")
    s = _setup(path)
    for batch in range(4):
        _fill(s, 100, start=batch * 50)        # overlapping keys across sstables
        s.flush()
    cfs = next(iter(s.cfs.values()))
    task = cfs.plan_compaction(major=True)
    with pytest.raises(RuntimeError, match="injected crash"):
        execute(cfs, task, fail_at="after_outputs")
    files_before = set(os.listdir(cfs.directory))
    s.crash()
    s = _open(path)
    cfs = next(iter(s.cfs.values()))
    assert set(os.listdir(cfs.directory)) < files_before   # the unnamed outputs were removed
    assert len(cfs.sstables) == 4
    rows = list(s.scan_all("ks", "kv"))
    keys = [r["k"] for r in rows]
    assert len(keys) == 250 and set(keys) == set(range(250))   # nothing lost, nothing duplicated
    s.compact("ks", "kv")
    assert len(list(s.scan_all("ks", "kv"))) == 250
    s.check_invariants()
    s.close()


def test_leftover_files_of_an_interrupted_flush_are_removed(tmp_path):
    path = str(tmp_path / "db")
    s = _setup(path)
    _fill(s, 10)
    s.flush()
    cfs = next(iter(s.cfs.values()))
    directory = cfs.directory
    s.close()
    leftover = os.path.join(directory, "dt-999-Data.db")
    with open(leftover, "wb") as f:
        f.write(b"partial")
    s = _open(path)
    assert not os.path.exists(leftover)
    assert len(list(s.scan_all("ks", "kv"))) == 10
    s.close()


CHILD = textwrap.dedent("""
    import sys
    from engine.store import Store
    s = Store.open(sys.argv[1], commitlog_sync=sys.argv[2])
    s.create_keyspace("ks")
    s.create_table("ks", "kv", {"k": "int", "v": "blob"}, primary_key="k")
    i = 0
    while True:
        s.insert("ks", "kv", {"k": i, "v": b"x" * 100})
        print(i, flush=True)
        i += 1
""")


@pytest.mark.parametrize("mode", ["periodic", "batch", "group"])
def test_kill_9_loses_nothing_acknowledged(tmp_path, mode):
    path = str(tmp_path / "db")
    child = subprocess.Popen([sys.executable, "-c", CHILD, path, mode], stdout=subprocess.PIPE, text=True)
    acked = -1
    deadline = time.monotonic() + 30
    while acked < 300 and time.monotonic() < deadline:
        line = child.stdout.readline()
        if not line:
            break
        acked = int(line)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    assert acked >= 300, "the child did not acknowledge writes"
    with _open(path) as s:
        present = {r["k"] for r in s.scan_all("ks", "kv")}
    assert set(range(acked + 1)) <= present
