"""SSTable writer/reader: round trips, point reads, bounded scans, order, completeness (TOC),
corruption of every component, statistics, the dump tool, and the doc's worked example."""
from __future__ import annotations

import io
import os
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.errors import CorruptionError
from engine.sstable_files import component_path, component_paths, delete_sstable, list_generations
from engine.sstable_reader import COMPONENTS, SSTableReader
from engine.sstable_stats import (NO_DELETION_TIME, SSTableStats, decode_statistics,
                                  encode_statistics, read_statistics_file, write_statistics_file)
from engine.sstable_writer import SSTableWriter
from engine.token import token
from tools.sstable_dump import dump_sstable, hexdump

DOC = Path(__file__).resolve().parents[2] / "docs" / "format.md"

DATA_STATS = dict(min_timestamp=1_700_000_000_000_000, max_timestamp=1_700_000_000_000_001,
                  cell_count=2, tombstone_count=1, max_local_deletion_time=1_700_000_000,
                  droppable_histogram=((1_699_999_980, 1),),
                  commit_log_intervals=(((1, 0), (1, 120)),), level=0,
                  created_ms=1_700_000_000_000)


def partitions(n: int, value_size: int = 30, prefix: bytes = b"key") -> list:
    keys = [prefix + b"%05d" % i for i in range(n)]
    return sorted((token(k), k, bytes([i % 251]) * value_size + k) for i, k in enumerate(keys))


def write(directory, generation, items, **kw) -> SSTableReader:
    w = SSTableWriter(str(directory), generation, expected_partitions=len(items), **kw)
    for t, k, v in items:
        w.append(t, k, v)
    return w.finish(DATA_STATS)


@pytest.mark.parametrize("compression", [None, "lz4"])
def test_round_trip(tmp_path, compression):
    items = partitions(700)
    r = write(tmp_path, 1, items, compression=compression, block_size_bytes=512)
    r.check_invariants()
    assert list(r.scan()) == items
    assert all(r.get(t, k) == v for t, k, v in items)
    r.close()
    with SSTableReader.open(str(tmp_path), 1) as again:
        again.check_invariants()
        assert list(again.scan()) == items
        st_ = again.stats
        assert (st_.partition_count, st_.min_token, st_.max_token) == (700, items[0][0],
                                                                       items[-1][0])
        assert (st_.first_key, st_.last_key, st_.compression) == (items[0][1], items[-1][1],
                                                                  compression)
        assert st_.droppable_histogram == DATA_STATS["droppable_histogram"]
        assert again.size_bytes == sum(os.path.getsize(p) for p in again.paths)


def test_lz4_shrinks_compressible_data_and_keeps_incompressible_blocks_raw(tmp_path):
    items = partitions(300, value_size=200)
    plain = write(tmp_path, 1, items)
    packed = write(tmp_path, 2, items, compression="lz4")
    assert os.path.getsize(packed.paths[0]) < os.path.getsize(plain.paths[0]) / 3
    rnd = [(t, k, os.urandom(100)) for t, k, _ in items]
    raw = write(tmp_path, 3, rnd, compression="lz4")
    assert list(raw.scan()) == rnd  # stored with compression byte 0: lz4 did not help


def test_get_absent_keys(tmp_path):
    items = partitions(500)
    r = write(tmp_path, 1, items)
    present = {k for _, k, _ in items}
    for i in range(500):
        k = b"nokey%05d" % i
        assert k not in present
        assert r.get(token(k), k) is None
    t0, k0, _ = items[0]
    tl, kl, _ = items[-1]
    assert r.get(t0 - 1, k0) is None and not r.may_contain(t0 - 1, k0)
    assert r.get(tl + 1, kl) is None and not r.may_contain(tl + 1, kl)
    assert r.get(t0, k0 + b"\x00") is None  # same token, absent key (past the bloom maybe)
    assert all(r.may_contain(t, k) for t, k, _ in items)


def test_partition_larger_than_a_block_gets_its_own_block(tmp_path):
    items = partitions(50)
    big = items[20][0], items[20][1], os.urandom(10_000)
    items[20] = big
    for compression in (None, "lz4"):
        gen = 1 if compression is None else 2
        r = write(tmp_path, gen, items, block_size_bytes=256, compression=compression)
        r.check_invariants()
        assert r.get(big[0], big[1]) == big[2]
        assert list(r.scan()) == items
        assert list(r.scan(big[:2], big[:2], end_inclusive=True)) == [big]


def test_empty_sstable(tmp_path):
    r = write(tmp_path, 1, [])
    r.check_invariants()
    assert list(r.scan()) == [] and r.get(0, b"x") is None and not r.may_contain(0, b"x")
    assert r.stats.partition_count == 0 and list_generations(str(tmp_path)) == [1]


