"""Write-behind rules (scenario 30) with an endpoint that records what it is sent: batches by count
and by time, retries that lose nothing and keep per-key order, full-log policies visible in the
metrics, flush on close, resume from the log after a restart. (The real endpoint and cluster:
test_space_cluster.py.)"""
import threading
import time

import pytest

from engine.errors import InvalidRequest
from persistency.descriptor import SpaceDocument
from persistency.mirror import Mirror, MirrorClosed
from persistency.operation import OperationType
from ring.errors import WriteTimeout

W = OperationType.WRITE


class RecordingEndpoint:
    def __init__(self, failures=0, gate=None):
        self.batches, self.failures, self.gate = [], failures, gate
        self.lock = threading.Lock()

    def on_operations_batch_synchronization(self, batch):
        if self.gate is not None:
            self.gate.wait()
        with self.lock:
            if self.failures:
                self.failures -= 1
                raise WriteTimeout("QUORUM", 1, 2)
            self.batches.append([(op.operation_type, op.document["id"], op.document["v"], op.timestamp_us)
                                 for op in batch.operations])

    def after_operations_batch_synchronization(self, batch):
        pass

    def delivered(self):
        with self.lock:
            return [op for b in self.batches for op in b]


def doc(i, v=0):
    return SpaceDocument("T", {"id": i, "v": v})


def wait_for(predicate, timeout_s=10.0):
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_a_small_burst_waits_for_the_interval_and_a_full_batch_goes_at_once(tmp_path):
    ep = RecordingEndpoint()
    m = Mirror(ep, str(tmp_path / "a"), batch_size=10, interval_ms=800)
    t0 = time.monotonic()
    for i in range(3):
        m.enqueue(W, doc(i))
    time.sleep(0.3)
    assert ep.delivered() == []
    wait_for(lambda: len(ep.delivered()) == 3)
    assert time.monotonic() - t0 >= 0.75
    m.close()

    ep = RecordingEndpoint()
    m = Mirror(ep, str(tmp_path / "b"), batch_size=10, interval_ms=60_000)
    for i in range(25):
        m.enqueue(W, doc(i))
    wait_for(lambda: len(ep.delivered()) == 20)
    assert [len(b) for b in ep.batches] == [10, 10]
    assert m.close() and [len(b) for b in ep.batches] == [10, 10, 5]   # close flushes the rest
    with pytest.raises(MirrorClosed):
        m.enqueue(W, doc(1))


def test_failures_are_retried_losing_nothing_and_keeping_order(tmp_path):
    ep = RecordingEndpoint(failures=3)
    m = Mirror(ep, str(tmp_path), batch_size=7, interval_ms=50, retry_initial_ms=10, retry_max_ms=40)
    for i in range(50):
        m.enqueue(W, doc(i % 5, v=i))
    assert m.flush(timeout_s=30)
    got = ep.delivered()
    assert [v for _, _, v, _ in got] == list(range(50))     # everything, once, in order
    stamps = [ts for *_, ts in got]
    assert stamps == sorted(stamps) and len(set(stamps)) == 50
    assert m.metrics["retries"] == 3 and m.metrics["delivered"] == 50
    m.close()


def test_restart_resumes_from_the_log_with_the_same_timestamps(tmp_path):
    ep = RecordingEndpoint(gate=threading.Event())   # the endpoint never answers
    m = Mirror(ep, str(tmp_path), batch_size=100, interval_ms=10)
    for i in range(30):
        m.enqueue(W, doc(i, v=i))
    assert not m.close(timeout_s=0.3)                  # could not flush: everything stays logged
    ep2 = RecordingEndpoint()
    m2 = Mirror(ep2, str(tmp_path), batch_size=100, interval_ms=10)
    assert m2.metrics["resumed"] == 30
    assert m2.close()
    assert [v for _, _, v, _ in ep2.delivered()] == list(range(30))
    assert len({ts for *_, ts in ep2.delivered()}) == 30
    ep.gate.set()


def test_full_log_blocks_writers_and_says_so(tmp_path):
    gate = threading.Event()
    ep = RecordingEndpoint(gate=gate)
    m = Mirror(ep, str(tmp_path), batch_size=2, interval_ms=10, capacity=4)
    for i in range(4):
        m.enqueue(W, doc(i, v=i))
    writer = threading.Thread(target=m.enqueue, args=(W, doc(9, v=4)))
    writer.start()
    time.sleep(0.3)
    assert writer.is_alive() and m.metrics["blocked"] >= 1
    gate.set()
    writer.join(10)
    assert m.close() and [v for _, _, v, _ in ep.delivered()] == [0, 1, 2, 3, 4]


def test_full_log_drops_the_oldest_and_says_so(tmp_path):
    gate = threading.Event()
    ep = RecordingEndpoint(gate=gate)
    m = Mirror(ep, str(tmp_path), batch_size=100, interval_ms=60_000, capacity=3, on_capacity_exceeded="drop-oldest")
    for i in range(5):
        m.enqueue(W, doc(i, v=i))
    assert m.metrics["dropped"] == 2 and m.pending() == 3
    gate.set()
    assert m.close() and [v for _, _, v, _ in ep.delivered()] == [2, 3, 4]


def test_bad_settings_are_clear_errors(tmp_path):
    for kw, word in (({"batch_size": 0}, "batch_size"), ({"capacity": -1}, "capacity"),
                     ({"on_capacity_exceeded": "ignore"}, "on_capacity_exceeded"), ({"sync": "never"}, "sync")):
        with pytest.raises(InvalidRequest, match=word):
            Mirror(RecordingEndpoint(), str(tmp_path), **kw)
