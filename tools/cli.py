"""The `dynatable` command line: one console script, subcommands in the spirit of Cassandra's tools."""
from __future__ import annotations

import sys

import click


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """dynatable: a Dynamo/BigTable storage engine in Python, in the spirit of Apache Cassandra."""


@main.command()
@click.option("--dir", "directory", type=click.Path(file_okay=False), default=None,
              help="Keep the tour's data here instead of a temporary directory.")
@click.option("--rows", default=20_000, show_default=True, help="How many rows to write.")
def tour(directory, rows) -> None:
    """Write, flush, compact, crash, recover and read back, printing each step."""
    from tools.tour import run_tour
    sys.exit(0 if run_tour(directory, rows) else 1)


@main.group()
def sstable() -> None:
    """Inspect SSTables."""


@sstable.command("dump")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
def sstable_dump(path) -> None:
    """Print an SSTable's statistics and partitions (any of its component files)."""
    from tools.sstable_dump import dump_sstable
    dump_sstable(path, sys.stdout)


@sstable.command("repair")
@click.argument("store_dir", type=click.Path(file_okay=False))
def sstable_repair(store_dir) -> None:
    """Rebuild each table's missing or unreadable MANIFEST from its SSTables (store closed).

    Every complete SSTable is read whole and checked; bad ones are moved to quarantine/."""
    from engine.sstable_repair import repair_store
    try:
        tables = repair_store(store_dir, progress=click.echo)
    except (OSError, ValueError) as e:
        click.echo(f"error: {e}; pass the directory given to Store.open (it holds data/)", err=True)
        sys.exit(1)
    rebuilt = [t for t in tables if t.status == "rebuilt"]
    kept = sum(len(t.kept) for t in rebuilt)
    lost = sum(len(t.quarantined) for t in rebuilt)
    click.echo(f"{len(tables)} tables: {len(rebuilt)} manifests rebuilt, {kept} sstables kept, "
               f"{lost} quarantined")


@main.group()
def commitlog() -> None:
    """Inspect commit-log segments."""


@commitlog.command("dump")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
def commitlog_dump(path) -> None:
    """Print a commit-log segment's header and records."""
    from tools.commitlog_dump import dump_commitlog
    dump_commitlog(path, sys.stdout)


@main.command()
@click.argument("which", required=False, type=click.Choice(["persistency"]))
@click.option("--rows", default=100, show_default=True, help="How many rows to write and read.")
@click.option("--keep", is_flag=True, help="Keep the cluster's files (nodes are stopped anyway).")
def demo(which, rows, keep) -> None:
    """Start a local 3-node cluster, kill a node, bring it back, printing each step.

    `dynatable demo persistency`: a space persisted write-behind into the cluster, crashed and restarted."""
    if which == "persistency":
        from tools.demo_persistency import run_demo as run_persistency_demo
        sys.exit(0 if run_persistency_demo(keep=keep) else 1)
    from tools.demo import run_demo
    sys.exit(0 if run_demo(rows=rows, keep=keep) else 1)


@main.command(context_settings={"help_option_names": ["--help"]})
@click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None,
              help="Node settings (TOML); keys not in the file keep their defaults.")
@click.option("--print-default-config", is_flag=True, help="Print every key with its default and exit.")
def node(config_path, print_default_config) -> None:
    """Run one node in the foreground (until SIGTERM or Ctrl-C)."""
    if print_default_config:
        from ring.runtime.config import dump_default
        click.echo(dump_default(), nl=False)
        return
    from ring.runtime.asyncio_tcp import main as node_main
    sys.exit(node_main(["--config", config_path] if config_path else []))


# -- cluster (like ccm) ------------------------------------------------------------------------

def _root_option(f):
    return click.option("--root", type=click.Path(file_okay=False), default=None, envvar="DYNATABLE_HOME",
                        help="Where clusters live (default: $DYNATABLE_HOME or ~/.dynatable/clusters).")(f)


def _fail(message: str) -> None:
    click.echo(f"dynatable: {message}", err=True)
    sys.exit(1)


def _load(name, root):
    from tools.cluster_manager import ClusterError, LocalCluster, default_root
    if name is None:
        name = LocalCluster.current_name(root)
        if name is None:
            where = root or default_root()
            known = LocalCluster.list_names(root)
            hint = (f"; pick one with `dynatable cluster switch NAME` ({', '.join(known)})" if known
                    else "; create one with `dynatable cluster create NAME`")
            _fail(f"no current cluster under {where}{hint}")
    try:
        return LocalCluster.load(name, root)
    except ClusterError as e:
        _fail(str(e))


