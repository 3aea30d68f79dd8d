"""YCSB's core workloads A-F on `ycsb.usertable`, with YCSB's properties, defaults and key choice.

| workload | mix | request distribution |
|---|---|---|
| a (update heavy) | read 0.5, update 0.5 | zipfian |
| b (read mostly) | read 0.95, update 0.05 | zipfian |
| c (read only) | read 1.0 | zipfian |
| d (read latest) | read 0.95, insert 0.05 | latest |
| e (short ranges) | scan 0.95, insert 0.05 | zipfian; scan length uniform 1..maxscanlength (100) |
| f (read-modify-write) | read 0.5, readmodifywrite 0.5 | zipfian |

Defaults as in YCSB's workload files and CoreWorkload: recordcount 1000, operationcount 1000,
fieldcount 10, fieldlength 100 (constant), readallfields true, writeallfields false (an update
writes one random field), insertorder hashed (key = "user" + fnvhash64(keynum)), zeropadding 1.
Any of them can be set with `-p name=value`.

- `load` inserts records insertstart .. insertstart+insertcount-1 (INSERT);
- `run` does operationcount operations: READ (all fields), UPDATE (one field), INSERT (the next
  key of the transaction sequence, acknowledged when done), SCAN (a token-range `scan` from the
  start key's token, page_size = the scan length: what a range scan is on a Murmur3-ordered
  store), READ-MODIFY-WRITE (read all fields, then update one; measured whole, and its read and
  update are also measured as READ and UPDATE, as YCSB does);
- key choice: zipfian = `ScrambledZipfianGenerator(insertstart, insertstart + insertcount +
  2 * operationcount * insertproportion)`, uniform over the loaded records, latest =
  `SkewedLatestGenerator` over the transaction sequence; a draw above the last acknowledged
  insert is drawn again (YCSB's rule, so reads never target keys not yet written).

Table: `usertable (y_id text PRIMARY KEY, field0 text, ..., field{n-1} text)` (YCSB's Cassandra
binding's schema), keyspace `ycsb`, SimpleStrategy with `-schema replication(factor=N)`.
"""
from __future__ import annotations

import random
import string
import time

from engine.errors import InvalidRequest
from engine.mutation import partition_key_bytes
from engine.token import token as token_of
from tools.stress.schema_setup import ensure_table
from tools.stress.zipfian import (
    ScrambledZipfianGenerator,
    SkewedLatestGenerator,
    ZipfianGenerator,
    fnvhash64,
)

WORKLOADS = {
    "a": {"readproportion": 0.5, "updateproportion": 0.5, "requestdistribution": "zipfian"},
    "b": {"readproportion": 0.95, "updateproportion": 0.05, "requestdistribution": "zipfian"},
    "c": {"readproportion": 1.0, "requestdistribution": "zipfian"},
    "d": {"readproportion": 0.95, "insertproportion": 0.05, "requestdistribution": "latest"},
    "e": {"scanproportion": 0.95, "insertproportion": 0.05, "requestdistribution": "zipfian",
          "maxscanlength": 100, "scanlengthdistribution": "uniform"},
    "f": {"readproportion": 0.5, "readmodifywriteproportion": 0.5, "requestdistribution": "zipfian"},
}
DEFAULTS = {
    "recordcount": 1000, "operationcount": 1000, "fieldcount": 10, "fieldlength": 100,
    "fieldlengthdistribution": "constant", "readallfields": True, "writeallfields": False,
    "readproportion": 0.0, "updateproportion": 0.0, "insertproportion": 0.0, "scanproportion": 0.0,
    "readmodifywriteproportion": 0.0, "requestdistribution": "uniform", "minscanlength": 1,
    "maxscanlength": 1000, "scanlengthdistribution": "uniform", "insertorder": "hashed",
    "zeropadding": 1, "insertstart": 0, "insertcount": None, "table": "usertable",
}
KINDS = (("READ", "readproportion"), ("UPDATE", "updateproportion"), ("INSERT", "insertproportion"),
         ("SCAN", "scanproportion"), ("READ-MODIFY-WRITE", "readmodifywriteproportion"))
