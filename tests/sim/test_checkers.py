"""The checkers (ring/verify/checkers.py) on hand-made bad histories they must catch, good ones they must
accept, and a speed budget (WGL: test_linearizability.py). Pure: no simulator, no I/O."""
from __future__ import annotations

import random
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ring.verify.checkers import check_convergence, check_lww, check_replicas
from ring.verify.linearizability import check_linearizable, check_register
from ring.verify.history import History, Op
from tests.sim.histories import ALL, NONE, D, R, W, lww, op, props


# -- History ------------------------------------------------------------------------------------------

def test_history_records_invoke_and_completion_and_round_trips():
    h = History()
    a = h.invoke("c1.0", "write", "k", "c1-1", "QUORUM")
    b = h.invoke("c2.0", "read", "k", level="ONE")
    h.complete(b, "ok", "c1-1", 7)
    h.complete(a, "ok", ts=7)
    c = h.invoke("c1.0", "delete", "k", level="QUORUM")
    h.complete(c, "info")
    d = h.invoke("c2.0", "read", "k")
    assert h.pending() == [d]
    h.close()
    ops = h.ops
    assert [(o.kind, o.call, o.ret, o.outcome) for o in ops] == [
        ("write", 1, 4, "ok"), ("read", 2, 3, "ok"), ("delete", 5, None, "info"), ("read", 6, None, "info")]
    assert ops[0].value == "c1-1" and ops[0].ts == 7 and ops[1].value == "c1-1" and ops[2].value is None
    assert History.from_jsonl(h.to_jsonl()).ops == ops
    assert list(h.by_key()) == ["k"] and len(h) == 4


def test_history_enforces_one_op_per_process_and_retires_after_info():
    h = History()
    a = h.invoke("c1.0", "write", "k", "v1")
    with pytest.raises(ValueError):
        h.invoke("c1.0", "read", "k")
    h.complete(a, "info")
    with pytest.raises(ValueError):        # Knossos: a crashed process never invokes again
        h.invoke("c1.0", "read", "k")
    h.complete(h.invoke("c1.1", "read", "k"), "ok")
    with pytest.raises(ValueError):
        h.invoke("c1.1", "append", "k")  # cas is a kind now (LWT)


# -- check_lww: bad histories ---------------------------------------------------------------------------

def test_stale_read_is_caught():
    ops = [W(1, "a", 10, 1, 2), W(3, "b", 20, 3, 4), R(5, "a", 10, 5, 6)]
    report = lww(ops)
    assert props(report) == {"P1"}
    assert report.violations[0]["ops"][0].value == "b"
    assert lww(ops, **NONE).ok                          # ONE/ONE promises nothing of the kind


def test_stale_absent_read_is_caught_and_a_delete_explains_one():
    assert props(lww([W(1, "a", 10, 1, 2), R(3, None, None, 3, 4)])) == {"P1"}
    assert lww([W(1, "a", 10, 1, 2), D(3, 20, 3, 4), R(5, None, None, 5, 6)]).ok
    # the delete is older than the write that had to be seen: the absent read is stale
    assert props(lww([D(1, 5, 1, 2), W(3, "a", 10, 3, 4), R(5, None, None, 5, 6)])) == {"P1"}
    # a read of the value under a newer ok delete is stale
    assert props(lww([W(1, "a", 10, 1, 2), D(3, 20, 3, 4), R(5, "a", 10, 5, 6)])) == {"P1"}


def test_flip_flop_reads_are_caught_as_non_monotonic():
    # a write that times out reached one replica; one read sees it, a later read does not
    ops = [W(1, "a", 10, 1, None, "info"), R(2, "a", 10, 2, 3), R(4, None, None, 4, 5)]
    assert props(lww(ops)) == {"P2"}
    ops = [W(1, "a", 10, 1, 2), W(3, "b", 20, 3, None, "info"), R(4, "b", 20, 4, 5), R(6, "a", 10, 6, 7)]
    report = lww(ops)
    assert props(report) == {"P2"}
    assert [o.value for o in report.violations[0]["ops"]] == ["b", "a"]
    assert lww(ops, expect_monotonic=False).ok          # ONE reads: no promise


def test_read_of_a_failed_write_is_caught():
    ops = [W(1, "a", 10, 1, 2, "fail"), R(3, "a", 10, 3, 4)]
    assert props(lww(ops, **NONE)) == {"P0"}
    assert "aborted" in lww(ops).violations[0]["why"]


