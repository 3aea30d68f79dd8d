"""The flush worker (engine/flush_worker.py): a background flush of a big memtable is written by a
child process, byte for byte as in process; every failure of the child falls back to writing
in process and loses nothing; the frames refuse what is not theirs; the child never outlives
its store or its parent."""
import dataclasses
import io
import os
import subprocess
import sys
import textwrap
import time

import pytest

from engine.clock import ManualClock
from engine.flush_worker import (KIND_ERROR, KIND_WRITE, FlushWorker, FlushWorkerError,
                                 encode_frame, read_frame)
from engine.store import Store
from tests.engine.test_put_fast_path import _sstable_files


def _store(path, **options) -> Store:
    store = Store.open(str(path), clock=ManualClock(), background=False, **options)
    store.create_keyspace("ks")
    store.create_table("ks", "kv", {"k": "blob", "v": "blob"}, primary_key="k",
                       table_id="00000000-0000-0000-0000-000000000002")
    return store


def _switched(store: Store, rows: int, *, fixed: bool, tag: bytes = b""):
    """The kv table's cfs and its memtable of `rows` rows, switched out for a flush (as the
    background does): one-width keys and values, or mixed widths; one key written twice."""
    for i in range(rows):
        if fixed:
            store.insert("ks", "kv", {"k": tag + b"user%012d" % i, "v": bytes([i % 251]) * 100})
        else:
            store.insert("ks", "kv", {"k": tag + b"k%d" % i, "v": bytes([i % 251]) * (i % 300)})
        store.clock.advance(0.001)
    store.insert("ks", "kv", {"k": tag + (b"user000000000007" if fixed else b"k7"), "v": b"again"})
    cfs = store.cfs[store.table("ks", "kv").id]
    with store._write_lock:
        return cfs, cfs.switch_memtable(store.commit_log.current_position())


@pytest.mark.parametrize("fixed", [True, False])
def test_the_worker_writes_the_in_process_flushs_bytes(tmp_path, fixed):
    """The same writes flushed by two stores, in process and through the worker: the same
    SSTable files (Statistics without its intervals, which hold segment ids)."""
    worker = FlushWorker(min_bytes=0)
    try:
        stats = []
        for name, w in (("in_process", None), ("worker", worker)):
            store = _store(tmp_path / name)
            cfs, mt = _switched(store, 3000, fixed=fixed)
            stats.append(cfs.flush_memtable(mt, w).stats)
            store.close()
        assert worker.writes == 1 and worker.failures == 0
        assert _sstable_files(str(tmp_path / "in_process")) == _sstable_files(str(tmp_path / "worker"))
        a, b = (dataclasses.replace(st, commit_log_intervals=()) for st in stats)
        assert a.partition_count == 3000 and a == b
    finally:
        worker.close()


def test_a_background_store_flushes_through_its_worker_and_reopens(tmp_path):
    store = Store.open(str(tmp_path), memtable_flush_threshold_bytes=256 * 1024, flush_worker_min_bytes=0)
    store.create_keyspace("ks")
    store.create_table("ks", "kv", {"k": "blob", "v": "blob"}, primary_key="k")
    for b in range(0, 6000, 500):
        with store.batch() as batch:
            for i in range(b, b + 500):
                batch.insert("ks", "kv", {"k": b"key%06d" % i, "v": b"%d" % i * 20})
    store.flush()
    worker = store.background.flush_worker
    assert worker.writes >= 2 and worker.failures == 0 and not store.errors
    store.close()
    assert worker._proc is None
    store = Store.open(str(tmp_path), background=False)
    assert all(store.get("ks", "kv", {"k": b"key%06d" % i})["v"] == b"%d" % i * 20 for i in range(0, 6000, 7))
    store.close()


FAILING_CHILD = textwrap.dedent("""
    import os, sys
    from engine.flush_worker import KIND_ERROR, encode_frame, read_frame
    mode = sys.argv[1]
    kind, header, body = read_frame(sys.stdin.buffer)
    # a child that died mid-write leaves part of its generation behind
    with open(os.path.join(header["directory"], "dt-%d-Data.db" % header["generation"]), "wb") as f:
        f.write(b"partial")
    if mode == "error":
        reply = b"".join(encode_frame(KIND_ERROR, {"error": "OSError: disk full"}, []))
    elif mode == "garbage":
        reply = b"DTFW\x00\x01garbage"
    else:
        reply = b""
    sys.stdout.buffer.write(reply)
    sys.stdout.buffer.flush()
    sys.exit(0 if mode == "exit" else 1)
""")


@pytest.mark.parametrize("failure", ["exit", "error", "garbage", "no_child"])
def test_a_failed_worker_flushes_in_process_and_loses_nothing(tmp_path, failure, monkeypatch):
    """A child that exits without a reply, replies an error, replies garbage, or cannot start:
    the flush is written in process over what it left, the next flush starts a new child."""
    store = _store(tmp_path / "s")
    worker = FlushWorker(min_bytes=0)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    argv = ([sys.executable, "-c", FAILING_CHILD, failure] if failure != "no_child"
            else [os.path.join(str(tmp_path), "no-such-python")])
    monkeypatch.setattr(worker, "_start", lambda: subprocess.Popen(
        argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=root))
    try:
        cfs, mt = _switched(store, 2000, fixed=False)
        reader = cfs.flush_memtable(mt, worker)
        assert (worker.writes, worker.failures) == (0, 1)
        assert reader in cfs.sstables and mt not in cfs.flushing and reader.stats.partition_count == 2000
        assert store.get("ks", "kv", {"k": b"k1999"})["v"] == bytes([1999 % 251]) * (1999 % 300)
        monkeypatch.undo()
        cfs, mt = _switched(store, 50, fixed=True, tag=b"next")
        cfs.flush_memtable(mt, worker)    # a real child takes the next flush
        assert (worker.writes, worker.failures) == (1, 1)
    finally:
        worker.close()
        store.close()
    store = Store.open(str(tmp_path / "s"), background=False)
    assert store.get("ks", "kv", {"k": b"k7"})["v"] == b"again"
    assert store.get("ks", "kv", {"k": b"nextuser000000000049"}) is not None
    store.close()


