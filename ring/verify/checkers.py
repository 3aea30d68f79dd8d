"""Checkers: what a history (and the replicas' final cells) promise, per specs/testing.md §4–5.

Pure functions over `ring.verify.history.History`; no I/O.

* `check_lww` (always on, O(n log n) sweeps): P0 no phantom or aborted reads; P1 no stale read;
  P2 monotonic reads; P4 read-your-writes; and the count of timestamp/real-time inversions.
* `check_register` / `check_linearizable` (P3) live in `ring/verify/linearizability.py`.
* `check_convergence` (P5–P7) on the replicas' final cells after heal, hints and repair; P8: after
  the final heal every live node sees every live node up (gossip converged).

Rules (the ones the checkers rely on; the workload must respect them)
--------------------------------------------------------------------
Writes and deletes
  R1. Every write writes a unique value. A delete with ts T is a write of "absent" (value None) at
      ts T: a tombstone. "Writes" below means writes and deletes unless said otherwise.
  R2. An ``ok`` write has the ts the store acknowledged. An ``info`` write may take effect at any
      time after its call, or never; its ts is unknown (None) unless recorded. A ``fail`` write
      took no effect, ever.
Reads
  R3. ``fail`` and ``info`` reads carry no information and are dropped.
  R4. A read of value v (not None) at ts T is explained only by the non-failed write of v, which
      must have been invoked before the read returned, and T must equal that write's ts when the
      ts is known. All reads of one info write must agree on its ts.
  R5. A read of nothing (value None) is "absent". With ts None it is explained by the initial
      state or by any non-failed delete invoked before the read returned. With a ts T (a test mode
      that exposes tombstones) it must match a delete at ts T (or an info delete).
  R6. "r saw at least ts X" (the P1/P2/P4 obligation) holds for a read with a ts when r.ts >= X.
      For an absent read with ts None it holds when some non-failed delete invoked before r
      returned has ts >= X, or has an unknown ts (an info delete). Same-ts ties are allowed
      (LWW resolves them deterministically: tombstone first, then the greater value).
  R7. As the *earlier* read in P2, an absent read with ts None gives no lower bound (it may have
      read the initial state).
Info ops
  R8. An info write is never required to be visible (P1, P4, P6 ignore it), may be read (P0), and
      may or may not be part of the final state (P5). For WGL it returns at +infinity and has no
      output, so it may be linearized anywhere after its call, including "never" (at the end).
Inversions
  R9. An inversion is a pair of ok writes of one key with w1.ret < w2.call and w2.ts < w1.ts:
      real time and LWW order disagree (skew). Counted always; violations only with
      ``expect_ts_order=True``.
"""
from __future__ import annotations

import bisect
from dataclasses import dataclass, field

from ring.verify.history import History, Op

NEG = -(2**63)          # "no obligation" / "no lower bound"
UNKNOWN = 2**63         # an info delete's unknown ts: it may explain any absent read


@dataclass
class Report:
    name: str = ""
    ok: bool = True
    violations: list = field(default_factory=list)
    stats: dict = field(default_factory=dict)

    def fail(self, prop: str, key: str, why: str, *ops: Op) -> None:
        self.ok = False
        self.violations.append({"property": prop, "key": key, "why": why, "ops": list(ops)})

    def properties(self) -> set[str]:
        return {v["property"] for v in self.violations}

    def __str__(self) -> str:
        verdict = "ok" if self.ok else f"{len(self.violations)} violation(s)"
        lines = [f"{self.name or 'report'}: {verdict} {self.stats}"]
        for v in self.violations[:5]:
            lines.append(f"  {v['property']} key={v['key']}: {v['why']}")
            lines.extend(f"      {op.describe()}" for op in v["ops"])
        if len(self.violations) > 5:
            lines.append(f"  ... and {len(self.violations) - 5} more")
        return "\n".join(lines)


# -- check_lww: P0, P1, P2, P4, inversions ------------------------------------------------------------

class _Deletes:
    """A key's non-failed deletes by call time, with a running max of their ts (R6)."""

    def __init__(self, ops: list[Op]):
        deletes = sorted((o for o in ops if o.kind == "delete" and o.outcome != "fail"), key=lambda o: o.call)
        self.calls = [d.call for d in deletes]
        self.ops = deletes
        self.best: list[int] = []
        top = NEG
        for d in deletes:
            top = max(top, UNKNOWN if d.ts is None else d.ts)
            self.best.append(top)

    def newest_invoked_before(self, t: int) -> int:
        i = bisect.bisect_left(self.calls, t)
        return self.best[i - 1] if i else NEG


