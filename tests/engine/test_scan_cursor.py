"""Store.scan_all's cursor (engine/scan_cursor.py): each page is the page Store.scan returns for
the previous page's paging state at the moment it is read, whatever happens between pages
(writes ahead of and behind the scan, deletions, a flush, a compaction that unlinks the files
the cursor had open, wide partitions cut mid-partition, wrapping ranges); while nothing
changes, the pages come from one cursor (one seek per range), and a change restarts it."""
import random
from itertools import islice

import pytest

from engine.errors import StoreClosedError
from engine.store import Store


def _store(tmp_path, wide: bool):
    s = Store.open(str(tmp_path / "s"), background=False)
    s.create_keyspace("ks")
    if wide:
        s.create_table("ks", "t", {"p": "int", "c": "int", "v": "int"}, primary_key=("p", "c"))
    else:
        s.create_table("ks", "t", {"k": "int", "v": "text"}, primary_key="k")
    return s


def _write(s, rnd, wide: bool, n: int = 1):
    for _ in range(n):
        if wide:
            p = rnd.randrange(60)
            for c in rnd.sample(range(12), rnd.randrange(1, 6)):
                s.insert("ks", "t", {"p": p, "c": c, "v": rnd.randrange(1000)})
        else:
            k = rnd.randrange(400)
            s.insert("ks", "t", {"k": k, "v": f"v{rnd.randrange(1000)}"})


def _delete(s, rnd, wide: bool):
    if wide:
        s.delete("ks", "t", {"p": rnd.randrange(60)})
    else:
        s.delete("ks", "t", {"k": rnd.randrange(400)})


@pytest.mark.parametrize("wide", [False, True])
@pytest.mark.parametrize("seed", range(6))
def test_each_page_is_the_page_scan_returns_at_that_moment(tmp_path, wide, seed):
    rnd = random.Random(seed)
    s = _store(tmp_path, wide)
    try:
        for _ in range(3):  # SSTables with overlapping ranges, then a memtable
            _write(s, rnd, wide, 80)
            s.flush()
        _write(s, rnd, wide, 40)
        bounds = [None, None]
        if seed % 3 == 1:
            bounds = [rnd.randrange(-2**63, 2**63), None]
        elif seed % 3 == 2:  # a wrapping range
            lo = rnd.randrange(-2**62, 2**62)
            bounds = [lo, lo - rnd.randrange(1, 2**62)]
        page_size = rnd.choice([1, 3, 7, 25, 64])
        rows = s.scan_all("ks", "t", *bounds, page_size=page_size)
        state, pages = None, 0
        while True:
            want = s.scan("ks", "t", *bounds, page_size=page_size, paging_state=state)
            assert list(islice(rows, len(want.rows))) == want.rows, f"page {pages}"
            pages += 1
            state = want.paging_state
            if state is None:
                assert next(rows, None) is None
                break
            action = rnd.randrange(10)
            if action < 3:
                _write(s, rnd, wide, rnd.randrange(1, 4))
            elif action == 3:
                _delete(s, rnd, wide)
            elif action == 4:
                s.flush()
            elif action == 5:
                s.compact("ks", "t")  # the cursor's SSTables are replaced and their files unlinked
        assert pages > 1
    finally:
        s.close()


def test_pages_of_an_unchanged_store_come_from_one_cursor_and_a_write_restarts_it(tmp_path):
    s = _store(tmp_path, wide=False)
    try:
        for k in range(300):
            s.insert("ks", "t", {"k": k, "v": str(k)})
            if k in (100, 200):
                s.flush()
        cfs = s.cfs[s.table("ks", "t").id]
        calls = []
        real = cfs.scan_blocks
        cfs.scan_blocks = lambda *a: calls.append(a) or real(*a)
        rows = list(s.scan_all("ks", "t", page_size=10))
        assert len(rows) == 300 and len(calls) == 1  # 30 pages, one seek
        calls.clear()
        it = s.scan_all("ks", "t", page_size=10)
        head = list(islice(it, 15))
        s.insert("ks", "t", {"k": 1000, "v": "new"})
        rest = list(it)
        assert len(calls) == 2 and len(head + rest) == 301
        assert [r["k"] for r in head + rest] == [r["k"] for r in s.scan_all("ks", "t")]
        calls.clear()
        it = s.scan_all("ks", "t", 0, -1, page_size=10)  # a wrapping range: one seek per half
        assert len(list(it)) == 301 and len(calls) == 2
    finally:
        s.close()


def test_a_scan_all_of_a_closed_store_fails_at_its_next_page(tmp_path):
    s = _store(tmp_path, wide=False)
    for k in range(30):
        s.insert("ks", "t", {"k": k, "v": str(k)})
    it = s.scan_all("ks", "t", page_size=10)
    assert len(list(islice(it, 10))) == 10
    s.close()
    with pytest.raises(StoreClosedError):
        next(it)


