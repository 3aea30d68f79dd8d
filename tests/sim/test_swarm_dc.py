"""The named regimes of ring/verify/regimes.py: `split_dc` (two-DC plans) and `rolling_restart`.

CI runs a few seeds known to catch each of the two mutants these regimes exist for and a two-DC
control seed; the nightly profile (HYPOTHESIS_PROFILE=nightly) sweeps 50 seeds blind and asserts
the rates docs/simulation.md reports (>= 40/50 caught, controls 50/50 clean).
"""
import os
from dataclasses import replace

from ring.verify import regimes, swarm
from ring.verify.workload import Workload
from tools.sim_run import TWO_DCS, check_run
from tools.sim_sweep import SweepOptions, summary, sweep

NIGHTLY = os.environ.get("HYPOTHESIS_PROFILE") == "nightly"
EACH = dict(two_dcs=True, write_cl="EACH_QUORUM", read_cl="LOCAL_QUORUM")


def test_split_dc_is_drawn_only_in_two_dc_plans():
    one_dc = [swarm.draw(s) for s in range(50)]
    assert not any(p.regime == "split_dc" for plan in one_dc for p in plan.phases)
    two_dc = [swarm.draw(s, nodes=6, dcs=2) for s in range(50)]
    split = [plan for plan in two_dc if any(p.regime == "split_dc" for p in plan.phases)]
    assert 0.75 * 50 <= len(split) < 50
    for plan in split:           # hints on, no window shorter than a split: a hint is what it is about
        assert "hinted_handoff_enabled" not in plan.node_options and "max_hint_window_ms" not in plan.node_options
        assert all(p.kinds == ("split_dc",) for p in plan.phases if p.regime == "split_dc")
    for s in range(50):          # the rest of a two-DC plan is the one-DC plan's
        a, b = swarm.draw(s), swarm.draw(s, nodes=6, dcs=2)
        assert [p for p in b.phases if p.regime != "split_dc"] == \
            [p for p, q in zip(a.phases, b.phases) if q.regime != "split_dc"]


def test_every_swarm_plan_has_a_rolling_restart_and_the_classic_run_none():
    assert swarm.Plan().restarts == ()
    for s in range(30):
        restarts = swarm.draw(s).restarts
        assert len(restarts) in regimes.RESTARTS and set(restarts) <= {"n1", "n2", "n3"}
        assert len(set(restarts)) == len(restarts)
    assert {len(swarm.draw(s).restarts) for s in range(30)} == set(regimes.RESTARTS)


def test_a_split_dc_strike_cuts_only_the_bridge_from_its_own_dc():
    plan = replace(swarm.Plan(), phases=(replace(swarm.Phase(), regime="split_dc", kinds=("split_dc",),
                                                 down_ms=(3000, 3000)),))
    w = Workload(5, "EACH_QUORUM", "LOCAL_QUORUM", dcs=TWO_DCS, plan=plan)
    try:
        w.setup()
        assert regimes.split_dc(w, "n2")
        ep = {n: w.sim.nodes[n].endpoint for n in w.sim.nodes}
        assert w.sim.cut == {(ep["n2"], ep[p]) for p in ("n1", "n3")} | {(ep[p], ep["n2"]) for p in ("n1", "n3")}
        (away,) = w.down
        assert away in ("n4", "n5", "n6") and away not in w.sim.live()
        assert not regimes.split_dc(w, "n5")          # one strike at a time
    finally:
        w.sim.close()


def test_each_quorum_hint_wrong_dc_is_caught_and_the_two_dc_control_is_clean():
    seeds = range(1, 51) if NIGHTLY else range(2, 4)
    opt = SweepOptions(mutant="each_quorum_hint_wrong_dc", **EACH)
    verdicts = sweep(seeds, opt, jobs=2)
    lines, passed = summary(verdicts, opt)
    assert passed and sum(v.caught for v in verdicts) >= (40 if NIGHTLY else len(seeds)), "\n".join(lines)
    assert all("P1" in v.properties for v in verdicts if v.caught)
    control = SweepOptions(**EACH)
    verdicts = sweep(range(1, 51) if NIGHTLY else range(2, 3), control, jobs=2)
    lines, passed = summary(verdicts, control)
    assert passed, "\n".join(lines)


def test_the_rolling_restart_is_what_catches_gossip_accept_older_generation():
    """Seed 9 is caught (P8: the restarted node still seen down after the final heal); the same
    plan without its rolling restart is not (the tail's crash and restart alone miss it here)."""
    plan = swarm.draw(9)
    options = {"canary_mutant": "gossip_accept_older_generation"}
    with_restart = Workload(9, plan=plan, node_options=options).run()
    assert with_restart.events.get("rolling_restart", 0) >= 1
    assert "P8" in {p for r in check_run(with_restart) for p in r.properties()}
    without = Workload(9, plan=replace(plan, restarts=()), node_options=options).run()
    assert not check_run(without)


def test_gossip_mutant_sweep_rate_nightly():
    seeds = range(1, 51) if NIGHTLY else range(4, 5)
    opt = SweepOptions(mutant="gossip_accept_older_generation")
    verdicts = sweep(seeds, opt, jobs=2)
    lines, passed = summary(verdicts, opt)
    assert passed and sum(v.caught for v in verdicts) >= (40 if NIGHTLY else 1), "\n".join(lines)
