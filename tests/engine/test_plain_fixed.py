"""plain_rows.fixed_values: a one-column run whose payloads share one byte layout gives its values
without unpacking, exactly the values unpacking finds; any other stream gives None (the caller then
unpacks it, and declines what unpacking declines). plain_rows gives simple_row's dicts either way."""
import msgpack
import pytest

from engine.plain_rows import fixed_values, plain_rows
from engine.results import column_converters, simple_row
from engine.store import Store


def _stream(rows) -> tuple[bytes, int]:
    payloads = [msgpack.packb(list(r), use_bin_type=True) for r in rows]
    return b"".join(payloads), len(payloads)


def _unpacked_values(stream: bytes, cid: int) -> list:
    u = msgpack.Unpacker(use_list=False)
    u.feed(stream)
    return [v for _, c, v in u if c == cid]


@pytest.mark.parametrize("stamps, size", [
    ([1765000000000000 + 7 * i for i in range(9)], 100),   # uint64 stamps, bin8
    ([-200000 - 100000 * i for i in range(9)], 100),       # negative: int32
    ([2 ** 40 + i for i in range(9)], 300),                 # uint64, bin16
    ([3] * 9, 0),                                           # one fixint stamp, empty values
    ([0xABCD] * 4, 255),                                    # uint16, the longest bin8
])
def test_one_layout_gives_what_unpacking_gives(stamps, size):
    rows = [(ts, 5, bytes([i]) * size) for i, ts in enumerate(stamps)]
    stream, n = _stream(rows)
    assert fixed_values(stream, n, 5) == _unpacked_values(stream, 5) == [r[2] for r in rows]


def test_any_other_stream_is_left_to_unpacking():
    ok = [(1765000000000000 + i, 5, bytes([i]) * 10) for i in range(4)]
    stream, n = _stream(ok)
    assert fixed_values(stream, n, 5) is not None
    assert fixed_values(stream, n, 6) is None                                     # another column
    assert fixed_values(stream + b"\x01", n, 5) is None                           # trailing byte
    assert fixed_values(stream[:-1], n, 5) is None                                # cut short
    each = b"".join(msgpack.packb(list(r)) + b"\x01" for r in ok)
    assert fixed_values(each, n, 5) is None                                       # a byte after each
    assert fixed_values(stream, n + 1, 5) is None                                 # one object fewer
    assert fixed_values(_stream(ok[:3] + [(-(2 ** 40), 5, b"x" * 10)])[0], n, 5) is None  # uint64 and int64
    assert fixed_values(_stream(ok[:3] + [(ok[3][0], 7, b"x" * 10)])[0], n, 5) is None    # one other id
    assert fixed_values(_stream(ok[:3] + [(1.5, 5, b"x" * 10)])[0], n, 5) is None         # not an int
    assert fixed_values(_stream(ok[:3] + [(ok[3][0], 5, "x" * 10)])[0], n, 5) is None     # a str value
    assert fixed_values(_stream([(1, 5, b"ab"), (1, 5, b"abcd"), (1, 5, b"ab")])[0], 3, 5) is None
    assert fixed_values(_stream([(ok[0][0], 200, b"x")] * 3)[0], 3, 200) is None  # id not a fixint
    assert fixed_values(_stream([(1, 5, b"x" * 70000)] * 2)[0], 2, 5) is None      # bin32
    assert fixed_values(_stream([(1, 5, b"x", 6, b"y")] * 2)[0], 2, 5) is None    # two columns
    assert fixed_values(b"", 0, 5) is None


def test_plain_rows_of_one_layout_are_simple_rows(tmp_path):
    s = Store.open(str(tmp_path), background=False)
    try:
        s.create_keyspace("ks")
        s.create_table("ks", "t", {"k": "blob", "v": "text"}, primary_key="k")
        s.create_table("ks", "u", {"k": "int", "v": "blob"}, primary_key="k")
        for name, keys, values in (("t", [b"a", b"b", b"c"], [b"xyzab", b"\xc3\xa9t\xc3\xa9", b"abc\x00d"]),
                                   ("u", [(i).to_bytes(4, "big") for i in (1, 2, 3)], [b"1\x00", b"22", b"\x003"])):
            t = s.table("ks", name)
            conv = column_converters(t)
            cid = next(i for i, c in t.by_id.items() if c.name == "v")
            payloads = [msgpack.packb([1765000000000000 + i, cid, v]) for i, v in enumerate(values)]
            assert fixed_values(b"".join(payloads), 3, cid) is not None
            blob_key = "k" if name == "t" else None
            expected = [simple_row(p, {"k": k} if blob_key else {"k": int.from_bytes(k, "big")}, conv)
                        for k, p in zip(keys, payloads)]
            assert plain_rows(t, conv, blob_key, keys, payloads) == expected
            assert expected[0]["v"] == ("xyzab" if name == "t" else b"1\x00")
    finally:
        s.close()
