"""Drives ring.cql.execute through a `Simulation`: CQL text in, decoded rows out (test helper).

`CqlSim(sim).run("n1", query, ...)` runs one statement on node n1 as coordinator: every
ClientRequest the Execution yields goes through `Simulation.submit`, every Reply goes back, all in
virtual time. It returns the response (a RESULT or an ERROR); `rows()` decodes Rows values with
their metadata types, as a driver would.
"""
from __future__ import annotations

import itertools

from ring.cql.execute import CqlSession, Execution, prepare_result
from ring.cql.notation import Consistency
from ring.cql.prepare import PreparedCache
from ring.cql.requests import Batch, BatchStatement, BatchType, QueryParameters
from ring.cql.responses import Error
from ring.cql.result import Rows
from ring.cql.types import deserialize, serialize
from ring.messages import Reply


class CqlSim:
    def __init__(self, sim):
        self.sim = sim
        self.caches = {name: PreparedCache() for name in sim.nodes}
        self.sessions = {}
        self.ids = itertools.count(1).__next__
        self.events = []

    def session(self, node: str, connection: int = 0) -> CqlSession:
        key = (node, connection)
        if key not in self.sessions:
            self.sessions[key] = CqlSession(self.caches[node])
        return self.sessions[key]

    def drive(self, node: str, ex: Execution):
        pending = ex.start()
        while pending:
            submitted = [(req.id, self.sim.submit(node, req.op, **req.args)) for req in pending]
            pending = []
            for own, rid in submitted:
                reply = self.sim.wait(rid)
                pending += ex.on_reply(Reply(own, reply.result, reply.error))
        assert ex.done
        self.events += ex.events
        return ex.response

    def params(self, consistency="ONE", values=(), page_size=None, paging_state=None, timestamp=None,
               names=None, skip_metadata=False, serial=None):
        return QueryParameters(Consistency[consistency], tuple(values), names, skip_metadata, page_size, paging_state,
                               Consistency[serial] if serial else None, timestamp, None, None, bool(values))

    def run(self, node: str, query: str, connection: int = 0, **kw):
        sn = self.sim.nodes[node]
        return self.drive(node, Execution.query(sn.node, self.session(node, connection), query, self.params(**kw),
                                                self.ids))

    def prepare(self, node: str, query: str, connection: int = 0):
        return prepare_result(self.sim.nodes[node].node, self.session(node, connection), query)

    def execute(self, node: str, query_id: bytes, connection: int = 0, **kw):
        sn = self.sim.nodes[node]
        return self.drive(node, Execution.execute(sn.node, self.session(node, connection), query_id,
                                                  self.params(**kw), self.ids))

    def batch(self, node: str, statements, consistency="ONE", logged=False, timestamp=None):
        """statements: [(query or prepared id, [encoded values])]."""
        b = Batch(stream=0, batch_type=BatchType.LOGGED if logged else BatchType.UNLOGGED,
                  statements=tuple(BatchStatement(q, tuple(v)) for q, v in statements),
                  consistency=Consistency[consistency], timestamp=timestamp)
        sn = self.sim.nodes[node]
        return self.drive(node, Execution.batch(sn.node, self.session(node), b, self.ids))

    def rows(self, node: str, query: str, **kw) -> list[tuple]:
        return decode(self.ok(node, query, **kw))

    def ok(self, node: str, query: str, **kw):
        response = self.run(node, query, **kw)
        if isinstance(response, Error):
            raise AssertionError(f"{query!r} -> {response.code.name}: {response.message}")
        return response

    def agree(self, timeout_ms: int = 20_000) -> None:
        """Run until every live node has one schema version."""
        assert self.sim.run_until(self.sim.now_ms + timeout_ms, stop=self.sim.converged), "no schema agreement"


def decode(response: Rows) -> list[tuple]:
    assert isinstance(response, Rows), response
    types = [c.type for c in response.metadata.columns]
    return [tuple(deserialize(t, cell) for t, cell in zip(types, row)) for row in response.rows]


def encode(t, value):
    return None if value is None else serialize(t, value)
