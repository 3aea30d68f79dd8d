"""Consistency levels: how many replica answers a request needs, and whether it has them.

Rule: consistency.py decides; the coordinator counts and sends. Everything here is a pure function
of counts (like etcd raft's `quorum`): no clocks, no I/O, no endpoints beyond their DC names.

Cassandra's rules (`o.a.c.db.ConsistencyLevel`, 4.0), documented in docs/ring.md#consistency:

* `block_for`: ANY/ONE/LOCAL_ONE 1, TWO 2, THREE 3, QUORUM floor(sum RF / 2) + 1, ALL sum RF,
  LOCAL_QUORUM floor(RF_local / 2) + 1, EACH_QUORUM the sum of every DC's local quorum.
  Writes add pending (bootstrapping) replicas: LOCAL_* only the local ones; ANY none.
* LOCAL_ONE and LOCAL_QUORUM count only replicas in the coordinator's DC (`counts_towards`);
  EACH_QUORUM needs its quorum in every DC separately; the rest count every replica.
* ANY is always "available" (the coordinator can store a hint) and a stored hint acks it; reads
  reject it, and so do counter writes.

`rf_by_dc` is the keyspace's replication as {dc: RF} (see ring/placement/strategy.py `rf_by_dc`);
DCs with RF 0 are ignored. Wire values are the native protocol's: never renumber.
"""
from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping

from ring.errors import InvalidRequest, ProtocolError, UnavailableError


class ConsistencyLevel(enum.Enum):
    """On the wire: never renumber. SERIAL and LOCAL_SERIAL name the Paxos phases of a lightweight
    transaction (docs/lwt.md): as a read level they mean a Paxos read of one partition; as a
    level they wait for a quorum (of the local DC for LOCAL_SERIAL); writes refuse them."""

    ANY = 0
    ONE = 1
    TWO = 2
    THREE = 3
    QUORUM = 4
    ALL = 5
    LOCAL_QUORUM = 6
    EACH_QUORUM = 7
    SERIAL = 8
    LOCAL_SERIAL = 9
    LOCAL_ONE = 10

    def to_wire(self) -> int:
        return self.value

    @classmethod
    def from_wire(cls, code: object) -> ConsistencyLevel:
        if type(code) is not int:
            raise ProtocolError(f"consistency level must be an int, got {type(code).__name__}")
        try:
            return cls(code)
        except ValueError:
            raise ProtocolError(f"unknown consistency level code {code}") from None

    @classmethod
    def parse(cls, name: str) -> ConsistencyLevel:
        """`"quorum"` or `"LOCAL_QUORUM"` -> the level; InvalidRequest names the valid ones."""
        try:
            return cls[name.strip().upper()]
        except KeyError:
            valid = ", ".join(level.name for level in cls)
            raise InvalidRequest(f"unknown consistency level {name!r}; use one of {valid}") from None


CL = ConsistencyLevel
_LOCAL = frozenset({CL.LOCAL_ONE, CL.LOCAL_QUORUM, CL.LOCAL_SERIAL})
SERIAL_LEVELS = frozenset({CL.SERIAL, CL.LOCAL_SERIAL})
_FIXED = {CL.ANY: 1, CL.ONE: 1, CL.LOCAL_ONE: 1, CL.TWO: 2, CL.THREE: 3}


def quorum_for(rf: int) -> int:
    """A majority of `rf` replicas: floor(rf / 2) + 1 (so 1 for RF 0, as Cassandra)."""
    return rf // 2 + 1


def counts_towards(level: ConsistencyLevel, replica_dc: str, local_dc: str) -> bool:
    """Whether an answer from a replica in `replica_dc` counts for `level` at a coordinator in
    `local_dc`. LOCAL_* count only local replicas; every other level counts all of them."""
    return level not in _LOCAL or replica_dc == local_dc


def _rf(rf_by_dc: Mapping[str, int]) -> dict[str, int]:
    return {dc: rf for dc, rf in rf_by_dc.items() if rf > 0}


def block_for_per_dc(
    level: ConsistencyLevel,
    rf_by_dc: Mapping[str, int],
    local_dc: str,
    *,
    pending_by_dc: Mapping[str, int] | None = None,
) -> dict[str, int]:
    """EACH_QUORUM's need in each DC with RF > 0: its local quorum plus its pending replicas."""
    assert level is CL.EACH_QUORUM, level
    pending = pending_by_dc or {}
    return {dc: quorum_for(rf) + pending.get(dc, 0) for dc, rf in sorted(_rf(rf_by_dc).items())}


def block_for(
    level: ConsistencyLevel,
    rf_by_dc: Mapping[str, int],
    local_dc: str,
    *,
    pending_by_dc: Mapping[str, int] | None = None,
) -> int:
    """How many answers `level` waits for. Pass `pending_by_dc` for writes (Cassandra's
    blockForWrite); reads have no pending replicas."""
    rfs = _rf(rf_by_dc)
    pending = pending_by_dc or {}
    if level is CL.EACH_QUORUM:
        return sum(block_for_per_dc(level, rfs, local_dc, pending_by_dc=pending).values())
    if level in _FIXED:
        need = _FIXED[level]
    elif level is CL.QUORUM or level is CL.SERIAL:
        need = quorum_for(sum(rfs.values()))
    elif level is CL.ALL:
        need = sum(rfs.values())
    else:
        assert level is CL.LOCAL_QUORUM or level is CL.LOCAL_SERIAL, level
        need = quorum_for(rfs.get(local_dc, 0))
    if level is CL.ANY:
        return need
    if level in _LOCAL:
        return need + pending.get(local_dc, 0)
    return need + sum(pending.values())