def test_a_scan_whose_rows_are_dropped_triggers_no_young_collection(tmp_path):
    """scan_all's pages stay under the collector's young threshold (SCAN_ALL_PAGE_ROWS), and a
    page's rows are freed before the next page is made: 20,000 rows, whatever page_size asks
    (pages of 1000 rows would trigger one young collection a page)."""
    import gc
    s = _store(tmp_path, wide=False)
    try:
        for k in range(20000):
            s.insert("ks", "t", {"k": k, "v": "v" * 50})
            if k % 7000 == 0:
                s.flush()
        s.flush()
        young = []

        def seen(phase, info):
            if phase == "start":
                young.append(info["generation"])
        gc.callbacks.append(seen)
        try:
            assert sum(1 for _ in s.scan_all("ks", "t", page_size=5000)) == 20000
        finally:
            gc.callbacks.remove(seen)
        assert len(young) <= 2, young
    finally:
        s.close()


def test_a_wide_partition_read_in_pages_is_reconciled_once_per_second(tmp_path, monkeypatch):
    """A page that ends inside a partition leaves its row iterator to the next page: scan_all
    of one 3,000-row partition in 512-row pages reconciles it once, not once a page (quadratic:
    a 60,000-row partition took 72 s instead of 0.9 s); a second that passes between pages
    (TTL expiry) makes the next page reconcile it again, so it still equals Store.scan's."""
    from engine import scan_cursor
    from engine.clock import ManualClock
    clock = ManualClock()
    s = Store.open(str(tmp_path / "s"), background=False, clock=clock)
    try:
        s.create_keyspace("ks")
        s.create_table("ks", "t", {"p": "int", "c": "int", "v": "int"}, primary_key=("p", "c"))
        with s.batch() as b:
            for c in range(3000):
                b.insert("ks", "t", {"p": 1, "c": c, "v": c}, ttl=5 if c % 2 else None)
        s.flush()
        calls = []
        real = scan_cursor.reconcile
        monkeypatch.setattr(scan_cursor, "reconcile", lambda ps: calls.append(1) or real(ps))
        assert [r["c"] for r in s.scan_all("ks", "t", page_size=5000)] == list(range(3000))
        assert len(calls) == 1
        calls.clear()
        pages = scan_cursor.scan_all_pages(s, "ks", "t", None, None, 5000, {})
        first = next(pages)
        state = s.scan("ks", "t", page_size=512).paging_state
        clock.advance(10)  # the odd rows expire between two pages
        want = s.scan("ks", "t", page_size=512, paging_state=state)
        calls.clear()
        assert next(pages) == want.rows and all(r["c"] % 2 == 0 for r in want.rows)
        assert len(first) == 512 and len(calls) == 1  # the expiry: reconciled again
    finally:
        s.close()


def test_scan_all_pages_against_a_dict_model(tmp_path):
    """Hypothesis-made interleavings of puts, deletes, flushes and compactions between pages:
    each page is the model's next rows after the last row returned."""
    import tempfile
    from hypothesis import HealthCheck, given, settings, strategies as st
    from engine import mutation as mut
    from engine.scan_cursor import scan_all_pages
    from engine.token import token

    op = st.one_of(st.tuples(st.just("put"), st.integers(0, 60), st.integers(0, 9)),
                   st.tuples(st.just("del"), st.integers(0, 60), st.just(0)),
                   st.sampled_from([("flush", 0, 0), ("compact", 0, 0)]))

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.lists(st.tuples(st.integers(0, 60), st.integers(0, 9)), min_size=1, max_size=80),
           st.integers(1, 9), st.lists(st.lists(op, max_size=6), max_size=30), st.booleans())
    def check(initial, page_size, between, flush_first):
        s = Store.open(tempfile.mkdtemp(dir=tmp_path), background=False)
        try:
            s.create_keyspace("ks")
            s.create_table("ks", "t", {"k": "int", "v": "int"}, primary_key="k")
            t = s.table("ks", "t")
            model = {}
            for k, v in initial:
                s.insert("ks", "t", {"k": k, "v": v})
                model[k] = v
            if flush_first:
                s.flush()

            def pos(k):
                key = mut.partition_key_bytes(t, {"k": k})
                return token(key), key
            pages, last = scan_all_pages(s, "ks", "t", None, None, page_size, {}), None
            for i in range(1000):
                want = sorted((k for k in model if last is None or pos(k) > last), key=pos)[:page_size]
                got = next(pages, None)
                if got is None:
                    assert want == []
                    return
                assert [(r["k"], r["v"]) for r in got] == [(k, model[k]) for k in want]
                if len(got) < page_size:
                    assert next(pages, None) is None
                    return
                last = pos(want[-1])
                for name, k, v in (between[i] if i < len(between) else []):
                    if name == "put":
                        s.insert("ks", "t", {"k": k, "v": v})
                        model[k] = v
                    elif name == "del":
                        s.delete("ks", "t", {"k": k})
                        model.pop(k, None)
                    elif name == "flush":
                        s.flush()
                    else:
                        s.compact("ks", "t")
        finally:
            s.close()
    check()
