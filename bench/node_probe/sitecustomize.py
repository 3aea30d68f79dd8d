"""Node CPU by loop callback, for bench/cql.py --node-cpu DIR (not a package: its directory goes on
the nodes' PYTHONPATH, and Python imports this file at start as `sitecustomize`).

Active only in node processes (`-m ring.runtime.asyncio_tcp`) with DYNATABLE_NODE_CPU_DIR set;
otherwise it does nothing. It times, in CPU seconds of the node's thread (time.thread_time, so a
preempted node is not charged), every asyncio callback by kind (a socket read by its protocol and
role; a call_soon by its function), the epoll wait, and a few entry points nested inside those
(NodeProcess.submit: the coordinator's start of an operation; Node.step: a peer message; the CQL
and own-protocol front ends). SIGUSR1 starts a phase (counters cleared); SIGUSR2 writes
{"total": thread CPU s, "acc": {kind: s}, "cnt": {kind: calls}} to DIR/<pid>-<phase>.json, the
phase named by DIR/phase. Each timed call costs two clock reads (~0.5 us): compare phases of one
run with each other, not with unprobed figures.
"""
import os
import sys

if os.environ.get("DYNATABLE_NODE_CPU_DIR") and "ring.runtime.asyncio_tcp" in sys.orig_argv:
    import asyncio.events
    import collections
    import functools
    import importlib
    import json
    import selectors
    import signal
    import time

    _DIR = os.environ["DYNATABLE_NODE_CPU_DIR"]
    _clock = time.thread_time
    _acc: dict = collections.defaultdict(float)
    _cnt: collections.Counter = collections.Counter()
    _state = {"t0": _clock(), "nested": False}
    NESTED = (("__main__", "NodeProcess", "submit"), ("__main__", "NodeProcess", "step"),
              ("ring.node", "Node", "submit"), ("ring.node", "Node", "step"),
              ("ring.cql.server", "ServerConnection", "receive_data"),
              ("ring.runtime.native_transport", "NativeTransport", "_on_reply"),
              ("ring.runtime.listener", "Listener", "_respond"), ("ring.runtime.peers", "Peers", "send"))

    def _kind(callback) -> str:
        f = callback.func if isinstance(callback, functools.partial) else callback
        name = getattr(f, "__qualname__", type(f).__name__)
        if "_read_ready" in name:
            protocol = getattr(getattr(f, "__self__", None), "_protocol", None)
            role = getattr(protocol, "role", None)
            return f"read {type(protocol).__name__}" + (f" ({role})" if role else "")
        return name

    _run = asyncio.events.Handle._run

    def _timed_run(self):
        t = _clock()
        try:
            return _run(self)
        finally:
            kind = _kind(self._callback)
            _acc[kind] += _clock() - t
            _cnt[kind] += 1

    asyncio.events.Handle._run = _timed_run
    _select = selectors.EpollSelector.select

    def _timed_select(self, timeout=None):
        t = _clock()
        try:
            return _select(self, timeout)
        finally:
            _acc["epoll"] += _clock() - t
            _cnt["epoll"] += 1

    selectors.EpollSelector.select = _timed_select

    def _wrap(module: str, cls: str, attr: str) -> None:
        owner = getattr(importlib.import_module(module), cls)
        raw = owner.__dict__[attr]
        f = raw.__func__ if isinstance(raw, staticmethod) else raw
        kind = f"  in {cls}.{attr}"

        def timed(*args, **kwargs):
            t = _clock()
            try:
                return f(*args, **kwargs)
            finally:
                _acc[kind] += _clock() - t
                _cnt[kind] += 1
        setattr(owner, attr, staticmethod(timed) if isinstance(raw, staticmethod) else timed)

    def _start(*_):
        if not _state["nested"]:           # the node's modules are all loaded by the first phase
            _state["nested"] = True
            for where in NESTED:
                _wrap(*where)
        _acc.clear()
        _cnt.clear()
        _state["t0"] = _clock()

    def _dump(*_):
        with open(os.path.join(_DIR, "phase")) as f:
            phase = f.read().strip()
        path = os.path.join(_DIR, f"{os.getpid()}-{phase}.json")
        with open(path + ".tmp", "w") as f:
            json.dump({"total": _clock() - _state["t0"], "acc": dict(_acc), "cnt": dict(_cnt)}, f)
        os.replace(path + ".tmp", path)             # whole, or not there yet

    signal.signal(signal.SIGUSR1, _start)
    signal.signal(signal.SIGUSR2, _dump)