class _PrefixMax:
    """Items sorted by a time; `before(t)` = the item with the greatest value among those with
    time < t (or None). Built once, queried with bisect: O(log n)."""

    def __init__(self, items, time, value):
        items = sorted(items, key=time)
        self.times = [time(x) for x in items]
        self.best: list = []
        top = None
        for x in items:
            if top is None or value(x) > value(top):
                top = x
            self.best.append(top)

    def before(self, t: int):
        i = bisect.bisect_left(self.times, t)
        return self.best[i - 1] if i else None


def _saw(r: Op, needed: int, deletes: _Deletes) -> bool:
    """R6: the read reflects a write at ts >= needed."""
    if r.ts is not None:
        return r.ts >= needed
    if r.value is not None:
        return True                                    # a value without ts: cannot tell (counted)
    return deletes.newest_invoked_before(r.ret) >= needed


def _lower_bound(r: Op) -> int:
    """What a read proves it saw (R7): its ts, or nothing for an absent read without ts."""
    return NEG if r.ts is None else r.ts


def check_lww(history: History, *, expect_overlap: bool, expect_monotonic: bool, expect_ryw: bool,
              expect_ts_order: bool = False) -> Report:
    """The timestamp checker. P0 always; P1 with `expect_overlap`; P2 with `expect_monotonic`; P4
    with `expect_ryw`; inversions are counted, and are violations with `expect_ts_order`."""
    report = Report("check_lww")
    stats = {"ops": 0, "keys": 0, "reads": 0, "absent_reads": 0, "reads_without_ts": 0, "writes_ok": 0,
             "writes_info": 0, "writes_fail": 0, "inversions": 0, "inverted_writes": 0}
    for key, ops in history.by_key().items():
        stats["keys"] += 1
        stats["ops"] += len(ops)
        writes = [o for o in ops if o.is_write]
        for w in writes:
            stats[f"writes_{w.outcome}"] += 1
        ok_writes = [w for w in writes if w.outcome == "ok" and w.ts is not None]
        reads = sorted((o for o in ops if o.kind == "read" and o.outcome == "ok"), key=lambda o: o.call)
        stats["reads"] += len(reads)
        stats["absent_reads"] += sum(r.value is None for r in reads)
        deletes = _Deletes(ops)

        _check_p0(report, key, writes, reads, deletes, stats)

        def saw(r: Op, needed: int, deletes=deletes) -> bool:
            return _saw(r, needed, deletes)

        if expect_overlap:                             # P1
            done = _PrefixMax(ok_writes, lambda w: w.ret, lambda w: w.ts)
            for r in reads:
                w = done.before(r.call)
                if w is not None and not saw(r, w.ts):
                    report.fail("P1", key, f"stale read: saw ts {r.ts}, but an ok write at ts {w.ts} returned "
                                           f"(t={w.ret}) before the read began (t={r.call})", w, r)
        if expect_monotonic:                           # P2
            seen = _PrefixMax([r for r in reads if _lower_bound(r) != NEG], lambda r: r.ret, _lower_bound)
            for r in reads:
                r1 = seen.before(r.call)
                if r1 is not None and not saw(r, r1.ts):
                    report.fail("P2", key, f"non-monotonic reads: a read that returned at t={r1.ret} saw ts {r1.ts}, "
                                           f"a later one (t={r.call}) saw ts {r.ts}", r1, r)
        if expect_ryw:                                 # P4
            mine: dict[str, list[Op]] = {}
            for w in ok_writes:
                mine.setdefault(w.process, []).append(w)
            own = {p: _PrefixMax(ws, lambda w: w.ret, lambda w: w.ts) for p, ws in mine.items()}
            for r in reads:
                w = own[r.process].before(r.call) if r.process in own else None
                if w is not None and not saw(r, w.ts):
                    report.fail("P4", key, f"read-your-writes: {r.process} wrote at ts {w.ts}, then read ts {r.ts}",
                                w, r)

        pairs, inverted = _inversions(ok_writes)       # R9
        stats["inversions"] += pairs
        stats["inverted_writes"] += len(inverted)
        if expect_ts_order:
            for w1, w2 in inverted:
                report.fail("TS", key, f"ts/real-time inversion: a write that began after another returned got "
                                       f"an older ts ({w2.ts} < {w1.ts}); LWW drops it", w1, w2)
    report.stats = stats
    return report