def _enough(
    level: ConsistencyLevel,
    count_by_dc: Mapping[str, int],
    rf_by_dc: Mapping[str, int],
    local_dc: str,
    pending_by_dc: Mapping[str, int] | None,
) -> tuple[bool, int, int, str | None]:
    """(enough?, required, counted, dc) for counts that must reach `block_for`."""
    if level is CL.EACH_QUORUM:
        for dc, need in block_for_per_dc(level, rf_by_dc, local_dc, pending_by_dc=pending_by_dc).items():
            have = count_by_dc.get(dc, 0)
            if have < need:
                return False, need, have, dc
        return True, 0, 0, None
    need = block_for(level, rf_by_dc, local_dc, pending_by_dc=pending_by_dc)
    if level in _LOCAL:
        have = count_by_dc.get(local_dc, 0)
    else:
        have = sum(count_by_dc.values())
    return have >= need, need, have, None


def is_sufficient(
    level: ConsistencyLevel,
    live_by_dc: Mapping[str, int],
    rf_by_dc: Mapping[str, int],
    local_dc: str,
    *,
    pending_by_dc: Mapping[str, int] | None = None,
) -> bool:
    """Whether enough replicas are alive to try `level` (Cassandra's isSufficientLiveReplicas).
    ANY is always sufficient: the coordinator can store a hint. Raises nothing."""
    if level is CL.ANY:
        return True
    return _enough(level, live_by_dc, rf_by_dc, local_dc, pending_by_dc)[0]


def live_by_dc(live_replicas: Iterable[str], replica_dc: Mapping[str, str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for ep in live_replicas:
        dc = replica_dc[ep]
        counts[dc] = counts.get(dc, 0) + 1
    return counts


def assure_sufficient_live(
    level: ConsistencyLevel,
    live_replicas: Iterable[str],
    replica_dc: Mapping[str, str],
    rf_by_dc: Mapping[str, int],
    local_dc: str,
    *,
    pending_by_dc: Mapping[str, int] | None = None,
) -> None:
    """Raise UnavailableError(level, required, alive) before sending anything if too few replicas
    are alive (Cassandra's assureSufficientLiveReplicas). For EACH_QUORUM the error names the
    first short DC; for LOCAL_* `alive` counts local replicas only."""
    if level is CL.ANY:
        return
    counts = live_by_dc(live_replicas, replica_dc)
    ok, need, have, dc = _enough(level, counts, rf_by_dc, local_dc, pending_by_dc)
    if not ok:
        raise UnavailableError(level, need, have, dc)


def tally(
    level: ConsistencyLevel,
    acks_by_dc: Mapping[str, int],
    rf_by_dc: Mapping[str, int],
    local_dc: str,
    *,
    hints: int = 0,
    pending_by_dc: Mapping[str, int] | None = None,
) -> bool:
    """Whether the acknowledgements received so far complete the request. `acks_by_dc` counts
    distinct replicas that answered successfully, by their DC. Hints count only for ANY."""
    if level is CL.ANY:
        return sum(acks_by_dc.values()) + hints >= 1
    return _enough(level, acks_by_dc, rf_by_dc, local_dc, pending_by_dc)[0]


def is_failed(
    level: ConsistencyLevel,
    failures_by_dc: Mapping[str, int],
    candidates_by_dc: Mapping[str, int],
    rf_by_dc: Mapping[str, int],
    local_dc: str,
    *,
    pending_by_dc: Mapping[str, int] | None = None,
) -> bool:
    """Whether enough replicas failed that `level` can no longer succeed (Cassandra's
    `blockFor + failures > candidates`). `candidates_by_dc` counts the replicas the request was
    sent to. For EACH_QUORUM this is checked per DC; for ANY a hint can still save the write, so
    it never fails here."""
    if level is CL.ANY:
        return False
    if level is CL.EACH_QUORUM:
        need_by_dc = block_for_per_dc(level, rf_by_dc, local_dc, pending_by_dc=pending_by_dc)
        return any(
            candidates_by_dc.get(dc, 0) - failures_by_dc.get(dc, 0) < need
            for dc, need in need_by_dc.items()
        )
    need = block_for(level, rf_by_dc, local_dc, pending_by_dc=pending_by_dc)
    if level in _LOCAL:
        left = candidates_by_dc.get(local_dc, 0) - failures_by_dc.get(local_dc, 0)
    else:
        left = sum(candidates_by_dc.values()) - sum(failures_by_dc.values())
    return left < need


def validate_for_read(level: ConsistencyLevel) -> None:
    """Reads cannot use ANY (there is nothing to read from a hint)."""
    if level is CL.ANY:
        raise InvalidRequest(
            "ANY ConsistencyLevel is only supported for writes; read at ONE or higher"
        )


def validate_for_range_read(level: ConsistencyLevel) -> None:
    """A Paxos read serializes one partition: range and index reads refuse SERIAL levels."""
    validate_for_read(level)
    if level in SERIAL_LEVELS:
        raise InvalidRequest("SERIAL/LOCAL_SERIAL consistency may only be requested for one partition at a time")


def validate_for_write(level: ConsistencyLevel, *, counter: bool = False) -> None:
    """Counter writes cannot use ANY (a hinted counter delta could be replayed twice); plain
    writes cannot use SERIAL levels (those are for conditional updates)."""
    if level in SERIAL_LEVELS:
        raise InvalidRequest("You must use conditional updates for serializable writes")
    if counter and level is CL.ANY:
        raise InvalidRequest(
            "Consistency level ANY is not yet supported for counter tables; write at ONE or higher"
        )
