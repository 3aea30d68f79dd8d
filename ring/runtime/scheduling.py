"""How a node process shares the CPU and the GIL between its event loop and its background threads.

The event loop serves every request; the store's flusher and compactor threads
(engine/background.py) are CPU-bound Python for seconds at a time (a 64 MiB memtable is seconds
of flush). Applied once the store is open (`apply`):

- `gil_switch_interval_ms` (node setting): `sys.setswitchinterval`. A thread that wants the GIL
  waits this long before it asks the holder to drop it, so with a flush running each wake-up of
  the loop (a socket became readable) waits up to this long before it runs; Python's is 5 ms;
- `background_nice` (bench/flush_wake.py only, not a node setting: measured, it did not pay): the
  OS niceness of the flush and compaction threads (Linux schedules threads, `setpriority` on
  their native ids; 0 = as the process), as Cassandra lowers its compaction threads' priority.

Invariant: neither changes what the node computes, only when its threads run. Thread ids of
threads started later (an index build) are not touched.
"""
from __future__ import annotations

import logging
import os
import sys
import threading

log = logging.getLogger("dynatable.runtime")

BACKGROUND_PREFIXES = ("dynatable-flush", "dynatable-compact")


def background_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith(BACKGROUND_PREFIXES) and t.native_id]


def apply(switch_interval_ms: float, background_nice: int = 0) -> dict:
    """Set the switch interval and the background threads' niceness; returns what was set."""
    sys.setswitchinterval(switch_interval_ms / 1000)
    niced = []
    if background_nice and hasattr(os, "setpriority"):
        for t in background_threads():
            try:
                os.setpriority(os.PRIO_PROCESS, t.native_id, background_nice)
                niced.append(t.name)
            except OSError as e:
                log.warning("could not set the niceness of thread %s to %d: %r", t.name, background_nice, e)
    return {"switch_interval_ms": sys.getswitchinterval() * 1000, "niced": niced}
