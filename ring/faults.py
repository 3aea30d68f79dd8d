"""Canary mutants as one injected policy: `Faults`, every fault off unless a test asks for one.

A canary mutant breaks one rule that the consistency guarantees stand on; the simulator's checkers
must catch each (tests/sim/test_canaries.py), which shows the checkers can fail. Production code
never names a mutant: it reads one boolean of the node's `Faults` at a named seam, and this module
is the only place that maps the names used by `dynatable sim --mutant NAME` and
`NodeConfig.canary_mutant` to those booleans. Never set in production.

* `ack_w_minus_1` -> `ack_early`, at coordinator.py `WriteHandler.on_reply`: a write answers
  at block_for - 1 acknowledgements.
* `hints_count` -> `count_hints`, at coordinator.py `WriteHandler.on_hint_stored`: a stored hint
  counts toward the level (a sloppy quorum).
* `each_quorum_hint_wrong_dc` -> `hint_counts_locally`, at coordinator.py
  `WriteHandler.on_hint_stored`: at EACH_QUORUM a hint stored for a down replica of another DC is
  tallied as an acknowledgement of the coordinator's own DC (the DC lookup keyed by the wrong
  endpoint), so the local DC's quorum is reached one real acknowledgement short. Swept with
  `--two-dcs --write EACH_QUORUM --read LOCAL_QUORUM`.
* `no_read_repair_writeback` -> `skip_read_repair_writeback`, at ops/data.py `coordinate_read`:
  a digest mismatch is reconciled but never written back.
* `ack_before_commitlog` -> `ack_before_append`, at node.py `Node._dispatch`: a replica
  answers a `MutationRequest` at once and appends it to the commit log (and applies it) only at
  its next `Node.tick`, as an asynchronous write path that acks before the append would; a crash
  in between (the process dies, the store reopens from disk) loses an acknowledged write.
* `range_tombstone_one_sstable` -> `skip_older_range_tombstones`, at node.py `Node.__init__`,
  through the engine's store option `canary_skip_older_range_tombstones` (engine/column_family.py
  `ColumnFamily.read_payloads`): a point read ignores the range tombstones of every SSTable but the
  newest one holding the partition, so rows a range delete covers come back once newer writes to the
  partition are flushed after it. Swept with `--workload clustering` (ring/verify/clustering_workload.py).
* `early_tombstone_purge` -> `purge_tombstones_early`, at node.py `Node.tick`: every gossip
  round, `replica.purge_tombstones_now`.

* `paxos_skip_in_progress_repair` -> `paxos_skip_in_progress`, at paxos/proposer.py
  `Proposer._on_promises`: an accepted proposal newer than the most recent commit is ignored
  instead of finished.
* `paxos_accept_lower_ballot` -> `paxos_accept_below_promise`, at paxos/acceptor.py `accept`: a
  proposal is accepted whatever ballot was promised since.
* `paxos_commit_before_quorum` -> `paxos_commit_early`, at paxos/proposer.py
  `Proposer._on_propose_reply`: the commit starts at the first accept.
* `serial_read_without_paxos` -> `serial_read_plain`, at ops/lwt.py `serial_read`: a SERIAL read
  is answered by a plain read at ONE (LOCAL_ONE), with no Paxos round (at QUORUM the simulator
  catches it only rarely: blocking read repair hides most of it).

* `merkle_skip_last_range` -> `repair_skip_last_run`, at anti_entropy.py `plan_syncs`: each
  pair of replicas' last run of differing Merkle leaves is never synced (a loop that forgets to
  flush its final run); with a few keys that is usually the only run, so repair leaves the
  replicas apart and `check_convergence` (P5) sees it.

* `gossip_accept_older_generation` -> `gossip_by_version_only`, at membership.py `merge`
  (through `Gossiper.by_version_only`, set by node.py): when two states of an endpoint differ in
  generation, the one with the higher heartbeat version wins, so a restarted node's new
  generation (versions from 1 again) loses to its old one until it outcounts it; its peers see
  its heartbeat frozen and convict it. No history property fails; `workload.finish` records
  whether the cluster converged after the final heal, and `check_convergence` fails P8 if not.

* `batchlog_coordinator_dies` -> `stop_after_batchlog` (injected, not a mutant: `INJECTED`), at
  ops/batchlog.py `LoggedBatch.on_part`: once its batchlog write is acknowledged, a logged batch's
  coordinator sends nothing more and never answers, as if it died there (the replay must finish it).

The engine cannot import ring/, so `early_tombstone_purge` reaches it through the store option
`canary_gc_grace_seconds` (engine/store.py, read by engine/column_family.py
`ColumnFamily.gc_grace_seconds`): `replica.purge_tombstones_now` sets it to 0, then flushes and
compacts. That option is the engine's seam; nothing else sets it.

Invariant: a `Faults` is frozen; `Faults.none()` has every field False, and `Faults.mutant(name)`
has exactly one field True (or none, for the empty name).
"""
from __future__ import annotations

