"""In periodic mode the Store's write lock is its commit log's lock (engine/write_path.py): one
lock covers a write's record and its memtable put. In batch and group modes the log keeps its
own lock, which its sync leaders and waiters take. Either way no record lands between another
write's record and its memtable put, and nothing acknowledged is lost at a crash."""
from __future__ import annotations

import sys
import threading

import pytest

from engine.commit_log import CommitLog
from engine.store import Store

KS, TABLE = "ks", "kv"


def _open(path, **kw):
    store = Store.open(str(path), background=False, **kw)
    if KS not in store.keyspaces:
        store.create_keyspace(KS)
        store.create_table(KS, TABLE, {"k": "blob", "v": "blob"}, primary_key="k")
    return store


def _write_concurrently(store, writers: int = 4, each: int = 1500) -> list[bytes]:
    acked: list[list[bytes]] = [[] for _ in range(writers)]

    def writer(i: int) -> None:
        for j in range(each):
            key = b"w%d-%05d" % (i, j)
            store.insert(KS, TABLE, {"k": key, "v": key * 3})
            acked[i].append(key)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(writers)]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)       # switch threads often: interleave inside appends and syncs
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(interval)
    return [k for keys in acked for k in keys]


def _missing(path, keys: list[bytes], **kw) -> list[bytes]:
    with _open(path, **kw) as store:
        store.check_invariants()
        return [k for k in keys if store.get(KS, TABLE, {"k": k}) != {"k": k, "v": k * 3}]


def test_a_periodic_store_and_its_commit_log_share_one_lock_a_group_one_does_not(tmp_path):
    with _open(tmp_path / "p", commitlog_sync="periodic") as store:
        assert store.commit_log._lock is store._write_lock
    with _open(tmp_path / "g", commitlog_sync="group") as store:
        assert store.commit_log._lock is not store._write_lock


def test_concurrent_periodic_writers_lose_nothing_acknowledged_at_a_process_crash(tmp_path):
    # the sync thread marks sections every millisecond while the writers append
    store = _open(tmp_path, commitlog_sync="periodic", commitlog_sync_period_ms=1)
    keys = _write_concurrently(store)
    store.crash()                     # a killed process: the page cache keeps the mapping
    assert _missing(tmp_path, keys) == []


def test_concurrent_group_commit_writers_lose_nothing_acknowledged_at_a_machine_crash(tmp_path):
    store = _open(tmp_path, commitlog_sync="group", commitlog_sync_group_window_ms=0.2)
    keys = _write_concurrently(store)
    store.crash(lose_unsynced=True)   # a machine crash: only what was fsynced survives
    assert _missing(tmp_path, keys, commitlog_sync="group") == []


def test_waiting_for_the_log_while_holding_its_shared_lock_raises_instead_of_hanging(tmp_path):
    lock = threading.RLock()
    log = CommitLog(str(tmp_path / "g"), sync="group", lock=lock)
    try:
        with lock:  # an enlisted writer holding it would block the sync leader that must wake it
            position = log.append_held(b"x")
            with pytest.raises(RuntimeError, match="holding the store's write lock"):
                log.await_durable(position)
        log.await_durable(position)   # without the lock: durable as before
    finally:
        log.close()
    now = [0.0]
    log = CommitLog(str(tmp_path / "p"), sync="periodic", lock=lock, clock=lambda: now[0])
    try:
        with lock:
            position = log.append_held(b"y")
            now[0] = 100.0            # the periodic sync lags: a writer would wait on the log
            with pytest.raises(RuntimeError, match="holding the store's write lock"):
                log.await_durable(position)
    finally:
        log.close()
