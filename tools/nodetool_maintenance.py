"""nodetool's maintenance verbs: repair, hints, the topology changes (netstats, decommission,
removenode, cleanup), snapshots (snapshot, listsnapshots, clearsnapshot, restoresnapshot), the
pools (tpstats, compactionstats) and drain, over the same NodeProbe as tools/nodetool.py.

The long operations (decommission, removenode, cleanup) answer only when done; meanwhile the
node's netstats are printed once a second, so an operator sees the streams move.
"""
from __future__ import annotations


from rich.console import Console

from tools.nodetool import NodeProbe, console_for, emit_table, human_bytes, plain


def repair(probe: NodeProbe, keyspace: str | None = None, table: str | None = None, *, primary_range: bool = False,
           preview: bool = False, console: Console | None = None) -> list[dict]:
    """nodetool repair: one Merkle repair session per table, with progress and a final summary."""
    console = console_for(console)
    schema = probe.call("describe_schema")
    tables = [(t["keyspace"], t["name"]) for t in schema["tables"]
              if keyspace in (None, t["keyspace"]) and table in (None, t["name"])]
    if not tables:
        raise ValueError(f"no table matches {keyspace or '*'}.{table or '*'}; see `dynatable nodetool tablestats`")
    kind = "preview" if preview else "full"
    plain(console, f"[repair #{probe.host}] starting {kind} repair of {len(tables)} table(s)"
                    f"{' (primary ranges only)' if primary_range else ''}")
    summaries = []
    for i, (ks, name) in enumerate(tables, 1):
        s = probe.call("repair", keyspace=ks, table=name, primary_range=primary_range, preview=preview)
        summaries.append(s)
        plain(console, f"[{i}/{len(tables)}] {ks}.{name}: {s['ranges_compared']} ranges compared, "
                        f"{s['ranges_out_of_sync']} out of sync ({s['leaf_ranges_out_of_sync']} leaf ranges), "
                        f"{s['rows_streamed']} rows / {human_bytes(s['bytes_streamed'])} streamed")
    total = {k: sum(s[k] for s in summaries) for k in ("ranges_compared", "ranges_out_of_sync", "rows_streamed",
                                                         "bytes_streamed")}
    verb = "would stream nothing; differences reported only" if preview else "repair finished"
    plain(console, f"{verb}: {total['ranges_compared']} ranges compared, {total['ranges_out_of_sync']} out of sync, "
                    f"{total['rows_streamed']} rows and {human_bytes(total['bytes_streamed'])} streamed")
    return summaries


def listpendinghints(probe: NodeProbe, console: Console | None = None) -> list[dict]:
    rows = list(probe.call("listpendinghints"))
    console = console_for(console)
    if not rows:
        plain(console, "This node does not have any pending hints")
    else:
        emit_table(console, ["Host ID", "Address", "Total hints"],
                    [[r["host_id"], r.get("endpoint") or "", str(r["hints"])] for r in rows])
    return rows


def truncatehints(probe: NodeProbe, endpoint: str | None = None, console: Console | None = None) -> int:
    removed = int(probe.call("truncatehints", target=endpoint)["removed"])
    plain(console_for(console), f"truncated {removed} hint(s){' for ' + endpoint if endpoint else ''} on {probe.host}")
    return removed


# -- topology changes ------------------------------------------------------------------------------

def netstats(probe: NodeProbe, console: Console | None = None) -> dict:
    """Mode: JOINING / NORMAL / LEAVING / DECOMMISSIONED, and every stream in progress."""
    stats = probe.call("netstats")
    console = console_for(console)
    plain(console, f"Mode: {stats['mode']}")
    ops = stats.get("operations") or []
    if not ops:
        plain(console, "Not sending any streams.")
    for op in ops:
        plain(console, f"    {op.get('operation')}: {_stream_line(op)}")
    return stats


def _stream_line(op: dict) -> str:
    parts = [str(op["phase"])] if op.get("phase") else []
    if "ranges" in op and "ranges_done" in op:
        parts.append(f"{op['ranges_done']}/{op['ranges']} ranges")
    if "partitions" in op:
        parts.append(f"{op['partitions']} partitions, {human_bytes(op.get('bytes', 0))}")
    if op.get("waiting_for"):
        parts.append(f"waiting for {', '.join(op['waiting_for'])}")
    if op.get("error"):
        parts.append(f"last error: {op['error']}")
    return "; ".join(parts)