def test_a_worker_that_fails_three_times_in_a_row_is_no_longer_asked(tmp_path, monkeypatch):
    store = _store(tmp_path / "s")
    worker = FlushWorker(min_bytes=0)
    monkeypatch.setattr(worker, "_start", lambda: subprocess.Popen([str(tmp_path / "no-such-python")]))
    try:
        for i in range(4):
            cfs, mt = _switched(store, 20, fixed=True, tag=b"%d" % i)
            assert cfs.flush_memtable(mt, worker).stats.partition_count == 20
        assert (worker.writes, worker.failures) == (0, 3) and not worker.takes(1 << 40)
        assert len(cfs.sstables) == 4
    finally:
        worker.close()
        store.close()


def test_frames_refuse_what_is_not_theirs():
    frame = b"".join(encode_frame(KIND_WRITE, {"rows": 1}, [b"abc", b"de"]))
    kind, header, body = read_frame(io.BytesIO(frame))
    assert (kind, header, bytes(body)) == (KIND_WRITE, {"rows": 1}, b"abcde")
    assert read_frame(io.BytesIO(b"")) is None
    cases = {"magic": b"XXXX" + frame[4:], "version": frame[:4] + b"\x00\x02" + frame[6:],
             "truncated": frame[:-1], "crc": frame[:-5] + bytes([frame[-5] ^ 1]) + frame[-4:],
             "short prefix": frame[:10]}
    not_a_map = b"".join(encode_frame(KIND_WRITE, [1, 2], []))  # type: ignore[arg-type]
    garbage = _raw_frame(b"\xc1")
    cases.update({"header not a map": not_a_map, "header not msgpack": garbage})
    for bad in cases.values():
        with pytest.raises(FlushWorkerError):
            read_frame(io.BytesIO(bad))


def _raw_frame(head: bytes) -> bytes:
    """A frame around raw header bytes, with a good CRC."""
    import zlib
    return (b"DTFW\x00\x01\x01" + len(head).to_bytes(4, "big") + (0).to_bytes(8, "big") + head
            + zlib.crc32(head).to_bytes(4, "big"))


def _child(*frames: bytes) -> tuple[int, list]:
    proc = subprocess.run([sys.executable, "-m", "engine.flush_worker", str(os.getpid())],
                          input=b"".join(frames), capture_output=True, timeout=60,
                          cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    out, replies = io.BytesIO(proc.stdout), []
    while (reply := read_frame(out)) is not None:
        replies.append(reply[:2])
    return proc.returncode, replies


def test_the_child_answers_every_request_and_stops_on_a_bad_frame(tmp_path):
    bad_body = b"".join(encode_frame(KIND_WRITE, {"directory": str(tmp_path), "generation": 1, "rows": 2,
                                                  "sizes": [0, 3, 0, 5], "key_width": 2, "payload_width": 5,
                                                  "writer": {}, "stats": {}}, [b"abc", b"defgh"]))
    unknown = b"".join(encode_frame(7, {}, []))
    corrupt = b"".join(encode_frame(KIND_WRITE, {}, [b"x"]))[:-1] + b"\x00"
    code, replies = _child(bad_body, unknown, corrupt, unknown)
    assert code == 1 and [k for k, _ in replies] == [KIND_ERROR, KIND_ERROR, KIND_ERROR]
    assert "3 bytes" in replies[0][1]["error"] and "kind 7" in replies[1][1]["error"]
    assert "CRC" in replies[2][1]["error"] and not os.listdir(tmp_path)
    assert _child() == (0, [])      # EOF at once: a clean exit


def _running(pid: int) -> bool:
    """pid exists and is not a zombie (an orphan's zombie waits for a reaper that may never come)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_the_child_dies_with_its_parent_mid_write(tmp_path):
    """A parent killed (SIGKILL) while its flush worker writes takes the worker with it at once
    (PR_SET_PDEATHSIG): the SSTable is never completed, so no orphan writes into a directory a
    restarted store may be using. (Idle, the child also exits at EOF on its stdin.)"""
    if not sys.platform.startswith("linux"):
        pytest.skip("PR_SET_PDEATHSIG is Linux's")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    script = textwrap.dedent(f"""
        import os, signal, sys
        sys.path.insert(0, {root!r})
        import engine.flush_worker as fw
        w = fw.FlushWorker(0)
        w._proc = w._start()
        print(w._proc.pid, flush=True)
        fw.read_frame = lambda stream: os.kill(os.getpid(), signal.SIGKILL)  # die once the request is sent
        keys = [b"user%012d" % i for i in range(400_000)]
        stats = dict(min_timestamp=1, max_timestamp=2, cell_count=800_000, tombstone_count=0,
                     max_local_deletion_time=2**31 - 1, droppable_histogram=[])
        w.write({str(tmp_path)!r}, 1, dict(expected_partitions=400_000, bloom_fp_chance=0.01, compression=None),
                keys, [b"p" * 100] * 400_000, stats)
    """)
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE)
    child = int(parent.stdout.readline())
    assert parent.wait(timeout=60) == -9
    for _ in range(200):
        if not _running(child):
            break
        time.sleep(0.05)
    else:
        pytest.fail(f"flush worker {child} outlived its parent")
    assert not [f for f in os.listdir(tmp_path) if f.endswith("TOC.txt")], os.listdir(tmp_path)
