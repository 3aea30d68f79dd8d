"""A batch: inserts and deletes collected by `with store.batch() as b:` and applied on exit as
one commit-log record (atomic per partition, as Cassandra's unlogged batch within a partition).

Nothing is applied if the block raises; a write is applied (or fails) once: the batch is
emptied as it is applied, so one entered again applies only the writes added since
(Memtable.put_plain relies on never being handed a payload object twice). Every insert is
checked and given its timestamp as it is added, so its errors and its returned timestamp are
Store.insert's. Writes are held as columns (tables, keys, payloads, infos), in the order added:
a plain insert's info is a tuple of ints (timestamp, cells, tombstones, now_s), which the cyclic
garbage collector untracks, so a batch of 1000 leaves no per-write container for the collector
to promote and walk (tuples holding the Table or the encoded cell lists made full collections
cost 2.2 s of CPU per 1M batched puts: bench/README.md, "Write path at 1M keys"). Deletes are
encoded at apply time. Updates appended to `updates` from outside, (table, key, Partition), are
applied after the batch's own.

The key-value lane: a batch that starts with an insert into a table of one blob key and one
blob column (plain_insert's `only` plan), without TTL or timestamp, holds such inserts into
that table as three lists (keys, values, timestamps) and packs their payloads on exit, in one
pass with their commit-log record (engine/kv_lane.py), byte for byte what the general path
makes (tests/engine/test_batch_lane.py). Any other write first moves the lane's rows into the
columns, in order, and closes the lane.
"""
from __future__ import annotations

from time import time_ns as _time_ns

from engine import mutation as mut
from engine.clock import SystemClock
from engine.kv_lane import encode_lane
from engine.mutation import MAX_KEY_BYTES
from engine.partition import encode_partition
from engine.plain_insert import _plain_plan, encode_plain_insert


class Batch:
    """Collects inserts and deletes and applies them as one commit-log record."""

    def __init__(self, store):
        self.store = store
        self._empty()

    def _empty(self) -> None:
        self.updates: list = []     # (table, key, Partition) added from outside
        self._tables: list = []
        self._keys: list = []
        self._payloads: list = []   # encoded, or None: a delete, encoded at apply time
        self._infos: list = []      # (ts, cells, tombstones, now_s) of a plain insert, else its Partition
        self._deferred: list = []   # indexes of the None payloads
        self._lane = None           # the key-value lane's Table, while it is open
        self._lane_keys: list = []
        self._lane_values: list = []
        self._lane_ts: list = []

    def insert(self, keyspace: str, table: str, row: dict, ttl: int | None = None, timestamp: int | None = None):
        store = self.store
        ks = store.keyspaces.get(keyspace)  # Store._resolve(), inlined
        t = ks.tables.get(table) if ks is not None else None
        if t is None:
            t = store.catalog.table(keyspace, table)
        if t is self._lane and ttl is None and timestamp is None and len(row) == 2:
            key = row.get(self._lane_pk)
            value = row.get(self._lane_column)
            if (key.__class__ is bytes and value.__class__ is bytes and 0 < len(key) <= MAX_KEY_BYTES
                    and len(value) <= self._lane_max):
                clock = store.clock
                if clock.__class__ is SystemClock:  # Store._timestamp_now(None), inlined
                    ts = _time_ns() // 1000 + clock.offset_us
                    if ts <= store._last_ts:
                        ts = store._last_ts + 1
                    store._last_ts = ts
                else:
                    ts = store._timestamp_now(None)[0]
                self._lane_keys.append(key)
                self._lane_values.append(value)
                self._lane_ts.append(ts)
                return ts
        return self._insert(t, row, ttl, timestamp)

    def _insert(self, t, row: dict, ttl, timestamp):
        """insert() of everything the lane does not take; opens the lane on a batch's first write."""
        store = self.store
        if ttl is None and timestamp is None and not self._keys and self._lane is None:
            plan = _plain_plan(t)
            if plan and plan[3] is not None and plan[1] == "blob":  # one blob key, one blob column
                self._lane, self._lane_pk, (self._lane_column, self._lane_id) = t, plan[0], plan[3]
                self._lane_max = store.options["max_value_bytes"]
                return self.insert(t.keyspace, t.name, row)  # the lane's path, or back here to close it
        self._close_lane()
        ts, now_s = store._timestamp_now(timestamp)
        if ttl is None:  # the plain-insert fast path of Store.insert: no Partition object
            plain = encode_plain_insert(t, row, ts, now_s, store.options["max_value_bytes"])
            if plain is not None:
                key, payload, cells, tombstones = plain
                self._tables.append(t)
                self._keys.append(key)
                self._payloads.append(payload)
                self._infos.append((ts, cells, tombstones, now_s))
                return ts
        key, update, payload = mut.build_insert_encoded(t, row, ts, now_s, ttl, store.options["max_value_bytes"])
        self._add(t, key, payload, update)
        return ts

    def _lane_encoded(self, t, record: bool = True) -> tuple:
        """(payloads, commit-log record) of the lane's rows into t: engine/kv_lane.py."""
        return encode_lane(t.id, self._lane_id, self._lane_keys, self._lane_values, self._lane_ts, record)

    def _close_lane(self) -> None:
        """Move the lane's rows into the columns (they come first: the lane is only ever open
        while the columns are empty) and close it for the rest of the batch."""
        t = self._lane
        if not t:
            return
        self._lane = False  # closed: never reopened by this batch
        keys, stamps = self._lane_keys, self._lane_ts
        if keys:
            self._tables += [t] * len(keys)
            self._keys += keys
            self._payloads += self._lane_encoded(t, record=False)[0]  # the general path logs them
            self._infos += [(ts, 2, 0, ts // 1_000_000) for ts in stamps]
            self._lane_keys, self._lane_values, self._lane_ts = [], [], []

    def delete(self, keyspace: str, table: str, key: dict, columns=None, timestamp: int | None = None, **bounds):
        t = self.store.table(keyspace, table)
        ts = self.store.new_timestamp(timestamp)
        pk, update = mut.build_delete(t, key, ts, self.store.clock.now_s(), columns, **bounds)
        self._close_lane()
        self._deferred.append(len(self._keys))
        self._add(t, pk, None, update)
        return ts

    def _add(self, t, key: bytes, payload, update) -> None:
        self._tables.append(t)
        self._keys.append(key)
        self._payloads.append(payload)
        self._infos.append(update)

    def __enter__(self) -> "Batch":
        return self

    def __exit__(self, exc_type, *_) -> None:
        if exc_type is not None:
            return
        if self._lane_keys and not self.updates:  # the lane alone (it holds rows only while the columns are empty)
            t, keys, stamps = self._lane, self._lane_keys, self._lane_ts
            payloads, record = self._lane_encoded(t)
            self._empty()
            self.store._apply_plain_rows(t, keys, payloads, stamps, record)
            return
        self._close_lane()
        if not (self._keys or self.updates):
            return
        payloads, infos = self._payloads, self._infos
        for i in self._deferred:
            payloads[i] = encode_partition(infos[i])
        for t, key, update in self.updates:
            self._add(t, key, encode_partition(update), update)
        tables, keys = self._tables, self._keys
        self._empty()  # applied once: a batch entered again holds only later writes
        self.store._apply_columns(tables, keys, payloads, infos)