def _with_progress(cluster, what, fn, *args, **kwargs):
    from rich.console import Console
    console = Console(stderr=True)
    if console.is_terminal:
        with console.status(what + "...") as st:
            cluster.progress = lambda m: st.update(f"{what}: {m}")
            return fn(*args, **kwargs)
    cluster.progress = lambda m: click.echo(f"  {m}", err=True)
    return fn(*args, **kwargs)


def _run(fn, *args, **kwargs):
    """Run a cluster-manager call, turning its errors into one line that says what to do."""
    from tools.cluster_manager import ClusterError
    try:
        return fn(*args, **kwargs)
    except (ClusterError, TimeoutError) as e:
        _fail(str(e))


@main.group()
def cluster() -> None:
    """Local multi-process clusters (like ccm): create, start, stop, status, kill, pause, restart, remove."""


@cluster.command("create")
@click.argument("name")
@click.option("-n", "--nodes", "n", default=3, show_default=True, help="Number of nodes (one datacenter).")
@click.option("--datacenters", default=None, help="Nodes per datacenter, e.g. dc1:3,dc2:2 (overrides -n).")
@click.option("--base-port", type=int, default=None, help="node1 listens on this port, node2 on the next... "
              "(default: free ports).")
@click.option("--metrics", is_flag=True, help="Give every node a Prometheus /metrics port.")
@click.option("--set", "settings", multiple=True, metavar="KEY=VALUE",
              help="A node setting for every node (TOML value), e.g. --set gossip_interval_ms=500.")
@click.option("--start", "start_now", is_flag=True, help="Start the nodes right away.")
@_root_option
def cluster_create(name, n, datacenters, base_port, metrics, settings, start_now, root) -> None:
    """Create cluster NAME (its directory and node configs) and make it the current one."""
    import tomllib

    from tools.cluster_manager import LocalCluster
    overrides = {}
    for item in settings:
        key, sep, value = item.partition("=")
        if not sep:
            _fail(f"--set wants KEY=VALUE, got {item!r}")
        try:
            overrides[key.strip()] = tomllib.loads(f"v = {value}")["v"]
        except tomllib.TOMLDecodeError:
            overrides[key.strip()] = value
    c = _run(LocalCluster.create, name, n, datacenters=datacenters, root=root, base_port=base_port,
             settings=overrides, metrics=metrics)
    click.echo(f"created cluster {c.name} in {c.path} (now the current cluster)")
    for nh in c.nodes:
        click.echo(f"  {nh.name}  {nh.endpoint}  {nh.datacenter}/{nh.rack}  {nh.config_path}")
    if start_now:
        _run(_with_progress, c, "starting", c.start)
        click.echo(f"started {len(c.nodes)} node(s)")
    else:
        click.echo("start it with `dynatable cluster start`")


@cluster.command("switch")
@click.argument("name")
@_root_option
def cluster_switch(name, root) -> None:
    """Make NAME the current cluster."""
    c = _load(name, root)
    c.set_current()
    click.echo(f"current cluster: {c.name}")


@cluster.command("list")
@_root_option
def cluster_list(root) -> None:
    """List the clusters under the root (* marks the current one)."""
    from tools.cluster_manager import LocalCluster
    current = LocalCluster.current_name(root)
    for name in LocalCluster.list_names(root):
        click.echo(f"{'*' if name == current else ' '} {name}")


@cluster.command("start")
@click.argument("name", required=False)
@click.option("--node", "nodes", multiple=True, help="Start only this node (repeatable).")
@click.option("--no-wait", is_flag=True, help="Do not wait until every node sees every node Up.")
@click.option("--timeout", default=60.0, show_default=True, help="Seconds to wait.")
@_root_option
def cluster_start(name, nodes, no_wait, timeout, root) -> None:
    """Start the cluster's nodes (all, or --node ...) and wait until the ring is whole."""
    c = _load(name, root)
    _run(_with_progress, c, f"starting {c.name}", c.start, list(nodes) or None, wait=not no_wait, timeout_s=timeout)
    click.echo(f"cluster {c.name}: {len(c.running())} of {len(c.nodes)} node(s) running")


