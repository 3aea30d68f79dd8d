"""`dynatable demo`: a real 3-node cluster on this machine, from start to clean-up, step by step.

Starts three node processes on loopback ports in a temporary directory, creates keyspace `demo`
(SimpleStrategy, replication factor 3), writes and reads at QUORUM, kills node3 with SIGKILL,
waits until the others' failure detectors convict it, shows that QUORUM (2 of 3) still works
while ALL is refused up front with UnavailableError, restarts node3, waits until it is Up again,
shows the ring and reads everything at ALL. Before the kill, a CQL step: cassandra-driver connects to
the nodes' CQL ports (9042 on 127.0.0.N when free), creates table demo.visits in CQL and makes
prepared writes and reads that its token-aware routing sends to a replica (skipped with a one-line
hint when cassandra-driver is not installed). The cluster and its directory are removed at the end,
also after an error or Ctrl-C. Exit code 0 only if every check passed.

Timing settings (the only ones that differ from a node's defaults): gossip every 250 ms instead
of 1 s, and phi_convict_threshold 3 instead of 8, so a silent node is convicted after about
3 x ln(10) = 6.9 mean heartbeat intervals (~2 s) instead of ~18 s. Fine on loopback, far too
twitchy for a real network.
"""
from __future__ import annotations

import logging
import shutil
import tempfile
import time

from rich.console import Console

from ring.errors import UnavailableError
from tools import nodetool
from tools.cluster import LocalCluster

DEMO_SETTINGS = {"gossip_interval_ms": 250, "phi_convict_threshold": 3.0, "num_tokens": 8,
                 "log_level": "WARNING"}
ROWS = 100


