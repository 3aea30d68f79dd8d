"""The batchlog: where a LOGGED batch waits until its mutations are applied (docs/ring.md#batchlog).

Rule: batchlog.py decides and stores; node.py sends. Before it applies a logged batch touching
more than one partition, the coordinator (ring/ops/batchlog.py) writes the whole batch, as one
entry, to the batchlog of one or two other live nodes of its datacenter (`choose_endpoints`,
Cassandra's rule); it removes the entries once every mutation met its consistency level. Each
node keeps its entries in the node-local table `system.batches` (a row per batch: `id`,
`written_at`, `mutations`, the encoded entry of docs/format.md#batchlog-entry), written through
the commit log like any mutation, so an entry survives a restart.

Replay (`Batchlog.tick`): every `batchlog_replay_interval_ms` the node lists its entries; one it
has held for 2 x write_request_timeout_ms (by its own monotonic clock: a restarted node starts
counting again, a skewed wall clock changes nothing) without its removal is replayed: each
mutation goes to every replica of its key, down or silent ones are hinted, and once each is
acknowledged or hinted the entry is deleted. Mutations of a dropped table, and of a table whose
gc_grace_seconds passed since `written_at`, are skipped (replaying them could resurrect data).
Replays are idempotent: mutations carry their own timestamps.

Invariants: an entry's mutations are all applied, or (replayed) all eventually applied: never
half. A corrupt entry is never replayed nor deleted: it is reported (`corrupt`, the metric
`batchlog_corrupt_entries`) with its row and offset.
"""
from __future__ import annotations

from engine import mutation as mut
from engine.encoding import check, decode_uvarint, encode_uvarint, frame_checksummed, unframe_checksummed
from engine.errors import CorruptionError
from engine.partition import encode_partition
from engine.token import token as token_of
from ring import consistency as cl
from ring.coordinator import WriteHandler
from ring.messages import MutationRequest, Reply, Send

SYSTEM = "system"
TABLE = "batches"
TABLE_ID = "919a4bc5-7a33-3573-b03e-13fc3f68b465"  # fixed on every node: peers address it by id
MAGIC = b"DTBL"
VERSION = 1
REPLAY_INTERVAL_MS = 10_000    # Cassandra's batchlog replay interval


# -- the entry (docs/format.md#batchlog-entry) -----------------------------------------------------

def encode_entry(mutations: list[tuple[str, bytes, bytes]]) -> bytes:
    """`DTBL | u8 version | frame(uvarint count, then per mutation: table id, key, payload, each as
    uvarint length + bytes)`; the frame carries a length and a CRC32 of its body."""
    body = [encode_uvarint(len(mutations))]
    for table_id, key, payload in mutations:
        for part in (table_id.encode(), key, payload):
            body += [encode_uvarint(len(part)), part]
    return MAGIC + bytes([VERSION]) + frame_checksummed(b"".join(body))


def decode_entry(blob: bytes, where: str) -> list[tuple[str, bytes, bytes]]:
    """The (table id, key, payload) mutations of an entry; CorruptionError(where, offset) if not one."""
    check(len(blob) >= 5 and blob[:4] == MAGIC, where, 0, "not a batchlog entry (bad magic)")
    check(blob[4] == VERSION, where, 4, f"batchlog entry version {blob[4]} is not {VERSION}")
    body, end = unframe_checksummed(blob, 5, where)
    check(end == len(blob), where, end, "bytes after the batchlog entry")
    count, pos = decode_uvarint(body, 0, where)
    out = []
    for _ in range(count):
        parts = []
        for _ in range(3):
            n, pos = decode_uvarint(body, pos, where)
            check(pos + n <= len(body), where, 5 + 4 + pos, "mutation truncated")
            parts.append(bytes(body[pos:pos + n]))
            pos += n
        out.append((parts[0].decode(), parts[1], parts[2]))
    check(pos == len(body), where, 5 + 4 + pos, "bytes after the last mutation")
    return out


def create_table(store) -> None:
    """system.batches, node-local; gc_grace 0 as in Cassandra (an entry is never repaired)."""
    store.create_table(SYSTEM, TABLE, {"id": "blob", "written_at": "bigint", "mutations": "blob"},
                       primary_key="id", options={"gc_grace_seconds": 0}, if_not_exists=True, table_id=TABLE_ID)


