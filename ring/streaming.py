"""Streaming: whole token ranges of tables fetched from other replicas into the local store.

Rule: streaming.py decides; node.py sends. A `StreamSession` works through a plan of tasks
(table, range (lo, hi], sources), one page in flight: `StreamRequest` for up to PAGE_PARTITIONS
partitions from the resume point, `StreamResponse` with the raw partitions (tombstones
included, so deletes move too) and an xxh64 checksum of their msgpack encoding, which the
receiver recomputes; a mismatch, an error or a timeout retries the page from the next source.

Resumable per range: after each applied page the position is written to the node's
`system.streams` table (operation, task) -> (position, done), so a session restarted for the same
operation skips finished ranges and resumes the others where they stopped. Applying a page twice
is harmless: reconcile is idempotent. Docs: docs/ring.md#streaming; wire: docs/format.md.
"""
from __future__ import annotations

import xxhash

from engine.errors import EngineError, InvalidRequest
from engine.partition import decode_partition, encode_partition
from ring.anti_entropy import scan_bounds, unwrap
from ring.messages import FetchRangesDone, Send, StreamRequest, StreamResponse, packb, unpackb

PAGE_PARTITIONS = 256
MAX_PAGE_PARTITIONS = 4096
ATTEMPTS_PER_SOURCE = 3
STREAMS_TABLE = "streams"


def page_checksum(partitions: list) -> int:
    return xxhash.xxh64_intdigest(packb(partitions))


def serve_page(store, table, msg: StreamRequest) -> StreamResponse:
    """The source's side: one page of raw partitions from [start, end)."""
    limit = max(1, min(int(msg.limit), MAX_PAGE_PARTITIONS))
    start = tuple(msg.start) if msg.start else None
    end = tuple(msg.end) if msg.end else None
    out = []
    for tok, key, p in store.cfs[table.id].scan_partitions(start, end):
        out.append([tok, key, encode_partition(p)])
        if len(out) >= limit:
            return StreamResponse(msg.id, out, False, page_checksum(out), None)
    return StreamResponse(msg.id, out, True, page_checksum(out), None)


def create_system_tables(store) -> None:
    """system.streams (stream progress) and system.bootstrap (Cassandra's system.local
    `bootstrapped`: COMPLETED or DECOMMISSIONED), node-local like the rest of `system`."""
    store.create_table("system", STREAMS_TABLE,
                       {"operation": "text", "task": "text", "position": "blob", "done": "boolean"},
                       primary_key=["operation", "task"])
    store.create_table("system", "bootstrap", {"key": "text", "state": "text"}, primary_key="key")


class StreamTask:
    __slots__ = ("table", "lo", "hi", "sources", "key", "position", "done")

    def __init__(self, table, lo, hi, sources):
        self.table, self.lo, self.hi, self.sources = table, lo, hi, list(sources)
        self.key = f"{table.id}:{lo}:{hi}"
        self.position = None       # (token, key) to resume from, inclusive
        self.done = False


