"""docs/format.md and the code in step: the manifest, partition payload and record vectors."""
import re
from pathlib import Path

import msgpack

from engine.manifest import Manifest
from engine.mutation import clustering_prefix
from engine.partition import NO_DELETION_TIME, Partition, Row, encode_partition
from engine.schema import make_table

DOC = (Path(__file__).resolve().parents[2] / "docs" / "format.md").read_text()


def vector(name: str) -> bytes:
    m = re.search(rf"<!-- {name}-vector -->\n```\n(.*?)\n```\n<!-- end {name}-vector -->", DOC, re.S)
    assert m, f"docs/format.md lacks the {name} vector"
    return bytes.fromhex(m.group(1).replace(" ", "").replace("\n", ""))


TS = 1_700_000_000_000_000
EXAMPLE = Partition(None, {b"": Row(None, {0: (TS, NO_DELETION_TIME, 0, b""), 1: (TS, NO_DELETION_TIME, 0, b"ada"),
                                           2: (TS + 1, 1_700_000_000, 0, None)})}, [])


def test_partition_payload_vector():
    assert encode_partition(EXAMPLE) == vector("partition")


def test_commit_log_record_payload_vector():
    record = msgpack.packb([["t1", b"\x00\x00\x00\x01", encode_partition(EXAMPLE)]], use_bin_type=True)
    assert record == vector("record")


def test_manifest_vector(tmp_path):
    m = Manifest(str(tmp_path))
    m.next_generation = 3
    m.commit({1: 0, 2: 0}, [])
    assert Path(m.path).read_bytes() == vector("manifest")
    assert Manifest.load(str(tmp_path)).levels == {1: 0, 2: 0}


def test_clustering_example():
    table = make_table("ks", "t", {"p": "int", "a": "int", "b": "text"}, ("p", "a", "b"), {"b": "DESC"})
    assert clustering_prefix(table, (1, "a")) == bytes.fromhex("80000001 9effff")
    assert "`80 00 00 01` `9e ff ff`" in DOC