def test_phantom_wrong_ts_future_and_inconsistent_reads_are_caught():
    assert props(lww([R(1, "zzz", 5, 1, 2)], **NONE)) == {"P0"}                                  # never written
    assert props(lww([W(1, "a", 10, 1, 2), R(3, "a", 11, 3, 4)], **NONE)) == {"P0"}              # wrong ts
    assert props(lww([R(1, "a", 10, 1, 2), W(3, "a", 10, 3, 4)], **NONE)) == {"P0"}              # from the future
    info = [W(1, "a", None, 1, None, "info"), R(2, "a", 10, 2, 3), R(4, "a", 12, 4, 5)]
    assert props(lww(info, **NONE)) == {"P0"}                                                    # two ts for one write
    assert props(lww([R(1, None, 33, 1, 2)], **NONE)) == {"P0"}                                  # tombstone never written


def test_read_your_writes_violation_is_caught():
    ops = [W(1, "mine", 10, 1, 2, process="c1"), W(3, "other", 5, 3, None, "info", process="c2"),
           R(4, "other", 5, 4, 5, process="c1")]
    assert props(lww(ops, expect_overlap=False, expect_monotonic=False)) == {"P4"}
    # another client reading the older value is not a P4 violation
    ops[2] = R(4, "other", 5, 4, 5, process="c3")
    assert lww(ops, expect_overlap=False, expect_monotonic=False).ok


def test_lost_update_under_skew_is_counted_and_breaks_linearizability():
    # c2's write starts after c1's returned but its coordinator's clock is behind: LWW keeps c1's
    ops = [W(1, "c1-1", 100, 1, 2, process="c1"), W(3, "c2-1", 50, 3, 4, process="c2"),
           R(5, "c1-1", 100, 5, 6, process="c3")]
    report = lww(ops)
    assert report.ok and report.stats["inversions"] == 1    # P0-P2, P4 hold in ts terms
    assert props(lww(ops, expect_ts_order=True)) == {"TS"}
    assert check_register(ops) is False
    lin = check_linearizable(History.from_ops(ops))
    assert props(lin) == {"P3"}
    assert lin.violations[0]["ops"][0].index == 5         # the read that cannot be linearized


def test_inversions_count_pairs():
    ops = [W(1, "a", 30, 1, 2), W(3, "b", 20, 3, 4), W(5, "c", 10, 5, 6), W(7, "d", 40, 7, 8)]
    assert lww(ops).stats["inversions"] == 3              # (a,b) (a,c) (b,c)
    assert lww(ops).stats["inverted_writes"] == 2


# -- check_lww: good histories ----------------------------------------------------------------------------

def test_info_writes_may_appear_later_or_never():
    later = [W(1, "a", 10, 1, 2), W(3, "b", 20, 3, None, "info"), R(5, "a", 10, 5, 6), R(7, "b", 20, 7, 8),
             R(9, "b", 20, 9, 10)]
    assert lww(later).ok                                   # took effect between the two reads
    never = [W(1, "a", 10, 1, 2), W(3, "b", 20, 3, None, "info"), R(5, "a", 10, 5, 6), R(7, "a", 10, 7, 8)]
    assert lww(never).ok
    unknown_ts = [W(1, "a", None, 1, None, "info"), R(2, "a", 99, 2, 3), R(4, "a", 99, 4, 5)]
    assert lww(unknown_ts).ok


def test_absent_reads_and_deletes():
    assert lww([R(1, None, None, 1, 2), W(3, "a", 10, 3, 4), R(5, "a", 10, 5, 6)]).ok        # initial state
    assert lww([W(1, "a", 10, 1, 2), D(3, None, 3, None, "info"), R(5, None, None, 5, 6)]).ok  # info delete
    assert lww([W(1, "a", 10, 1, 2), D(3, 20, 3, 4), R(5, None, 20, 5, 6)]).ok               # tombstone ts shown
    # concurrent delete and read: either is fine, and a failed delete explains nothing
    assert lww([W(1, "a", 10, 1, 2), D(3, 20, 3, 6), R(4, "a", 10, 4, 5)]).ok
    assert props(lww([W(1, "a", 10, 1, 2), D(3, 20, 3, 4, "fail"), R(5, None, None, 5, 6)])) == {"P1"}


