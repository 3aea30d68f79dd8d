"""`dynatable sim --sweep A..B`: many seeds in parallel processes, one verdict.

Each seed runs in a worker process with the swarm on (`ring.verify.swarm`): its own fault mix,
workload shape, node settings and, with `--levels random`, level pair. A clean sweep (no mutant)
must be clean on every seed; a mutant sweep must catch the mutant on some seed. The verdict line
is `clean n/n` or `caught k/n`, then the properties that failed and on how many seeds, then the
first failing seed's replay command (`dynatable sim --seed N --swarm ...`), which replays that
seed exactly in one process. A run that raises is reported as an error, never as a catch.

With `workload="cas"` (or "cas-list", the append-only list) each seed runs the lightweight-transaction workload (`tools.sim_run.run_cas_seed`)
instead; the summary adds the undecided counts (timed-out cas over all seeds, keys the WGL search
could not decide). A seed with an undecided key is neither clean nor a catch.
"""
from __future__ import annotations

import os
import sys
import time
from collections import Counter
from dataclasses import dataclass
from multiprocessing import get_context

from ring.verify.clustering_workload import run_clustering_seed
from tools.sim_run import TWO_DCS, cas_replay_command, replay_command, run_cas_seed, run_seed


@dataclass(frozen=True)
class SweepOptions:
    write_cl: str = "QUORUM"
    read_cl: str = "QUORUM"
    two_dcs: bool = False
    skew: bool = False
    mutant: str = ""
    steps: int | None = None        # None: the swarm plan's
    levels: str = "fixed"
    workload: str = "register"      # or "cas", "cas-list", "clustering"


@dataclass(frozen=True)
class SeedVerdict:
    seed: int
    properties: tuple[str, ...]     # the properties that failed; empty: the run passed
    error: str = ""                 # the run raised: neither clean nor a catch
    seconds: float = 0.0
    cas_undecided: int = 0          # cas workload: operations whose outcome stayed unknown (info)

    @property
    def failed(self) -> bool:
        return bool(self.properties)

    @property
    def caught(self) -> bool:
        """A property failed (a key the checker could not decide is no catch)."""
        return bool(set(self.properties) - {"undecided"})


def parse_range(text: str) -> range:
    """'A..B' (inclusive) -> range(A, B + 1); ValueError with a message saying what to write."""
    lo, sep, hi = text.partition("..")
    if not sep or not lo.strip().isdigit() or not hi.strip().isdigit() or int(hi) < int(lo):
        raise ValueError(f"--sweep takes A..B with 0 <= A <= B, e.g. --sweep 1..50 (got {text!r})")
    return range(int(lo), int(hi) + 1)


def run_one(args: tuple[int, SweepOptions]) -> SeedVerdict:
    seed, opt = args
    start = time.perf_counter()
    if opt.workload != "register":
        return _run_cas(seed, opt, start)
    try:
        _, failures = run_seed(seed, opt.write_cl, opt.read_cl, dcs=TWO_DCS if opt.two_dcs else None,
                               steps=opt.steps, skew=opt.skew, mutant=opt.mutant, use_swarm=True, levels=opt.levels)
    except Exception as exc:  # noqa: BLE001 - a crashed run is reported with its seed, never hidden
        return SeedVerdict(seed, (), f"{type(exc).__name__}: {exc}", time.perf_counter() - start)
    props = tuple(sorted({p for report in failures for p in report.properties()}))
    return SeedVerdict(seed, props, "", time.perf_counter() - start)


def _run_cas(seed: int, opt: SweepOptions, start: float) -> SeedVerdict:
    try:
        if opt.workload == "clustering":   # ring/verify/clustering_workload.py
            return SeedVerdict(seed, tuple(run_clustering_seed(seed, opt.mutant, opt.steps)[2]), "",
                               time.perf_counter() - start)
        result, _, failed = run_cas_seed(seed, mutant=opt.mutant, steps=opt.steps, workload=opt.workload)
    except Exception as exc:  # noqa: BLE001 - as run_one
        return SeedVerdict(seed, (), f"{type(exc).__name__}: {exc}", time.perf_counter() - start)
    return SeedVerdict(seed, tuple(sorted(failed)), "", time.perf_counter() - start,
                       result.events.get("cas_undecided", 0))


