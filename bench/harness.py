"""What the cluster benchmarks share: a temporary local cluster, node CPU time, a stress run, a table.

- `temp_cluster(n, ...)`: a `LocalCluster` of n node processes in a temporary root, started
  (every node sees every node Up), always removed on the way out (also on Ctrl-C or an error);
- `cpu_seconds(pid)`: utime + stime of a process and of its children (a node's flush worker,
  engine/flush_worker.py), live or waited for, from /proc;
- `stress(argv, cluster)`: one `dynatable stress` run (the same code as the CLI, in this process)
  against the cluster; returns its phase reports (tools/stress/report.py);
- `print_table(rows)`: plain aligned columns, first row the header.
"""
from __future__ import annotations

import asyncio
import contextlib
import os
import platform
import shutil
import sys
import tempfile

CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """CPU seconds of a process and its children: its utime + stime and cutime + cstime (children
    it waited for; fields 14-17 of /proc/<pid>/stat), plus the utime + stime of each live child (a
    node's flush worker does a node's work in another process). A child that exits between the
    listing and the reading is skipped: its time reaches cutime once the parent waits for it."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    total = int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])
    for child in _children(pid):
        try:
            with open(f"/proc/{child}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        total += int(fields[11]) + int(fields[12])
    return total / CLK_TCK


def _children(pid: int) -> list[int]:
    """The live children of a process, whichever of its threads started them."""
    out = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except FileNotFoundError:
        return out
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out.extend(int(c) for c in f.read().split())
        except (FileNotFoundError, ProcessLookupError):
            continue
    return out


def machine() -> dict:
    return {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
            "loadavg": os.getloadavg()}


@contextlib.contextmanager
def temp_cluster(n: int, *, name: str = "bench", settings: dict | None = None, root: str | None = None,
                 timeout_s: float = 120):
    from tools.cluster import LocalCluster
    where = tempfile.mkdtemp(prefix="dynatable-bench-", dir=root)
    cluster = None
    try:
        cluster = LocalCluster.create(name, n=n, root=where, settings=settings or {})
        cluster.start(timeout_s=timeout_s)
        yield cluster
    finally:
        if cluster is not None:
            try:
                cluster.remove()
            except Exception as e:  # noqa: BLE001 - report, keep cleaning up
                print(f"cluster.remove() failed: {e}", file=sys.stderr)
        shutil.rmtree(where, ignore_errors=True)


def stress(argv: list[str], cluster, *, quiet: bool = False, on_row=None) -> list[dict]:
    """Run `dynatable stress ARGV` against `cluster` in this process; its phase reports."""
    from tools.stress.command import run_phases
    from tools.stress.settings import parse
    s = parse(argv + (["--quiet"] if quiet else []))
    lines = []

    def emit(line: str) -> None:
        lines.append(line)
        if not quiet or not line.startswith(" "):
            print(line, flush=True)
    return asyncio.run(run_phases(s, cluster.contact_points(), cluster.setting("cluster_name", cluster.name),
                                  cluster.setting("cluster_secret", ""), emit, on_row=on_row))


def print_table(rows: list[list[str]]) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for n, r in enumerate(rows):
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
        if n == 0:
            print("  ".join("-" * w for w in widths))
