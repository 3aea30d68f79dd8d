"""Murmur3Partitioner tokens: pinned vectors and cassandra-driver's murmur3 as an oracle."""
from hypothesis import given, strategies as st

from engine.token import MAX_TOKEN, MIN_TOKEN, cassandra_murmur3_x64_128, token, token_c, token_python


def test_vectors():
    assert token is token_c  # cassandra-driver ships its C murmur3 (cassandra.cmurmur3)
    for tok in (token, token_python):
        assert tok(b"\x00\x00\x00\x01") == -4069959284402364209   # int 1
        assert tok(b"hello") == -3758069500696749310
        assert tok(b"\xff") == -4442228696663692417               # sign-extension quirk
        assert tok(b"") == MIN_TOKEN                               # the empty key is the ring minimum


def test_pure_python_port_agrees_with_the_fast_path():
    for key in (b"a", b"hello world!", b"user000000000001", bytes(range(40))):
        assert cassandra_murmur3_x64_128(key)[0] == token(key)


@given(st.binary(min_size=1, max_size=64))
def test_matches_cassandra_driver(key):
    from cassandra.cmurmur3 import murmur3
    assert token(key) == token_python(key) == murmur3(key)
    assert MIN_TOKEN < token(key) <= MAX_TOKEN
