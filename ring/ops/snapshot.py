"""Snapshot operations (nodetool snapshot, listsnapshots, clearsnapshot, restoresnapshot): this
node's store only, answered with one `Reply`; none sends a message.

The work is engine/snapshot.py's (hard links under each table's snapshots/<tag>/, a checked
restore). Like Cassandra's, a snapshot is per node: to snapshot a cluster, run the verb on every
node with one tag; to restore, restore that tag on every replica (docs/operations.md#snapshots).
Each op is `op(node, request_id, args) -> effects`.
"""
from __future__ import annotations

from engine.errors import InvalidRequest
from ring.messages import Reply


def _name(args: dict, key: str) -> str | None:
    value = args.get(key)
    if value is not None and not isinstance(value, str):
        raise InvalidRequest(f"{key} must be a name, not {type(value).__name__}")
    return value


def snapshot(node, rid: int, args: dict) -> list:
    """Flush, then hard-link the SSTables of one table, a keyspace's, or every non-system one."""
    keyspace, table = _name(args, "keyspace"), _name(args, "table")
    if table is not None and keyspace is None:
        raise InvalidRequest("snapshot: a table needs its keyspace")
    infos = node.store.snapshot(_name(args, "tag"), keyspace, table)
    return [Reply(rid, result=[i.to_dict() for i in infos])]


def listsnapshots(node, rid: int, args: dict) -> list:
    return [Reply(rid, result=[i.to_dict() for i in node.store.list_snapshots()])]


def clearsnapshot(node, rid: int, args: dict) -> list:
    infos = node.store.clear_snapshot(_name(args, "tag"), _name(args, "keyspace"))
    return [Reply(rid, result=[i.to_dict() for i in infos])]


def restoresnapshot(node, rid: int, args: dict) -> list:
    """Replace one table's data on this node by its snapshot `tag`'s (every SSTable checked first)."""
    keyspace, table, tag = _name(args, "keyspace"), _name(args, "table"), _name(args, "tag")
    if None in (keyspace, table, tag):
        raise InvalidRequest("restoresnapshot needs keyspace, table and tag")
    return [Reply(rid, result={"sstables": node.store.restore_snapshot(keyspace, table, tag)})]
