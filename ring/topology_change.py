"""Bootstrap, decommission and removenode, as state machines the node ticks.

Rule: topology_change.py decides; node.py sends. These are handlers on a `Context`
(ring/context.py). Each announces the change in gossip, waits `ring_delay_ms` so every
coordinator adds the pending endpoints to its writes (ring/topology.py), then moves the data
with streaming (ring/streaming.py), then announces the end state:

* `Bootstrap` (a new node, auto_bootstrap): learn the ring and the schema (ring_delay, schema
  agreement), announce BOOT with its tokens, wait ring_delay, fetch every range it gains from the
  current replicas (those losing the range first), then persist COMPLETED and become NORMAL.
  A failed stream is retried after ring_delay and resumes where it stopped.
* `Decommission` (nodetool decommission): refuse if the remaining nodes cannot hold the
  replication factor; announce LEAVING, wait ring_delay, ask every endpoint that gains one of
  its ranges to fetch it (from this node first), then persist DECOMMISSIONED, announce LEFT and
  answer once LEFT has had ring_delay to spread. On failure: back to NORMAL, and an error.
* `RemoveNode` (nodetool removenode HOST_ID, for a dead node): announce the dead node as
  `removing` (under a newer generation, as Cassandra's advertiseRemoving), wait ring_delay, ask
  every gainer to fetch its new ranges from the live replicas, then announce it `removed`, drop
  its hints, and answer once `removed` has had ring_delay to spread. A failure leaves it
  `removing`: run removenode again to resume.
"""
from __future__ import annotations

import logging

from engine.errors import InvalidRequest
from ring import membership as ms
from ring.errors import ConfigurationError, RequestError
from ring.messages import FetchRanges, FetchRangesDone, Reply, Send
from ring.ring import allocate_tokens
from ring.streaming import StreamSession, local_plan
from ring.topology import range_movements, replication_shortfall

BOOTSTRAP_TABLE = "bootstrap"
log = logging.getLogger("dynatable.topology")


class TopologyChangeFailed(RequestError):
    """A bootstrap, decommission or removenode could not complete; the message says what to do."""

    retryable = False


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


def user_tables(ctx) -> list:
    """(strategy, table) of every table in a replicated (non-system) keyspace."""
    out = []
    for name, ks in sorted(ctx.store.keyspaces.items()):
        if name == "system":
            continue
        strategy = ctx.strategy(name)
        out += [(strategy, t) for t in sorted(ks.tables.values(), key=lambda t: t.id)]
    return out


def plans_by_target(ctx, current, future, exclude_sources: frozenset = frozenset()) -> dict[str, list]:
    """{gaining endpoint: [[table_id, lo, hi, sources], ...]} for a move from current to future."""
    plans: dict[str, list] = {}
    cache: dict[object, list] = {}
    for strategy, table in user_tables(ctx):
        moves = cache.get(strategy)
        if moves is None:
            moves = cache[strategy] = range_movements(strategy, current, future, ctx.snitch)
        for m in moves:
            sources = [ep for ep in m.sources if ep not in exclude_sources]
            plans.setdefault(m.target, []).append([table.id, m.lo, m.hi, sources])
    return plans


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


