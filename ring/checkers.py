"""Checkers: what a history (and the replicas' final cells) promise, per specs/testing.md §4–5.

* `check_lww` (always on, sweeps): P0 no phantom or aborted reads; P1 no stale read (r.ts >= every
  ok write that returned before r was called); P2 monotonic reads; P4 read-your-writes; and a
  count of timestamp/real-time inversions. A read that finds nothing is explained only by a delete
  (ok or info, invoked before the read returned) at least as new as what it had to see.
* `check_register` / `check_linearizable` (P3): Wing-Gong-Lowe search per key with memoization,
  info ops returning at +infinity, a step budget (None = unknown).
* `check_convergence` (P5–P7) on the replicas' final cells after heal and repair.
"""
from __future__ import annotations

import bisect
from dataclasses import dataclass, field

from ring.history import History, Op

UNKNOWN_TS = 2**63  # an info op's timestamp: it may be anything


@dataclass
class Report:
    name: str
    ok: bool = True
    violations: list = field(default_factory=list)
    stats: dict = field(default_factory=dict)

    def fail(self, prop: str, key: str, why: str, *ops: Op) -> None:
        self.ok = False
        self.violations.append({"property": prop, "key": key, "why": why, "ops": list(ops)})

    def __str__(self) -> str:
        head = f"{self.name}: {'ok' if self.ok else f'{len(self.violations)} violation(s)'} {self.stats}"
        lines = [head]
        for v in self.violations[:5]:
            lines.append(f"  {v['property']} key={v['key']}: {v['why']}")
            for op in v["ops"]:
                lines.append(f"      {op.process} {op.kind} {op.value!r} ts={op.ts} [{op.call}, {op.ret}] "
                             f"{op.outcome} {op.level}")
        return "\n".join(lines)


def _writes(ops):
    return [o for o in ops if o.kind in ("write", "delete")]


class _DeleteIndex:
    """Non-failed deletes by call time, with a running max of their timestamps. An info delete's
    timestamp is unknown (the client never got it), so it may explain anything after its call."""

    def __init__(self, ops):
        deletes = sorted((o for o in ops if o.kind == "delete" and o.outcome != "fail"), key=lambda o: o.call)
        self.calls = [d.call for d in deletes]
        self.max_ts, best = [], -1
        for d in deletes:
            best = max(best, UNKNOWN_TS if d.ts is None else d.ts)
            self.max_ts.append(best)

    def newest_before(self, t: int) -> int:
        """The newest timestamp of a delete invoked before time t (-1 if none)."""
        i = bisect.bisect_left(self.calls, t)
        return self.max_ts[i - 1] if i else -1


def check_lww(history: History, *, expect_overlap: bool, expect_monotonic: bool, expect_ryw: bool) -> Report:
    report = Report("check_lww")
    inversions = 0
    for key, ops in history.by_key().items():
        by_value = {o.value: o for o in _writes(ops) if o.kind == "write"}
        deletes = _DeleteIndex(ops)
        reads = sorted((o for o in ops if o.kind == "read" and o.outcome == "ok"), key=lambda o: o.call)
        for r in reads:  # P0
            if r.value is None:
                continue
            w = by_value.get(r.value)
            if w is None:
                report.fail("P0", key, f"read {r.value!r}, which no write wrote", r)
            elif w.outcome == "fail":
                report.fail("P0", key, "read the value of a write that definitely failed", r, w)
            elif w.ts is not None and r.ts != w.ts:
                report.fail("P0", key, f"read {r.value!r} at ts {r.ts}, but it was written at {w.ts}", r, w)
        ok_writes = sorted((o for o in _writes(ops) if o.outcome == "ok"), key=lambda o: o.ret)
        rets = [w.ret for w in ok_writes]
        prefix, best = [], None
        for w in ok_writes:
            if best is None or w.ts > best.ts:
                best = w
            prefix.append(best)
        inversions += _inversions(ok_writes)  # only counted: 0 in skew-free runs

        def explains(r: Op, needed_ts: int) -> bool:
            if r.value is not None:
                return r.ts is not None and r.ts >= needed_ts
            return deletes.newest_before(r.ret) >= needed_ts

        if expect_overlap:  # P1
            for r in reads:
                i = bisect.bisect_left(rets, r.call)
                if i and not explains(r, prefix[i - 1].ts):
                    report.fail("P1", key, f"stale read: an ok write at ts {prefix[i - 1].ts} returned before "
                                           "this read began", r, prefix[i - 1])
        if expect_monotonic:  # P2
            seen = sorted((r for r in reads if r.value is not None), key=lambda r: r.ret)
            seen_rets, seen_prefix, top = [r.ret for r in seen], [], None
            for r in seen:
                top = r if top is None or r.ts > top.ts else top
                seen_prefix.append(top)
            for r in reads:
                i = bisect.bisect_left(seen_rets, r.call)
                if i and not explains(r, seen_prefix[i - 1].ts):
                    report.fail("P2", key, "non-monotonic: an earlier read saw a newer timestamp", seen_prefix[i - 1], r)
        if expect_ryw:  # P4
            by_process: dict[str, list[Op]] = {}
            for w in ok_writes:
                by_process.setdefault(w.process, []).append(w)
            for r in reads:
                mine = [w for w in by_process.get(r.process, []) if w.ret < r.call]
                if mine:
                    newest = max(mine, key=lambda w: w.ts)
                    if not explains(r, newest.ts):
                        report.fail("P4", key, "a client did not read its own acknowledged write", newest, r)
    report.stats = {"ops": len(history.ops), "inversions": inversions}
    return report


