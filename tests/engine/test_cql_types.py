"""CQL type codecs: Cassandra serialization round trips; clustering bytes sort like the values."""
import decimal
import math
import uuid

import pytest
from hypothesis import given, strategies as st

from engine import cql_types
from engine.errors import InvalidRequest

VALUES = {
    "int": st.integers(-(2**31), 2**31 - 1),
    "bigint": st.integers(-(2**63), 2**63 - 1),
    "varint": st.integers(-(2**200), 2**200),
    "double": st.floats(allow_nan=False),
    "float": st.floats(allow_nan=False, width=32),
    "text": st.text(),
    "blob": st.binary(),
    "boolean": st.booleans(),
    "uuid": st.uuids(),
    "timeuuid": st.uuids(version=1),
}


def _order_key(cql_type, v):
    if cql_type == "timeuuid":
        return (v.time, v.bytes)
    if cql_type == "uuid":
        return (v.version or 0, v.time, v.bytes) if v.version == 1 else (v.version or 0, 0, v.bytes)
    if cql_type in ("double", "float"):
        return (v, math.copysign(1, v))  # -0.0 sorts before 0.0 in the byte order
    return v


@pytest.mark.parametrize("cql_type", sorted(VALUES))
@given(data=st.data())
def test_ordered_encoding_preserves_order_and_round_trips(cql_type, data):
    a = data.draw(VALUES[cql_type])
    b = data.draw(VALUES[cql_type])
    ea, eb = cql_types.encode_ordered(cql_type, a), cql_types.encode_ordered(cql_type, b)
    assert cql_types.decode_ordered(cql_type, ea + b"tail", 0) == (a, len(ea))
    ka, kb = _order_key(cql_type, a), _order_key(cql_type, b)
    if ka < kb:
        assert ea < eb
    elif ka > kb:
        assert ea > eb
    # DESC inverts the order and stays decodable
    da, db = cql_types.invert(ea), cql_types.invert(eb)
    if ea != eb:
        assert (da < db) == (ea > eb)
    assert cql_types.component_length(cql_type, da + b"\x00\x00", 0, True) == len(ea)


@pytest.mark.parametrize("cql_type", sorted(VALUES))
@given(data=st.data())
def test_serialization_round_trips(cql_type, data):
    v = data.draw(VALUES[cql_type])
    assert cql_types.deserialize(cql_type, cql_types.serialize(cql_type, v)) == v


def test_cassandra_serialization_vectors():
    assert cql_types.serialize("int", 1) == b"\x00\x00\x00\x01"
    assert cql_types.serialize("varint", 128) == b"\x00\x80"
    assert cql_types.serialize("varint", -1) == b"\xff"
    assert cql_types.serialize("decimal", decimal.Decimal("1.5")) == b"\x00\x00\x00\x01\x0f"
    assert cql_types.serialize_partition_key(["int", "text"], [1, "a"]) == b"\x00\x04\x00\x00\x00\x01\x00\x00\x01a\x00"
    assert cql_types.deserialize_partition_key(["int", "text"], b"\x00\x04\x00\x00\x00\x01\x00\x00\x01a\x00") == [1, "a"]


def test_validation_names_the_column():
    with pytest.raises(InvalidRequest, match="column 'age' is int"):
        cql_types.validate("int", "x", "age")
    with pytest.raises(InvalidRequest, match="out of range"):
        cql_types.validate("int", 2**40, "age")
    with pytest.raises(InvalidRequest, match="not a version 1"):
        cql_types.validate("timeuuid", uuid.uuid4(), "t")
