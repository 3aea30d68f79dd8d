"""The store boundary: the native backend implements every Backend method, with the same
parameters; the options every backend checks the same way."""
import inspect

import pytest

from engine.errors import InvalidRequest
from persistency.backend import LEVELS, Backend, check_options
from persistency.native_backend import DynatableClient


def protocol_methods(cls) -> dict[str, inspect.Signature]:
    return {name: inspect.signature(fn) for name, fn in vars(cls).items()
            if callable(fn) and not name.startswith("_")}


def test_the_native_backend_is_a_backend():
    wanted = protocol_methods(Backend)
    assert len(wanted) >= 15
    for name, signature in wanted.items():
        got = getattr(DynatableClient, name, None)
        assert got is not None, f"DynatableClient has no {name}"
        assert list(inspect.signature(got).parameters) == list(signature.parameters), name


def test_levels_are_checked_and_upper_cased():
    assert check_options("quorum", "local_one", None) == ("QUORUM", "LOCAL_ONE")
    assert check_options("ONE", "ANY", 0) == ("ONE", "ANY")
    for level in LEVELS:
        check_options("ONE", level, None)


@pytest.mark.parametrize("read,write,gc_grace,match", [
    ("ANY", "QUORUM", None, "read consistency ANY is not allowed"),
    ("SERIAL", "QUORUM", None, "read consistency 'SERIAL' is not one of"),
    ("ONE", "MOST", None, "write consistency 'MOST' is not one of"),
    ("ONE", "ONE", -1, "gc_grace_seconds must be an integer >= 0"),
    ("ONE", "ONE", 1.5, "gc_grace_seconds must be an integer >= 0"),
])
def test_bad_options_are_refused(read, write, gc_grace, match):
    with pytest.raises(InvalidRequest, match=match):
        check_options(read, write, gc_grace)
