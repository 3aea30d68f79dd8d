"""RemoveNode (nodetool removenode HOST_ID, for a dead node) as a state machine the node ticks.

Rule: announce the dead node as `removing` (under a newer generation, as Cassandra's
advertiseRemoving), wait `ring_delay_ms`, ask every gainer to fetch its new ranges from the
live replicas, then announce it `removed`, drop its hints, and answer once `removed` has had
ring_delay to spread. A failure leaves it `removing`: run removenode again to resume.
"""
from __future__ import annotations

import logging

from engine.errors import InvalidRequest
from ring import membership as ms
from ring.messages import Reply
from ring.operations.plan import plans_by_target, user_tables
from ring.operations.relocation import Relocation, TopologyChangeFailed
from ring.placement.pending import replication_shortfall

log = logging.getLogger("dynatable.topology")


class RemoveNode(Relocation):
    def __init__(self, ctx, request_id: int, host_id: str, deadline_ms: int):
        super().__init__(ctx, request_id, deadline_ms)
        self.operation = f"removenode:{host_id}"
        self.host_id = host_id
        found = [ep for ep in ctx.known_endpoints() if ctx.host_id_of(ep) == host_id]
        if not found:
            raise InvalidRequest(f"Host ID not found: {host_id} (nodetool status lists the host ids)")
        self.target = ep = found[0]
        if ep == ctx.endpoint:
            raise InvalidRequest("Cannot remove self; use nodetool decommission on this node instead")
        if ctx.is_alive(ep):
            raise InvalidRequest(f"Node {ep} is alive and owns this ID. Use decommission command to remove "
                                 f"it from the ring")
        status = ms.parse_status(ctx.app_state(ep, ms.ApplicationState.STATUS) or "")[0]
        if status not in (ms.Status.NORMAL, ms.Status.REMOVING):
            raise InvalidRequest(f"Node {ep} is {status or 'not in the ring'}; only a NORMAL node can be removed")
        ctx.refresh_ring()
        future = ctx.topology.future.without_endpoint(ep)
        for strategy, table in user_tables(ctx):
            why = replication_shortfall(strategy, future, ctx.snitch)
            if why:
                raise InvalidRequest(f"Not enough nodes to re-replicate keyspace {table.keyspace} without "
                                     f"{ep} ({why}); add a node first")
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
