"""Linearizability checking (ring/verify/linearizability.py, WGL): the porcupine and knossos README
examples, deletes, info operations and the search budget, and agreement with a brute-force oracle
on small generated histories. Pure: no simulator, no I/O."""
from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from ring.verify.history import History, Op
from ring.verify.linearizability import check_linearizable, check_register
from tests.sim.histories import NONE, D, R, W, lww, props


# -- linearizability (WGL) ----------------------------------------------------------------------------------

def test_porcupine_readme_examples():
    # register initialised to '0' (modelled as an ok write of "0" before everything)
    init = W(0, "0", 0, -2, -1, process="init")
    good = [init, W(1, "100", 1, 1, 6, process="C0"), R(2, "100", 1, 2, 5, process="C1"),
            R(3, "0", 0, 3, 4, process="C2")]
    assert check_register(good) is True
    bad = [init, W(1, "200", 1, 1, 6, process="C0"), R(2, "200", 1, 2, 3, process="C1"),
           R(4, "0", 0, 4, 5, process="C2")]
    assert check_register(bad) is False
    assert check_linearizable(History.from_ops(good)).ok
    assert props(check_linearizable(History.from_ops(bad))) == {"P3"}


def test_knossos_readme_examples():
    # a crashed (info) write of 3 concurrent with a read of 3: linearizable
    crashed = [R(1, "3", None, 1, 4, process="0"), W(2, "3", None, 2, None, "info", process="1")]
    assert check_register(crashed) is True
    # rethink-fail-minimal: a read of 3, a value no write that happened wrote
    rethink = [W(1, "0", 1, 1, 2, process="0"), R(3, "3", None, 3, 5, process="1"), W(4, "4", 2, 4, 6, process="2"),
               R(7, "4", 2, 7, 8, process="3"), W(0, "3", 0, -2, -1, "fail", process="9")]
    assert check_register(rethink) is False
    assert props(lww(rethink, **NONE)) == {"P0"}


def test_wgl_handles_deletes_info_and_budget():
    assert check_register([W(1, "a", 1, 1, 2), D(3, 2, 3, 4), R(5, None, None, 5, 6)]) is True
    assert check_register([W(1, "a", 1, 1, 2), D(3, 2, 3, 4), R(5, "a", 1, 5, 6)]) is False
    # an info delete may take effect late: a read sees "a", a later one sees nothing
    assert check_register([W(1, "a", 1, 1, 2), D(3, None, 3, None, "info"), R(4, "a", 1, 4, 5),
                           R(6, None, None, 6, 7)]) is True
    # but not flip back
    assert check_register([W(1, "a", 1, 1, 2), D(3, None, 3, None, "info"), R(4, None, None, 4, 5),
                           R(6, "a", 1, 6, 7)]) is False
    many = [W(i, f"v{i}", i, i, None, "info") for i in range(1, 16)] + [R(100, "zzz", 1, 100, 101)]
    assert check_register(many, max_steps=50) is None
    report = check_linearizable(History.from_ops(many), max_steps=50)
    assert report.ok and report.stats["unknown"] == 1


def brute_force(ops: list[Op]) -> bool:
    """Oracle: some subset of the info writes takes effect, and some permutation of the ops that
    respects real time (a.ret < b.call => a first) explains every ok read. No memoization."""
    ops = [o for o in ops if o.outcome != "fail" and not (o.kind == "read" and o.outcome != "ok")]
    infos = [o for o in ops if o.outcome == "info"]
    for k in range(len(infos) + 1):
        for dropped in itertools.combinations(infos, k):
            chosen = [o for o in ops if o not in dropped]
            for perm in itertools.permutations(chosen):
                if any(a.ret is not None and a.ret < b.call for x, b in enumerate(perm) for a in perm[x + 1:]):
                    continue
                state, fine = None, True
                for o in perm:
                    if o.kind == "read":
                        if o.value != state:
                            fine = False
                            break
                    else:
                        state = o.value if o.kind == "write" else None
                if fine:
                    return True
    return False


@st.composite
def small_histories(draw, max_ops=7):
    n = draw(st.integers(1, max_ops))
    times = list(range(1, 2 * n + 1))
    draw(st.randoms(use_true_random=False)).shuffle(times)
    ops, values = [], [None] + [f"v{i}" for i in range(n)]
    infos = 0
    for i in range(n):
        a, b = sorted(times[2 * i: 2 * i + 2])
        kind = draw(st.sampled_from(["write", "write", "read", "read", "delete"]))
        outcome = draw(st.sampled_from(["ok", "ok", "ok", "info", "fail"]))
        if outcome == "info":
            infos += 1
            if infos > 3:
                outcome = "ok"
        value = f"v{i}" if kind == "write" else (draw(st.sampled_from(values)) if kind == "read" else None)
        ops.append(Op(i, f"p{i}", kind, "k", value, None, a, None if outcome == "info" else b, outcome))
    return ops


@settings(max_examples=400, deadline=None)
@given(small_histories())
def test_wgl_agrees_with_brute_force(ops):
    assert check_register(ops) == brute_force(ops)
