"""ring/cql/json_values.py: Cassandra's JSON rendering per type and INSERT JSON's accepted forms."""
from __future__ import annotations

import decimal
import uuid

import pytest

from engine.duration import Duration
from engine.errors import InvalidRequest
from engine.schema import make_table
from ring.cql.json_values import from_json, row_from_json, to_json
from ring.cql.types import parse_type


@pytest.mark.parametrize("type_text, value, rendered", [
    ("int", 5, "5"), ("text", 'a"b', '"a\\"b"'), ("boolean", True, "true"), ("double", float("nan"), "NaN"),
    ("decimal", decimal.Decimal("1.50"), "1.50"), ("blob", b"\x0a\xff", '"0x0aff"'),
    ("timestamp", 1_700_000_000_123, '"2023-11-14 22:13:20.123Z"'),
    ("uuid", uuid.UUID(int=1), '"00000000-0000-0000-0000-000000000001"'),
    ("list<int>", [3, 1], "[3, 1]"), ("set<text>", frozenset({"b", "a"}), '["a", "b"]'),
    ("map<int, text>", {2: "x"}, '{"2": "x"}'), ("map<text, int>", {"k": 1}, '{"k": 1}'),
    ("map<uuid, int>", {uuid.UUID(int=1): 1}, '{"\\"00000000-0000-0000-0000-000000000001\\"": 1}'),
    ("duration", Duration(0, 1, 3_600_000_000_000), '"1d1h"'), ("int", None, "null"),
])
def test_rendering_and_reading_back(type_text, value, rendered):
    import json
    t = parse_type(type_text)
    assert to_json(t, value) == rendered
    if value is not None and type_text not in ("double",):
        back = from_json(t, json.loads(rendered, parse_float=decimal.Decimal), "c")
        if type_text == "timestamp":
            assert back == value
        else:
            assert back == value


def test_insert_json_defaults_and_errors():
    table = make_table("ks", "t", {"k": "int", "v": "int", "w": "text"}, "k")
    assert row_from_json(table, '{"k": 1, "v": "2"}', True) == {"k": 1, "v": 2, "w": None}
    assert row_from_json(table, '{"k": 1}', False) == {"k": 1}
    for bad, message in (('{"k": 1, "x": 1}', "unrecognized column"), ('[1]', "as a map"),
                         ('{"k": "one"}', "k"), ("{", "decode")):
        with pytest.raises(InvalidRequest, match=message):
            row_from_json(table, bad, True)
