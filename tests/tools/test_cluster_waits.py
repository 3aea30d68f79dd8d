"""tools/cluster/waits.py's pure decisions: what a convergence wait or a join wait still waits for."""
from tools.cluster.waits import joining_note, missing_in_view

A, B = "127.0.0.1:1", "127.0.0.1:2"
NAMES = {A: "node1", B: "node2"}


def row(ep, up=True, state="NORMAL", schema="v1"):
    return {"endpoint": ep, "up": up, "state": state, "schema": schema}


def test_a_view_with_every_wanted_node_up_and_normal_misses_nothing():
    assert missing_in_view("node1", [row(A), row(B)], {A, B}, NAMES.get) == ""
    assert missing_in_view("node1", [row(A), row(B, up=False)], {A}, NAMES.get) == ""  # B not wanted


def test_a_view_names_the_node_it_does_not_see_up_and_normal():
    for rows in ([row(A)], [row(A), row(B, up=False)], [row(A), row(B, state="JOINING")]):
        assert missing_in_view("node1", rows, {A, B}, NAMES.get) == "node1 to see node2 Up and NORMAL"


def test_joining_note_follows_the_bootstrap_phases():
    assert joining_note(None) == "starting"
    assert joining_note({"mode": "NORMAL", "operations": []}) == "NORMAL"
    boot = {"operation": "bootstrap", "phase": "streaming", "ranges_done": 2, "ranges": 5, "partitions": 40}
    assert joining_note({"mode": "JOINING", "operations": [boot]}) == "streaming: 2/5 ranges, 40 partitions"
    failed = {"operation": "bootstrap", "phase": "wait_ring", "error": "no seed"}
    assert joining_note({"operations": [failed]}) == "wait_ring (retrying after: no seed)"
    assert joining_note({"operations": [{"operation": "bootstrap", "phase": "wait_ring"}]}) == \
        "learning the ring and the schema"
