"""Commit log: round trips, sync modes, crash models, API rules, the format vector (corruption and
torn tails: test_commit_log_corruption.py)."""
from __future__ import annotations

import io
import os
import re
import threading
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import engine.commit_log_writer as commit_log_writer
from engine.commit_log import CommitLog
from engine.commit_log_segment import encode_header, encode_marker, encode_record
from engine.errors import CorruptionError, EngineError, InvalidRequest
from tests.engine.commit_logs import SEG, flip, fresh, per_test_dir, replay_all, write_segments
from tools.commitlog_dump import dump_commitlog

DOC = Path(__file__).resolve().parents[2] / "docs" / "format.md"
payloads = st.binary(min_size=1, max_size=200)


# ---- round trips ---------------------------------------------------------------------------------

@per_test_dir
@given(st.lists(payloads, min_size=1, max_size=60))
def test_round_trip_across_segment_rolls(tmp_path, items):
    d = fresh(tmp_path)
    cl = CommitLog(str(d), sync="periodic", segment_size_bytes=512)
    positions = [cl.add(p) for p in items]
    assert positions == sorted(positions) and len(set(positions)) == len(positions)
    assert cl.current_position() == positions[-1]
    cl.close()
    for path in CommitLog(str(d)).segment_paths()[:-1]:
        assert os.path.getsize(path) <= 512
    got = replay_all(d, segment_size_bytes=512)
    assert got == list(zip(positions, items))


def test_replay_order_across_reopens(tmp_path):
    expected = []
    for generation in range(4):
        cl = CommitLog(str(tmp_path), sync="batch", segment_size_bytes=256)
        seen = list(cl.replay())
        assert seen == expected
        seg_ids = [int(re.search(r"-(\d+)\.log$", p).group(1)) for p in cl.segment_paths()]
        assert seg_ids == sorted(seg_ids) and len(set(seg_ids)) == len(seg_ids)
        assert cl.current_position()[0] == max(seg_ids)       # new records go to a new segment
        for i in range(10):
            p = f"gen{generation}-rec{i}".encode()
            expected.append((cl.add(p), p))
        cl.close()
    assert expected == sorted(expected)


def test_segment_names_and_ids(tmp_path):
    cl = CommitLog(str(tmp_path), segment_size_bytes=200)
    before_ms = time.time_ns() // 1_000_000
    for _ in range(5):
        cl.add(b"x" * 100)
    names = [os.path.basename(p) for p in cl.segment_paths()]
    cl.close()
    ids = [int(re.fullmatch(r"CommitLog-2-(\d+)\.log", n).group(1)) for n in names]
    assert ids == sorted(set(ids)) and len(ids) == 5
    assert ids[0] >= before_ms - 10_000


def test_concurrent_writers_all_replayed(tmp_path):
    cl = CommitLog(str(tmp_path), sync="periodic", segment_size_bytes=4096)
    results: dict[int, list] = {}

    def writer(t):
        results[t] = [(cl.add(f"{t}:{i}".encode()), f"{t}:{i}".encode()) for i in range(300)]

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    cl.close()
    expected = sorted(r for rs in results.values() for r in rs)
    assert replay_all(tmp_path, segment_size_bytes=4096) == expected


# ---- sync modes ----------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["batch", "group"])
def test_ack_after_sync_survives_crash(tmp_path, mode):
    cl = CommitLog(str(tmp_path), sync=mode, group_window_ms=2)
    pos = []
    for i in range(5):
        syncs = cl.stats["syncs"]
        pos.append(cl.add(b"rec%d" % i))
        assert cl.stats["syncs"] > syncs
    cl.crash(lose_unsynced=True)
    assert replay_all(tmp_path) == [(p, b"rec%d" % i) for i, p in enumerate(pos)]


@pytest.mark.parametrize("mode", ["batch", "group"])
def test_ack_after_sync_concurrent_writers(tmp_path, mode):
    cl = CommitLog(str(tmp_path), sync=mode, group_window_ms=5, segment_size_bytes=2048)
    acked = []
    lock = threading.Lock()

    def writer(t):
        for i in range(40):
            p = f"{t}:{i}".encode()
            pos = cl.add(p)
            assert cl._synced >= pos
            with lock:
                acked.append((pos, p))

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(8)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - t0
    syncs = cl.stats["syncs"]
    assert syncs < len(acked)                     # writers shared fsyncs
    if mode == "group":     # a window ends early only when as many as last time wait: big batches
        assert len(acked) / syncs >= 3, (syncs, elapsed)
    cl.crash(lose_unsynced=True)
    assert replay_all(tmp_path, segment_size_bytes=2048) == sorted(acked)


@per_test_dir
@given(st.lists(st.one_of(payloads, st.just(None)), max_size=50))
def test_periodic_crash_loses_only_an_unsynced_suffix(tmp_path, ops):
    d = fresh(tmp_path)
    cl = CommitLog(str(d), sync="periodic", segment_size_bytes=400)
    written, synced_upto = [], 0
    for op in ops:
        if op is None:
            cl.sync()
            synced_upto = len(written)
        else:
            written.append((cl.add(op), op))
    cl.crash(lose_unsynced=True)
    got = replay_all(d, segment_size_bytes=400)
    assert got == written[:len(got)]              # a prefix: never garbage, never reordered
    assert len(got) >= synced_upto


