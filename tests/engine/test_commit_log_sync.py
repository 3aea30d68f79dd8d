"""Group commit (engine/commit_log_sync.py): acknowledged == durable, no lost wake-ups, a failed
fsync fails its whole batch and stops the log, leadership hand-over.

Durability is judged by a witness outside the commit log: os.fdatasync is wrapped (the real call
still runs) to record, per file, the length it had when an fdatasync on it returned. A "machine
crash at the ack instant" is a copy of every file cut to that length, replayed by a fresh
CommitLog. Faults (EIO, a slow disk) are injected at the same boundary.
"""
from __future__ import annotations

import errno
import os
import threading
import time

import pytest

from engine.commit_log import CommitLog
from engine.errors import EngineError

THREADS = 32
JOIN_S = float(os.environ.get("DT_TEST_JOIN_S", 60))   # a hang is a failure, never a stuck run


class DurableWitness:
    """Wraps os.fdatasync: path -> bytes known durable (the length before a successful call)."""

    def __init__(self, monkeypatch):
        self.real = os.fdatasync
        self.lock = threading.Lock()
        self.durable: dict[str, int] = {}
        self.calls: list[str] = []          # thread names, one per fdatasync
        self.fault = None                    # fault(fd) may block or raise before the real call
        monkeypatch.setattr(os, "fdatasync", self.fdatasync)

    def fdatasync(self, fd):
        path = os.readlink(f"/proc/self/fd/{fd}")
        size = os.fstat(fd).st_size
        if self.fault is not None:
            self.fault(fd)
        self.real(fd)
        with self.lock:
            self.calls.append(threading.current_thread().name)
            self.durable[path] = max(size, self.durable.get(path, 0))

    def crash_image(self, directory: str, target: str) -> str:
        """The directory as a machine crash now would leave it: only fdatasync'ed bytes."""
        os.makedirs(target)
        with self.lock:
            durable = dict(self.durable)
        for path, length in durable.items():
            if os.path.dirname(path) == os.path.abspath(directory) and os.path.exists(path):
                with open(path, "rb") as src, open(os.path.join(target, os.path.basename(path)), "wb") as dst:
                    dst.write(src.read(length))
        return target


def replay(directory: str) -> set[bytes]:
    cl = CommitLog(directory)
    try:
        return {payload for _, payload in cl.replay()}
    finally:
        cl.close()


