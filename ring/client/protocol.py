"""The client protocol, sans-IO: what to send where, what an answer means, when to try elsewhere.

`ClientCore` is the one core under both drivers (sync.py, aio.py). Each of its flows (`call`,
`ask`, `refresh`, `agree_on_schema`) is a generator of effects: it yields
`Send(endpoint, ClientRequest)` and gets back the node's `ClientResponse`, or has the driver's
transport failure (`ConnectionRefused`, `ConnectionLost`, `OperationTimedOut`) thrown into it;
it yields `Pause(seconds)` to be resumed later; its return value is the call's result. The core
never touches sockets, threads, the event loop, sleep or the real clock: the clock is injected
(the drivers pass `time.monotonic`) and the rng is seeded.

Rules (the Python driver's): request ids count up from 1 per client (0 is the node's "whole
connection" answer). Reads and describe calls (READ_OPS) move to the next node of the query plan
after any transport failure; writes move on only if the request was never sent (the connection
could not be made), never after a timeout or a lost connection: a write's fate is then unknown.
An error answer from a node is raised as the exception class the node raised, never retried.
Metadata is refreshed before a call when it is REFRESH_INTERVAL_S old or a failure made it stale,
and after every schema change the client waits (up to SCHEMA_AGREEMENT_WAIT_S) until every Up node
answers the same schema version. Frames and error dicts: docs/format.md (wire).
"""
from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Generator
from dataclasses import dataclass

from engine.errors import InvalidRequest
from ring.client.metadata import ClusterMetadata, normalize_endpoint
from ring.errors import RequestError, RequestTimeout
from ring.messages import ClientRequest, ClientResponse, decode, encode
from ring.runtime.frames import MAX_FRAME_BYTES, ConnectorHandshake, FrameDecoder, encode_frame, error_from_wire

REFRESH_INTERVAL_S = 5.0   # ring and Up/Down view; nodes push no events, so poll often
HANDSHAKE_TIMEOUT_S = 10.0
SCHEMA_AGREEMENT_WAIT_S = 10.0   # the Python driver's max_schema_agreement_wait
SCHEMA_AGREEMENT_POLL_S = 0.2
READ_OPS = frozenset({"get", "select", "scan", "describe_ring", "describe_schema", "status", "info",
                      "tablestats", "getendpoints", "index_query"})
SCHEMA_OPS = frozenset({"create_keyspace", "create_table", "drop_table", "drop_keyspace", "create_index",
                        "drop_index"})


# -- errors --------------------------------------------------------------------------------------

class NoHostAvailable(RequestError):
    """No node could be asked (or, for reads, none answered). `errors` maps endpoint -> error."""

    retryable = True

    def __init__(self, errors: dict[str, BaseException]):
        self.errors = dict(errors)
        detail = "; ".join(f"{ep}: {e}" for ep, e in self.errors.items()) or "no nodes known"
        super().__init__(f"no host available ({detail})")


class OperationTimedOut(RequestTimeout):
    """The client gave up waiting for the coordinator. A write may or may not be applied."""

    def __init__(self, endpoint: str, timeout_s: float):
        self.endpoint = endpoint
        super().__init__(f"no answer from {endpoint} within {timeout_s:g} s; a write may or may not be "
                         "applied; retry only if it is idempotent")


class ConnectionLost(RequestError):
    """The connection broke after the request was sent; its fate is unknown."""


class ConnectionRefused(RequestError):
    """The connection could not be made: the request was never sent (safe to try elsewhere)."""


TRANSPORT_ERRORS = (ConnectionRefused, ConnectionLost, OperationTimedOut)   # what drivers throw into a flow
UNREACHABLE = (NoHostAvailable, *TRANSPORT_ERRORS)


def may_try_next(op: str, exc: BaseException) -> bool:
    """After a failed attempt: is trying another node safe?"""
    if isinstance(exc, ConnectionRefused):
        return True  # never sent
    return op in READ_OPS and isinstance(exc, (ConnectionLost, OperationTimedOut))


def answer_of(response: ClientResponse):
    """The result of a node's answer, or its error raised as the class the node raised."""
    if response.error is not None:
        raise error_from_wire(response.error)
    return response.result


# -- frames --------------------------------------------------------------------------------------

def encode_request(request: ClientRequest, max_frame_bytes: int = MAX_FRAME_BYTES) -> bytes:
    """One request as the bytes of one frame. A payload over `max_frame_bytes` (which the node
    would refuse, closing the connection) raises InvalidRequest naming the limit: nothing is sent."""
    payload = encode(request)
    if len(payload) > max_frame_bytes:
        raise InvalidRequest(
            f"Request is too big: {request.op} of {len(payload)} bytes exceeds max_frame_bytes="
            f"{max_frame_bytes} ({max_frame_bytes / 2**20:g} MiB); nothing was sent. Split the value, "
            "or raise max_frame_bytes on the nodes and in Cluster(max_frame_bytes=...)")
    return encode_frame(payload)


