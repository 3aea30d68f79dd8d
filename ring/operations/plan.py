"""Which token ranges each gaining endpoint must fetch, and from whom, for a ring change.

Rule: pure over the node's schema and the two rings: the movements come from
ring/placement/pending.py `range_movements`, per replicated (non-system) table.
"""
from __future__ import annotations

from ring.placement.pending import range_movements


def user_tables(ctx) -> list:
    """(strategy, table) of every table in a replicated (non-system) keyspace."""
    out = []
    for name, ks in sorted(ctx.store.keyspaces.items()):
        if name == "system":
            continue
        strategy = ctx.strategy(name)
        out += [(strategy, t) for t in sorted(ks.tables.values(), key=lambda t: t.id)]
    return out


def plans_by_target(ctx, current, future, exclude_sources: frozenset = frozenset()) -> dict[str, list]:
    """{gaining endpoint: [[table_id, lo, hi, sources], ...]} for a move from current to future."""
    plans: dict[str, list] = {}
    cache: dict[object, list] = {}
    for strategy, table in user_tables(ctx):
        moves = cache.get(strategy)
        if moves is None:
            moves = cache[strategy] = range_movements(strategy, current, future, ctx.snitch)
        for m in moves:
            sources = [ep for ep in m.sources if ep not in exclude_sources]
            plans.setdefault(m.target, []).append([table.id, m.lo, m.hi, sources])
    return plans
