"""Lightweight transactions in the simulator: the CAS-register workload under every fault the
simulator has is linearizable on every seed (WGL), and each Paxos canary mutant is caught by
randomized seeds (the catch rates over 30 seeds are in docs/lwt.md).

Seeds per profile: dev 3, ci 8, nightly 200 (HYPOTHESIS_PROFILE). Undecided operations (a CAS
that timed out) are counted and printed, never passed silently; a key whose linearizability
search ran out of budget fails the test.
"""
import os

import pytest

from ring.verify.cas_workload import CasWorkload
from ring.verify.linearizability import check_linearizable

PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")
SEEDS = {"dev": 3, "ci": 8, "nightly": 200}.get(PROFILE, 8)
CANARY_SEEDS = {"dev": 6, "ci": 10, "nightly": 30}.get(PROFILE, 10)
MAX_STEPS = 1_000_000


def _run(seed: int, mutant: str = ""):
    result = CasWorkload(seed, node_options={"canary_mutant": mutant} if mutant else None).run()
    return result, check_linearizable(result.history, max_steps=MAX_STEPS)


@pytest.mark.parametrize("seed", range(1, SEEDS + 1))
def test_cas_register_is_linearizable(seed):
    result, report = _run(seed)
    undecided = result.events.get("cas_undecided", 0)
    applied = result.events.get("cas_applied", 0)
    print(f"seed {seed}: {len(result.history)} ops, {applied} applied, "
          f"{result.events.get('cas_not_applied', 0)} not applied, {undecided} undecided, "
          f"{result.events.get('ok_serial_read', 0)} serial reads; checker {report.stats}")
    assert report.ok, str(report)
    assert report.stats["unknown"] == 0, f"the WGL search ran out of budget on {report.stats['unknown_keys']}"
    assert applied > 0 and result.events.get("ok_serial_read", 0) > 0, result.events  # it did something
    assert sum(result.events.get(f, 0) for f in ("partition", "crash", "pause", "skew", "jump", "lossy")) > 0


def test_same_seed_same_run():
    a, _ = _run(3)
    b, _ = _run(3)
    assert a.digest == b.digest and a.history.to_jsonl() == b.history.to_jsonl()


@pytest.mark.parametrize("mutant", ["paxos_skip_in_progress_repair", "paxos_accept_lower_ballot",
                                    "paxos_commit_before_quorum", "serial_read_without_paxos"])
def test_canary_is_caught_by_random_seeds(mutant):
    caught = []
    for seed in range(1, CANARY_SEEDS + 1):
        _, report = _run(seed, mutant)
        if not report.ok:
            caught.append(seed)
    print(f"{mutant}: caught on {len(caught)} of {CANARY_SEEDS} seeds {caught}")
    assert caught, f"{mutant} survived {CANARY_SEEDS} randomized seeds"


# -- `dynatable sim --workload cas` ----------------------------------------------------------------

def _cli(*args):
    import subprocess
    import sys
    return subprocess.run([sys.executable, "-m", "tools.cli", "sim", "--workload", "cas", *args],
                          capture_output=True, text=True, timeout=300)


def test_cli_replays_a_cas_seed_and_exits_by_the_verdict():
    ok = _cli("--seed", "1", "--steps", "400")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "seed=1 workload=cas" in ok.stdout and "undecided=" in ok.stdout and "OK: linearizable" in ok.stdout
    caught = _cli("--seed", "1", "--mutant", "paxos_accept_lower_ballot")
    assert caught.returncode == 1, caught.stdout
    assert "FAILED (not linearizable); replay: dynatable sim --seed 1 --workload cas --mutant " \
           "paxos_accept_lower_ballot" in caught.stdout


def test_cli_cas_sweeps_print_clean_and_caught():
    clean = _cli("--sweep", "1..2", "--jobs", "2", "--steps", "400")
    assert clean.returncode == 0 and "clean 2/2" in clean.stdout and "cas timed out (info)" in clean.stdout
    caught = _cli("--sweep", "1..1", "--mutant", "paxos_accept_lower_ballot")
    assert caught.returncode == 0 and "caught 1/1" in caught.stdout and "failed: P3 on 1 seed" in caught.stdout


def test_cli_cas_refuses_register_options_in_one_line():
    out = _cli("--seed", "1", "--write", "ONE")
    assert out.returncode == 1 and out.stderr.count("\n") == 1 and "drop --swarm" in out.stderr


def test_an_undecided_key_is_neither_clean_nor_a_catch():
    from tools.sim_sweep import SeedVerdict, SweepOptions, summary
    verdicts = [SeedVerdict(1, ()), SeedVerdict(2, ("undecided",), cas_undecided=3)]
    lines, passed = summary(verdicts, SweepOptions(workload="cas"))
    assert lines[0] == "clean 1/2" and not passed and "1 seed(s) with a key the checker could not decide" in lines[1]
    lines, passed = summary(verdicts, SweepOptions(workload="cas", mutant="paxos_accept_lower_ballot"))
    assert lines[0] == "caught 0/2" and not passed


# -- the CAS-built append-only list (`--workload cas-list`) -------------------------------------------

@pytest.mark.parametrize("seed", range(1, min(SEEDS, 2) + 1))
def test_cas_list_is_linearizable_and_append_only(seed):
    from ring.verify.cas_workload import check_append_only
    result = CasWorkload(seed, shape="list").run()
    report = check_linearizable(result.history, max_steps=MAX_STEPS)
    assert report.ok and report.stats["unknown"] == 0, str(report)
    assert check_append_only(result.history) == []
    lists = [op.value for op in result.history.ops if op.kind == "read" and op.value]
    assert max(v.count(",") for v in lists) >= 2, lists          # lists grew: appends, not one-shot writes
    assert not any(op.kind == "cas" and op.value is None for op in result.history.ops)   # append-only: no delete


def test_the_list_checker_catches_a_lost_append_a_fork_and_a_duplicate():
    from ring.verify.cas_workload import check_append_only
    from ring.verify.history import History

    def history(steps):
        h = History()
        for process, kind, value, result in steps:
            handle = h.invoke(process, kind, "a", value if kind == "cas" else None)
            h.complete(handle, "ok", result)
        return h
    good = [("c1", "cas", "x", None), ("c2", "read", None, "x"), ("c1", "cas", "x,y", None),
            ("final-a", "read", None, "x,y")]
    assert check_append_only(history(good)) == []
    lost = good[:3] + [("final-a", "read", None, "x")]
    assert any("missing from the final list: ['y']" in p for p in check_append_only(history(lost)))
    fork = good[:3] + [("c3", "read", None, "x,z"), ("final-a", "read", None, "x,y")]
    assert any("does not extend" in p for p in check_append_only(history(fork)))
    dup = good + [("c3", "read", None, "x,y,x")]
    assert any("appears twice" in p for p in check_append_only(history(dup)))


def test_cli_replays_a_cas_list_seed():
    import subprocess
    import sys
    out = subprocess.run([sys.executable, "-m", "tools.cli", "sim", "--workload", "cas-list", "--seed", "2",
                          "--steps", "300"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "seed=2 workload=cas-list" in out.stdout and "every list append-only" in out.stdout
