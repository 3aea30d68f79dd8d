"""The checkers catch hand-made bad histories and accept good ones; WGL agrees with brute force."""
import itertools

from hypothesis import given, strategies as st

from ring.checkers import check_convergence, check_linearizable, check_lww, check_register
from ring.history import History, Op


def op(i, kind, value, ts, call, ret, outcome="ok", process="p", key="k"):
    return Op(i, process, kind, key, value, ts, call, ret, outcome)


def lww(ops, **kw):
    kw = {"expect_overlap": True, "expect_monotonic": True, "expect_ryw": True, **kw}
    return check_lww(History.from_ops(ops), **kw)


def test_stale_read_is_caught():
    ops = [op(1, "write", "a", 10, 1, 2), op(3, "write", "b", 20, 3, 4), op(5, "read", "a", 10, 5, 6, process="q")]
    report = lww(ops)
    assert not report.ok and report.violations[0]["property"] == "P1"
    assert lww(ops, expect_overlap=False, expect_monotonic=False, expect_ryw=False).ok


def test_read_of_a_failed_write_is_caught():
    ops = [op(1, "write", "a", 10, 1, 2, outcome="fail"), op(3, "read", "a", 10, 3, 4)]
    assert lww(ops).violations[0]["property"] == "P0"


def test_phantom_and_info_writes():
    assert lww([op(1, "read", "zzz", 5, 1, 2)]).violations[0]["property"] == "P0"
    info = [op(1, "write", "a", 10, 1, None, outcome="info"), op(3, "read", "a", 10, 3, 4)]
    assert lww(info).ok            # an info write may have applied


def test_flip_flop_reads_are_caught_as_non_monotonic():
    ops = [op(1, "write", "a", 10, 1, None, outcome="info", process="w"),
           op(2, "read", "a", 10, 2, 3, process="r1"), op(4, "read", None, None, 4, 5, process="r2")]
    report = lww(ops)
    assert not report.ok and {v["property"] for v in report.violations} == {"P2"}


def test_read_your_writes_violation():
    ops = [op(1, "write", "mine", 10, 1, 2, process="c1"),
           op(3, "write", "other", 5, 3, None, outcome="info", process="c2"),
           op(4, "read", "other", 5, 4, 5, process="c1")]
    props = {v["property"] for v in lww(ops, expect_overlap=False, expect_monotonic=False).violations}
    assert props == {"P4"}


def test_deletes_explain_absent_reads():
    ops = [op(1, "write", "a", 10, 1, 2), op(3, "delete", None, 20, 3, 4), op(5, "read", None, None, 5, 6)]
    assert lww(ops).ok
    ops = [op(1, "write", "a", 10, 1, 2), op(3, "read", None, None, 3, 4)]
    assert not lww(ops).ok


def test_skew_inversions_are_counted():
    ops = [op(1, "write", "a", 100, 1, 2), op(3, "write", "b", 50, 3, 4)]   # later write, older ts
    assert lww(ops).stats["inversions"] == 1


def test_linearizability_examples():
    good = [op(1, "write", "a", 1, 1, 4), op(2, "read", "a", 1, 2, 3), op(5, "read", "a", 1, 5, 6)]
    assert check_register(good) is True
    # Knossos-style: the write completed, then a read returns the initial (absent) state
    bad = [op(1, "write", "a", 1, 1, 2), op(3, "read", None, None, 3, 4)]
    assert check_register(bad) is False
    # concurrent write and reads may see either value, but not go back
    flip = [op(1, "write", "a", 1, 1, 10), op(2, "read", "a", 1, 2, 3), op(4, "read", None, None, 4, 5)]
    assert check_register(flip) is False
    assert not check_linearizable(History.from_ops(bad)).ok


def brute_force(ops):
    ops = [o for o in ops if o.outcome != "fail" and not (o.kind == "read" and o.outcome != "ok")]
    inf = 10**9
    for perm in itertools.permutations(range(len(ops))):
        pos = {i: k for k, i in enumerate(perm)}
        if any(pos[a] > pos[b] for a in range(len(ops)) for b in range(len(ops))
               if (ops[a].ret if ops[a].ret is not None else inf) < ops[b].call):
            continue
        state, ok = None, True
        for i in perm:
            o = ops[i]
            if o.kind == "read":
                if o.value != state:
                    ok = False
                    break
            else:
                state = o.value if o.kind == "write" else None
        if ok:
            return True
    return False


@st.composite
def small_histories(draw):
    n = draw(st.integers(1, 5))
    times = list(range(1, 2 * n + 1))
    draw(st.randoms()).shuffle(times)
    ops = []
    for i in range(n):
        a, b = sorted(times[2 * i: 2 * i + 2])
        kind = draw(st.sampled_from(["write", "read", "delete"]))
        value = f"v{i}" if kind == "write" else (draw(st.sampled_from([None, "v0", "v1", "v2"])) if kind == "read" else None)
        outcome = draw(st.sampled_from(["ok", "ok", "ok", "info"])) if kind != "read" else "ok"
        ops.append(op(a, kind, value, i, a, None if outcome == "info" else b, outcome))
    return ops


@given(small_histories())
def test_wgl_agrees_with_brute_force(ops):
    # info ops may also never take effect: brute force covers that by trying with each info op dropped
    infos = [o for o in ops if o.outcome == "info"]
    expected = any(brute_force([o for o in ops if o not in drop])
                   for k in range(len(infos) + 1) for drop in itertools.combinations(infos, k))
    assert check_register(ops) == expected


def test_convergence_catches_divergence_and_resurrection():
    ops = [op(1, "write", "a", 10, 1, 2), op(3, "delete", None, 20, 3, 4)]
    h = History.from_ops(ops)
    assert check_convergence({"n1": {"k": None}, "n2": {"k": None}}, h).ok
    assert check_convergence({"n1": {"k": None}, "n2": {"k": ("a", 10)}}, h).violations[0]["property"] == "P5"
    props = {v["property"] for v in check_convergence({"n1": {"k": ("a", 10)}, "n2": {"k": ("a", 10)}}, h).violations}
    assert "P7" in props