def test_periodic_process_crash_keeps_every_acknowledged_record(tmp_path):
    cl = CommitLog(str(tmp_path), sync="periodic")
    written = [(cl.add(b"r%d" % i), b"r%d" % i) for i in range(70)]
    cl.crash()                                              # the process dies, the OS survives
    assert replay_all(tmp_path) == written                  # periodic writes through to the OS


def test_periodic_machine_crash_may_lose_the_unsynced_tail_but_never_returns_garbage(tmp_path):
    cl = CommitLog(str(tmp_path), sync="periodic")
    written = [(cl.add(b"r%d" % i), b"r%d" % i) for i in range(70)]
    cl.crash(lose_unsynced=True)                            # the page cache is lost too
    got = replay_all(tmp_path)
    assert got == written[:len(got)]


def test_periodic_background_sync(tmp_path):
    cl = CommitLog(str(tmp_path), sync="periodic", sync_period_ms=20)
    pos = cl.add(b"x")
    deadline = time.monotonic() + 5
    while cl.stats["syncs"] == 0 and time.monotonic() < deadline:
        time.sleep(0.005)
    assert cl.stats["syncs"] >= 1
    cl.crash(lose_unsynced=True)
    assert replay_all(tmp_path) == [(pos, b"x")]


def test_periodic_writer_blocks_when_sync_lags(tmp_path):
    now = [1000.0]
    cl = CommitLog(str(tmp_path), sync="periodic", sync_period_ms=10_000, clock=lambda: now[0])
    cl.add(b"a")
    assert cl.stats["syncs"] == 0 and cl.stats["writer_blocked_ms"] == 0
    now[0] += 16.0                                  # the last sync is > 1.5 periods old
    pos = cl.add(b"b")                              # blocks until the sync thread catches up
    assert cl.stats["syncs"] == 1 and cl.stats["writer_blocked_ms"] > 0
    assert cl._synced >= pos                        # that sync covered the blocked record
    cl.add(b"c")                                    # fresh sync: no more blocking
    assert cl.stats["syncs"] == 1
    cl.close()


def test_sync_and_stats(tmp_path):
    cl = CommitLog(str(tmp_path), sync="periodic")
    cl.add(b"abc")
    cl.add(b"de")
    cl.sync()
    s = cl.stats
    assert (s["records"], s["bytes"], s["syncs"], s["segments_created"]) == (2, 5, 1, 1)
    cl.sync()                                       # nothing new: no fsync
    assert cl.stats["syncs"] == 1
    cl.close()


# ---- API rules -----------------------------------------------------------------------------------

def test_discard_before(tmp_path):
    write_segments(tmp_path)
    cl = CommitLog(str(tmp_path), segment_size_bytes=SEG)
    list(cl.replay())
    old = cl.segment_paths()
    assert len(old) == 4                            # three replayed + the active one
    second_id = int(re.search(r"-(\d+)\.log$", old[1]).group(1))
    assert cl.discard_before((second_id, 0)) == 1
    assert cl.segment_paths() == old[1:]
    assert cl.discard_before(cl.current_position()) == 2
    assert cl.segment_paths() == old[3:]
    assert cl.discard_before((cl.current_position()[0] + 10, 0)) == 0   # never the active one
    assert cl.stats["segments_deleted"] == 3
    pos = cl.add(b"still here")
    cl.close()
    assert replay_all(tmp_path) == [(pos, b"still here")]


def test_oversize_and_empty_payloads_rejected(tmp_path):
    cl = CommitLog(str(tmp_path), segment_size_bytes=1000)
    assert cl._max_record == 500
    before = cl.current_position()
    with pytest.raises(InvalidRequest, match=r"mutation of 501 bytes exceeds max_record_bytes=500"):
        cl.add(b"x" * 501)
    with pytest.raises(InvalidRequest, match="empty payload"):
        cl.add(b"")
    pos = cl.add(b"x" * 500)
    assert cl.current_position() == pos != before and cl.stats["records"] == 1
    cl.close()
    assert replay_all(tmp_path, segment_size_bytes=1000) == [(pos, b"x" * 500)]


def test_config_validation(tmp_path):
    with pytest.raises(ValueError):
        CommitLog(str(tmp_path), sync="sometimes")
    with pytest.raises(ValueError):
        CommitLog(str(tmp_path), segment_size_bytes=100, max_record_bytes=90)


def test_replay_and_add_ordering(tmp_path):
    write_segments(tmp_path, n_segments=1)
    cl = CommitLog(str(tmp_path))
    it = cl.replay()
    next(it)
    with pytest.raises(EngineError, match="during replay"):
        cl.add(b"x")
    list(it)
    cl.add(b"x")
    with pytest.raises(EngineError, match="before the first add"):
        list(cl.replay())
    cl.close()