class ReplyReader:
    """A node's bytes in, its answers out: `feed()` what the transport read, then `next_reply()`
    until it returns None (more bytes needed). Frames that are not a ClientResponse are skipped;
    a bad frame raises ProtocolError (then the reader stays failed)."""

    def __init__(self, max_frame_bytes: int = MAX_FRAME_BYTES):
        self.frames = FrameDecoder(max_frame_bytes)

    def feed(self, data: bytes) -> None:
        self.frames.feed(data)

    def next_payload(self) -> bytes | None:
        """The next whole frame payload (for the handshake, which is not ClientResponses)."""
        return self.frames.next_payload()

    def next_reply(self) -> ClientResponse | None:
        while (payload := self.frames.next_payload()) is not None:
            message = decode(payload)
            if isinstance(message, ClientResponse):
                return message
        return None


def refusal_of(response: ClientResponse) -> Exception | None:
    """The node's error if `response` refuses the whole connection (an error answer with id 0,
    after which the node closes it), else None."""
    return error_from_wire(response.error) if response.id == 0 and response.error else None


# -- the core ------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Send:
    """Send `request` to `endpoint`; resume with its ClientResponse or throw the transport failure."""

    endpoint: str
    request: ClientRequest


@dataclass(frozen=True, slots=True)
class Pause:
    """Resume the flow (with None) after `seconds`."""

    seconds: float


Flow = Generator[Send | Pause, ClientResponse | None, object]


class ClientCore:
    """What both drivers share: the metadata, request ids, query plans and the request flows."""

    def __init__(self, contact_points: list[str], *, clock: Callable[[], float], cluster_secret: str = "",
                 timeout_s: float = 12.0, cluster_name: str = "dynatable", local_dc: str | None = None,
                 max_frame_bytes: int = MAX_FRAME_BYTES, seed: int | None = None):
        if not contact_points:
            raise InvalidRequest("Cluster needs at least one contact point, e.g. ['127.0.0.1:9100']")
        self.metadata = ClusterMetadata(contact_points)
        self.clock = clock
        self.cluster_secret = cluster_secret
        self.timeout_s = timeout_s
        self.cluster_name = cluster_name
        self.local_dc = local_dc
        self.max_frame_bytes = max_frame_bytes
        self._rng = random.Random(seed)
        self._ids = itertools.count(1)

    def handshake(self) -> ConnectorHandshake:
        return ConnectorHandshake("client", "", self.cluster_name, self.cluster_secret)

    def plan(self, op: str, args: dict) -> tuple[list[str], dict]:
        """(endpoints to try, args to send): `endpoint=` in args pins the request to one node."""
        if "endpoint" in args:  # an explicit pin wins over token-aware routing, for every op
            args = dict(args)
            return [normalize_endpoint(args.pop("endpoint"))], args
        return self.metadata.query_plan(op, args, self._rng, self.local_dc), args

    def call(self, op: str, args: dict) -> Flow:
        """One client call: refresh the metadata if due, ask, then await schema agreement after DDL."""
        if self.clock() - self.metadata.refreshed_at > REFRESH_INTERVAL_S:
            yield from self.refresh()
        result = yield from self.ask(op, args)
        if op in SCHEMA_OPS:
            yield from self.agree_on_schema()
        return result

    def ask(self, op: str, args: dict) -> Flow:
        """`op` sent along the query plan until a node answers or the retry rules say stop."""
        plan, args = self.plan(op, args)
        errors: dict[str, BaseException] = {}
        for ep in plan:
            try:
                response = yield Send(ep, ClientRequest(next(self._ids), op, args))
            except TRANSPORT_ERRORS as e:
                self.metadata.refreshed_at = float("-inf")  # the ring view may be stale: refresh next call
                if not may_try_next(op, e):
                    raise
                errors[ep] = e
                continue
            return answer_of(response)
        raise NoHostAvailable(errors)

    def refresh(self) -> Flow:
        """Ask for the ring, then the schema; apply both."""
        ring_answer = yield from self.ask("describe_ring", {})
        schema_answer = yield from self.ask("describe_schema", {})
        self.metadata.update_ring(ring_answer)
        self.metadata.update_schema(schema_answer)
        self.metadata.refreshed_at = self.clock()

    def agree_on_schema(self, timeout_s: float = SCHEMA_AGREEMENT_WAIT_S) -> Flow:
        """After a schema change (done by every DDL call): until every node this client sees Up
        answers the same schema version, as drivers do (the change reaches the other nodes by push
        and gossip, so the next request may go through a node that has not heard of it). False if
        they did not agree within `timeout_s`. The metadata is refreshed after the last check, so
        it holds the change even if an earlier refresh read a node that had not heard of it."""
        deadline = self.clock() + timeout_s
        while True:
            yield from self.refresh()  # the ring, so that a node added meanwhile is asked too
            versions = set()
            for ep in self.metadata.live_endpoints():
                try:
                    versions.add((yield from self.ask("describe_schema", {"endpoint": ep})).get("version"))
                except UNREACHABLE:
                    continue  # down but not convicted yet: it catches up by gossip when back
                except RequestError:
                    versions.add(None)  # answering with an error: ask again
            if len(versions) <= 1 or self.clock() > deadline:
                yield from self.refresh()
                return len(versions) <= 1
            yield Pause(SCHEMA_AGREEMENT_POLL_S)
