"""CQL type codecs: Cassandra serialization round trips; clustering bytes sort like the values."""
import datetime
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
    "smallint": st.integers(-(2**15), 2**15 - 1),
    "tinyint": st.integers(-128, 127),
    "date": st.integers(-(2**31), 2**31 - 1),           # canonical form: days since the epoch
    "time": st.integers(0, cql_types.NANOS_PER_DAY - 1),
    "inet": st.ip_addresses(),
}


def _order_key(cql_type, v):
    if cql_type == "timeuuid":
        return (v.time, v.bytes)
    if cql_type == "uuid":
        return (v.version or 0, v.time, v.bytes) if v.version == 1 else (v.version or 0, 0, v.bytes)
    if cql_type in ("double", "float"):
        return (v, math.copysign(1, v))  # -0.0 sorts before 0.0 in the byte order
    if cql_type == "inet":
        return v.packed                  # Cassandra orders inet by its unsigned bytes
    return v


@pytest.mark.parametrize("cql_type", sorted(VALUES))
@given(data=st.data())
def test_ordered_encoding_preserves_order_and_round_trips(cql_type, data):
    a = data.draw(VALUES[cql_type])
    b = data.draw(VALUES[cql_type])
    ea, eb = cql_types.encode_ordered(cql_type, a), cql_types.encode_ordered(cql_type, b)
    decoded, end = cql_types.decode_ordered(cql_type, ea + b"tail", 0)
    assert (cql_types.validate(cql_type, decoded, "c"), end) == (a, len(ea))
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
    assert cql_types.validate(cql_type, cql_types.deserialize(cql_type, cql_types.serialize(cql_type, v)), "c") == v


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


@pytest.mark.parametrize("cql_type, value, wire", [
    ("smallint", -2, b"\xff\xfe"), ("smallint", 32767, b"\x7f\xff"), ("tinyint", -128, b"\x80"),
    ("date", datetime.date(1970, 1, 1), b"\x80\x00\x00\x00"), ("date", datetime.date(2024, 1, 2), b"\x80\x00\x4d\x0c"),
    ("time", datetime.time(0, 0, 1), b"\x00\x00\x00\x00\x3b\x9a\xca\x00"),
    ("inet", "127.0.0.1", b"\x7f\x00\x00\x01"), ("inet", "::1", b"\x00" * 15 + b"\x01"),
])
def test_new_types_have_cassandras_bytes_and_edges_are_checked(cql_type, value, wire):
    assert cql_types.serialize(cql_type, cql_types.validate(cql_type, value, "c")) == wire
    from cassandra.cqltypes import lookup_casstype  # the driver's own codec as the oracle
    driver = lookup_casstype({"smallint": "ShortType", "tinyint": "ByteType", "date": "SimpleDateType",
                              "time": "TimeType", "inet": "InetAddressType"}[cql_type])
    assert driver.serialize(value if cql_type != "inet" else value, 4) == wire


@pytest.mark.parametrize("cql_type, bad", [
    ("smallint", 2**15), ("tinyint", -129), ("tinyint", True), ("date", 2**31), ("date", "2024-01-02"),
    ("time", -1), ("time", cql_types.NANOS_PER_DAY), ("inet", "300.1.1.1"), ("inet", 7),
])
def test_new_types_refuse_out_of_range_values(cql_type, bad):
    with pytest.raises(InvalidRequest, match="column 'c'"):
        cql_types.validate(cql_type, bad, "c")


def test_a_store_keeps_the_new_types_in_keys_and_cells_in_clustering_order(tmp_path):
    import ipaddress

    from engine.store import Store
    with Store.open(str(tmp_path / "db"), background=False) as s:
        s.create_keyspace("ks")
        s.create_table("ks", "t", {"d": "date", "s": "smallint", "ip": "inet", "tm": "time", "b": "tinyint"},
                       primary_key=(("d", "s"), "ip", "tm"), clustering_order={"tm": "DESC"})
        key = {"d": datetime.date(2024, 1, 2), "s": -32768}
        rows = [("10.0.0.2", 5), ("10.0.0.1", 7), ("10.0.0.1", 9), ("::1", 0)]
        for i, (ip, tm) in enumerate(rows):
            s.insert("ks", "t", {**key, "ip": ip, "tm": tm, "b": i - 128})
        got = [(str(r["ip"]), r["tm"], r["b"]) for r in s.select("ks", "t", key)]
        assert got == [("::1", 0, -125), ("10.0.0.1", 9, -126), ("10.0.0.1", 7, -127), ("10.0.0.2", 5, -128)]
        assert s.get("ks", "t", {**key, "ip": ipaddress.ip_address("10.0.0.2"), "tm": 5})["d"] == key["d"]
        s.flush()
        assert len(s.select("ks", "t", key, start={"ip": "10.0.0.1"}, end={"ip": "10.0.0.1"})) == 2
