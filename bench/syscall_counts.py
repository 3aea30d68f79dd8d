"""`--count-syscalls` probes of bench/cluster_quorum.py: per phase, each node's peer-link counters
from its Prometheus endpoint, and `strace -c -f` attached to one node process for the window.

Contract: `scrape_counters` reads the counters named in COUNTERS (0.0 where a node does not export
one); `start_strace` returns None where strace is not installed, and `stop_strace` then returns {}.
"""
from __future__ import annotations

import re
import shutil
import signal
import subprocess
import urllib.request

COUNTERS = ("peer_frames_sent", "peer_writes", "peer_frames_received", "peer_reads", "messages_received")


def scrape_counters(metrics_urls: list[str]) -> list[dict[str, float]]:
    """Each node's runtime counters from its Prometheus endpoint (snapshotted once a second)."""
    out = []
    for url in metrics_urls:
        with urllib.request.urlopen(url, timeout=5) as r:
            text = r.read().decode()
        values = {}
        for name in COUNTERS:
            m = re.search(rf"^dynatable_{name} ([0-9.e+]+)$", text, re.M)
            values[name] = float(m.group(1)) if m else 0.0
        out.append(values)
    return out


def start_strace(pid: int, path: str):
    if shutil.which("strace") is None:
        return None
    return subprocess.Popen(["strace", "-c", "-f", "-o", path, "-p", str(pid)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop_strace(proc, path: str, ops: int) -> dict:
    """strace -c's table for the window as {syscall: calls per operation}."""
    if proc is None:
        return {}
    proc.send_signal(signal.SIGINT)
    proc.wait(30)
    calls = {}
    with open(path) as f:
        for line in f:
            cols = line.split()
            if len(cols) >= 5 and cols[0].replace(".", "", 1).isdigit() and cols[-1] != "total":
                calls[cols[-1]] = int(cols[3])
    return {name: n / ops for name, n in sorted(calls.items(), key=lambda kv: -kv[1])} if ops else {}
