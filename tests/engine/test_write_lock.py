"""The Store's write lock is its commit log's lock (engine/write_path.py): one lock covers a
write's record and its memtable put. Without it, a group-commit leader swaps the log's buffer
while a writer appends to it, and acknowledged writes are lost at a crash."""
from __future__ import annotations

import sys
import threading

import pytest

from engine.store import Store

KS, TABLE = "ks", "kv"


def _open(path, **kw):
    store = Store.open(str(path), background=False, **kw)
    if KS not in store.keyspaces:
        store.create_keyspace(KS)
        store.create_table(KS, TABLE, {"k": "blob", "v": "blob"}, primary_key="k")
    return store


def test_the_store_and_its_commit_log_share_one_lock(tmp_path):
    with _open(tmp_path) as store:
        assert store.commit_log._lock is store._write_lock


def test_concurrent_group_commit_writers_lose_nothing_acknowledged_at_a_crash(tmp_path):
    store = _open(tmp_path, commitlog_sync="group", commitlog_sync_group_window_ms=0.2)
    acked: list[list[bytes]] = [[] for _ in range(4)]

    def writer(i: int) -> None:
        for j in range(1500):
            key = b"w%d-%05d" % (i, j)
            store.insert(KS, TABLE, {"k": key, "v": key * 3})
            acked[i].append(key)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(4)]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)       # switch threads often: interleave inside appends and syncs
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(interval)
    store.crash(lose_unsynced=True)   # a machine crash: only what was fsynced survives
    with _open(tmp_path, commitlog_sync="group") as store:
        missing = [k for keys in acked for k in keys
                   if store.get(KS, TABLE, {"k": k}) != {"k": k, "v": k * 3}]
        assert missing == []
        store.check_invariants()


def test_waiting_for_a_sync_while_holding_the_write_lock_raises_instead_of_deadlocking(tmp_path):
    # an enlisted writer that held the lock would block the sync leader that must wake it
    with _open(tmp_path, commitlog_sync="group") as store:
        with store._write_lock:
            with pytest.raises(RuntimeError, match="holding the store's write lock"):
                store.insert(KS, TABLE, {"k": b"a", "v": b"b"})
        store.insert(KS, TABLE, {"k": b"c", "v": b"d"})   # without it, a write waits as before
        assert store.get(KS, TABLE, {"k": b"c"}) == {"k": b"c", "v": b"d"}