def _inversions(ok_writes: list[Op]) -> int:
    """Pairs w1.ret < w2.call with w2.ts < w1.ts (LWW ordering against real time)."""
    by_call = sorted(ok_writes, key=lambda w: w.call)
    count, best = 0, -1
    ended = sorted(ok_writes, key=lambda w: w.ret)
    j = 0
    for w2 in by_call:
        while j < len(ended) and ended[j].ret < w2.call:
            best = max(best, ended[j].ts)
            j += 1
        if w2.ts is not None and w2.ts < best:
            count += 1
    return count


# -- linearizability (P3): Wing-Gong-Lowe with memoization -------------------------------------

def check_register(ops: list[Op], max_steps: int = 100_000) -> bool | None:
    """Is this one-key history linearizable as a register (initially absent)? None = budget spent."""
    ops = [o for o in ops if o.outcome != "fail" and not (o.kind == "read" and o.outcome != "ok")]
    n = len(ops)
    if n == 0:
        return True
    infinity = max([o.call for o in ops] + [o.ret or 0 for o in ops]) + 1
    events = []
    for i, o in enumerate(ops):
        events.append((o.call, 0, i))
        events.append((o.ret if o.ret is not None else infinity + i, 1, i))
    events.sort()
    m = len(events)
    nxt = list(range(1, m + 1))
    prv = list(range(-1, m - 1))
    head = 0
    ret_pos = {}
    for pos, (_, kind, i) in enumerate(events):
        if kind == 1:
            ret_pos[i] = pos

    def unlink(pos: int) -> None:
        nonlocal head
        p, q = prv[pos], nxt[pos]
        if p >= 0:
            nxt[p] = q
        else:
            head = q
        if q < m:
            prv[q] = p

    def relink(pos: int) -> None:
        nonlocal head
        p, q = prv[pos], nxt[pos]
        if p >= 0:
            nxt[p] = pos
        else:
            head = pos
        if q < m:
            prv[q] = pos

    state, linearized, stack, cache, steps = None, 0, [], set(), 0
    entry = head
    while head < m:
        steps += 1
        if steps > max_steps:
            return None
        if entry >= m:
            return False
        _, kind, i = events[entry]
        if kind == 0:
            op = ops[i]
            if op.kind == "read":
                ok, new_state = op.value == state, state
            else:
                ok, new_state = True, (op.value if op.kind == "write" else None)
            lin = linearized | (1 << i)
            if ok and (lin, new_state) not in cache:
                cache.add((lin, new_state))
                stack.append((entry, state))
                state, linearized = new_state, lin
                unlink(entry)
                unlink(ret_pos[i])
                entry = head
                continue
            entry = nxt[entry]
        else:
            if not stack:
                return False
            entry, state = stack.pop()
            _, _, i = events[entry]
            linearized &= ~(1 << i)
            relink(ret_pos[i])
            relink(entry)
            entry = nxt[entry]
    return True


def check_linearizable(history: History, max_steps: int = 100_000) -> Report:
    report = Report("check_linearizable")
    unknown = 0
    for key, ops in history.by_key().items():
        verdict = check_register(ops, max_steps)
        if verdict is None:
            unknown += 1
        elif not verdict:
            report.fail("P3", key, "no linearization exists for this key's operations", *ops[:6])
    report.stats = {"keys": len(history.by_key()), "unknown": unknown}
    return report


# -- convergence (P5–P7) -------------------------------------------------------------------------

def check_convergence(replica_cells: dict, history: History) -> Report:
    """replica_cells: {replica: {key: (value, ts) | None}} after heal, hints and repair."""
    report = Report("check_convergence")
    by_key = history.by_key()
    keys = {k for cells in replica_cells.values() for k in cells} | set(by_key)
    for key in sorted(keys):
        finals = {rep: cells.get(key) for rep, cells in replica_cells.items()}
        distinct = set(finals.values())
        if len(distinct) > 1:
            report.fail("P5", key, f"replicas differ: {finals}")
            continue
        final = distinct.pop() if distinct else None
        ops = by_key.get(key, [])
        writes = _writes(ops)
        ok = [w for w in writes if w.outcome == "ok"]
        newest_ok = max(ok, key=lambda w: w.ts) if ok else None
        if final is not None:
            value, ts = final
            source = next((w for w in writes if w.kind == "write" and w.value == value), None)
            if source is None or source.outcome == "fail":
                report.fail("P5", key, f"final value {value!r} was never (successfully) written")
            if newest_ok is not None and ts < newest_ok.ts:
                report.fail("P6", key, f"final ts {ts} is older than an ok write at {newest_ok.ts}", newest_ok)
            for d in (w for w in ok if w.kind == "delete"):
                if ts <= d.ts:
                    report.fail("P7", key, f"deleted at {d.ts} but {value!r} (ts {ts}) came back", d)
        elif newest_ok is not None and newest_ok.kind == "write":
            newer_delete = any(w.kind == "delete" and w.outcome != "fail" and (w.ts is None or w.ts >= newest_ok.ts)
                               for w in writes)
            if not newer_delete:
                report.fail("P6", key, "an ok write is gone and no delete superseded it", newest_ok)
    report.stats = {"keys": len(keys), "replicas": len(replica_cells)}
    return report