def _replay(seed: int, opt: SweepOptions) -> str:
    if opt.workload != "register":
        return cas_replay_command(seed, opt.mutant, opt.steps, opt.workload)
    return replay_command(seed, opt.write_cl, opt.read_cl, TWO_DCS if opt.two_dcs else None, opt.skew, opt.mutant,
                          use_swarm=True, levels=opt.levels, steps=opt.steps)


def sweep(seeds: range, opt: SweepOptions, jobs: int, progress=None) -> list[SeedVerdict]:
    """Run every seed on `jobs` processes; `progress(done, total)` after each. Sorted by seed."""
    work = [(seed, opt) for seed in seeds]
    out: list[SeedVerdict] = []
    if jobs <= 1:
        results = map(run_one, work)
        pool = None
    else:
        pool = get_context("fork").Pool(jobs)
        results = pool.imap_unordered(run_one, work, chunksize=1)
    try:
        for verdict in results:
            out.append(verdict)
            if progress:
                progress(len(out), len(work))
    finally:
        if pool is not None:
            pool.close()
            pool.join()
    return sorted(out, key=lambda v: v.seed)


def summary(verdicts: list[SeedVerdict], opt: SweepOptions) -> tuple[list[str], bool]:
    """The report lines and whether the sweep passed (clean: no failure; mutant: some catch)."""
    n = len(verdicts)
    failed = [v for v in verdicts if v.failed]
    caught = [v for v in verdicts if v.caught]
    errors = [v for v in verdicts if v.error]
    lines = [f"caught {len(caught)}/{n}" if opt.mutant else f"clean {n - len(failed) - len(errors)}/{n}"]
    if opt.workload.startswith("cas"):
        undecided_seeds = sum("undecided" in v.properties for v in verdicts)
        lines.append(f"undecided: {sum(v.cas_undecided for v in verdicts)} cas timed out (info) over {n} seeds; "
                     f"{undecided_seeds} seed(s) with a key the checker could not decide")
    if failed:
        props = Counter(p for v in failed for p in v.properties)
        lines.append("failed: " + ", ".join(f"{p} on {k} seed{'s' * (k > 1)}" for p, k in sorted(props.items())))
        first = failed[0]
        lines.append("first failing seed: " + _replay(first.seed, opt))
    for v in errors[:5]:
        lines.append(f"error on seed {v.seed}: {v.error}")
    if errors:
        lines.append(f"{len(errors)} seed(s) raised; replay one with: " + _replay(errors[0].seed, opt))
    passed = (bool(caught) if opt.mutant else not failed) and not errors
    return lines, passed


def main(seeds: range, opt: SweepOptions, jobs: int | None) -> bool:
    jobs = max(1, jobs or os.cpu_count() or 1)
    tty = sys.stdout.isatty()
    start = time.perf_counter()
    what = f"mutant {opt.mutant}" if opt.mutant else "no mutant"
    levels = "random levels" if opt.levels == "random" else f"{opt.write_cl}/{opt.read_cl}"
    if opt.workload != "register":
        levels = f"{opt.workload} workload, {'ALL/QUORUM' if opt.workload == 'clustering' else 'SERIAL'}"

    def progress(done: int, total: int) -> None:
        if tty:
            print(f"\rsweep {seeds.start}..{seeds.stop - 1}: {done}/{total} seeds", end="", flush=True)

    verdicts = sweep(seeds, opt, jobs, progress)
    elapsed = time.perf_counter() - start
    if tty:
        print("\r", end="")
    print(f"sweep {seeds.start}..{seeds.stop - 1} ({what}, {levels}{', two DCs' if opt.two_dcs else ''}): "
          f"{len(verdicts)} seeds in {elapsed:.1f} s on {jobs} process{'es' * (jobs > 1)}")
    lines, passed = summary(verdicts, opt)
    for line in lines:
        print(line)
    return passed
