"""Flushes and compactions: the flusher and compactor threads, the flush queue and backpressure.

When the memtables together exceed `memtable_flush_threshold_bytes`, the largest is switched out
(it stays readable in its table's `flushing` list) and queued; one flusher thread writes queued
memtables to SSTables oldest first (one of at least `flush_worker_min_bytes` through its child
process, engine/flush_worker.py, so that it runs on another core), and `concurrent_compactors`
threads run whatever the tables' compaction strategies plan. With `background=False` there are no threads: a full memtable is
flushed by the writer that filled it and compaction runs only when asked (`compact`).

Invariants:
* backpressure: a writer that queues a memtable waits while more than two are waiting;
* after every flush, the commit-log segments no unflushed memtable needs are deleted, and no
  others (the lowest position any memtable still covers bounds what goes);
* a failed flush or compaction is logged and appended to `errors`, never dropped; its memtable
  stays readable and its inputs stay live.
Cassandra's words: the flush writer and CompactionManager's executor.
"""
from __future__ import annotations

import logging
import os
import threading
from typing import Callable

from engine.column_family import ColumnFamilyStore
from engine.compaction import picker
from engine.commit_log import CommitLog
from engine.flush_worker import FlushWorker

log = logging.getLogger("dynatable.engine")


def _usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


