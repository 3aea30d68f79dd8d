"""Decommission (nodetool decommission) as a state machine the node ticks.

Rule: refuse if the remaining nodes cannot hold the replication factor; announce LEAVING, wait
`ring_delay_ms`, ask every endpoint that gains one of this node's ranges to fetch it (from this
node first), then persist DECOMMISSIONED, announce LEFT and answer once LEFT has had ring_delay
to spread. On failure: back to NORMAL, and an error.
"""
from __future__ import annotations

import logging

from engine.errors import InvalidRequest
from ring import membership as ms
from ring.messages import Reply
from ring.operations.bootstrap import set_bootstrap_state
from ring.operations.plan import plans_by_target, user_tables
from ring.operations.relocation import Relocation, TopologyChangeFailed
from ring.placement.pending import replication_shortfall

log = logging.getLogger("dynatable.topology")


class Decommission(Relocation):
    def __init__(self, ctx, request_id: int, deadline_ms: int):
        super().__init__(ctx, request_id, deadline_ms)
        self.operation = f"decommission:{ctx.config.host_id}"
        if ctx.mode != "NORMAL":
            raise InvalidRequest(f"cannot decommission: this node is {ctx.mode}, not NORMAL")
        ctx.refresh_ring()
        future = ctx.topology.future.without_endpoint(ctx.endpoint)
        for strategy, table in user_tables(ctx):
            why = replication_shortfall(strategy, future, ctx.snitch)
            if why:
                raise InvalidRequest(f"Not enough live nodes to maintain replication factor in keyspace "
                                     f"{table.keyspace} ({why}); add a node or lower its replication first")
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
            f"decommission failed: {what}; the node is NORMAL again, run decommission again to retry"))]
