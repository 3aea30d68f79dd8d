"""Streaming: whole token ranges of tables fetched from other replicas into the local store.

Rule: streaming.py decides; node.py sends. A `StreamSession` (a handler on a `Context`) works
through a plan of tasks (table, range (lo, hi], sources), one page in flight: `StreamRequest`
for up to PAGE_PARTITIONS partitions from the resume point, `StreamResponse` with the raw
partitions (tombstones included, so deletes move too; served by ring/replica.py) and an xxh64
checksum of their msgpack encoding, which the receiver recomputes; a mismatch, an error or a
timeout retries the page from the next source. `Fetches` runs the sessions other nodes'
decommission or removenode ask this node for.

Resumable per range: after each applied page the position is written to the node's
`system.streams` table (operation, task) -> (position, done), so a session restarted for the same
operation skips finished ranges and resumes the others where they stopped. Applying a page twice
is harmless: reconcile is idempotent. Docs: docs/ring.md#streaming; wire: docs/format.md.
"""
from __future__ import annotations

import xxhash

from engine.errors import EngineError, InvalidRequest
from ring.anti_entropy import scan_bounds, unwrap
from ring.messages import FetchRanges, FetchRangesDone, Send, StreamRequest, StreamResponse, packb, unpackb

PAGE_PARTITIONS = 256
MAX_PAGE_PARTITIONS = 4096
ATTEMPTS_PER_SOURCE = 3
STREAMS_TABLE = "streams"


def page_checksum(partitions: list) -> int:
    return xxhash.xxh64_intdigest(packb(partitions))


def local_plan(ctx, plan: list) -> list[tuple]:
    """A FetchRanges plan as StreamSession tasks; an unknown table is an error naming it."""
    out = []
    for table_id, lo, hi, sources in plan:
        table = ctx.local_table(table_id)
        if table is None:
            raise InvalidRequest(f"unknown table id {table_id} (schema not yet agreed); retry shortly")
        if not sources:
            raise InvalidRequest(f"range ({lo}, {hi}] of {table.qualified_name} has no live source")
        out.append((table, lo, hi, sources))
    return out


def create_system_tables(store) -> None:
    """system.streams (stream progress) and system.bootstrap (Cassandra's system.local
    `bootstrapped`: COMPLETED or DECOMMISSIONED), node-local like the rest of `system`."""
    store.create_table("system", STREAMS_TABLE,
                       {"operation": "text", "task": "text", "position": "blob", "done": "boolean"},
                       primary_key=["operation", "task"], if_not_exists=True)
    store.create_table("system", "bootstrap", {"key": "text", "state": "text"}, primary_key="key",
                       if_not_exists=True)


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

    def __init__(self, ctx, operation: str, plan: list[tuple], on_done, timeout_ms: int):
        self.ctx = ctx
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
        for row in self.ctx.store.select("system", STREAMS_TABLE, {"operation": self.operation}):
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
        self.ctx.store.insert("system", STREAMS_TABLE, row)

    def forget_progress(self) -> None:
        """Once the whole operation is complete: its progress rows are no longer needed."""
        self.ctx.store.delete("system", STREAMS_TABLE, {"operation": self.operation})

    # -- the session ---------------------------------------------------------------------------

    def start(self) -> list:
        self.started_ms = self.ctx.now_ms
        return self._next()

    def _next(self) -> list:
        while self.index < len(self.tasks) and self.tasks[self.index].done:
            self.index += 1
        if self.index >= len(self.tasks):
            self.finished = True
            self.summary["stream_ms"] = self.ctx.now_ms - self.started_ms
            return self.on_done(dict(self.summary), None)
        task = self.tasks[self.index]
        live = [ep for ep in task.sources if self.ctx.is_alive(ep)] or task.sources
        source = live[self.source_index % len(live)]
        start, end = scan_bounds(task.lo, task.hi)
        if task.position is not None:
            start = task.position
        msg_id = self.ctx.register(self)
        self.deadline_ms = self.ctx.now_ms + self.timeout_ms
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

    def on_reply(self, now_ms: int, src: str, msg: StreamResponse) -> list:
        if self.finished:
            return []
        if msg.error is not None:
            return self._retry(f"{src} answered {msg.error}")
        if page_checksum(msg.partitions) != msg.checksum:
            return self._retry(f"checksum mismatch in a page from {src}")
        task = self.tasks[self.index]
        try:
            updates = [(task.table, key, payload) for _tok, key, payload in msg.partitions]
            if updates:  # the source's bytes, checked and logged as received; progress is saved after
                position = self.ctx.store.apply_mutations(updates)
                if position is not None:  # batch/group sync: waits on the loop (streams are rare)
                    self.ctx.store.await_durable(position)
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

    def on_timeout(self, now_ms: int) -> list:
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


class Fetches:
    """This node's side of other nodes' decommission / removenode: one StreamSession per operation
    (`FetchRanges` asked again while it runs re-attaches the new request), and the summaries of
    finished ones (the last 64), so a repeated request whose answer was lost is answered at once."""

    MAX_REMEMBERED = 64

    def __init__(self, ctx):
        self.ctx = ctx
        self.sessions: dict[str, StreamSession] = {}
        self.done: dict[str, dict] = {}

    def on_fetch_ranges(self, src: str, msg: FetchRanges) -> list:
        running = self.sessions.get(msg.operation)
        if running is not None and not running.finished:  # asked again: answer this request when done
            running.on_done = self._finished(msg.operation, fetch_done(msg.id, src))
            return []
        if msg.operation in self.done:  # done already; the answer was lost
            return [Send(src, FetchRangesDone(msg.id, self.done[msg.operation], None))]
        try:
            tasks = local_plan(self.ctx, msg.plan)
        except (InvalidRequest, ValueError, TypeError) as e:
            return [Send(src, FetchRangesDone(msg.id, {}, f"{type(e).__name__}: {e}"))]
        session = StreamSession(self.ctx, msg.operation, tasks, self._finished(msg.operation, fetch_done(msg.id, src)),
                                self.ctx.config.range_request_timeout_ms)
        self.sessions[msg.operation] = session
        return session.start()

    def _finished(self, operation: str, answer):
        def done(summary: dict, error: str | None) -> list:
            session = self.sessions.pop(operation, None)
            if error is None and session is not None:
                session.forget_progress()
                self.done[operation] = summary
                while len(self.done) > self.MAX_REMEMBERED:
                    self.done.pop(next(iter(self.done)))
            return answer(summary, error)
        return done
