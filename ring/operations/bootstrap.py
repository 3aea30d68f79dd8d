"""Bootstrap (a new node, auto_bootstrap) as a state machine the node ticks, and the node's
bootstrap state in `system.bootstrap`.

Rule: bootstrap.py decides; node.py sends. `Bootstrap` is a handler on a `Context`
(ring/context.py): learn the ring and the schema (ring_delay, schema agreement), announce BOOT
with its tokens, wait `ring_delay_ms` so every coordinator adds it as a pending endpoint to its
writes (ring/placement/pending.py), fetch every range it gains from the current replicas (those
losing the range first) with streaming (ring/streaming.py), then persist COMPLETED and become
NORMAL. A failed stream is retried after ring_delay and resumes where it stopped.

The bootstrap state (COMPLETED, DECOMMISSIONED) and the node's tokens are flushed to
`system.bootstrap` before the change they record is announced.
"""
from __future__ import annotations

import logging

from engine.errors import InvalidRequest
from ring import membership as ms
from ring.errors import ConfigurationError
from ring.operations.plan import plans_by_target
from ring.placement.token_ring import allocate_tokens
from ring.streaming import StreamSession, local_plan

BOOTSTRAP_TABLE = "bootstrap"
log = logging.getLogger("dynatable.topology")


def bootstrap_state(store) -> str | None:
    row = store.get("system", BOOTSTRAP_TABLE, {"key": "local"})
    return row.get("state") if row else None


def set_bootstrap_state(store, state: str) -> None:
    store.insert("system", BOOTSTRAP_TABLE, {"key": "local", "state": state})
    store.flush("system", BOOTSTRAP_TABLE)  # durable before the change is announced


def saved_tokens(store) -> list[int] | None:
    row = store.get("system", BOOTSTRAP_TABLE, {"key": "tokens"})
    return ms.parse_tokens(row["state"]) if row and row.get("state") else None


def save_tokens(store, tokens: list[int]) -> None:
    store.insert("system", BOOTSTRAP_TABLE, {"key": "tokens", "state": ms.tokens_value(tokens)})
    store.flush("system", BOOTSTRAP_TABLE)


def refuse_if_decommissioned(store) -> None:
    if bootstrap_state(store) == "DECOMMISSIONED":
        raise ConfigurationError("this node was decommissioned and cannot rejoin with its old data; wipe its "
                                 "data directory to add it as a new node (or use `dynatable cluster add`)")


class Bootstrap:
    msg_id = None

    def __init__(self, ctx):
        self.ctx = ctx
        self.phase = "wait_ring"
        self.since_ms = ctx.now_ms
        self.finished = False
        self.session: StreamSession | None = None
        self.attempt = 0
        self.summary: dict = {}
        self.error: str | None = None

    def on_timeout(self, now_ms: int) -> list:
        ctx = self.ctx
        delay = ctx.config.ring_delay_ms
        if self.phase == "wait_ring":
            peers = [ep for ep in ctx.topology.endpoints_in(ms.Status.NORMAL) if ep != ctx.endpoint]
            schemas = {ctx.app_state(ep, ms.ApplicationState.SCHEMA) for ep in peers if ctx.is_alive(ep)}
            if now_ms - self.since_ms < delay or not peers or schemas != {ctx.schema_version()}:
                return []
            # tokens that split the widest ranges of the ring it joins (even ownership), kept
            ctx.set_tokens(sorted(allocate_tokens(ctx.config.host_id, ctx.config.num_tokens, ring=ctx.ring)))
            save_tokens(ctx.store, ctx.tokens)
            ctx.announce(ms.Status.BOOT)
            self.phase, self.since_ms = "announced", now_ms
            return []
        if self.phase == "announced" and now_ms - self.since_ms >= delay:
            return self._stream()
        if self.phase == "failed" and now_ms - self.since_ms >= delay:
            return self._stream()  # resumes: finished ranges are skipped
        return []

    def _stream(self) -> list:
        ctx = self.ctx
        ctx.refresh_ring()
        future = ctx.topology.future
        current = ctx.topology.current
        plan = plans_by_target(ctx, current, future).get(ctx.endpoint, [])
        self.phase = "streaming"
        self.attempt += 1
        try:
            tasks = local_plan(ctx, plan)
        except InvalidRequest as e:
            return self._done({}, str(e))
        self.session = StreamSession(ctx, f"bootstrap:{ctx.config.host_id}", tasks, self._done,
                                     ctx.config.range_request_timeout_ms)
        return self.session.start()

    def _done(self, summary: dict, error: str | None) -> list:
        ctx = self.ctx
        self.summary = summary
        if error is not None:
            self.error = error
            self.phase, self.since_ms = "failed", ctx.now_ms
            log.warning("bootstrap streaming failed (attempt %d), retrying: %s", self.attempt, error)
            return []
        set_bootstrap_state(ctx.store, "COMPLETED")
        if self.session is not None:
            self.session.forget_progress()
        ctx.announce(ms.Status.NORMAL)
        ctx.set_mode("NORMAL")
        self.phase, self.finished = "done", True
        log.info("bootstrap complete: %s", summary)
        return []

    def progress(self) -> dict:
        out = self.session.progress() if self.session is not None else {}
        out.update({"operation": "bootstrap", "phase": self.phase, "attempt": self.attempt, "error": self.error})
        return out
