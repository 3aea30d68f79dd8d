"""The client side of tests/sim/test_netns.py, run inside the lab's client network namespace.

`python tests/sim/netns_client.py WORKDIR HOST:PORT...`: creates the schema, writes WORKDIR/ready,
runs the client threads of tools/sim_clients.py until WORKDIR/stop exists, waits for
WORKDIR/healed, repairs every node, reads every key on every node at ONE, and writes
WORKDIR/result.json (the history as JSON lines, the replicas' cells, the outcome counts).
"""
import json
import os
import sys
import time

from ring.client import Cluster
from tools.sim_clients import KEYS, Clients, start, stop


def _wait_for(path: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} did not appear within {timeout_s:g} s")
        time.sleep(0.1)


def _retry(call, timeout_s: float = 60):
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return call()
        except Exception:  # noqa: BLE001 - nodes still starting; the last error is raised
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def main(workdir: str, endpoints: list[str]) -> None:
    def connect():
        return Cluster(endpoints, timeout_s=3)

    admin_client = _retry(connect)
    admin = _retry(admin_client.connect)
    _retry(lambda: admin.create_keyspace("ks", {"class": "SimpleStrategy", "replication_factor": 3}))
    _retry(lambda: admin.create_table("kv", {"k": "text", "v": "text"}, primary_key="k", keyspace="ks"))
    clients = Clients(connect, seed=16)
    threads = start(clients)
    open(os.path.join(workdir, "ready"), "w").close()
    _wait_for(os.path.join(workdir, "stop"), 300)
    stop(clients, threads)
    _wait_for(os.path.join(workdir, "healed"), 120)
    for ep in endpoints:
        _retry(lambda ep=ep: admin.execute("repair", endpoint=ep, keyspace="ks", table="kv"))
    cells = {}
    for ep in endpoints:
        cells[ep] = {}
        for key in KEYS:
            row = _retry(lambda ep=ep, key=key: admin.execute("get", endpoint=ep, keyspace="ks", table="kv",
                                                             key={"k": key}, writetime=True, consistency="ONE"))
            cells[ep][key] = (row["v"], row["writetime(v)"]) if row else None
    admin_client.shutdown()
    with open(os.path.join(workdir, "result.json"), "w") as f:
        json.dump({"history": clients.history.to_jsonl(), "cells": cells, "outcomes": clients.outcomes,
                   "errors": [repr(e) for e in clients.errors]}, f)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