def _long_operation(probe: NodeProbe, op: str, args: dict, console: Console) -> dict:
    """Run `op` (which answers when done) while printing the node's netstats once a second."""
    import threading
    outcome: dict = {}

    def run():
        try:
            outcome["result"] = probe.call(op, **args)
        except BaseException as e:  # noqa: BLE001 - re-raised in the caller's thread
            outcome["error"] = e

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    last = None
    with NodeProbe(probe.host, cluster_name=probe.cluster.cluster_name,
                   cluster_secret=probe.cluster.cluster_secret, timeout_s=5.0) as watcher:
        while worker.is_alive():
            worker.join(1.0)
            try:
                stats = watcher.call("netstats")
            except Exception:  # noqa: BLE001 - progress only
                continue
            line = f"Mode: {stats['mode']}" + "".join(f"; {o.get('operation')}: {_stream_line(o)}"
                                                       for o in stats.get("operations") or []
                                                       if o.get("phase") != "done")
            if line != last:
                plain(console, line)
                last = line
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]


def decommission(probe: NodeProbe, console: Console | None = None) -> dict:
    console = console_for(console)
    plain(console, f"Decommissioning {probe.host}: its ranges go to their new owners before it leaves")
    s = _long_operation(probe, "decommission", {"timeout_ms": int(probe.cluster.timeout_s * 1000)}, console)
    plain(console, f"Decommissioned: {s['ranges']} ranges, {s['partitions']} partitions, "
                    f"{human_bytes(s['bytes'])} streamed to {s['targets']} node(s). Stop the process now.")
    return s


def removenode(probe: NodeProbe, host_id: str, console: Console | None = None) -> dict:
    console = console_for(console)
    plain(console, f"Removing node {host_id}: re-replicating its ranges from the live replicas")
    s = _long_operation(probe, "removenode", {"host_id": host_id,
                                              "timeout_ms": int(probe.cluster.timeout_s * 1000)}, console)
    plain(console, f"Removed {s['endpoint']} ({host_id}): {s['ranges']} ranges, {s['partitions']} partitions, "
                    f"{human_bytes(s['bytes'])} streamed to {s['targets']} node(s)")
    return s


def cleanup(probe: NodeProbe, keyspace: str | None = None, table: str | None = None,
            console: Console | None = None) -> dict:
    """nodetool cleanup: drop the data of ranges this node no longer replicates."""
    dropped = probe.call("cleanup", keyspace=keyspace, table=table)["partitions_dropped"]
    console = console_for(console)
    for name, n in sorted(dropped.items()):
        plain(console, f"{name}: {n} partitions of ranges this node no longer replicates dropped")
    if not dropped:
        plain(console, "no table matched; nothing to clean up")
    return dropped


# -- snapshots -------------------------------------------------------------------------------------

def snapshot(probe: NodeProbe, tag: str | None = None, keyspace: str | None = None, table: str | None = None,
             console: Console | None = None) -> list[dict]:
    """nodetool snapshot: flush, then hard-link the SSTables under each table's snapshots/<tag>/."""
    console = console_for(console)
    what = ".".join(p for p in (keyspace, table) if p) or "all keyspaces"
    infos = list(probe.call("snapshot", tag=tag, keyspace=keyspace, table=table))
    tag = infos[0]["tag"] if infos else tag
    plain(console, f"Requested creating snapshot(s) for [{what}] with snapshot name [{tag}] on {probe.host}")
    for i in infos:
        plain(console, f"  {i['keyspace']}.{i['table']}: {i['sstables']} SSTable(s), "
                       f"{human_bytes(i['size_bytes'])} in {i['directory']}")
    if not infos:
        plain(console, "no table matched: nothing was snapshotted")
    else:
        plain(console, f"Snapshot directory: {tag}")
    return infos