def _check_p0(report: Report, key: str, writes: list[Op], reads: list[Op], deletes: _Deletes, stats: dict) -> None:
    """R4/R5: every read is explained by a write that could have produced it."""
    by_value: dict[str, list[Op]] = {}
    for w in writes:
        if w.kind == "write":
            by_value.setdefault(w.value, []).append(w)
    tomb_call: dict[int, int] = {}                    # delete ts -> earliest call of a delete with it
    info_delete_call = UNKNOWN                         # earliest call of a delete with unknown ts
    for d in deletes.ops:
        if d.ts is None:
            info_delete_call = min(info_delete_call, d.call)
        else:
            tomb_call[d.ts] = min(tomb_call.get(d.ts, UNKNOWN), d.call)
    info_ts: dict[str, Op] = {}                        # info write's value -> first read that fixed its ts
    for r in reads:
        if r.value is None:
            if r.ts is None:
                continue                               # absent: initial state or some delete (R5)
            if not (tomb_call.get(r.ts, UNKNOWN) < r.ret or info_delete_call < r.ret):
                report.fail("P0", key, f"read a tombstone at ts {r.ts} that no (non-failed) delete wrote", r)
            continue
        if r.ts is None:
            stats["reads_without_ts"] += 1
        cands = by_value.get(r.value, [])
        if not cands:
            report.fail("P0", key, f"phantom read: {r.value!r} was never written", r)
            continue
        live = [w for w in cands if w.outcome != "fail"]
        if not live:
            report.fail("P0", key, "aborted read: the value of a write that definitely failed", cands[0], r)
            continue
        w = next((w for w in live if w.ts is not None and w.ts == r.ts), live[0])
        if w.call > r.ret:
            report.fail("P0", key, "read from the future: the write was invoked after the read returned", w, r)
        elif r.ts is not None and w.ts is not None and r.ts != w.ts:
            report.fail("P0", key, f"read {r.value!r} at ts {r.ts}, but it was written at ts {w.ts}", w, r)
        elif r.ts is not None and w.ts is None:
            first = info_ts.setdefault(r.value, r)
            if first.ts != r.ts:
                report.fail("P0", key, f"two reads of one write disagree on its ts ({first.ts} vs {r.ts})",
                            w, first, r)


class _Fenwick:
    def __init__(self, n: int):
        self.tree = [0] * (n + 1)

    def add(self, i: int) -> None:
        i += 1
        while i < len(self.tree):
            self.tree[i] += 1
            i += i & -i

    def count_le(self, i: int) -> int:
        i += 1
        s = 0
        while i > 0:
            s += self.tree[i]
            i -= i & -i
        return s


def _inversions(ok_writes: list[Op]) -> tuple[int, list[tuple[Op, Op]]]:
    """Pairs (w1, w2) with w1.ret < w2.call and w2.ts < w1.ts, counted in O(n log n). Also returns,
    for each inverted w2, the newest-ts w1 that had returned before it began."""
    ranks = {ts: i for i, ts in enumerate(sorted({w.ts for w in ok_writes}))}
    tree = _Fenwick(len(ranks))
    ended = sorted(ok_writes, key=lambda w: w.ret)
    j, inserted, top, pairs, inverted = 0, 0, None, 0, []
    for w2 in sorted(ok_writes, key=lambda w: w.call):
        while j < len(ended) and ended[j].ret < w2.call:
            tree.add(ranks[ended[j].ts])
            inserted += 1
            if top is None or ended[j].ts > top.ts:
                top = ended[j]
            j += 1
        newer = inserted - tree.count_le(ranks[w2.ts])
        if newer:
            pairs += newer
            inverted.append((top, w2))
    return pairs, inverted


# -- convergence (P5–P7) -----------------------------------------------------------------------------

def _absent(cell) -> bool:
    return cell is None or cell[0] is None


def _same(a, b) -> bool:
    """Replica cells agree: equal live cells; absent/tombstone cells agree unless both carry
    differing tombstone timestamps."""
    if _absent(a) or _absent(b):
        if not (_absent(a) and _absent(b)):
            return False
        ta, tb = (a[1] if a else None), (b[1] if b else None)
        return ta is None or tb is None or ta == tb
    return tuple(a) == tuple(b)


