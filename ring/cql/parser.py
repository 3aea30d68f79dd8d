"""The CQL 3 parser: query text -> one ast statement. Hand-written recursive descent. Pure.

`parse(query)` returns (statement, bind_count): one statement, optionally ended by `;` (cqlsh
sends it). This module holds the entry point and the DML (SELECT, INSERT, UPDATE, DELETE,
BATCH); ddl_parser.py the rest, token_stream.py the shared helpers and terms. Grammar: Cassandra's
Parser.g for the subset in docs/cql.md#language. Syntax errors raise lexer.CqlSyntaxError
(SyntaxException, with Cassandra's line:column and words); constructs Cassandra parses but
dynatable does not support yet raise InvalidRequest saying so, never a silent misreading.
"""
from __future__ import annotations

from engine.errors import InvalidRequest
from ring.cql import ast, role_statements
from ring.cql.ddl_parser import DdlParser

_COMPARISONS = ("=", "<", "<=", ">", ">=", "!=")


def parse(query: str) -> tuple[object, int]:
    """(the statement, the number of bind markers in it)."""
    p = Parser(query)
    statement = p.statement()
    while p.accept_symbol(";"):
        pass
    if p.tok.kind != "EOF":
        p.fail(f"mismatched input '{p.tok.text}' expecting EOF")
    return statement, p.markers


