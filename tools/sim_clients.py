"""Client threads for the real-process nemesis runs, and the QUORUM view of a mixed-level history.

`Clients` drives closed-loop client threads (one request in flight each; unique values per write;
three keys) through their own connections and records one `History` under a lock, so its logical
times respect real-time order across threads. As Jepsen records them, a timeout or a lost
connection or a replica failure is `info` (the operation may apply later or never) and retires the client process;
Unavailable, invalid and overloaded are `fail`. Used by tests/sim/test_nemesis_concurrent.py
(processes on 127.0.0.N) and tests/sim/netns_client.py (processes on network namespaces).

`quorum_view` keeps what a QUORUM/QUORUM checker may judge in a history that mixes QUORUM and ONE:
the QUORUM operations, each ONE write as an `info` write (it may be seen, it is never required to
be), and no ONE read.
"""
from __future__ import annotations

import dataclasses
import random
import threading
import time

from engine.errors import InvalidRequest
from ring.client import ConnectionLost, NoHostAvailable, OperationTimedOut
from ring.errors import OverloadedError, ReadFailure, RequestTimeout, UnavailableError, WriteFailure
from ring.verify.history import History

KEYS = ["a", "b", "c"]
CLIENTS = {"q1": "QUORUM", "q2": "QUORUM", "o1": "ONE", "o2": "ONE"}


class Clients:
    """The client threads and the history they share."""

    def __init__(self, connect, seed: int):
        self.connect = connect          # () -> a ring.client.Cluster
        self.history = History()
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.seed = seed
        self.outcomes = {"ok": 0, "fail": 0, "info": 0}
        self.seq = 0
        self.errors: list[BaseException] = []

    def _next(self) -> int:
        with self.lock:
            self.seq += 1
            return self.seq

    def run(self, name: str, level: str) -> None:
        """One client thread's loop, until `stop` is set (an exception lands in `errors`)."""
        rng = random.Random(f"{self.seed}:{name}")
        client = self.connect()
        try:
            session = client.connect("ks")
            process = f"{name}.0"
            while not self.stop.is_set():
                key = rng.choice(KEYS)
                kind = "write" if rng.random() < 0.5 else "read"
                value = f"{name}-{self._next()}" if kind == "write" else None
                with self.lock:
                    handle = self.history.invoke(process, kind, key, value, level)
                try:
                    if kind == "write":
                        ts = session.insert("kv", {"k": key, "v": value}, consistency=level)
                        result = ("ok", None, ts["timestamp"] if isinstance(ts, dict) else ts)
                    else:
                        row = session.get("kv", {"k": key}, writetime=True, consistency=level)
                        v = row.get("v") if row else None
                        result = ("ok", v, row.get("writetime(v)") if v is not None else None)
                except (UnavailableError, InvalidRequest, OverloadedError):
                    result = ("fail", None, None)
                except (RequestTimeout, OperationTimedOut, NoHostAvailable, ConnectionLost, ConnectionError,
                        ReadFailure, WriteFailure):   # a replica failed: the write may have applied elsewhere
                    result = ("info", None, None)
                with self.lock:
                    self.history.complete(handle, *result)
                    self.outcomes[result[0]] += 1
                if result[0] == "info":
                    process = f"{name}.{self._next()}"   # Knossos: a process that timed out never returns
                    time.sleep(0.05)
        except BaseException as exc:  # noqa: BLE001 - reported by the test, never swallowed
            self.errors.append(exc)
        finally:
            client.shutdown()


def start(clients: Clients, levels: dict[str, str] = CLIENTS) -> list[threading.Thread]:
    threads = [threading.Thread(target=clients.run, args=(name, level), daemon=True) for name, level in levels.items()]
    for t in threads:
        t.start()
    return threads


def stop(clients: Clients, threads: list[threading.Thread]) -> None:
    clients.stop.set()
    for t in threads:
        t.join(timeout=30)


def quorum_view(history: History) -> History:
    """QUORUM ops; a ONE write becomes info (may be seen, never required); ONE reads dropped."""
    ops = []
    for op in history.ops:
        if op.level == "QUORUM":
            ops.append(op)
        elif op.is_write and op.outcome != "fail":
            ops.append(dataclasses.replace(op, outcome="info", ret=None))
    return History.from_ops(ops)