def entry_write(store, batch_id: bytes, written_at_us: int, blob: bytes, now_s: int) -> tuple[bytes, bytes]:
    """(key, payload) of the system.batches mutation storing an entry."""
    table = store.table(SYSTEM, TABLE)
    key, _, payload = mut.build_insert_encoded(table, {"id": batch_id, "written_at": written_at_us,
                                                       "mutations": blob}, written_at_us, now_s, None,
                                               store.options["max_value_bytes"])
    return key, payload


def entry_removal(store, batch_id: bytes, ts: int, now_s: int) -> tuple[bytes, bytes]:
    """(key, payload) of the partition deletion that removes an entry."""
    key, update = mut.build_delete(store.table(SYSTEM, TABLE), {"id": batch_id}, ts, now_s)
    return key, encode_partition(update)


# -- where the entry goes (Cassandra's batchlog endpoint filter) ------------------------------------

def choose_endpoints(local: str, local_rack: str, racks: dict[str, list[str]], is_alive, rng) -> list[str]:
    """One or two live endpoints of the local datacenter (`racks`: rack -> its members, this node
    included) other than this one, from other racks than ours where two such exist, from two
    different racks where possible. A datacenter of one node: this node itself. [] if none."""
    members = [ep for eps in racks.values() for ep in eps]
    if len(members) == 1:
        return list(members)
    valid = {rack: sorted(ep for ep in eps if ep != local and is_alive(ep)) for rack, eps in racks.items()}
    valid = {rack: eps for rack, eps in sorted(valid.items()) if eps}
    count = sum(len(eps) for eps in valid.values())
    if count <= 2:
        return [ep for eps in valid.values() for ep in eps]
    if count - len(valid.get(local_rack, ())) >= 2:
        valid.pop(local_rack, None)           # enough endpoints in other racks
    if len(valid) == 1:                       # one rack to choose from: two of its members
        (eps,) = valid.values()
        return rng.sample(eps, 2)
    racks_left = list(valid)
    if len(racks_left) > 2:
        rng.shuffle(racks_left)
    return [rng.choice(valid[rack]) for rack in racks_left[:2]]


def level_for(endpoints: list[str]):
    """The batchlog write's level: ONE for one endpoint, TWO for two (Cassandra's)."""
    return cl.ConsistencyLevel.ONE if len(endpoints) == 1 else cl.ConsistencyLevel.TWO


# -- one mutation of a batch in flight ---------------------------------------------------------------

class BatchPart:
    """A WriteHandler whose answer goes to its batch (`on_part(index, reply)`), and, once every
    replica answered or the deadline passed, `on_part_finished(index, writes)`."""

    msg_id = None

    def __init__(self, batch, index: int, writes: WriteHandler):
        self.batch, self.index, self.writes = batch, index, writes
        self._told = False

    @property
    def finished(self) -> bool:
        return self.writes.finished

    def on_reply(self, now_ms: int, src: str, reply) -> list:
        return self.relay(self.writes.on_reply(now_ms, src, reply))

    def on_timeout(self, now_ms: int) -> list:
        return self.relay(self.writes.on_timeout(now_ms))

    def relay(self, effects: list) -> list:
        out = []
        for eff in effects:
            out += self.batch.on_part(self.index, eff) if type(eff) is Reply else [eff]
        if self.writes.finished and not self._told:
            self._told = True
            out += self.batch.on_part_finished(self.index, self.writes)
        return out


def write_handler(ctx, index: int, level, replicas: list[str], write_type: str) -> WriteHandler:
    """A WriteHandler for `replicas` at `level` (the arithmetic of ring/consistency.py)."""
    replica_dc = {ep: ctx.snitch.datacenter(ep) for ep in replicas}
    rf_by_dc: dict[str, int] = {}
    for dc in replica_dc.values():
        rf_by_dc[dc] = rf_by_dc.get(dc, 0) + 1
    return WriteHandler(index, level, rf_by_dc, ctx.config.datacenter, replica_dc,
                        ctx.now_ms + ctx.config.write_request_timeout_ms, write_type)


# -- replay -------------------------------------------------------------------------------------------