def listsnapshots(probe: NodeProbe, console: Console | None = None) -> list[dict]:
    """nodetool listsnapshots: every snapshot of every table of this node, with its sizes."""
    console = console_for(console)
    infos = list(probe.call("listsnapshots"))
    if not infos:
        plain(console, "There are no snapshots")
        return infos
    plain(console, "Snapshot Details: ")
    emit_table(console, ["Snapshot name", "Keyspace name", "Column family name", "True size", "Size on disk"],
               [[i["tag"], i["keyspace"], i["table"], human_bytes(i["true_size_bytes"]), human_bytes(i["size_bytes"])]
                for i in sorted(infos, key=lambda i: (i["tag"], i["keyspace"], i["table"]))],
               justify={3: "right", 4: "right"})
    plain(console)
    plain(console, f"Total TrueDiskSpaceUsed: {human_bytes(sum(i['true_size_bytes'] for i in infos))}")
    return infos


def clearsnapshot(probe: NodeProbe, tag: str | None = None, keyspace: str | None = None,
                  console: Console | None = None) -> list[dict]:
    """nodetool clearsnapshot: remove snapshot TAG (every snapshot without -t) of a keyspace or all."""
    infos = list(probe.call("clearsnapshot", tag=tag, keyspace=keyspace))
    freed = sum(i["true_size_bytes"] for i in infos)
    plain(console_for(console), f"Requested clearing snapshot(s) for [{keyspace or 'all keyspaces'}] with snapshot "
                                f"name [{tag or 'all snapshots'}]: removed {len(infos)} table snapshot(s), "
                                f"freed {human_bytes(freed)}")
    return infos


def restoresnapshot(probe: NodeProbe, keyspace: str, table: str, tag: str, console: Console | None = None) -> int:
    """Replace KEYSPACE.TABLE's data on this node by snapshot TAG's (every SSTable checked first)."""
    n = int(probe.call("restoresnapshot", keyspace=keyspace, table=table, tag=tag)["sstables"])
    plain(console_for(console), f"restored {keyspace}.{table} on {probe.host} from snapshot {tag}: {n} SSTable(s); "
                                "run it on every replica, then repair")
    return n


# -- pools, compactions, drain ---------------------------------------------------------------------

def _cell(value) -> str:
    return "n/a" if value is None else str(value)


def tpstats(probe: NodeProbe, console: Console | None = None) -> dict:
    """nodetool tpstats: each pool's active, pending, completed and blocked ("n/a": the pool has no
    such thing, e.g. MutationStage runs inline and never queues)."""
    console = console_for(console)
    a = probe.call("tpstats")
    emit_table(console, ["Pool Name", "Active", "Pending", "Completed", "Blocked", "All time blocked"],
               [[name, *(_cell(p.get(k)) for k in ("active", "pending", "completed", "blocked", "all_time_blocked"))]
                for name, p in a["pools"].items()], justify={i: "right" for i in range(1, 6)})
    plain(console)
    plain(console, f"Mode: {a['mode']}")
    return a


def compactionstats(probe: NodeProbe, console: Console | None = None) -> dict:
    """nodetool compactionstats: pending compactions by table and each running one's progress."""
    console = console_for(console)
    a = probe.call("compactionstats")
    plain(console, f"pending tasks: {sum(a['pending'].values())}")
    for name, n in sorted(a["pending"].items()):
        plain(console, f"- {name}: {n}")
    running = a["compactions"]
    if not running:
        plain(console, f"no compaction running ({a['compactors']} compactor thread(s))")
        return a
    plain(console)
    emit_table(console, ["compaction type", "keyspace", "table", "completed", "total", "unit", "progress",
                         "bytes read", "input on disk", "bytes written"],
               [[c["kind"], c["keyspace"], c["table"], c["partitions_done"], c["partitions_total"], "partitions",
                 f"{100 * c['partitions_done'] / max(1, c['partitions_total']):.2f}%", human_bytes(c["bytes_read"]),
                 human_bytes(c["bytes_total"]), human_bytes(c["bytes_written"])] for c in running],
               justify={i: "right" for i in (3, 4, 6, 7, 8, 9)})
    return a


def drain(probe: NodeProbe, console: Console | None = None) -> dict:
    """nodetool drain: flush every memtable and stop accepting writes; the node is ready to stop."""
    a = probe.call("drain")
    plain(console_for(console), f"drained {probe.host}: flushed {a['flushed']} memtable(s); writes are refused "
                                "until a restart. It is ready to stop (`dynatable cluster restart NODE` serves writes again).")
    return a
