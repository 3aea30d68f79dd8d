"""Node processes: a node's pid file, its signals, and spawning it so it outlives the command.

A node is `sys.executable -m ring.runtime.asyncio_tcp --config nodeN/node.toml` in its own
session, so it outlives the command that started it (as with ccm) and Ctrl-C in a terminal does
not reach it. Everything known about a running node comes from its pid file and /proc; nothing is
kept in memory between commands. A pid file whose pid is gone, a zombie, or a recycled pid that
runs some other program means the node is not running.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field


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
    cql_endpoint: str = ""          # host:port of its CQL server (native_transport_port)
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

    def send_signal(self, sig: int) -> bool:
        """Signal the running node; False if it is not running."""
        pid = self.pid
        if pid is None:
            return False
        try:
            os.kill(pid, sig)
            return True
        except ProcessLookupError:
            return False

    def forget(self) -> None:
        """Reap our child, if it is one, and remove the pid file (the node has exited)."""
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



def spawn(nh: NodeHandle) -> None:
    """Start the node's process (its output appended to node.log) and write its pid file."""
    with open(nh.log_path, "ab") as log:
        log.write(f"\n--- {time.strftime('%Y-%m-%d %H:%M:%S')} started by the cluster manager ---\n".encode())
        log.flush()
        proc = subprocess.Popen([sys.executable, "-m", "ring.runtime.asyncio_tcp", "--config", nh.config_path],
                                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                cwd=_project_dir(), env=_child_env(), start_new_session=True)
    nh._proc = proc
    with open(nh.pid_path, "w") as f:
        f.write(f"{proc.pid}\n")


def terminate(nodes: list[NodeHandle], timeout_s: float) -> None:
    """SIGTERM (and SIGCONT, so a paused node wakes up to handle it), then SIGKILL whatever is
    still running after `timeout_s`."""
    chosen = [nh for nh in nodes if nh.is_running()]
    for nh in chosen:
        nh.send_signal(signal.SIGTERM)
        nh.send_signal(signal.SIGCONT)
    deadline = time.monotonic() + timeout_s
    while any(nh.is_running() for nh in chosen) and time.monotonic() < deadline:
        time.sleep(0.05)
    for nh in chosen:
        if nh.is_running():
            kill(nh)
        nh.forget()


def kill(nh: NodeHandle) -> None:
    if nh.send_signal(signal.SIGKILL):
        wait_exit(nh, 10)
    nh.forget()


def wait_exit(nh: NodeHandle, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while nh.is_running() and time.monotonic() < deadline:
        time.sleep(0.02)


def wait_state(nh: NodeHandle, paused: bool, timeout_s: float = 5.0) -> None:
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


