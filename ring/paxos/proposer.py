"""The proposer: one lightweight transaction (or SERIAL read) as a coordinator state machine.

Cassandra's v1 `StorageProxy.cas` / `readWithPaxos`, one round at a time:

1. prepare: a fresh ballot to every live participant (SERIAL: the replicas in all DCs;
   LOCAL_SERIAL: the local DC's), wait for `required` promises (a quorum of them). A rejection
   names a higher promised ballot: the next ballot goes above it.
2. finish: if a promise shows an accepted proposal newer than the most recent commit, propose it
   again with our ballot (re-stamped), commit it at the serial quorum, and start over.
3. repair: if promisers miss the most recent commit, send it to them, wait, and start over.
4. read: the current data is the merge of the promisers' slices (it rode on the promises, read
   at the moment of each promise); `decide` evaluates the condition (pure, conditions.py) and
   builds the update stamped with the ballot's micros, or answers "not applied" (a read answers).
5. propose to every participant; at `required` accepts hand the commit to `commit` (the op's
   write handler at the write's commit consistency, which answers the client).

Contention (rejected promises, a proposal refused by everyone) retries after a randomized backoff
from the injected rng, until the contention deadline: then WriteTimeout(CAS) (ReadTimeout for a
read). A proposal that some acceptor may hold is never retried as if refused: a partial accept,
or a silence, ends in WriteTimeout(CAS), the outcome unknown, because a later round may finish it.
Invariant: the handler never answers "applied" or "not applied" for an update that any acceptor
holds unless it is decided (accepted by a quorum) or provably refused by every participant.
"""
from __future__ import annotations

from engine.update_check import decode_update
from engine.partition import decode_partition, encode_partition, merge_all
from ring.errors import ReadTimeout, UnavailableError, WriteTimeout
from ring.messages import (CommitRequest, MutationResponse, PrepareRequest, PrepareResponse, ProposeRequest,
                           ProposeResponse, Reply, Send)
from ring.paxos import ballot as bl

BACKOFF_MS_MAX = 100   # Cassandra sleeps up to 100 ms between contended rounds


def restamp(update: bytes, micros: int) -> bytes:
    """The update with every timestamp set to `micros` (Cassandra's Commit.newProposal)."""
    p = decode_update(update)
    if p.deletion is not None:
        p.deletion = (micros, p.deletion[1])
    for row in p.rows.values():
        if row.deletion is not None:
            row.deletion = (micros, row.deletion[1])
        row.cells = {c: (micros,) + cell[1:] for c, cell in row.cells.items()}
    p.ranges = [(lo, hi, micros, ldt) for lo, hi, _, ldt in p.ranges]
    return encode_partition(p)


def split(blob: bytes) -> tuple[bytes, bytes | None]:
    """`ballot || update` -> (ballot, update); b"" -> (NONE, None)."""
    return (blob[:bl.SIZE], blob[bl.SIZE:]) if blob else (bl.NONE, None)


