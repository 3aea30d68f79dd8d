"""SELECT against the schema: Cassandra's restriction rules, the result columns, the read plan. Pure.

Which op answers (plan.ReadPlan): the whole partition key restricted by = / IN -> `select`
(a clustering prefix of = then one slice on the next column); `token(pk...)` bounds or no
restriction -> `scan` over (start, end] tokens; an equality on an indexed column -> `index_query`.
Anything else needs ALLOW FILTERING (Cassandra's refusal otherwise) and becomes a scan whose
rows the executor filters. `Binder` collects bind specs and pk_indexes for prepare.py.
"""
from __future__ import annotations

from engine.errors import InvalidRequest
from engine.schema import Table
from ring.cql import ast
from ring.cql.literal import convert
from ring.cql.plan import ReadPlan
from ring.cql.result import ColumnSpec
from ring.cql.types import CqlType, parse_type

FILTERING = ("Cannot execute this query as it might involve data filtering and thus may have unpredictable "
             "performance. If you want to execute this query despite the performance unpredictability, "
             "use ALLOW FILTERING")
BIGINT, INT = CqlType("bigint"), CqlType("int")
MIN_TOKEN = -(1 << 63)


def table_of(keyspaces, keyspace: str | None, name: str):
    if not keyspace:
        raise InvalidRequest("No keyspace has been specified. USE a keyspace, or explicitly specify keyspace.tablename")
    ks = keyspaces.get(keyspace)
    if ks is None:
        raise InvalidRequest(f"Keyspace {keyspace} does not exist")
    table = ks.tables.get(name)
    if table is None:
        raise InvalidRequest(f"table {name} does not exist")
    return table


class Binder:
    """The bind markers' specs by position, and the partition key's marker positions."""

    def __init__(self, count: int):
        self.slots: list[ColumnSpec | None] = [None] * count
        self.pk_indexes: tuple[int, ...] = ()

    def bind(self, marker: ast.BindMarker, spec: ColumnSpec, column=None):
        self.slots[marker.index] = spec

    def in_source(self, relation, col, table, source):
        if isinstance(relation.value, ast.BindMarker):
            t = CqlType("list", (parse_type(col.cql_type),))
            self.bind(relation.value, ColumnSpec(table.keyspace, table.name,
                                                 relation.value.name or f"in({col.name})", t))
            return relation.value
        return [source(self, v, col, table) if not isinstance(v, ast.BindMarker) else self._unsupported(col)
                for v in relation.value.items]

    def _unsupported(self, col):
        raise InvalidRequest(f"bind markers inside IN (...) on {col.name} are not supported yet; use {col.name} IN ?")

    def note_key(self, table, columns, values):
        """INSERT: pk_indexes from the VALUES markers."""
        by_col = {c: v for c, v in zip(columns, values)}
        self._note(table, by_col)

    def note_where_key(self, table, where):
        self._note(table, {r.column: r.value for r in where if isinstance(r, ast.Relation) and r.op == "="})

    def _note(self, table, by_col: dict):
        markers = [by_col.get(c.name) for c in table.partition_key]
        if all(isinstance(m, ast.BindMarker) for m in markers):
            self.pk_indexes = tuple(m.index for m in markers)

    def specs(self) -> tuple[ColumnSpec, ...]:
        assert all(s is not None for s in self.slots), "every bind marker gets a spec"
        return tuple(self.slots)


def _value(binder, term, col, table):
    t = parse_type(col.cql_type)
    if isinstance(term, ast.BindMarker):
        binder.bind(term, ColumnSpec(table.keyspace, table.name, term.name or col.name, t))
        return term
    value = convert(term, t, col.name)
    if value is None:
        raise InvalidRequest(f"Invalid null value in condition for column {col.name}")
    return value


def _int_source(binder, term, table, name: str, t: CqlType = INT):
    if term is None:
        return None
    if isinstance(term, ast.BindMarker):
        binder.bind(term, ColumnSpec(table.keyspace, table.name, term.name or name, t))
        return term
    value = convert(term, t, name)
    if value <= 0:
        raise InvalidRequest(f"{'LIMIT' if name == '[limit]' else 'PER PARTITION LIMIT'} must be strictly positive")
    return value


