"""Real processes: concurrent CAS clients (threads, the native client) on a 3-node cluster while one
node is killed with SIGKILL and restarted, another paused (SIGSTOP) and resumed (SIGCONT), then a
third cut off from the others (the nodes' internode drop rules, `nemesis_drop`) and healed; the
history is linearizable (the WGL checker).

The cluster runs with commitlog_sync=batch: a promise or an accept is acknowledged only once
fsynced, as Paxos needs across kill -9 (docs/lwt.md). Each client compare-and-sets one of three hot
keys from the value it last saw (insert if not exists / update if v = seen, unique values) or reads
it at SERIAL. A timeout or a lost connection is an unknown outcome, recorded as `info` (the client
then continues as a new process); Unavailable and refusals are `fail`. After the storm every key
gets a last SERIAL read.
"""
import random
import threading
import time

import pytest

from engine.errors import InvalidRequest
from ring.client import ConnectionLost, NoHostAvailable, OperationTimedOut
from ring.errors import OverloadedError, RequestTimeout, UnavailableError
from ring.verify.linearizability import check_linearizable
from ring.verify.history import History
from tools.cluster import LocalCluster

pytestmark = pytest.mark.slow

SETTINGS = {"gossip_interval_ms": 500, "phi_convict_threshold": 2.0, "num_tokens": 4, "commitlog_sync": "batch",
            "write_request_timeout_ms": 1000, "read_request_timeout_ms": 1000}
KEYS = ["a", "b", "c"]
CLIENTS = 4


class CasClient(threading.Thread):
    """One closed-loop client with its own connection; records into the shared history."""

    def __init__(self, cluster, index: int, history: History, lock: threading.Lock, stop: threading.Event):
        super().__init__(daemon=True)
        self.client = cluster.client(timeout_s=5)
        self.session = self.client.connect("ks")
        self.name_, self.rng = f"c{index}", random.Random(index)
        self.process, self.n = f"c{index}.0", 0
        self.history, self.lock, self.stop = history, lock, stop
        self.seen: dict[str, str | None] = {}
        self.outcomes = {"applied": 0, "not_applied": 0, "read": 0, "fail": 0, "info": 0}
        self.crashed: BaseException | None = None     # anything unexpected fails the test

    def _record(self, *args, **kw):
        with self.lock:
            return self.history.invoke(*args, **kw)

    def _complete(self, *args, **kw):
        with self.lock:
            self.history.complete(*args, **kw)

    def one(self) -> None:
        key = self.rng.choice(KEYS)
        self.n += 1
        if self.rng.random() < 0.35:
            handle = self._record(self.process, "read", key, None, "SERIAL")
            kind, new, expected = "read", None, None
        else:
            expected = self.seen.get(key)
            new = f"{self.name_}-{self.n}"
            handle = self._record(self.process, "cas", key, new, "SERIAL/QUORUM", expected=expected)
            kind = "cas"
        try:
            if kind == "read":
                row = self.session.get("kv", {"k": key}, consistency="SERIAL")
                self.seen[key] = row.get("v") if row else None
                self._complete(handle, "ok", self.seen[key])
                self.outcomes["read"] += 1
                return
            if expected is None:
                result = self.session.insert("kv", {"k": key, "v": new}, consistency="QUORUM", if_not_exists=True)
            else:
                result = self.session.update("kv", {"k": key}, {"v": new}, consistency="QUORUM", if_={"v": expected})
            if result["applied"]:
                self.seen[key] = new
                self._complete(handle, "ok")
                self.outcomes["applied"] += 1
            else:
                self.seen[key] = result.get("v")
                self._complete(handle, "ok", self.seen[key], as_read=True)
                self.outcomes["not_applied"] += 1
        except (UnavailableError, InvalidRequest, OverloadedError):
            self._complete(handle, "fail")
            self.outcomes["fail"] += 1
            time.sleep(0.05)
        except (RequestTimeout, OperationTimedOut, NoHostAvailable, ConnectionLost, ConnectionError):
            self._complete(handle, "info")
            self.outcomes["info"] += 1
            self.process = f"{self.name_}.{self.n}"
            time.sleep(0.05)

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                self.one()
        except BaseException as e:  # noqa: BLE001 - reported by the test, not lost in a thread
            self.crashed = e


def test_cas_clients_stay_linearizable_across_kill_9_pause_and_partition(tmp_path):
    started = time.monotonic()
    history, lock, stop = History(), threading.Lock(), threading.Event()
    with LocalCluster.create("lwt", n=3, root=str(tmp_path), settings=SETTINGS) as cluster:
        cluster.start(timeout_s=60)
        n1, n2, n3 = cluster.nodes
        admin_client = cluster.client(timeout_s=5)
        admin = admin_client.connect()
        admin.create_keyspace("ks", {"class": "SimpleStrategy", "replication_factor": 3})
        admin.create_table("kv", {"k": "text", "v": "text"}, primary_key="k", keyspace="ks")
        cluster.wait_until_converged(timeout_s=60)
        clients = [CasClient(cluster, i, history, lock, stop) for i in range(CLIENTS)]
        for c in clients:
            c.start()
        time.sleep(3)
        cluster.kill(n2)                                    # SIGKILL mid-run
        time.sleep(3)
        cluster.restart(n2)
        cluster.wait_for_up(n2)
        time.sleep(2)
        cluster.pause(n3)                                   # SIGSTOP: a node that stops answering mid-round
        time.sleep(3)
        cluster.resume(n3)
        cluster.wait_for_up(n3)
        time.sleep(1)
        admin.execute("nemesis_drop", endpoint=n1.endpoint, peers=[n2.endpoint, n3.endpoint])   # partition n1
        for other in (n2, n3):
            admin.execute("nemesis_drop", endpoint=other.endpoint, peers=[n1.endpoint])
        time.sleep(3)
        for node in (n1, n2, n3):                           # heal
            admin.execute("nemesis_drop", endpoint=node.endpoint, peers=[])
        time.sleep(2)
        stop.set()
        for c in clients:
            c.join(30)
            assert not c.is_alive() and c.crashed is None, repr(c.crashed)
            c.client.shutdown()
        cluster.wait_until_converged(timeout_s=60)
        session = admin_client.connect("ks")
        for key in KEYS:                                    # one last SERIAL read of every key
            handle = history.invoke(f"final-{key}", "read", key, None, "SERIAL")
            row = session.get("kv", {"k": key}, consistency="SERIAL")
            history.complete(handle, "ok", row.get("v") if row else None)
        admin_client.shutdown()

    totals = {k: sum(c.outcomes[k] for c in clients) for k in clients[0].outcomes}
    report = check_linearizable(history, max_steps=1_000_000)
    print(f"{len(history)} ops {totals}; checker {report.stats}; {time.monotonic() - started:.1f} s")
    assert report.ok, str(report)
    assert report.stats["unknown"] == 0, report.stats
    assert totals["applied"] >= 20 and totals["read"] >= 10, totals       # not a vacuous pass
    assert time.monotonic() - started < 120
