"""The compaction side of one table's ColumnFamilyStore: SSTable infos for the pure pickers, plans
that mark their inputs compacting, running a task and installing its outputs.

Contract (a mixin of engine/column_family.py, using its `lock`, `sstables`, `manifest`, `compacting`,
`clock`, `table`, `options`, `stats` and `directory`): a planned task's inputs are in `compacting`
until `run_compaction` ends, successful or not, so no SSTable is ever in two tasks; installing
replaces the SSTable list and the manifest under the lock in one step, then unlinks the inputs
(open readers keep their files readable).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from engine.compaction import picker
from engine.sstable_files import delete_sstable

if TYPE_CHECKING:
    from engine.sstable_reader import SSTableReader


class TableCompactions:
    def gc_grace_seconds(self) -> int:
        """The table's gc_grace_seconds (a test-only canary option may shorten it)."""
        override = self.options.get("canary_gc_grace_seconds")
        return self.table.option("gc_grace_seconds") if override is None else override

    def infos(self, now_s: int) -> list[picker.SSTableInfo]:
        gc_before = now_s - self.gc_grace_seconds()
        out = []
        for s in self.sstables:
            st = s.stats
            out.append(picker.SSTableInfo(
                generation=s.generation, size_bytes=s.size_bytes, level=self.manifest.levels.get(s.generation, 0),
                first_token=st.min_token, last_token=st.max_token, first_key=st.first_key, last_key=st.last_key,
                min_timestamp=st.min_timestamp, max_timestamp=st.max_timestamp,
                max_local_deletion_time=st.max_local_deletion_time,
                droppable_tombstones=st.droppable_tombstones(gc_before), cell_count=st.cell_count,
                created_s=st.created_ms // 1000))
        return out

    def plan_compaction(self, major: bool = False):
        now_s = self.clock.now_s()
        options = self.table.option("compaction")
        with self.lock:
            snapshot = self.infos(now_s)
            busy = frozenset(self.compacting)
            if major:
                task = picker.plan_major(options, snapshot, busy)
            else:
                task = picker.plan(options, snapshot, busy, now_s, self.gc_grace_seconds())
            if task is not None:
                self.compacting.update(task.inputs)
        return task

    def plan_cleanup(self) -> list:
        """One task per SSTable not being compacted, rewriting it in its own level (its output is
        a subset of its key range, so levels stay non-overlapping); all are marked compacting."""
        with self.lock:
            snapshot = [s for s in self.infos(self.clock.now_s()) if s.generation not in self.compacting]
            tasks = [picker.make_task([s], s.level, None, "cleanup") for s in snapshot]
            self.compacting.update(s.generation for s in snapshot)
        return tasks

    def max_purgeable_timestamp(self, token: int, key: bytes, others: list, memtables: list) -> int:
        """Smallest timestamp any data outside the compaction may hold for this key."""
        low = 2**63 - 1
        for sst in others:
            if sst.stats.min_timestamp < low and sst.may_contain(token, key):
                low = sst.stats.min_timestamp
        for mt in memtables:
            if key in mt.partitions and mt.stats.min_timestamp < low:
                low = mt.stats.min_timestamp
        return low

    def run_compaction(self, task, keep=None) -> list[SSTableReader]:
        """Merge the task's inputs into new SSTables, purging what may be purged (and, with
        `keep(token)`, dropping the partitions it rejects); swap atomically."""
        from engine.compaction.executor import execute
        try:
            outputs = execute(self, task, keep=keep)
        finally:
            with self.lock:
                self.compacting.difference_update(task.inputs)
        return outputs

    def install_compaction(self, inputs: tuple, outputs: list[SSTableReader], level: int) -> None:
        with self.lock:
            self.manifest.commit({o.generation: level for o in outputs}, list(inputs))
            kept = [s for s in self.sstables if s.generation not in inputs]
            self.sstables = sorted(kept + outputs, key=lambda s: s.generation, reverse=True)
            self.stats["compactions"] += 1
        for gen in inputs:
            delete_sstable(self.directory, gen)