from dataclasses import dataclass

from ring.errors import ConfigurationError

# CLI / config name -> the Faults field it turns on (names are the simulator's: never rename)
MUTANTS = {
    "ack_w_minus_1": "ack_early",
    "hints_count": "count_hints",
    "ack_before_commitlog": "ack_before_append",
    "range_tombstone_one_sstable": "skip_older_range_tombstones",
    "no_read_repair_writeback": "skip_read_repair_writeback",
    "early_tombstone_purge": "purge_tombstones_early",
    "paxos_skip_in_progress_repair": "paxos_skip_in_progress",
    "paxos_accept_lower_ballot": "paxos_accept_below_promise",
    "paxos_commit_before_quorum": "paxos_commit_early",
    "serial_read_without_paxos": "serial_read_plain",
    "merkle_skip_last_range": "repair_skip_last_run",
    "gossip_accept_older_generation": "gossip_by_version_only",
    "each_quorum_hint_wrong_dc": "hint_counts_locally",
}

# injected faults, not mutants (no checker is meant to catch them): a test makes the failure it
# needs happen at a named seam. Same switch (`NodeConfig.canary_mutant`), same rules.
INJECTED = {
    "batchlog_coordinator_dies": "stop_after_batchlog",
}


@dataclass(frozen=True, slots=True)
class Faults:
    ack_early: bool = False                   # a write answers one acknowledgement too early
    count_hints: bool = False                 # a stored hint counts toward the consistency level
    skip_read_repair_writeback: bool = False  # blocking read repair never writes back
    purge_tombstones_early: bool = False      # tombstones are purged ignoring gc_grace_seconds
    paxos_skip_in_progress: bool = False      # Paxos: an in-progress proposal is never finished
    paxos_accept_below_promise: bool = False  # Paxos: an acceptor accepts below its promise
    paxos_commit_early: bool = False          # Paxos: commit at the first accept, not a quorum
    serial_read_plain: bool = False           # a SERIAL read runs no Paxos round
    repair_skip_last_run: bool = False        # repair never syncs each pair's last differing range
    gossip_by_version_only: bool = False      # gossip compares heartbeat versions across generations
    hint_counts_locally: bool = False         # EACH_QUORUM: a hint for a remote replica counts locally
    ack_before_append: bool = False           # a replica acks a mutation before its commit-log append
    skip_older_range_tombstones: bool = False  # a read ignores range tombstones of all but the newest SSTable
    stop_after_batchlog: bool = False         # injected: a logged batch's coordinator dies after its batchlog write

    @classmethod
    def none(cls) -> Faults:
        """Production: no fault."""
        return _NONE

    @classmethod
    def mutant(cls, name: str) -> Faults:
        """The policy of one canary mutant, by its CLI name; the empty name is `none()`."""
        if not name:
            return _NONE
        field_name = MUTANTS.get(name) or INJECTED.get(name)
        if field_name is None:
            known = ", ".join(sorted(MUTANTS) + sorted(INJECTED))
            raise ConfigurationError(f"unknown canary mutant {name!r}; use one of: {known}")
        return cls(**{field_name: True})


_NONE = Faults()