class Proposer:
    msg_id = None

    def __init__(self, ctx, request_id: int, *, table, key: bytes, lo: bytes, hi, level: str, plan, decide, commit,
                 ballots, rng, deadline_ms: int, round_timeout_ms: int, is_read: bool, faults):
        self.ctx = ctx
        self.request_id = request_id
        self.table, self.key, self.lo, self.hi = table, key, lo, hi
        self.level = level                  # "SERIAL" or "LOCAL_SERIAL"
        self.plan = plan                    # () -> (participants, required); raises UnavailableError
        self.decide = decide                # (Partition | None, micros) -> (update | None, result)
        self.commit = commit                # (ballot, update, result) -> effects; answers the client
        self.ballots, self.rng = ballots, rng
        self.deadline_ms = deadline_ms      # cas_contention_timeout
        self.round_timeout_ms = round_timeout_ms
        self.is_read = is_read
        self.faults = faults
        self.finished = False
        self.seen = bl.NONE                 # the highest ballot a replica told us it promised
        self.rounds = 0
        self.phase = ""
        self.retry_at_ms = None
        self.participants: list[str] = []
        self.required = 1

    # -- rounds ------------------------------------------------------------------------------

    def start(self) -> list:
        """A new round: prepare with a fresh ballot."""
        if self.rounds and self.ctx.now_ms >= self.deadline_ms:
            return self._timeout(0, self.required)
        try:
            self.participants, self.required = self.plan()
        except UnavailableError as e:
            return self._answer(error=e)
        self.rounds += 1
        self.ballot = self.ballots.next(self.ctx.wall_us(), self.seen)
        self._phase("prepare")
        self.promises: dict[str, PrepareResponse] = {}
        self.refused: set[str] = set()
        msg = PrepareRequest(self.msg_id, self.table.id, self.key, self.ballot, self.lo, self.hi)
        return [Send(ep, msg) for ep in self.participants]

    def _phase(self, name: str) -> None:
        self.phase = name
        self.ctx.count("paxos_round_trips")   # one message exchange with the participants (bench/lwt.py)
        self.round_deadline_ms = self.ctx.now_ms + self.round_timeout_ms
        self.ctx.register(self)             # a fresh id: late answers of earlier phases are dropped
        self.answered: set[str] = set()
        self.accepts = 0
        self.unknown = 0

    def _backoff(self) -> list:
        """Contention: try again after a random pause, if the contention deadline allows."""
        self.ctx.count("cas_contention")
        self.phase = "backoff"
        self.retry_at_ms = self.ctx.now_ms + self.rng.randint(0, BACKOFF_MS_MAX)
        return []

    def _answer(self, result=None, error=None) -> list:
        self.finished = True
        self.phase = "done"
        return [Reply(self.request_id, result=result, error=error)]

    def _timeout(self, received: int, block_for: int) -> list:
        if self.is_read:
            return self._answer(error=ReadTimeout(self.level, received, block_for))
        return self._answer(error=WriteTimeout(self.level, received, block_for, "CAS"))

    # -- the Handler protocol ------------------------------------------------------------------

    def on_reply(self, now_ms: int, src: str, reply) -> list:
        if self.finished or src in self.answered:
            return []
        self.answered.add(src)
        kind = type(reply)
        if kind is PrepareResponse and self.phase == "prepare":
            return self._on_prepare_reply(src, reply)
        if kind is ProposeResponse and self.phase in ("propose", "finish"):
            return self._on_propose_reply(src, reply)
        if kind is MutationResponse and self.phase in ("finish_commit", "repair"):
            return self._on_commit_ack(reply)
        return []

    def on_timeout(self, now_ms: int) -> list:
        if self.finished:
            return []
        if self.phase == "backoff":
            return self.start() if now_ms >= self.retry_at_ms else []
        if now_ms < self.round_deadline_ms:
            return []
        if self.phase == "prepare":
            return self._timeout(len(self.promises), self.required)
        if self.phase == "propose":  # some acceptor may hold the proposal: the outcome is unknown
            return self._timeout(self.accepts, self.required)
        return self._backoff()     # finish, finish_commit, repair: the next round sorts it out

    # -- prepare -------------------------------------------------------------------------------

    def _on_prepare_reply(self, src: str, reply: PrepareResponse) -> list:
        if reply.error is None and reply.promised:
            self.promises[src] = reply
            if len(self.promises) == self.required:
                return self._on_promises()
            return []
        if reply.error is None:
            self.seen = max(self.seen, reply.ballot)
        self.refused.add(src)
        if len(self.refused) > len(self.participants) - self.required:
            return self._backoff()
        return []

    def _on_promises(self) -> list:
        promises = self.promises.values()
        committed, committed_update = max((split(p.committed) for p in promises), key=lambda c: c[0])
        accepted, accepted_update = max((split(p.accepted) for p in promises), key=lambda c: c[0])
        if accepted > committed and not self.faults.paxos_skip_in_progress:
            self.ctx.count("cas_finish_in_progress")
            self.update = restamp(accepted_update, bl.micros(self.ballot))
            return self._propose("finish")
        missing = [ep for ep, p in self.promises.items() if split(p.committed)[0] < committed]
        if missing:
            self.ctx.count("cas_repair_commits")
            self._phase("repair")
            self.waiting = len(missing)
            msg = CommitRequest(self.msg_id, self.table.id, self.key, committed, committed_update)
            return [Send(ep, msg) for ep in missing]
        parts = [decode_partition(p.data) for p in promises if p.data is not None]
        current = merge_all(parts) if parts else None
        update, result = self.decide(current, bl.micros(self.ballot))
        if update is None:  # a read, or a condition that does not apply: nothing to propose
            return self._answer(result)
        self.update, self.result = update, result
        return self._propose("propose")

    # -- propose and commit --------------------------------------------------------------------

    def _propose(self, phase: str) -> list:
        self._phase(phase)
        msg = ProposeRequest(self.msg_id, self.table.id, self.key, self.ballot, self.update)
        return [Send(ep, msg) for ep in self.participants]

    def _on_propose_reply(self, src: str, reply: ProposeResponse) -> list:
        if reply.error is not None:
            self.unknown += 1   # it may have accepted before failing (e.g. its commit log failed)
        elif reply.accepted:
            self.accepts += 1
        else:
            self.seen = max(self.seen, reply.ballot)
        need = 1 if self.faults.paxos_commit_early else self.required  # canary: commit too early
        if self.accepts >= need:
            if self.phase == "finish":
                self._phase("finish_commit")
                self.waiting = self.required
                msg = CommitRequest(self.msg_id, self.table.id, self.key, self.ballot, self.update)
                return [Send(ep, msg) for ep in self.participants]
            self.finished = True
            self.phase = "done"
            return self.commit(self.ballot, self.update, self.result)
        refused = len(self.answered) - self.accepts - self.unknown
        if refused > len(self.participants) - self.required:  # a quorum can no longer accept
            if self.accepts == 0 and self.unknown == 0 and len(self.answered) == len(self.participants):
                return self._backoff()      # every participant refused: nobody holds it, retry
            if self.phase == "propose" and (self.accepts or len(self.answered) == len(self.participants)):
                return self._timeout(self.accepts, self.required)
            if self.phase == "finish":
                return self._backoff()
        return []

    def _on_commit_ack(self, reply: MutationResponse) -> list:
        if reply.error is None:
            self.waiting -= 1
        if self.waiting <= 0:
            return self.start()
        return []
