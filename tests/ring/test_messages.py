"""ring/messages.py's value codec: every Python form a CQL column type reads back as travels
between client and node (ext types 1-5) and comes back equal; unknown ext types are refused."""
import datetime
import decimal
import ipaddress
import uuid

import msgpack
import pytest

from engine.errors import InvalidRequest
from ring.messages import ClientRequest, ClientResponse, decode, encode, packb, unpackb


def test_client_values_of_every_engine_type_round_trip():
    row = {"u": uuid.UUID(int=7), "ts": datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc),
           "dec": decimal.Decimal("-1.50"), "d": datetime.date(1, 1, 1), "d2": datetime.date(9999, 12, 31),
           "ip4": ipaddress.ip_address("127.0.0.1"), "ip6": ipaddress.ip_address("2001:db8::ff"),
           "t": 86_400 * 10**9 - 1, "s": -32768, "b": 127, "blob": b"\x00"}
    assert decode(encode(ClientRequest(1, "insert", {"row": row}))).args["row"] == row
    assert decode(encode(ClientResponse(2, [row], None))).result == [row]


@pytest.mark.parametrize("code, data", [(4, b"\x00\x00\x01"), (5, b"\x01\x02\x03"), (9, b"")])
def test_malformed_or_unknown_ext_types_are_refused(code, data):
    with pytest.raises(InvalidRequest, match="ext type"):
        unpackb(msgpack.packb(msgpack.ExtType(code, data)))
    assert unpackb(packb(datetime.date(1970, 1, 2))) == datetime.date(1970, 1, 2)
