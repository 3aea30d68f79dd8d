"""`dynatable nodetool ...`: Cassandra's nodetool verbs, asked of one node (-h HOST:PORT; without
-h, a running node of the current local cluster, as `dynatable stress` does).

Each verb is a function of tools/nodetool.py called with a connected NodeProbe; a node that does
not answer, or an error it returns, becomes one line on stderr (`fail`).
"""
from __future__ import annotations

import click

from tools.commands import cluster_name_for, fail


@click.group(context_settings={"help_option_names": ["--help"]})
@click.option("-h", "--host", default=None, help="The node to ask (HOST:PORT; default: a running node of the "
              "current local cluster).")
@click.option("--cluster-name", default=None, help="The cluster's name (default: the current local "
              "cluster's, else 'dynatable').")
@click.option("--secret", default="", envvar="DYNATABLE_CLUSTER_SECRET", help="cluster_secret, if set.")
@click.option("--timeout", default=10.0, show_default=True, help="Seconds to wait for an answer.")
@click.pass_context
def nodetool(ctx, host, cluster_name, secret, timeout) -> None:
    """Cassandra's nodetool verbs, answered by the node at -h HOST:PORT (default: the current cluster's)."""
    ctx.obj = {"host": host, "cluster_name": cluster_name, "secret": secret, "timeout": timeout}


def _default_node(o: dict) -> str:
    """A node of the current local cluster (a running one if any): nodetool's target without -h."""
    from tools.cluster import ClusterError, LocalCluster
    name = LocalCluster.current_name()
    if name is None:
        fail("nodetool: no node given and no current local cluster; pass -h HOST:PORT, or create one "
             "with `dynatable cluster create NAME`")
    try:
        c = LocalCluster.load(name)
    except ClusterError as e:
        fail(f"nodetool: {e}")
    running = c.running()
    if not running:
        fail(f"nodetool: no node of the current cluster {c.name} is running; start it with "
             "`dynatable cluster start`, or pass -h HOST:PORT")
    if o["cluster_name"] is None:
        o["cluster_name"] = c.setting("cluster_name", "dynatable")
    if not o["secret"]:
        o["secret"] = c.setting("cluster_secret", "")
    return running[0].endpoint


def _probe_call(ctx, fn, *args):
    from engine.errors import InvalidRequest
    from ring.client import NoHostAvailable
    from ring.errors import RequestError
    from tools.nodetool import NodeProbe
    o = ctx.obj
    if o["host"] is None:
        o["host"] = _default_node(o)
    name = o["cluster_name"] or cluster_name_for(o["host"])
    try:
        with NodeProbe(o["host"], cluster_name=name, cluster_secret=o["secret"], timeout_s=o["timeout"]) as probe:
            return fn(probe, *args)
    except NoHostAvailable as e:
        fail(f"nodetool: {e}; is a node running at {o['host']}? pass -h HOST:PORT, or start a local "
              "cluster with `dynatable cluster start`")
    except (RequestError, InvalidRequest, ValueError) as e:
        fail(f"nodetool: {e}")
    except OSError as e:
        fail(f"nodetool: cannot reach {o['host']}: {e.strerror or e}")


@nodetool.command("status")
@click.argument("keyspace", required=False)
@click.pass_context
def nodetool_status(ctx, keyspace) -> None:
    """Up/Down, Normal/Joining/Leaving/Moving, load, tokens, ownership of every node (effective
    ownership under KEYSPACE's replication, if given)."""
    from tools import nodetool as nt
    _probe_call(ctx, nt.status, keyspace)


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


@nodetool.command("describecluster")
@click.pass_context
def nodetool_describecluster(ctx) -> None:
    """Cluster name, snitch, partitioner, and the schema versions the nodes hold."""
    from tools import nodetool as nt
    _probe_call(ctx, nt.describecluster)


@nodetool.command("gossipinfo")
@click.pass_context
def nodetool_gossipinfo(ctx) -> None:
    """Every endpoint's gossip state as this node knows it."""
    from tools import nodetool as nt
    _probe_call(ctx, nt.gossipinfo)


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



@nodetool.command("repair")
@click.argument("keyspace", required=False)
@click.argument("table", required=False)
@click.option("--full", is_flag=True, help="Full repair (the only kind there is: incremental repair is not built).")
@click.option("-pr", "--partitioner-range", "primary_range", is_flag=True, help="Only this node's primary ranges.")
@click.option("--preview", is_flag=True, help="Compare Merkle trees and report differences; stream nothing.")
@click.pass_context
def nodetool_repair(ctx, keyspace, table, full, primary_range, preview) -> None:
    """Merkle-tree anti-entropy repair of the ranges this node replicates."""
    from tools import nodetool_maintenance as ntm
    ctx.obj["timeout"] = max(ctx.obj["timeout"], 600.0)
    _probe_call(ctx, lambda probe: ntm.repair(probe, keyspace, table, primary_range=primary_range, preview=preview))


