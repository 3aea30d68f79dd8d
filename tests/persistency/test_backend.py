"""The store boundary: both backends implement every Backend method, with the same parameters;
the options every backend checks the same way; CassandraConfig refuses what no backend takes."""
import inspect

import pytest

from engine.errors import InvalidRequest
from persistency.backend import LEVELS, Backend, check_options
from persistency.config import CassandraConfig
from persistency.cql_backend import CqlBackend
from persistency.native_backend import DynatableClient


def protocol_methods(cls) -> dict[str, inspect.Signature]:
    return {name: inspect.signature(fn) for name, fn in vars(cls).items()
            if callable(fn) and not name.startswith("_")}


@pytest.mark.parametrize("cls", [DynatableClient, CqlBackend])
def test_each_backend_is_a_backend(cls):
    wanted = protocol_methods(Backend)
    assert len(wanted) >= 15
    for name, signature in wanted.items():
        got = getattr(cls, name, None)
        assert got is not None, f"{cls.__name__} has no {name}"
        assert list(inspect.signature(got).parameters) == list(signature.parameters), name


def test_configuration_in_gigaspaces_names():
    c = CassandraConfig(" a, b,,c ", "shop", read_consistency_level="local_quorum")
    assert c.host_list() == ("a", "b", "c") and c.backend == "cql" and c.port is None
    assert CassandraConfig(("h:9100",), "ks", backend="native").host_list() == ("h:9100",)
    for kw, match in (({"hosts": " , "}, "hosts must name"), ({"keyspace_name": ""}, "keyspace_name"),
                      ({"port": 0}, "port must be"), ({"backend": "thrift"}, "backend must be"),
                      ({"username": "u"}, "both username and password"), ({"max_in_flight": 0}, "max_in_flight"),
                      ({"read_consistency_level": "ANY"}, "ANY is not allowed"),
                      ({"column_family_gc_grace_seconds": -1}, "gc_grace_seconds")):
        with pytest.raises(InvalidRequest, match=match):
            CassandraConfig(**{"hosts": "a", "keyspace_name": "ks", **kw})


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