class _Orchestration:
    """Ask every gaining endpoint to fetch its ranges, and wait for all of them."""

    msg_id = None

    def __init__(self, ctx, request_id: int, deadline_ms: int):
        self.ctx = ctx
        self.request_id = request_id
        self.deadline_ms = deadline_ms
        self.finished = False
        self.phase = "announced"
        self.since_ms = ctx.now_ms
        self.waiting: dict[str, list] = {}   # gainer -> its plan, until it answers
        self.sent_ms = 0
        self.summary = {"targets": 0, "ranges": 0, "partitions": 0, "bytes": 0, "retries": 0, "stream_ms": 0}
        self.operation = ""

    def _send_fetches(self, plans: dict[str, list]) -> list:
        self.phase = "streaming"
        self.waiting = dict(plans)
        self.summary["targets"] = len(plans)
        if not plans:
            return self._complete()
        self.ctx.register(self)
        return self._resend()

    def _resend(self) -> list:
        """(Re)send FetchRanges to the gainers still working: a lost request or answer costs one
        resend interval, not the operation (a gainer re-attaches or answers from memory)."""
        self.sent_ms = self.ctx.now_ms
        return [Send(ep, FetchRanges(self.msg_id, self.operation, plan)) for ep, plan in sorted(self.waiting.items())]

    def on_reply(self, now_ms: int, src: str, reply: FetchRangesDone) -> list:
        summary, error = reply.summary, reply.error
        if self.finished or src not in self.waiting:
            return []
        if error is not None:
            return self._fail(f"{src} could not fetch its ranges: {error}")
        del self.waiting[src]
        for k in ("ranges", "partitions", "bytes", "retries"):
            self.summary[k] += int(summary.get(k, 0))
        self.summary["stream_ms"] = max(self.summary["stream_ms"], int(summary.get("stream_ms", 0)))
        return self._complete() if not self.waiting else []

    def on_timeout(self, now_ms: int) -> list:
        if self.finished:
            return []
        if now_ms >= self.deadline_ms:
            return self._fail(f"timed out in phase {self.phase}")
        if self.phase == "announced" and now_ms - self.since_ms >= self.ctx.config.ring_delay_ms:
            return self._stream()
        if self.phase == "streaming":
            down = [ep for ep in self.waiting if not self.ctx.is_alive(ep)]
            if down:
                return self._fail(f"{', '.join(down)} went down while fetching")
            if now_ms - self.sent_ms >= self.ctx.config.range_request_timeout_ms:
                return self._resend()
        return self._tick_more(now_ms)

    def _tick_more(self, now_ms: int) -> list:
        return []

    def _stream(self) -> list:
        raise NotImplementedError

    def _complete(self) -> list:
        raise NotImplementedError

    def _fail(self, what: str) -> list:
        raise NotImplementedError

    def progress(self) -> dict:
        return {"operation": self.operation, "phase": self.phase, "waiting_for": sorted(self.waiting),
                **self.summary}


class Decommission(_Orchestration):
    def __init__(self, ctx, request_id: int, deadline_ms: int):
        super().__init__(ctx, request_id, deadline_ms)
        self.operation = f"decommission:{ctx.config.host_id}"
        if ctx.mode != "NORMAL":
            raise InvalidRequest(f"cannot decommission: this ctx is {ctx.mode}, not NORMAL")
        ctx.refresh_ring()
        future = ctx.topology.future.without_endpoint(ctx.endpoint)
        for strategy, table in user_tables(ctx):
            why = replication_shortfall(strategy, future, ctx.snitch)
            if why:
                raise InvalidRequest(f"Not enough live nodes to maintain replication factor in keyspace "
                                     f"{table.keyspace} ({why}); add a ctx or lower its replication first")
        ctx.set_mode("LEAVING")
        ctx.announce(ms.Status.LEAVING)

    def _stream(self) -> list:
        ctx = self.ctx
        ctx.refresh_ring()
        current = ctx.topology.current
        return self._send_fetches(plans_by_target(ctx, current, current.without_endpoint(ctx.endpoint)))

    def _complete(self) -> list:
        ctx = self.ctx
        set_bootstrap_state(ctx.store, "DECOMMISSIONED")
        ctx.announce(ms.Status.LEFT)
        ctx.set_mode("DECOMMISSIONED")
        self.phase, self.since_ms = "left", ctx.now_ms
        return []

    def _tick_more(self, now_ms: int) -> list:
        if self.phase == "left" and now_ms - self.since_ms >= self.ctx.config.ring_delay_ms:
            self.finished = True
            log.info("decommissioned: %s", self.summary)
            return [Reply(self.request_id, result={"operation": "decommission", **self.summary})]
        return []

    def _fail(self, what: str) -> list:
        self.finished = True
        ctx = self.ctx
        if ctx.mode == "LEAVING":
            ctx.set_mode("NORMAL")
            ctx.announce(ms.Status.NORMAL)
        return [Reply(self.request_id, error=TopologyChangeFailed(
            f"decommission failed: {what}; the ctx is NORMAL again, run decommission again to retry"))]


