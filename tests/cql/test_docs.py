"""docs/cql.md lists every opcode, error code, result kind and type option the code uses."""
from pathlib import Path

from ring.cql.frame import Opcode, compress_body, encode_frame
from ring.cql.responses import ErrorCode
from ring.cql.segment import encode_segments
from ring.cql.types import OPTION_IDS

DOC = (Path(__file__).parents[2] / "docs" / "cql.md").read_text()


def test_opcodes_error_codes_and_type_ids_are_documented():
    for op in Opcode:
        assert f"{op.name} 0x{op.value:02X}" in DOC, op
    for code in ErrorCode:
        assert f"| 0x{code.value:04X} |" in DOC, code
    for name, code in OPTION_IDS.items():
        assert f"0x{code:02X}" in DOC and name in DOC, name


def test_worked_examples_match_the_code():
    ready = encode_frame(5, 0, 1, 0x02, b"")
    assert ready.hex(" ") in DOC
    segment = encode_segments(ready, False)
    assert f"{segment[:6].hex(' ')} | {segment[6:-4].hex(' ')} | {segment[-4:].hex(' ')}" in DOC
    assert compress_body(b"hello hello hello hello").hex(" ") in DOC


def test_paging_state_example_matches_the_code():
    from ring.cql.paging import PagingState
    state = PagingState(bytes(range(8)), 1, [b"\x00\x00\x00\x02"], 3, b"\x00\x00\x00\x01", 1)
    assert state.encode().hex(" ") in DOC
