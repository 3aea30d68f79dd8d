"""The default column-family name converter: the original's worked examples and its contract."""
from hypothesis import given
from hypothesis import strategies as st

from persistency.name_converter import DefaultColumnFamilyNameConverter

convert = DefaultColumnFamilyNameConverter().to_column_family_name
LONG = ("com.gigaspaces.ridiculously.long.type.name.that.would.cassandra.to.complain.on.a.windows.machine."
        "if.we.were.using.naive.name.conversion.IAmHereForTheSolePurposeOfBeingRidiculouslyLong")


def test_worked_examples():
    assert convert("TypeName") == "TypeName"
    assert convert("com.example.data.Person") == "com_example_data_Person"
    assert convert("com.a.Outer$Inner") == "com_a_Outer_Inner"
    assert convert("a$b") == "a_b" == convert("a.b") == convert("a_b")
    assert convert("x" * 60) == "x" * 42 + "119800"
    assert len(LONG) == 183
    assert convert(LONG) == "IAmHereForTheSolePurposeOfBeingRidiculousl6c7b36"
    assert convert(None) is None


def test_length_boundaries():
    assert convert("y" * 48) == "y" * 48
    forty_nine = convert("y" * 49)
    assert len(forty_nine) == 48 and forty_nine.startswith("y" * 42)
    dotted = "com." + "package." * 7 + "Short"
    assert len(dotted) > 48 and convert(dotted).startswith("Short") and len(convert(dotted)) == 11


def test_underscore_inside_simple_name_splits_and_trailing_empties_drop():
    name = "com." + "a" * 50 + ".My_Type"
    assert convert(name).startswith("Type") and len(convert(name)) == 10
    trailing = "com." + "b" * 50 + ".Tail__"
    assert convert(trailing).startswith("Tail")


@given(st.text(min_size=0, max_size=200))
def test_never_longer_than_48_and_no_dots(name):
    out = convert(name)
    assert len(out) <= 48 and "." not in out and "$" not in out