def check_convergence(replica_cells: dict, history: History, unseen: list | None = None) -> Report:
    """replica_cells: {replica: {key: (value, ts) | (None, tombstone_ts) | None}} after heal, hints and
    repair; a key missing from a replica's dict is absent there.

    P5: all replicas hold the same cell per key; it is a cell some ok or info write produced (value
    and ts), and no ok write beats it (higher ts, or same ts and it wins the tie: tombstone, then
    greater value). P6: every ok write is present or superseded by a higher ts (or a delete at >= ts).
    P7: after an ok delete d the final cell is absent or newer than d (ts > d.ts). P8: `unseen`,
    the (observer, peer) pairs where a live node still saw a live peer down after the final heal
    and its grace period (None or empty: every node saw every node up)."""
    report = Report("check_convergence")
    if unseen:
        report.fail("P8", "*", f"membership did not converge after the final heal: {len(unseen)} live peer(s) "
                               f"still seen down, e.g. {unseen[0][0]}: {unseen[0][1]}")
    by_key = history.by_key()
    keys = sorted({k for cells in replica_cells.values() for k in cells} | set(by_key))
    diverged = 0
    for key in keys:
        finals = {rep: cells.get(key) for rep, cells in replica_cells.items()}
        distinct: list = []
        for cell in finals.values():
            if not any(_same(cell, d) for d in distinct):
                distinct.append(cell)
        if len(distinct) > 1:
            diverged += 1
            report.fail("P5", key, f"replicas differ: {dict(sorted(finals.items()))}")
        ops = by_key.get(key, [])
        for cell in distinct:
            where = "" if len(distinct) == 1 else \
                f" on {sorted(rep for rep, c in finals.items() if _same(c, cell))}"
            _check_final_cell(report, key, cell, ops, where)
    report.stats = {"keys": len(keys), "replicas": len(replica_cells), "diverged": diverged}
    return report


def _check_final_cell(report: Report, key: str, cell, ops: list[Op], where: str) -> None:
    writes = [o for o in ops if o.is_write and o.outcome != "fail"]
    ok = [w for w in writes if w.outcome == "ok" and w.ts is not None]
    if _absent(cell):
        tomb_ts = cell[1] if cell else None
        if tomb_ts is not None and not any(d.kind == "delete" and d.ts in (tomb_ts, None) for d in writes):
            report.fail("P5", key, f"final tombstone at ts {tomb_ts}{where} matches no delete")
        newest_delete = max((UNKNOWN if d.ts is None else d.ts for d in writes if d.kind == "delete"), default=NEG)
        if tomb_ts is not None:
            newest_delete = tomb_ts
        lost = [w for w in ok if w.kind == "write" and w.ts > newest_delete]
        if lost:
            w = max(lost, key=lambda w: w.ts)
            report.fail("P6", key, f"ok write at ts {w.ts} is gone{where}, and no delete at >= ts superseded it", w)
        return
    value, ts = cell
    source = next((w for w in ops if w.kind == "write" and w.value == value), None)
    if source is None:
        report.fail("P5", key, f"final value {value!r}{where} was never written")
    elif source.outcome == "fail":
        report.fail("P5", key, f"final value {value!r}{where} comes from a write that definitely failed", source)
    elif source.ts is not None and source.ts != ts:
        report.fail("P5", key, f"final cell {value!r}@{ts}{where}, but it was written at ts {source.ts}", source)
    lost = [w for w in ok if w.kind == "write" and (w.ts > ts or (w.ts == ts and w.value > value))]
    if lost:
        w = max(lost, key=lambda w: (w.ts, w.value))
        report.fail("P6", key, f"ok write {w.value!r}@{w.ts} lost: the final cell{where} is {value!r}@{ts}", w)
    resurrected = [d for d in ok if d.kind == "delete" and d.ts >= ts]
    if resurrected:
        d = max(resurrected, key=lambda d: d.ts)
        report.fail("P7", key, f"resurrection: deleted at ts {d.ts}, but {value!r}@{ts}{where} is back", d)


# -- P9: acknowledged data on enough replicas (observed by ring/verify/endings.py) ---------------------

def check_replicas(observed: list) -> Report:
    """observed: (key, why, op) per obligation the replica watch found unmet (one per key and ts)."""
    report = Report("check_replicas")
    for key, why, op in observed:
        report.fail("P9", key, why, op)
    report.stats = {"unmet": len(observed)}
    return report
