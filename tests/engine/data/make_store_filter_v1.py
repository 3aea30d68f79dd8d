"""Writes tests/engine/data/store_filter_v1 with the base tree: Filter.db version 1 (standard
probes) at the sparse, power-of-two sizes of session 10 (main at bda2f60), three SSTables.

Run from a checkout of that tree: `PYTHONPATH=<tree> python make_store_filter_v1.py <out dir>`.
Table ks.t (k blob primary key, v blob); SSTable g (g = 0, 1, 2) holds keys b"key%05d" % i for
i in [300 g, 300 g + 400) with v = b"v%d-%d" % (g, i) (later SSTables overwrite the overlap).
tests/engine/test_bloom_blocked.py reads it back, mixes it with version-2 files and compacts it.
"""
import shutil
import sys

from engine.store import Store

if __name__ == "__main__":
    out = sys.argv[1]
    shutil.rmtree(out, ignore_errors=True)
    s = Store.open(out, background=False)
    s.create_keyspace("ks")
    s.create_table("ks", "t", {"k": "blob", "v": "blob"}, primary_key="k")
    for gen in range(3):
        for i in range(gen * 300, gen * 300 + 400):
            s.insert("ks", "t", {"k": b"key%05d" % i, "v": b"v%d-%d" % (gen, i)})
        s.flush()
    s.close()
