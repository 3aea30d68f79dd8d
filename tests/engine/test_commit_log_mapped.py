"""Periodic mode writes records into a shared mapping of a preallocated segment (engine/commit_log_writer.py):
a kill -9 leaves them in the page cache and the segment ends in zero fill, which replay reads as
"no data follows" (cut at open like a torn tail, never corruption); rolled segments and a cleanly closed
one are cut to their data; bad bytes in the zero fill are still reported, never replayed."""
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from engine.commit_log import CommitLog
from engine.commit_log_segment import HEADER_SIZE
from engine.errors import CorruptionError

SEGMENT = 64 * 1024
CHILD = textwrap.dedent("""
    import sys
    from engine.commit_log import CommitLog
    cl = CommitLog(sys.argv[1], sync="periodic", segment_size_bytes=int(sys.argv[2]))
    for i in range(int(sys.argv[3])):
        cl.add(b"record-%08d" % i + bytes(200))
        print(i, flush=True)
    sys.stdin.readline()    # killed here: the active segment holds records, then its zero fill
""")


def _segments(directory) -> list[str]:
    return sorted(os.path.join(directory, n) for n in os.listdir(directory) if n.endswith(".log"))


def _replay(directory, **kw) -> tuple[list[bytes], dict]:
    cl = CommitLog(str(directory), **kw)
    try:
        return [payload for _, payload in cl.replay()], cl.stats
    finally:
        cl.close()


def test_kill_9_leaves_zero_fill_and_loses_nothing_acknowledged(tmp_path):
    env = dict(os.environ, PYTHONPATH=os.getcwd())
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path), str(SEGMENT), "1001"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
    acked, deadline = -1, time.monotonic() + 30
    while acked < 1000 and time.monotonic() < deadline:   # ~4 segments
        line = child.stdout.readline()
        if not line:
            break
        acked = int(line)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    assert acked >= 1000, "the child did not acknowledge appends"
    paths = _segments(tmp_path)
    assert len(paths) >= 4
    assert all(os.path.getsize(p) < SEGMENT for p in paths[:-1])    # rolled: cut to their data
    assert os.path.getsize(paths[-1]) == SEGMENT                     # active: preallocated
    payloads, stats = _replay(tmp_path)
    assert payloads[:acked + 1] == [b"record-%08d" % i + bytes(200) for i in range(acked + 1)]
    assert stats["replay_errors_ignored"] == 0
    assert stats["torn_bytes_dropped"] == SEGMENT - os.path.getsize(paths[-1])   # the zero fill, cut


def test_crash_keeps_appended_records_and_close_trims(tmp_path):
    cl = CommitLog(str(tmp_path), sync="periodic", segment_size_bytes=SEGMENT)
    want = [os.urandom(100) for _ in range(50)]
    for p in want:
        cl.add(p)
    (path,) = _segments(tmp_path)
    assert os.path.getsize(path) == SEGMENT
    cl.crash()                                       # a kill -9: nothing synced, all in page cache
    assert os.path.getsize(path) == SEGMENT
    got, stats = _replay(tmp_path)
    assert got == want and stats["torn_bytes_dropped"] == SEGMENT - HEADER_SIZE - 50 * 112
    assert os.path.getsize(path) == HEADER_SIZE + 50 * 112          # the zero fill cut at open


def test_crash_losing_unsynced_bytes_keeps_the_synced_ones(tmp_path):
    cl = CommitLog(str(tmp_path), sync="periodic", segment_size_bytes=SEGMENT)
    synced = [os.urandom(80) for _ in range(10)]
    for p in synced:
        cl.add(p)
    cl.sync()
    for _ in range(10):
        cl.add(os.urandom(80))
    cl.crash(lose_unsynced=True)                     # a machine crash
    assert _replay(tmp_path)[0] == synced


def test_a_byte_in_the_zero_fill_of_the_newest_segment_is_a_torn_tail(tmp_path):
    cl = CommitLog(str(tmp_path), sync="periodic", segment_size_bytes=SEGMENT)
    want = [os.urandom(60) for _ in range(20)]
    for p in want:
        cl.add(p)
    cl.sync()
    cl.crash()
    (path,) = _segments(tmp_path)
    with open(path, "r+b") as f:                     # garbage far into the unsynced zero fill
        f.seek(SEGMENT - 100)
        f.write(b"\x07")
    got, stats = _replay(tmp_path)
    assert got == want and stats["replay_errors_ignored"] == 0


def test_a_byte_in_the_zero_fill_of_an_older_segment_is_reported(tmp_path):
    cl = CommitLog(str(tmp_path), sync="periodic", segment_size_bytes=SEGMENT)
    for _ in range(20):
        cl.add(os.urandom(60))
    cl.sync()
    cl.crash()
    cl = CommitLog(str(tmp_path), sync="periodic", segment_size_bytes=SEGMENT)
    list(cl.replay())
    cl.add(b"newer")
    cl.crash()                                       # the first segment is no longer the newest
    first = _segments(tmp_path)[0]
    size = os.path.getsize(first)
    with open(first, "r+b") as f:                    # zero fill kept (a trim lost in a power cut)
        f.truncate(SEGMENT)
        f.seek(SEGMENT - 100)
        f.write(b"\x07")
    cl = CommitLog(str(tmp_path), sync="periodic", segment_size_bytes=SEGMENT)
    with pytest.raises(CorruptionError) as e:
        list(cl.replay())
    cl.crash()
    assert e.value.path == first and e.value.offset == size and "not the newest" in e.value.what


def test_without_block_reservation_periodic_mode_writes_instead_of_mapping(tmp_path, monkeypatch):
    """Where posix_fallocate is unsupported a mapped sparse segment could SIGBUS on a full disk,
    so the log falls back to write(): the records still replay, and the segment is not preallocated."""
    import errno

    def unsupported(fd, offset, length):
        raise OSError(errno.EOPNOTSUPP, "not supported")
    monkeypatch.setattr(os, "posix_fallocate", unsupported)
    cl = CommitLog(str(tmp_path), sync="periodic", segment_size_bytes=SEGMENT)
    want = [os.urandom(100) for _ in range(20)]
    for p in want:
        cl.add(p)
    cl.crash()
    [path] = _segments(tmp_path)
    assert os.path.getsize(path) < SEGMENT
    assert _replay(tmp_path)[0] == want