class RemoveNode(_Orchestration):
    def __init__(self, ctx, request_id: int, host_id: str, deadline_ms: int):
        super().__init__(ctx, request_id, deadline_ms)
        self.operation = f"removenode:{host_id}"
        self.host_id = host_id
        found = [ep for ep in ctx.known_endpoints() if ctx.host_id_of(ep) == host_id]
        if not found:
            raise InvalidRequest(f"Host ID not found: {host_id} (nodetool status lists the host ids)")
        self.target = ep = found[0]
        if ep == ctx.endpoint:
            raise InvalidRequest("Cannot remove self; use nodetool decommission on this ctx instead")
        if ctx.is_alive(ep):
            raise InvalidRequest(f"Node {ep} is alive and owns this ID. Use decommission command to remove "
                                 f"it from the ring")
        status = ms.parse_status(ctx.app_state(ep, ms.ApplicationState.STATUS) or "")[0]
        if status not in (ms.Status.NORMAL, ms.Status.REMOVING):
            raise InvalidRequest(f"Node {ep} is {status or 'not in the ring'}; only a NORMAL ctx can be removed")
        ctx.refresh_ring()
        future = ctx.topology.future.without_endpoint(ep)
        for strategy, table in user_tables(ctx):
            why = replication_shortfall(strategy, future, ctx.snitch)
            if why:
                raise InvalidRequest(f"Not enough nodes to re-replicate keyspace {table.keyspace} without "
                                     f"{ep} ({why}); add a ctx first")
        ctx.advertise_for(ep, {
            ms.ApplicationState.STATUS: ms.status_value(ms.Status.REMOVING, host_id),
            ms.ApplicationState.REMOVAL_COORDINATOR: f"REMOVER,{ctx.config.host_id}"})
        ctx.convict(ep)
        ctx.refresh_ring()

    def _stream(self) -> list:
        ctx = self.ctx
        ctx.refresh_ring()
        current = ctx.topology.current
        return self._send_fetches(plans_by_target(ctx, current, current.without_endpoint(self.target),
                                                  exclude_sources=frozenset({self.target})))

    def _complete(self) -> list:
        ctx = self.ctx
        ctx.advertise_for(self.target, {
            ms.ApplicationState.STATUS: ms.status_value(ms.Status.REMOVED, self.host_id)})
        ctx.truncate_hints(self.host_id)
        ctx.refresh_ring()
        self.phase, self.since_ms = "removed", ctx.now_ms
        return []

    def _tick_more(self, now_ms: int) -> list:
        if self.phase == "removed" and now_ms - self.since_ms >= self.ctx.config.ring_delay_ms:
            self.finished = True
            log.info("removed %s (%s): %s", self.target, self.host_id, self.summary)
            return [Reply(self.request_id, result={"operation": "removenode", "endpoint": self.target,
                                                   "host_id": self.host_id, **self.summary})]
        return []

    def _fail(self, what: str) -> list:
        self.finished = True
        return [Reply(self.request_id, error=TopologyChangeFailed(
            f"removenode {self.host_id} failed: {what}; it stays 'removing': run removenode again to resume"))]


def refuse_if_decommissioned(store) -> None:
    if bootstrap_state(store) == "DECOMMISSIONED":
        raise ConfigurationError("this ctx was decommissioned and cannot rejoin with its old data; wipe its "
                                 "data directory to add it as a new ctx (or use `dynatable cluster add`)")
