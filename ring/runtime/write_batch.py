"""One flush of every connection's queued output per pass of the event loop, held one loop iteration.

The listener's client and peer connections (`ClientConnection`) and the outbound peer links
(`PeerLink`) queue the frames they produce and ask this batch for a flush. The first request in an
iteration arms it: the flush runs *after the next iteration's I/O callbacks* (a `call_soon` that
schedules a `call_soon`), so the replies to what arrived in two consecutive iterations leave in one
`send()` per connection. On loopback TCP each send() carries the kernel's whole delivery path and
wakes the receiver, so at peak load this halves the node's sends and the wake-ups it causes; an
idle loop pays two empty iterations (microseconds) of latency.

Invariants: a connection is in the batch at most once (it asks only when its queue turns non-empty);
flushes run in the order asked; a connection that closes flushes itself and its pending flush
finds nothing to write. No timers: the hold is counted in loop iterations, not in time.
"""
from __future__ import annotations

import asyncio
import logging

log = logging.getLogger("dynatable.runtime")


class WriteBatch:
    """Process-wide: `want(flush)` runs `flush()` once, after one more loop iteration's I/O."""

    __slots__ = ("_loop", "_pending", "_armed", "hold", "flushes", "passes")

    def __init__(self, hold: bool = True):
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending: list = []
        self._armed = False
        self.hold = hold            # False: flush at the start of the next iteration (no hold)
        self.flushes = 0            # flush callbacks run
        self.passes = 0             # batch runs (flushes / passes = connections written per pass)

    def want(self, flush) -> None:
        self._pending.append(flush)
        if not self._armed:
            self._armed = True
            loop = self._loop
            if loop is None:
                # once: asyncio.get_running_loop() costs a getpid() system call on Python 3.11
                loop = self._loop = asyncio.get_running_loop()
            loop.call_soon(self._hop if self.hold else self._run)

    def _hop(self) -> None:
        self._loop.call_soon(self._run)     # behind the I/O callbacks of this iteration

    def _run(self) -> None:
        self._armed = False
        pending, self._pending = self._pending, []
        self.passes += 1
        self.flushes += len(pending)
        for flush in pending:
            try:
                flush()
            except Exception:           # one broken connection must not keep the others' output
                log.exception("flush failed")

    def metrics(self) -> dict[str, int]:
        return {"write_batch_passes": self.passes, "write_batch_flushes": self.flushes}
