"""A space process for the crash test: writes entries through a mirror that holds them (huge
batch and interval), prints "written N", then waits to be killed with SIGKILL.

    python crash_writer.py BACKEND HOSTS PORT KEYSPACE LOG_DIR COUNT     (PORT "-" for none)
"""
import sys
import time

from persistency.config import CassandraConfig, open_backend
from persistency.descriptor import SpaceDocument, SpaceTypeDescriptor
from persistency.mirror import Mirror
from persistency.space import Space
from persistency.sync_endpoint import SpaceSynchronizationEndpoint


def main(backend: str, hosts: str, port: str, keyspace: str, log_dir: str, count: str) -> None:
    client = open_backend(CassandraConfig(hosts, keyspace, port=None if port == "-" else int(port), backend=backend))
    mirror = Mirror(SpaceSynchronizationEndpoint(client), log_dir, batch_size=1_000_000, interval_ms=3_600_000)
    space = Space("crashing", mirror=mirror, partitions=4)
    space.register_type(SpaceTypeDescriptor("Crashed", "id", fixed_properties={"id": "long", "n": "int"}))
    for i in range(int(count)):
        space.write(SpaceDocument("Crashed", {"id": i, "n": i, "tag": f"t{i}"}))
    space.partial_update("Crashed", 0, {"tag": "partial"})
    space.take(SpaceDocument("Crashed", {"id": 1}))
    print(f"written {count} pending {mirror.pending()}", flush=True)
    time.sleep(600)


if __name__ == "__main__":
    main(*sys.argv[1:])
