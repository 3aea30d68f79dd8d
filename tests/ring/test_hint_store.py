"""HintStore delivery bookkeeping: batches start after the last hint handed out, a failed
delivery is handed out again, and every hint is delivered exactly once in the end."""
import random

from engine.schema import make_table
from engine.store import Store
from ring.hinted_handoff import HintStore


def test_batches_with_failures_deliver_every_hint_once(tmp_path):
    with Store.open(str(tmp_path), background=False) as store:
        store.create_keyspace("system", {"class": "LocalStrategy"})
        hints = HintStore(store)
        table = make_table("ks", "kv", {"k": "int", "v": "text"}, "k")
        for i in range(300):
            hints.store_hint("host-b", "10.0.0.2:9100", table, b"k%d" % i, b"p", 1_000 + i)
        rng = random.Random(7)
        delivered: list[int] = []
        in_flight: list[int] = []
        rounds = 0
        while hints.pending.get("host-b") and rounds < 1000:
            rounds += 1
            for row in hints.next_batch("host-b", 16):
                hints.in_flight.add(("host-b", row["id"]))
                in_flight.append(row["id"])
            rng.shuffle(in_flight)
            for hint_id in in_flight[: rng.randint(0, len(in_flight))]:
                in_flight.remove(hint_id)
                if rng.random() < 0.2:
                    hints.failed("host-b", hint_id)
                else:
                    hints.delivered("host-b", hint_id)
                    delivered.append(hint_id)
        assert sorted(delivered) == sorted(set(delivered)) and len(delivered) == 300
        assert hints.next_batch("host-b", 16) == [] and "host-b" not in hints.pending
