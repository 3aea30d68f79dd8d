"""The shared half of decommission and removenode: ask every endpoint that gains a range to fetch
it (FetchRanges), and wait for all of them (FetchRangesDone).

Rule: a lost request or answer costs one resend interval (`range_request_timeout_ms`), not the
operation: a gainer re-attaches to its fetch or answers from memory (ring/streaming.py
`Fetches`). A gainer going down, an error, or the deadline fails the operation; subclasses say
what failing means for them.
"""
from __future__ import annotations

from ring.errors import RequestError
from ring.messages import FetchRanges, FetchRangesDone, Send


class TopologyChangeFailed(RequestError):
    """A bootstrap, decommission or removenode could not complete; the message says what to do."""

    retryable = False


class Relocation:
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