def test_close_is_idempotent_and_final(tmp_path):
    cl = CommitLog(str(tmp_path), sync="group")
    cl.add(b"x")
    cl.close()
    cl.close()
    with pytest.raises(EngineError, match="closed"):
        cl.add(b"y")
    cl.crash()                                      # no-op after close
    cl2 = CommitLog(str(tmp_path))
    cl2.close()                                     # an unused active segment is removed
    assert len(os.listdir(tmp_path)) == 1


def test_unknown_format_version_is_refused(tmp_path):
    (tmp_path / "CommitLog-7-123.log").write_bytes(b"")
    with pytest.raises(CorruptionError, match="version 7"):
        CommitLog(str(tmp_path))


# ---- the documented format -----------------------------------------------------------------------

def doc_vector() -> tuple[str, bytes]:
    text = DOC.read_text()
    m = re.search(r"<!-- format-vector: (\S+) -->\n```\n(.*?)```\n<!-- end format-vector -->",
                  text, re.S)
    assert m, "the worked example is missing from docs/format.md (commit log)"
    hexes = "".join(line[10:] for line in m.group(2).splitlines())
    return m.group(1), bytes.fromhex(hexes)


def test_format_vector_matches_doc(tmp_path, monkeypatch):
    monkeypatch.setattr(commit_log_writer, "_now_ms", lambda: 1_700_000_000_000)
    cl = CommitLog(str(tmp_path), sync="batch")
    assert cl.add(b"hello") == (1_700_000_000_000, 47)
    assert cl.add(b"dynatable") == (1_700_000_000_000, 80)
    cl.close()
    name, expected = doc_vector()
    assert os.listdir(tmp_path) == [name]
    assert (tmp_path / name).read_bytes() == expected
    assert expected == (encode_header(1_700_000_000_000) + encode_record(b"hello")
                        + encode_marker(1_700_000_000_000, 47, 30) + encode_record(b"dynatable")
                        + encode_marker(1_700_000_000_000, 80, 59))


def test_dump_tool(tmp_path, monkeypatch):
    monkeypatch.setattr(commit_log_writer, "_now_ms", lambda: 1_700_000_000_000)
    cl = CommitLog(str(tmp_path))
    cl.add(b"hello")
    cl.add(b"y" * 40)
    (path,) = cl.segment_paths()
    cl.close()
    out = io.StringIO()
    dump_commitlog(path, out)
    lines = out.getvalue().splitlines()
    assert lines[1] == ("header magic=DTCL version=2 segment_id=1700000000000 "
                        "previous_segment_id=0 previous_segment_end=0 header_crc=0x5a8b9f2d")
    assert lines[2] == "offset=30 size=5 crc=ok payload=68656c6c6f"
    assert lines[3] == "offset=47 size=40 crc=ok payload=" + "79" * 32 + "…"
    assert lines[4] == "offset=99 sync_marker section_start=30 marker_crc=ok"
    assert lines[5] == "records=2 sync_markers=1 end_offset=111 (end of file)"
    doc = DOC.read_text()
    for field in ("magic", "version", "segment_id", "previous_segment_id",
                  "previous_segment_end", "header_crc", "size",
                  "payload", "sync_marker", "section_start", "marker_crc"):
        assert f"{field} " in doc
    flip(path, 62)                                  # inside the second payload
    out = io.StringIO()
    dump_commitlog(path, out)
    lines = out.getvalue().splitlines()
    assert lines[3] == (f"CORRUPTION file={path} offset=47: record payload CRC mismatch inside a "
                        "synced section (sync marker at 99)")
    assert lines[-1] == "records=1 sync_markers=1 end_offset=111 (end of file) damaged_sections=1"
    os.truncate(path, 94)                           # cut the second record and the marker
    out = io.StringIO()
    dump_commitlog(path, out)
    assert out.getvalue().splitlines()[-1] == (
        f"TORN TAIL file={path} offset=47: record of 40 bytes truncated (after the last sync "
        "marker: a torn tail if this is the newest segment, else corruption)")
    out = io.StringIO()
    dump_commitlog(str(tmp_path / "missing.log"), out)
    assert out.getvalue().startswith("error file=")


def test_record_framing_is_per_size_and_the_limit_per_log(tmp_path):
    """A record is packed whole by a struct kept per payload size (engine/commit_log_writer.py, _framing):
    every size frames right in the mapping and in the buffer, and a size another log with a
    larger max_record_bytes has framed is still rejected by a log with a smaller one."""
    items = [os.urandom(n) for n in range(1, 300)] + [os.urandom(n) for n in range(299, 0, -7)]
    for mode in ("periodic", "batch"):
        d = tmp_path / mode
        cl = CommitLog(str(d), sync=mode)
        written = [(cl.add(p), p) for p in items]
        cl.close()
        assert replay_all(d) == written
    small = CommitLog(str(tmp_path / "small"), segment_size_bytes=400)   # max_record_bytes 200
    with pytest.raises(InvalidRequest, match=r"mutation of 250 bytes exceeds max_record_bytes=200"):
        small.add(items[249])
    small.close()
