"""CQL types: option ids and value bytes cross-checked with cassandra-driver's cqltypes."""
import datetime as dt
import decimal
import io
import ipaddress
import uuid

import pytest
from cassandra.protocol import ResultMessage
from hypothesis import given, strategies as st

from engine.errors import InvalidRequest
from ring.cql.notation import ProtocolException, Reader
from ring.cql.types import CqlType, decode_option, deserialize, encode_option, parse_type, serialize

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)

SCALARS = {
    "int": st.integers(-2**31, 2**31 - 1),
    "bigint": st.integers(-2**63, 2**63 - 1),
    "smallint": st.integers(-2**15, 2**15 - 1),
    "tinyint": st.integers(-128, 127),
    "varint": st.integers(-2**100, 2**100),
    "double": st.floats(allow_nan=False),
    "float": st.floats(width=32, allow_nan=False),
    "decimal": st.decimals(allow_nan=False, allow_infinity=False, places=5, max_value=10**12, min_value=-10**12),
    "text": st.text(max_size=20),
    "ascii": st.text(alphabet=st.characters(max_codepoint=127), max_size=20),
    "blob": st.binary(max_size=20),
    "boolean": st.booleans(),
    "timestamp": st.integers(-2**40, 2**40).map(lambda ms: EPOCH + dt.timedelta(milliseconds=ms)),
    "uuid": st.uuids(),
    "timeuuid": st.uuids(version=1),
    "date": st.dates(),
    "time": st.integers(0, 86_400 * 10**9 - 1),
    "inet": st.one_of(st.ip_addresses(v=4), st.ip_addresses(v=6)),
}
HASHABLE = ["int", "bigint", "text", "blob", "boolean", "uuid", "inet", "date"]


def typed_values():
    scalar = st.sampled_from(sorted(SCALARS)).flatmap(lambda n: st.tuples(st.just(CqlType(n)), SCALARS[n]))
    keyed = st.sampled_from(HASHABLE)
    lists = scalar.flatmap(lambda tv: st.tuples(
        st.just(CqlType("list", (tv[0],))), st.lists(SCALARS[tv[0].name], max_size=4)))
    sets = keyed.flatmap(lambda n: st.tuples(st.just(CqlType("set", (CqlType(n),))),
                                             st.frozensets(SCALARS[n], max_size=4)))
    maps = st.tuples(keyed, st.sampled_from(sorted(SCALARS))).flatmap(lambda kv: st.tuples(
        st.just(CqlType("map", (CqlType(kv[0]), CqlType(kv[1])))),
        st.dictionaries(SCALARS[kv[0]], SCALARS[kv[1]], max_size=4)))
    return st.one_of(scalar, lists, sets, maps)


def driver_type(t: CqlType):
    return ResultMessage.read_type(io.BytesIO(encode_option(t)), {})


def normalize(t: CqlType, value):
    """Our Python form -> the driver's, for comparison."""
    if value is None:
        return None
    if t.name == "timestamp":
        return value.replace(tzinfo=None)
    if t.name == "date":
        from cassandra.util import Date
        return Date(value)
    if t.name == "time":
        from cassandra.util import Time
        return Time(value)
    if t.name == "list":
        return [normalize(t.params[0], v) for v in value]
    if t.name == "set":
        return sorted((normalize(t.params[0], v) for v in value), key=repr)
    if t.name == "map":
        return {normalize(t.params[0], k): normalize(t.params[1], v) for k, v in value.items()}
    return value


def driver_normalize(t: CqlType, value):
    """The driver's Python form -> ours where they differ (inet strings, sorted sets, ordered maps)."""
    if value is None:
        return None
    if t.name == "inet":
        return ipaddress.ip_address(value)
    if t.name == "list":
        return [driver_normalize(t.params[0], v) for v in value]
    if t.name == "set":
        return sorted((driver_normalize(t.params[0], v) for v in value), key=repr)
    if t.name == "map":
        return {driver_normalize(t.params[0], k): driver_normalize(t.params[1], v) for k, v in value.items()}
    return value


