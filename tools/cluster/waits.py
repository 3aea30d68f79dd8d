"""What a local cluster can wait for: convergence, a node Down or Up, a joining node NORMAL.

A mixin of `LocalCluster` (it uses `node`, `running`, `ask`, `_try_status` and `_note`). Every
wait polls the nodes' own answers to the `status` and `netstats` ops with a short timeout (a
paused node must not stall a wait), reports what it still waits for through `progress` when
that changes, fails fast with the end of its log when a node it started exits, and raises
TimeoutError naming what was missing. Deciding what is missing is pure (`missing_in_view`,
`joining_note`); the loops only ask and sleep.
"""
from __future__ import annotations

import socket
import time
from collections.abc import Iterable

from ring.runtime.frames import split_endpoint
from tools.cluster.layout import ClusterError
from tools.cluster.processes import NodeHandle


def missing_in_view(observer: str, rows: list[dict], want: set[str], name_of) -> str:
    """"" when an observer's `status` rows show every endpoint in `want` Up and NORMAL; else what
    is still missing."""
    by_ep = {r["endpoint"]: r for r in rows}
    for ep in want:
        r = by_ep.get(ep)
        if r is None or not r.get("up") or r.get("state") != "NORMAL":
            return f"{observer} to see {name_of(ep)} Up and NORMAL"
    return ""


def accepts_connections(endpoint: str) -> bool:
    """Whether "host:port" ("[v6]:port") accepts a TCP connection within a second."""
    try:
        socket.create_connection(split_endpoint(endpoint), timeout=1.0).close()
    except OSError:
        return False
    return True


def joining_note(stats: dict | None) -> str:
    """What a joining node is doing, from its `netstats` answer (None: not answering yet)."""
    if stats is None:
        return "starting"
    for op in stats.get("operations", []):
        if op.get("operation") == "bootstrap":
            if op.get("phase") == "streaming":
                return (f"streaming: {op.get('ranges_done', 0)}/{op.get('ranges', 0)} ranges, "
                        f"{op.get('partitions', 0)} partitions")
            if op.get("error"):
                return f"{op['phase']} (retrying after: {op['error']})"
            return {"wait_ring": "learning the ring and the schema",
                    "announced": "announced as joining; waiting for the ring to settle"}.get(op["phase"], op["phase"])
    return stats.get("mode", "?")


class ClusterWaits:
    def wait_until(self, predicate, timeout_s: float = 60, interval_s: float = 0.25, what: str = "") -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            if predicate():
                return
            if time.monotonic() >= deadline:
                raise TimeoutError(f"timed out after {timeout_s:g} s waiting for {what or 'a condition'}")
            time.sleep(interval_s)

    def _check_alive(self, nodes: Iterable[NodeHandle]) -> None:
        for nh in nodes:
            if not nh.is_running():
                nh.forget()
                raise ClusterError(f"{nh.name} exited; the end of {nh.log_path}:\n{nh.log_tail()}")

    def _converged(self, started: Iterable[NodeHandle] = ()) -> tuple[bool, str]:
        """Every running (not paused) node answers and sees exactly those nodes Up and NORMAL,
        all with one schema version, and accepts CQL connections (a restarted node opens its CQL
        port once gossip settled). Returns (done, what is still missing)."""
        self._check_alive(started)
        live = [nh for nh in self.running() if not nh.is_paused()]
        want = {nh.endpoint for nh in live}
        versions = set()
        for nh in live:
            rows = self._try_status(nh)
            if rows is None:
                return False, f"{nh.name} to answer"
            missing = missing_in_view(nh.name, rows, want, self._name_of)
            if missing:
                return False, missing
            by_ep = {r["endpoint"]: r for r in rows}
            versions.update(by_ep[ep].get("schema") for ep in want)
        if len(versions) > 1:
            return False, "schema agreement"
        for nh in live:
            if nh.cql_endpoint and not accepts_connections(nh.cql_endpoint):
                return False, f"{nh.name}'s CQL port {nh.cql_endpoint}"
        return True, ""

    def wait_until_converged(self, timeout_s: float = 60, started: Iterable[NodeHandle] = ()) -> None:
        started = list(started)
        deadline = time.monotonic() + timeout_s
        last = None
        while True:
            done, missing = self._converged(started)
            if done:
                self._note("every node is Up and NORMAL with one schema version")
                return
            if missing != last:
                self._note(f"waiting for {missing}")
                last = missing
            if time.monotonic() >= deadline:
                raise TimeoutError(f"cluster {self.name} did not converge within {timeout_s:g} s: still waiting "
                                   f"for {missing}; see the node logs under {self.path}")
            time.sleep(0.2)

    def wait_for_down(self, node, observer=None, timeout_s: float = 60) -> None:
        nh = self.node(node)
        if observer is None:
            observers = [o for o in self.running() if o is not nh and not o.is_paused()]
        else:
            observers = self._select(observer)

        def down_everywhere() -> bool:
            for o in observers:
                rows = self._try_status(o)
                if rows is None:
                    return False
                row = next((r for r in rows if r["endpoint"] == nh.endpoint), None)
                if row is not None and row.get("up"):
                    return False
            return True

        self.wait_until(down_everywhere, timeout_s, what=f"{', '.join(o.name for o in observers)} "
                                                         f"to see {nh.name} Down")

    def wait_for_up(self, node, timeout_s: float = 60) -> None:
        """Until the node answers and every running node sees every running node Up (so the
        restarted node coordinates at ALL too)."""
        nh = self.node(node)
        if not nh.is_running():
            raise ClusterError(f"{nh.name} is not running; start it with `dynatable cluster start {nh.name}`")
        self.wait_until_converged(timeout_s, started=[nh])

    def wait_until_joined(self, node, timeout_s: float = 900) -> None:
        """Until the node is NORMAL (its bootstrap streamed everything) and the ring is whole."""
        nh = self.node(node)
        deadline = time.monotonic() + timeout_s
        last = None
        while True:
            self._check_alive([nh])
            try:
                stats = self.ask(nh, "netstats", timeout_s=5.0)
            except Exception:  # noqa: BLE001 - still starting
                stats = None
            if stats is not None and stats.get("mode") == "NORMAL":
                break
            note = joining_note(stats)
            if note != last:
                self._note(f"{nh.name}: {note}")
                last = note
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{nh.name} did not finish joining within {timeout_s:g} s ({note}); "
                                   f"see {nh.log_path}")
            time.sleep(0.25)
        self.wait_until_converged(max(10.0, deadline - time.monotonic()), started=[nh])
