"""Hand-made operation histories for the checker tests: `W`, `D`, `R` build one write, delete or
read Op (process p<i> unless given, key "k"); `lww` runs check_lww expecting every property
unless told otherwise; `props` names the properties a report says were violated."""
from __future__ import annotations

from ring.verify.checkers import Report, check_lww
from ring.verify.history import History, Op


def op(i, kind, value, ts, call, ret, outcome="ok", process=None, key="k"):
    return Op(i, process or f"p{i}", kind, key, value, ts, call, ret, outcome)


def W(i, value, ts, call, ret, outcome="ok", **kw):
    return op(i, "write", value, ts, call, ret, outcome, **kw)


def D(i, ts, call, ret, outcome="ok", **kw):
    return op(i, "delete", None, ts, call, ret, outcome, **kw)


def R(i, value, ts, call, ret, **kw):
    return op(i, "read", value, ts, call, ret, **kw)


ALL = {"expect_overlap": True, "expect_monotonic": True, "expect_ryw": True}
NONE = {"expect_overlap": False, "expect_monotonic": False, "expect_ryw": False}


def lww(ops, **kw):
    return check_lww(History.from_ops(ops), **{**ALL, **kw})


def props(report: Report) -> set[str]:
    return {v["property"] for v in report.violations}