@cluster.command("stop")
@click.argument("name", required=False)
@click.option("--node", "nodes", multiple=True, help="Stop only this node (repeatable).")
@_root_option
def cluster_stop(name, nodes, root) -> None:
    """Stop nodes with SIGTERM (SIGKILL after 20 s)."""
    c = _load(name, root)
    _run(c.stop, list(nodes) or None)
    click.echo(f"cluster {c.name}: {len(c.running())} of {len(c.nodes)} node(s) running")


@cluster.command("status")
@click.argument("name", required=False)
@_root_option
def cluster_status(name, root) -> None:
    """The ring: address, datacenter, rack, state, load, ownership (as a running node sees it)."""
    from tools.nodetool import render_ring_summary
    c = _load(name, root)
    if not c.running():
        click.echo(f"cluster {c.name}: no node running (start it with `dynatable cluster start`)")
        for nh in c.nodes:
            click.echo(f"  {nh.name}  {nh.endpoint}  {nh.datacenter}/{nh.rack}  stopped")
        return
    rows = _run(c.status)
    render_ring_summary(rows, names={nh.endpoint: nh.name for nh in c.nodes})
    stopped = [nh.name for nh in c.nodes if not nh.is_running()]
    if stopped:
        click.echo(f"not running: {', '.join(stopped)}")


def _node_command(verb: str, doc: str):
    @cluster.command(verb, help=doc)
    @click.argument("node_name", metavar="NODE")
    @click.option("--cluster", "name", default=None, help="Cluster name (default: the current one).")
    @_root_option
    def command(node_name, name, root) -> None:
        c = _load(name, root)
        nh = _run(c.node, node_name)
        if verb == "restart":
            _run(_with_progress, c, f"restarting {nh.name}", c.restart, nh)
        else:
            if verb != "kill" and not nh.is_running():
                _fail(f"{nh.name} is not running; start it with `dynatable cluster start --node {nh.name}`")
            _run(getattr(c, verb), nh)
        click.echo(f"{verb}: {nh.name} ({nh.endpoint})")
    return command


_node_command("kill", "Kill NODE with SIGKILL (no clean shutdown).")
_node_command("pause", "Freeze NODE with SIGSTOP (peers convict it after a while).")
_node_command("resume", "Thaw a paused NODE with SIGCONT.")
_node_command("restart", "Stop NODE and start it again, waiting until it is Up.")


@cluster.command("add")
@click.argument("node_name", metavar="NODE", required=False)
@click.option("--cluster", "name", default=None, help="Cluster name (default: the current one).")
@click.option("--dc", "datacenter", default=None, help="Its datacenter (default: node1's).")
@click.option("--no-start", is_flag=True, help="Only write its configuration.")
@click.option("--timeout", default=900.0, show_default=True, help="Seconds to wait for it to join.")
@_root_option
def cluster_add(node_name, name, datacenter, no_start, timeout, root) -> None:
    """Add NODE (default: the next nodeN) and bootstrap it: it streams its ranges, then is NORMAL."""
    c = _load(name, root)
    if no_start:
        nh = _run(c.add, node_name, datacenter=datacenter, start=False)
    else:
        nh = _run(_with_progress, c, "adding a node", c.add, node_name, datacenter=datacenter, timeout_s=timeout)
    click.echo(f"added: {nh.name} ({nh.endpoint})" + ("" if no_start else ", bootstrapped and NORMAL"))


@cluster.command("decommission")
@click.argument("node_name", metavar="NODE")
@click.option("--cluster", "name", default=None, help="Cluster name (default: the current one).")
@_root_option
def cluster_decommission(node_name, name, root) -> None:
    """nodetool decommission on NODE, then stop it and drop it from the cluster."""
    c = _load(name, root)
    nh = _run(c.node, node_name)
    s = _run(_with_progress, c, f"decommissioning {nh.name}", c.decommission, nh)
    click.echo(f"decommissioned: {nh.name} ({nh.endpoint}); {s['partitions']} partitions streamed to "
               f"{s['targets']} node(s)")


@cluster.command("remove")
@click.argument("name", required=False)
@_root_option
def cluster_remove(name, root) -> None:
    """Stop every node and delete the cluster's directory."""
    c = _load(name, root)
    _run(c.remove)
    click.echo(f"removed cluster {c.name} ({c.path})")


# -- nodetool --------------------------------------------------------------------------------------

