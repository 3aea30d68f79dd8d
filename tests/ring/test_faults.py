"""The canary-mutant policy (ring/faults.py): off by default, one fault per name, names kept in one place."""
from __future__ import annotations

import dataclasses
import pathlib

import pytest

from ring.errors import ConfigurationError
from ring.faults import MUTANTS, Faults
from ring.node import NodeConfig

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_none_turns_every_fault_off():
    assert not any(dataclasses.astuple(Faults.none()))
    assert Faults.mutant("") == Faults.none() == Faults()


@pytest.mark.parametrize("name", sorted(MUTANTS))
def test_each_mutant_turns_on_exactly_its_fault(name):
    faults = Faults.mutant(name)
    on = [f.name for f in dataclasses.fields(faults) if getattr(faults, f.name)]
    assert on == [MUTANTS[name]]


def test_an_unknown_mutant_is_refused_with_the_known_names():
    with pytest.raises(ConfigurationError) as e:
        Faults.mutant("ack_w_minus_2")
    assert "ack_w_minus_2" in str(e.value)
    assert all(name in str(e.value) for name in MUTANTS)


def test_faults_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        Faults.none().ack_early = True


def test_node_config_builds_the_policy_from_the_setting():
    assert NodeConfig("127.0.0.1:1", "h").faults == Faults.none()
    assert NodeConfig("127.0.0.1:1", "h", canary_mutant="hints_count").faults.count_hints
    with pytest.raises(ConfigurationError):
        NodeConfig("127.0.0.1:1", "h", canary_mutant="bogus")


def test_no_production_module_names_a_mutant():
    """Seams read a Faults field; only ring/faults.py maps the names."""
    offenders = []
    for package in ("engine", "ring", "persistency", "tools"):
        for path in sorted((ROOT / package).rglob("*.py")):
            if path == ROOT / "ring" / "faults.py":
                continue
            text = path.read_text()
            offenders += [f"{path.relative_to(ROOT)}: {name}" for name in MUTANTS if name in text]
    assert offenders == []
