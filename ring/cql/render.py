"""An ast statement back to CQL text. Pure.

`parse(render(statement))` gives back the same statement (tested by hypothesis round trips);
names are quoted only when needed (lexer.quote_name), strings with '' escapes. Used by the
tests and, later, by DESCRIBE.
"""
from __future__ import annotations

from ring.cql import ast
from ring.cql.lexer import quote_name as q
from ring.cql.lexer import quote_string


def render(s) -> str:
    return _RENDERERS[type(s)](s)


def term(t) -> str:
    if isinstance(t, ast.Constant):
        if t.kind == "string":
            return quote_string(t.text)
        return "0x" + t.text if t.kind == "hex" else t.text
    if isinstance(t, ast.BindMarker):
        return "?" if t.name is None else ":" + q(t.name)
    if isinstance(t, ast.Null):
        return "NULL"
    if isinstance(t, ast.ListLiteral):
        return "[" + ", ".join(map(term, t.items)) + "]"
    if isinstance(t, ast.SetLiteral):
        return "{" + ", ".join(map(term, t.items)) + "}"
    if isinstance(t, ast.MapLiteral):
        return "{" + ", ".join(f"{term(k)}: {term(v)}" for k, v in t.entries) + "}"
    if isinstance(t, (ast.TupleLiteral, ast.InValues)):
        return "(" + ", ".join(map(term, t.items)) + ")"
    if isinstance(t, ast.FunctionCall):
        return q(t.name) + "(" + ", ".join(map(term, t.args)) + ")"
    raise AssertionError(f"not a term: {t!r}")


def _table(keyspace, name) -> str:
    return q(name) if keyspace is None else f"{q(keyspace)}.{q(name)}"


def _properties(props) -> str:
    return " AND ".join(f"{q(name)} = {term(value)}" for name, value in props)


def _where(relations) -> str:
    parts = []
    for r in relations:
        if isinstance(r, ast.TokenRelation):
            parts.append(f"token({', '.join(map(q, r.columns))}) {r.op} {term(r.value)}")
        else:
            parts.append(f"{q(r.column)} {r.op} {term(r.value)}")
    return " WHERE " + " AND ".join(parts) if parts else ""


def _using(ttl, timestamp) -> str:
    parts = ([f"TTL {term(ttl)}"] if ttl is not None else []) + \
            ([f"TIMESTAMP {term(timestamp)}"] if timestamp is not None else [])
    return " USING " + " AND ".join(parts) if parts else ""


def _conditions(if_exists, conditions) -> str:
    if if_exists:
        return " IF EXISTS"
    return " IF " + " AND ".join(f"{q(c.column)} {c.op} {term(c.value)}" for c in conditions) if conditions else ""


def _selector(s: ast.Selector) -> str:
    e = s.expression
    if isinstance(e, ast.ColumnRef):
        text = q(e.name)
    elif isinstance(e, ast.WriteTime):
        text = f"writetime({q(e.column)})"
    elif isinstance(e, ast.Ttl):
        text = f"ttl({q(e.column)})"
    elif isinstance(e, ast.TokenOf):
        text = f"token({', '.join(map(q, e.columns))})"
    else:
        text = f"COUNT({e.argument})"
    return text if s.alias is None else f"{text} AS {q(s.alias)}"


def _select(s: ast.Select) -> str:
    out = "SELECT " + ("JSON " if s.json else "") + ("DISTINCT " if s.distinct else "")
    out += "*" if s.selectors is None else ", ".join(map(_selector, s.selectors))
    out += " FROM " + _table(s.keyspace, s.table) + _where(s.where)
    if s.order_by:
        out += " ORDER BY " + ", ".join(f"{q(c)} {d}" for c, d in s.order_by)
    if s.per_partition_limit is not None:
        out += " PER PARTITION LIMIT " + term(s.per_partition_limit)
    if s.limit is not None:
        out += " LIMIT " + term(s.limit)
    return out + (" ALLOW FILTERING" if s.allow_filtering else "")


def _insert(s: ast.Insert) -> str:
    if s.json is not None:
        return (f"INSERT INTO {_table(s.keyspace, s.table)} JSON {term(s.json)}"
                + (" DEFAULT UNSET" if s.json_default_unset else "")
                + (" IF NOT EXISTS" if s.if_not_exists else "") + _using(s.ttl, s.timestamp))
    return (f"INSERT INTO {_table(s.keyspace, s.table)} ({', '.join(map(q, s.columns))}) VALUES "
            f"({', '.join(map(term, s.values))})" + (" IF NOT EXISTS" if s.if_not_exists else "")
            + _using(s.ttl, s.timestamp))


def _update(s: ast.Update) -> str:
    sets = ", ".join(_assignment(c, v) for c, v in s.assignments)
    return (f"UPDATE {_table(s.keyspace, s.table)}{_using(s.ttl, s.timestamp)} SET {sets}{_where(s.where)}"
            + _conditions(s.if_exists, s.conditions))


def _assignment(column: str, v) -> str:
    if isinstance(v, ast.Element):
        return f"{q(column)}[{term(v.key)}] = {term(v.value)}"
    if isinstance(v, ast.CollectionUpdate):
        if v.prepend:
            return f"{q(column)} = {term(v.value)} + {q(column)}"
        return f"{q(column)} = {q(column)} {v.op} {term(v.value)}"
    return f"{q(column)} = {term(v)}"