def run_demo(console: Console | None = None, rows: int = ROWS, keep: bool = False) -> bool:
    console = console or Console()
    root = tempfile.mkdtemp(prefix="dynatable-demo-")
    step = 0
    failures: list[str] = []
    started = time.monotonic()
    cluster: LocalCluster | None = None
    client = None

    def say(msg: str) -> None:
        nonlocal step
        step += 1
        console.print(f"[bold cyan]{step:>2}.[/] {msg}", highlight=False, soft_wrap=not console.is_terminal)

    def check(ok: bool, good: str, bad: str) -> None:
        if ok:
            console.print(f"    [green]ok[/] {good}", highlight=False, soft_wrap=not console.is_terminal)
        else:
            failures.append(bad)
            console.print(f"    [bold red]FAILED[/] {bad}", highlight=False, soft_wrap=not console.is_terminal)

    def timed(what: str, fn, *args, **kw) -> float:
        t0 = time.monotonic()
        if console.is_terminal:
            with console.status(what + "...") as st:
                if cluster is not None:
                    cluster.progress = lambda m: st.update(f"{what}: {m}")
                try:
                    fn(*args, **kw)
                finally:
                    if cluster is not None:
                        cluster.progress = None
        else:
            fn(*args, **kw)
        return time.monotonic() - t0

    try:
        cluster = LocalCluster.create("demo", n=3, root=root, settings=DEMO_SETTINGS)
        say(f"Created a 3-node cluster in {cluster.path}: "
            + ", ".join(f"{nh.name} on {nh.endpoint}" for nh in cluster.nodes)
            + f"; seeds {cluster.nodes[0].endpoint}; gossip every {DEMO_SETTINGS['gossip_interval_ms']} ms, "
              f"phi_convict_threshold {DEMO_SETTINGS['phi_convict_threshold']:g} (a silent node is Down in ~2 s)")

        took = timed("starting 3 node processes", cluster.start, timeout_s=30)
        say(f"Started 3 node processes; every node sees every node Up and NORMAL after {took:.1f} s. "
            "nodetool status from node1:")
        nodetool.render_status(cluster.ask("node1", "status"), console)

        client = cluster.client(timeout_s=10)
        session = client.connect()
        session.create_keyspace("demo", {"class": "SimpleStrategy", "replication_factor": 3})
        session.create_table("users", {"id": "int", "name": "text", "visits": "bigint"}, primary_key="id",
                             keyspace="demo")
        session = client.connect("demo")
        say("Created keyspace demo (SimpleStrategy, replication_factor 3: every row on all 3 nodes) and "
            "table demo.users (id int PRIMARY KEY, name text, visits bigint)")

        t0 = time.monotonic()
        for i in range(rows):
            session.insert("users", {"id": i, "name": f"user-{i}", "visits": 1}, consistency="QUORUM")
        bad = [i for i in range(rows)
               if session.get("users", {"id": i}, consistency="QUORUM") != {"id": i, "name": f"user-{i}", "visits": 1}]
        say(f"Wrote {rows} rows at QUORUM (2 of 3 replicas acknowledge) and read them back at QUORUM "
            f"in {time.monotonic() - t0:.2f} s")
        check(not bad, f"all {rows} rows read back", f"{len(bad)} rows read back wrong, e.g. id {bad[:3]}")

        cql_step(cluster, say, check)

        node3 = cluster.node("node3")
        cluster.kill(node3)
        say(f"Killed node3 ({node3.endpoint}) with SIGKILL: no goodbye, its peers must notice the silence")
        took = timed("waiting for node1 and node2 to convict node3", cluster.wait_for_down, node3, timeout_s=30)
        say(f"node1 and node2 see node3 Down after {took:.1f} s (phi accrual failure detector). "
            "nodetool status from node1:")
        nodetool.render_status(cluster.ask("node1", "status"), console)

        t0 = time.monotonic()
        for i in range(rows):
            session.insert("users", {"id": i, "name": f"user-{i}", "visits": 2}, consistency="QUORUM")
        bad = [i for i in range(rows) if (session.get("users", {"id": i}, consistency="QUORUM") or {}).get("visits") != 2]
        say(f"With node3 down, updated all {rows} rows at QUORUM and read them back at QUORUM "
            f"in {time.monotonic() - t0:.2f} s (2 live replicas are a quorum of 3)")
        check(not bad, "QUORUM still works with one replica down", f"{len(bad)} QUORUM reads wrong after the kill")

        say("Wrote and read at ALL, which needs all 3 replicas:")
        for what, call in (("write", lambda: session.insert("users", {"id": 0, "name": "x", "visits": 9},
                                                            consistency="ALL")),
                           ("read", lambda: session.get("users", {"id": 0}, consistency="ALL"))):
            try:
                call()
            except UnavailableError as e:
                console.print(f"    {what} at ALL: [yellow]UnavailableError[/]: {e}", highlight=False, soft_wrap=not console.is_terminal)
                check(e.required == 3 and e.alive == 2,
                      f"refused before anything was sent (required {e.required}, alive {e.alive})",
                      f"UnavailableError said required {e.required}, alive {e.alive}; expected 3 and 2")
            else:
                check(False, "", f"the {what} at ALL succeeded with node3 down")

        took = timed("restarting node3", cluster.restart, node3, timeout_s=30)
        say(f"Restarted node3: it replayed its commit log, gossiped a new generation and every node "
            f"sees it Up again after {took:.1f} s")

        say("The ring as node3 sees it (nodetool status from node3; every token range has 3 replicas):")
        nodetool.render_status(cluster.ask("node3", "status"), console)

        t0 = time.monotonic()
        bad = [i for i in range(rows) if (session.get("users", {"id": i}, consistency="ALL") or {}).get("visits") != 2]
        say(f"Read all {rows} rows at ALL in {time.monotonic() - t0:.2f} s: node3 missed the updates while it "
            "was down; hinted handoff and read repair bring it up to date")
        check(not bad, "every row has the update written while node3 was down",
              f"{len(bad)} rows wrong at ALL, e.g. id {bad[:3]}")
        bad = []
        from ring.client import Cluster
        with Cluster([node3.endpoint], timeout_s=10) as only3:
            s3 = only3.connect("demo")
            bad = [i for i in range(rows) if (s3.get("users", {"id": i}, consistency="ONE") or {}).get("visits") != 2]
        check(not bad, "node3 itself now answers every row with the update (read at ONE, coordinated by node3)",
              f"{len(bad)} rows stale at ONE on node3, e.g. id {bad[:3]}")
    except KeyboardInterrupt:
        failures.append("interrupted")
        console.print("\n[yellow]Interrupted: cleaning up[/]")
    except Exception as e:  # noqa: BLE001 - the demo reports and cleans up whatever went wrong
        failures.append(f"{type(e).__name__}: {e}")
        console.print(f"[bold red]error[/]: {type(e).__name__}: {e}", highlight=False)
    finally:
        if client is not None:
            client.shutdown()
        if cluster is not None:
            try:
                if keep:
                    cluster.stop()
                else:
                    cluster.remove()
            except BaseException as e:  # noqa: BLE001 - keep cleaning
                console.print(f"[red]clean-up of the cluster failed[/]: {e}")
                cluster.stop(timeout_s=5)
        if not keep:
            shutil.rmtree(root, ignore_errors=True)
        say("Stopped every node and removed the cluster's directory" if not keep
            else f"Stopped every node; the cluster's files are kept in {root}")

    return verdict(console, started, failures)


