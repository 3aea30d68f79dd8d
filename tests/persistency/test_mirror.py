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


class PoisonEndpoint(RecordingEndpoint):
    """Fails every batch holding the document with v == "bad" with `error`; parks into `client`."""

    def __init__(self, error):
        super().__init__()
        self.error, self.client = error, self
        self.parked = []

    def on_operations_batch_synchronization(self, batch):
        if any(op.document["v"] == "bad" for op in batch.operations):
            raise self.error
        super().on_operations_batch_synchronization(batch)

    def ensure_dead_letter_table(self):
        pass

    def park(self, operation_id, type_name, operation_type, operation, error):
        self.parked.append(error)


def test_a_deterministic_error_parks_its_operation_at_once_and_the_rest_flow(tmp_path):
    """Issue 15, bug 3: a TypeError from a user serializer was retried forever (0 of 19 applied)."""
    ep = PoisonEndpoint(TypeError("user serializer: cannot encode"))
    m = Mirror(ep, str(tmp_path), batch_size=20, interval_ms=60_000, retry_initial_ms=10)
    for i in range(20):
        m.enqueue(W, doc(i, v="bad" if i == 7 else i))
    assert m.flush(timeout_s=10)
    assert sorted(i for _, i, _, _ in ep.delivered()) == [i for i in range(20) if i != 7]
    assert m.metrics["parked"] == 1 and m.metrics["retries"] == 0 and m.metrics["delivered"] == 20
    assert ep.parked == ["TypeError: user serializer: cannot encode"]
    assert m.close()


def test_an_unknown_error_is_retried_a_bounded_number_of_times_then_parked(tmp_path):
    ep = PoisonEndpoint(RuntimeError("odd"))
    m = Mirror(ep, str(tmp_path), batch_size=5, interval_ms=60_000, retry_initial_ms=1, retry_max_ms=2,
               max_attempts=3)
    for i in range(5):
        m.enqueue(W, doc(i, v="bad" if i == 0 else i))
    assert m.flush(timeout_s=10)
    assert m.metrics["parked"] == 1 and len(ep.delivered()) == 4
    assert m.metrics["retries"] == 2 + 2   # the batch: 3 attempts; the bad one alone: 3 attempts
    assert m.close()


def test_drop_oldest_counts_only_what_was_really_dropped(tmp_path):
    """Issue 15, bug 4: operations in the batch being sent were counted as dropped, yet delivered."""
    gate, entered = threading.Event(), threading.Event()

    class Stuck(RecordingEndpoint):
        def on_operations_batch_synchronization(self, batch):
            entered.set()
            super().on_operations_batch_synchronization(batch)
    ep = Stuck(gate=gate)
    m = Mirror(ep, str(tmp_path), batch_size=3, interval_ms=60_000, capacity=5, on_capacity_exceeded="drop-oldest")
    for i in range(3):
        m.enqueue(W, doc(i, v=i))
    assert entered.wait(10)                  # the endpoint is stuck on operations 0, 1, 2
    for i in range(3, 12):
        m.enqueue(W, doc(i, v=i))
    gate.set()
    assert m.flush(timeout_s=10)
    delivered = [v for _, _, v, _ in ep.delivered()]
    assert delivered == [0, 1, 2, 7, 8, 9, 10, 11]
    assert m.metrics["dropped"] == 4 == 12 - len(delivered)
    assert m.close()
