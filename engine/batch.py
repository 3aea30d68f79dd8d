"""A batch: inserts and deletes collected by `with store.batch() as b:` and applied on exit as
one commit-log record (atomic per partition, as Cassandra's unlogged batch within a partition).

Nothing is applied if the block raises. Inserts are encoded as they are added (the write hot
path of Store.insert); deletes are encoded at apply time.
"""
from __future__ import annotations

from engine import mutation as mut
from engine.partition import decode_partition, encode_partition
from engine.plain_insert import encode_plain_insert


class Batch:
    """Collects inserts and deletes and applies them as one commit-log record."""

    def __init__(self, store):
        self.store = store
        self.updates: list = []
        self._payloads: list = []   # encoded updates[i], or None: encoded at apply time
        self._plain: dict = {}      # i -> (encoded, tombstones, now_s) of a plain insert, whose updates[i] is None

    def insert(self, keyspace: str, table: str, row: dict, ttl: int | None = None, timestamp: int | None = None):
        store = self.store
        t = store._resolve(keyspace, table)
        ts, now_s = store._timestamp_now(timestamp)
        if ttl is None:  # the plain-insert fast path of Store.insert: no Partition object
            plain = encode_plain_insert(t, row, ts, now_s, store.options["max_value_bytes"])
            if plain is not None:
                key, payload, encoded, tombstones = plain
                self.updates.append((t, key, None))
                self._payloads.append(payload)
                self._plain[len(self.updates) - 1] = (encoded, tombstones, now_s)
                return ts
        key, update, payload = mut.build_insert_encoded(t, row, ts, now_s, ttl, store.options["max_value_bytes"])
        self.updates.append((t, key, update))
        self._payloads.append(payload)
        return ts

    def delete(self, keyspace: str, table: str, key: dict, columns=None, timestamp: int | None = None, **bounds):
        t = self.store.table(keyspace, table)
        ts = self.store.new_timestamp(timestamp)
        pk, update = mut.build_delete(t, key, ts, self.store.clock.now_s(), columns, **bounds)
        self.updates.append((t, pk, update))
        self._payloads.append(None)
        return ts

    def __enter__(self) -> "Batch":
        return self

    def __exit__(self, exc_type, *_) -> None:
        if exc_type is None and self.updates:
            if len(self._payloads) != len(self.updates):  # updates was changed from outside
                payloads = self._payloads
                self.store.apply([(t, key, decode_partition(payloads[i]) if update is None else update)
                                  for i, (t, key, update) in enumerate(self.updates)])
                return
            plain = self._plain
            self.store._apply_encoded([(t, key, encode_partition(update) if payload is None else payload,
                                        plain[i] if update is None else update)
                                       for i, ((t, key, update), payload) in enumerate(zip(self.updates, self._payloads))])
