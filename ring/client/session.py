"""The Session API, defined once for both drivers: each method builds one (op, args) request.

A Session mirrors the embedded Store's table API (engine/store.py) with `consistency` (a level
name or ConsistencyLevel, default "ONE") and `keyspace` (default: the session's) on each call.
Every method hands (op, args, post) to `_run`, which blocks (sync.Session) or returns a coroutine
(aio.AsyncSession); `post` turns the node's answer into the returned value (a ScanPage for scans).
Argument names are the wire's (docs/format.md (wire), client ops); building them is pure.
"""
from __future__ import annotations

from engine.errors import InvalidRequest
from engine.store import ScanPage


def level_name(consistency) -> str:
    return getattr(consistency, "name", str(consistency)).strip().upper()


def _lwt(**args) -> dict:
    """Only the lightweight-transaction arguments that are set: plain requests stay as they were."""
    out = {k: v for k, v in args.items() if v}
    if "serial_consistency" in out:
        out["serial_consistency"] = level_name(out["serial_consistency"])
    return out


def scan_result(result) -> ScanPage:
    return ScanPage(list(result.get("rows") or []), result.get("paging_state"))


class SessionAPI:
    """Request building; subclasses supply `_run(op, args, post)`."""

    keyspace: str | None

    def _ks(self, keyspace: str | None) -> str:
        ks = keyspace or self.keyspace
        if not ks:
            raise InvalidRequest("no keyspace: pass keyspace= or connect(keyspace)")
        return ks

    def _data(self, op: str, table: str, keyspace, consistency, post=None, **args):
        args = {"keyspace": self._ks(keyspace), "table": table, "consistency": level_name(consistency), **args}
        return self._run(op, args, post)

    def insert(self, table: str, row: dict, ttl: int | None = None, timestamp: int | None = None,
               consistency="ONE", keyspace: str | None = None, if_not_exists: bool = False,
               serial_consistency=None):
        """With if_not_exists=True a lightweight transaction: {"applied": bool, ...current row}."""
        return self._data("insert", table, keyspace, consistency, row=row, ttl=ttl, timestamp=timestamp,
                          **_lwt(if_not_exists=if_not_exists, serial_consistency=serial_consistency))

    def update(self, table: str, key: dict, set: dict, ttl: int | None = None, consistency="ONE",
               keyspace: str | None = None, if_: dict | None = None, if_exists: bool = False,
               serial_consistency=None):
        """UPDATE (no row marker); with if_={col: value | (op, value)} or if_exists=True a
        lightweight transaction answering {"applied": bool, ...current values}."""
        return self._data("update", table, keyspace, consistency, key=key, set=set, ttl=ttl,
                          **_lwt(if_=if_, if_exists=if_exists, serial_consistency=serial_consistency))

    def delete(self, table: str, key: dict, columns=None, start=None, end=None, start_inclusive: bool = True,
               end_inclusive: bool = True, timestamp: int | None = None, consistency="ONE",
               keyspace: str | None = None, if_: dict | None = None, if_exists: bool = False,
               serial_consistency=None):
        return self._data("delete", table, keyspace, consistency, key=key, columns=columns, start=start, end=end,
                          start_inclusive=start_inclusive, end_inclusive=end_inclusive, timestamp=timestamp,
                          **_lwt(if_=if_, if_exists=if_exists, serial_consistency=serial_consistency))

    def batch(self, table: str, statements: list, consistency="ONE", keyspace: str | None = None,
              serial_consistency=None, timestamp: int | None = None):
        """BATCH on one partition of `table`: statements [{"op": "insert", "row", "if_not_exists"},
        {"op": "update", "key", "set", "if_", "if_exists"}, {"op": "delete", "key", "columns", "if_",
        "if_exists"}, ...]. With a condition: one lightweight transaction answering {"applied": True} or
        {"applied": False, "rows": [current values of each conditioned row that exists]}."""
        return self._data("batch", table, keyspace, consistency, statements=list(statements), timestamp=timestamp,
                          **_lwt(serial_consistency=serial_consistency))

    def logged_batch(self, statements: list, consistency="ONE", keyspace: str | None = None,
                     timestamp: int | None = None):
        """A LOGGED batch over any tables and partitions, all or nothing eventually (the batchlog,
        docs/ring.md#batchlog): statements [{"op": "insert" | "update" | "delete", "table", and that
        op's arguments}, ...], no conditions; one timestamp for those without their own."""
        ks, level = self._ks(keyspace), level_name(consistency)
        mutations = [[s["op"], {"keyspace": ks, "consistency": level, **{k: v for k, v in s.items() if k != "op"}}]
                     for s in statements]
        return self._run("logged_batch", {"mutations": mutations, "consistency": level, "timestamp": timestamp})

    def get(self, table: str, key: dict, columns=None, writetime: bool = False, consistency="ONE",
            keyspace: str | None = None):
        return self._data("get", table, keyspace, consistency, key=key, columns=columns, writetime=writetime)

    def select(self, table: str, key: dict, start=None, end=None, start_inclusive: bool = True,
               end_inclusive: bool = True, limit: int | None = None, columns=None, writetime: bool = False,
               reverse: bool = False, consistency="ONE", keyspace: str | None = None):
        return self._data("select", table, keyspace, consistency, key=key, start=start, end=end,
                          start_inclusive=start_inclusive, end_inclusive=end_inclusive, limit=limit,
                          columns=columns, writetime=writetime, reverse=reverse)

    def scan(self, table: str, start_token: int | None = None, end_token: int | None = None,
             page_size: int = 1000, paging_state: bytes | None = None, columns=None, writetime: bool = False,
             consistency="ONE", keyspace: str | None = None):
        return self._data("scan", table, keyspace, consistency, scan_result, start_token=start_token,
                          end_token=end_token, page_size=page_size, paging_state=paging_state,
                          columns=columns, writetime=writetime)

    def create_keyspace(self, name: str, replication: dict | None = None, if_not_exists: bool = False):
        """CREATE KEYSPACE: AlreadyExists if it exists, unless if_not_exists=True (then a no-op). A
        NetworkTopologyStrategy map must name only datacenters the cluster has."""
        replication = replication or {"class": "SimpleStrategy", "replication_factor": 1}
        return self._run("create_keyspace", {"name": name, "replication": replication,
                                             "if_not_exists": if_not_exists})

    def create_table(self, name: str, columns: dict, primary_key, clustering_order: dict | None = None,
                     options: dict | None = None, if_not_exists: bool = False, keyspace: str | None = None):
        """CREATE TABLE: AlreadyExists if it exists (whatever its schema), unless if_not_exists=True
        (then a no-op that keeps the existing schema)."""
        return self._run("create_table", {"keyspace": self._ks(keyspace), "name": name, "columns": columns,
                                          "primary_key": primary_key, "clustering_order": clustering_order,
                                          "options": options, "if_not_exists": if_not_exists})

    def drop_table(self, name: str, keyspace: str | None = None):
        return self._run("drop_table", {"keyspace": self._ks(keyspace), "name": name})

    def drop_keyspace(self, name: str):
        return self._run("drop_keyspace", {"name": name})

    def create_index(self, table: str, column: str, name: str | None = None, keyspace: str | None = None,
                     if_not_exists: bool = True):
        """CREATE INDEX [name] ON table (column); default name f"{table}_{column}_idx". Every node
        builds its local index in the background; queries raise IndexNotReady until it is built."""
        return self._run("create_index", {"keyspace": self._ks(keyspace), "table": table, "column": column,
                                          "name": name, "if_not_exists": if_not_exists})

    def drop_index(self, name: str, keyspace: str | None = None, if_exists: bool = True):
        return self._run("drop_index", {"keyspace": self._ks(keyspace), "name": name, "if_exists": if_exists})

    def index_query(self, table: str, where, columns=None, consistency="ONE", page_size: int = 1000,
                    paging_state: bytes | None = None, keyspace: str | None = None):
        """Rows matching every (column, op, value) of `where` (op: =, <, <=, >, >=), answered from
        the index of one restricted column, in token order: a ScanPage (rows, paging_state)."""
        return self._data("index_query", table, keyspace, consistency, scan_result,
                          where=[list(w) for w in where] if isinstance(where, (list, tuple)) else where,
                          columns=columns, page_size=page_size, paging_state=paging_state)

    def execute(self, op: str, **args):
        """Any op (admin ops for nodetool: status, info, flush, compact, tablestats, ...).
        `endpoint="host:port"` sends it to that node instead of routing it."""
        return self._run(op, args)

    def _run(self, op: str, args: dict, post=None):
        raise NotImplementedError
