"""A network lab: node processes on separate Linux network namespaces, a bridge, packet filters.

`Lab(tag, n)` makes a switch namespace holding a bridge, one namespace per node and one for the
client, each joined to the bridge by a veth pair and addressed 10.231.<subnet>.<i>/24. Nothing
touches the host's namespace: traffic between the nodes and the client goes only through the
bridge inside the switch namespace, and `close()` deletes every namespace (which deletes their
links). Faults are the kernel's own:

* partition: nftables rules in a node's namespace drop packets from and to chosen peers
  (`partition`, `heal`);
* a degraded link: `tc netem` on a node's interface (delay, jitter, loss, reordering: `degrade`,
  `restore`);
* kill -9, SIGSTOP/SIGCONT: the processes run under `ip netns exec`, in our pid namespace.

`available()` says why a lab cannot run here (not root, no `ip`/`nft`/`tc`, or the kernel refuses
namespaces), or "" when it can. Needs root; `.ci/run` installs iproute2 and nftables when missing.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time

TABLE = "dtlab"


def _run(*cmd: str, check: bool = True) -> subprocess.CompletedProcess:
    out = subprocess.run(list(cmd), capture_output=True, text=True, timeout=30)
    if check and out.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {out.stderr.strip() or out.stdout.strip()}")
    return out


def available() -> str:
    """'' when a lab can run here, else the reason it cannot."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    missing = [tool for tool in ("ip", "nft", "tc") if shutil.which(tool) is None]
    if missing:
        return f"missing {', '.join(missing)} (apt-get install -y iproute2 nftables)"
    probe = f"dtprobe{os.getpid()}"
    out = _run("ip", "netns", "add", probe, check=False)
    if out.returncode != 0:
        return f"the kernel refuses network namespaces: {out.stderr.strip()}"
    _run("ip", "netns", "del", probe, check=False)
    return ""


class Lab:
    def __init__(self, tag: str, nodes: int, subnet: int = 77):
        self.tag, self.subnet = tag, subnet
        self.switch = f"dt{tag}s"
        self.hosts = [f"dt{tag}n{i + 1}" for i in range(nodes)]
        self.client = f"dt{tag}c"
        self.procs: dict[str, subprocess.Popen] = {}

    def address(self, host: str) -> str:
        i = len(self.hosts) + 1 if host == self.client else self.hosts.index(host) + 1
        return f"10.231.{self.subnet}.{i}"

    # -- the network -----------------------------------------------------------------------------

    def up(self) -> Lab:
        self.close()                                   # leftovers of a killed run with the same tag
        _run("ip", "netns", "add", self.switch)
        _run("ip", "-n", self.switch, "link", "set", "lo", "up")
        _run("ip", "-n", self.switch, "link", "add", "br0", "type", "bridge")
        _run("ip", "-n", self.switch, "link", "set", "br0", "up")
        for i, host in enumerate(self.hosts + [self.client]):
            _run("ip", "netns", "add", host)
            _run("ip", "-n", host, "link", "set", "lo", "up")
            _run("ip", "-n", self.switch, "link", "add", f"v{i}", "type", "veth", "peer", "name", "eth0",
                 "netns", host)
            _run("ip", "-n", self.switch, "link", "set", f"v{i}", "master", "br0")
            _run("ip", "-n", self.switch, "link", "set", f"v{i}", "up")
            _run("ip", "-n", host, "addr", "add", f"{self.address(host)}/24", "dev", "eth0")
            _run("ip", "-n", host, "link", "set", "eth0", "up")
            _run("ip", "netns", "exec", host, "nft", "add", "table", "inet", TABLE)
            for chain, hook in (("in", "input"), ("out", "output")):
                _run("ip", "netns", "exec", host, "nft", "add", "chain", "inet", TABLE, chain,
                     f"{{ type filter hook {hook} priority 0 ; }}")
        return self

    def partition(self, host: str, peers: list[str]) -> None:
        """Drop every packet between `host` and `peers`, both ways (rules in host's namespace)."""
        addrs = ", ".join(self.address(p) for p in peers)
        _run("ip", "netns", "exec", host, "nft", "add", "rule", "inet", TABLE, "in", "ip", "saddr",
             f"{{ {addrs} }}", "drop")
        _run("ip", "netns", "exec", host, "nft", "add", "rule", "inet", TABLE, "out", "ip", "daddr",
             f"{{ {addrs} }}", "drop")

    def heal(self) -> None:
        for host in self.hosts:
            for chain in ("in", "out"):
                _run("ip", "netns", "exec", host, "nft", "flush", "chain", "inet", TABLE, chain)

    def degrade(self, host: str, delay_ms: int, jitter_ms: int, loss_pct: float, reorder_pct: float) -> None:
        """netem on host's interface: every packet it sends is delayed, some lost or reordered."""
        _run("ip", "netns", "exec", host, "tc", "qdisc", "replace", "dev", "eth0", "root", "netem",
             "delay", f"{delay_ms}ms", f"{jitter_ms}ms", "loss", f"{loss_pct}%", "reorder", f"{reorder_pct}%")

    def restore(self, host: str) -> None:
        _run("ip", "netns", "exec", host, "tc", "qdisc", "del", "dev", "eth0", "root", check=False)

    # -- processes -------------------------------------------------------------------------------

    def spawn(self, host: str, argv: list[str], log_path: str, cwd: str | None = None) -> subprocess.Popen:
        """Run argv inside host's namespace (its output appended to log_path)."""
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(["ip", "netns", "exec", host, *argv], stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT, cwd=cwd, start_new_session=True)
        self.procs[host] = proc
        return proc

    def spawn_node(self, host: str, config_path: str, log_path: str, cwd: str) -> subprocess.Popen:
        return self.spawn(host, [sys.executable, "-m", "ring.runtime.asyncio_tcp", "--config", config_path],
                          log_path, cwd)

    def signal(self, host: str, sig: int) -> None:
        """Signal the node's process group (ip netns exec execs the command: one process)."""
        proc = self.procs[host]
        if proc.poll() is None:
            os.killpg(proc.pid, sig)
        if sig == signal.SIGKILL:
            proc.wait(timeout=10)

    def close(self) -> None:
        """Kill what we started, delete the namespaces (and with them the veths and the bridge)."""
        for proc in self.procs.values():
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGCONT)
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait(timeout=10)
        self.procs.clear()
        for ns in self.hosts + [self.client, self.switch]:
            _run("ip", "netns", "del", ns, check=False)
        time.sleep(0.1)

    def __enter__(self) -> Lab:
        return self.up()

    def __exit__(self, *exc) -> None:
        self.close()
