"""Space persistency (GigaSpaces-style): space, mirror, synchronization endpoint, data source.
See docs/persistency.md. The common names are re-exported here."""
from persistency.descriptor import IndexType, SpaceTypeDescriptor
from persistency.document import SpaceDocument
from persistency.serializer import register_class

__all__ = ["IndexType", "SpaceDocument", "SpaceTypeDescriptor", "register_class"]
