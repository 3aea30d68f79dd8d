"""The space without a cluster (issue 15, bug 2): a change the mirror refuses leaves the space as it
was, for write (new and existing ids), update, partial_update and take; accepted changes apply."""
import dataclasses

import pytest

from persistency.descriptor import SpaceDocument, SpaceTypeDescriptor
from persistency.mirror import Mirror, MirrorClosed
from persistency.serializer import SerializationError
from persistency.space import Space


@dataclasses.dataclass
class NotRegistered:
    x: int = 1


class Accepting:
    def on_introduce_type(self, descriptor):
        pass

    def on_operations_batch_synchronization(self, batch):
        pass

    def after_operations_batch_synchronization(self, batch):
        pass


@pytest.fixture
def space(tmp_path):
    s = Space("t", mirror=Mirror(Accepting(), str(tmp_path), interval_ms=10), partitions=3)
    s.register_type(SpaceTypeDescriptor("Item", "id", fixed_properties={"id": "long"}))
    yield s
    s.close(timeout_s=10)


def item(i, **props):
    return SpaceDocument("Item", {"id": i, **props})


def test_a_write_the_mirror_refuses_does_not_change_the_space(space):
    with pytest.raises(SerializationError, match="not registered"):
        space.write(item(1, extra=NotRegistered()))
    assert space.read_by_id("Item", 1) is None and space.count("Item") == 0
    space.write(item(1, v="old"))
    with pytest.raises(SerializationError):
        space.write(item(1, v="new", extra=NotRegistered()))
    with pytest.raises(SerializationError):
        space.update(item(1, v="new", extra=[NotRegistered()]))
    with pytest.raises(SerializationError):
        space.partial_update("Item", 1, {"v": "new", "extra": NotRegistered()})
    assert space.read_by_id("Item", 1) == item(1, v="old") and space.count("Item") == 1
    assert space.mirror.metrics["enqueued"] == 1


def test_a_take_the_mirror_refuses_keeps_the_entry(space):
    space.write(item(2, v="kept"))
    space.partial_update("Item", 2, {"w": 1})
    space.mirror.close(timeout_s=10)
    with pytest.raises(MirrorClosed):
        space.take(item(2))
    with pytest.raises(MirrorClosed):
        space.write(item(3))
    assert space.read_by_id("Item", 2) == item(2, v="kept", w=1) and space.read_by_id("Item", 3) is None
