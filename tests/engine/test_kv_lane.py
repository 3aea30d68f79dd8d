"""engine/kv_lane.encode_lane packs a batch lane's payloads and commit-log record exactly as the
general path does (a packb of [ts, column id, value] per payload, of [[table id, key, payload],
...] for the record), on its one-layout matrix path and on its row-by-row path."""
import random

import msgpack
import pytest

from engine import kv_lane
from engine.kv_lane import encode_lane

TID = "00000000-0000-0000-0000-000000000002"


def _general(tid, cid, keys, values, stamps):
    pack = msgpack.Packer(use_bin_type=True).pack
    payloads = [pack([ts, cid, v]) for ts, v in zip(stamps, values)]
    return payloads, pack([[tid, k, p] for k, p in zip(keys, payloads)])


def _rows(n, kw, vw, base=1_765_000_000_000_000, seed=0):
    rng = random.Random(seed)
    keys = [rng.randbytes(kw) for _ in range(n)]
    values = [rng.randbytes(vw) for _ in range(n)]
    return keys, values, [base + 3 * i for i in range(n)]


@pytest.mark.parametrize("n,kw,vw", [(8, 16, 100), (1000, 16, 100), (20, 1, 0), (20, 255, 256),
                                     (9, 256, 65535), (8, 300, 65536), (17, 16, 255), (16, 65535, 1)])
def test_one_layout_rows_take_the_matrix_and_pack_the_general_bytes(monkeypatch, n, kw, vw):
    keys, values, stamps = _rows(n, kw, vw)
    calls = []
    real = kv_lane._encode_fixed
    monkeypatch.setattr(kv_lane, "_encode_fixed", lambda *a: calls.append(1) or real(*a))
    for cid in (1, 127, 128, 300):
        assert encode_lane(TID, cid, keys, values, stamps) == _general(TID, cid, keys, values, stamps)
    assert len(calls) == 4   # every case here took the matrix


@pytest.mark.parametrize("case", ["few", "key_widths", "value_widths", "small_stamp", "stamp_2_32",
                                  "largest_stamp", "equal_sums", "empty"])
def test_every_other_batch_packs_row_by_row_to_the_same_bytes(case):
    keys, values, stamps = _rows(50, 16, 100)
    if case == "few":
        keys, values, stamps = keys[:7], values[:7], stamps[:7]
    elif case == "key_widths":
        keys[10] = b"short"
    elif case == "value_widths":
        values[-1] = b"v" * 300
    elif case == "small_stamp":
        stamps[3] = (1 << 32) - 1          # a uint 32 in msgpack: not the matrix's layout
    elif case == "stamp_2_32":
        stamps = [(1 << 32) + i for i in range(50)]
    elif case == "largest_stamp":
        stamps[-1] = (1 << 64) - 1
    elif case == "equal_sums":              # the same total length, different widths
        values[0], values[1] = b"x" * 99, b"x" * 101
    elif case == "empty":
        keys, values, stamps = [], [], []
    assert encode_lane(TID, 2, keys, values, stamps) == _general(TID, 2, keys, values, stamps)
    payloads, record = encode_lane(TID, 2, keys, values, stamps, record=False)  # a closing lane's rows
    assert payloads == _general(TID, 2, keys, values, stamps)[0]
    assert record in (None, _general(TID, 2, keys, values, stamps)[1])  # the matrix has it for free
