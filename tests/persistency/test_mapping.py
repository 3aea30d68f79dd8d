"""Pure mapping rules (the original's section 2.5): flattening, markers, stubs, nulls, ids, read order."""
import dataclasses
import datetime as dt
import decimal
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from persistency.descriptor import IndexType, SpaceDocument, SpaceTypeDescriptor
from persistency.mapping import (
    ColumnFamilyMetadata,
    DefaultFlattenedPropertiesFilter,
    Mapper,
    MappingError,
    PropertyContext,
    build_metadata,
    key_column_name,
)
from persistency.serializer import register_class


@register_class
@dataclasses.dataclass
class Address:
    street: str = None
    number: int = None


@register_class
@dataclasses.dataclass
class Person:
    name: str = None
    address: Address = None


@register_class
@dataclasses.dataclass
class Chain:
    value: int = None
    next: "Chain" = None


class HarnessFilter:
    """The original tests' filter: flatten up to level 10, dynamic values too."""

    def should_flatten(self, ctx: PropertyContext) -> bool:
        return ctx.current_nesting_level <= 10


def descriptor(**fixed):
    return SpaceTypeDescriptor("com.example.Thing", "id", fixed_properties={"id": "long", **fixed},
                               indexes={"name": IndexType.BASIC, "id": IndexType.BASIC, "x": IndexType.NONE})


def mapper(desc, flatten=None):
    flt = flatten or DefaultFlattenedPropertiesFilter()
    return Mapper(build_metadata(desc, flt, "com_example_Thing"), flatten_filter=flt)


def round_trip(m, doc):
    id_value, cols = m.to_columns(doc)
    return cols, m.from_columns(id_value, cols.items())


def test_fixed_leaves_and_flattened_dataclass():
    m = mapper(descriptor(name="string", person=Person, weight="float", when="datetime"))
    assert m.meta.leaves == {"name": "string", "person.name": "string", "person.address.street": "string",
                             "person.address.number": "bigint", "weight": "float", "when": "datetime"}
    assert m.meta.nodes == {"person": Person.__module__ + ".Person",
                            "person.address": Address.__module__ + ".Address"}
    assert m.meta.indexes == {"name"}   # NONE and the id are never indexed
    doc = SpaceDocument("com.example.Thing", {"id": 7, "name": "n", "person": Person("p", Address("s", 1)),
                                              "weight": 1.5, "when": dt.datetime(2020, 1, 1), "gone": None})
    cols, back = round_trip(m, doc)
    assert set(cols) == {"name", "person.name", "person.address.street", "person.address.number", "weight", "when"}
    assert "id" not in cols and "gone" not in cols   # the id is the row key; nulls are never written
    doc.properties.pop("gone")
    assert back == doc


def test_all_null_flattened_object_is_a_stub_and_null_object_is_absent():
    m = mapper(descriptor(person=Person))
    cols, back = round_trip(m, SpaceDocument("com.example.Thing", {"id": 1, "person": Person()}))
    assert list(cols) == ["person"] and back["person"] == Person()
    cols, back = round_trip(m, SpaceDocument("com.example.Thing", {"id": 1, "person": Person("a", Address())}))
    assert "person.address" in cols and back["person"] == Person("a", Address())
    cols, back = round_trip(m, SpaceDocument("com.example.Thing", {"id": 1, "person": None}))
    assert cols == {} and "person" not in back.properties


def test_id_only_entry_has_no_columns_and_missing_id_is_an_error():
    m = mapper(descriptor())
    assert m.to_columns(SpaceDocument("com.example.Thing", {"id": 1}))[1] == {}
    with pytest.raises(MappingError, match="missing id property value"):
        m.to_columns(SpaceDocument("com.example.Thing", {"name": "x"}))


def test_dynamic_properties_are_one_column_each_with_the_default_filter():
    m = mapper(descriptor())
    doc = SpaceDocument("com.example.Thing", {"id": 1, "i": 3333, "d": dt.datetime(1970, 1, 1, 0, 0, 1),
                                              "f": 3434.6, "b": True, "raw": b"\x7b", "p": Person("x"),
                                              "sub": SpaceDocument("Sub", {"a": 1})})
    cols, back = round_trip(m, doc)
    assert set(cols) == {"i", "d", "f", "b", "raw", "p", "sub"}
    assert back == doc and type(back["p"]) is Person and type(back["sub"]) is SpaceDocument


def test_dynamic_flattening_writes_markers_and_dotted_children():
    m = mapper(descriptor(), HarnessFilter())
    doc = SpaceDocument("com.example.Thing", {"id": 1, "p": Person("x", Address("s")),
                                              "sub": SpaceDocument("Sub", {"a": 1, "inner": SpaceDocument("In", {})})})
    cols, back = round_trip(m, doc)
    dyn = m.dynamic
    assert dyn.from_bytes(cols["p"]) == "__pe:" + Person.__module__ + ".Person"
    assert dyn.from_bytes(cols["sub"]) == "__sd:Sub" and dyn.from_bytes(cols["sub.inner"]) == "__sd:In"
    assert {"p.name", "p.address", "p.address.street", "sub.a"} <= set(cols)
    assert back == doc


