"""engine/duration.py: the vint serialization against cassandra-driver's, literals, and the sign rule."""
from __future__ import annotations

import pytest
from cassandra.cqltypes import DurationType
from hypothesis import given, settings, strategies as st

from engine import duration
from engine.errors import InvalidRequest


@settings(max_examples=200, deadline=None)
@given(months=st.integers(0, 2**31 - 1), days=st.integers(0, 2**31 - 1), nanos=st.integers(0, 2**63 - 1),
       negative=st.booleans())
def test_duration_vints_round_trip_and_match_the_driver(months, days, nanos, negative):
    sign = -1 if negative else 1
    d = duration.Duration(sign * months, sign * days, sign * nanos)
    raw = duration.serialize(d)
    assert duration.deserialize(raw) == d
    got = DurationType.deserialize(raw, 5)
    assert (got.months, got.days, got.nanoseconds) == d
    assert duration.parse(duration.to_string(d)) == d


def test_literals_and_the_sign_rule():
    assert duration.parse("1y2mo3w4d5h6m7s8ms9us10ns") == (14, 25, 18367008009010)
    assert duration.parse("P1Y2M3DT4H5M6S") == (14, 3, 14706 * 10**9)
    assert duration.parse("P2W") == (0, 14, 0) and duration.parse("-3h") == (0, 0, -3 * 3600 * 10**9)
    for bad in ("1x", "", "h1", "P"):
        with pytest.raises(InvalidRequest):
            duration.parse(bad)
    with pytest.raises(InvalidRequest, match="same sign"):
        duration.validate(duration.Duration(1, -1, 0), "d")
