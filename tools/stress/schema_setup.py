"""The stress keyspace and table, created on first use, and schema agreement before the load.

`ensure_table` creates the keyspace (SimpleStrategy, the given replication factor) and the table
if they are missing, waiting for schema agreement after each (as drivers do: the next request
may go through a node that has not heard of the keyspace yet), checks that an existing table has
the columns the workload writes (else an InvalidRequest says how to fix it), and waits until every
live node reports one schema version, so no coordinator rejects the first requests.
"""
from __future__ import annotations

import asyncio
import time

from engine.errors import InvalidRequest

AGREEMENT_TIMEOUT_S = 30.0


async def ensure_table(session, keyspace: str, table: str, columns: dict[str, str], primary_key: str,
                       replication_factor: int) -> None:
    meta = session.cluster.metadata
    if keyspace not in meta.keyspaces:
        await session.create_keyspace(keyspace, {"class": "SimpleStrategy",
                                                 "replication_factor": replication_factor}, if_not_exists=True)
        await wait_for_schema_agreement(session)   # the table may be created through another node
    existing = meta.tables.get((keyspace, table))
    if existing is None:
        await session.create_table(table, columns, primary_key=primary_key, keyspace=keyspace,
                                   if_not_exists=True)
        existing = session.cluster.metadata.tables.get((keyspace, table))
    if existing is not None:
        have = {c.name: c.cql_type for c in existing.columns}
        wrong = [f"{name} {cql}" for name, cql in columns.items() if have.get(name) != cql]
        if wrong:
            raise InvalidRequest(f"table {keyspace}.{table} exists without the columns this run writes "
                                 f"({', '.join(wrong)}); drop it, or pick another keyspace with -schema keyspace=NAME")
    await wait_for_schema_agreement(session)


async def wait_for_schema_agreement(session, timeout_s: float = AGREEMENT_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        rows = await session.execute("status")
        versions = {r.get("schema") for r in rows if r.get("up")}
        if len(versions) <= 1:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"no schema agreement after {timeout_s:g} s ({len(versions)} versions among the "
                               "live nodes); check `dynatable nodetool status` and the node logs")
        await asyncio.sleep(0.2)
