"""The Store against a plain-Python model: every delete level, TTL, flush, compaction, crash and reopen.

Timestamps strictly increase from operation to operation, so last-writer-wins equals "apply in
order", which is all the model does. The store runs in `batch` commit-log mode: whatever it
acknowledged must survive a crash, even one that loses the page cache.
"""
import shutil
import tempfile

from hypothesis import settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from engine.clock import ManualClock
from engine.store import Store

KEYS = st.integers(0, 3)
CKS = st.integers(0, 4)
TEXT = st.one_of(st.none(), st.text(max_size=3))
GC_GRACE = 5


class StoreModel(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.dir = tempfile.mkdtemp(prefix="dynatable-model-")
        self.clock = ManualClock()
        self.store = self._open()
        self.store.create_keyspace("ks")
        self.store.create_table("ks", "t", {"k": "int", "c": "int", "v": "text", "w": "bigint"},
                                primary_key=("k", "c"), clustering_order={"c": "DESC"},
                                options={"gc_grace_seconds": GC_GRACE})
        # model: k -> c -> {"marker": expiry|None|absent, "v": (value, expiry), "w": (value, expiry)}
        self.rows: dict[int, dict[int, dict]] = {}

    def _open(self):
        return Store.open(self.dir, clock=self.clock, background=False, commitlog_sync="batch",
                          memtable_flush_threshold_bytes=4096, commitlog_segment_size_bytes=64 * 1024)

    def _tick(self):
        self.clock.advance(0.000_01)

    # -- writes --------------------------------------------------------------------------
    @rule(k=KEYS, c=CKS, v=TEXT, w=st.one_of(st.none(), st.integers(-5, 5)),
          ttl=st.one_of(st.none(), st.integers(1, 3)), only_v=st.booleans())
    def insert(self, k, c, v, w, ttl, only_v):
        self._tick()
        row = {"k": k, "c": c, "v": v} if only_v else {"k": k, "c": c, "v": v, "w": w}
        self.store.insert("ks", "t", row, ttl=ttl)
        expiry = self.clock.now_s() + ttl if ttl else None
        model = self.rows.setdefault(k, {}).setdefault(c, {})
        model["marker"] = expiry
        for col in ("v", "w"):
            if col in row:
                model[col] = (row[col], expiry) if row[col] is not None else None

    @rule(k=KEYS, c=CKS, col=st.sampled_from(["v", "w"]))
    def delete_cell(self, k, c, col):
        self._tick()
        self.store.delete("ks", "t", {"k": k, "c": c}, columns=[col])
        if c in self.rows.get(k, {}):
            self.rows[k][c][col] = None

    @rule(k=KEYS, c=CKS)
    def delete_row(self, k, c):
        self._tick()
        self.store.delete("ks", "t", {"k": k, "c": c})
        self.rows.get(k, {}).pop(c, None)

    @rule(k=KEYS, a=CKS, b=CKS)
    def delete_range(self, k, a, b):
        # bounds are positions in clustering order; c is DESC, so start is the higher value
        hi, lo = max(a, b), min(a, b)
        self._tick()
        self.store.delete("ks", "t", {"k": k}, start=(hi,), end=(lo,))
        for c in range(lo, hi + 1):
            self.rows.get(k, {}).pop(c, None)

    @rule(k=KEYS)
    def delete_partition(self, k):
        self._tick()
        self.store.delete("ks", "t", {"k": k})
        self.rows.pop(k, None)

    # -- time, flush, compaction, crash ---------------------------------------------------
    @rule(seconds=st.sampled_from([1, 2, GC_GRACE + 1]))
    def advance_clock(self, seconds):
        self.clock.advance(seconds)

    @rule()
    def flush(self):
        self.store.flush()

    @rule()
    def compact(self):
        self.store.compact("ks", "t", major=True)

    @rule()
    def compact_by_strategy(self):
        self.store.compact("ks", "t", major=False)

    @rule(lose_unsynced=st.booleans())
    def crash_and_reopen(self, lose_unsynced):
        self.store.crash(lose_unsynced=lose_unsynced)
        self.clock.advance(0.001)
        self.store = self._open()

    @rule()
    def close_and_reopen(self):
        self.store.close()
        self.clock.advance(0.001)
        self.store = self._open()

    # -- checks ----------------------------------------------------------------------------
    def expected(self, k):
        now = self.clock.now_s()
        out = []
        for c in sorted(self.rows.get(k, {}), reverse=True):
            model = self.rows[k][c]
            row, alive = {"k": k, "c": c}, False
            if "marker" in model and (model["marker"] is None or model["marker"] > now):
                alive = True
            for col in ("v", "w"):
                cell = model.get(col)
                if cell is not None and (cell[1] is None or cell[1] > now):
                    row[col] = cell[0]
                    alive = True
            if alive:
                out.append(row)
        return out

    @invariant()
    def reads_match_the_model(self):
        for k in range(4):
            assert self.store.select("ks", "t", {"k": k}) == self.expected(k), k
        scanned = sorted(self.store.scan_all("ks", "t", page_size=3), key=lambda r: (r["k"], -r["c"]))
        expected = sorted((r for k in range(4) for r in self.expected(k)), key=lambda r: (r["k"], -r["c"]))
        assert scanned == expected

    @invariant()
    def structures_are_consistent(self):
        self.store.check_invariants()

    def teardown(self):
        self.store.close()
        shutil.rmtree(self.dir, ignore_errors=True)


StoreModel.TestCase.settings = settings(stateful_step_count=40)
TestStoreModel = StoreModel.TestCase
