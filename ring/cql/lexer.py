"""The CQL 3 lexer: query text -> a list of Tokens with line/column positions. Pure.

One compiled regular expression, alternatives tried in order, so a uuid literal
(`00000000-0000-0000-0000-000000000007`, `deadbeef-...`) wins over a number or a word, and a
float over an integer. Token kinds:

    WORD     an unquoted name or keyword; `value` is lower-cased (CQL names fold to lower case)
    QNAME    a quoted name `"Foo"` ("" escapes a quote); `value` keeps its case
    STRING   '...' ('' escapes a quote) or $$...$$; `value` is the text
    INTEGER  -?digits;   FLOAT  -?digits[.digits][e[+-]digits] (NaN / Infinity are WORDs)
    UUID     8-4-4-4-12 hex digits;   HEX  0x... (a blob literal; `value` is the digits)
    DURATION digits and units, e.g. 1h30m, -2d (engine/duration.py)
    SYMBOL   one of  <= >= != = < > ( ) , . ; ? : [ ] { } + - * / %
    EOF      the end (its position is just past the last character)

Comments (`-- ...`, `// ...` to the end of the line, `/* ... */`) and whitespace are skipped.
Keywords are case-insensitive; only RESERVED words cannot be names (Cassandra's Parser.g: every
keyword not in its unreserved lists, so `key`, `ttl`, `timestamp`, `count`, `writetime`, `type`,
`values`, `filtering`, `partition`, `distinct` ... are legal column names).

Positions are Cassandra's: line from 1, column (character in line) from 0. A syntax error is
`CqlSyntaxError`, the native protocol's SyntaxException (0x2000), whose message has Cassandra's
shape, e.g. `line 1:7 no viable alternative at input 'FROM' (SELECT [FROM]...)`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from engine.errors import InvalidRequest

# Cassandra's reserved keywords (Parser.g: not in basic_unreserved_keyword, unreserved_keyword
# or native_type). A reserved word is a name only when quoted.
RESERVED = frozenset("""
    add allow alter and apply asc authorize batch begin by columnfamily create delete desc describe
    drop entries execute false from full grant if in index infinity insert into is keyspace limit
    materialized modify nan norecursive not null of on or order primary rename revoke schema
    select set table to token true truncate unlogged update use using view where with
""".split())

MAX_QUERY_CHARS = 1 << 20          # one statement; longer text is refused before lexing

_PATTERN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<comment>--[^\n]*|//[^\n]*|/\*.*?\*/)
  | (?P<UUID>[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}(?![0-9a-zA-Z_]))
  | (?P<HEX>0[xX][0-9a-fA-F]*(?![0-9a-zA-Z_]))
  | (?P<DURATION>-?(?:[0-9]+(?:[yY]|[mM][oO]|[wW]|[dD]|[hH]|[mM][sS]|[uU][sS]|µs|[nN][sS]|[mM]|[sS]))+(?![0-9a-zA-Z_]))
  | (?P<FLOAT>-?[0-9]+(?:\.[0-9]*(?:[eE][+-]?[0-9]+)?|[eE][+-]?[0-9]+)(?![0-9a-zA-Z_]))
  | (?P<INTEGER>-?[0-9]+(?![0-9a-zA-Z_.]))
  | (?P<WORD>[a-zA-Z][a-zA-Z0-9_]*)
  | (?P<QNAME>"(?:[^"]|"")+")
  | (?P<STRING>'(?:[^']|'')*')
  | (?P<PSTRING>\$\$.*?\$\$)
  | (?P<SYMBOL><=|>=|!=|[=<>(),.;?:\[\]{}+\-*/%])
""", re.VERBOSE | re.DOTALL)


class CqlSyntaxError(InvalidRequest):
    """SyntaxException (error code 0x2000): the text is not CQL we understand. Fix the query.

    `line` counts from 1, `column` from 0 (Cassandra's positions)."""

    def __init__(self, line: int, column: int, message: str):
        self.line = line
        self.column = column
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class Token:
    kind: str
    text: str           # as written
    value: str          # normalized: lower-cased WORD, unescaped STRING / QNAME, hex digits
    pos: int            # character offset in the query
    line: int
    column: int