class StreamSession:
    """Fetch every task of `plan` into the local store; `on_done(summary, error)` gives effects."""

    msg_id = None

    def __init__(self, node, operation: str, plan: list[tuple], on_done, timeout_ms: int):
        self.node = node
        self.operation = operation
        self.on_done = on_done
        self.timeout_ms = timeout_ms
        self.tasks: list[StreamTask] = []
        for table, lo, hi, sources in plan:
            for piece_lo, piece_hi in unwrap(lo, hi):
                self.tasks.append(StreamTask(table, piece_lo, piece_hi, sources))
        self.index = 0
        self.source_index = 0
        self.attempts = 0
        self.deadline_ms = 0
        self.finished = False
        self.summary = {"ranges": len(self.tasks), "ranges_done": 0, "ranges_resumed": 0,
                        "partitions": 0, "bytes": 0, "retries": 0}
        self._load_progress()

    # -- progress ------------------------------------------------------------------------------

    def _load_progress(self) -> None:
        by_key = {t.key: t for t in self.tasks}
        for row in self.node.store.select("system", STREAMS_TABLE, {"operation": self.operation}):
            task = by_key.get(row["task"])
            if task is None:
                continue
            if row.get("done"):
                task.done = True
                self.summary["ranges_done"] += 1
                self.summary["ranges_resumed"] += 1
            elif row.get("position"):
                task.position = tuple(unpackb(row["position"]))
                self.summary["ranges_resumed"] += 1

    def _save_progress(self, task: StreamTask) -> None:
        row = {"operation": self.operation, "task": task.key, "done": task.done,
               "position": packb(list(task.position)) if task.position else b""}
        self.node.store.insert("system", STREAMS_TABLE, row)

    def forget_progress(self) -> None:
        """Once the whole operation is complete: its progress rows are no longer needed."""
        self.node.store.delete("system", STREAMS_TABLE, {"operation": self.operation})

    # -- the session ---------------------------------------------------------------------------

    def start(self) -> list:
        self.started_ms = self.node.now_ms
        return self._next()

    def _next(self) -> list:
        while self.index < len(self.tasks) and self.tasks[self.index].done:
            self.index += 1
        if self.index >= len(self.tasks):
            self.finished = True
            self.summary["stream_ms"] = self.node.now_ms - self.started_ms
            return self.on_done(dict(self.summary), None)
        task = self.tasks[self.index]
        live = [ep for ep in task.sources if self.node.is_alive(ep)] or task.sources
        source = live[self.source_index % len(live)]
        start, end = scan_bounds(task.lo, task.hi)
        if task.position is not None:
            start = task.position
        msg_id = self.node.register_handler(self)
        self.deadline_ms = self.node.now_ms + self.timeout_ms
        self.source = source
        return [Send(source, StreamRequest(msg_id, task.table.id, list(start) if start else None,
                                           list(end) if end else None, PAGE_PARTITIONS))]

    def _retry(self, why: str) -> list:
        self.attempts += 1
        self.summary["retries"] += 1
        task = self.tasks[self.index]
        if self.attempts >= ATTEMPTS_PER_SOURCE * max(1, len(task.sources)):
            self.finished = True
            return self.on_done(dict(self.summary), f"range ({task.lo}, {task.hi}] of {task.table.keyspace}."
                                                    f"{task.table.name}: {why} (after {self.attempts} attempts; "
                                                    f"run the operation again to resume)")
        self.source_index += 1
        return self._next()

    def on_stream(self, src: str, msg: StreamResponse, now_ms: int) -> list:
        if self.finished:
            return []
        if msg.error is not None:
            return self._retry(f"{src} answered {msg.error}")
        if page_checksum(msg.partitions) != msg.checksum:
            return self._retry(f"checksum mismatch in a page from {src}")
        task = self.tasks[self.index]
        try:
            updates = [(task.table, key, decode_partition(payload)) for _tok, key, payload in msg.partitions]
            if updates:
                self.node.store.apply(updates)
        except (InvalidRequest, EngineError, ValueError, TypeError) as e:
            return self._retry(f"a page from {src} does not decode: {e}")
        self.summary["partitions"] += len(updates)
        self.summary["bytes"] += sum(len(k) + len(p) for _t, k, p in msg.partitions)
        self.attempts = 0
        if msg.exhausted:
            task.done, task.position = True, None
            self.summary["ranges_done"] += 1
            self.index += 1
        else:
            tok, key = msg.partitions[-1][0], msg.partitions[-1][1]
            task.position = (tok, key + b"\x00")
        self._save_progress(task)
        return self._next()

    def on_tick(self, now_ms: int) -> list:
        if self.finished or now_ms < self.deadline_ms:
            return []
        return self._retry(f"no answer from {self.source} within {self.timeout_ms} ms")

    def progress(self) -> dict:
        return {"operation": self.operation, **self.summary}


def fetch_done(fetch_id: int, reply_to: str):
    """An on_done that answers a FetchRanges request."""
    def done(summary: dict, error: str | None) -> list:
        return [Send(reply_to, FetchRangesDone(fetch_id, summary, error))]
    return done