def _delete(s: ast.Delete) -> str:
    columns = ", ".join(q(c) if isinstance(c, str) else f"{q(c[0])}[{term(c[1].key)}]" for c in s.columns)
    columns = columns + " " if columns else ""
    return (f"DELETE {columns}FROM {_table(s.keyspace, s.table)}{_using(None, s.timestamp)}{_where(s.where)}"
            + _conditions(s.if_exists, s.conditions))


def _batch(s: ast.Batch) -> str:
    body = "".join(render(x) + "; " for x in s.statements)
    return f"BEGIN {s.kind} BATCH{_using(None, s.timestamp)} {body}APPLY BATCH"


def _create_table(s: ast.CreateTable) -> str:
    cols = [f"{q(c.name)} {c.type}" + (" STATIC" if c.static else "") for c in s.columns]
    pk = ", ".join(map(q, s.partition_key))
    key = ", ".join([f"({pk})"] + [q(c) for c in s.clustering])
    out = f"CREATE TABLE {'IF NOT EXISTS ' if s.if_not_exists else ''}{_table(s.keyspace, s.name)} ("
    out += ", ".join(cols + [f"PRIMARY KEY ({key})"]) + ")"
    options = []
    if s.clustering_order:
        options.append("CLUSTERING ORDER BY (" + ", ".join(f"{q(c)} {d}" for c, d in s.clustering_order) + ")")
    if s.properties:
        options.append(_properties(s.properties))
    return out + (" WITH " + " AND ".join(options) if options else "")


def _create_index(s: ast.CreateIndex) -> str:
    out = "CREATE CUSTOM INDEX " if s.using is not None else "CREATE INDEX "
    out += "IF NOT EXISTS " if s.if_not_exists else ""
    out += q(s.name) + " " if s.name is not None else ""
    out += f"ON {_table(s.keyspace, s.table)} ({q(s.column)})"
    return out + (f" USING {quote_string(s.using)}" if s.using is not None else "")


def _alter_table(s: ast.AlterTable) -> str:
    out = f"ALTER TABLE {'IF EXISTS ' if s.if_exists else ''}{_table(s.keyspace, s.name)} "
    if s.action == "with":
        return out + "WITH " + _properties(s.properties)
    if s.action == "add":
        cols = [f"{q(c.name)} {c.type}" + (" STATIC" if c.static else "") for c in s.items]
        return out + f"ADD {'IF NOT EXISTS ' if s.if_column else ''}(" + ", ".join(cols) + ")"
    if s.action == "drop":
        stamp = f" USING TIMESTAMP {term(s.timestamp)}" if s.timestamp is not None else ""
        return out + f"DROP {'IF EXISTS ' if s.if_column else ''}(" + ", ".join(map(q, s.items)) + ")" + stamp
    pairs = " AND ".join(f"{q(a)} TO {q(b)}" for a, b in s.items)
    return out + f"RENAME {'IF EXISTS ' if s.if_column else ''}{pairs}"


def _describe(s: ast.Describe) -> str:
    if s.kind in ("schema", "cluster", "keyspaces", "tables", "types", "functions", "aggregates", "indexes"):
        return f"DESCRIBE {'FULL ' if s.full else ''}{s.kind.upper()}"
    if s.kind == "keyspace":
        return f"DESCRIBE {'ONLY ' if s.only else ''}KEYSPACE" + (f" {q(s.keyspace)}" if s.keyspace else "")
    kind = "" if s.kind == "name" else ("MATERIALIZED VIEW " if s.kind == "view" else s.kind.upper() + " ")
    return f"DESCRIBE {kind}{_table(s.keyspace, s.name)}"


_RENDERERS = {
    ast.Use: lambda s: f"USE {q(s.keyspace)}",
    ast.CreateKeyspace: lambda s: (f"CREATE KEYSPACE {'IF NOT EXISTS ' if s.if_not_exists else ''}{q(s.name)} "
                                   f"WITH {_properties(s.properties)}"),
    ast.DropKeyspace: lambda s: f"DROP KEYSPACE {'IF EXISTS ' if s.if_exists else ''}{q(s.name)}",
    ast.CreateTable: _create_table,
    ast.DropTable: lambda s: f"DROP TABLE {'IF EXISTS ' if s.if_exists else ''}{_table(s.keyspace, s.name)}",
    ast.CreateIndex: _create_index,
    ast.DropIndex: lambda s: f"DROP INDEX {'IF EXISTS ' if s.if_exists else ''}{_table(s.keyspace, s.name)}",
    ast.Truncate: lambda s: f"TRUNCATE {_table(s.keyspace, s.table)}",
    ast.AlterTable: _alter_table, ast.Describe: _describe,
    ast.AlterKeyspace: lambda s: f"ALTER KEYSPACE {'IF EXISTS ' if s.if_exists else ''}{q(s.name)} "
                                 f"WITH {_properties(s.properties)}",
    ast.Insert: _insert, ast.Update: _update, ast.Delete: _delete, ast.Select: _select, ast.Batch: _batch,
}
