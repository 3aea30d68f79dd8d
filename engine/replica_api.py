"""The replica API: what ring/ uses instead of the column families (a mixin of engine.store.Store).

A mutation arrives encoded (docs/format.md#partition-payload); it is decoded once, to check it and
for the memtable, and the same bytes go into the commit log. Durability is split from the write so
a driver can wait for it off its event loop (docs/architecture.md). Reads return reconciled
Partitions from every local source. Relies on Store's `cfs`, `commit_log` and `_append`.
"""
from __future__ import annotations

from engine import mutation as mut
from engine.update_check import decode_update_for_apply
from engine import restriction as rs
from engine.column_family import ColumnFamilyStore
from engine.errors import InvalidRequest
from engine.schema import Table
from engine.token import token as token_of


class ReplicaApi:
    """Store's replica methods (engine/store.py mixes this in)."""

    def table_by_id(self, table_id: str) -> Table | None:
        """The local schema's table with this id, or None (not created, or not yet learned)."""
        cfs = self.cfs.get(table_id)
        return None if cfs is None else cfs.table

    def apply_mutation(self, table: Table, key: bytes, payload: bytes):
        """Apply one encoded partition update; see apply_mutations."""
        return self.apply_mutations([(table, key, payload)])

    def apply_mutations(self, mutations: list):
        """Apply [(table, key, payload)] as one commit-log record, each payload decoded once
        (update_check.decode_update_for_apply: InvalidRequest naming the problem, nothing applied;
        a plain-form payload is checked and put without a Partition object).

        Returns the commit-log position the caller must pass to await_durable before it
        acknowledges (batch and group modes), or None when the write may be acknowledged at
        once (periodic mode, which only waits here if the periodic sync lags).
        """
        encoded = []
        for table, key, payload in mutations:
            if type(key) is not bytes or not 0 < len(key) <= mut.MAX_KEY_BYTES:
                raise InvalidRequest(f"partition key must be 1..{mut.MAX_KEY_BYTES} bytes")
            encoded.append((table, key, payload, decode_update_for_apply(payload)))
        position = self._append(encoded)
        if self.commit_log.sync_mode == "periodic":
            self.commit_log.await_durable(position)
            return None
        return position

    def await_durable(self, position) -> None:
        """Block until the record at `position` is durable (thread-safe: drivers call it from a
        worker thread). Raises EngineError if the commit log failed or closed first."""
        self.commit_log.await_durable(position)

    def read_partition(self, table: Table, key: bytes):
        """The reconciled Partition of `key` from every local source, or None."""
        return self._cfs_of(table).read_partition(token_of(key), key)

    def scan_partitions(self, table: Table, start: tuple | None, end: tuple | None):
        """(token, key, Partition) over [start, end) of (token, key), in that order."""
        return self._cfs_of(table).scan_partitions(start, end)

    def local_index(self, table: Table, restrictions: list):
        """The ready secondary index an index query with these restrictions reads
        (InvalidRequest if none fits, IndexNotReady while it builds)."""
        cfs = self._cfs_of(table)
        index = cfs.indexes[rs.choose_index(cfs.table, restrictions).name]
        index.check_ready(cfs.table)
        return index

    def search_index(self, table: Table, index, restrictions: list, start=None, end=None, after=None):
        """(token, key, ck, Partition, row) of each live row `index` finds matching `restrictions`."""
        cfs = self._cfs_of(table)
        return index.search(cfs, cfs.table, restrictions, start, end, after)

    def partition_estimate(self, table: Table) -> int:
        """Partitions in the table's SSTables and memtable (duplicates counted)."""
        cfs = self._cfs_of(table)
        return sum(s.stats.partition_count for s in cfs.sstables) + len(cfs.memtable)

    def load_bytes(self) -> int:
        """Bytes of every table in SSTables and in memtables, flushing ones too (gossip's LOAD)."""
        return sum(c.disk_bytes() + c.memtable_bytes() for c in list(self.cfs.values()))

    def _cfs_of(self, table: Table) -> ColumnFamilyStore:
        cfs = self.cfs.get(table.id)
        if cfs is None:
            raise InvalidRequest(f"table {table.qualified_name} does not exist here (dropped, or not yet learned)")
        return cfs
