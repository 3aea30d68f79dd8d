"""`dynatable nodetool ...`: Cassandra's nodetool verbs, asked of one node (-h HOST:PORT; without
-h, a running node of the current local cluster, as `dynatable stress` does).

Each verb is a function of tools/nodetool.py called with a connected NodeProbe; a node that does
not answer, or an error it returns, becomes one line on stderr (`fail`).
"""
from __future__ import annotations

import importlib

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


@nodetool.command("getendpoints")
@click.argument("keyspace")
@click.argument("table")
@click.argument("key")
@click.pass_context
def nodetool_getendpoints(ctx, keyspace, table, key) -> None:
    """The replicas of KEY's partition (composite keys as a:b; blobs in hex)."""
    from tools import nodetool as nt
    _probe_call(ctx, nt.getendpoints, keyspace, table, key)


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


@nodetool.command("removenode")
@click.argument("host_id")
@click.pass_context
def nodetool_removenode(ctx, host_id) -> None:
    """Re-replicate the ranges of the dead node HOST_ID (see nodetool status), then drop it."""
    from tools import nodetool_maintenance as ntm
    ctx.obj["timeout"] = max(ctx.obj["timeout"], 3600.0)
    _probe_call(ctx, ntm.removenode, host_id)


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


# Verbs with no argument, or with an optional KEYSPACE [TABLE]: (verb, module, function, help,
# takes KEYSPACE [TABLE], timeout floor in seconds for the long ones).
SIMPLE_VERBS = [
    ('ring', 'nodetool', 'ring',
     'Every token with the node that owns it.', False, None),
    ('info', 'nodetool', 'info',
     'This node: host id, generation, load, uptime, datacenter, rack, metrics.', False, None),
    ('describecluster', 'nodetool', 'describecluster',
     'Cluster name, snitch, partitioner, and the schema versions the nodes hold.', False, None),
    ('gossipinfo', 'nodetool', 'gossipinfo',
     "Every endpoint's gossip state as this node knows it.", False, None),
    ('flush', 'nodetool', 'flush',
     'Flush memtables to SSTables on this node.', True, None),
    ('compact', 'nodetool', 'compact',
     'Major compaction on this node.', True, None),
    ('tablestats', 'nodetool', 'tablestats',
     'Per-table statistics on this node.', True, None),
    ('decommission', 'nodetool_maintenance', 'decommission',
     "Stream this node's ranges to their new owners, then leave the ring (LEFT).", False, 3600.0),
    ('cleanup', 'nodetool_maintenance', 'cleanup',
     'Drop the data of ranges this node no longer replicates (run on old nodes after a join).', True, 3600.0),
    ('netstats', 'nodetool_maintenance', 'netstats',
     "This node's mode (JOINING, NORMAL, LEAVING, DECOMMISSIONED) and its streams.", False, None),
    ('listpendinghints', 'nodetool_maintenance', 'listpendinghints',
     'Hints this node holds for other nodes.', False, None),
    ('listsnapshots', 'nodetool_maintenance', 'listsnapshots',
     'Every snapshot on this node, with its true size (what clearing it frees) and size on disk.', False, None),
    ('tpstats', 'nodetool_maintenance', 'tpstats',
     "This node's pools and queues: active, pending, completed, blocked.", False, None),
    ('compactionstats', 'nodetool_maintenance', 'compactionstats',
     'Pending compactions and the progress of the running ones.', False, None),
    ('drain', 'nodetool_maintenance', 'drain',
     'Flush every memtable and stop accepting writes: ready for a clean stop.', False, 600.0),
]


def _simple_verb(name: str, module: str, function: str, doc: str, tables: bool, timeout_s: float | None) -> None:
    def command(ctx, keyspace=None, table=None) -> None:
        verb = getattr(importlib.import_module(f"tools.{module}"), function)
        if timeout_s is not None:
            ctx.obj["timeout"] = max(ctx.obj["timeout"], timeout_s)
        _probe_call(ctx, verb, *((keyspace, table) if tables else ()))
    command = click.pass_context(command)
    if tables:  # applied bottom-up: KEYSPACE comes first on the command line
        command = click.argument("table", required=False)(command)
        command = click.argument("keyspace", required=False)(command)
    nodetool.command(name, help=doc)(command)


for _verb in SIMPLE_VERBS:
    _simple_verb(*_verb)