def _model_scan(items, start, end, incl):
    out = []
    for t, k, v in items:
        if start is not None and (t, k) < start:
            continue
        if end is not None and ((t, k) > end or (not incl and (t, k) == end)):
            continue
        out.append((t, k, v))
    return out


@pytest.fixture(scope="module")
def scan_table(tmp_path_factory):
    d = tmp_path_factory.mktemp("scan")
    items = partitions(400)
    return items, write(d, 1, items, block_size_bytes=300)


def test_scan_bounds_examples(scan_table):
    items, r = scan_table
    a, b = items[100][:2], items[200][:2]
    assert list(r.scan(a, b)) == items[100:200]
    assert list(r.scan(a, b, end_inclusive=True)) == items[100:201]
    assert list(r.scan(None, b)) == items[:200]
    assert list(r.scan(a, None)) == items[100:]
    assert list(r.scan(b, a)) == []
    assert list(r.scan(a, a)) == [] and list(r.scan(a, a, end_inclusive=True)) == [items[100]]
    assert list(r.scan((items[-1][0] + 1, b""))) == []
    assert list(r.scan(None, (items[0][0], b""))) == []


bound = st.one_of(st.none(), st.tuples(st.integers(-2**63 + 1, 2**63 - 1), st.binary(max_size=9)),
                  st.integers(0, 399))


@settings(max_examples=150, deadline=None)
@given(bound, bound, st.booleans())
def test_scan_bounds_match_a_model(scan_table, start, end, incl):
    items, r = scan_table
    start = items[start][:2] if isinstance(start, int) else start
    end = items[end][:2] if isinstance(end, int) else end
    assert list(r.scan(start, end, end_inclusive=incl)) == _model_scan(items, start, end, incl)


def test_append_asserts_order(tmp_path):
    w = SSTableWriter(str(tmp_path), 1, expected_partitions=3)
    w.append(5, b"b", b"x")
    with pytest.raises(AssertionError):
        w.append(5, b"b", b"y")  # duplicate
    with pytest.raises(AssertionError):
        w.append(5, b"a", b"y")  # same token, smaller key
    with pytest.raises(AssertionError):
        w.append(4, b"z", b"y")  # smaller token
    w.append(5, b"ba", b"y")
    w.abort()
    assert component_paths(str(tmp_path), 1) == []


def test_toc_marks_completion(tmp_path):
    d = str(tmp_path)
    write(tmp_path, 1, partitions(10)).close()
    write(tmp_path, 3, partitions(10)).close()
    w = SSTableWriter(d, 2, expected_partitions=1)
    w.append(1, b"a", b"x")  # generation 2 is in progress: no TOC yet
    assert list_generations(d) == [1, 3]
    os.remove(component_path(d, 3, "TOC.txt"))
    assert list_generations(d) == [1]
    assert len(component_paths(d, 3)) == len(COMPONENTS) - 1
    delete_sstable(d, 3)
    assert component_paths(d, 3) == []
    w.finish(DATA_STATS).close()
    assert list_generations(d) == [1, 2]
    assert list_generations(os.path.join(d, "missing")) == []
    delete_sstable(d, 1)
    assert list_generations(d) == [2] and component_paths(d, 1) == []


@pytest.mark.parametrize("component", COMPONENTS[:-1])
def test_missing_component_of_a_complete_sstable(tmp_path, component):
    write(tmp_path, 1, partitions(5)).close()
    path = component_path(str(tmp_path), 1, component)
    os.remove(path)
    with pytest.raises(CorruptionError) as err:
        SSTableReader.open(str(tmp_path), 1)
    assert err.value.path == path


def _read_everything(directory: str, generation: int) -> None:
    with SSTableReader.open(directory, generation) as r:
        r.check_invariants()
        for _ in r.scan():
            pass


@pytest.fixture(scope="module")
def small_table(tmp_path_factory):
    d = tmp_path_factory.mktemp("small")
    items = partitions(150, value_size=8)
    write(d, 1, items, block_size_bytes=200).close()
    return str(d), {c: Path(component_path(str(d), 1, c)).read_bytes() for c in COMPONENTS}


