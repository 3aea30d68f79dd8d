"""Shared by the commit-log tests: fresh directories, replay into a list, bit flips, and
`write_segments` (three periodic-mode segments of four 40-byte records each, SEG bytes apiece)."""
from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, settings

from engine.commit_log import CommitLog
from engine.commit_log_segment import ENTRY_OVERHEAD, HEADER_SIZE, MARKER_SIZE

SEG = HEADER_SIZE + 4 * 52 + MARKER_SIZE           # write_segments: four 40-byte records each
per_test_dir = settings(suppress_health_check=[HealthCheck.function_scoped_fixture])


def fresh(tmp_path: Path, name: str = "cl") -> Path:
    d = tmp_path / name
    n = 0
    while d.exists():
        n += 1
        d = tmp_path / f"{name}{n}"
    return d


def replay_all(directory, **kw) -> list[tuple[tuple[int, int], bytes]]:
    cl = CommitLog(str(directory), **kw)
    try:
        return list(cl.replay())
    finally:
        cl.close()


def flip(path: str, offset: int) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        b = f.read(1)
        f.seek(offset)
        f.write(bytes([b[0] ^ 0x10]))


def write_segments(directory, n_segments=3, per_segment=4, size=40) -> list:
    cl = CommitLog(str(directory), sync="periodic",
                   segment_size_bytes=HEADER_SIZE + per_segment * (size + ENTRY_OVERHEAD) + MARKER_SIZE)
    recs = [(cl.add(bytes([i]) * size), bytes([i]) * size) for i in range(n_segments * per_segment)]
    cl.close()
    return recs
