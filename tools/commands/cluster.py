"""`dynatable cluster ...`: local multi-process clusters, like ccm (tools/cluster/ does the work).

Each command loads the cluster from disk (the current one unless named), does one thing, and
prints one line or a table; ClusterError and TimeoutError become one line on stderr (`fail`).
`dynatable cqlsh [NODE]` (registered at the root) replaces itself with cqlsh on a node's CQL address.
"""
from __future__ import annotations

import sys

import click

from tools.commands import fail


def _root_option(f):
    return click.option("--root", type=click.Path(file_okay=False), default=None, envvar="DYNATABLE_HOME",
                        help="Where clusters live (default: $DYNATABLE_HOME or ~/.dynatable/clusters).")(f)


def _load(name, root):
    from tools.cluster import ClusterError, LocalCluster, default_root
    if name is None:
        name = LocalCluster.current_name(root)
        if name is None:
            where = root or default_root()
            known = LocalCluster.list_names(root)
            hint = (f"; pick one with `dynatable cluster switch NAME` ({', '.join(known)})" if known
                    else "; create one with `dynatable cluster create NAME`")
            fail(f"no current cluster under {where}{hint}")
    try:
        return LocalCluster.load(name, root)
    except ClusterError as e:
        fail(str(e))


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
    from tools.cluster import ClusterError
    try:
        return fn(*args, **kwargs)
    except (ClusterError, TimeoutError) as e:
        fail(str(e))


@click.group()
def cluster() -> None:
    """Local multi-process clusters (like ccm): create, start, stop, status, kill, pause, restart, remove."""


@cluster.command("create")
@click.argument("name")
@click.option("-n", "--nodes", "n", default=3, show_default=True, help="Number of nodes (one datacenter).")
@click.option("--datacenters", default=None, help="Nodes per datacenter, e.g. dc1:3,dc2:2 (overrides -n).")
@click.option("--base-port", type=int, default=None, help="Every node listens on this port of its own "
              "address 127.0.0.N (default: a port free on all of them).")
@click.option("--metrics", is_flag=True, help="Give every node a Prometheus /metrics port.")
@click.option("--set", "settings", multiple=True, metavar="KEY=VALUE",
              help="A node setting for every node (TOML value), e.g. --set gossip_interval_ms=500.")
@click.option("--start", "start_now", is_flag=True, help="Start the nodes right away.")
@_root_option
def cluster_create(name, n, datacenters, base_port, metrics, settings, start_now, root) -> None:
    """Create cluster NAME (its directory and node configs) and make it the current one."""
    import tomllib

    from tools.cluster import LocalCluster
    overrides = {}
    for item in settings:
        key, sep, value = item.partition("=")
        if not sep:
            fail(f"--set wants KEY=VALUE, got {item!r}")
        try:
            overrides[key.strip()] = tomllib.loads(f"v = {value}")["v"]
        except tomllib.TOMLDecodeError:
            overrides[key.strip()] = value
    c = _run(LocalCluster.create, name, n, datacenters=datacenters, root=root, base_port=base_port,
             settings=overrides, metrics=metrics)
    click.echo(f"created cluster {c.name} in {c.path} (now the current cluster)")
    for nh in c.nodes:
        click.echo(f"  {nh.name}  {nh.endpoint}  {nh.datacenter}/{nh.rack}"
                   + (f"  CQL {nh.cql_endpoint}" if nh.cql_endpoint else "") + f"  {nh.config_path}")
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
    from tools.cluster import LocalCluster
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
            click.echo(f"  {nh.name}  {nh.endpoint}  {nh.datacenter}/{nh.rack}  stopped"
                       + (f"  CQL {nh.cql_endpoint}" if nh.cql_endpoint else ""))
        return
    rows = _run(c.status)
    render_ring_summary(rows, names={nh.endpoint: nh.name for nh in c.nodes})
    cql = [f"{nh.name} {nh.cql_endpoint}" for nh in c.nodes if nh.cql_endpoint]
    if cql:
        click.echo("CQL (native_transport_port): " + ", ".join(cql))
    seen_up = {r["endpoint"] for r in rows if r.get("up")}
    stopped = [nh for nh in c.nodes if not nh.is_running()]
    if stopped:
        click.echo(f"not running: {', '.join(nh.name for nh in stopped)}")
    for nh in stopped:
        if nh.endpoint in seen_up:  # the failure detector has not convicted it yet
            click.echo(f"  {nh.name}: process stopped, peers have not convicted it yet (shown Up until they do)")


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
                fail(f"{nh.name} is not running; start it with `dynatable cluster start --node {nh.name}`")
            _run(getattr(c, verb), nh)
        click.echo(f"{verb}: {nh.name} ({nh.endpoint})")
    return command


