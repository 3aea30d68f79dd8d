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


def _sample(accepted: tuple):
    """A value of the first declared type of a field (16 bytes, so ballots pass their checks)."""
    samples = {int: 7, str: "s", bytes: b"\x01" * 16, bool: True, list: [1], dict: {"k": 1}, type(None): None,
               object: {"any": 1}}
    return samples[accepted[0]]


def _wrong(accepted: tuple):
    """A value of no declared type: a bool where an int is declared (a bool is not an int here)."""
    if object in accepted:
        return None
    for candidate in (True, 1.5, "s", b"b", [1], {"k": 1}, None, 3):
        kind = type(candidate)
        if kind not in accepted and not (kind is bool and bool in accepted):
            return candidate
    raise AssertionError(accepted)


def test_every_message_round_trips_and_refuses_a_field_of_the_wrong_type():
    """decode's fast path (exact types, slots set directly) accepts and refuses exactly what the
    declared field types say, for every registered message."""
    from ring.message_codec import _REGISTRY, _SHAPES
    checked = 0
    for type_id, cls in sorted(_REGISTRY.items()):
        shape = _SHAPES[cls]
        values = [_sample(accepted) for _, accepted in shape]
        try:
            msg = cls(*values)
        except InvalidRequest:
            continue                    # its own __post_init__ wants more (sizes): covered elsewhere
        assert decode(encode(msg)) == msg
        for i, (name, accepted) in enumerate(shape):
            if object in accepted:
                continue
            bad = list(values)
            bad[i] = _wrong(accepted)
            with pytest.raises(InvalidRequest, match=f"malformed {cls.__name__}: field {name} must be"):
                decode(packb([type_id, *bad]))
            checked += 1
    assert checked > 50


def test_packb_is_safe_across_threads():
    """Concurrent packs (with `default` callbacks, which may switch threads mid-pack) never mix
    their bytes: a guard against a Packer shared between threads (packb makes one per call today)."""
    import threading
    values = [{"u": uuid.UUID(int=i), "d": decimal.Decimal(i), "pad": b"x" * i} for i in range(64)]
    expected = [msgpack.packb(v, default=lambda o: msgpack.ExtType(1, o.bytes) if isinstance(o, uuid.UUID)
                              else msgpack.ExtType(3, str(o).encode()), use_bin_type=True) for v in values]
    bad = []

    def run():
        for _ in range(200):
            for v, want in zip(values, expected):
                if packb(v) != want:
                    bad.append(v)
    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not bad