def _selection(s: ast.Select, table) -> tuple[tuple, tuple | None, bool, bool, bool]:
    """(result column specs, regular columns to fetch or None, writetime needed, ttl needed, count)."""
    ks, name = table.keyspace, table.name
    if s.selectors is None:
        regular = sorted(table.regular, key=lambda c: (not c.static, c.name))   # statics first, as Cassandra
        cols = list(table.partition_key) + list(table.clustering) + regular
        return tuple(ColumnSpec(ks, name, c.name, parse_type(c.cql_type)) for c in cols), None, False, False, False
    specs, fetch, writetime, ttl, count = [], [], False, False, False
    for sel in s.selectors:
        e = sel.expression
        if isinstance(e, ast.CountRows):
            count = True
            specs.append(ColumnSpec(ks, name, sel.alias or "count", BIGINT))
            continue
        columns = e.columns if isinstance(e, ast.TokenOf) else (getattr(e, "name", None) or e.column,)
        for c in columns:
            if c not in table.by_name:
                raise InvalidRequest(f"Undefined column name {c} in selection clause")
        if isinstance(e, ast.TokenOf):
            if list(e.columns) != [c.name for c in table.partition_key]:
                raise InvalidRequest(f"Type error: token() must be called on the partition key columns "
                                     f"({', '.join(c.name for c in table.partition_key)}) in order")
            specs.append(ColumnSpec(ks, name, sel.alias or f"system.token({', '.join(e.columns)})", BIGINT))
            continue
        col = table.by_name[columns[0]]
        if isinstance(e, (ast.WriteTime, ast.Ttl)):
            fn = "writetime" if isinstance(e, ast.WriteTime) else "ttl"
            if col.kind != "regular":
                raise InvalidRequest(f"Cannot use selection function {fn} on PRIMARY KEY part {col.name}")
            if "<" in col.cql_type and not col.cql_type.startswith("frozen<"):
                raise InvalidRequest(f"Cannot use selection function {fn} on non-frozen collection {col.name}")
            if fn == "ttl":
                ttl = True
                specs.append(ColumnSpec(ks, name, sel.alias or f"ttl({col.name})", INT))
            else:
                writetime = True
                specs.append(ColumnSpec(ks, name, sel.alias or f"writetime({col.name})", BIGINT))
        else:
            specs.append(ColumnSpec(ks, name, sel.alias or col.name, parse_type(col.cql_type)))
        if col.kind == "regular":
            fetch.append(col.name)
    if count and len(specs) > 1:
        raise InvalidRequest("COUNT(*) together with other selectors is not supported yet")
    return tuple(specs), tuple(dict.fromkeys(fetch)), writetime, ttl, count


