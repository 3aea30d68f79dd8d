"""A token stream for the CQL parsers: lookahead, keyword and symbol matching, names, terms.

The base of ddl_parser.DdlParser and parser.Parser (recursive descent over lexer tokens). Errors
come out in Cassandra's words at the offending token: `mismatched input 'x' expecting K_FROM`,
`no viable alternative at input 'x'`, with the line:column and snippet of lexer.syntax_error.
A term is a value position: a literal, NULL, a bind marker (`?`, `:name`), a collection or tuple
literal, or a function call; bind markers are numbered in the order they are read.
"""
from __future__ import annotations

from ring.cql import ast
from ring.cql.lexer import RESERVED, Token, syntax_error, tokenize

MAX_TERM_DEPTH = 32


class TokenStream:
    __slots__ = ("query", "toks", "i", "tok", "markers")

    def __init__(self, query: str):
        self.query = query
        self.toks: list[Token] = tokenize(query)
        self.i = 0
        self.tok = self.toks[0]
        self.markers = 0

    # -- token helpers ---------------------------------------------------------------------------

    def advance(self) -> Token:
        tok = self.tok
        self.i += 1
        self.tok = self.toks[min(self.i, len(self.toks) - 1)]
        return tok

    def fail(self, message: str | None = None, at: int | None = None):
        raise syntax_error(self.query, self.toks, self.i if at is None else at,
                           message or f"no viable alternative at input '{self.tok.text}'")

    def is_word(self, word: str, ahead: int = 0) -> bool:
        tok = self.toks[min(self.i + ahead, len(self.toks) - 1)]
        return tok.kind == "WORD" and tok.value == word

    def accept_word(self, word: str) -> bool:
        if self.tok.kind == "WORD" and self.tok.value == word:
            self.advance()
            return True
        return False

    def expect_word(self, word: str):
        if not self.accept_word(word):
            self.fail(f"mismatched input '{self.tok.text}' expecting K_{word.upper()}")

    def is_symbol(self, symbol: str, ahead: int = 0) -> bool:
        tok = self.toks[min(self.i + ahead, len(self.toks) - 1)]
        return tok.kind == "SYMBOL" and tok.value == symbol

    def accept_symbol(self, symbol: str) -> bool:
        if self.tok.kind == "SYMBOL" and self.tok.value == symbol:
            self.advance()
            return True
        return False

    def expect_symbol(self, symbol: str):
        if not self.accept_symbol(symbol):
            self.fail(f"mismatched input '{self.tok.text}' expecting '{symbol}'")

    def name(self) -> str:
        tok = self.tok
        if tok.kind == "QNAME" or (tok.kind == "WORD" and tok.value not in RESERVED):
            self.advance()
            return tok.value
        self.fail()

    def names(self) -> tuple[str, ...]:
        """'(' name (',' name)* ')'"""
        self.expect_symbol("(")
        out = [self.name()]
        while self.accept_symbol(","):
            out.append(self.name())
        self.expect_symbol(")")
        return tuple(out)

    def qualified(self) -> tuple[str | None, str]:
        first = self.name()
        if self.accept_symbol("."):
            return first, self.name()
        return None, first

    def if_not_exists(self) -> bool:
        if self.accept_word("if"):
            self.expect_word("not")
            self.expect_word("exists")
            return True
        return False

    def if_exists(self) -> bool:
        if self.is_word("if") and self.is_word("exists", 1):
            self.advance()
            self.advance()
            return True
        return False


    # -- terms -----------------------------------------------------------------------------------

    def term(self, depth: int = 0):
        if depth > MAX_TERM_DEPTH:
            self.fail(f"terms nested deeper than {MAX_TERM_DEPTH}")
        tok = self.tok
        kind = tok.kind
        if kind in _CONSTANT_KINDS:
            self.advance()
            return ast.Constant(_CONSTANT_KINDS[kind], tok.value)
        if kind == "WORD":
            word = tok.value
            if word in ("true", "false"):
                self.advance()
                return ast.Constant("boolean", word)
            if word in ("nan", "infinity"):
                self.advance()
                return ast.Constant("float", "NaN" if word == "nan" else "Infinity")
            if word == "null":
                self.advance()
                return ast.Null()
            if word not in RESERVED and self.is_symbol("(", 1):
                return self.function_call(depth)
            self.fail()
        if kind == "SYMBOL":
            symbol = tok.value
            if symbol == "?" or symbol == ":":
                return self.bind_marker()
            if symbol == "-" and (self.is_word("nan", 1) or self.is_word("infinity", 1)):
                self.advance()
                word = self.advance().value
                return ast.Constant("float", "-NaN" if word == "nan" else "-Infinity")
            if symbol == "[":
                self.advance()
                return ast.ListLiteral(self.term_list("]", depth))
            if symbol == "(":
                self.advance()
                return ast.TupleLiteral(self.term_list(")", depth))
            if symbol == "{":
                return self.brace_literal(depth)
        self.fail()

    def bind_marker(self) -> ast.BindMarker:
        name = None
        if self.advance().value == ":":
            name = self.name()
        self.markers += 1
        return ast.BindMarker(self.markers - 1, name)

    def term_list(self, close: str, depth: int) -> tuple:
        """term (',' term)* close, or just close."""
        out = []
        if not self.accept_symbol(close):
            out.append(self.term(depth + 1))
            while self.accept_symbol(","):
                out.append(self.term(depth + 1))
            self.expect_symbol(close)
        return tuple(out)

    def brace_literal(self, depth: int):
        """{} (an empty map, also accepted for sets), {k: v, ...} or {a, b, ...}."""
        self.advance()
        if self.accept_symbol("}"):
            return ast.MapLiteral(())
        first = self.term(depth + 1)
        if self.accept_symbol(":"):
            entries = [(first, self.term(depth + 1))]
            while self.accept_symbol(","):
                key = self.term(depth + 1)
                self.expect_symbol(":")
                entries.append((key, self.term(depth + 1)))
            self.expect_symbol("}")
            return ast.MapLiteral(tuple(entries))
        items = [first]
        while self.accept_symbol(","):
            items.append(self.term(depth + 1))
        self.expect_symbol("}")
        return ast.SetLiteral(tuple(items))

    def function_call(self, depth: int) -> ast.FunctionCall:
        name = self.advance().value
        self.advance()                                  # '('
        return ast.FunctionCall(name, self.term_list(")", depth))

    def int_value(self):
        """An integer literal or a bind marker (LIMIT, USING TTL / TIMESTAMP)."""
        if self.tok.kind == "INTEGER":
            return ast.Constant("integer", self.advance().value)
        if self.is_symbol("?") or self.is_symbol(":"):
            return self.bind_marker()
        self.fail()


_CONSTANT_KINDS = {"STRING": "string", "INTEGER": "integer", "FLOAT": "float", "UUID": "uuid", "HEX": "hex",
                   "DURATION": "duration"}
