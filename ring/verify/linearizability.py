"""Linearizability (P3): a Wing-Gong-Lowe search per key, memoized on (linearized set, register
state), with info ops returning at +infinity and a step budget (None = unknown). The history rules
it relies on (R1-R8) are in ring/verify/checkers.py's docstring.

Pure functions over `ring.verify.history.History`; no I/O.
"""
from __future__ import annotations

from ring.verify.checkers import Report
from ring.verify.history import History, Op


def _register_ops(ops: list[Op]) -> list[Op]:
    """Failed ops never happened; info reads carry no output (R3, R8)."""
    return [o for o in ops if o.outcome == "ok" or (o.outcome == "info" and o.is_write)]


def check_register(ops: list[Op], max_steps: int = 100_000) -> bool | None:
    """Is this one-key history linearizable as a register that starts absent (None)? Writes set
    their value, deletes set None, reads must return the current value, an ok cas
    needs its expected value and sets its own (an info cas applies wherever its expectation
    holds, or never). None = step budget spent."""
    return _wgl(_register_ops(ops), max_steps)[0]


def _wgl(ops: list[Op], max_steps: int) -> tuple[bool | None, int]:
    n = len(ops)
    if n == 0:
        return True, 0
    inf = max([o.call for o in ops] + [o.ret or 0 for o in ops]) + 1
    # calls sort before returns at equal times: equal times count as concurrent
    events = sorted([(o.call, 0, i) for i, o in enumerate(ops)] +
                    [(inf if o.ret is None else o.ret, 1, i) for i, o in enumerate(ops)])
    m = len(events)
    head = m                                            # sentinel
    nxt = list(range(1, m + 1)) + [0]
    nxt[m - 1] = -1
    prv = [head] + list(range(m - 1)) + [-1]
    ret_pos = [0] * n
    for pos, (_, is_ret, i) in enumerate(events):
        if is_ret:
            ret_pos[i] = pos

    def unlink(p: int) -> None:
        q = nxt[p]
        nxt[prv[p]] = q
        if q != -1:
            prv[q] = prv[p]

    def relink(p: int) -> None:
        q = nxt[p]
        nxt[prv[p]] = p
        if q != -1:
            prv[q] = p

    state: str | None = None
    linearized = 0
    stack: list[tuple[int, str | None]] = []
    cache: set[tuple[int, str | None]] = set()
    steps = 0
    entry = nxt[head]
    while nxt[head] != -1:
        steps += 1
        if steps > max_steps:
            return None, steps
        _, is_ret, i = events[entry]
        if not is_ret:
            op = ops[i]
            if op.kind == "read":
                ok, new_state = op.value == state, state
            elif op.kind == "cas":  # an info cas applies only where its expectation holds
                if op.outcome == "info":
                    ok, new_state = True, (op.value if state == op.expected else state)
                else:
                    ok, new_state = state == op.expected, op.value
            else:
                ok, new_state = True, (op.value if op.kind == "write" else None)
            if ok:
                lin = linearized | (1 << i)
                memo = (lin, new_state)
                if memo not in cache:
                    cache.add(memo)
                    stack.append((entry, state))
                    state, linearized = new_state, lin
                    unlink(entry)
                    unlink(ret_pos[i])
                    entry = nxt[head]
                    continue
            entry = nxt[entry]
        else:                                           # an op must have taken effect by now: backtrack
            if not stack:
                return False, steps
            entry, state = stack.pop()
            i = events[entry][2]
            linearized &= ~(1 << i)
            relink(ret_pos[i])
            relink(entry)
            entry = nxt[entry]
    return True, steps


def _prefix(ops: list[Op], t: int) -> list[Op]:
    """The history as it stood at time t: ops returned later become pending (writes: info; reads:
    dropped, their output is not known yet)."""
    out = []
    for o in ops:
        if o.call > t:
            continue
        if o.ret is not None and o.ret > t:
            if o.kind == "read":
                continue
            o = Op(o.index, o.process, o.kind, o.key, o.value, o.ts, o.call, None, "info", o.level, o.expected)
        out.append(o)
    return out


def _first_failure(ops: list[Op], max_steps: int) -> tuple[Op, list[Op]] | None:
    """Binary search for the earliest return after which no linearization exists (non-
    linearizability is preserved by extension). Returns (the op whose return breaks it, the prefix)."""
    rets = sorted(o.ret for o in ops if o.ret is not None)
    lo, hi = 0, len(rets) - 1
    if hi < 0:
        return None
    while lo < hi:
        mid = (lo + hi) // 2
        verdict = _wgl(_prefix(ops, rets[mid]), max_steps)[0]
        if verdict is None:
            return None
        if verdict:
            lo = mid + 1
        else:
            hi = mid
    culprit = next(o for o in ops if o.ret == rets[lo])
    return culprit, _prefix(ops, rets[lo])


def check_linearizable(history: History, max_steps: int = 100_000) -> Report:
    """P3 per key (P-compositionality). Keys whose search exceeds `max_steps` are 'unknown'."""
    report = Report("check_linearizable")
    unknown, steps_total, by_key = [], 0, history.by_key()
    for key, ops in by_key.items():
        reg = _register_ops(ops)
        verdict, steps = _wgl(reg, max_steps)
        steps_total += steps
        if verdict is None:
            unknown.append(key)
        elif not verdict:
            found = _first_failure(reg, max_steps)
            if found is None:
                report.fail("P3", key, "no linearization exists for this key's operations", *reg[:8])
            else:
                culprit, prefix = found
                original = {o.index: o for o in reg}
                recent = [original.get(o.index, o) for o in sorted(prefix, key=lambda o: o.call)
                          if o.index != culprit.index][-7:]
                report.fail("P3", key, f"no linearization exists once #{culprit.index} returns (t={culprit.ret}); "
                                       f"{len(prefix)} ops up to then, the culprit and the latest shown",
                            culprit, *recent)
    report.stats = {"keys": len(by_key), "unknown": len(unknown), "unknown_keys": unknown[:10], "steps": steps_total}
    return report
