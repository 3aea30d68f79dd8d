"""`dynatable demo persistency`: a space persisted write-behind into a real 3-node cluster, crashed
and restarted, step by step.

Starts three node processes, creates keyspace `shop` (replication factor 3), then runs a *space
process*: a space with a mirror (GigaSpaces' defaults: batches of 100 operations or every 2000 ms)
that writes customers (dataclass objects with a nested address, flattened into columns) and
orders (documents with dynamic properties, a nested document among them), updates and removes a
few, and is killed with SIGKILL right after its last write, with operations still in the mirror's
log. The demo then shows what reached the cluster, restarts the space (a new mirror resumes from
the log and delivers the rest; a new space loads metadata and data through the data source), and
checks that every entry came back equal, before queries by template, by SQL and through the index.
The cluster and its directory are removed at the end. Exit code 0 only if every check passed.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from rich.console import Console

from persistency.descriptor import IndexType, SpaceDocument, SpaceTypeDescriptor
from persistency.serializer import register_class
from tools.demo import verdict

SETTINGS = {"gossip_interval_ms": 250, "phi_convict_threshold": 3.0, "num_tokens": 8, "log_level": "WARNING"}
CUSTOMERS = 500


@dataclasses.dataclass
class Address:
    street: str = None
    city: str = None
    zip_code: int = None


@dataclasses.dataclass
class Customer:
    id: int = None
    name: str = None
    region: str = None
    address: Address = None
    since: dt.datetime = None


register_class(Address, "demo.Address")        # stable names: the space process runs this file as __main__
register_class(Customer, "demo.Customer")
CUSTOMER_TYPE = SpaceTypeDescriptor.of_class(Customer, "id", routing_property="region",
                                             indexes={"address.city": IndexType.BASIC})
ORDER_TYPE = SpaceTypeDescriptor("demo.Order", "id", fixed_properties={"id": "string", "customer": "long",
                                                                        "total": "decimal"},
                                 indexes={"customer": IndexType.BASIC})
CITIES = ("Lisbon", "Oslo", "Turin", "Quito")


def customer(i: int) -> Customer:
    return Customer(i, f"customer-{i}", ("eu", "us", "apac")[i % 3],
                    Address(f"{i} Main St", CITIES[i % 4], 1000 + i), dt.datetime(2020, 1, 1) + dt.timedelta(days=i))


def order(i: int) -> SpaceDocument:
    return SpaceDocument("demo.Order", {
        "id": f"o-{i}", "customer": i, "total": decimal.Decimal(f"{i}.99"),
        "express": i % 5 == 0, "lines": [f"sku-{i}", f"sku-{i + 1}"],             # dynamic properties
        "gift": SpaceDocument("Gift", {"wrap": "red", "note": f"for {i}"}) if i % 7 == 0 else None})


def space_process(contact_points: str, keyspace: str, log_dir: str, count: int) -> None:
    """The crashing space: writes, prints what it did, then waits for SIGKILL."""
    from persistency.mirror import Mirror
    from persistency.space import Space
    from persistency.native_backend import DynatableClient
    from persistency.sync_endpoint import SpaceSynchronizationEndpoint
    client = DynatableClient(contact_points.split(","), keyspace)
    space = Space("shop", mirror=Mirror(SpaceSynchronizationEndpoint(client), log_dir), partitions=4)
    space.register_type(CUSTOMER_TYPE)
    space.register_type(ORDER_TYPE)
    for i in range(count):
        space.write(customer(i))
        space.write(order(i))
    space.partial_update("demo.Customer", 1, {"name": "renamed by partial_update"})
    space.update(Customer(2, "replaced by update", "eu"))
    space.take(SpaceDocument("demo.Order", {"id": "o-3"}))
    print(f"operations {2 * count + 3} pending {space.mirror.pending()}", flush=True)
    time.sleep(3600)


def run_demo(console: Console | None = None, keep: bool = False) -> bool:
    from persistency.data_source import SpaceDataSource
    from persistency.mirror import Mirror
    from persistency.space import Space
    from persistency.native_backend import DynatableClient
    from persistency.sync_endpoint import SpaceSynchronizationEndpoint
    from tools.cluster import LocalCluster

    console = console or Console()
    root = tempfile.mkdtemp(prefix="dynatable-persistency-")
    log_dir = os.path.join(root, "mirror-log")
    failures: list[str] = []
    started = time.monotonic()
    cluster = proc = None
    clients: list = []
    step = 0

    def say(msg: str) -> None:
        nonlocal step
        step += 1
        console.print(f"[bold cyan]{step:>2}.[/] {msg}", highlight=False, soft_wrap=not console.is_terminal)

    def check(ok: bool, good: str, bad: str) -> None:
        (failures.append(bad) if not ok else None)
        mark = "[green]ok[/]" if ok else "[bold red]FAILED[/]"
        console.print(f"    {mark} {good if ok else bad}", highlight=False, soft_wrap=not console.is_terminal)

    def client() -> DynatableClient:
        clients.append(DynatableClient(cluster.contact_points(), "shop"))
        return clients[-1]

    try:
        cluster = LocalCluster.create("persistency-demo", n=3, root=root, settings=SETTINGS)
        cluster.start(timeout_s=60)
        admin = cluster.client(timeout_s=10)
        admin.connect().create_keyspace("shop", {"class": "SimpleStrategy", "replication_factor": 3})
        admin.shutdown()
        say(f"Started a 3-node cluster ({', '.join(cluster.contact_points())}) and created keyspace shop "
            "(replication factor 3; the persistency reads and writes at QUORUM)")

        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [_project_dir(), os.environ.get("PYTHONPATH")])))
        proc = subprocess.Popen([sys.executable, "-m", "tools.demo_persistency", ",".join(cluster.contact_points()),
                                 "shop", log_dir, str(CUSTOMERS)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env=env, cwd=_project_dir())
        line = proc.stdout.readline().split()
        if len(line) != 4:
            raise RuntimeError("the space process failed: " + proc.stderr.read()[-2000:])
        ops, pending = int(line[1]), int(line[3])
        say(f"A space process (pid {proc.pid}) with a mirror wrote {CUSTOMERS} customers (dataclasses with a "
            f"nested address) and {CUSTOMERS} orders (documents with dynamic properties), then one partial_update, "
            f"one update and one take: {ops} operations, {pending} of them still in the mirror's log")
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        say(f"Killed the space process with SIGKILL; its mirror log in {log_dir} holds what was not delivered")

        source = SpaceDataSource(client())
        source.initial_metadata_load()
        before = sum(1 for _ in source.initial_data_load())
        say(f"The cluster holds {before} of the {2 * CUSTOMERS - 1} entries so far (delivered before the kill)")

        mirror = Mirror(SpaceSynchronizationEndpoint(client()), log_dir)
        resumed = mirror.metrics["resumed"]
        t0 = time.monotonic()
        delivered = mirror.close(timeout_s=60)
        say(f"Restarted the mirror over the same log: it resumed {resumed} pending operations and delivered them "
            f"in {time.monotonic() - t0:.2f} s")
        # the dying mirror may deliver one more batch between its count and the SIGKILL: at most `pending`
        check(delivered and 0 < resumed <= pending, f"all {resumed} logged operations delivered",
              f"resumed {resumed} of at most {pending}, delivered: {delivered}")

        space = Space("shop", data_source=SpaceDataSource(client(), batch_limit=200), partitions=4)
        t0 = time.monotonic()
        loaded = space.start()
        say(f"Started a new space: initial metadata load ({', '.join(space.types)}), then initial data load of "
            f"{loaded} entries in {time.monotonic() - t0:.2f} s, pages of 200")
        expected = {i: customer(i) for i in range(CUSTOMERS)}
        expected[1].name = "renamed by partial_update"
        expected[2] = Customer(2, "replaced by update", "eu")
        got = {c.id: c for c in space.read_multiple(Customer())}
        check(got == expected, f"{len(got)} customers equal to what was written (nested addresses as Address objects)",
              f"{sum(got.get(i) != c for i, c in expected.items())} customers differ")
        orders = {o["id"]: o for o in space.read_multiple(SpaceDocument("demo.Order", {}))}
        want = {f"o-{i}": order(i) for i in range(CUSTOMERS) if i != 3}
        for o in want.values():
            o.properties = {k: v for k, v in o.properties.items() if v is not None}
        check(orders == want, f"{len(orders)} orders equal to what was written, dynamic properties and all",
              f"{sum(orders.get(k) != o for k, o in want.items())} orders differ, o-3 present: {'o-3' in orders}")
        console.print(f"    customer 7: {space.read_by_id('demo.Customer', 7)}", highlight=False,
                      soft_wrap=not console.is_terminal)
        console.print(f"    order o-7:  {space.read_by_id('demo.Order', 'o-7').properties}", highlight=False,
                      soft_wrap=not console.is_terminal)

        from persistency.query import DataSourceQuery
        oslo = list(source.get_data_iterator(DataSourceQuery("demo.Customer", sql="address.city = ? AND address.zip_code < ?",
                                                             params=("Oslo", 1100))))
        in_space = space.read_multiple("demo.Customer", "address.city = ? AND address.zip_code < ?", ("Oslo", 1100))
        say("Queried 'address.city = ? AND address.zip_code < ?' with (Oslo, 1100): in the space, and in the "
            f"cluster through the secondary index on address.city: {len(in_space)} and {len(oslo)} customers")
        check(len(oslo) == len(in_space) == 25, "both agree (25 customers)", f"{len(in_space)} vs {len(oslo)}")
    except KeyboardInterrupt:
        failures.append("interrupted")
    except Exception as e:  # noqa: BLE001 - the demo reports and cleans up whatever went wrong
        failures.append(f"{type(e).__name__}: {e}")
        console.print(f"[bold red]error[/]: {type(e).__name__}: {e}", highlight=False)
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(10)
        for c in clients:
            c.close()
        if cluster is not None:
            cluster.stop() if keep else cluster.remove()
        if not keep:
            shutil.rmtree(root, ignore_errors=True)
        say("Stopped every node and removed the cluster's directory" if not keep
            else f"Stopped every node; files kept in {root}")
    return verdict(console, started, failures)


def _project_dir() -> str:
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


if __name__ == "__main__":
    space_process(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]))
