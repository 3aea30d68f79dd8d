"""Serializers: fixed encodings by declared type, and the tagged dynamic serializer's exact round trip."""
import dataclasses
import datetime as dt
import decimal
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from persistency.descriptor import SpaceDocument
from persistency.dynamic_serializer import DynamicPropertyValueSerializer
from persistency.serializer import (
    SerializationError,
    decode_fixed,
    encode_fixed,
    register_class,
)

dyn = DynamicPropertyValueSerializer()


@register_class
@dataclasses.dataclass
class Pojo:
    name: str = None
    age: int = None


@dataclasses.dataclass
class Unregistered:
    x: int = 1


def test_fixed_encodings_match_the_original_widths():
    assert encode_fixed("int", 1) == b"\x00\x00\x00\x01"
    assert encode_fixed("long", -1) == b"\xff" * 8
    assert encode_fixed("boolean", True) == b"\x01"
    assert encode_fixed("float", 1.5) == b"\x3f\xc0\x00\x00"
    assert encode_fixed("double", 1.5) == b"\x3f\xf8" + b"\x00" * 6
    assert encode_fixed("bigint", 128) == b"\x00\x80"
    assert encode_fixed("decimal", decimal.Decimal("1.25")) == b"\x00\x00\x00\x02\x7d"
    assert encode_fixed("string", "é") == "é".encode()
    u = uuid.uuid4()
    assert encode_fixed("uuid", u) == u.bytes


@pytest.mark.parametrize("type_name,value,word", [
    ("int", 2 ** 31, "out of range"), ("long", -(2 ** 63) - 1, "out of range"), ("int", "1", "needs an int"),
    ("boolean", 1, "needs a bool"), ("float", 1e39, "out of range"), ("string", b"x", "needs a str"),
    ("decimal", decimal.Decimal("NaN"), "not finite"), ("uuid", "x", "uuid"),
])
def test_bad_fixed_values_are_clear_errors(type_name, value, word):
    with pytest.raises(SerializationError, match=word):
        encode_fixed(type_name, value)


VALUES = [
    "a", "x" * 131_070, True, False, 3333, -1, 2 ** 80, -(2 ** 70), 3434.6, 123.5, float("inf"),
    b"\x7b", bytearray(b"ab"), uuid.UUID(int=5), dt.datetime(1970, 1, 1, 0, 0, 1, 234000),
    dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.timezone(dt.timedelta(hours=2))),
    decimal.Decimal("-12.500"), decimal.Decimal("1E+5"), [1, "a", None], (1, (2, 3)), {1, 2}, frozenset({"x"}),
    {"k": [1.0], 2: b"v"}, Pojo("n", 3), SpaceDocument("T", {"a": 1, "b": Pojo()}), None,
]


@pytest.mark.parametrize("value", VALUES, ids=lambda v: type(v).__name__)
def test_dynamic_round_trip_keeps_the_exact_type(value):
    back = dyn.from_bytes(dyn.to_bytes(value))
    expected = bytes(value) if isinstance(value, bytearray) else value
    assert back == expected and type(back) is type(expected)


def test_dynamic_tags_are_the_originals_where_a_python_type_matches():
    assert dyn.to_bytes("a")[0] == 0x82 and dyn.to_bytes(True)[0] == 0x83 and dyn.to_bytes(1)[0] == 0x85
    assert dyn.to_bytes(1.0)[0] == 0x87 and dyn.to_bytes(uuid.UUID(int=1))[0] == 0x89
    assert dyn.to_bytes(b"x") == b"\x8d\x00\x00\x00\x01x" and dyn.to_bytes(2 ** 64)[0] == 0x8B
    assert dyn.from_bytes(b"") is None


def test_unregistered_class_is_a_write_time_error_and_unknown_tag_a_read_error():
    with pytest.raises(SerializationError, match="register_class"):
        dyn.to_bytes(Unregistered())
    with pytest.raises(SerializationError, match="cannot serialize"):
        dyn.to_bytes(object())
    with pytest.raises(SerializationError, match="unknown dynamic value tag"):
        dyn.from_bytes(b"\x01abc")


def test_unknown_class_name_read_back_is_an_error_not_a_document():
    data = dyn.to_bytes(Pojo("a", 1)).replace(b"Pojo", b"Pojx")
    with pytest.raises(SerializationError, match="not registered"):
        dyn.from_bytes(data)


def test_equal_sets_encode_equally():
    assert dyn.to_bytes({3, 1, 2}) == dyn.to_bytes({2, 3, 1})


scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(),
                    st.binary(), st.uuids(), st.decimals(allow_nan=False, allow_infinity=False),
                    st.datetimes())
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.tuples(inner, inner),
    st.dictionaries(st.text(max_size=5), inner, max_size=4)), max_leaves=12)


@given(values)
def test_dynamic_round_trip_property(value):
    assert dyn.from_bytes(dyn.to_bytes(value)) == value


@given(st.sampled_from(["int", "long", "bigint"]), st.integers(-(2 ** 31), 2 ** 31 - 1))
def test_fixed_integers_round_trip(type_name, n):
    assert decode_fixed(type_name, encode_fixed(type_name, n)) == n