class Background:
    """The background work of one store, over its tables (`cfs`, a live view by table id)."""

    def __init__(self, cfs: dict[str, ColumnFamilyStore], commit_log: CommitLog, write_lock: threading.RLock,
                 options: dict, errors: list, memtable_bytes: Callable[[], int]):
        self.cfs = cfs
        self.commit_log = commit_log
        self.write_lock = write_lock
        self.options = options
        self.errors = errors
        self.memtable_bytes = memtable_bytes
        self._flush_queue: list = []    # (cfs, memtable) switched out and waiting, oldest first
        self._work = threading.Condition()
        self._threads: list[threading.Thread] = []
        self._stopping = False
        self.blocked = 0                # writers waiting now on backpressure (tpstats "Blocked")
        self.blocked_total = 0          # ... since the store opened ("All time blocked")
        self.flush_worker: FlushWorker | None = None  # the flusher's child process (engine/flush_worker.py)

    # -- threads ----------------------------------------------------------------------------

    def start(self) -> None:
        if self.options["flush_worker_min_bytes"] is not None and _usable_cpus() > 1:  # one core: no gain
            self.flush_worker = FlushWorker(self.options["flush_worker_min_bytes"])
        self._threads = [threading.Thread(target=self._flusher, name="dynatable-flush", daemon=True)]
        for i in range(self.options["concurrent_compactors"]):
            self._threads.append(threading.Thread(target=self._compactor, name=f"dynatable-compact-{i}", daemon=True))
        for t in self._threads:
            t.start()

    def stop(self) -> None:
        """Stop every thread; the flusher first empties its queue."""
        with self._work:
            self._stopping = True
            self._work.notify_all()
        for t in self._threads:
            t.join()
        self._threads = []
        self._stopping = False
        if self.flush_worker is not None:
            self.flush_worker.close()

    def _flusher(self) -> None:
        while True:
            with self._work:
                while not self._flush_queue and not self._stopping:
                    self._work.wait()
                if not self._flush_queue:
                    return
                cfs, mt = self._flush_queue[0]
            try:
                self._flush_one(cfs, mt)
            except BaseException as e:  # surfaced via self.errors and the log; the memtable stays readable
                log.exception("flush of %s failed", cfs.table.qualified_name)
                self.errors.append(e)
            with self._work:
                self._flush_queue.pop(0)
                self._work.notify_all()

    def _compactor(self) -> None:
        while True:
            with self._work:
                if self._stopping:
                    return
            task = cfs = None
            for candidate in list(self.cfs.values()):
                try:
                    task = candidate.plan_compaction()
                except Exception as e:
                    log.exception("compaction planning failed for %s", candidate.table.qualified_name)
                    self.errors.append(e)
                    task = None
                if task is not None:
                    cfs = candidate
                    break
            if task is None:
                with self._work:
                    if not self._stopping:
                        self._work.wait(1.0)
                continue
            try:
                cfs.run_compaction(task)
            except BaseException as e:
                log.exception("compaction of %s failed", cfs.table.qualified_name)
                self.errors.append(e)

    # -- flush ------------------------------------------------------------------------------

    def memtable_full(self) -> None:
        """A writer saw the memtables over the threshold: switch out the largest and flush it."""
        with self.write_lock:
            if self.memtable_bytes() <= self.options["memtable_flush_threshold_bytes"]:
                return
            largest = max(self.cfs.values(), key=lambda c: c.memtable.size_bytes)
            mt = largest.switch_memtable(self.commit_log.current_position())
        if mt is None:
            return
        if not self.options["background"]:
            self._flush_one(largest, mt)
            return
        with self._work:
            self._flush_queue.append((largest, mt))
            self._work.notify_all()
            # backpressure: writers wait while too many memtables are waiting to be flushed
            if len(self._flush_queue) > 2 and not self._stopping:
                self.blocked += 1
                self.blocked_total += 1
                try:
                    while len(self._flush_queue) > 2 and not self._stopping:
                        self._work.wait(0.1)
                finally:
                    self.blocked -= 1

    def flush(self, targets: list[ColumnFamilyStore]) -> int:
        """Flush the targets' memtables now, and wait for their queued ones. Returns how many
        memtables this call switched out."""
        switched = []
        with self.write_lock:
            for cfs in targets:
                mt = cfs.switch_memtable(self.commit_log.current_position())
                if mt is not None:
                    switched.append((cfs, mt))
        for cfs, mt in switched:
            cfs.flush_memtable(mt)
        self._wait_flush_queue(targets)
        self.discard_segments()
        return len(switched)

    def _flush_one(self, cfs: ColumnFamilyStore, mt) -> None:
        cfs.flush_memtable(mt, self.flush_worker)  # the flusher thread's: its worker lives as long
        self.discard_segments()

    def _wait_flush_queue(self, targets) -> None:
        with self._work:
            while any(c in targets for c, _ in self._flush_queue) and self._threads:
                self._work.wait(0.05)

    def discard_segments(self) -> None:
        """Delete the commit-log segments older than every memtable's first record."""
        with self.write_lock:
            low = self.commit_log.current_position()
            for cfs in self.cfs.values():
                for mt in (cfs.memtable, *cfs.flushing):
                    if mt.min_position is not None and mt.min_position < low:
                        low = mt.min_position
            self.commit_log.discard_before(low)

    # -- stats (nodetool tpstats and compactionstats) -----------------------------------------

    def stats(self) -> dict:
        """The flush writer and the compaction executor as Cassandra's tpstats names them, and the
        running compactions' progress. Pending compactions: tables whose strategy would plan a
        task now (planned without reserving its inputs)."""
        with self._work:
            queued = len(self._flush_queue)
            blocked, blocked_total = self.blocked, self.blocked_total
        flushing = 1 if queued and self._threads else 0
        cfs_list = list(self.cfs.values())
        running = [dict(p) for c in cfs_list for p in list(c.compactions_running.values())]
        pending = {}
        for c in cfs_list:
            with c.lock:
                now_s = c.clock.now_s()
                task = picker.plan(c.table.option("compaction"), c.infos(now_s), frozenset(c.compacting), now_s,
                                   c.gc_grace_seconds())
            if task is not None:
                pending[c.table.qualified_name] = 1
        return {
            "MemtableFlushWriter": {"active": flushing, "pending": queued - flushing, "blocked": blocked,
                                    "all_time_blocked": blocked_total,
                                    "completed": sum(c.stats["flushes"] for c in cfs_list)},
            "CompactionExecutor": {"active": len(running), "pending": len(pending),
                                   "completed": sum(c.stats["compactions"] for c in cfs_list),
                                   "blocked": None, "all_time_blocked": None},  # nothing waits on it
            "compactions": running, "pending_compactions": pending,
            "compactors": self.options["concurrent_compactors"] if self._threads else 0,
        }

    # -- compaction -------------------------------------------------------------------------

    def compact(self, cfs: ColumnFamilyStore, major: bool) -> int:
        """Run compactions of one table now: a major one, or the strategy's until none is left."""
        done = 0
        while True:
            task = cfs.plan_compaction(major=major and done == 0)
            if task is None:
                return done
            cfs.run_compaction(task)
            done += 1
            if major:
                return done

    def cleanup(self, cfs: ColumnFamilyStore, keep: Callable[[int], bool]) -> int:
        """Flush the table, then rewrite each SSTable without the partitions whose token `keep`
        rejects. Returns how many partitions were dropped."""
        self.flush([cfs])
        before = cfs.stats.get("partitions_cleaned", 0)
        tasks = cfs.plan_cleanup()
        try:
            for task in tasks:
                cfs.run_compaction(task, keep=keep)
        finally:
            with cfs.lock:
                for task in tasks:
                    cfs.compacting.difference_update(task.inputs)
        return cfs.stats.get("partitions_cleaned", 0) - before
