"""The mirror's operations log: durable across reopen, torn tail tolerated only at the end,
corruption reported with file and offset, settled segments deleted."""
import os
import re

import pytest

from engine.errors import CorruptionError
from persistency.mirror_log import MirrorLog, encode_header, encode_record


def segments(d):
    return sorted(f for f in os.listdir(d) if f.endswith(".log"))


def test_pending_survives_reopen_and_sequence_numbers_keep_growing(tmp_path):
    log = MirrorLog(str(tmp_path))
    for i in range(5):
        log.append("WRITE", b"e%d" % i, 1000 + i)
    log.settle(2)
    log.close()   # no sync needed for a process crash; close is a clean stop
    log = MirrorLog(str(tmp_path))
    assert [(e.seq, e.entry, e.timestamp_us) for e in log.pending] == [(3, b"e2", 1002), (4, b"e3", 1003), (5, b"e4", 1004)]
    assert log.append("REMOVE", b"x", 7).seq == 6
    log.settle(6)
    log.close()
    log = MirrorLog(str(tmp_path))
    assert not log.pending and log.append("WRITE", b"y", 8).seq == 7
    log.close()


def test_torn_tail_of_the_last_segment_is_cut_off(tmp_path):
    log = MirrorLog(str(tmp_path))
    for i in range(3):
        log.append("WRITE", b"entry-%d" % i, i)
    log.close()
    path = os.path.join(tmp_path, segments(tmp_path)[-1])
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
        f.truncate(size - 3)   # the last append was interrupted
    log = MirrorLog(str(tmp_path))
    assert [e.entry for e in log.pending] == [b"entry-0", b"entry-1"]
    log.close()


def test_a_bad_record_before_the_end_is_corruption_with_file_and_offset(tmp_path):
    log = MirrorLog(str(tmp_path))
    for i in range(3):
        log.append("WRITE", b"entry-%d" % i, i)
    log.close()
    path = os.path.join(tmp_path, segments(tmp_path)[-1])
    with open(path, "r+b") as f:
        data = bytearray(f.read())
        first = 20 + 8   # header, then the first record's length and crc
        data[first + 2] ^= 0xFF
        f.seek(0)
        f.write(data)
    with pytest.raises(CorruptionError) as err:
        MirrorLog(str(tmp_path))
    assert err.value.path == path and err.value.offset == 20 and "checksum" in err.value.what


def test_bad_header_and_unknown_version_are_corruption(tmp_path):
    os.makedirs(tmp_path / "a")
    with open(tmp_path / "a" / "mirror-00000001.log", "wb") as f:
        f.write(b"XXXX" + encode_header(1)[4:])
    with open(tmp_path / "a" / "mirror-00000002.log", "wb") as f:
        f.write(encode_header(1))
    with pytest.raises(CorruptionError, match="header"):
        MirrorLog(str(tmp_path / "a"))


def test_settled_segments_are_deleted(tmp_path):
    log = MirrorLog(str(tmp_path), segment_size_bytes=200)
    for i in range(40):
        log.append("WRITE", b"x" * 20, i)
    assert len(segments(tmp_path)) > 3
    log.settle(20)
    kept = segments(tmp_path)
    log.settle(40)
    assert len(segments(tmp_path)) == 1 < len(kept)
    log.close()
    log = MirrorLog(str(tmp_path))
    assert not log.pending and log.append("WRITE", b"z", 1).seq == 41
    log.close()


def test_format_doc_example_matches_the_code():
    """docs/format.md's worked example of a mirror-log record is what the code writes."""
    with open(os.path.join(os.path.dirname(__file__), "..", "..", "docs", "format.md")) as f:
        doc = f.read()
    section = doc[doc.index("## Mirror operations log"):]
    header_hex = re.search(r"header: `([0-9a-f ]+)`", section).group(1).replace(" ", "")
    record_hex = re.search(r"record: `([0-9a-f ]+)`", section).group(1).replace(" ", "")
    assert encode_header(1).hex() == header_hex
    assert encode_record([1, 1, 1000, "WRITE", b"\x82a"]).hex() == record_hex
