"""`dynatable sim --seed N`: replay one seeded simulation run and check its history.

The same seed gives the same run (and the same trace digest) on any machine; a failing property
test prints the command that replays it. `--verbose` prints the trace: every delivery, reply and
fault with its virtual time. With `--swarm` the seed also draws its fault mix, workload shape and
node settings (`ring.verify.swarm`), and with `--levels random` its level pair; without them a
seed runs the classic gentle plan and prints exactly what it always printed.

`--workload cas` replays the lightweight-transaction workload instead (`ring.verify.cas_workload`:
CAS registers on hot keys under every simulator fault, checked with WGL): it prints the verdict, the
undecided counts (timed-out cas, keys the WGL search could not decide within its budget) and the
Paxos counters. A key left undecided fails the run: it is never counted as a pass.
`--workload cas-list` runs the same plan with the CAS-built append-only list (`shape="list"`),
checked with WGL and `cas_workload.check_append_only`.
"""
from __future__ import annotations

from rich.console import Console

from ring.verify import swarm
from ring.verify.cas_workload import CasWorkload, check_append_only
from ring.verify.checkers import check_convergence, check_lww, check_replicas
from ring.verify.linearizability import check_linearizable
from ring.verify.workload import Workload

TWO_DCS = ["dc1", "dc1", "dc1", "dc2", "dc2", "dc2"]
CAS_STEPS = 1500                  # CasWorkload.run's default
CAS_MAX_STEPS = 1_000_000         # the WGL budget per key, as tests/sim/test_lwt.py


def check_run(result) -> list:
    """Run the checkers whose preconditions the run's level pair meets; returns failed reports."""
    exp = result.expectations
    reports = [check_lww(result.history, expect_overlap=exp["overlap"], expect_monotonic=exp["monotonic"],
                         expect_ryw=exp["ryw"]),
               check_convergence(result.replica_cells, result.history, result.unseen),
               check_replicas(result.observed)]
    if exp["linearizable"]:
        reports.append(check_linearizable(result.history, max_steps=200_000))
    return [r for r in reports if not r.ok]


def run_seed(seed: int, write_cl: str = "QUORUM", read_cl: str = "QUORUM", *, dcs=None, steps: int | None = None,
             faults: bool = True, skew: bool = False, mutant: str = "", trace: bool = False,
             use_swarm: bool = False, levels: str = "fixed"):
    """One run and its failed reports. `use_swarm` draws the seed's plan (`levels="random"`: and its
    level pair, which then replaces `write_cl`/`read_cl`); `skew` forces skew on."""
    options = {"canary_mutant": mutant} if mutant else None
    plan = None
    if use_swarm or levels == "random":
        plan = swarm.draw(seed, nodes=len(dcs or [0] * 3), dcs=len(set(dcs or ["dc1"])), skew=True if skew else None,
                          levels=levels)
        write_cl, read_cl = plan.write_cl or write_cl, plan.read_cl or read_cl
    result = Workload(seed, write_cl, read_cl, dcs=dcs, faults=faults, skew=skew, node_options=options,
                      trace=trace, plan=plan).run(steps)
    return result, check_run(result)


def run_cas_seed(seed: int, *, mutant: str = "", steps: int | None = None, workload: str = "cas"):
    """One CAS-workload run (`workload` "cas": registers; "cas-list": the append-only list), its WGL
    report and its failed properties ("P3": not linearizable; "undecided": a key the search could
    not decide within CAS_MAX_STEPS; "list": an append-only list property broken)."""
    shape = "list" if workload == "cas-list" else "register"
    result = CasWorkload(seed, node_options={"canary_mutant": mutant} if mutant else None,
                         shape=shape).run(steps or CAS_STEPS)
    report = check_linearizable(result.history, max_steps=CAS_MAX_STEPS)
    failed = report.properties() | ({"undecided"} if report.stats["unknown"] else set())
    if shape == "list":
        result.events["list_problems"] = problems = check_append_only(result.history)
        failed |= {"list"} if problems else set()
    return result, report, failed


def cas_replay_command(seed: int, mutant: str = "", steps: int | None = None, workload: str = "cas") -> str:
    return " ".join([f"dynatable sim --seed {seed} --workload {workload}"] + ([f"--mutant {mutant}"] if mutant else [])
                    + ([f"--steps {steps}"] if steps else []))


