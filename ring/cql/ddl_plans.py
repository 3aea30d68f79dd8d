"""DDL statements as the node's schema operations (create_keyspace, create_table, ...). Pure.

Property values become what engine.schema and the node handlers take: the replication map
(numbers as ints, class names short or long), table options among engine.schema's
DEFAULT_TABLE_OPTIONS converted to their types; other Cassandra options (comment, caching
strings, cdc, ...) are accepted and ignored, as the spec asks (cqlengine sends them).
Column types must be ones the engine stores (engine.cql_types.TYPES); others are refused here,
naming the type. Existence (AlreadyExists, IF [NOT] EXISTS) is the node's decision at execution.
"""
from __future__ import annotations

from engine import collections, cql_types
from engine.errors import InvalidRequest
from engine.schema import DEFAULT_TABLE_OPTIONS, STATIC_SUFFIX
from ring.cql import ast
from ring.cql.plan import SchemaPlan

_INT_OPTIONS = ("gc_grace_seconds", "default_time_to_live")
_COMPACTION_INTS = ("min_threshold", "max_threshold", "min_sstable_size")
_COMPACTION_FLOATS = ("bucket_low", "bucket_high")


def _plain(term):
    """A property value as a Python str / int / float / bool / dict of str."""
    if isinstance(term, ast.MapLiteral):
        return {str(_plain(k)): str(_plain(v)) for k, v in term.entries}
    if term.kind == "integer":
        return int(term.text)
    if term.kind == "float":
        return float(term.text)
    if term.kind == "boolean":
        return term.text == "true"
    return term.text


def _properties(props) -> dict:
    out = {}
    for name, term in props:
        if name in out:
            raise InvalidRequest(f"Multiple definition for property {name}")
        out[name] = _plain(term)
    return out


def _replication(props: dict) -> dict:
    replication = props.pop("replication", None)
    if not isinstance(replication, dict) or "class" not in replication:
        raise InvalidRequest("Missing mandatory option 'class' of replication: "
                             "WITH replication = {'class': 'SimpleStrategy', 'replication_factor': N}")
    out = {"class": replication["class"].rsplit(".", 1)[-1]}
    for key, value in replication.items():
        if key != "class":
            try:
                out[key] = int(value)
            except ValueError:
                raise InvalidRequest(f"Invalid replication option {key} = {value!r}: expected an integer")
    return out


def _table_options(props: dict) -> dict:
    options = {}
    for name, value in props.items():
        if name not in DEFAULT_TABLE_OPTIONS:
            continue                                    # Cassandra options the engine has no use for
        try:
            if name in _INT_OPTIONS:
                value = int(value)
            elif name == "bloom_filter_fp_chance":
                value = float(value)
            elif name == "compaction":
                value = {k: int(v) if k in _COMPACTION_INTS else float(v) if k in _COMPACTION_FLOATS else
                         v.rsplit(".", 1)[-1] for k, v in value.items()}
            elif name == "compression":
                enabled = value.get("enabled", "true").lower() != "false"
                cls = value.get("class", value.get("sstable_compression", ""))
                value = "lz4" if enabled and "lz4" in cls.lower() else None
            elif name == "caching":
                value = dict(value)
            else:
                value = str(value)
        except (ValueError, AttributeError, TypeError):
            raise InvalidRequest(f"Invalid value for table option {name}: {value!r}")
        options[name] = value
    return options


def plan_ddl(s, keyspace: str | None, keyspaces) -> SchemaPlan:
    def ks(name):
        if not (name or keyspace):
            raise InvalidRequest("No keyspace has been specified. USE a keyspace, or explicitly specify "
                                 "keyspace.tablename")
        return name or keyspace

    if isinstance(s, ast.CreateKeyspace):
        props = _properties(s.properties)
        replication = _replication(props)
        durable = props.pop("durable_writes", True)
        if props:
            raise InvalidRequest(f"Unknown property '{next(iter(props))}'")
        return SchemaPlan("create_keyspace", {"name": s.name, "replication": replication,
                                              "if_not_exists": s.if_not_exists, "durable_writes": durable})
    if isinstance(s, ast.DropKeyspace):
        return SchemaPlan("drop_keyspace", {"name": s.name, "if_exists": s.if_exists})
    if isinstance(s, ast.CreateTable):
        return _create_table(s, ks(s.keyspace))
    if isinstance(s, ast.DropTable):
        return SchemaPlan("drop_table", {"keyspace": ks(s.keyspace), "name": s.name, "if_exists": s.if_exists})
    if isinstance(s, ast.CreateIndex):
        if s.using is not None:
            raise InvalidRequest(f"custom index classes ({s.using}) are not supported; CREATE INDEX builds "
                                 "dynatable's own index (docs/secondary_indexes.md)")
        return SchemaPlan("create_index", {"keyspace": ks(s.keyspace), "table": s.table, "column": s.column,
                                           "name": s.name, "if_not_exists": s.if_not_exists})
    if isinstance(s, ast.DropIndex):
        return SchemaPlan("drop_index", {"keyspace": ks(s.keyspace), "name": s.name, "if_exists": s.if_exists})
    if isinstance(s, ast.AlterKeyspace):
        return _alter_keyspace(s)
    if isinstance(s, ast.AlterTable):
        return _alter_table(s, ks(s.keyspace))
    if isinstance(s, ast.Truncate):
        name = ks(s.keyspace)
        if s.table not in getattr(keyspaces.get(name), "tables", {}):
            raise InvalidRequest(f"unconfigured table {s.table}")
        return SchemaPlan("truncate", {"keyspace": name, "table": s.table})
    raise AssertionError(f"not a DDL statement: {s!r}")


