"""The write path's last step, shared by every write (a mixin of engine.store.Store): one call's
updates become ONE commit-log record (so they replay together, atomic per partition), then go into
the memtables under the store's write lock, in the record's order; a memtable over the flush
threshold queues a flush. Returns the record's position, durable at once in periodic mode and
after await_durable in batch and group modes. An update comes as a Partition, or, for a plain
insert (engine/plain_insert.py), as its (ts, cells, tombstones, now_s), put without one.
In periodic mode the write lock IS the commit log's lock (engine/recovery.py passes it), so a
write takes one lock for both its record (CommitLog.append_held) and its memtable puts; in batch
and group modes append_held also takes the log's own lock (its sync leaders and waiters take it
around every fsync, and must not queue behind whole puts). Either way no record is appended
between another write's record and its memtable put.
Relies on Store's `options`, `cfs`, `commit_log`, `_write_lock`, `_closed`, `_check_open` and
`_on_memtable_full`.
"""
from __future__ import annotations

import msgpack

from engine.errors import InvalidRequest
from engine.schema import Table
from engine.token import token as token_of

_packb = msgpack.Packer(use_bin_type=True).pack  # == msgpack.packb(obj, use_bin_type=True), no Packer per call


_BIN8 = tuple(b"\xc4" + bytes((n,)) for n in range(256))  # msgpack's bin 8 header of n bytes
_RECORD_PREFIX: dict[str, bytes] = {}   # table id -> a plain record's bytes before its key


def _types(items) -> set:
    return set(map(type, items))


