"""Issue 15, bug 1: cyclic and shared object graphs. The dynamic serializer encodes references
(format version 2), so a graph round-trips with its identity, through the mapper (flattened to
level 10, the rest one blob) and through the mirror; what cannot be encoded is a
SerializationError naming the path inside the value; version-1 bytes read unchanged."""
from __future__ import annotations

import dataclasses

import pytest

from persistency.descriptor import SpaceDocument, SpaceTypeDescriptor
from persistency.dynamic_serializer import MAX_DEPTH, TAG_REF, DynamicPropertyValueSerializer
from persistency.mapping import DefaultFlattenedPropertiesFilter, Mapper, build_metadata
from persistency.mirror import Mirror
from persistency.operation import OperationType
from persistency.serializer import SerializationError, register_class

dyn = DynamicPropertyValueSerializer()


@register_class
@dataclasses.dataclass(eq=False)
class Node:
    value: int = None
    next: Node = None
    friends: list = None


@dataclasses.dataclass
class Stranger:
    x: int = 1


def ring_of(n: int) -> Node:
    first = node = Node(0)
    for i in range(1, n):
        node.next = Node(i)
        node = node.next
    node.next = first
    return first


def test_a_cycle_round_trips_with_its_identity():
    back = dyn.from_bytes(dyn.to_bytes(ring_of(3)))
    assert [back.value, back.next.value, back.next.next.value] == [0, 1, 2]
    assert back.next.next.next is back
    me = Node(1)
    me.next, me.friends = me, [me, {"self": me}]
    back = dyn.from_bytes(dyn.to_bytes(me))
    assert back.next is back and back.friends[0] is back and back.friends[1]["self"] is back


def test_shared_references_stay_shared_and_cost_one_copy():
    shared = Node(7, friends=["x" * 100])
    data = dyn.to_bytes([shared, shared, {"a": shared}])
    assert data.count(b"x" * 100) == 1 and bytes([TAG_REF]) in data
    a, b, c = dyn.from_bytes(data)
    assert a is b is c["a"] and a.friends == ["x" * 100]
    doc = SpaceDocument("D", {})
    doc.properties["me"] = doc
    again = dyn.from_bytes(dyn.to_bytes([doc]))[0]
    assert again.properties["me"] is again


def test_what_cannot_be_encoded_names_its_path():
    with pytest.raises(SerializationError, match=r"register_class.*\(at \[1\]\.friends\[0\]\.next\)"):
        dyn.to_bytes([1, Node(1, friends=[Node(2, next=Stranger())])])
    with pytest.raises(SerializationError, match=r"cannot serialize a builtins.object \(at \['k'\]\)"):
        dyn.to_bytes({"k": object()})
    loop: list = []
    loop.append((loop,))   # a cycle through a list (and a tuple inside it) is fine
    back = dyn.from_bytes(dyn.to_bytes(loop))
    assert back[0][0] is back
    cyclic_tuple = (Node(1),)
    cyclic_tuple[0].friends = [cyclic_tuple]
    with pytest.raises(SerializationError, match=r"cycle through a tuple cannot be encoded \(at \[0\]\.friends\[0\]\)"):
        dyn.to_bytes(cyclic_tuple)


def test_deep_chains_are_an_error_not_a_recursion_error():
    chain = None
    for i in range(MAX_DEPTH + 10):
        chain = Node(i, chain)
    with pytest.raises(SerializationError, match=f"nested deeper than {MAX_DEPTH}"):
        dyn.to_bytes(chain)
    ok = None
    for i in range(MAX_DEPTH // 2):
        ok = Node(i, ok)
    assert dyn.from_bytes(dyn.to_bytes(ok)).value == MAX_DEPTH // 2 - 1


def test_version_1_bytes_read_unchanged():
    # written before references existed: [Node(1, None, ["a"]), {"k": (1, None)}]
    v1 = bytes.fromhex(
        "90 92 c4 59 95 92 d9 28 74 65 73 74 73 2e 70 65 72 73 69 73 74 65 6e 63 79 2e 74 65 73 74 5f 6f "
        "62 6a 65 63 74 5f 67 72 61 70 68 2e 4e 6f 64 65 93 92 a5 76 61 6c 75 65 c4 09 85 00 00 00 00 00 "
        "00 00 01 92 a4 6e 65 78 74 c4 01 97 92 a7 66 72 69 65 6e 64 73 c4 06 90 91 c4 02 82 61 c4 19 94 "
        "91 92 c4 02 82 6b c4 10 91 92 c4 09 85 00 00 00 00 00 00 00 01 c4 01 97")
    value = dyn.from_bytes(v1)
    assert value[0].value == 1 and value[0].next is None and value[0].friends == ["a"]
    assert value[1] == {"k": (1, None)}
    assert dyn.to_bytes(value) == v1   # acyclic, unshared values: the same bytes as version 1


def test_cyclic_fixed_property_through_the_mapper_keeps_the_cycle_in_the_blob():
    desc = SpaceTypeDescriptor("Graph", "id", fixed_properties={"id": "long", "root": Node})
    flt = DefaultFlattenedPropertiesFilter()
    m = Mapper(build_metadata(desc, flt, "Graph"), flatten_filter=flt)
    id_value, cols = m.to_columns(SpaceDocument("Graph", {"id": 1, "root": ring_of(3)}))
    root = m.from_columns(id_value, cols.items())["root"]
    node = root
    for i in range(30):   # flattened down to level 10, then the blob holds the cycle
        assert node.value == i % 3
        node = node.next


def test_the_mirror_accepts_a_cyclic_entry(tmp_path):
    class Recording:
        def __init__(self):
            self.seen = []

        def on_operations_batch_synchronization(self, batch):
            self.seen.extend(op.document for op in batch.operations)

        def after_operations_batch_synchronization(self, batch):
            pass
    ep = Recording()
    mirror = Mirror(ep, str(tmp_path), batch_size=1, interval_ms=10)
    doc = SpaceDocument("Graph", {"id": 1, "root": ring_of(2)})
    mirror.enqueue(OperationType.WRITE, doc)
    assert mirror.close(timeout_s=10)
    root = ep.seen[0]["root"]
    assert root.next.next is root


def test_format_doc_example_matches_the_code():
    import pathlib
    doc = (pathlib.Path(__file__).parents[2] / "docs" / "format.md").read_text()
    loop: list = []
    loop.append(loop)
    assert f"`l = []; l.append(l)` encodes as `{dyn.to_bytes(loop).hex(' ')}`" in doc
