"""The native backend: `DynatableClient`, the store boundary (backend.Backend) on dynatable's own client.

Mutations are sent concurrently (pipelined over ring.client.AsyncCluster on a private event-loop
thread, at most `max_in_flight` at once); the calls block. Reads and writes use the configured
levels (QUORUM by default), type metadata METADATA_LEVEL. Layout and contract: backend.py.
"""
from __future__ import annotations

import asyncio
import threading
import time
from itertools import groupby
from typing import Self

from engine.errors import IndexNotReady, InvalidRequest
from engine.schema import check_name
from persistency.backend import (
    DEAD_LETTER_TABLE,
    METADATA_LEVEL,
    METADATA_TABLE,
    VALUE_INDEX,
    Put,
    check_options,
)
from ring.client import AsyncCluster

INDEX_NOT_READY_RETRIES = 20     # about 20 s in all
SCHEMA_AGREEMENT_WAIT_S = 10.0   # the Python driver's max_schema_agreement_wait


class DynatableClient:
    """A backend.Backend on contact points of a running cluster and an existing keyspace (never created here)."""

    def __init__(self, contact_points: list[str], keyspace: str, *, read_consistency: str = "QUORUM",
                 write_consistency: str = "QUORUM", gc_grace_seconds: int | None = None,
                 max_in_flight: int = 256, **cluster_options):
        read_consistency, write_consistency = check_options(read_consistency, write_consistency, gc_grace_seconds)
        self.keyspace = keyspace
        self.read_consistency, self.write_consistency = read_consistency, write_consistency
        self.gc_grace_seconds = gc_grace_seconds
        self.max_in_flight = max_in_flight
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="persistency-client", daemon=True)
        self._thread.start()
        self._closed = False
        self.cluster = AsyncCluster(contact_points, **cluster_options)
        try:
            self.session = self._call(self.cluster.connect(keyspace))
            self._semaphore = self._call(self._new_semaphore())
            self.wait_for_schema_agreement()
            if keyspace not in self.cluster.metadata.keyspaces:
                raise InvalidRequest(f"Keyspace {keyspace} does not exist; create it first (the persistency "
                                     "never creates keyspaces)")
        except BaseException:
            self.close()
            raise

    async def _new_semaphore(self) -> asyncio.Semaphore:
        return asyncio.Semaphore(self.max_in_flight)

    def wait_for_schema_agreement(self, timeout_s: float = SCHEMA_AGREEMENT_WAIT_S) -> bool:
        """Wait until every live node reports the same schema version (as drivers do after DDL:
        the change is pushed to the other nodes asynchronously). False if it did not settle in time."""
        deadline = time.monotonic() + timeout_s
        while True:
            self._call(self.cluster.refresh_metadata())
            live = [ep for ep in self.cluster.metadata.endpoints if self.cluster.metadata.is_up(ep)]
            versions = set()
            for ep in live:
                try:
                    versions.add(self._call(self.session.execute("describe_schema", endpoint=ep)).get("version"))
                except Exception:  # noqa: BLE001 - a node going down meanwhile: ask again
                    versions.add(None)
            if len(versions) <= 1:
                self._call(self.cluster.refresh_metadata())
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.1)

    def _call(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    async def _limited(self, coro):
        async with self._semaphore:
            return await coro

    def _all(self, coros) -> list:
        """Run coroutines concurrently; wait for all; raise the first error, else the results."""
        async def gather():
            return await asyncio.gather(*(self._limited(c) for c in coros), return_exceptions=True)
        results = self._call(gather())
        for r in results:
            if isinstance(r, BaseException):
                raise r
        return results

    # -- tables ----------------------------------------------------------------------------------

    def _table(self, name: str):
        return self.cluster.metadata.tables.get((self.keyspace, name))

    def ensure_table(self, name: str, key_column: str, key_type: str) -> None:
        """Create a type's table unless it exists (idempotent; safe when endpoints race)."""
        check_name("table", name)
        self._ensure(name, {key_column: key_type, "column1": "text", "value": "blob"}, (key_column, "column1"))

    def ensure_metadata_table(self) -> None:
        self._ensure(METADATA_TABLE, {"type_name": "text", "metadata": "blob"}, "type_name")

    def ensure_dead_letter_table(self) -> None:
        self._ensure(DEAD_LETTER_TABLE, {"operation_id": "text", "type_name": "text", "operation_type": "text",
                                         "operation": "blob", "error": "text", "parked_at": "timestamp"},
                     "operation_id")

    def _ensure(self, name: str, columns: dict, primary_key) -> None:
        options = {"gc_grace_seconds": self.gc_grace_seconds} if self.gc_grace_seconds is not None else None
        for attempt in range(5):
            if attempt:
                self._call(self.cluster.refresh_metadata())
            existing = self._table(name)
            if existing is not None:
                have = {c.name: c.cql_type for c in existing.columns}
                if have != columns:
                    raise InvalidRequest(f"table {self.keyspace}.{name} exists with columns {have}, not {columns}: "
                                         "another type or application uses that name; configure a name converter")
                return
            try:
                self._call(self.session.create_table(name, columns, primary_key, options=options, if_not_exists=True))
                self.wait_for_schema_agreement()
                return
            except InvalidRequest as e:
                if "already exists" not in str(e) or attempt == 4:
                    raise
                self.wait_for_schema_agreement()   # another client created it meanwhile: look again
            except Exception:
                if attempt == 4:
                    raise
                time.sleep(0.2 * 2 ** attempt)     # a timeout or a lost connection: look again, then retry

    def create_index(self, table: str) -> None:
        """The secondary index on a type table's `value` column (one per table; idempotent)."""
        create = getattr(self.session, "create_index", None)
        if create is None:
            raise InvalidRequest("this cluster client has no secondary indexes (session.create_index)")
        self._call(create(table, "value", name=VALUE_INDEX.format(table=table), if_not_exists=True))
        self.wait_for_schema_agreement()

    # -- metadata --------------------------------------------------------------------------------

    def write_metadata(self, type_name: str, data: bytes) -> None:
        self._call(self.session.insert(METADATA_TABLE, {"type_name": type_name, "metadata": data},
                                       consistency=METADATA_LEVEL))

    def read_metadata(self, type_name: str) -> bytes | None:
        row = self._call(self.session.get(METADATA_TABLE, {"type_name": type_name}, consistency=METADATA_LEVEL))
        return row.get("metadata") if row else None

    def read_all_metadata(self) -> list[tuple[str, bytes]]:
        rows = self._scan(METADATA_TABLE, 1000, METADATA_LEVEL)
        return [(r["type_name"], r["metadata"]) for r in rows if r.get("metadata") is not None]

    # -- data ------------------------------------------------------------------------------------

    def apply(self, mutations: list) -> None:
        s, level = self.session, self.write_consistency
        coros = []
        for m in mutations:
            if isinstance(m, Put):
                coros.append(s.insert(m.table, {m.key_column: m.key, "column1": m.column, "value": m.value},
                                      timestamp=m.timestamp, consistency=level))
            else:
                coros.append(s.delete(m.table, {m.key_column: m.key}, timestamp=m.timestamp, consistency=level))
        self._all(coros)

    def read_row(self, table: str, key_column: str, key) -> list[tuple[str, bytes]]:
        return self.read_rows(table, key_column, [key])[0]

    def read_rows(self, table: str, key_column: str, keys: list) -> list[list[tuple[str, bytes]]]:
        """Each key's columns [(name, value)] in name order ([] if the row is absent), in `keys` order."""
        results = self._all(self.session.select(table, {key_column: k}, columns=["column1", "value"],
                                                consistency=self.read_consistency) for k in keys)
        return [[(r["column1"], r["value"]) for r in rows if r.get("value") is not None] for rows in results]

    def scan_rows(self, table: str, key_column: str, page_size: int, token_range: tuple[int, int] | None = None):
        """Every row (or those whose token is in (start, end]) as (key, [(name, value)]) in token order,
        one page of cells in memory at a time."""
        cells = ((r[key_column], r["column1"], r["value"])
                 for r in self._scan(table, page_size, self.read_consistency, token_range)
                 if r.get("value") is not None)
        for key, group in groupby(cells, key=lambda c: c[0]):
            yield key, [(c[1], c[2]) for c in group]

    def _scan(self, table: str, page_size: int, level: str, token_range: tuple[int, int] | None = None):
        start, end = token_range or (None, None)
        state = None
        while True:
            page = self._call(self.session.scan(table, start, end, page_size=page_size, paging_state=state,
                                                consistency=level))
            yield from page.rows
            if (state := page.paging_state) is None:
                return

    def index_keys(self, table: str, key_column: str, column: str, value: bytes, page_size: int):
        """Row keys whose column `column` holds `value`, from the secondary index, page by page."""
        query = getattr(self.session, "index_query", None)
        if query is None:
            raise InvalidRequest("this cluster client has no secondary indexes (session.index_query)")
        where = [("value", "=", value), ("column1", "=", column)]
        state = None
        while True:
            for attempt in range(INDEX_NOT_READY_RETRIES + 1):
                try:
                    page = self._call(query(table, where, page_size=page_size, paging_state=state,
                                            consistency=self.read_consistency))
                    break
                except IndexNotReady:   # just created: every node builds its local index first
                    if attempt == INDEX_NOT_READY_RETRIES:
                        raise
                    time.sleep(0.1 * (attempt + 1))
            yield [r[key_column] for r in page.rows]
            if (state := page.paging_state) is None:
                return

    # -- dead letters ----------------------------------------------------------------------------

    def park(self, operation_id: str, type_name: str, operation_type: str, operation: bytes, error: str) -> None:
        row = {"operation_id": operation_id, "type_name": type_name, "operation_type": operation_type,
               "operation": operation, "error": error[:4000], "parked_at": int(time.time() * 1000)}
        self._call(self.session.insert(DEAD_LETTER_TABLE, row, consistency=self.write_consistency))

    def dead_letters(self) -> list[dict]:
        return list(self._scan(DEAD_LETTER_TABLE, 1000, self.read_consistency))

    # -- life ------------------------------------------------------------------------------------

    def close(self) -> None:
        """Idempotent. The endpoint and the data source never close a client they were given."""
        if self._closed:
            return
        self._closed = True
        try:
            self._call(self.cluster.shutdown())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)
            self._loop.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