@given(typed_values())
def test_values_match_the_driver_both_ways(tv):
    t, value = tv
    ours = serialize(t, value)
    drv = driver_type(t)
    assert driver_normalize(t, drv.deserialize(ours, 4)) == normalize(t, value)
    back = deserialize(t, ours)
    assert back == value or (t.name == "decimal" and back == decimal.Decimal(value))
    if t.name not in ("set", "map", "inet", "date", "time", "timestamp"):
        assert drv.serialize(value, 4) == ours


@given(typed_values())
def test_option_round_trip_and_driver_type_name(tv):
    t = tv[0]
    assert decode_option(Reader(encode_option(t))) == t
    assert parse_type(driver_type(t).cql_parameterized_type()) == t
    assert parse_type(str(t)) == t


def test_type_strings():
    assert str(parse_type("frozen<map<varchar, list<int>>>")) == "frozen<map<text, list<int>>>"
    assert parse_type("tuple<int, text>") == CqlType("tuple", (CqlType("int"), CqlType("text")))
    for bad in ("lisst<int>", "map<int>", "list<int", "int>", "frozen"):
        with pytest.raises(InvalidRequest):
            parse_type(bad)


def test_tuple_and_nested_frozen_collections():
    t = parse_type("tuple<int, text, frozen<list<int>>>")
    raw = serialize(t, (1, None, [2, 3]))
    assert deserialize(t, raw) == (1, None, [2, 3])
    assert driver_type(t).deserialize(raw, 4) == (1, None, [2, 3])
    s = parse_type("set<frozen<list<int>>>")
    assert deserialize(s, serialize(s, [[1], [2, 3]])) == frozenset({(1,), (2, 3)})


def test_empty_and_null_values():
    assert deserialize(CqlType("int"), b"") is None
    assert deserialize(CqlType("text"), b"") == ""
    assert deserialize(CqlType("blob"), None) is None


@pytest.mark.parametrize("t, raw", [
    ("int", b"\x00\x01"), ("bigint", b"\x00"), ("uuid", b"\x00" * 15), ("inet", b"\x01\x02\x03"),
    ("decimal", b"\x00\x01"), ("text", b"\xff\xfe"), ("list<int>", b"\x00\x00\x00\x05"),
    ("map<int, int>", b"\x00\x00\x00\x01\x00\x00\x00\x04\x00\x00\x00\x01"),
    ("list<int>", b"\x00\x00\x00\x01\xff\xff\xff\xff"), ("list<int>", b"\x00\x00\x00\x00\x00"),
])
def test_malformed_values_raise_invalid_request(t, raw):
    with pytest.raises(InvalidRequest):
        deserialize(parse_type(t), raw)


@pytest.mark.parametrize("t, value", [("smallint", 2**15), ("tinyint", -129), ("time", -1), ("inet", "nope"),
                                      ("list<int>", [None]), ("int", "1"), ("date", 2**31)])
def test_out_of_range_values_raise_invalid_request(t, value):
    with pytest.raises(InvalidRequest):
        serialize(parse_type(t), value)


def test_unknown_option_id_is_a_protocol_error():
    with pytest.raises(ProtocolException):
        decode_option(Reader(b"\x00\x99"))
    with pytest.raises(ProtocolException):
        decode_option(Reader(b"\x00\x20" * 40 + b"\x00\x09"))


def test_inet_python_forms():
    t = CqlType("inet")
    assert deserialize(t, serialize(t, "::1")) == ipaddress.ip_address("::1")
    assert serialize(CqlType("time"), dt.time(0, 0, 1)) == (10**9).to_bytes(8, "big")
    assert deserialize(CqlType("date"), (0).to_bytes(4, "big")) == -2**31
    assert deserialize(CqlType("uuid"), uuid.UUID(int=5).bytes) == uuid.UUID(int=5)