def prepare_select(s: ast.Select, keyspace, keyspaces, binder: Binder):
    table = table_of(keyspaces, s.keyspace or keyspace, s.table)
    specs, fetch, writetime, ttl, count = _selection(s, table)
    pk_names = [c.name for c in table.partition_key]
    eq, slices, tokens, others = {}, {}, [], []
    for r in s.where:
        if isinstance(r, ast.TokenRelation):
            if list(r.columns) != pk_names:
                raise InvalidRequest("The token function arguments must be in the partition key order: "
                                     + ", ".join(pk_names))
            tokens.append(r)
            continue
        col = table.by_name.get(r.column)
        if col is None:
            raise InvalidRequest(f"Undefined column name {r.column} in table {table.qualified_name}")
        if r.op in ("!=", "CONTAINS", "CONTAINS KEY"):
            raise InvalidRequest(f"Unsupported \"{r.op}\" relation: {r.column} {r.op} ...")
        if r.op in ("=", "IN") and col.kind != "regular":
            if col.name in eq:
                raise InvalidRequest(f"{col.name} cannot be restricted by more than one relation if it includes "
                                     "an Equal")
            eq[col.name] = r
        elif col.kind == "clustering" and r.op != "IN":
            slices.setdefault(col.name, []).append(r)
        else:
            others.append(r)
    full_pk = all(n in eq for n in pk_names)
    some_pk = [n for n in pk_names if n in eq]
    limit = _int_source(binder, s.limit, table, "[limit]")
    ppl = _int_source(binder, s.per_partition_limit, table, "[per_partition_limit]")
    if s.distinct:
        bad = [sp.name for sp in specs if sp.name not in pk_names and not getattr(table.by_name.get(sp.name), "static", 0)]
        if bad or count:
            raise InvalidRequest("SELECT DISTINCT queries must only request partition key columns and/or static "
                                 f"columns (not {', '.join(bad) or 'count'})")
        missing = [n for n in pk_names if n not in {sp.name for sp in specs}] if s.selectors is not None else []
        if missing:
            raise InvalidRequest(f"SELECT DISTINCT queries must request all the partition key columns (missing "
                                 f"{', '.join(missing)})")
    if tokens and some_pk:
        raise InvalidRequest("Columns \"" + ", ".join(some_pk) + "\" cannot be restricted by both a normal relation"
                             " and a token relation")
    base = dict(keyspace=table.keyspace, table=table.name, columns=fetch, writetime=writetime, ttl=ttl,
                limit=limit, per_partition_limit=ppl, distinct=s.distinct, count=count)
    if full_pk:
        return _partition_plan(s, table, eq, slices, others, binder, base), specs
    if s.order_by:
        raise InvalidRequest("ORDER BY is only supported when the partition key is restricted by an EQ or an IN.")
    indexed = {i.column for i in table.indexes}
    index_eq = [r for r in others if r.column in indexed and r.op == "="]
    if index_eq and not tokens:
        rest = [r for r in s.where if r is not index_eq[0]]
        if rest and not s.allow_filtering:
            raise InvalidRequest(FILTERING)
        where = tuple((r.column, r.op, _value(binder, r.value, table.by_name[r.column], table))
                      for r in s.where if r.op in ("=", "<", "<=", ">", ">="))
        if len(where) != len(s.where):
            raise InvalidRequest("IN restrictions together with a secondary index are not supported yet")
        return ReadPlan("index_query", where=where, **base), specs
    filtered = bool(eq or slices or others)
    if filtered and not s.allow_filtering:
        raise InvalidRequest(FILTERING)
    start_token, end_token = _token_range(tokens, binder, table)
    filters = tuple((r.column, r.op, _filter_source(binder, r, table))
                    for r in s.where if isinstance(r, ast.Relation))
    return ReadPlan("scan", start_token=start_token, end_token=end_token, filters=filters, **base), specs


def _filter_source(binder, r, table):
    col = table.by_name[r.column]
    if r.op == "IN":
        return binder.in_source(r, col, table, _value)
    return _value(binder, r.value, col, table)


def _token_range(tokens, binder, table):
    """(start, end] as the scan op takes it, from token() relations; None = the ring's ends."""
    start = end = None
    for r in tokens:
        if isinstance(r.value, ast.BindMarker):
            binder.bind(r.value, ColumnSpec(table.keyspace, table.name, r.value.name or "partition key token", BIGINT))
            if r.op != ">" and r.op != "<=":
                raise InvalidRequest(f"token(...) {r.op} ? is not supported yet; use > ? and <= ? (the scan's "
                                     "(start, end] bounds)")
            value = r.value
        else:
            value = convert(r.value, BIGINT, "partition key token")
        if r.op in (">", ">=", "="):
            if start is not None:
                raise InvalidRequest("More than one restriction was found for the start bound on the token")
            start = value if r.op == ">" or isinstance(value, ast.BindMarker) else max(value - 1, MIN_TOKEN)
        if r.op in ("<", "<=", "="):
            if end is not None:
                raise InvalidRequest("More than one restriction was found for the end bound on the token")
            end = value if r.op != "<" or isinstance(value, ast.BindMarker) else value - 1
    return start, end


