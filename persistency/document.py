"""`SpaceDocument`: a schema-less space entry, a type name and its properties (nested documents allowed).

Plain data: it imports nothing of the persistency, so the serializer, the descriptor and the
mapping all build on it without a cycle. Written as a dynamic value with its own tag
(docs/format.md#space property values); as a fixed property type it is "document".
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class SpaceDocument:
    """A schema-less entry: a type name and its properties (nested documents allowed)."""

    type_name: str
    properties: dict = field(default_factory=dict)

    def __getitem__(self, name: str):
        return self.properties[name]

    def __setitem__(self, name: str, value) -> None:
        self.properties[name] = value

    def get(self, name: str, default=None):
        return self.properties.get(name, default)
