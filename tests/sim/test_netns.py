"""Real networks: three node processes on their own Linux network namespaces, joined by a bridge.

tools/netns.py builds the lab (a switch namespace with a bridge, one namespace per node and one for
the client; nothing in the host's namespace). While the client threads of tools/sim_clients.py
(QUORUM and ONE) run inside the client namespace (tests/sim/netns_client.py), the nemesis here
partitions a node with nftables rules in its namespace, degrades a link with `tc netem` where the
kernel has it, kills a node with kill -9 and restarts it, and pauses one with SIGSTOP. Then the
network heals, every node repairs, and the checkers judge the history as in
test_nemesis_concurrent.py. Skips, saying why, only where namespaces cannot be made (not root,
no iproute2/nftables, or the kernel refuses them).
"""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from ring.verify.checkers import check_convergence, check_lww
from ring.verify.history import History
from tools import netns
from tools.cluster import layout
from tools.sim_clients import quorum_view

pytestmark = pytest.mark.slow

PORT = 7000
SETTINGS = {"gossip_interval_ms": 500, "phi_convict_threshold": 2.0, "num_tokens": 4,
            "write_request_timeout_ms": 1000, "read_request_timeout_ms": 1000}
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _netem_works(lab, host) -> str:
    """'' when tc netem is available in this kernel, else why not."""
    try:
        lab.degrade(host, 20, 10, 1, 10)
    except RuntimeError as e:
        return str(e).split(": ", 1)[-1]
    lab.restore(host)
    return ""


def test_workload_nemesis_and_checkers_on_network_namespaces(tmp_path):
    why = netns.available()
    if why:
        pytest.skip(f"no network namespaces here: {why}")
    started = time.monotonic()
    work = str(tmp_path)
    with netns.Lab(f"{os.getpid() % 10000}", 3, subnet=os.getpid() % 200 + 20) as lab:
        endpoints = [f"{lab.address(h)}:{PORT}" for h in lab.hosts]
        configs = []
        for i, host in enumerate(lab.hosts):
            ndir = os.path.join(work, f"node{i + 1}")
            layout.write_node(ndir, f"node{i + 1} of the netns lab",
                              {"auto_bootstrap": False, **SETTINGS, "listen_address": lab.address(host), "port": PORT,
                               "metrics_port": 0, "native_transport_port": 9042, "seeds": [endpoints[0]],
                               "datacenter": "datacenter1"}, cleanup=work)
            configs.append(os.path.join(ndir, "node.toml"))
        for host, config in zip(lab.hosts, configs):
            lab.spawn_node(host, config, config.replace("node.toml", "node.log"), ROOT)
        client = subprocess.Popen(["ip", "netns", "exec", lab.client, sys.executable,
                                   os.path.join(ROOT, "tests", "sim", "netns_client.py"), work, *endpoints],
                                  cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        n1, n2, n3 = lab.hosts
        done = []
        try:
            deadline = time.monotonic() + 90
            while not os.path.exists(os.path.join(work, "ready")):
                assert client.poll() is None, client.stdout.read()
                assert time.monotonic() < deadline, "the client never got its schema in"
                time.sleep(0.2)
            time.sleep(1)
            lab.partition(n1, [n2, n3])                                 # nftables: n1 cut off
            done.append("partition n1 | n2 n3 (nftables)")
            time.sleep(2)
            lab.heal()
            done.append("heal")
            netem = _netem_works(lab, n2)
            if not netem:                                               # tc netem on n2's link
                lab.degrade(n2, 40, 20, 5, 25)
                done.append("netem n2: 40 +- 20 ms, 5% loss, 25% reordered")
                time.sleep(3)
                lab.restore(n2)
            time.sleep(1)
            lab.signal(n3, signal.SIGKILL)                              # kill -9, then restart
            done.append("kill -9 n3")
            time.sleep(2)
            lab.spawn_node(n3, configs[2], configs[2].replace("node.toml", "node.log"), ROOT)
            done.append("restart n3")
            time.sleep(3)
            lab.signal(n2, signal.SIGSTOP)                              # SIGSTOP / SIGCONT
            done.append("pause n2")
            time.sleep(2)
            lab.signal(n2, signal.SIGCONT)
            done.append("resume n2")
            time.sleep(1)
        finally:
            open(os.path.join(work, "stop"), "w").close()
        time.sleep(5)                                                   # healed: gossip and hints settle
        open(os.path.join(work, "healed"), "w").close()
        out, _ = client.communicate(timeout=180)
        assert client.returncode == 0, out
    with open(os.path.join(work, "result.json")) as f:
        result = json.load(f)
    history = History.from_jsonl(result["history"])
    assert not result["errors"], result["errors"]
    assert result["outcomes"]["ok"] >= 100, result["outcomes"]     # not a vacuous pass
    everything = check_lww(history, expect_overlap=False, expect_monotonic=False, expect_ryw=False)
    assert everything.ok, str(everything)
    quorum = check_lww(quorum_view(history), expect_overlap=True, expect_monotonic=True, expect_ryw=True)
    assert quorum.ok, str(quorum)
    cells = {ep: {k: tuple(c) if c else None for k, c in by_key.items()} for ep, by_key in result["cells"].items()}
    convergence = check_convergence(cells, history)
    assert convergence.ok, str(convergence)
    print(f"netns run: history {len(history)} ops {result['outcomes']}; nemesis: {', '.join(done)}"
          f"{'' if not netem else f'; tc netem unavailable ({netem})'}; verdict: ok; "
          f"{time.monotonic() - started:.1f} s")