def cql_step(cluster: LocalCluster, say, check, rows: int = 20) -> None:
    """cassandra-driver against the cluster's CQL ports: DDL, token-aware prepared writes and reads."""
    try:
        from cassandra import ConsistencyLevel
        from cassandra.cluster import Cluster
    except ImportError:
        say("Skipped the CQL step: cassandra-driver is not installed (pip install cassandra-driver)")
        return
    logging.getLogger("cassandra").setLevel(logging.ERROR)  # its protocol-downgrade notes are expected
    hosts = [nh.cql_endpoint.rsplit(":", 1)[0] for nh in cluster.nodes]
    driver = Cluster(hosts, port=int(cluster.nodes[0].cql_endpoint.rsplit(":", 1)[1]))
    try:
        session = driver.connect()
        session.execute("CREATE TABLE demo.visits (user int, day int, pages int, PRIMARY KEY (user, day))")
        say(f"CQL: cassandra-driver connected with protocol v{driver.protocol_version} to {', '.join(nh.cql_endpoint for nh in cluster.nodes)} and ran CREATE TABLE demo.visits "
            "(user int, day int, pages int, PRIMARY KEY (user, day))")
        insert = session.prepare("INSERT INTO demo.visits (user, day, pages) VALUES (?, ?, ?)")
        select = session.prepare("SELECT day, pages FROM demo.visits WHERE user = ?")
        insert.consistency_level = select.consistency_level = ConsistencyLevel.QUORUM
        on_replica = 0
        for user in range(rows):
            future = session.execute_async(insert, (user, 1, user * 10))
            future.result()
            replicas = driver.metadata.get_replicas("demo", insert.bind((user, 1, 0)).routing_key)
            on_replica += future.coordinator_host in replicas
        bad = [u for u in range(rows) if [tuple(r) for r in session.execute(select, (u,))] != [(1, u * 10)]]
        say(f"CQL: {rows} prepared INSERTs and SELECTs at QUORUM; the driver's token-aware routing sent "
            f"{on_replica} of {rows} writes straight to a replica of their partition")
        check(not bad and on_replica == rows, "every row read back through CQL, every write coordinated by a replica",
              f"CQL: {len(bad)} rows read back wrong, {rows - on_replica} writes not sent to a replica")
    finally:
        driver.shutdown()


def verdict(console, started: float, failures: list[str]) -> bool:
    """The demo's last line: done with every check passed, or what failed."""
    elapsed = time.monotonic() - started
    if failures:
        console.print(f"[bold red]Demo failed[/] after {elapsed:.1f} s: " + "; ".join(failures), highlight=False)
        return False
    console.print(f"[bold green]Demo done[/] in {elapsed:.1f} s: every check passed", highlight=False)
    return True