class Parser(DdlParser):
    def statement(self):
        if role_statements.is_role_statement(self):
            return role_statements.parse(self)
        tok = self.tok
        handler = _STATEMENTS.get(tok.value) if tok.kind == "WORD" else None
        if handler is None:
            self.fail()
        self.advance()
        return handler(self)

    # -- SELECT ----------------------------------------------------------------------------------

    def select(self):
        json = self.accept_word("json")
        distinct = False
        if self.is_word("distinct") and not (self.is_word("from", 1) or self.is_symbol(",", 1) or self.is_word("as", 1)):
            self.advance()
            distinct = True
        selectors = None
        if not self.accept_symbol("*"):
            selectors = [self.selector()]
            while self.accept_symbol(","):
                selectors.append(self.selector())
            selectors = tuple(selectors)
        self.expect_word("from")
        keyspace, table = self.qualified()
        where = self.where() if self.accept_word("where") else ()
        if self.is_word("group"):
            raise InvalidRequest("GROUP BY is not supported yet")
        order = ()
        if self.accept_word("order"):
            self.expect_word("by")
            order = [self.ordering()]
            while self.accept_symbol(","):
                order.append(self.ordering())
            order = tuple(order)
        per_partition_limit = limit = None
        if self.accept_word("per"):
            self.expect_word("partition")
            self.expect_word("limit")
            per_partition_limit = self.int_value()
        if self.accept_word("limit"):
            limit = self.int_value()
        allow_filtering = False
        if self.accept_word("allow"):
            self.expect_word("filtering")
            allow_filtering = True
        return ast.Select(keyspace, table, selectors, where, distinct, order, per_partition_limit, limit,
                          allow_filtering, json)

    def selector(self) -> ast.Selector:
        tok = self.tok
        call = tok.kind == "WORD" and self.is_symbol("(", 1)
        if call and tok.value == "count":
            self.advance()
            self.advance()
            arg = self.tok
            if not (self.accept_symbol("*") or (arg.kind == "INTEGER" and arg.value == "1" and self.advance())):
                raise InvalidRequest("only COUNT(*) and COUNT(1) are supported")
            self.expect_symbol(")")
            expression = ast.CountRows(arg.text)
        elif call and tok.value in ("writetime", "ttl"):
            self.advance()
            self.advance()
            column = self.name()
            self.expect_symbol(")")
            expression = ast.WriteTime(column) if tok.value == "writetime" else ast.Ttl(column)
        elif call and tok.value == "token":
            self.advance()
            expression = ast.TokenOf(self.names())
        elif call:
            raise InvalidRequest(f"function {tok.value}() in a selection is not supported yet")
        else:
            expression = ast.ColumnRef(self.name())
        alias = self.name() if self.accept_word("as") else None
        return ast.Selector(expression, alias)

    def ordering(self) -> tuple[str, str]:
        name = self.name()
        if self.accept_word("desc"):
            return name, "DESC"
        self.accept_word("asc")
        return name, "ASC"

    def where(self) -> tuple:
        out = [self.relation()]
        while self.accept_word("and"):
            out.append(self.relation())
        return tuple(out)

    def relation(self):
        if self.is_word("token") and self.is_symbol("(", 1):
            self.advance()
            columns = self.names()
            op = self.comparison()
            if op == "!=":
                self.fail(at=self.i - 1)
            return ast.TokenRelation(columns, op, self.term())
        if self.is_symbol("("):
            raise InvalidRequest("multi-column relations ((a, b) > (1, 2)) are not supported yet")
        column = self.name()
        if self.accept_word("in"):
            return ast.Relation(column, "IN", self.in_values())
        if self.accept_word("contains"):
            return ast.Relation(column, "CONTAINS KEY" if self.accept_word("key") else "CONTAINS", self.term())
        if self.is_word("like") or self.is_word("is"):
            raise InvalidRequest(f"{self.tok.value.upper()} restrictions are not supported yet")
        return ast.Relation(column, self.comparison(), self.term())

    def comparison(self) -> str:
        tok = self.tok
        if tok.kind == "SYMBOL" and tok.value in _COMPARISONS:
            self.advance()
            return tok.value
        self.fail()

    def in_values(self):
        if self.is_symbol("?") or self.is_symbol(":"):
            return self.bind_marker()
        self.expect_symbol("(")
        return ast.InValues(self.term_list(")", 0))

    # -- INSERT, UPDATE, DELETE, BATCH -------------------------------------------------------------

    def insert(self):
        self.expect_word("into")
        keyspace, table = self.qualified()
        if self.accept_word("json"):
            return self.insert_json(keyspace, table)
        columns = self.names()
        self.expect_word("values")
        self.expect_symbol("(")
        values = self.term_list(")", 0)
        if_not_exists = self.if_not_exists()
        ttl, timestamp = self.using() if self.accept_word("using") else (None, None)
        return ast.Insert(keyspace, table, columns, values, if_not_exists, ttl, timestamp)

    def insert_json(self, keyspace, table):
        document = self.term()
        unset = False
        if self.accept_word("default"):
            if self.accept_word("unset"):
                unset = True
            elif not self.accept_word("null"):
                self.fail()
        if_not_exists = self.if_not_exists()
        ttl, timestamp = self.using() if self.accept_word("using") else (None, None)
        return ast.Insert(keyspace, table, (), (), if_not_exists, ttl, timestamp, document, unset)

    def using(self, ttl_allowed: bool = True) -> tuple:
        ttl = timestamp = None
        while True:
            if ttl_allowed and ttl is None and self.accept_word("ttl"):
                ttl = self.int_value()
            elif timestamp is None and self.accept_word("timestamp"):
                timestamp = self.int_value()
            else:
                self.fail()
            if not self.accept_word("and"):
                return ttl, timestamp

    def update(self):
        keyspace, table = self.qualified()
        ttl, timestamp = self.using() if self.accept_word("using") else (None, None)
        self.expect_word("set")
        assignments = [self.assignment()]
        while self.accept_symbol(","):
            assignments.append(self.assignment())
        self.expect_word("where")
        where = self.where()
        if_exists, conditions = self.conditions()
        return ast.Update(keyspace, table, tuple(assignments), where, ttl, timestamp, if_exists, conditions)

    def assignment(self) -> tuple:
        column = self.name()
        if self.accept_symbol("["):
            key = self.term()
            self.expect_symbol("]")
            self.expect_symbol("=")
            return column, ast.Element(key, self.term())
        if self.is_symbol("+") or self.is_symbol("-"):
            raise InvalidRequest(f"{column} {self.tok.text}= ... is not supported; write {column} = {column} "
                                 f"{self.tok.text} ...")
        self.expect_symbol("=")
        if self.tok.kind in ("WORD", "QNAME") and self.tok.value == column and (self.is_symbol("+", 1) or self.is_symbol("-", 1)):
            self.advance()
            op = self.advance().value
            return column, ast.CollectionUpdate(op, self.term())
        value = self.term()
        if self.accept_symbol("+"):
            if self.name() != column:
                self.fail(f"Only expressions of the form X = <value> + X are supported (for {column})", at=self.i - 1)
            return column, ast.CollectionUpdate("+", value, prepend=True)
        return column, value

    def conditions(self) -> tuple[bool, tuple]:
        if not self.accept_word("if"):
            return False, ()
        if self.accept_word("exists"):
            return True, ()
        out = [self.condition()]
        while self.accept_word("and"):
            out.append(self.condition())
        return False, tuple(out)

    def condition(self) -> ast.Condition:
        column = self.name()
        if self.accept_word("in"):
            return ast.Condition(column, "IN", self.in_values())
        return ast.Condition(column, self.comparison(), self.term())

    def delete(self):
        columns = []
        if not self.is_word("from"):
            columns.append(self.deletion_target())
            while self.accept_symbol(","):
                columns.append(self.deletion_target())
            if self.is_symbol("."):
                raise InvalidRequest("deleting user-defined type fields is not supported")
        self.expect_word("from")
        keyspace, table = self.qualified()
        timestamp = None
        if self.accept_word("using"):
            timestamp = self.using(ttl_allowed=False)[1]
        self.expect_word("where")
        where = self.where()
        if_exists, conditions = self.conditions()
        return ast.Delete(keyspace, table, tuple(columns), where, timestamp, if_exists, conditions)

    def deletion_target(self):
        name = self.name()
        if not self.accept_symbol("["):
            return name
        key = self.term()
        self.expect_symbol("]")
        return name, ast.Element(key)

    def batch(self):
        kind = "LOGGED"
        if self.accept_word("unlogged"):
            kind = "UNLOGGED"
        elif self.accept_word("counter"):
            kind = "COUNTER"
        else:
            self.accept_word("logged")
        self.expect_word("batch")
        timestamp = self.using(ttl_allowed=False)[1] if self.accept_word("using") else None
        statements = []
        while not self.is_word("apply"):
            tok = self.tok
            if tok.kind != "WORD" or tok.value not in ("insert", "update", "delete"):
                self.fail()
            self.advance()
            statements.append(_STATEMENTS[tok.value](self))
            while self.accept_symbol(";"):
                pass
        self.advance()
        self.expect_word("batch")
        return ast.Batch(kind, tuple(statements), timestamp)


_STATEMENTS = {
    "use": Parser.use, "truncate": Parser.truncate, "create": Parser.create, "drop": Parser.drop,
    "select": Parser.select, "insert": Parser.insert, "update": Parser.update, "delete": Parser.delete,
    "begin": Parser.batch, "alter": Parser.alter, "describe": Parser.describe, "desc": Parser.describe,
}