@main.group(context_settings={"help_option_names": ["--help"]})
@click.option("-h", "--host", default="127.0.0.1:9100", show_default=True, help="The node to ask (HOST:PORT).")
@click.option("--cluster-name", default=None, help="The cluster's name (default: the current local "
              "cluster's, else 'dynatable').")
@click.option("--secret", default="", envvar="DYNATABLE_CLUSTER_SECRET", help="cluster_secret, if set.")
@click.option("--timeout", default=10.0, show_default=True, help="Seconds to wait for an answer.")
@click.pass_context
def nodetool(ctx, host, cluster_name, secret, timeout) -> None:
    """Cassandra's nodetool verbs, answered by the node at -h HOST:PORT."""
    ctx.obj = {"host": host, "cluster_name": cluster_name, "secret": secret, "timeout": timeout}


def _probe_call(ctx, fn, *args):
    from engine.errors import InvalidRequest
    from ring.client import NoHostAvailable
    from ring.errors import RequestError
    from tools.nodetool import NodeProbe
    o = ctx.obj
    name = o["cluster_name"] or _cluster_name_for(o["host"])
    try:
        with NodeProbe(o["host"], cluster_name=name, cluster_secret=o["secret"], timeout_s=o["timeout"]) as probe:
            return fn(probe, *args)
    except NoHostAvailable as e:
        _fail(f"nodetool: {e}; is a node running at {o['host']}? pass -h HOST:PORT, or start a local "
              "cluster with `dynatable cluster start`")
    except (RequestError, InvalidRequest, ValueError, OSError) as e:
        _fail(f"nodetool: {type(e).__name__}: {e}")


def _cluster_name_for(host: str) -> str:
    """The cluster_name of the local cluster that has a node at `host`, else the default."""
    from tools.cluster_manager import LocalCluster
    try:
        names = LocalCluster.list_names()
        current = LocalCluster.current_name()
        for name in sorted(names, key=lambda n: n != current):
            c = LocalCluster.load(name)
            if host in c.contact_points():
                return c._setting("cluster_name", "dynatable")
    except Exception:  # noqa: BLE001, S110 - only a convenience: fall back to the default
        pass
    return "dynatable"


@nodetool.command("status")
@click.pass_context
def nodetool_status(ctx) -> None:
    """Up/Down, Normal/Joining/Leaving/Moving, load, tokens, ownership of every node."""
    from tools import nodetool as nt
    _probe_call(ctx, nt.status)


@nodetool.command("ring")
@click.pass_context
def nodetool_ring(ctx) -> None:
    """Every token with the node that owns it."""
    from tools import nodetool as nt
    _probe_call(ctx, nt.ring)


@nodetool.command("info")
@click.pass_context
def nodetool_info(ctx) -> None:
    """This node: host id, generation, load, uptime, datacenter, rack, metrics."""
    from tools import nodetool as nt
    _probe_call(ctx, nt.info)


@nodetool.command("getendpoints")
@click.argument("keyspace")
@click.argument("table")
@click.argument("key")
@click.pass_context
def nodetool_getendpoints(ctx, keyspace, table, key) -> None:
    """The replicas of KEY's partition (composite keys as a:b; blobs in hex)."""
    from tools import nodetool as nt
    _probe_call(ctx, nt.getendpoints, keyspace, table, key)


@nodetool.command("flush")
@click.argument("keyspace", required=False)
@click.argument("table", required=False)
@click.pass_context
def nodetool_flush(ctx, keyspace, table) -> None:
    """Flush memtables to SSTables on this node."""
    from tools import nodetool as nt
    _probe_call(ctx, nt.flush, keyspace, table)


@nodetool.command("compact")
@click.argument("keyspace", required=False)
@click.argument("table", required=False)
@click.pass_context
def nodetool_compact(ctx, keyspace, table) -> None:
    """Major compaction on this node."""
    from tools import nodetool as nt
    _probe_call(ctx, nt.compact, keyspace, table)


@nodetool.command("tablestats")
@click.argument("keyspace", required=False)
@click.argument("table", required=False)
@click.pass_context
def nodetool_tablestats(ctx, keyspace, table) -> None:
    """Per-table statistics on this node."""
    from tools import nodetool as nt
    _probe_call(ctx, nt.tablestats, keyspace, table)


if __name__ == "__main__":
    main()