class Batchlog:
    """This node's batchlog entries and their replay; `tick` is called on every node tick."""

    def __init__(self, ctx):
        self.ctx = ctx
        self.first_seen: dict[bytes, int] = {}   # entry id -> when this node first listed it (monotonic)
        self.replaying: set[bytes] = set()
        self.corrupt: dict[bytes, CorruptionError] = {}
        self.next_replay_ms = 0

    def tick(self, now_ms: int) -> list:
        interval = getattr(self.ctx.config, "batchlog_replay_interval_ms", REPLAY_INTERVAL_MS)
        if now_ms < self.next_replay_ms:
            return []
        self.next_replay_ms = now_ms + interval
        out = []
        for batch_id, written_at, blob in self.entries():
            seen = self.first_seen.setdefault(batch_id, now_ms)
            if batch_id in self.replaying or batch_id in self.corrupt:
                continue
            if now_ms - seen < 2 * self.ctx.config.write_request_timeout_ms:
                continue
            where = f"system.batches[{batch_id.hex()}].mutations"
            try:
                mutations = decode_entry(blob, where)
            except CorruptionError as e:
                self.corrupt[batch_id] = e
                self.ctx.count("batchlog_corrupt_entries")
                continue
            out += BatchReplay(self, batch_id, written_at, mutations).start()
        return out

    def entries(self) -> list[tuple[bytes, int, bytes]]:
        """(id, written_at, mutations blob) of every entry this node holds."""
        rows = self.ctx.store.scan_all(SYSTEM, TABLE)
        out = [(r["id"], r.get("written_at") or 0, r.get("mutations") or b"") for r in rows]
        ids = {batch_id for batch_id, _, _ in out}
        for gone in [b for b in self.first_seen if b not in ids]:
            del self.first_seen[gone]
        return out

    def replayed(self, batch_id: bytes, written_at: int, complete: bool) -> list:
        """A replay ended: delete the entry if every mutation was acknowledged or hinted."""
        self.replaying.discard(batch_id)
        if not complete:
            return []         # the next round tries again
        self.ctx.count("batchlog_replayed")
        ctx = self.ctx
        ts = max(written_at + 1, ctx.wall_us())   # a skewed clock must still delete it
        key, payload = entry_removal(ctx.store, batch_id, ts, ctx.wall_us() // 1_000_000)
        return [Send(ctx.endpoint, MutationRequest(0, TABLE_ID, key, payload))]


class BatchReplay:
    """One entry's replay: each mutation to every replica of its key, hints for the silent ones."""

    def __init__(self, log: Batchlog, batch_id: bytes, written_at: int, mutations: list):
        self.log, self.batch_id, self.written_at = log, batch_id, written_at
        self.mutations = mutations
        self.open = 0
        self.starting = True
        self.complete = True

    def start(self) -> list:
        ctx = self.log.ctx
        self.log.replaying.add(self.batch_id)
        now_s = ctx.wall_us() // 1_000_000
        out = []
        for i, (table_id, key, payload) in enumerate(self.mutations):
            table = ctx.local_table(table_id)
            if table is None or now_s - self.written_at // 1_000_000 >= int(table.option("gc_grace_seconds")):
                continue      # a dropped table, or data a tombstone may no longer shadow
            replicas = ctx.write_replicas(table.keyspace, token_of(key))
            part = BatchPart(self, i, write_handler(ctx, i, cl.ConsistencyLevel.ONE, replicas, "BATCH"))
            part.writes.mutation = (table, key, payload)
            msg_id = ctx.register(part)
            self.open += 1
            for ep in replicas:
                if ctx.is_alive(ep):
                    part.writes.sent_to.add(ep)
                    out.append(Send(ep, MutationRequest(msg_id, table_id, key, payload)))
                elif not ctx.hint(ep, table, key, payload):
                    self.complete = False
            if not part.writes.sent_to:
                part.writes.finished = True
                out += part.relay([])
        self.starting = False
        if self.open == 0:
            out += self.log.replayed(self.batch_id, self.written_at, self.complete)
        return out

    def on_part(self, index: int, reply: Reply) -> list:
        return []           # a replay answers no client

    def on_part_finished(self, index: int, writes: WriteHandler) -> list:
        table, key, payload = writes.mutation
        for ep in writes.unacked():
            if not self.log.ctx.hint(ep, table, key, payload):
                self.complete = False
        self.open -= 1
        if self.open or self.starting:
            return []
        return self.log.replayed(self.batch_id, self.written_at, self.complete)
