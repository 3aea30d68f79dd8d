"""Commit log corruption rules: torn tails of the last segment are truncated, anything else
(bit flips, bad CRCs, truncated or missing earlier segments, bad headers) is a CorruptionError
naming the file and offset; nothing is ever returned as data or dropped silently."""
from __future__ import annotations

import os
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.commit_log import CommitLog
from engine.commit_log_segment import HEADER_SIZE, MARKER_SIZE, encode_header, encode_record, segment_name
from engine.errors import CorruptionError
from tests.engine.commit_logs import SEG, flip, fresh, per_test_dir, replay_all, write_segments


def test_segments_helper_shape(tmp_path):
    write_segments(tmp_path)
    assert len(os.listdir(tmp_path)) == 3


@per_test_dir
@given(st.data())
def test_torn_tail_in_last_segment_is_truncated(tmp_path, data):
    d = fresh(tmp_path)
    recs = write_segments(d)
    last = sorted(d.iterdir())[-1]
    size = last.stat().st_size
    cut = data.draw(st.integers(HEADER_SIZE, size - 1))
    os.truncate(last, cut)
    kept = min(4, (cut - HEADER_SIZE) // 52)          # a cut marker alone loses no record
    cl = CommitLog(str(d), segment_size_bytes=SEG)
    assert list(cl.replay()) == recs[:8 + kept]
    assert last.stat().st_size == HEADER_SIZE + kept * 52
    assert cl.stats["torn_bytes_dropped"] == cut - last.stat().st_size
    cl.add(b"after")
    cl.close()
    got = replay_all(d, segment_size_bytes=SEG)   # no error on the next open
    assert got[:-1] == recs[:8 + kept] and got[-1][1] == b"after"


def test_bit_flip_in_earlier_segment_raises_with_path_and_offset(tmp_path):
    write_segments(tmp_path)
    paths = sorted(str(p) for p in tmp_path.iterdir())
    bad_record = HEADER_SIZE + 2 * 52
    flip(paths[1], bad_record + 8 + 17)             # inside the third record's payload
    cl = CommitLog(str(tmp_path))
    it = cl.replay()
    with pytest.raises(CorruptionError) as e:
        list(it)
    assert (e.value.path, e.value.offset) == (paths[1], bad_record)
    assert "payload CRC" in e.value.what
    cl.close()


@pytest.mark.parametrize("where,what", [(0, "size CRC"), (5, "size CRC"), (51, "payload CRC")])
def test_bad_crcs_in_earlier_segment(tmp_path, where, what):
    write_segments(tmp_path)
    first = sorted(str(p) for p in tmp_path.iterdir())[0]
    flip(first, HEADER_SIZE + 52 + where)
    with pytest.raises(CorruptionError) as e:
        replay_all(tmp_path)
    assert (e.value.path, e.value.offset) == (first, HEADER_SIZE + 52)
    assert what in e.value.what


def test_truncation_of_earlier_segment_raises(tmp_path):
    write_segments(tmp_path)
    paths = sorted(str(p) for p in tmp_path.iterdir())
    os.truncate(paths[0], HEADER_SIZE + 52 + 30)
    with pytest.raises(CorruptionError) as e:
        replay_all(tmp_path)
    assert (e.value.path, e.value.offset) == (paths[0], HEADER_SIZE + 52)
    assert "truncated" in e.value.what


def test_bit_flip_mid_last_segment_before_a_sync_marker_is_corruption(tmp_path):
    """Issue 11: a bad record a sync marker covers is corruption, never a torn tail."""
    recs = write_segments(tmp_path)
    last = sorted(str(p) for p in tmp_path.iterdir())[-1]
    size = os.path.getsize(last)
    flip(last, HEADER_SIZE + 52 + 20)               # second record of the last segment
    with pytest.raises(CorruptionError) as e:
        replay_all(tmp_path)
    assert (e.value.path, e.value.offset) == (last, HEADER_SIZE + 52)
    assert "synced section" in e.value.what
    assert os.path.getsize(last) == size            # nothing truncated, nothing deleted
    cl = CommitLog(str(tmp_path), ignore_replay_errors=True)
    assert list(cl.replay()) == recs[:9]            # the damaged section (records 2-4) skipped
    assert cl.stats["replay_errors_ignored"] == 1 and cl.stats["torn_bytes_dropped"] == 0
    cl.discard_before(cl.current_position())
    cl.close()
    assert not os.path.exists(last)                 # moved aside, not deleted
    assert os.path.getsize(tmp_path / "corrupt" / os.path.basename(last)) == size


def test_batch_mode_flip_loses_nothing_silently(tmp_path):
    """The issue's reproduction at log level: 1,000 synced records, one bit flipped at 5%."""
    cl = CommitLog(str(tmp_path), sync="batch")
    recs = [(cl.add(b"row-%d" % i), b"row-%d" % i) for i in range(1000)]
    (path,) = cl.segment_paths()
    cl.crash()
    at = os.path.getsize(path) * 5 // 100
    flip(path, at)
    with pytest.raises(CorruptionError) as e:
        replay_all(tmp_path)
    assert e.value.path == path and at - 40 < e.value.offset <= at
    cl = CommitLog(str(tmp_path), ignore_replay_errors=True)
    got = list(cl.replay())
    cl.crash()
    assert len(got) == 999 and set(got) < set(recs)  # one section (= one record) skipped


def test_torn_write_after_the_last_sync_marker_is_truncated(tmp_path):
    cl = CommitLog(str(tmp_path), sync="periodic")
    synced = [(cl.add(b"a%d" % i), b"a%d" % i) for i in range(5)]
    cl.sync()
    unsynced = [(cl.add(b"b%d" % i), b"b%d" % i) for i in range(5)]
    (path,) = cl.segment_paths()
    cl.crash()
    flip(path, unsynced[1][0][1] + 9)               # inside the third unsynced record
    cl = CommitLog(str(tmp_path))
    assert list(cl.replay()) == synced + unsynced[:2]
    assert os.path.getsize(path) == unsynced[1][0][1]
    cl.close()


def test_older_segment_cut_at_a_record_boundary_is_detected(tmp_path):
    recs = write_segments(tmp_path)
    paths = sorted(str(p) for p in tmp_path.iterdir())
    os.truncate(paths[0], HEADER_SIZE + 2 * 52)     # looks whole: no bad record left
    with pytest.raises(CorruptionError) as e:
        replay_all(tmp_path)
    assert (e.value.path, e.value.offset) == (paths[1], 22) and "truncated" in e.value.what
    cl = CommitLog(str(tmp_path), ignore_replay_errors=True)
    assert list(cl.replay()) == recs[:2] + recs[4:]
    cl.close()


def test_missing_middle_segment_is_detected(tmp_path):
    recs = write_segments(tmp_path)
    paths = sorted(str(p) for p in tmp_path.iterdir())
    os.unlink(paths[1])
    with pytest.raises(CorruptionError) as e:
        replay_all(tmp_path)
    assert (e.value.path, e.value.offset) == (paths[2], 14) and "missing" in e.value.what
    cl = CommitLog(str(tmp_path), ignore_replay_errors=True)
    assert list(cl.replay()) == recs[:4] + recs[8:]
    cl.close()


def test_version_1_segments_are_read_with_version_1_rules(tmp_path):
    v1 = tmp_path / "CommitLog-1-1000.log"
    head = b"DTCL" + (1).to_bytes(2, "big") + (1000).to_bytes(8, "big")
    import zlib
    v1.write_bytes(head + zlib.crc32(head).to_bytes(4, "big") + encode_record(b"old")
                   + encode_record(b"torn")[:-3])
    cl = CommitLog(str(tmp_path))
    assert list(cl.replay()) == [((1000, 18 + 15), b"old")]
    assert cl.stats["torn_bytes_dropped"] == 13
    new = cl.add(b"new")
    cl.close()
    assert replay_all(tmp_path) == [((1000, 33), b"old"), (new, b"new")]


def test_oversize_size_field_in_earlier_segment_is_corruption(tmp_path):
    write_segments(tmp_path)
    first = sorted(str(p) for p in tmp_path.iterdir())[0]
    with open(first, "r+b") as f:                   # a well-formed record that is too large
        f.seek(HEADER_SIZE)
        f.write(encode_record(b"z" * 40)[:8])
    with pytest.raises(CorruptionError) as e:
        replay_all(tmp_path, max_record_bytes=39)
    assert e.value.offset == HEADER_SIZE and "max_record_bytes=39" in e.value.what


def test_headers(tmp_path):
    write_segments(tmp_path)
    paths = sorted(str(p) for p in tmp_path.iterdir())
    flip(paths[0], 1)                               # bad magic in an earlier segment
    with pytest.raises(CorruptionError) as e:
        replay_all(tmp_path)
    assert (e.value.path, e.value.offset) == (paths[0], 0) and "magic" in e.value.what
    flip(paths[0], 1)
    flip(paths[0], 9)                               # segment_id bit: header CRC catches it
    with pytest.raises(CorruptionError) as e:
        replay_all(tmp_path)
    assert e.value.path == paths[0] and "header CRC" in e.value.what


def test_bad_full_header_in_last_segment_raises(tmp_path):
    write_segments(tmp_path, n_segments=1)
    (only,) = [str(p) for p in tmp_path.iterdir()]
    flip(only, 15)
    with pytest.raises(CorruptionError) as e:
        replay_all(tmp_path)
    assert e.value.path == only and "header CRC" in e.value.what


@pytest.mark.parametrize("length", [0, 7, HEADER_SIZE - 1])
def test_short_last_segment_is_torn_and_deleted(tmp_path, length):
    recs = write_segments(tmp_path, n_segments=2)
    torn = tmp_path / segment_name(int(time.time_ns() // 1_000_000) + 10**9)
    torn.write_bytes(encode_header(1)[:length])
    got = replay_all(tmp_path)
    assert got == recs and not torn.exists()


def test_all_zero_last_segment_is_torn_and_previous_tail_tolerated(tmp_path):
    recs = write_segments(tmp_path, n_segments=2)
    second = sorted(str(p) for p in tmp_path.iterdir())[-1]
    os.truncate(second, os.path.getsize(second) - MARKER_SIZE - 5)
    torn = tmp_path / segment_name(int(time.time_ns() // 1_000_000) + 10**9)
    torn.write_bytes(bytes(100))
    assert replay_all(tmp_path) == recs[:-1] and not torn.exists()


def test_zero_padding_ends_segment_data(tmp_path):
    recs = write_segments(tmp_path, n_segments=2)
    first = sorted(str(p) for p in tmp_path.iterdir())[0]
    with open(first, "ab") as f:
        f.write(bytes(300))                         # preallocated / zero padded
    assert replay_all(tmp_path) == recs


def test_crash_after_roll_without_sync(tmp_path):
    """Periodic roll, then a machine crash before any sync: the empty newer segment is torn."""
    cl = CommitLog(str(tmp_path), sync="periodic", segment_size_bytes=HEADER_SIZE + 2 * 52 + MARKER_SIZE)
    first = [(cl.add(b"a" * 40), b"a" * 40) for _ in range(2)]
    cl.sync()
    for _ in range(5):
        cl.add(b"b" * 40)                           # rolls twice, never synced
    cl.crash(lose_unsynced=True)
    assert replay_all(tmp_path) == first


