"""`dynatable sim --seed N`: replay one seeded simulation run and check its history.

The same seed gives the same run (and the same trace digest) on any machine; a failing property
test prints the command that replays it. `--verbose` prints the trace: every delivery, reply and
fault with its virtual time.
"""
from __future__ import annotations

from rich.console import Console

from ring.verify.checkers import check_convergence, check_linearizable, check_lww
from ring.verify.workload import Workload


def check_run(result) -> list:
    """Run the checkers whose preconditions the run's level pair meets; returns failed reports."""
    exp = result.expectations
    reports = [check_lww(result.history, expect_overlap=exp["overlap"], expect_monotonic=exp["monotonic"],
                         expect_ryw=exp["ryw"]),
               check_convergence(result.replica_cells, result.history)]
    if exp["linearizable"]:
        reports.append(check_linearizable(result.history, max_steps=200_000))
    return [r for r in reports if not r.ok]


def run_seed(seed: int, write_cl: str = "QUORUM", read_cl: str = "QUORUM", *, dcs=None, steps: int = 300,
             faults: bool = True, skew: bool = False, mutant: str = "", trace: bool = False):
    options = {"canary_mutant": mutant} if mutant else None
    result = Workload(seed, write_cl, read_cl, dcs=dcs, faults=faults, skew=skew, node_options=options,
                      trace=trace).run(steps)
    return result, check_run(result)


def replay_command(seed: int, write_cl: str, read_cl: str, dcs=None, skew: bool = False, mutant: str = "") -> str:
    parts = [f"dynatable sim --seed {seed} --write {write_cl} --read {read_cl}"]
    if dcs and len(set(dcs)) > 1:
        parts.append("--two-dcs")
    if skew:
        parts.append("--skew")
    if mutant:
        parts.append(f"--mutant {mutant}")
    return " ".join(parts)


def main(seed: int, write_cl: str, read_cl: str, two_dcs: bool, skew: bool, mutant: str, steps: int,
         verbose: bool) -> bool:
    console = Console()
    dcs = ["dc1", "dc1", "dc1", "dc2", "dc2", "dc2"] if two_dcs else None
    result, failures = run_seed(seed, write_cl, read_cl, dcs=dcs, steps=steps, skew=skew, mutant=mutant,
                                trace=verbose)
    if verbose and result.trace:
        for line in result.trace:
            console.print(line, highlight=False, markup=False)
    ops = result.history.ops
    console.print(f"seed={seed} write={write_cl} read={read_cl} ops={len(ops)} "
                  f"ok={sum(o.outcome == 'ok' for o in ops)} info={sum(o.outcome == 'info' for o in ops)} "
                  f"fail={sum(o.outcome == 'fail' for o in ops)} trace={result.digest}")
    console.print(f"promised: {', '.join(k for k, v in result.expectations.items() if v) or 'convergence only'}")
    console.print(f"events: {dict(sorted(result.events.items()))}", highlight=False)
    for report in failures:
        console.print(str(report), highlight=False, markup=False)
    if failures:
        console.print(f"[bold red]FAILED[/]; replay: {replay_command(seed, write_cl, read_cl, dcs, skew, mutant)}")
        return False
    console.print("[bold green]OK[/]: every promised property held")
    return True