@nodetool.command("repair")
@click.argument("keyspace", required=False)
@click.argument("table", required=False)
@click.option("--full", is_flag=True, help="Full repair (the only kind there is: incremental repair is not built).")
@click.option("-pr", "--partitioner-range", "primary_range", is_flag=True, help="Only this node's primary ranges.")
@click.option("--preview", is_flag=True, help="Compare Merkle trees and report differences; stream nothing.")
@click.pass_context
def nodetool_repair(ctx, keyspace, table, full, primary_range, preview) -> None:
    """Merkle-tree anti-entropy repair of the ranges this node replicates."""
    from tools import nodetool as nt
    ctx.obj["timeout"] = max(ctx.obj["timeout"], 600.0)
    _probe_call(ctx, lambda probe: nt.repair(probe, keyspace, table, primary_range=primary_range, preview=preview))


@nodetool.command("decommission")
@click.pass_context
def nodetool_decommission(ctx) -> None:
    """Stream this node's ranges to their new owners, then leave the ring (LEFT)."""
    from tools import nodetool as nt
    ctx.obj["timeout"] = max(ctx.obj["timeout"], 3600.0)
    _probe_call(ctx, nt.decommission)


@nodetool.command("removenode")
@click.argument("host_id")
@click.pass_context
def nodetool_removenode(ctx, host_id) -> None:
    """Re-replicate the ranges of the dead node HOST_ID (see nodetool status), then drop it."""
    from tools import nodetool as nt
    ctx.obj["timeout"] = max(ctx.obj["timeout"], 3600.0)
    _probe_call(ctx, nt.removenode, host_id)


@nodetool.command("cleanup")
@click.argument("keyspace", required=False)
@click.argument("table", required=False)
@click.pass_context
def nodetool_cleanup(ctx, keyspace, table) -> None:
    """Drop the data of ranges this node no longer replicates (run on old nodes after a join)."""
    from tools import nodetool as nt
    ctx.obj["timeout"] = max(ctx.obj["timeout"], 3600.0)
    _probe_call(ctx, nt.cleanup, keyspace, table)


@nodetool.command("netstats")
@click.pass_context
def nodetool_netstats(ctx) -> None:
    """This node's mode (JOINING, NORMAL, LEAVING, DECOMMISSIONED) and its streams."""
    from tools import nodetool as nt
    _probe_call(ctx, nt.netstats)


@nodetool.command("listpendinghints")
@click.pass_context
def nodetool_listpendinghints(ctx) -> None:
    """Hints this node holds for other nodes."""
    from tools import nodetool as nt
    _probe_call(ctx, nt.listpendinghints)


@nodetool.command("truncatehints")
@click.argument("endpoint", required=False)
@click.pass_context
def nodetool_truncatehints(ctx, endpoint) -> None:
    """Delete the hints this node holds (for ENDPOINT only, if given)."""
    from tools import nodetool as nt
    _probe_call(ctx, nt.truncatehints, endpoint)


@main.command()
@click.option("--seed", type=int, required=True, help="The run to replay.")
@click.option("--write", "write_cl", default="QUORUM", show_default=True, help="Write consistency level.")
@click.option("--read", "read_cl", default="QUORUM", show_default=True, help="Read consistency level.")
@click.option("--two-dcs", is_flag=True, help="Six nodes in two datacenters (NetworkTopologyStrategy 3+3).")
@click.option("--skew", is_flag=True, help="Let the nemesis skew clocks (linearizability is then not promised).")
@click.option("--mutant", default="", help="A test-only canary mutant to run with.")
@click.option("--steps", default=300, show_default=True, help="Workload steps.")
@click.option("--verbose", is_flag=True, help="Print the trace: every delivery, reply and fault.")
def sim(seed, write_cl, read_cl, two_dcs, skew, mutant, steps, verbose) -> None:
    """Replay a seeded simulation run and check its history (what the property tests print)."""
    from tools.sim_run import main as run
    sys.exit(0 if run(seed, write_cl.upper(), read_cl.upper(), two_dcs, skew, mutant, steps, verbose) else 1)


@main.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True,
                                "help_option_names": ["--help"]}, add_help_option=False)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def stress(args) -> None:
    """Load a cluster like cassandra-stress: write, read, mixed, ycsb (`dynatable stress help`)."""
    from tools.stress.command import run_command
    sys.exit(run_command(list(args), cluster_name_for=_cluster_name_for))
