"""The client and admin operations a node serves, by name: the one registry `OPS`.

Rule: `Node.submit` looks the op up here and calls `op(node, request_id, args)`, which returns
effects (messages to send, at most one `Reply` now; a started handler replies later). One module
per family: data.py (reads and writes), lwt.py (conditional writes and SERIAL reads, which fall
back to data.py's ops without a condition or a serial level), schema.py (DDL), admin.py (nodetool's read-mostly verbs), snapshot.py (snapshots and restore), truncate.py (TRUNCATE on every node),
topology.py (repair and ring changes). The names are the client protocol's: never rename.
"""
from __future__ import annotations

from ring.ops import admin, batchlog, data, lwt, schema, snapshot, topology, truncate

OPS = {
    # data
    "insert": lwt.insert, "delete": lwt.delete, "get": lwt.get, "select": lwt.select, "scan": data.scan,
    "index_query": data.query_index, "update": lwt.update, "batch": lwt.batch,
    "logged_batch": batchlog.logged_batch,
    # schema
    "create_keyspace": schema.create_keyspace, "create_table": schema.create_table,
    "create_index": schema.create_index, "drop_index": schema.drop_index, "drop_table": schema.drop_table,
    "drop_keyspace": schema.drop_keyspace, "describe_schema": schema.describe_schema,
    "alter_table": schema.alter_table, "alter_keyspace": schema.alter_keyspace,
    "truncate": truncate.truncate,
    # admin
    "status": admin.status, "describe_ring": admin.describe_ring, "info": admin.info, "flush": admin.flush,
    "compact": admin.compact, "tablestats": admin.tablestats, "getendpoints": admin.getendpoints,
    "set_clock_offset": admin.set_clock_offset, "listpendinghints": admin.listpendinghints,
    "truncatehints": admin.truncatehints, "netstats": admin.netstats,
    "describecluster": admin.describecluster, "gossipinfo": admin.gossipinfo, "tpstats": admin.tpstats,
    "compactionstats": admin.compactionstats, "drain": admin.drain,
    # snapshots
    "snapshot": snapshot.snapshot, "listsnapshots": snapshot.listsnapshots,
    "clearsnapshot": snapshot.clearsnapshot, "restoresnapshot": snapshot.restoresnapshot,
    # topology
    "repair": topology.repair, "decommission": topology.decommission, "removenode": topology.removenode,
    "cleanup": topology.cleanup,
}

# what a drained node refuses (nodetool drain): every op that writes
WRITES = frozenset({"insert", "delete", "update", "create_keyspace", "create_table", "create_index",
                    "drop_index", "drop_table", "drop_keyspace", "restoresnapshot", "alter_table",
                    "alter_keyspace", "truncate", "logged_batch"})
