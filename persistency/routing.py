"""Routing: which space partition an entry belongs to, and which token range of a type table holds a
partition's share. Pure.

The ring of Murmur3 tokens (Cassandra's, engine/token.py) is cut into `partitions` equal contiguous
ranges; partition i owns the tokens t with `partition_of(t, n) == i`, i.e. `token_range(i, n)` =
(start, end], the form token-range scans take. An entry's routing token is:

* routing on the id (the default): the token of its row key, the very token the cluster places
  the row by, so partition i's share of a type table is exactly the rows in `token_range(i, n)`,
  and an initial load can read only that range;
* routing on another property: the token of that value's dynamic encoding; a partition's share
  is then not a token range (the load reads the table and keeps the entries routed to it).

Invariant: the ranges of 0..n-1 are disjoint and cover every key token; `partition_of` and
`token_range` agree. A None routing value routes by the id (as the space always has).
"""
from __future__ import annotations

from engine.cql_types import serialize
from engine.token import MAX_TOKEN, MIN_TOKEN, token
from persistency.dynamic_serializer import DEFAULT_DYNAMIC
from persistency.mapping import Mapper

RING = 1 << 64


def partition_of(t: int, partitions: int) -> int:
    """The partition (0..partitions-1) owning token `t`."""
    return (t - MIN_TOKEN) * partitions // RING


def token_range(partition: int, partitions: int) -> tuple[int, int]:
    """(start, end]: exactly the key tokens t with partition_of(t, partitions) == partition."""
    assert 0 <= partition < partitions

    def first(i: int) -> int:    # the smallest token of partition i
        return MIN_TOKEN + -(-i * RING // partitions)
    end = MAX_TOKEN if partition == partitions - 1 else first(partition + 1) - 1
    return first(partition) - 1 if partition else MIN_TOKEN, end


def key_token(m: Mapper, id_value) -> int:
    """The cluster's token of the row holding the entry with this id."""
    return token(serialize(m.meta.key_cql_type, m.key_to_store(id_value)))


def routes_by_key(m: Mapper) -> bool:
    d = m.meta.descriptor
    return d.routing == d.id_property


def routing_token(m: Mapper, props: dict) -> int:
    """The token an entry (its properties) routes by (see the module docstring)."""
    d = m.meta.descriptor
    value = props.get(d.routing)
    if value is None or d.routing == d.id_property:
        return key_token(m, props.get(d.id_property))
    return token(DEFAULT_DYNAMIC.to_bytes(value))
