"""The DDL half of the CQL parser: USE, TRUNCATE, CREATE / ALTER / DROP KEYSPACE, TABLE and INDEX,
DESCRIBE. Pure.

Follows Cassandra's Parser.g (createKeyspaceStatement, createTableStatement, ...). Properties
(`WITH replication = {...} AND durable_writes = false`) keep their order and their literal
terms; prepare.py gives them meaning. Column types become ring.cql.types.CqlType (varchar is
text). Things Cassandra parses but dynatable refuses (user-defined and custom types, COMPACT
STORAGE, indexes on collection parts) raise InvalidRequest saying so.
"""
from __future__ import annotations

from engine.errors import InvalidRequest
from ring.cql import ast
from ring.cql.lexer import RESERVED
from ring.cql.token_stream import TokenStream
from ring.cql.types import OPTION_IDS, CqlType

_NATIVE_TYPES = {name for name in OPTION_IDS if name not in ("custom", "udt", "list", "map", "set", "tuple")}
_NATIVE_TYPES.add("varchar")
_ARITY = {"list": 1, "set": 1, "map": 2}


class DdlParser(TokenStream):
    def use(self):
        return ast.Use(self.name())

    def truncate(self):
        self.accept_word("table") or self.accept_word("columnfamily")
        return ast.Truncate(*self.qualified())

    def create(self):
        if self.accept_word("keyspace") or self.accept_word("schema"):
            return self.create_keyspace()
        if self.accept_word("table") or self.accept_word("columnfamily"):
            return self.create_table()
        custom = self.accept_word("custom")
        if self.accept_word("index"):
            return self.create_index(custom)
        self.fail()

    def drop(self):
        if self.accept_word("keyspace") or self.accept_word("schema"):
            exists = self.if_exists()
            return ast.DropKeyspace(self.name(), exists)
        if self.accept_word("table") or self.accept_word("columnfamily"):
            exists = self.if_exists()
            return ast.DropTable(*self.qualified(), exists)
        if self.accept_word("index"):
            exists = self.if_exists()
            return ast.DropIndex(*self.qualified(), exists)
        self.fail()

    def create_keyspace(self):
        if_not_exists = self.if_not_exists()
        name = self.name()
        self.expect_word("with")
        return ast.CreateKeyspace(name, if_not_exists, self.properties())

    def properties(self) -> tuple:
        out = [self.property()]
        while self.accept_word("and"):
            out.append(self.property())
        return tuple(out)

    def property(self) -> tuple:
        name = self.name()
        self.expect_symbol("=")
        tok = self.tok
        if tok.kind == "WORD" and tok.value not in ("true", "false", "nan", "infinity") and tok.value not in RESERVED:
            self.advance()                       # Cassandra's propertyValue: an unreserved keyword
            return name, ast.Constant("string", tok.value)
        value = self.term()
        if not isinstance(value, (ast.Constant, ast.MapLiteral)):
            kind = "bind variables are not supported in DDL queries" if isinstance(value, ast.BindMarker) else "not a constant"
            raise InvalidRequest(f"Invalid value for property: {name} ({kind})")
        return name, value

    def create_table(self):
        if_not_exists = self.if_not_exists()
        keyspace, table = self.qualified()
        self.expect_symbol("(")
        columns, pk, ck = [], None, ()
        while True:
            if self.is_word("primary"):
                start = self.i
                self.advance()
                self.expect_word("key")
                if pk is not None:
                    raise InvalidRequest(f"Multiple PRIMARY KEYs specified (exactly one required) at line "
                                         f"{self.toks[start].line}:{self.toks[start].column}")
                pk, ck = self.primary_key()
            else:
                name = self.name()
                cql_type = self.cql_type()
                static = self.accept_word("static")
                if self.accept_word("primary"):
                    self.expect_word("key")
                    if pk is not None:
                        raise InvalidRequest("Multiple PRIMARY KEYs specified (exactly one required)")
                    pk = (name,)
                columns.append(ast.ColumnDefinition(name, cql_type, static))
            if not self.accept_symbol(","):
                break
            if self.is_symbol(")"):              # Cassandra accepts one trailing comma
                break
        self.expect_symbol(")")
        if pk is None:
            raise InvalidRequest("No PRIMARY KEY specifed for table '%s' (exactly one required)" % table)
        order, props = (), []
        if self.accept_word("with"):
            while True:
                if self.accept_word("clustering"):
                    self.expect_word("order")
                    self.expect_word("by")
                    order = self.clustering_order()
                elif self.is_word("compact") and self.is_word("storage", 1):
                    raise InvalidRequest("COMPACT STORAGE tables are not supported (removed in Cassandra 5)")
                else:
                    props.append(self.property())
                if not self.accept_word("and"):
                    break
        return ast.CreateTable(keyspace, table, tuple(columns), pk, ck, if_not_exists, order, tuple(props))

    def primary_key(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        self.expect_symbol("(")
        pk = self.names() if self.is_symbol("(") else (self.name(),)
        ck = []
        while self.accept_symbol(","):
            ck.append(self.name())
        self.expect_symbol(")")
        return pk, tuple(ck)

    def clustering_order(self) -> tuple:
        self.expect_symbol("(")
        out = []
        while True:
            name = self.name()
            direction = "DESC" if self.accept_word("desc") else ("ASC" if self.accept_word("asc") else None)
            if direction is None:
                self.fail(f"mismatched input '{self.tok.text}' expecting K_ASC or K_DESC")
            out.append((name, direction))
            if not self.accept_symbol(","):
                break
        self.expect_symbol(")")
        return tuple(out)

    def cql_type(self) -> CqlType:
        tok = self.tok
        if tok.kind == "STRING":
            raise InvalidRequest(f"custom types ({tok.text}) are not supported")
        if tok.kind != "WORD":
            self.fail()
        word = tok.value
        if word == "frozen":
            self.advance()
            self.expect_symbol("<")
            inner = self.cql_type()
            self.expect_symbol(">")
            if not inner.params:
                raise InvalidRequest(f"frozen<> is only allowed on collections, tuples, and user-defined types (got {inner})")
            return CqlType(inner.name, inner.params, True)
        if word in _ARITY or word == "tuple":
            self.advance()
            self.expect_symbol("<")
            params = [self.cql_type()]
            while self.accept_symbol(","):
                params.append(self.cql_type())
            self.expect_symbol(">")
            if word != "tuple" and len(params) != _ARITY[word]:
                self.fail(f"{word} takes {_ARITY[word]} type parameter(s), got {len(params)}", at=self.i - 1)
            return CqlType(word, tuple(params), frozen=word == "tuple")
        if word in _NATIVE_TYPES:
            self.advance()
            return CqlType("text" if word == "varchar" else word)
        if word not in RESERVED:
            raise InvalidRequest(f"Unknown type {word}: user-defined types are not supported")
        self.fail()

    def create_index(self, custom: bool):
        if_not_exists = self.if_not_exists()
        name = None if self.is_word("on") else self.name()
        self.expect_word("on")
        keyspace, table = self.qualified()
        self.expect_symbol("(")
        column = self.name()
        if self.is_symbol("("):
            raise InvalidRequest(f"indexes on collection parts ({column}(...)) are not supported")
        self.expect_symbol(")")
        using = None
        if self.accept_word("using"):
            if self.tok.kind != "STRING":
                self.fail()
            using = self.advance().value
            if self.accept_word("with"):
                self.properties()               # index OPTIONS: parsed, and refused by prepare with USING
        elif custom:
            self.fail(f"mismatched input '{self.tok.text}' expecting K_USING")
        return ast.CreateIndex(keyspace, table, column, name, if_not_exists, using)

    # -- ALTER (alterTableStatement, alterKeyspaceStatement) ----------------------------------------

    def alter(self):
        if self.accept_word("keyspace") or self.accept_word("schema"):
            if_exists = self.if_exists()
            name = self.name()
            self.expect_word("with")
            return ast.AlterKeyspace(name, self.properties(), if_exists)
        if not (self.accept_word("table") or self.accept_word("columnfamily")):
            self.fail()
        if_exists = self.if_exists()
        keyspace, table = self.qualified()
        if self.accept_word("add"):
            if_column = self.if_not_exists()
            items = []
            grouped = self.accept_symbol("(")
            while True:
                name = self.name()
                items.append(ast.ColumnDefinition(name, self.cql_type(), self.accept_word("static")))
                if not (grouped and self.accept_symbol(",")):
                    break
            if grouped:
                self.expect_symbol(")")
            return ast.AlterTable(keyspace, table, "add", tuple(items), if_exists=if_exists, if_column=if_column)
        if self.accept_word("drop"):
            if self.is_word("compact"):
                raise InvalidRequest("COMPACT STORAGE tables are not supported (removed in Cassandra 5)")
            if_column = self.if_exists()
            items = self.names() if self.is_symbol("(") else (self.name(),)
            timestamp = None
            if self.accept_word("using"):
                self.expect_word("timestamp")
                timestamp = self.int_value()
            return ast.AlterTable(keyspace, table, "drop", items, if_exists=if_exists, if_column=if_column,
                                  timestamp=timestamp)
        if self.accept_word("rename"):
            if_column = self.if_exists()
            items = []
            while True:
                old = self.name()
                self.expect_word("to")
                items.append((old, self.name()))
                if not self.accept_word("and"):
                    break
            return ast.AlterTable(keyspace, table, "rename", tuple(items), if_exists=if_exists, if_column=if_column)
        if self.accept_word("with"):
            return ast.AlterTable(keyspace, table, "with", properties=self.properties(), if_exists=if_exists)
        if self.accept_word("alter"):
            raise InvalidRequest("Altering column types is no longer supported")
        self.fail()

    # -- DESCRIBE (Cassandra 4's server-side describeStatement) ------------------------------------

    def describe(self):
        full = self.accept_word("full")
        if self.accept_word("schema"):
            return ast.Describe("schema", full=full)
        if self.accept_word("cluster"):
            return ast.Describe("cluster")
        for plural in ("keyspaces", "tables", "types", "functions", "aggregates", "indexes"):
            if self.accept_word(plural):
                return ast.Describe(plural)
        only = self.accept_word("only")
        if self.accept_word("keyspace"):
            name = None if self.is_end() else self.name()
            self.with_internals()
            return ast.Describe("keyspace", name, only=only)
        for kind in ("table", "columnfamily", "index", "type", "function", "aggregate", "materialized"):
            if self.accept_word(kind):
                if kind == "materialized":
                    self.expect_word("view")
                keyspace, name = self.qualified()
                self.with_internals()
                return ast.Describe({"columnfamily": "table", "materialized": "view"}.get(kind, kind), keyspace, name)
        keyspace, name = self.qualified()
        self.with_internals()
        return ast.Describe("name", keyspace, name)

    def is_end(self) -> bool:
        return self.tok.kind == "EOF" or self.is_symbol(";") or self.is_word("with")

    def with_internals(self) -> None:
        if self.accept_word("with"):
            self.expect_word("internals")