def test_concurrent_reads_may_see_either_value_and_failed_reads_are_ignored():
    ops = [W(1, "a", 10, 1, 2), W(3, "b", 20, 3, 8), R(4, "b", 20, 4, 5), R(6, "b", 20, 6, 7),
           op(9, "read", "zzz", 1, 9, 10, "fail"), op(11, "read", None, None, 11, None, "info")]
    assert lww(ops).ok
    report = lww(ops)
    assert report.stats["reads"] == 2 and report.stats["writes_ok"] == 2


# -- convergence ----------------------------------------------------------------------------------------

def conv(cells_by_replica, ops):
    return check_convergence(cells_by_replica, History.from_ops(ops))


def test_non_converged_replicas_are_caught():
    ops = [W(1, "a", 10, 1, 2), W(3, "b", 20, 3, None, "info")]
    report = conv({"n1": {"k": ("a", 10)}, "n2": {"k": ("b", 20)}, "n3": {"k": ("b", 20)}}, ops)
    assert props(report) == {"P5"} and report.stats["diverged"] == 1
    assert "n1" in str(report)


def test_resurrected_delete_is_caught():
    ops = [W(1, "a", 10, 1, 2), D(3, 20, 3, 4)]
    cells = {n: {"k": ("a", 10)} for n in ("n1", "n2", "n3")}
    report = conv(cells, ops)
    assert "P7" in props(report)
    assert "resurrection" in str(report)


def test_lost_and_aborted_writes_are_caught():
    ops = [W(1, "a", 10, 1, 2), W(3, "b", 20, 3, 4)]
    assert props(conv({n: {"k": ("a", 10)} for n in "xyz"}, ops)) == {"P6"}
    assert props(conv({n: {} for n in "xyz"}, ops)) == {"P6"}                          # vanished entirely
    ops = [W(1, "a", 10, 1, 2), W(3, "b", 20, 3, 4, "fail")]
    assert props(conv({n: {"k": ("b", 20)} for n in "xyz"}, ops)) == {"P5"}            # failed write survived
    assert props(conv({n: {"k": ("a", 11)} for n in "xyz"}, ops)) == {"P5"}            # wrong ts
    # same-ts tie: the tombstone wins, so a live cell at the delete's ts is a resurrection
    assert props(conv({n: {"k": ("a", 10)} for n in "xyz"}, [W(1, "a", 10, 1, 2), D(3, 10, 3, 4)])) == {"P7"}


def test_good_final_states_are_accepted():
    ops = [W(1, "a", 10, 1, 2), W(3, "b", 20, 3, None, "info"), D(5, 15, 5, 6), W(7, "c", 12, 7, None, "info")]
    appeared = {n: {"k": ("b", 20)} for n in "xyz"}                # the info write reached a replica
    assert conv(appeared, ops).ok
    never = {n: {"k": None} for n in "xyz"}                          # it never did: the delete stands
    assert conv(never, ops).ok
    tomb = {n: {"k": (None, 15)} for n in "xyz"}                     # tombstone cells are accepted too
    assert conv(tomb, ops).ok
    mixed = {"x": {"k": (None, 15)}, "y": {}, "z": {"k": None}}     # purged vs kept tombstone agree
    assert conv(mixed, ops).ok
    assert props(conv({n: {"k": (None, 99)} for n in "xyz"}, ops)) == {"P5"}   # no delete at 99


def test_report_str_is_readable():
    report = lww([W(1, "a", 10, 1, 2, process="c1"), W(3, "b", 20, 3, 4, process="c1"),
                  R(5, "a", 10, 5, 6, process="c2")])
    text = str(report)
    assert text.startswith("check_lww: 1 violation")
    assert "P1 key=k: stale read" in text and "c2 read 'a' key=k ts=10 [5, 6] ok" in text


# -- generated good histories, and speed --------------------------------------------------------------