class WritePath:
    """Store's commit-log-then-memtable append (engine/store.py mixes this in)."""

    def _append_plain(self, t: Table, plain: tuple, ts: int, now_s: int):
        """_append() of one plain insert (key, payload, cells, tombstones) from
        encode_plain_insert, written at `ts`: the same commit-log record, the memtable put without a Partition.
        Kept apart from _append: routing single puts through it cost 12% of their CPU
        (`python -m bench.write_path --compare`, 3 rounds, load 0.9). The record of a key and
        payload under 256 bytes each is joined from cached parts, not packed (4% of a put's CPU:
        bench/README.md, "Puts at 1M keys, again")."""
        key, payload, cells, tombstones = plain
        options = self.options
        kn, pn = len(key), len(payload)
        if kn < 256 and pn < 256:  # _packb([(t.id, key, payload)]), joined from its parts
            prefix = _RECORD_PREFIX.get(t.id)
            if prefix is None:
                prefix = _RECORD_PREFIX[t.id] = b"\x91\x93" + _packb(t.id)  # a 1-array of a 3-array, id
            record = b"".join((prefix, _BIN8[kn], key, _BIN8[pn], payload))
        else:
            record = _packb([(t.id, key, payload)])
        if len(record) > options["max_batch_bytes"]:
            raise InvalidRequest(f"mutation batch of {len(record)} bytes exceeds max_batch_bytes="
                                 f"{options['max_batch_bytes']}; split it into smaller batches")
        lock = self._write_lock  # acquire/release, not `with`: ~50 ns less a put
        lock.acquire()
        try:
            if self._closed:
                self._check_open()
            position = self.commit_log.append_held(record)
            cfs_map = self.cfs
            cfs = cfs_map.get(t.id)
            if cfs is None:
                raise InvalidRequest(f"table {t.qualified_name} was dropped")
            cfs.apply_plain(key, payload, ts, cells, tombstones, now_s, position)
            if len(cfs_map) == 1:  # _memtable_bytes() of one table: its memtable's
                total = cfs.memtable.size_bytes
            else:  # _memtable_bytes(), inlined
                total = 0
                for c in cfs_map.values():
                    total += c.memtable.size_bytes
            need_flush = total > options["memtable_flush_threshold_bytes"]
        finally:
            lock.release()
        if need_flush:
            self._on_memtable_full()
        return position

    def _apply_encoded(self, encoded: list) -> None:
        """apply() for [(table, key, payload, Partition)] whose payloads are already encoded."""
        position = self._append(encoded)
        self.commit_log.await_durable(position)

    def _apply_columns(self, tables: list, keys: list, payloads: list, infos: list) -> None:
        """_apply_encoded() of writes held as columns (Batch): table, key, payload, and a
        Partition or a plain insert's (ts, cells, tombstones, now_s), without a tuple per write
        that holds a tracked object (engine/batch.py says why)."""
        self.commit_log.await_durable(self._append_columns(tables, keys, payloads, infos))

    def _apply_plain_rows(self, t: Table, keys: list, payloads: list, stamps: list, record: bytes) -> None:
        """_apply_columns() of a batch's key-value lane (engine/batch.py): plain rows of one
        table, each of one key and one column, row i written at stamps[i], and their commit-log
        record, _append_columns' bytes (engine/kv_lane.py)."""
        def put(position) -> None:
            cfs = self._table_cfs(t)
            cfs.apply_plain_rows(keys, payloads, stamps, position)
        self.commit_log.await_durable(self._append_record(record, put))

    def _append_columns(self, tables: list, keys: list, payloads: list, infos: list):
        """_append() of columns: the same commit-log record, the same memtable puts."""
        def put(position) -> None:
            t = tables[0] if tables else None
            if t is not None and tables.count(t) == len(tables) and _types(infos) == {tuple}:
                # one table, plain inserts only (a Batch's common case)
                self._table_cfs(t).apply_plain_many(keys, payloads, infos, position)
            else:
                self._apply_each(tables, keys, payloads, infos, position)
        return self._append_record(_packb([*zip([t.id for t in tables], keys, payloads)]), put)

    def _append_record(self, record: bytes, put):
        """Append one batch's record and call put(its position) under the write lock; queue a
        flush when the memtables are full. Returns the position (not yet durable in batch and
        group modes)."""
        options = self.options
        if len(record) > options["max_batch_bytes"]:
            raise InvalidRequest(f"mutation batch of {len(record)} bytes exceeds max_batch_bytes="
                                 f"{options['max_batch_bytes']}; split it into smaller batches")
        with self._write_lock:
            if self._closed:
                self._check_open()
            position = self.commit_log.append_held(record)
            put(position)
            need_flush = self._memtable_bytes() > options["memtable_flush_threshold_bytes"]
        if need_flush:
            self._on_memtable_full()
        return position

    def _table_cfs(self, t: Table):
        cfs = self.cfs.get(t.id)
        if cfs is None:
            raise InvalidRequest(f"table {t.qualified_name} was dropped")
        return cfs

    def _apply_each(self, tables, keys, payloads, infos, position) -> None:
        """The memtable puts of _append_columns, one by one (under the write lock)."""
        cfs_map = self.cfs
        last = cfs = apply_plain = None
        for t, key, payload, info in zip(tables, keys, payloads, infos):
            if t is not last:  # a batch's writes mostly share a table: look it up once per run
                cfs = cfs_map.get(t.id)
                if cfs is None:
                    raise InvalidRequest(f"table {t.qualified_name} was dropped")
                last, apply_plain = t, cfs.apply_plain
            if info.__class__ is tuple:
                apply_plain(key, payload, *info, position)
            else:
                cfs.apply(token_of(key), key, payload, info, position)

    def _append(self, encoded: list):
        """Append [(table, key, payload, Partition)] as one commit-log record and put it in the
        memtables; returns the record's position (not yet durable in batch and group modes).
        In place of the Partition, a plain insert may give (ts, cells, tombstones, now_s)."""
        if len(encoded) != 1:   # several, or none: an empty record, as before
            tables, keys, payloads, infos = zip(*encoded) if encoded else ((), (), (), ())
            return self._append_columns(tables, keys, payloads, infos)
        options = self.options
        t, key, payload, update = encoded[0]
        record = _packb([(t.id, key, payload)])
        if len(record) > options["max_batch_bytes"]:
            raise InvalidRequest(f"mutation batch of {len(record)} bytes exceeds max_batch_bytes="
                                 f"{options['max_batch_bytes']}; split it into smaller batches")
        tok = None if update.__class__ is tuple else token_of(key)  # a plain insert needs none
        with self._write_lock:
            if self._closed:
                self._check_open()
            position = self.commit_log.append_held(record)
            cfs = self.cfs.get(t.id)
            if cfs is None:
                raise InvalidRequest(f"table {t.qualified_name} was dropped")
            if update.__class__ is tuple:
                cfs.apply_plain(key, payload, *update, position)
            else:
                cfs.apply(tok, key, payload, update, position)
            need_flush = self._memtable_bytes() > options["memtable_flush_threshold_bytes"]
        if need_flush:
            self._on_memtable_full()
        return position

    def _memtable_bytes(self) -> int:
        return sum(c.memtable.size_bytes for c in self.cfs.values())
