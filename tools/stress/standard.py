"""cassandra-stress's standard workload: `write`, `read` and `mixed` on keyspace1.standard1.

Table (created on first use, as cassandra-stress does): `standard1 (key blob PRIMARY KEY, C0 blob,
..., C{k-1} blob)` with k the largest `-col n=` value, in keyspace `keyspace1` (or
`-schema keyspace=`), SimpleStrategy with `-schema replication(factor=N)` (default 1).

- the key of population index i is the 10 ASCII digits of i (`b"0000000042"`), so the same
  index names the same partition in every run and every tool;
- a write inserts `-col n=` columns C0.. of `-col size=` random bytes each (slices of one
  seeded pool, so values are incompressible and cheap to make);
- a read is a `get` of the whole row; a row that is not there is counted as NOT_FOUND, not as an
  error (cassandra-stress reads before a write would too);
- `mixed` picks write or read per operation by the `ratio(...)` weights.
"""
from __future__ import annotations

import random

from tools.stress.schema_setup import ensure_table

POOL_BYTES = 1 << 20


def key_of(index: int) -> bytes:
    return b"%010d" % index


class StandardWorkload:
    def __init__(self, settings, seed: int | None = None):
        self.s = settings
        self.session = None
        self.recorder = None
        self.columns = [f"C{i}" for i in range(settings.col_count.high)]
        rng = random.Random(seed)
        self.pool = rng.randbytes(POOL_BYTES + settings.col_size.high)
        if settings.command == "mixed":
            kinds = [k for k in ("write", "read") if settings.ratio.get(k)]
            self.kinds = tuple(k.upper() for k in kinds)
            self.weights = [settings.ratio[k] for k in kinds]
        else:
            self.kinds = (settings.command.upper(),)
            self.weights = [1]

    async def setup(self, session) -> None:
        self.session = session
        columns = {"key": "blob", **{c: "blob" for c in self.columns}}
        await ensure_table(session, self.s.keyspace, self.s.table, columns, "key", self.s.replication_factor)

    def _value(self, rng) -> bytes:
        size = self.s.col_size.next(rng)
        off = rng.randrange(POOL_BYTES)
        return self.pool[off:off + size]

    def next_op(self, rng):
        kind = self.kinds[0] if len(self.kinds) == 1 else rng.choices(self.kinds, self.weights)[0]
        key = key_of(self.s.population.next(rng))
        if kind == "WRITE":
            n = self.s.col_count.next(rng)
            row = {"key": key}
            for c in self.columns[:n]:
                row[c] = self._value(rng)
            return kind, lambda: self._write(row)
        return kind, lambda: self._read(key)

    async def _write(self, row) -> str:
        await self.session.insert(self.s.table, row, consistency=self.s.consistency, keyspace=self.s.keyspace)
        return "OK"

    async def _read(self, key) -> str:
        row = await self.session.get(self.s.table, {"key": key}, consistency=self.s.consistency,
                                     keyspace=self.s.keyspace)
        return "OK" if row is not None else "NOT_FOUND"


