"""ring/runtime/gc_inspector.py: the collector's tuning and the pauses it counts (the real gc)."""
import gc
import logging
import subprocess
import sys

from ring.runtime.gc_inspector import GcInspector, tune


def test_every_collection_is_counted_per_generation_and_a_long_pause_is_logged(caplog):
    ticks = iter(range(0, 10_000, 5))                   # each clock read 5 s later: every pause is 5000 ms
    inspector = GcInspector(log_threshold_ms=1000, clock=lambda: next(ticks))
    try:
        with caplog.at_level(logging.INFO, logger="dynatable.gc"):
            gc.collect()
            gc.collect(0)
    finally:
        inspector.close()
    assert inspector.collections[2] >= 1 and inspector.collections[0] >= 1
    m = inspector.metrics()
    assert m["gc_pause_max_ms"] == 5000 and m["gc_pause_ms_gen2"] >= 5000
    assert "GC generation 2 paused the loop 5000 ms" in caplog.text
    gc.collect()
    assert inspector.metrics() == m                     # unhooked


def test_tune_freezes_and_raises_the_young_threshold_and_zero_leaves_python_alone():
    code = ("import gc; from ring.runtime.gc_inspector import tune; before = gc.get_threshold(); tune(0); "
            "assert gc.get_threshold() == before and gc.get_freeze_count() == 0; tune(5000); "
            "assert gc.get_threshold()[0] == 5000 and gc.get_freeze_count() > 0, gc.get_threshold()")
    subprocess.run([sys.executable, "-c", code], check=True)
    assert tune(0) is None and gc.get_freeze_count() == 0   # this process is not touched