def main_cas(seed: int, mutant: str, steps: int | None, workload: str = "cas") -> bool:
    """Replay one CAS-workload seed; print its counts, the checker's verdict and, if it failed, the replay."""
    console = Console()
    result, report, failed = run_cas_seed(seed, mutant=mutant, steps=steps, workload=workload)
    ops, ev = result.history.ops, result.events
    problems = ev.pop("list_problems", [])
    console.print(f"seed={seed} workload={workload} ops={len(ops)} ok={sum(o.outcome == 'ok' for o in ops)} "
                  f"info={sum(o.outcome == 'info' for o in ops)} fail={sum(o.outcome == 'fail' for o in ops)} "
                  f"trace={result.digest}", highlight=False)
    console.print(f"cas: applied={ev.get('cas_applied', 0)} not_applied={ev.get('cas_not_applied', 0)} "
                  f"undecided={ev.get('cas_undecided', 0)} serial_reads={ev.get('ok_serial_read', 0)}; "
                  f"keys undecided by the checker: {report.stats['unknown']} of {report.stats['keys']} "
                  f"(WGL steps {report.stats['steps']})", highlight=False)
    console.print(f"events: {dict(sorted(ev.items()))}", highlight=False)
    if not report.ok:
        console.print(str(report), highlight=False, markup=False)
    for problem in problems:
        console.print(f"append-only list: {problem}", highlight=False, markup=False)
    if failed:
        why = "not linearizable" if "P3" in failed else "append-only list broken" if "list" in failed else \
            f"undecided keys {report.stats['unknown_keys']}"
        console.print(f"[bold red]FAILED[/] ({why}); replay: {cas_replay_command(seed, mutant, steps, workload)}",
                      soft_wrap=True)
        return False
    console.print("[bold green]OK[/]: linearizable (every key decided)"
                  + ("; every list append-only, no acknowledged append lost" if workload == "cas-list" else ""))
    return True


def main_clustering(seed: int, mutant: str, steps: int | None, workload: str = "clustering") -> bool:
    """Replay one clustering-workload seed (ring/verify/clustering_workload.py); print its verdict."""
    from ring.verify.clustering_workload import run_clustering_seed
    result, report, failed = run_clustering_seed(seed, mutant, steps)
    print(f"seed={seed} workload=clustering {result.counts} trace={result.digest}")
    print(str(report))
    if failed:
        print(f"FAILED (rows); replay: {cas_replay_command(seed, mutant, steps, workload)}")
        return False
    print("OK: every read matched the model")
    return True


def replay_command(seed: int, write_cl: str, read_cl: str, dcs=None, skew: bool = False, mutant: str = "", *,
                   use_swarm: bool = False, levels: str = "fixed", steps: int | None = None) -> str:
    parts = [f"dynatable sim --seed {seed}"]
    if levels == "random":
        parts.append("--levels random")
    else:
        parts.append(f"--write {write_cl} --read {read_cl}")
        if use_swarm:
            parts.append("--swarm")
    if dcs and len(set(dcs)) > 1:
        parts.append("--two-dcs")
    if skew:
        parts.append("--skew")
    if mutant:
        parts.append(f"--mutant {mutant}")
    if steps:
        parts.append(f"--steps {steps}")
    return " ".join(parts)


def main(seed: int, write_cl: str, read_cl: str, two_dcs: bool, skew: bool, mutant: str, steps: int | None,
         verbose: bool, use_swarm: bool = False, levels: str = "fixed") -> bool:
    console = Console()
    dcs = TWO_DCS if two_dcs else None
    result, failures = run_seed(seed, write_cl, read_cl, dcs=dcs, steps=steps, skew=skew, mutant=mutant,
                                trace=verbose, use_swarm=use_swarm, levels=levels)
    if verbose and result.trace:
        for line in result.trace:
            console.print(line, highlight=False, markup=False)
    ops = result.history.ops
    console.print(f"seed={seed} write={result.write_cl} read={result.read_cl} ops={len(ops)} "
                  f"ok={sum(o.outcome == 'ok' for o in ops)} info={sum(o.outcome == 'info' for o in ops)} "
                  f"fail={sum(o.outcome == 'fail' for o in ops)} trace={result.digest}")
    if use_swarm or levels == "random":
        console.print(f"swarm: {result.plan.describe()}", highlight=False, markup=False, soft_wrap=True)
    console.print(f"promised: {', '.join(k for k, v in result.expectations.items() if v) or 'convergence only'}")
    console.print(f"events: {dict(sorted(result.events.items()))}", highlight=False)
    for report in failures:
        console.print(str(report), highlight=False, markup=False)
    if failures:
        replay = replay_command(seed, write_cl, read_cl, dcs, skew, mutant, use_swarm=use_swarm, levels=levels,
                                steps=steps)
        console.print(f"[bold red]FAILED[/]; replay: {replay}")
        return False
    console.print("[bold green]OK[/]: every promised property held")
    return True
