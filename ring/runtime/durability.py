"""Waiting for commit-log durability off the event loop: the asyncio driver's `Durable` effects.

With `commitlog_sync = batch` or `group` a replica may acknowledge a mutation only once its
commit-log record is fsynced. The node never waits: it returns `Durable(position, effects)`
(ring/messages.py). This waiter collects them and, in one worker thread, calls the store's
`await_durable` on the highest position collected so far; when that returns, every effect of the
batch is handed back (`on_durable(effect, error)`), and the next batch (the writes that arrived
during the fsync) is waited for at once. So one fsync covers many writes (group commit), the loop
never blocks on a sync, and at most one thread waits at a time.

Invariants: an effect is handed back exactly once, after the commit log reported its position
durable, or with the error that stopped it (the commit log failed or closed); positions compare
as tuples in log order, so durability of the highest covers the batch.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import logging

from engine.errors import EngineError

log = logging.getLogger("dynatable.runtime")


class DurabilityWaiter:
    def __init__(self, await_durable, on_durable):
        self._await_durable = await_durable     # blocking: Store.await_durable(position)
        self._on_durable = on_durable           # on_durable(effect, error: str | None), on the loop
        self._pending: list = []
        self._task: asyncio.Task | None = None
        self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="dynatable-durability")
        self.batches = 0                        # waits done (one fsync wait per batch)
        self.waited = 0                         # effects handed back

    def add(self, effect) -> None:
        self._pending.append(effect)
        if self._task is None:
            self._task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                error = None
                try:
                    await loop.run_in_executor(self._executor, self._await_durable,
                                               max(e.position for e in batch))
                except EngineError as e:
                    error = f"{type(e).__name__}: {e}"
                    log.error("commit log could not make %d writes durable: %s", len(batch), e)
                self.batches += 1
                self.waited += len(batch)
                for effect in batch:
                    self._on_durable(effect, error)
        finally:
            self._task = None

    async def close(self) -> None:
        """Stop waiting (the effects still pending are dropped: their requests time out)."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self._pending = []
        self._executor.shutdown(wait=False)
