"""A batch: inserts and deletes collected by `with store.batch() as b:` and applied on exit as
one commit-log record (atomic per partition, as Cassandra's unlogged batch within a partition).

Nothing is applied if the block raises; a write is applied (or fails) once: the batch is
emptied as it is applied, so one entered again applies only the writes added since
(Memtable.put_plain relies on never being handed a payload object twice). Inserts are encoded as they are added (the write hot
path of Store.insert); deletes are encoded at apply time. Writes are held as columns (tables,
keys, payloads, infos), in the order added: a plain insert's info is a tuple of ints
(timestamp, cells, tombstones, now_s), which the cyclic garbage collector untracks, so a batch
of 1000 leaves no per-write container for the collector to promote and walk (tuples holding
the Table or the encoded cell lists made full collections cost 2.2 s of CPU per 1M batched
puts: bench/README.md, "Write path at 1M keys"). Updates appended to `updates` from outside,
(table, key, Partition), are applied after the batch's own.
"""
from __future__ import annotations

from engine import mutation as mut
from engine.partition import encode_partition
from engine.plain_insert import encode_plain_insert


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

    def insert(self, keyspace: str, table: str, row: dict, ttl: int | None = None, timestamp: int | None = None):
        store = self.store
        ks = store.keyspaces.get(keyspace)  # Store._resolve(), inlined
        t = ks.tables.get(table) if ks is not None else None
        if t is None:
            t = store.catalog.table(keyspace, table)
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

    def delete(self, keyspace: str, table: str, key: dict, columns=None, timestamp: int | None = None, **bounds):
        t = self.store.table(keyspace, table)
        ts = self.store.new_timestamp(timestamp)
        pk, update = mut.build_delete(t, key, ts, self.store.clock.now_s(), columns, **bounds)
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
        if exc_type is not None or not (self._keys or self.updates):
            return
        payloads, infos = self._payloads, self._infos
        for i in self._deferred:
            payloads[i] = encode_partition(infos[i])
        for t, key, update in self.updates:
            self._add(t, key, encode_partition(update), update)
        tables, keys = self._tables, self._keys
        self._empty()  # applied once: a batch entered again holds only later writes
        self.store._apply_columns(tables, keys, payloads, infos)
