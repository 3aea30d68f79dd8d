"""Type name -> column family (table) name, exactly the original's DefaultColumnFamilyNameConverter.

Contract: the result has at most 48 characters and no dots. Algorithm: replace every "." and "$"
with "_"; if that fits in 48 characters it is the name; otherwise the last "_"-segment (trailing
empty segments dropped, as Java's split does) plus the first 6 lowercase hex digits of the MD5 of
the type name's UTF-8 bytes, the segment cut to 42 characters if needed. Short names that differ
only by "." / "_" / "$" collide (as in the original); the endpoint detects that (sync_endpoint).
"""
from __future__ import annotations

import hashlib
from typing import Protocol

MAX_LENGTH = 48
HASH_LENGTH = 6


class ColumnFamilyNameConverter(Protocol):
    def to_column_family_name(self, type_name: str) -> str: ...


class DefaultColumnFamilyNameConverter:
    def to_column_family_name(self, type_name: str | None) -> str | None:
        if type_name is None:
            return None
        md5_suffix = hashlib.md5(type_name.encode("utf-8", "surrogatepass")).hexdigest()[:HASH_LENGTH]
        underscored = type_name.replace(".", "_").replace("$", "_")
        segments = underscored.split("_")
        while len(segments) > 1 and segments[-1] == "":
            segments.pop()   # Java's String.split drops trailing empty strings
        simple = segments[-1] if segments else ""
        if len(underscored) <= MAX_LENGTH:
            return underscored
        if len(simple) + HASH_LENGTH <= MAX_LENGTH:
            return simple + md5_suffix
        return simple[:MAX_LENGTH - HASH_LENGTH] + md5_suffix