def test_document_valued_fixed_property_is_dynamic_and_pojo_arriving_as_document_is_converted():
    m = mapper(descriptor(extra=SpaceDocument, person=Person))
    assert "extra" not in m.meta.leaves
    doc = SpaceDocument("com.example.Thing", {"id": 2, "extra": SpaceDocument("E", {"k": 1}),
                                              "person": SpaceDocument("ignored", {"name": "n"})})
    _, back = round_trip(m, doc)
    assert back["extra"] == SpaceDocument("E", {"k": 1}) and back["person"] == Person("n")


def test_nesting_stops_at_level_10_and_the_rest_is_one_blob():
    m = mapper(descriptor(chain=Chain))
    depth = max(p.count(".") for p in m.meta.nodes) + 1
    assert depth == 10 and "chain" + ".next" * 10 in m.meta.leaves
    chain = None
    for i in range(15):
        chain = Chain(i, chain)
    _, back = round_trip(m, SpaceDocument("com.example.Thing", {"id": 1, "chain": chain}))
    assert back["chain"] == chain


def test_read_path_rejects_orphan_children_and_bad_names():
    m = mapper(descriptor())
    with pytest.raises(MappingError, match="Could not find value parent node"):
        m.from_columns(1, [("missing.child", m.dynamic.to_bytes(1))])
    with pytest.raises(MappingError, match="contains '.'"):
        m.to_columns(SpaceDocument("com.example.Thing", {"id": 1, "a.b": 1}))
    with pytest.raises(MappingError, match="reserved"):
        m.to_columns(SpaceDocument("com.example.Thing", {"id": 1, "s": "__sd:x"}))
    with pytest.raises(MappingError, match="out of range"):
        mapper(descriptor(n="int")).to_columns(SpaceDocument("com.example.Thing", {"id": 1, "n": 2 ** 40}))


def test_keys_typed_or_blob():
    assert key_column_name("keyColumn") == "keyColumn" and key_column_name("value") == "key"
    assert key_column_name("my-id") == "key" and key_column_name("_x") == "key"
    m = mapper(SpaceTypeDescriptor("T", "id", fixed_properties={"id": Person}))
    stored = m.key_to_store(Person("a", Address("b", 2)))
    assert isinstance(stored, bytes) and m.key_from_store(stored) == Person("a", Address("b", 2))
    m = mapper(SpaceTypeDescriptor("T", "id", fixed_properties={"id": "uuid"}))
    assert m.meta.key_cql_type == "uuid" and m.key_to_store(uuid.UUID(int=1)) == uuid.UUID(int=1)
    m = mapper(SpaceTypeDescriptor("T", "id"))   # an undeclared id: a blob of the dynamic encoding
    assert m.key_from_store(m.key_to_store(12)) == 12


def test_metadata_round_trips_through_its_dict():
    desc = SpaceTypeDescriptor("com.x.D", "id", routing_property="r", super_type_name="com.x.Base",
                               fixed_properties={"id": "uuid", "p": Person, "d": SpaceDocument, "n": "decimal"},
                               indexes={"p.name": IndexType.EXTENDED, "dyn": IndexType.BASIC, "n": IndexType.NONE},
                               auto_generate_id=True, supports_optimistic_locking=True, fifo_support="ALL",
                               fifo_grouping_property="p.name", fifo_grouping_indexes=("n",), storage_type="BINARY",
                               document_wrapper_class="W", object_class="com.x.D", replicable=False)
    meta = build_metadata(desc, DefaultFlattenedPropertiesFilter(), "com_x_D")
    again = ColumnFamilyMetadata.from_dict(meta.to_dict())
    assert again == meta and again.descriptor == desc
    with pytest.raises(MappingError, match="version"):
        ColumnFamilyMetadata.from_dict({**meta.to_dict(), "version": 99})


flat_values = st.one_of(st.integers(), st.text(max_size=20), st.booleans(), st.floats(allow_nan=False),
                        st.binary(max_size=10), st.decimals(allow_nan=False, allow_infinity=False))
names = st.from_regex(r"[a-z][a-zA-Z0-9_]{0,8}", fullmatch=True).filter(lambda n: n != "id")


@given(st.dictionaries(names, flat_values | st.builds(SpaceDocument, st.just("Sub"),
                                                         st.dictionaries(names, flat_values, max_size=3)),
                       max_size=6), st.booleans())
def test_round_trip_property(props, flatten_dynamic):
    m = mapper(SpaceTypeDescriptor("T", "id", fixed_properties={"id": "long"}),
               HarnessFilter() if flatten_dynamic else None)
    doc = SpaceDocument("T", {"id": 1, **props})
    _, back = round_trip(m, doc)
    assert back == doc


def test_decimal_fixed_round_trip():
    m = mapper(descriptor(n="decimal", big="bigint", u="uuid"))
    doc = SpaceDocument("com.example.Thing", {"id": 1, "n": decimal.Decimal("-0.001"), "big": 2 ** 100,
                                              "u": uuid.UUID(int=3)})
    assert round_trip(m, doc)[1] == doc
