"""Queries the data source answers: a template, or the SQL subset `<path> <op> ? [AND ...]`.

Grammar (the original's): op is one of =, <, >, <=, >=; paths are dotted identifiers; terms are
joined by AND only. Anything else (OR, literals instead of ?, other operators, parentheses) is an
InvalidRequest that names the unsupported part: an unsupported query fails loudly, never returns
an empty result. `matches` evaluates restrictions on a space entry (used by the in-memory space).
"""
from __future__ import annotations

import dataclasses
import operator
import re
from dataclasses import dataclass

from engine.errors import InvalidRequest
from persistency.document import SpaceDocument

_TERM = re.compile(r"^\s*((?:[A-Za-z_$][A-Za-z\d_$]*\.)*[A-Za-z_$][A-Za-z\d_$]*)\s*(<=|>=|=|<|>)\s*\?\s*$")
_AND = re.compile(r"\s+AND\s+", re.IGNORECASE)
OPERATORS = {"=": operator.eq, "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}
MAX_TERMS = 64


@dataclass(frozen=True)
class Restriction:
    path: str
    op: str
    value: object


@dataclass
class DataSourceQuery:
    """A template (SpaceDocument; None properties ignored) or `sql` with `params`, for `type_name`.
    `batch_size` is a page size, not a cap: every matching row comes back exactly once."""

    type_name: str
    template: SpaceDocument | None = None
    sql: str | None = None
    params: tuple = ()
    batch_size: int = 1000

    def __post_init__(self):
        if (self.template is None) == (self.sql is None):
            raise InvalidRequest("a DataSourceQuery has either a template or sql, not both and not neither")
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise InvalidRequest(f"batch_size must be a positive integer, got {self.batch_size!r}")


def parse_sql(sql: str, params) -> list[Restriction]:
    params = tuple(params)
    if not sql.strip():
        if params:
            raise InvalidRequest(f"an empty query takes no parameters, got {len(params)}")
        return []
    if re.search(r"\bOR\b", sql, re.IGNORECASE):
        raise InvalidRequest(f"unsupported query {sql!r}: OR is not supported; run one query per alternative")
    terms = _AND.split(sql.strip())
    if len(terms) > MAX_TERMS:
        raise InvalidRequest(f"query has {len(terms)} terms; at most {MAX_TERMS} are allowed")
    if len(terms) != len(params):
        raise InvalidRequest(f"query {sql!r} has {len(terms)} '?' terms but {len(params)} parameters were given")
    out = []
    for term, value in zip(terms, params, strict=True):
        m = _TERM.match(term)
        if m is None:
            raise InvalidRequest(f"unsupported query term {term.strip()!r}: use '<path> <op> ?' with op one of "
                                 f"{', '.join(OPERATORS)}, joined by AND")
        if value is None:
            raise InvalidRequest(f"query term {term.strip()!r}: a parameter cannot be None")
        out.append(Restriction(m.group(1), m.group(2), value))
    return out


def restrictions_of(query: DataSourceQuery) -> list[Restriction]:
    if query.sql is not None:
        return parse_sql(query.sql, query.params)
    return [Restriction(k, "=", v) for k, v in query.template.properties.items() if v is not None]


def value_at(entry, path: str):
    """The value at a dotted path of an entry (documents, dataclasses, dicts), or None."""
    value = entry
    for part in path.split("."):
        if isinstance(value, SpaceDocument):
            value = value.properties.get(part)
        elif isinstance(value, dict):
            value = value.get(part)
        elif dataclasses.is_dataclass(value) and not isinstance(value, type):
            value = getattr(value, part, None)
        else:
            return None
    return value


def matches(entry, restrictions: list[Restriction]) -> bool:
    for r in restrictions:
        v = value_at(entry, r.path)
        if v is None:
            return False
        try:
            if not OPERATORS[r.op](v, r.value):
                return False
        except TypeError:
            return False
    return True