def run_threads(target, n=THREADS) -> None:
    threads = [threading.Thread(target=target, args=(t,), daemon=True, name=f"w{t}") for t in range(n)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + JOIN_S
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    stuck = [t.name for t in threads if t.is_alive()]
    assert not stuck, f"writers never woke (lost wake-up): {stuck}"


@pytest.mark.parametrize("mode,window_ms", [("batch", 0), ("group", 0.5)])
def test_acknowledged_is_durable_at_the_ack_instant(tmp_path, monkeypatch, mode, window_ms):
    witness = DurableWitness(monkeypatch)
    d = str(tmp_path / "cl")
    cl = CommitLog(d, sync=mode, group_window_ms=window_ms, segment_size_bytes=8192)
    acked: list[bytes] = []
    acked_lock = threading.Lock()
    images: list[tuple[str, int]] = []      # (crash image, how many acks preceded it)

    def writer(t):
        for i in range(30):
            payload = b"%d:%d:" % (t, i) + b"x" * 40
            cl.add(payload)
            with acked_lock:
                acked.append(payload)
                n = len(acked)
            if i % 10 == 9:                  # a machine crash right after this ack
                image = witness.crash_image(d, str(tmp_path / f"img-{t}-{i}"))
                images.append((image, n))

    run_threads(writer)
    assert len(acked) == THREADS * 30 and len(images) == THREADS * 3
    for image, n in images:
        present = replay(image)
        lost = [p for p in acked[:n] if p not in present]
        assert not lost, f"{image}: {len(lost)} acknowledged records not durable, e.g. {lost[0]!r}"
    cl.crash()                               # no close, no final sync
    final = witness.crash_image(d, str(tmp_path / "final"))
    assert set(acked) <= replay(final)
    assert cl.stats["syncs"] < len(acked)    # writers shared fsyncs


@pytest.mark.parametrize("mode,window_ms", [("batch", 0), ("group", 0.2), ("group", 2)])
def test_no_lost_wakeups_32_writers(tmp_path, mode, window_ms):
    cl = CommitLog(str(tmp_path / "cl"), sync=mode, group_window_ms=window_ms, segment_size_bytes=16384)
    done = [0] * THREADS

    def writer(t):
        for i in range(60):
            pos = cl.add(b"%d:%d" % (t, i))
            assert cl._synced >= pos
            done[t] += 1
            if i % 7 == t % 7:
                time.sleep(0.0005)           # stagger: writers arrive during fsyncs, not in step

    run_threads(writer)
    assert done == [60] * THREADS
    assert cl._waiters.handovers > 0         # the hand-over path ran
    cl.close()
    assert len(replay(str(tmp_path / "cl"))) == THREADS * 60


def test_fsync_error_fails_the_whole_batch_and_stops_the_log(tmp_path, monkeypatch):
    witness = DurableWitness(monkeypatch)
    cl = CommitLog(str(tmp_path / "cl"), sync="batch")
    cl.add(b"before")                        # one good sync
    failed: dict[str, BaseException] = {}
    acked_after: list[str] = []
    armed = threading.Event()

    def eio(fd):
        if not armed.is_set():
            return
        deadline = time.monotonic() + 10     # hold the fsync until everyone else sleeps
        while cl._waiters.queued() < THREADS - 1 and time.monotonic() < deadline:
            time.sleep(0.001)
        raise OSError(errno.EIO, "Input/output error (injected)")

    witness.fault = eio
    armed.set()

    def writer(t):
        try:
            cl.add(b"doomed-%d" % t)
            acked_after.append(threading.current_thread().name)
        except EngineError as e:
            failed[threading.current_thread().name] = e

    run_threads(writer)
    assert acked_after == [], "a write was acknowledged by a failed fsync"
    assert len(failed) == THREADS
    assert all("Input/output error (injected)" in str(e) for e in failed.values())
    with pytest.raises(EngineError, match="failed and stopped"):
        cl.add(b"after")
    with pytest.raises(EngineError, match="failed and stopped"):
        cl.append(b"after")
    cl.close()


def test_leadership_is_handed_to_a_sleeping_writer(tmp_path, monkeypatch):
    witness = DurableWitness(monkeypatch)
    cl = CommitLog(str(tmp_path / "cl"), sync="batch")
    gate = threading.Event()
    in_fsync = threading.Event()

    def slow_first(fd):
        if threading.current_thread().name == "A":
            in_fsync.set()
            assert gate.wait(JOIN_S)

    witness.fault = slow_first
    positions = {}

    def add(name):
        positions[name] = cl.add(name.encode())

    a = threading.Thread(target=add, args=("A",), name="A", daemon=True)
    a.start()
    assert in_fsync.wait(JOIN_S)             # A leads S1 and sits in its fdatasync
    others = [threading.Thread(target=add, args=(n,), name=n, daemon=True) for n in ("B", "C")]
    for t in others:
        t.start()
        deadline = time.monotonic() + JOIN_S
        while cl._waiters.queued() < others.index(t) + 1 and time.monotonic() < deadline:
            time.sleep(0.001)
    assert cl._waiters.queued() == 2         # B and C sleep on the open batch
    gate.set()
    for t in [a] + others:
        t.join(JOIN_S)
        assert not t.is_alive(), f"{t.name} never woke"
    assert witness.calls == ["A", "B"]       # A did not lead again: B was handed the role
    assert cl._waiters.handovers == 1
    assert cl._synced >= max(positions.values())
    cl.crash()
    assert replay(str(tmp_path / "cl")) == {b"A", b"B", b"C"}


def woken(slot):
    """SyncWaiters.wait for a slot that must have been released already (one thread: never block)."""
    from engine.commit_log_sync import SyncWaiters
    assert not slot[1].locked(), "this writer was never woken"
    return SyncWaiters.wait(*slot)


def test_relay_wakes_each_writer_once_when_a_candidate_finds_its_batch_done():
    """SyncWaiters alone, one thread: a writer handed leadership whose batch a newcomer then
    synced returns durable without waking anyone; the relay wakes the rest, each exactly once
    (a second release of a lock raises RuntimeError)."""
    from engine.commit_log_sync import SyncWaiters, release_all
    w = SyncWaiters()
    w.take((1, 10))                                          # S1 in flight up to offset 10
    slots = [w.enlist((1, 20 + i)) for i in range(3)]        # three writers on the open batch
    assert w.queued() == 3 and all(b is w.open for b, _, _ in slots)
    first = w.complete()                                     # S1 done: hand-over to the first
    assert first == [slots[0][1]] and w.queued() == 2
    release_all(first)
    w.take((1, 30))                                          # a newcomer takes the open batch
    relay = w.complete()                                     # ... and syncs it
    assert relay == [slots[1][1]]
    release_all(relay)
    assert woken(slots[0]) is True                           # candidate: covered, relays nothing
    assert slots[2][1].locked()                              # still asleep until its turn
    assert woken(slots[1]) is True                           # relays to the third
    assert woken(slots[2]) is True


def test_failure_reaches_every_waiter_through_the_relay():
    from engine.commit_log_sync import SyncWaiters, release_all
    w = SyncWaiters()
    w.take((1, 10))
    inflight = [w.enlist((1, 5 + i)) for i in range(3)]
    queued = [w.enlist((1, 20 + i)) for i in range(3)]
    release_all(w.fail(EngineError("disk gone")))
    for slot in inflight + queued:
        with pytest.raises(EngineError, match="disk gone"):
            woken(slot)


def test_group_window_ends_when_as_many_writers_as_last_time_wait(tmp_path):
    """group mode: a leader sleeps out group_window_ms (here 30 s) unless the open batch holds as
    many sleepers as the last sync acknowledged; then it syncs at once."""
    cl = CommitLog(str(tmp_path / "cl"), sync="group", group_window_ms=30_000)

    def leader_in_window(rnd):
        t = threading.Thread(target=cl.add, args=(b"L%d" % rnd,), daemon=True, name="L")
        t.start()
        deadline = time.monotonic() + JOIN_S
        while cl._waiters.window_gate is None and time.monotonic() < deadline:
            time.sleep(0.001)
        assert cl._waiters.window_gate is not None, "the leader is not waiting out its window"
        return t

    for rnd in range(3):
        t0 = time.monotonic()
        leader = leader_in_window(rnd)
        if rnd == 2:                          # fewer sleepers than last time: the window holds
            time.sleep(0.3)
            assert leader.is_alive(), "the leader cut its window short with no one waiting"
        cl.add(b"B%d" % rnd)                  # one sleeper, as many as the last sync acked
        leader.join(10)
        assert not leader.is_alive() and time.monotonic() - t0 < 10
        assert cl._waiters.expected == 1
    cl._waiters.expected = 2                  # as if the last sync had acked two sleepers
    leader = leader_in_window(3)
    followers = [threading.Thread(target=cl.add, args=(b"F%d" % i,), daemon=True) for i in range(2)]
    followers[0].start()
    deadline = time.monotonic() + JOIN_S
    while cl._waiters.queued() < 1 and time.monotonic() < deadline:
        time.sleep(0.001)
    time.sleep(0.3)
    assert leader.is_alive() and followers[0].is_alive(), "one sleeper of two ended the window"
    followers[1].start()
    for t in [leader] + followers:
        t.join(10)
        assert not t.is_alive()
    cl.close()
    assert len(replay(str(tmp_path / "cl"))) == 9


def test_a_leader_interrupted_in_its_window_hands_the_role_over(tmp_path, monkeypatch):
    """An exception (say KeyboardInterrupt) in a leader's window wait must not leave the sync
    role taken: the writer sleeping on the open batch is handed it and gets its sync."""
    import engine.commit_log_sync as commit_log_module

    class Interrupted(Exception):
        pass

    real_lock = commit_log_module.allocate_lock

    class InterruptedGate:                     # the window gate: its timed wait is interrupted
        def __init__(self):
            self.lock = real_lock()

        def acquire(self, timeout=-1):
            if timeout != -1:
                time.sleep(0.2)
                raise Interrupted()
            return self.lock.acquire()

        def release(self):
            self.lock.release()

    cl = CommitLog(str(tmp_path / "cl"), sync="group", group_window_ms=1500)
    monkeypatch.setattr(commit_log_module, "allocate_lock", InterruptedGate)
    raised = []

    def leader():
        try:
            cl.add(b"L")
        except Interrupted:
            raised.append(True)

    t = threading.Thread(target=leader, daemon=True)
    t.start()
    deadline = time.monotonic() + JOIN_S
    while cl._waiters.window_gate is None and time.monotonic() < deadline:
        time.sleep(0.001)
    monkeypatch.setattr(commit_log_module, "allocate_lock", real_lock)
    cl._waiters.expected = 5                   # B alone does not end the window
    b = threading.Thread(target=cl.add, args=(b"B",), daemon=True)
    b.start()
    t.join(10)
    b.join(10)
    assert raised == [True] and not b.is_alive(), "the sleeper was stranded by the interrupted leader"
    assert not cl._syncing
    cl.close()
    assert replay(str(tmp_path / "cl")) >= {b"B"}
