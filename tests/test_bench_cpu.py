"""bench.harness.cpu_seconds counts a process's children, live or waited for: a node's flush worker
(engine/flush_worker.py) does the node's work in a child, and node CPU per operation must include it."""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

from bench.harness import CLK_TCK, cpu_seconds

BUSY = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.6:\n    pass\nprint('done', flush=True)\ninput()\n"


def own_only(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def test_a_live_child_started_by_another_thread_and_then_a_waited_one_are_counted():
    me = os.getpid()
    before = cpu_seconds(me) - own_only(me)
    started: list[subprocess.Popen] = []
    # started by a thread, as the flusher thread starts the worker: /proc lists it under that thread
    t = threading.Thread(target=lambda: started.append(subprocess.Popen(
        [sys.executable, "-c", BUSY], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)))
    t.start()
    t.join()
    child = started[0]
    try:
        assert child.stdout.readline().strip() == "done"   # it has burnt 0.6 s of CPU and waits
        time.sleep(0.05)
        live = cpu_seconds(me) - own_only(me) - before
        assert live >= 0.5, live
    finally:
        child.communicate("\n", timeout=30)  # exits; waited for: its time moves to cutime
    waited = cpu_seconds(me) - own_only(me) - before
    assert waited >= 0.5, waited
