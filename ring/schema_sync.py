"""The cluster schema on one node: keyspaces, tables and indexes, with creation and drop times, merged LWW.

The live schema is the local Store's (durable in schema.db); creation and drop times live in the
node's own `system.schema_events` table (name "keyspace:<name>", "table:<id>" or
"index:<table id>:<index name>"), so a drop
reaches nodes that missed it and a keyspace re-created after a drop survives. `merge` is
idempotent and order-independent: an entity exists iff its creation is newer than its drop. Two
tables created concurrently under one name: the later creation (then the greater id) wins.
ALTER TABLE / KEYSPACE replace a definition by one with a later `altered_us`; merge adopts the
remote definition of a table (same id) or keyspace whose (altered_us, encoding) is greater, so
concurrent ALTERs of one table settle on one of them everywhere (docs/cql.md#alter).
The version is a digest of `export()`; gossip spreads it, and nodes that differ pull.
"""
from __future__ import annotations

import dataclasses

import xxhash

from engine.errors import InvalidRequest
from engine.schema import Keyspace, Table, check_name, make_table
from ring.messages import packb
from ring.replica import local_table

SYSTEM = "system"


class SchemaRegistry:
    def __init__(self, store):
        self.store = store
        store.create_keyspace(SYSTEM, {"class": "LocalStrategy"}, if_not_exists=True)
        store.create_table(SYSTEM, "schema_events", {"name": "text", "created_us": "bigint", "dropped_us": "bigint"},
                           primary_key="name", if_not_exists=True)
        store.create_table(SYSTEM, "local", {"key": "text", "generation": "bigint"}, primary_key="key",
                           if_not_exists=True)
        self._version = None

    # -- node-local facts ------------------------------------------------------------------

    def next_generation(self, wall_s: int) -> int:
        row = self.store.get(SYSTEM, "local", {"key": "local"})
        generation = max(wall_s, (row["generation"] + 1) if row and row.get("generation") else 0)
        self.store.insert(SYSTEM, "local", {"key": "local", "generation": generation})
        self.store.flush(SYSTEM, "local")
        return generation

    # -- events ------------------------------------------------------------------------------

    def _event(self, name: str) -> tuple[int, int]:
        row = self.store.get(SYSTEM, "schema_events", {"name": name}) or {}
        return row.get("created_us") or 0, row.get("dropped_us") or 0

    def _record(self, name: str, created_us: int | None = None, dropped_us: int | None = None) -> None:
        row = {"name": name}
        old_created, old_dropped = self._event(name)
        if created_us is not None and created_us > old_created:
            row["created_us"] = created_us
        if dropped_us is not None and dropped_us > old_dropped:
            row["dropped_us"] = dropped_us
        if len(row) > 1:
            self.store.insert(SYSTEM, "schema_events", row)
        self._version = None

    # -- changes made here -------------------------------------------------------------------

    def create_keyspace(self, name: str, replication: dict, ts: int, durable_writes: bool = True) -> None:
        check_name("keyspace", name)
        if name == SYSTEM:
            raise InvalidRequest("the system keyspace is reserved")
        if name in self.store.keyspaces:
            raise InvalidRequest(f"keyspace {name} already exists")
        self.store.create_keyspace(name, replication, if_not_exists=False)
        if not durable_writes:
            self.store.catalog.alter_keyspace(name, lambda ks: dataclasses.replace(ks, durable_writes=False))
        self._record(f"keyspace:{name}", created_us=ts)

    def alter_table(self, keyspace: str, name: str, change) -> Table:
        """Swap in `change(table)` (engine/schema_change.py); the caller then spreads the schema."""
        if keyspace == SYSTEM:
            raise InvalidRequest("the system keyspace is reserved")
        self._version = None
        return self.store.catalog.alter_table(keyspace, name, change)

    def alter_keyspace(self, name: str, change) -> Keyspace:
        if name == SYSTEM:
            raise InvalidRequest("the system keyspace is reserved")
        self._version = None
        return self.store.catalog.alter_keyspace(name, change)

    def create_table(self, keyspace: str, name: str, columns: dict, primary_key, clustering_order, options,
                     ts: int, table_id: str | None = None) -> Table:
        if keyspace == SYSTEM:
            raise InvalidRequest("the system keyspace is reserved")
        if isinstance(primary_key, list):
            primary_key = tuple(tuple(p) if isinstance(p, list) else p for p in primary_key)
        table = self.store.create_table(keyspace, name, columns, primary_key, clustering_order, options,
                                        if_not_exists=False, table_id=table_id)
        self._record(f"table:{table.id}", created_us=ts)
        return table

    def drop_table(self, keyspace: str, name: str, ts: int) -> None:
        table = self.store.table(keyspace, name)
        self.store.drop_table(keyspace, name)
        self._record(f"table:{table.id}", dropped_us=ts)

    def drop_keyspace(self, name: str, ts: int) -> None:
        if name == SYSTEM:
            raise InvalidRequest("the system keyspace is reserved")
        ks = self.store.keyspaces.get(name)
        if ks is None:
            raise InvalidRequest(f"keyspace '{name}' does not exist")
        for table in list(ks.tables.values()):
            self._record(f"table:{table.id}", dropped_us=ts)
        self.store.drop_keyspace(name)
        self._record(f"keyspace:{name}", dropped_us=ts)

    def create_index(self, keyspace: str, table: str, column: str, name: str | None, if_not_exists: bool,
                     ts: int) -> None:
        if keyspace == SYSTEM:
            raise InvalidRequest("the system keyspace is reserved")
        meta = self.store.create_index(keyspace, table, column, name, if_not_exists)
        if meta is not None:
            self._record(f"index:{self.store.table(keyspace, table).id}:{meta.name}", created_us=ts)

    def drop_index(self, keyspace: str, name: str, if_exists: bool, ts: int) -> None:
        owner = self.store.index_owner(keyspace, name)
        if self.store.drop_index(keyspace, name, if_exists):
            self._record(f"index:{owner.id}:{name}", dropped_us=ts)

    # -- exchange -----------------------------------------------------------------------------

    def export(self) -> dict:
        keyspaces, tables, events = [], [], {}
        for row in self.store.scan_all(SYSTEM, "schema_events"):
            events[row["name"]] = [row.get("created_us") or 0, row.get("dropped_us") or 0]
        for name, ks in sorted(self.store.keyspaces.items()):
            if name == SYSTEM:
                continue
            keyspaces.append(ks.to_dict())
            for t in sorted(ks.tables.values(), key=lambda t: t.id):
                tables.append(t.to_dict())
        return {"keyspaces": keyspaces, "tables": tables, "events": dict(sorted(events.items()))}

    def version(self) -> str:
        if self._version is None:
            self._version = xxhash.xxh64(packb(self.export())).hexdigest()
        return self._version

    def merge(self, remote: dict) -> bool:
        """Adopt what the remote schema knows that we don't. Returns whether anything changed."""
        before = self.version()
        for name, (created, dropped) in (remote.get("events") or {}).items():
            self._record(name, created_us=created or None, dropped_us=dropped or None)
        for ks in remote.get("keyspaces") or []:
            created, dropped = self._event(f"keyspace:{ks['name']}")
            if ks["name"] not in self.store.keyspaces and created > dropped:
                self.store.create_keyspace(ks["name"], ks["replication"], if_not_exists=True)
            if ks["name"] in self.store.keyspaces:
                self._adopt_keyspace(Keyspace.from_dict(ks))
        for d in remote.get("tables") or []:
            self._adopt_table(Table.from_dict(d))
            self._adopt_indexes(Table.from_dict(d))
        self._apply_drops()
        self._version = None
        return self.version() != before

    def _adopt_keyspace(self, remote: Keyspace) -> None:
        local = self.store.keyspaces[remote.name]
        if _newer(remote.altered_us, remote.to_dict(), local.altered_us, local.to_dict()) or (
                not remote.altered_us and not local.altered_us and local.durable_writes and not remote.durable_writes):
            self.store.catalog.alter_keyspace(remote.name, lambda ks: dataclasses.replace(
                ks, replication=remote.replication, durable_writes=remote.durable_writes,
                altered_us=remote.altered_us))

    def _adopt_table(self, table: Table) -> None:
        created, dropped = self._event(f"table:{table.id}")
        if created <= dropped or table.keyspace not in self.store.keyspaces:
            return
        existing = self.store.keyspaces[table.keyspace].tables.get(table.name)
        if existing is not None:
            if existing.id == table.id:
                if _newer(table.altered_us, _definition(table), existing.altered_us, _definition(existing)):
                    self.store.catalog.alter_table(existing.keyspace, existing.name,
                                                   lambda t: dataclasses.replace(table, indexes=t.indexes))
                return
            mine, _ = self._event(f"table:{existing.id}")
            if (mine, existing.id) > (created, table.id):
                return
            self.store.drop_table(existing.keyspace, existing.name)
            self._record(f"table:{existing.id}", dropped_us=created)
        self.store.add_table(table)

    def _adopt_indexes(self, remote: Table) -> None:
        if local_table(self.store, remote.id) is None:
            return
        for meta in remote.indexes:
            created, dropped = self._event(f"index:{remote.id}:{meta.name}")
            if created > dropped and local_table(self.store, remote.id).index(meta.name) is None:
                self.store.add_index(remote.id, meta)   # built in the background here too

    def _apply_drops(self) -> None:
        for name, ks in list(self.store.keyspaces.items()):
            if name == SYSTEM:
                continue
            for table in list(ks.tables.values()):
                created, dropped = self._event(f"table:{table.id}")
                if dropped >= created and dropped:
                    self.store.drop_table(name, table.name)
                    continue
                for meta in table.indexes:
                    created, dropped = self._event(f"index:{table.id}:{meta.name}")
                    if dropped >= created and dropped:
                        self.store.drop_index(name, meta.name)
            created, dropped = self._event(f"keyspace:{name}")
            if dropped >= created and dropped:
                self.store.drop_keyspace(name)


def _definition(table: Table) -> bytes:
    d = table.to_dict()
    d.pop("indexes", None)   # indexes have their own events
    return packb(d)


def _newer(remote_us: int, remote, local_us: int, local) -> bool:
    """Whether a remote definition wins: a later ALTER, or on a tie the greater encoding."""
    if remote_us != local_us:
        return remote_us > local_us
    return remote_us > 0 and packb(remote) > packb(local)


def peers_to_pull(mine: str, peers: dict[str, str | None], last_pulls: dict[str, tuple], now_ms: int,
                  interval_ms: int = 5000) -> list[str]:
    """Live peers (`peers`: endpoint -> gossiped schema version) whose schema differs from ours,
    unless the same version was pulled from them within `interval_ms`; records the pulls."""
    out = []
    for ep, theirs in peers.items():
        if theirs and theirs != mine:
            last = last_pulls.get(ep)
            if last is None or last[0] != theirs or now_ms - last[1] > interval_ms:
                last_pulls[ep] = (theirs, now_ms)
                out.append(ep)
    return out


__all__ = ["SchemaRegistry", "make_table", "peers_to_pull"]