@pytest.mark.parametrize("component", COMPONENTS)
def test_every_flipped_byte_is_detected(small_table, component):
    directory, originals = small_table
    path = component_path(directory, 1, component)
    original = originals[component]
    step = max(1, len(original) // 700)  # every byte of the small files, a dense sample of Data
    try:
        for i in list(range(0, len(original), step)) + [len(original) - 1]:
            bad = bytearray(original)
            bad[i] ^= 0x01 if i % 2 else 0x80
            Path(path).write_bytes(bad)
            with pytest.raises(CorruptionError) as err:
                _read_everything(directory, 1)
            assert err.value.path == path, (i, err.value)
    finally:
        Path(path).write_bytes(original)
    _read_everything(directory, 1)


@pytest.mark.parametrize("component", COMPONENTS)
def test_truncated_file_is_detected(small_table, component):
    directory, originals = small_table
    path = component_path(directory, 1, component)
    original = originals[component]
    try:
        for cut in (0, 3, len(original) // 2, len(original) - 1):
            Path(path).write_bytes(original[:cut])
            with pytest.raises(CorruptionError) as err:
                _read_everything(directory, 1)
            assert err.value.path == path
    finally:
        Path(path).write_bytes(original)


def test_statistics_round_trip_and_helpers(tmp_path):
    s = SSTableStats(min_timestamp=-5, max_timestamp=10, min_token=-(2**63) + 1,
                     max_token=2**63 - 1, partition_count=3, cell_count=7, tombstone_count=4,
                     max_local_deletion_time=NO_DELETION_TIME,
                     droppable_histogram=((60, 1), (120, 2), (600, 1)),
                     commit_log_intervals=(((1, 0), (2, 500)), ((3, 7), (3, 9))),
                     level=2, compression="lz4", created_ms=123, first_key=b"\x00a",
                     last_key=b"\xffz")
    assert decode_statistics(encode_statistics(s), "x") == s
    assert s.droppable_tombstones(120) == 1 and s.droppable_tombstones(601) == 4
    assert s.with_level(3).level == 3 and s.with_level(3).cell_count == 7
    path = str(tmp_path / "dt-1-Statistics.db")
    write_statistics_file(path, s)
    write_statistics_file(path, s.with_level(1))
    assert read_statistics_file(path) == s.with_level(1)
    assert os.listdir(tmp_path) == ["dt-1-Statistics.db"]


def test_writer_defaults_optional_stats_and_rejects_unknown(tmp_path):
    w = SSTableWriter(str(tmp_path), 1, expected_partitions=1)
    w.append(1, b"a", b"x")
    base = {k: DATA_STATS[k] for k in ("min_timestamp", "max_timestamp", "cell_count",
                                        "tombstone_count", "max_local_deletion_time",
                                        "droppable_histogram")}
    with pytest.raises(AssertionError):
        w.finish(dict(base, bogus=1))
    r = w.finish(base)
    assert r.stats.level == 0 and r.stats.commit_log_intervals == () and r.stats.created_ms > 0


def test_dump_tool(tmp_path, small_table):
    items = partitions(3)
    write(tmp_path, 4, items).close()
    out = io.StringIO()
    dump_sstable(component_path(str(tmp_path), 4, "Index.db"), out)
    text = out.getvalue()
    for name in ("min_timestamp", "partition_count: 3", "droppable_histogram", "first_key"):
        assert name in text
    lines = [line for line in text.splitlines() if line.startswith("token=")]
    assert len(lines) == 3 and f"key={items[0][1].hex()}" in lines[0]
    path = component_path(str(tmp_path), 4, "Data.db")
    data = bytearray(Path(path).read_bytes())
    data[-3] ^= 0xFF
    Path(path).write_bytes(data)
    out = io.StringIO()
    dump_sstable(path, out)
    assert f"corruption: {path} at offset " in out.getvalue()


# -- the worked example of docs/format.md (SSTables) --------------------------------------------

EXAMPLE_KEYS = (b"ant", b"bee")
EXAMPLE_PAYLOADS = {b"ant": b"hi", b"bee": b"yo"}


def write_example(directory: str) -> dict[str, bytes]:
    """The tiny sstable whose bytes the format doc shows (generation 1, no compression)."""
    w = SSTableWriter(directory, 1, expected_partitions=2, block_size_bytes=4096)  # as the doc says
    for k in sorted(EXAMPLE_KEYS, key=lambda k: (token(k), k)):
        w.append(token(k), k, EXAMPLE_PAYLOADS[k])
    w.finish(DATA_STATS).close()
    return {c: Path(component_path(directory, 1, c)).read_bytes() for c in COMPONENTS}


def example_markdown(files: dict[str, bytes]) -> str:
    parts = []
    for c in COMPONENTS:
        parts.append(f"dt-1-{c} ({len(files[c])} bytes):\n\n```\n{hexdump(files[c])}\n```\n")
    return "\n".join(parts)


def test_doc_worked_example_matches_the_writer(tmp_path):
    text = DOC.read_text()
    m = re.search(r"<!-- example:begin -->\n(.*?)<!-- example:end -->", text, re.S)
    assert m, "docs/format.md (SSTables) lacks the example markers"
    assert m.group(1).strip() == example_markdown(write_example(str(tmp_path))).strip()
