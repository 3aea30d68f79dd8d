"""Topology operations: the state machines that change a ring's membership and move its data.

One module per operation: bootstrap.py (a new node joins), decommission.py (a node leaves),
removenode.py (a dead node's ranges are re-replicated), cleanup.py (a node drops ranges it no
longer replicates); plan.py says which ranges move where, relocation.py asks the gainers to
fetch them. Rule: these decide; the node sends. The pure ring decisions they use live in
ring/placement/ (pending.py: the current and future rings). Rules in docs/ring.md#topology-changes.
"""