CHOICES = {"requestdistribution": ("uniform", "zipfian", "latest"), "scanlengthdistribution": ("uniform", "zipfian"),
           "insertorder": ("hashed", "ordered"), "fieldlengthdistribution": ("constant", "uniform")}
LIMITS = {"recordcount": (1, 10**10), "operationcount": (1, 10**10), "fieldcount": (1, 1000),
          "fieldlength": (1, 1 << 20), "minscanlength": (1, 10**6), "maxscanlength": (1, 10**6),
          "zeropadding": (1, 64), "insertstart": (0, 10**12), "insertcount": (1, 10**10)}
POOL_CHARS = 1 << 20


def properties(workload: str, overrides: dict[str, str]) -> dict:
    """YCSB's properties for core workload `workload` with `-p` overrides, typed and checked."""
    props = {**DEFAULTS, **WORKLOADS[workload]}
    for key, text in overrides.items():
        if key not in DEFAULTS:
            raise InvalidRequest(f"unknown YCSB property -p {key}=...: known are {', '.join(sorted(DEFAULTS))}")
        default = DEFAULTS[key]
        if key in CHOICES:
            if text.lower() not in CHOICES[key]:
                raise InvalidRequest(f"bad -p {key}={text}: use one of {', '.join(CHOICES[key])}")
            props[key] = text.lower()
        elif isinstance(default, bool):
            if text.lower() not in ("true", "false"):
                raise InvalidRequest(f"bad -p {key}={text}: use true or false")
            props[key] = text.lower() == "true"
        elif key.endswith("proportion"):
            try:
                props[key] = float(text)
            except ValueError:
                raise InvalidRequest(f"bad -p {key}={text}: a number between 0 and 1") from None
            if not 0.0 <= props[key] <= 1.0:
                raise InvalidRequest(f"bad -p {key}={text}: a number between 0 and 1")
        elif key == "table":
            props[key] = text
        else:
            low, high = LIMITS[key]
            if not text.isdigit() or not low <= int(text) <= high:
                raise InvalidRequest(f"bad -p {key}={text}: a whole number from {low} to {high:,}")
            props[key] = int(text)
    if props["insertcount"] is None:
        props["insertcount"] = props["recordcount"]
    if props["minscanlength"] > props["maxscanlength"]:
        raise InvalidRequest("-p minscanlength must not exceed maxscanlength")
    if sum(props[p] for _, p in KINDS) <= 0:
        raise InvalidRequest("every operation proportion is 0: set e.g. -p readproportion=1")
    return props


class AcknowledgedCounter:
    """YCSB's AcknowledgedCounterGenerator: hands out keynums in order; `last_value()` is the
    highest keynum below which every handed-out keynum has been acknowledged."""

    def __init__(self, start: int):
        self.next_value = start
        self.limit = start - 1
        self.acked: set[int] = set()

    def next(self) -> int:
        v = self.next_value
        self.next_value += 1
        return v

    def acknowledge(self, value: int) -> None:
        self.acked.add(value)
        while self.limit + 1 in self.acked:
            self.limit += 1
            self.acked.discard(self.limit)

    def last_value(self) -> int:
        return self.limit