def _collection_type(type_name: str) -> bool:
    """A list / set / map type the engine stores (engine/collections.py), else False."""
    if type_name.startswith("frozen<tuple") or type_name.startswith("tuple"):
        return False
    return collections.parse(type_name) is not None


def _create_table(s: ast.CreateTable, keyspace: str) -> SchemaPlan:
    columns = {}
    for c in s.columns:
        if c.name in columns:
            raise InvalidRequest(f"Multiple definition of identifier {c.name}")
        type_name = str(c.type)
        if type_name not in cql_types.TYPES and not _collection_type(type_name):
            raise InvalidRequest(f"column {c.name}: type {type_name} is not supported by the storage engine yet "
                                 f"(supported: {', '.join(cql_types.TYPES)})")
        columns[c.name] = type_name + (STATIC_SUFFIX if c.static else "")
    for name in s.partition_key + s.clustering:
        if name not in columns:
            raise InvalidRequest(f"Unknown definition {name} referenced in PRIMARY KEY")
    order = {}
    for name, direction in s.clustering_order:
        if name not in s.clustering:
            raise InvalidRequest(f"Only clustering key columns can be defined in CLUSTERING ORDER directive: "
                                 f"{name} is not a clustering column")
        order[name] = direction
    listed = [n for n, _ in s.clustering_order]
    if listed and listed != list(s.clustering[:len(listed)]):
        raise InvalidRequest("The order of columns in the CLUSTERING ORDER directive must match that of the "
                             "clustering columns")
    primary_key = [list(s.partition_key)] + list(s.clustering)
    return SchemaPlan("create_table", {"keyspace": keyspace, "name": s.name, "columns": columns,
                                       "primary_key": primary_key, "clustering_order": order,
                                       "options": _table_options(_properties(s.properties)),
                                       "if_not_exists": s.if_not_exists})


def _alter_keyspace(s: ast.AlterKeyspace) -> SchemaPlan:
    props = _properties(s.properties)
    args = {"name": s.name, "if_exists": s.if_exists}
    if "replication" in props:
        args["replication"] = _replication(props)
    if "durable_writes" in props:
        value = props.pop("durable_writes")
        if str(value).lower() not in ("true", "false"):
            raise InvalidRequest(f"Invalid boolean value for durable_writes: {value!r}")
        args["durable_writes"] = str(value).lower() == "true"
    if props:
        raise InvalidRequest(f"Unknown property '{next(iter(props))}'")
    return SchemaPlan("alter_keyspace", args)


def _alter_table(s: ast.AlterTable, keyspace: str) -> SchemaPlan:
    args = {"keyspace": keyspace, "table": s.name, "if_exists": s.if_exists}
    if s.action == "add":
        add = []
        for c in s.items:
            if str(c.type) not in cql_types.TYPES:
                raise InvalidRequest(f"column {c.name}: type {c.type} is not supported by the storage engine yet "
                                     f"(supported: {', '.join(cql_types.TYPES)})")
            add.append([c.name, str(c.type) + (STATIC_SUFFIX if c.static else "")])
        args.update(add=add, if_column_not_exists=s.if_column)
    elif s.action == "drop":
        args.update(drop=list(s.items), if_column_exists=s.if_column)
        if s.timestamp is not None:
            if not isinstance(s.timestamp, ast.Constant):
                raise InvalidRequest("Bind variables are not supported in ALTER TABLE ... DROP USING TIMESTAMP")
            args["timestamp"] = int(s.timestamp.text)
    elif s.action == "rename":
        args.update(rename=[list(pair) for pair in s.items], if_column_exists=s.if_column)
    else:
        props = _properties(s.properties)
        args["options"] = _table_options(props)
    return SchemaPlan("alter_table", args)


def alter_target(plan: SchemaPlan, keyspaces) -> tuple[str, str] | None:
    """(keyspace, table or "") an ALTER changes, checked at execution; None for IF EXISTS on a
    missing one. Raises Cassandra's InvalidRequest when it does not exist."""
    args = plan.args
    name = args["name"] if plan.op == "alter_keyspace" else args["keyspace"]
    ks = keyspaces.get(name)
    if ks is None or name == "system":
        if args.get("if_exists"):
            return None
        raise InvalidRequest(f"Keyspace '{name}' doesn't exist")
    if plan.op == "alter_keyspace":
        return name, ""
    if args["table"] not in ks.tables:
        if args.get("if_exists"):
            return None
        raise InvalidRequest(f"Table '{name}.{args['table']}' doesn't exist")
    return name, args["table"]