def _partition_plan(s, table, eq, slices, others, binder, base) -> ReadPlan:
    pk_names = [c.name for c in table.partition_key]
    ck_names = [c.name for c in table.clustering]
    key = []
    for name in pk_names + [n for n in ck_names if n in eq]:
        r, col = eq[name], table.by_name[name]
        key.append((name, binder.in_source(r, col, table, _value) if r.op == "IN" else _value(binder, r.value, col, table),
                    r.op == "IN"))
    binder.note_where_key(table, s.where)
    given = [n for n in ck_names if n in eq]
    if given != ck_names[:len(given)]:
        if not s.allow_filtering:
            raise InvalidRequest(f"PRIMARY KEY column \"{given[-1]}\" cannot be restricted as preceding column "
                                 f"\"{ck_names[len(given) - 1] if len(given) > 1 else ck_names[0]}\" is not restricted")
    if others and not s.allow_filtering:
        raise InvalidRequest(FILTERING)
    ops = {n: [(r.op, _value(binder, r.value, table.by_name[n], table)) for r in rs] for n, rs in slices.items()}
    if ops and any(n != ck_names[len(given)] for n in ops):
        bad = next(n for n in ops if n != ck_names[len(given)])
        raise InvalidRequest(f"Clustering column \"{bad}\" cannot be restricted (preceding column "
                             f"\"{ck_names[len(given)]}\" is restricted by a non-EQ relation)"
                             if bad in ck_names[len(given) + 1:] and ck_names[len(given)] in ops else
                             f"PRIMARY KEY column \"{bad}\" cannot be restricted as preceding column "
                             f"\"{ck_names[len(given)]}\" is not restricted")
    start, end, start_inc, end_inc = clustering_slice(table, given, tuple(key), ops)
    if not ops:
        start = end = tuple((n, src) for n, src, is_in in key if n in given and not is_in)
        if any(is_in for n, _, is_in in key if n in given):
            raise InvalidRequest("IN on clustering columns is not supported yet")
    key = tuple(k for k in key if k[0] in pk_names)
    filters = tuple((r.column, r.op, _filter_source(binder, r, table)) for r in others)
    return ReadPlan("select", key=key, start=start, end=end, start_inclusive=start_inc, end_inclusive=end_inc,
                    reverse=_reverse(s.order_by, table), filters=filters, **base)


def _reverse(order_by, table) -> bool:
    if not order_by:
        return False
    ck = table.clustering
    for i, (name, direction) in enumerate(order_by):
        col = table.by_name.get(name)
        if col is None:
            raise InvalidRequest(f"Undefined column name {name}")
        if col.kind != "clustering":
            raise InvalidRequest(f"Order by is currently only supported on the clustered columns of the PRIMARY "
                                 f"KEY, got {name}")
        if i >= len(ck) or ck[i].name != name:
            raise InvalidRequest("Order by currently only supports the ordering of columns following their "
                                 "declared order in the PRIMARY KEY")
    flips = {(d == "DESC") != table.by_name[n].descending for n, d in order_by}
    if len(flips) > 1:
        raise InvalidRequest("Unsupported order by relation")
    return flips.pop()


def clustering_slice(table: Table, given: list, key: tuple, slices: dict):
    """Clustering bounds for a slice after an equality prefix (storage order: DESC swaps)."""
    if not slices:
        return (), (), True, True
    if len(slices) > 1:
        raise InvalidRequest("Clustering column restrictions allow only one slice, on the column after the "
                             "equality prefix")
    ((name, ops),) = slices.items()
    ck = [c.name for c in table.clustering]
    if ck.index(name) != len(given):
        raise InvalidRequest(f"PRIMARY KEY column \"{name}\" cannot be restricted as preceding column "
                             f"\"{ck[len(given)]}\" is not restricted")
    prefix = tuple((c, src) for c, src, _ in key if c in given)
    if any(is_in for c, _, is_in in key if c in given):
        raise InvalidRequest("IN on a clustering column combined with a slice is not supported yet")
    lower = [(op, src) for op, src in ops if op in (">", ">=")]
    upper = [(op, src) for op, src in ops if op in ("<", "<=")]
    if len(lower) > 1 or len(upper) > 1:
        raise InvalidRequest(f"More than one restriction was found for the {'start' if len(lower) > 1 else 'end'}"
                             f" bound on {name}")
    start = prefix + ((name, lower[0][1]),) if lower else prefix
    end = prefix + ((name, upper[0][1]),) if upper else prefix
    start_inc, end_inc = (not lower or lower[0][0] == ">="), (not upper or upper[0][0] == "<=")
    if table.by_name[name].descending:
        start, end, start_inc, end_inc = end, start, end_inc, start_inc
    return start, end, start_inc, end_inc