_node_command("kill", "Kill NODE with SIGKILL (no clean shutdown).")
_node_command("pause", "Freeze NODE with SIGSTOP (peers convict it after a while).")
_node_command("resume", "Thaw a paused NODE with SIGCONT.")
_node_command("restart", "Stop NODE and start it again, waiting until it is Up.")


@cluster.command("nodetool", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.argument("node_name", metavar="NODE")
@click.argument("verb_args", metavar="VERB [ARGS]...", nargs=-1, type=click.UNPROCESSED, required=True)
@click.option("--cluster", "name", default=None, help="Cluster name (default: the current one).")
@_root_option
def cluster_nodetool(node_name, verb_args, name, root) -> None:
    """Run a nodetool VERB against NODE (ccm's `ccm node1 nodetool status`)."""
    from tools.commands.nodetool import nodetool
    c = _load(name, root)
    nh = _run(c.node, node_name)
    if not nh.is_running():
        fail(f"{nh.name} is not running; start it with `dynatable cluster start --node {nh.name}`")
    args = ["-h", nh.endpoint, "--cluster-name", c.setting("cluster_name", "dynatable")]
    secret = c.setting("cluster_secret", "")
    nodetool.main(args=args + (["--secret", secret] if secret else []) + list(verb_args),
                  prog_name="dynatable cluster nodetool " + nh.name, standalone_mode=False)


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


@click.command("cqlsh", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.argument("node_name", metavar="[NODE]", required=False)
@click.argument("cqlsh_args", metavar="[CQLSH ARGS]...", nargs=-1, type=click.UNPROCESSED)
@click.option("--cluster", "name", default=None, help="Cluster name (default: the current one).")
@_root_option
def cqlsh(node_name, cqlsh_args, name, root) -> None:
    """Open cqlsh (PyPI `cqlsh`, installed with dynatable) on NODE's CQL address (default: the first
    running node of the current cluster). Other arguments go to cqlsh, e.g. `-e 'DESCRIBE KEYSPACES'`."""
    import os
    import shutil
    if node_name is not None and node_name.startswith("-"):
        cqlsh_args, node_name = (node_name,) + cqlsh_args, None
    c = _load(name, root)
    if node_name is None:
        running = [nh for nh in c.nodes if nh.is_running()]
        if not running:
            fail(f"no node of cluster {c.name} is running; start it with `dynatable cluster start`")
        nh = running[0]
    else:
        nh = _run(c.node, node_name)
        if not nh.is_running():
            fail(f"{nh.name} is not running; start it with `dynatable cluster start --node {nh.name}`")
    here = os.path.join(os.path.dirname(os.path.realpath(sys.argv[0])), "cqlsh")
    program = here if os.access(here, os.X_OK) else shutil.which("cqlsh")
    if program is None:
        fail("cqlsh is not installed: run `pip install -e .` (it brings cqlsh) or `pip install 'cqlsh>=6.2.2,<6.3'` in dynatable's venv")
    host, _, port = nh.cql_endpoint.rpartition(":")
    sys.stdout.flush()
    os.execv(program, [program, host, port, *cqlsh_args])