def tokenize(query: str) -> list[Token]:
    """Every token of `query`, then one EOF token. Raises CqlSyntaxError on a stray character."""
    if len(query) > MAX_QUERY_CHARS:
        raise InvalidRequest(f"query of {len(query)} characters exceeds the maximum of {MAX_QUERY_CHARS}")
    tokens: list[Token] = []
    append = tokens.append
    line, line_start, pos, end = 1, 0, 0, len(query)
    match = _PATTERN.match
    while pos < end:
        m = match(query, pos)
        if m is None:
            column = pos - line_start
            if query.startswith(("'", '"', "$$", "/*"), pos):
                raise CqlSyntaxError(line, column, f"line {line}:{column} unterminated "
                                     f"{_UNTERMINATED[query[pos:pos + 2] if query[pos] in '$/' else query[pos]]}")
            raise CqlSyntaxError(line, column, f"line {line}:{column} token recognition error at: '{query[pos]}'")
        kind, text = m.lastgroup, m.group()
        if kind == "WORD":
            append(Token("WORD", text, text.lower(), pos, line, pos - line_start))
        elif kind == "SYMBOL":
            append(Token("SYMBOL", text, text, pos, line, pos - line_start))
        elif kind in ("INTEGER", "FLOAT", "UUID", "DURATION"):
            append(Token(kind, text, text.lower(), pos, line, pos - line_start))
        elif kind == "STRING":
            append(Token("STRING", text, text[1:-1].replace("''", "'"), pos, line, pos - line_start))
        elif kind == "PSTRING":
            append(Token("STRING", text, text[2:-2], pos, line, pos - line_start))
        elif kind == "QNAME":
            append(Token("QNAME", text, text[1:-1].replace('""', '"'), pos, line, pos - line_start))
        elif kind == "HEX":
            append(Token("HEX", text, text[2:].lower(), pos, line, pos - line_start))
        newlines = text.count("\n")
        if newlines:
            line += newlines
            line_start = pos + text.rindex("\n") + 1
        pos = m.end()
    append(Token("EOF", "<EOF>", "", end, line, end - line_start))
    return tokens


_UNTERMINATED = {"'": "string literal", '"': "quoted name", "$$": "$$ string literal", "/*": "comment"}


def syntax_error(query: str, tokens: list[Token], index: int, message: str) -> CqlSyntaxError:
    """Cassandra's message: `line L:C <message> (<snippet with [offending] token>)`.

    The snippet runs from 10 tokens before the offending one to 2 after, '...' marking a cut,
    as Cassandra's ErrorCollector prints it."""
    index = min(index, len(tokens) - 1)
    bad = tokens[index]
    text = f"line {bad.line}:{bad.column} {message}"
    last = len(tokens) - 2                       # the last real token (EOF excluded)
    if last < 0:
        return CqlSyntaxError(bad.line, bad.column, text)
    first_tok = tokens[max(0, index - 10)]
    last_tok = tokens[min(last, index + 2)]
    start, stop = first_tok.pos, last_tok.pos + len(last_tok.text)
    if bad.kind == "EOF":
        snippet = query[start:stop].replace("\n", "")
    else:
        snippet = (query[start:bad.pos] + "[" + bad.text + "]" + query[bad.pos + len(bad.text):stop]).replace("\n", "")
    snippet = ("" if start == 0 else "...") + snippet + ("" if stop >= len(query.rstrip()) else "...")
    return CqlSyntaxError(bad.line, bad.column, f"{text} ({snippet})")


def describe(token: Token) -> str:
    """How an error message names a token: its text, or <EOF>."""
    return token.text


_PLAIN_NAME = re.compile(r"[a-z][a-z0-9_]*\Z")


def quote_name(name: str) -> str:
    """A name as CQL text: bare when it reads back the same (lower case, not reserved), else quoted."""
    if _PLAIN_NAME.match(name) and name not in RESERVED:
        return name
    return '"' + name.replace('"', '""') + '"'


def quote_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
