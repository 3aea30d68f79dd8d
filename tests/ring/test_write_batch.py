"""WriteBatch: one flush pass per loop iteration, held behind the next iteration's callbacks."""
from __future__ import annotations

import asyncio

from ring.runtime.write_batch import WriteBatch


def _run(coro):
    return asyncio.run(coro)


def test_flushes_once_per_pass_in_order():
    async def main():
        batch, seen = WriteBatch(), []
        batch.want(lambda: seen.append("a"))
        batch.want(lambda: seen.append("b"))
        assert seen == []                       # nothing is written inside the asking call
        for _ in range(3):
            await asyncio.sleep(0)
        assert seen == ["a", "b"]
        assert batch.metrics() == {"write_batch_passes": 1, "write_batch_flushes": 2}
        batch.want(lambda: seen.append("c"))    # a later ask arms a new pass
        for _ in range(3):
            await asyncio.sleep(0)
        assert seen == ["a", "b", "c"] and batch.passes == 2
    _run(main())


def test_the_flush_waits_for_the_next_iterations_callbacks():
    """What is asked for in iteration N leaves after iteration N+1's callbacks (the I/O of N+1), so
    the output they produce shares the send; without the hold it leaves before them."""
    async def main(hold):
        loop = asyncio.get_running_loop()
        batch, seen = WriteBatch(hold=hold), []

        def next_iteration_io():                # stands for a data_received of iteration N+1
            seen.append("io")
            batch.want(lambda: seen.append("reply2"))

        batch.want(lambda: seen.append("flush"))
        loop.call_soon(next_iteration_io)      # queued behind the arming, as the next select's I/O is
        for _ in range(4):
            await asyncio.sleep(0)
        return seen, batch.passes
    assert _run(main(True)) == (["io", "flush", "reply2"], 1)
    assert _run(main(False)) == (["flush", "io", "reply2"], 2)


def test_a_failing_flush_does_not_keep_the_others():
    async def main():
        batch, seen = WriteBatch(), []

        def broken():
            raise OSError("gone")
        batch.want(broken)
        batch.want(lambda: seen.append("ok"))
        for _ in range(3):
            await asyncio.sleep(0)
        return seen
    assert _run(main()) == ["ok"]
