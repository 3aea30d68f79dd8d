"""Local multi-process clusters, in the spirit of ccm: `dynatable cluster ...` and the tests' API.

    with LocalCluster.create("dev", n=3, root=tmp, settings={"gossip_interval_ms": 500}) as c:
        c.start()                       # blocks until every node sees every node Up and NORMAL
        session = c.client().connect()
        c.kill("node3"); c.wait_for_down("node3")
        c.restart("node3")              # start + wait until the ring is whole again

Layout under `<root>/<name>/`: `cluster.toml` (the cluster's name, datacenters, nodes) and per
node `nodeN/node.toml` (a full `ring.runtime.config.NodeSettings`, cassandra.yaml-like keys),
`nodeN/data/` (its data directory), `nodeN/node.log` (stdout and stderr, appended) and
`nodeN/node.pid` while it runs. `<root>/current` names the cluster the CLI uses when no name is
given. The root defaults to `$DYNATABLE_HOME` or `~/.dynatable/clusters`.

A node is `sys.executable -m ring.runtime.asyncio_tcp --config nodeN/node.toml` in its own
session, so it outlives the command that started it (as with ccm) and Ctrl-C in a terminal does
not reach it. Everything the manager knows about a running node comes from its pid file and its
answers to the `status` op; nothing is kept in memory between commands.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from ring.runtime import config as config_mod

CLUSTER_FILE = "cluster.toml"
CURRENT_FILE = "current"
POLL_TIMEOUT_S = 2.0  # one status request; a paused node must not stall a wait for long


class ClusterError(Exception):
    """A cluster-manager problem; the message says what to do about it."""


def default_root() -> str:
    return os.environ.get("DYNATABLE_HOME") or os.path.join(os.path.expanduser("~"), ".dynatable", "clusters")


def parse_datacenters(spec: str) -> list[tuple[str, int]]:
    """ "dc1:3,dc2:2" -> [("dc1", 3), ("dc2", 2)]."""
    out = []
    for part in (p.strip() for p in spec.split(",") if p.strip()):
        name, sep, count = part.partition(":")
        if not sep or not name.strip() or not count.strip().isdigit() or int(count) < 1:
            raise ClusterError(f"bad datacenter spec {part!r}: write NAME:COUNT pairs, e.g. dc1:3,dc2:2")
        out.append((name.strip(), int(count)))
    if not out:
        raise ClusterError("empty datacenter spec: write NAME:COUNT pairs, e.g. dc1:3,dc2:2")
    if len({n for n, _ in out}) != len(out):
        raise ClusterError(f"datacenter named twice in {spec!r}")
    return out


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """`count` distinct ports the kernel calls free right now (all sockets held until the end)."""
    socks = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind((host, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _toml(value) -> str:
    return config_mod._toml_value(value)


# -- nodes -----------------------------------------------------------------------------------------

@dataclass
class NodeHandle:
    name: str
    endpoint: str
    datacenter: str
    rack: str
    config_path: str
    data_dir: str
    log_path: str
    directory: str = field(repr=False, default="")
    _proc: subprocess.Popen | None = field(default=None, repr=False, compare=False)

    @property
    def pid_path(self) -> str:
        return os.path.join(self.directory, "node.pid")

    @property
    def pid(self) -> int | None:
        """The node's pid from its pid file, or None if it is not running."""
        try:
            with open(self.pid_path) as f:
                pid = int(f.read().strip())
        except (OSError, ValueError):
            return None
        return pid if self._alive(pid) else None

    def _alive(self, pid: int) -> bool:
        if self._proc is not None and self._proc.pid == pid:
            return self._proc.poll() is None  # our child: poll() also reaps it
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        state, cmdline = _proc_info(pid)
        if state == "Z":
            try:  # a child of ours we no longer hold a Popen for
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass
            return False
        # a recycled pid belongs to some other program: then this node is not running
        return cmdline is None or self.config_path in cmdline

    def is_running(self) -> bool:
        return self.pid is not None

    def is_paused(self) -> bool:
        pid = self.pid
        return pid is not None and _proc_info(pid)[0] == "T"

    def _signal(self, sig: int) -> bool:
        pid = self.pid
        if pid is None:
            return False
        try:
            os.kill(pid, sig)
            return True
        except ProcessLookupError:
            return False

    def _forget(self) -> None:
        if self._proc is not None:
            self._proc.poll()
        self._proc = None
        try:
            os.unlink(self.pid_path)
        except FileNotFoundError:
            pass

    def log_tail(self, lines: int = 15) -> str:
        try:
            with open(self.log_path, errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return ""


def _proc_info(pid: int) -> tuple[str | None, str | None]:
    """(state letter, command line) from /proc, or (None, None) where there is no /proc."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None, None
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        cmdline = None
    return state, cmdline


# -- the cluster -----------------------------------------------------------------------------------

class LocalCluster:
    def __init__(self, name: str, root: str, nodes: list[NodeHandle], progress=None):
        self.name = name
        self.root = root
        self.path = os.path.join(root, name)
        self.nodes = nodes
        self.progress: Callable[[str], None] | None = progress  # the CLI shows what is being waited for
        self._clients: dict[str, object] = {}

    # -- creation and loading ------------------------------------------------------------------

    @classmethod
    def create(cls, name: str, n: int = 3, *, datacenters: str | None = None, root: str | None = None,
               base_port: int | None = None, settings: dict | None = None, metrics: bool = False) -> LocalCluster:
        """Write the cluster's directory; nothing is started. `datacenters` ("dc1:3,dc2:2") overrides
        `n`; seeds are the first node of each datacenter. `metrics=True` gives every node a
        Prometheus port too (base_port + 100 + i, or a free port)."""
        root = os.path.abspath(root or default_root())
        if not name or name in (".", "..") or "/" in name or os.sep in name or name == CURRENT_FILE:
            raise ClusterError(f"bad cluster name {name!r}: use letters, digits, '-' or '_'")
        path = os.path.join(root, name)
        if os.path.exists(os.path.join(path, CLUSTER_FILE)):
            raise ClusterError(f"a cluster named {name} already exists under {root}; "
                               f"remove it with `dynatable cluster remove {name}` or pick another name")
        dcs = parse_datacenters(datacenters) if datacenters else [("datacenter1", n)]
        total = sum(c for _, c in dcs)
        if total < 1:
            raise ClusterError("a cluster needs at least one node (-n 1 or more)")
        overrides = dict(settings or {})
        for key in ("port", "metrics_port", "data_directory", "seeds", "datacenter", "rack"):
            if key in overrides:
                hint = " (pass metrics=True / --metrics for one port per node)" if key == "metrics_port" else ""
                raise ClusterError(f"setting {key!r} is chosen per node by the cluster manager{hint}")
        host = overrides.get("listen_address", "127.0.0.1")
        if base_port is not None:
            ports = [base_port + i for i in range(total)]
            mports = [base_port + 100 + i for i in range(total)] if metrics else [0] * total
        else:
            found = free_ports(total * (2 if metrics else 1), host)
            ports, mports = found[:total], (found[total:] if metrics else [0] * total)

        specs = []  # (node name, dc, port, metrics port)
        i = 0
        for dc, count in dcs:
            for _ in range(count):
                specs.append((f"node{i + 1}", dc, ports[i], mports[i]))
                i += 1
        seeds, seen = [], set()
        for _, dc, port, _ in specs:
            if dc not in seen:
                seen.add(dc)
                seeds.append(config_mod.NodeSettings(listen_address=host, port=port).endpoint())

        os.makedirs(path, exist_ok=True)
        for node_name, dc, port, mport in specs:
            _write_node(os.path.join(path, node_name), f"{node_name} of cluster {name}",
                        {"auto_bootstrap": False, **overrides, "port": port, "metrics_port": mport,
                         "seeds": seeds, "datacenter": dc}, cleanup=path)
        with open(os.path.join(path, CLUSTER_FILE), "w") as f:
            f.write(f"name = {_toml(name)}\n")
            f.write(f"datacenters = {_toml(','.join(f'{dc}:{c}' for dc, c in dcs))}\n")
            f.write(f"created = {_toml(time.strftime('%Y-%m-%dT%H:%M:%S'))}\n")
            f.write("\n[settings]  # given to every node; the rest is in nodeN/node.toml\n")
            for key, value in sorted(overrides.items()):
                f.write(f"{key} = {_toml(value)}\n")
            for node_name, dc, port, _ in specs:
                f.write(f"\n[[nodes]]\nname = {_toml(node_name)}\ndatacenter = {_toml(dc)}\n"
                        f"config = {_toml(os.path.join(node_name, 'node.toml'))}\n")
        cluster = cls.load(name, root)
        cluster.set_current()
        return cluster

    @classmethod
    def load(cls, name: str, root: str | None = None) -> LocalCluster:
        root = os.path.abspath(root or default_root())
        path = os.path.join(root, name)
        try:
            with open(os.path.join(path, CLUSTER_FILE), "rb") as f:
                meta = tomllib.load(f)
        except FileNotFoundError:
            raise ClusterError(f"no cluster named {name} under {root}; "
                               f"create it with `dynatable cluster create {name}`") from None
        except tomllib.TOMLDecodeError as e:
            raise ClusterError(f"{os.path.join(path, CLUSTER_FILE)} is not valid TOML: {e}") from None
        nodes = []
        for entry in meta.get("nodes", []):
            ndir = os.path.join(path, entry["name"])
            cfg = os.path.join(path, entry.get("config", os.path.join(entry["name"], "node.toml")))
            s = config_mod.load(cfg)
            nodes.append(NodeHandle(name=entry["name"], endpoint=s.endpoint(), datacenter=s.datacenter,
                                    rack=s.rack, config_path=cfg, data_dir=s.data_directory,
                                    log_path=os.path.join(ndir, "node.log"), directory=ndir))
        return cls(meta.get("name", name), root, nodes)

    @staticmethod
    def current_name(root: str | None = None) -> str | None:
        try:
            with open(os.path.join(os.path.abspath(root or default_root()), CURRENT_FILE)) as f:
                return f.read().strip() or None
        except OSError:
            return None

    @classmethod
    def list_names(cls, root: str | None = None) -> list[str]:
        root = os.path.abspath(root or default_root())
        try:
            return sorted(d for d in os.listdir(root) if os.path.isfile(os.path.join(root, d, CLUSTER_FILE)))
        except OSError:
            return []

    def set_current(self) -> None:
        with open(os.path.join(self.root, CURRENT_FILE), "w") as f:
            f.write(self.name + "\n")

    # -- nodes -----------------------------------------------------------------------------------

    def node(self, name_or_index) -> NodeHandle:
        if isinstance(name_or_index, NodeHandle):
            return name_or_index
        if isinstance(name_or_index, int) or (isinstance(name_or_index, str) and name_or_index.isdigit()):
            i = int(name_or_index)
            # an int is a 0-based index; a digit string is "node<N>"'s N, as people type it
            idx = i if isinstance(name_or_index, int) else i - 1
            if 0 <= idx < len(self.nodes):
                return self.nodes[idx]
        else:
            for nh in self.nodes:
                if name_or_index in (nh.name, nh.endpoint):
                    return nh
        names = ", ".join(nh.name for nh in self.nodes)
        raise ClusterError(f"no node {name_or_index!r} in cluster {self.name} (nodes: {names})")

    def _select(self, nodes) -> list[NodeHandle]:
        if nodes is None:
            return list(self.nodes)
        if isinstance(nodes, (str, int, NodeHandle)):
            nodes = [nodes]
        return [self.node(n) for n in nodes]

    def running(self) -> list[NodeHandle]:
        return [nh for nh in self.nodes if nh.is_running()]

    def contact_points(self) -> list[str]:
        return [nh.endpoint for nh in self.nodes]

    def client(self, **kw):
        from ring.client import Cluster
        kw.setdefault("cluster_name", self._setting("cluster_name", "dynatable"))
        secret = self._setting("cluster_secret", "")
        if secret:
            kw.setdefault("cluster_secret", secret)
        return Cluster(self.contact_points(), **kw)

    def _setting(self, key: str, default):
        if not self.nodes:
            return default
        try:
            return getattr(config_mod.load(self.nodes[0].config_path), key)
        except Exception:  # noqa: BLE001 - a broken config shows up when the node starts
            return default

    # -- processes -------------------------------------------------------------------------------

    def start(self, nodes=None, *, wait: bool = True, timeout_s: float = 60) -> None:
        chosen = self._select(nodes)
        for nh in chosen:
            if nh.is_running():
                if nh.is_paused():
                    nh._signal(signal.SIGCONT)
                continue
            self._note(f"starting {nh.name} on {nh.endpoint}")
            with open(nh.log_path, "ab") as log:
                log.write(f"\n--- {time.strftime('%Y-%m-%d %H:%M:%S')} started by the cluster manager ---\n".encode())
                log.flush()
                proc = subprocess.Popen([sys.executable, "-m", "ring.runtime.asyncio_tcp", "--config", nh.config_path],
                                        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                        cwd=_project_dir(), env=_child_env(), start_new_session=True)
            nh._proc = proc
            with open(nh.pid_path, "w") as f:
                f.write(f"{proc.pid}\n")
        if wait:
            self.wait_until_converged(timeout_s=timeout_s, started=chosen)

    def stop(self, nodes=None, *, timeout_s: float = 20) -> None:
        chosen = [nh for nh in self._select(nodes) if nh.is_running()]
        for nh in chosen:
            self._note(f"stopping {nh.name}")
            nh._signal(signal.SIGTERM)
            nh._signal(signal.SIGCONT)  # a paused node must wake up to handle SIGTERM
        deadline = time.monotonic() + timeout_s
        while any(nh.is_running() for nh in chosen) and time.monotonic() < deadline:
            time.sleep(0.05)
        for nh in chosen:
            if nh.is_running():
                nh._signal(signal.SIGKILL)
                _wait_exit(nh, 10)
            nh._forget()
        self._drop_clients()

    def kill(self, node) -> None:
        nh = self.node(node)
        if nh._signal(signal.SIGKILL):
            _wait_exit(nh, 10)
        nh._forget()
        self._drop_clients()

    def pause(self, node) -> None:
        nh = self.node(node)
        if not nh._signal(signal.SIGSTOP):
            raise ClusterError(f"{nh.name} is not running; start it with `dynatable cluster start`")
        _wait_state(nh, paused=True)

    def resume(self, node) -> None:
        nh = self.node(node)
        if not nh._signal(signal.SIGCONT):
            raise ClusterError(f"{nh.name} is not running; start it with `dynatable cluster start`")
        _wait_state(nh, paused=False)

    def restart(self, node, *, wait: bool = True, timeout_s: float = 60) -> None:
        nh = self.node(node)
        self.stop([nh])
        self.start([nh], wait=wait, timeout_s=timeout_s)

    def remove(self) -> None:
        self.stop(timeout_s=10)
        self._drop_clients()
        shutil.rmtree(self.path, ignore_errors=True)
        if self.current_name(self.root) == self.name:
            try:
                os.unlink(os.path.join(self.root, CURRENT_FILE))
            except FileNotFoundError:
                pass

    def __enter__(self) -> LocalCluster:
        return self

    def __exit__(self, *exc) -> None:
        self.stop(timeout_s=10)

    # -- topology changes ------------------------------------------------------------------------

    def add(self, name: str | None = None, *, datacenter: str | None = None, start: bool = True,
            timeout_s: float = 900) -> NodeHandle:
        """A new node (ccm add + start): same settings and seeds as the others, auto_bootstrap on,
        a free port. With `start`, waits until it has streamed its ranges and every node sees it
        Up and NORMAL."""
        if not self.nodes:
            raise ClusterError(f"cluster {self.name} has no node to join; create it with `dynatable cluster create`")
        taken = {nh.name for nh in self.nodes}
        if name is None:
            name = next(f"node{i}" for i in range(1, len(taken) + 2) if f"node{i}" not in taken)
        if name in taken or not name.replace("-", "").replace("_", "").isalnum():
            raise ClusterError(f"bad or taken node name {name!r} (nodes: {', '.join(sorted(taken))})")
        first = config_mod.load(self.nodes[0].config_path)
        with open(os.path.join(self.path, CLUSTER_FILE), "rb") as f:
            overrides = dict(tomllib.load(f).get("settings", {}))
        host = overrides.get("listen_address", first.listen_address)
        ports = free_ports(2 if first.metrics_port else 1, host)
        ndir = os.path.join(self.path, name)
        s = _write_node(ndir, f"{name} of cluster {self.name}, added",
                        {**overrides, "auto_bootstrap": True, "port": ports[0],
                         "metrics_port": ports[1] if first.metrics_port else 0, "seeds": list(first.seeds),
                         "datacenter": datacenter or first.datacenter}, cleanup=ndir)
        with open(os.path.join(self.path, CLUSTER_FILE), "a") as f:
            f.write(f"\n[[nodes]]\nname = {_toml(name)}\ndatacenter = {_toml(s.datacenter)}\n"
                    f"config = {_toml(os.path.join(name, 'node.toml'))}\n")
        self.nodes = LocalCluster.load(self.name, self.root).nodes
        nh = self.node(name)
        if start:
            self.start([nh], wait=False)
            self.wait_until_joined(nh, timeout_s)
        return nh

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
            note = _joining_note(stats)
            if note != last:
                self._note(f"{nh.name}: {note}")
                last = note
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{nh.name} did not finish joining within {timeout_s:g} s ({note}); "
                                   f"see {nh.log_path}")
            time.sleep(0.25)
        self.wait_until_converged(max(10.0, deadline - time.monotonic()), started=[nh])

    def decommission(self, node, *, timeout_s: float = 3600) -> dict:
        """nodetool decommission on `node`, then stop it and take it out of the cluster's files."""
        nh = self.node(node)
        if not nh.is_running():
            raise ClusterError(f"{nh.name} is not running; start it first (a dead node is removed with removenode)")
        self._note(f"decommissioning {nh.name}: streaming its ranges to their new owners")
        summary = self.ask(nh, "decommission", timeout_s=timeout_s, timeout_ms=int(timeout_s * 1000))
        self.stop([nh])
        self.forget_node(nh)
        return summary

    def removenode(self, host_id: str, *, via=None, timeout_s: float = 3600) -> dict:
        """nodetool removenode HOST_ID, asked of `via` (default: the first running node)."""
        coordinator = self.node(via) if via is not None else next(
            (nh for nh in self.running() if not nh.is_paused()), None)
        if coordinator is None:
            raise ClusterError(f"no node of cluster {self.name} is running to coordinate the removal")
        summary = self.ask(coordinator, "removenode", timeout_s=timeout_s, host_id=host_id,
                           timeout_ms=int(timeout_s * 1000))
        gone = next((nh for nh in self.nodes if nh.endpoint == summary.get("endpoint")), None)
        if gone is not None:
            self.stop([gone])
            self.forget_node(gone)
        return summary

    def forget_node(self, node) -> None:
        """Drop a node that left the ring from cluster.toml; its directory is kept as <name>.removed."""
        nh = self.node(node)
        cluster_file = os.path.join(self.path, CLUSTER_FILE)
        with open(cluster_file) as f:
            blocks = f.read().split("\n[[nodes]]\n")
        kept = [blocks[0]] + [b for b in blocks[1:] if f"name = {_toml(nh.name)}" not in b.splitlines()]
        with open(cluster_file + ".tmp", "w") as f:
            f.write("\n[[nodes]]\n".join(kept))
        os.replace(cluster_file + ".tmp", cluster_file)
        target = nh.directory + ".removed"
        shutil.rmtree(target, ignore_errors=True)
        os.rename(nh.directory, target)
        self.nodes = [n for n in self.nodes if n is not nh]
        self._drop_clients(nh.endpoint)

    # -- asking nodes ----------------------------------------------------------------------------

    def ask(self, node, op: str, timeout_s: float = POLL_TIMEOUT_S, **args):
        """`op` answered by that node itself (a pinned request); raises on any failure."""
        from ring.client import Cluster, Session
        nh = self.node(node)
        client = self._clients.get(nh.endpoint)
        if client is None:
            client = self._clients[nh.endpoint] = Cluster([nh.endpoint], timeout_s=timeout_s,
                                                          cluster_name=self._setting("cluster_name", "dynatable"),
                                                          cluster_secret=self._setting("cluster_secret", ""))
        client.timeout_s = timeout_s
        client.metadata.refreshed_at = time.monotonic()  # no ring/schema refresh: the op is pinned
        return Session(client, None).execute(op, endpoint=nh.endpoint, **args)

    def _try_status(self, nh: NodeHandle) -> list[dict] | None:
        try:
            return list(self.ask(nh, "status"))
        except Exception:  # noqa: BLE001 - not answering (down, paused, starting) is the answer
            self._drop_clients(nh.endpoint)
            return None

    def _drop_clients(self, endpoint: str | None = None) -> None:
        for ep in [endpoint] if endpoint else list(self._clients):
            client = self._clients.pop(ep, None)
            if client is not None:
                client.shutdown()

    def status(self) -> list[dict]:
        """The `status` op's answer from the first running node that answers."""
        errors = []
        for nh in self.running():
            if nh.is_paused():
                continue
            try:
                return list(self.ask(nh, "status", timeout_s=5.0))
            except Exception as e:  # noqa: BLE001
                errors.append(f"{nh.name}: {e}")
        if not errors:
            raise ClusterError(f"no node of cluster {self.name} is running; start it with `dynatable cluster start`")
        raise ClusterError("no running node answered: " + "; ".join(errors))

    # -- waiting ---------------------------------------------------------------------------------

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
                nh._forget()
                raise ClusterError(f"{nh.name} exited; the end of {nh.log_path}:\n{nh.log_tail()}")

    def _converged(self, started: Iterable[NodeHandle] = ()) -> tuple[bool, str]:
        """Every running (not paused) node answers and sees exactly those nodes Up and NORMAL,
        all with one schema version. Returns (done, what is still missing)."""
        self._check_alive(started)
        live = [nh for nh in self.running() if not nh.is_paused()]
        want = {nh.endpoint for nh in live}
        versions = set()
        for nh in live:
            rows = self._try_status(nh)
            if rows is None:
                return False, f"{nh.name} to answer"
            by_ep = {r["endpoint"]: r for r in rows}
            for ep in want:
                r = by_ep.get(ep)
                if r is None or not r.get("up") or r.get("state") != "NORMAL":
                    return False, f"{nh.name} to see {self._name_of(ep)} Up and NORMAL"
                versions.add(r.get("schema"))
        if len(versions) > 1:
            return False, "schema agreement"
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

    # -- helpers ---------------------------------------------------------------------------------

    def _name_of(self, endpoint: str) -> str:
        return next((nh.name for nh in self.nodes if nh.endpoint == endpoint), endpoint)

    def _note(self, msg: str) -> None:
        if self.progress is not None:
            self.progress(msg)

    def __repr__(self) -> str:
        return f"LocalCluster({self.name!r}, {len(self.nodes)} nodes, {self.path!r})"


def _write_node(ndir: str, title: str, values: dict, cleanup: str) -> config_mod.NodeSettings:
    """A node's directory: data/, node.toml (every setting written out) and node.log. A bad
    setting removes `cleanup` and raises ClusterError naming it."""
    os.makedirs(os.path.join(ndir, "data"), exist_ok=True)
    try:
        s = config_mod.from_dict({**values, "data_directory": "data", "rack": "rack1"})
    except Exception as e:  # noqa: BLE001 - ConfigurationError or a bad value type: say which
        shutil.rmtree(cleanup, ignore_errors=True)
        raise ClusterError(f"bad node settings: {e}") from None
    with open(os.path.join(ndir, "node.toml"), "w") as f:
        f.write(f"# {title}; every key: `dynatable node --print-default-config`\n")
        f.write(config_mod.dump(s))
    open(os.path.join(ndir, "node.log"), "a").close()
    return s


def _joining_note(stats: dict | None) -> str:
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


def _wait_exit(nh: NodeHandle, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while nh.is_running() and time.monotonic() < deadline:
        time.sleep(0.02)


def _wait_state(nh: NodeHandle, paused: bool, timeout_s: float = 5.0) -> None:
    """SIGSTOP/SIGCONT are delivered asynchronously: wait until /proc shows the new state."""
    deadline = time.monotonic() + timeout_s
    while nh.is_running() and nh.is_paused() != paused and time.monotonic() < deadline:
        time.sleep(0.005)


def _project_dir() -> str:
    """Where `ring` is importable from (the checkout, or wherever it is installed)."""
    import ring
    return os.path.dirname(os.path.dirname(os.path.abspath(ring.__file__)))


def _child_env() -> dict:
    env = dict(os.environ)
    proj = _project_dir()
    env["PYTHONPATH"] = proj + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


__all__ = ["ClusterError", "LocalCluster", "NodeHandle", "default_root", "free_ports", "parse_datacenters"]