@nodetool.command("decommission")
@click.pass_context
def nodetool_decommission(ctx) -> None:
    """Stream this node's ranges to their new owners, then leave the ring (LEFT)."""
    from tools import nodetool_maintenance as ntm
    ctx.obj["timeout"] = max(ctx.obj["timeout"], 3600.0)
    _probe_call(ctx, ntm.decommission)


@nodetool.command("removenode")
@click.argument("host_id")
@click.pass_context
def nodetool_removenode(ctx, host_id) -> None:
    """Re-replicate the ranges of the dead node HOST_ID (see nodetool status), then drop it."""
    from tools import nodetool_maintenance as ntm
    ctx.obj["timeout"] = max(ctx.obj["timeout"], 3600.0)
    _probe_call(ctx, ntm.removenode, host_id)


@nodetool.command("cleanup")
@click.argument("keyspace", required=False)
@click.argument("table", required=False)
@click.pass_context
def nodetool_cleanup(ctx, keyspace, table) -> None:
    """Drop the data of ranges this node no longer replicates (run on old nodes after a join)."""
    from tools import nodetool_maintenance as ntm
    ctx.obj["timeout"] = max(ctx.obj["timeout"], 3600.0)
    _probe_call(ctx, ntm.cleanup, keyspace, table)


@nodetool.command("netstats")
@click.pass_context
def nodetool_netstats(ctx) -> None:
    """This node's mode (JOINING, NORMAL, LEAVING, DECOMMISSIONED) and its streams."""
    from tools import nodetool_maintenance as ntm
    _probe_call(ctx, ntm.netstats)


@nodetool.command("listpendinghints")
@click.pass_context
def nodetool_listpendinghints(ctx) -> None:
    """Hints this node holds for other nodes."""
    from tools import nodetool_maintenance as ntm
    _probe_call(ctx, ntm.listpendinghints)


@nodetool.command("truncatehints")
@click.argument("endpoint", required=False)
@click.pass_context
def nodetool_truncatehints(ctx, endpoint) -> None:
    """Delete the hints this node holds (for ENDPOINT only, if given)."""
    from tools import nodetool_maintenance as ntm
    _probe_call(ctx, ntm.truncatehints, endpoint)


@nodetool.command("snapshot")
@click.option("-t", "--tag", default=None, help="The snapshot's name (default: the time in milliseconds).")
@click.argument("keyspace", required=False)
@click.argument("table", required=False)
@click.pass_context
def nodetool_snapshot(ctx, tag, keyspace, table) -> None:
    """Flush, then hard-link the SSTables of TABLE, KEYSPACE or every keyspace under snapshots/TAG/."""
    from tools import nodetool_maintenance as ntm
    ctx.obj["timeout"] = max(ctx.obj["timeout"], 600.0)
    _probe_call(ctx, lambda probe: ntm.snapshot(probe, tag, keyspace, table))


@nodetool.command("listsnapshots")
@click.pass_context
def nodetool_listsnapshots(ctx) -> None:
    """Every snapshot on this node, with its true size (what clearing it frees) and size on disk."""
    from tools import nodetool_maintenance as ntm
    _probe_call(ctx, ntm.listsnapshots)


@nodetool.command("clearsnapshot")
@click.option("-t", "--tag", default=None, help="Only this snapshot (default: every snapshot).")
@click.argument("keyspace", required=False)
@click.pass_context
def nodetool_clearsnapshot(ctx, tag, keyspace) -> None:
    """Remove snapshot TAG (or all snapshots) of KEYSPACE (or of every keyspace)."""
    from tools import nodetool_maintenance as ntm
    _probe_call(ctx, lambda probe: ntm.clearsnapshot(probe, tag, keyspace))


@nodetool.command("restoresnapshot")
@click.option("-t", "--tag", required=True, help="The snapshot to restore.")
@click.argument("keyspace")
@click.argument("table")
@click.pass_context
def nodetool_restoresnapshot(ctx, tag, keyspace, table) -> None:
    """Replace TABLE's data on this node by snapshot TAG's (checked first; run it on every replica)."""
    from tools import nodetool_maintenance as ntm
    ctx.obj["timeout"] = max(ctx.obj["timeout"], 600.0)
    _probe_call(ctx, ntm.restoresnapshot, keyspace, table, tag)


@nodetool.command("tpstats")
@click.pass_context
def nodetool_tpstats(ctx) -> None:
    """This node's pools and queues: active, pending, completed, blocked."""
    from tools import nodetool_maintenance as ntm
    _probe_call(ctx, ntm.tpstats)


@nodetool.command("compactionstats")
@click.pass_context
def nodetool_compactionstats(ctx) -> None:
    """Pending compactions and the progress of the running ones."""
    from tools import nodetool_maintenance as ntm
    _probe_call(ctx, ntm.compactionstats)


@nodetool.command("drain")
@click.pass_context
def nodetool_drain(ctx) -> None:
    """Flush every memtable and stop accepting writes: ready for a clean stop."""
    from tools import nodetool_maintenance as ntm
    ctx.obj["timeout"] = max(ctx.obj["timeout"], 600.0)
    _probe_call(ctx, ntm.drain)