class YcsbWorkload:
    """One phase ("load" or "run") of core workload `letter`."""

    def __init__(self, settings, letter: str, phase: str, seed: int | None = None):
        self.s = settings
        self.p = properties(letter, settings.ycsb_properties)
        self.phase = phase
        self.session = None
        self.recorder = None
        self.table = self.p["table"]
        self.fields = [f"field{i}" for i in range(self.p["fieldcount"])]
        rng = random.Random(seed)
        self.pool = "".join(rng.choices(string.ascii_letters + string.digits, k=POOL_CHARS + self.p["fieldlength"]))
        start, count = self.p["insertstart"], self.p["insertcount"]
        self.load_sequence = iter(range(start, start + count))
        self.inserts = AcknowledgedCounter(start + self.p["recordcount"])
        self.kinds = tuple(k for k, prop in KINDS if self.p[prop] > 0) if phase == "run" else ("INSERT",)
        self.weights = [self.p[prop] for k, prop in KINDS if self.p[prop] > 0]
        dist = self.p["requestdistribution"]
        if dist == "uniform":
            self.chooser = _Uniform(start, start + count - 1)
        elif dist == "zipfian":
            expected_new = int(self.p["operationcount"] * self.p["insertproportion"] * 2.0)
            self.chooser = ScrambledZipfianGenerator(start, start + count + expected_new)
        else:
            self.chooser = SkewedLatestGenerator(self.inserts)
        lo, hi = self.p["minscanlength"], self.p["maxscanlength"]
        self.scan_length = (_Uniform(lo, hi) if self.p["scanlengthdistribution"] == "uniform"
                            else ZipfianGenerator(lo, hi))
        self.total_ops = count if phase == "load" else self.p["operationcount"]

    async def setup(self, session) -> None:
        self.session = session
        columns = {"y_id": "text", **{f: "text" for f in self.fields}}
        await ensure_table(session, self.s.keyspace, self.table, columns, "y_id", self.s.replication_factor)
        self.schema = session.cluster.metadata.tables[(self.s.keyspace, self.table)]

    # -- keys and values ---------------------------------------------------------------------------

    def key_name(self, keynum: int) -> str:
        if self.p["insertorder"] == "hashed":
            keynum = fnvhash64(keynum)
        return "user" + str(keynum).zfill(self.p["zeropadding"])

    def next_keynum(self, rng) -> int:
        while True:
            k = self.chooser.next(rng)
            if k <= self.inserts.last_value():
                return k

    def _value(self, rng) -> str:
        n = self.p["fieldlength"] if self.p["fieldlengthdistribution"] == "constant" \
            else rng.randint(1, self.p["fieldlength"])
        off = rng.randrange(POOL_CHARS)
        return self.pool[off:off + n]

    def _record(self, keynum: int, rng) -> dict:
        return {"y_id": self.key_name(keynum), **{f: self._value(rng) for f in self.fields}}

    # -- operations ------------------------------------------------------------------------------

    def next_op(self, rng):
        if self.phase == "load":
            keynum = next(self.load_sequence)
            return "INSERT", lambda: self._insert(self._record(keynum, rng))
        kind = self.kinds[0] if len(self.kinds) == 1 else rng.choices(self.kinds, self.weights)[0]
        if kind == "INSERT":
            keynum = self.inserts.next()
            return kind, lambda: self._insert(self._record(keynum, rng), keynum)
        key = self.key_name(self.next_keynum(rng))
        if kind == "READ":
            return kind, lambda: self._read(key)
        if kind == "UPDATE":
            return kind, lambda: self._update(key, rng)
        if kind == "SCAN":
            return kind, lambda: self._scan(key, self.scan_length.next(rng))
        return kind, lambda: self._read_modify_write(key, rng)

    def _cl(self) -> dict:
        return {"consistency": self.s.consistency, "keyspace": self.s.keyspace}

    async def _insert(self, row: dict, keynum: int | None = None) -> str:
        await self.session.insert(self.table, row, **self._cl())
        if keynum is not None:
            self.inserts.acknowledge(keynum)
        return "OK"

    async def _read(self, key: str) -> str:
        columns = None if self.p["readallfields"] else [self.fields[0]]
        row = await self.session.get(self.table, {"y_id": key}, columns=columns, **self._cl())
        return "OK" if row is not None else "NOT_FOUND"

    async def _update(self, key: str, rng) -> str:
        fields = self.fields if self.p["writeallfields"] else [self.fields[rng.randrange(len(self.fields))]]
        await self.session.insert(self.table, {"y_id": key, **{f: self._value(rng) for f in fields}}, **self._cl())
        return "OK"

    async def _scan(self, key: str, length: int) -> str:
        tok = token_of(partition_key_bytes(self.schema, {"y_id": key}))
        await self.session.scan(self.table, start_token=tok - 1, page_size=length, **self._cl())
        return "OK"

    async def _read_modify_write(self, key: str, rng) -> str:
        t0 = time.perf_counter()
        status = await self._read(key)
        t1 = time.perf_counter()
        self.recorder.record_sub("READ", t0, t1, status)
        await self._update(key, rng)
        t2 = time.perf_counter()
        self.recorder.record_sub("UPDATE", t1, t2)
        return status


class _Uniform:
    def __init__(self, low: int, high: int):
        self.low, self.high = low, high

    def next(self, rng) -> int:
        return rng.randint(self.low, self.high)