def atomic_store_history(seed: int, n_ops: int, clients: int = 6, keys: int = 4, info_rate=0.05, fail_rate=0.03):
    """A history of a correct store: each op takes effect atomically at one point inside its
    interval and gets the next timestamp; timed-out ops take effect later or never."""
    rng = random.Random(seed)
    h = History()
    cells: dict[str, tuple] = {}
    procs = {c: f"c{c}.0" for c in range(clients)}
    pending: dict[int, list] = {}               # client -> [handle, kind, key, value, applied, result]
    limbo: list[tuple] = []                     # info ops that may still apply
    clock, seq, issued = 0, 0, 0

    def apply(kind, key, value):
        nonlocal clock
        clock += 1
        if kind == "read":
            v, ts = cells.get(key, (None, None))
            return (v, ts if v is not None else None)
        cells[key] = (value if kind == "write" else None, clock)
        return clock

    while issued < n_ops or pending:
        c = rng.randrange(clients)
        if limbo and rng.random() < 0.05:
            kind, key, value = limbo.pop(rng.randrange(len(limbo)))
            if rng.random() < 0.5:
                apply(kind, key, value)
        p = pending.get(c)
        if p is None:
            if issued >= n_ops:
                continue
            issued += 1
            seq += 1
            kind = rng.choice(["write", "write", "read", "read", "read", "delete"])
            key = f"k{rng.randrange(keys)}"
            value = f"c{c}-{seq}" if kind == "write" else None
            pending[c] = [h.invoke(procs[c], kind, key, value), kind, key, value, False, None]
        elif not p[4] and rng.random() < 0.5:
            p[5], p[4] = apply(p[1], p[2], p[3]), True
        elif rng.random() < 0.5:
            handle, kind, key, value, applied, result = p
            del pending[c]
            roll = rng.random()
            if roll < info_rate:
                h.complete(handle, "info")
                procs[c] = f"c{c}.{seq}"
                if not applied and kind != "read":
                    limbo.append((kind, key, value))
            elif not applied and roll < info_rate + fail_rate:
                h.complete(handle, "fail")
            elif not applied:
                pending[c] = p                  # not yet: complete it later
            elif kind == "read":
                h.complete(handle, "ok", result[0], result[1])
            else:
                h.complete(handle, "ok", ts=result)
    final = {k: (v, ts) if v is not None else None for k, (v, ts) in cells.items()}
    return h, {n: dict(final) for n in ("n1", "n2", "n3")}


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_a_correct_store_passes_every_checker(seed):
    h, cells = atomic_store_history(seed, 120)
    for report in (check_lww(h, **ALL, expect_ts_order=True), check_linearizable(h), check_convergence(cells, h)):
        assert report.ok, str(report)
    assert check_lww(h, **ALL).stats["inversions"] == 0


def test_check_lww_is_fast_on_10k_ops():
    h, cells = atomic_store_history(7, 10_000, clients=10, keys=8)
    assert len(h.ops) == 10_000
    start = time.perf_counter()
    report = check_lww(h, **ALL, expect_ts_order=True)
    took = time.perf_counter() - start
    assert report.ok, str(report)
    assert took < 1.0, f"check_lww took {took:.2f}s on 10k ops"
    start = time.perf_counter()
    assert check_convergence(cells, h).ok
    assert time.perf_counter() - start < 1.0
    # an injected stale read is still found in the big history
    ops = h.ops
    last = max((o for o in ops if o.kind == "write" and o.outcome == "ok"), key=lambda o: o.ret)
    older = min((o for o in ops if o.kind == "write" and o.outcome == "ok" and o.key == last.key), key=lambda o: o.ts)
    t = h._clock + 1
    bad = History.from_ops(ops + [R(t, older.value, older.ts, t, t + 1, key=last.key, process="late")])
    assert "P1" in props(check_lww(bad, **ALL))


def test_check_linearizable_on_a_longer_history():
    h, _ = atomic_store_history(11, 2_000, clients=6, keys=4)
    start = time.perf_counter()
    report = check_linearizable(h, max_steps=1_000_000)
    took = time.perf_counter() - start
    assert report.ok and report.stats["unknown"] == 0, str(report)
    assert took < 5.0, f"WGL took {took:.2f}s on 2k ops"


def test_check_replicas_reports_each_observation_as_p9():
    assert check_replicas([]).ok
    op = Op(1, "c0.0", "write", "a", "v1", 10, 1, 2, "ok", "QUORUM")
    report = check_replicas([("a", "write acknowledged at QUORUM with ts 10, but only ['n1'] hold it", op)])
    assert not report.ok and report.properties() == {"P9"} and report.violations[0]["ops"] == [op]
