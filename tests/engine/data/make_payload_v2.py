"""Writes tests/engine/data/payload_v2 with the base tree (payload version 2 everywhere)."""
import sys, shutil, os
from engine.clock import ManualClock
from engine.store import Store
out = sys.argv[1]
shutil.rmtree(out, ignore_errors=True)
s = Store.open(out, clock=ManualClock(), background=False)
s.create_keyspace("ks")
s.create_table("ks", "kv", {"k": "blob", "v": "blob", "n": "int"}, primary_key="k",
               table_id="00000000-0000-0000-0000-0000000000a2")
s.create_table("ks", "t", {"k": "int", "c": "text", "v": "text"}, primary_key=("k", "c"),
               table_id="00000000-0000-0000-0000-0000000000b2")
for i in range(20):
    s.insert("ks", "kv", {"k": b"user%04d" % i, "v": bytes([i]) * 100, "n": i})   # plain rows
s.insert("ks", "kv", {"k": b"null", "v": None, "n": 1})                            # a tombstone cell
s.insert("ks", "kv", {"k": b"ttl", "v": b"t"}, ttl=10**8)                           # an expiring row
s.insert("ks", "kv", {"k": b"marker"})                                             # the marker alone
s.insert("ks", "t", {"k": 1, "c": "a", "v": "v1"})
s.flush()
s.insert("ks", "kv", {"k": b"user0003", "v": b"newer"})                            # a second version
s.insert("ks", "kv", {"k": b"log", "v": b"in the commit log", "n": 7})
s.delete("ks", "kv", {"k": b"user0005"})
s.insert("ks", "t", {"k": 9, "c": "z", "v": "in the commit log"})
s.commit_log.sync() if hasattr(s.commit_log, "sync") else None
os._exit(0)  # no clean close: the commit log stays for replay
