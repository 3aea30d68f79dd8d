"""Secondary-index queries over the ring: the coordinator's fan-out and the replicas' answers.

Rule: handlers decide; node.py sends; replicas answer in ring/replica.py. The coordinator walks
the ring's token ranges in token order (the sub-ranges of a scan, `block_for` live replicas
each). For each range:

1. every contacted replica answers an IndexReadRequest from its local index
   (engine/secondary_index.py): up to `limit` rows whose indexed column matches *in its own
   view*, each as the row's slice of its partition (row, partition deletion, covering range
   tombstones). Replicas do not filter the other restrictions: another replica may hold the newer
   cell of another column, so a row matching after reconciliation could match on no single
   replica (the multi-column case of CASSANDRA-19018). A row matching after reconciliation has its
   winning indexed cell live on some contacted replica, which offers it;
2. rows up to the smallest last row of a replica that may have more are candidates; a candidate
   some replica did not return may still be newer there (overwritten with a non-matching value,
   or deleted), so the coordinator reads it from those replicas (RowsReadRequest): Cassandra 4's
   replica filtering protection, so a stale replica never surfaces an overwritten row;
3. each candidate's versions are reconciled (`merge_all`, i.e. reconcile_cells) and the row is
   kept only if it is live and matches every restriction.
Rows come back in (token, key, clustering) order; the page's paging_state is the last row's
[token, key, clustering]. No read repair is done for index queries (docs/secondary_indexes.md).
"""
from __future__ import annotations

from engine import row_decode
from engine import restriction as rs
from engine.errors import IndexNotReady, InvalidRequest
from engine.partition import (
    Partition,
    decode_partition,
    live_row,
    merge_all,
)
from engine.secondary_index import decode_paging_state
from ring.errors import ReadFailure, ReadTimeout
from ring.messages import (
    IndexReadRequest,
    IndexReadResponse,
    Reply,
    RowsReadRequest,
    Send,
    packb,
)

MAX_PAGE_ROWS = 10_000
REPLICA_ROWS = 1_000                 # rows per IndexReadRequest, so a fetch-back stays small
MAX_RESPONSE_BYTES = 4 * 1024 * 1024  # a replica stops early past this (frames are <= 16 MiB)
MAX_FETCH_ROWS = 10_000


def row_slice(p: Partition, ck: bytes) -> Partition:
    """What a replica knows about one row: the row, the partition deletion, covering ranges."""
    rows = {ck: p.rows[ck]} if ck in p.rows else {}
    ranges = [r for r in p.ranges if r[0] <= ck and (r[1] is None or ck < r[1])]
    return Partition(p.deletion, rows, ranges)


def start(ctx, request_id: int, level, table, args: dict, subranges: list) -> list:
    """The client op "index_query": validate, then the handler walks `subranges` in order."""
    restrictions = rs.parse(table, args.get("where"))
    rs.choose_index(table, restrictions)  # InvalidRequest now if no restricted column is indexed
    page_size = args.get("page_size") or 1000
    if not isinstance(page_size, int) or isinstance(page_size, bool) or not 1 <= page_size <= MAX_PAGE_ROWS:
        raise InvalidRequest(f"page_size must be an integer from 1 to {MAX_PAGE_ROWS}, got {page_size!r}")
    columns = args.get("columns")
    if columns is not None:
        for c in columns:
            table.column(c)
    resume = decode_paging_state(args.get("paging_state"))
    handler = IndexQueryHandler(ctx, request_id, level, table, restrictions, subranges, resume, page_size,
                                columns, ctx.now_ms + ctx.config.range_request_timeout_ms,
                                ctx.wall_us() // 1_000_000)
    handler.writetime, handler.ttl_now = bool(args.get("writetime")), handler.now_s if args.get("ttl") else None
    ctx.count("index_queries")
    return handler.start()


class IndexQueryHandler:
    msg_id = None
    writetime = False               # 'writetime(col)' entries in the rows
    ttl_now = None                  # the clock (s) 'ttl(col)' entries count from; None: no such entries

    def __init__(self, ctx, request_id: int, level, table, restrictions: list, subranges: list, resume,
                 page_size: int, columns, deadline_ms: int, now_s: int):
        self.ctx = ctx
        self.request_id = request_id
        self.level = level
        self.table = table
        self.restrictions = restrictions
        self.where = rs.to_wire(restrictions)
        self.subranges = subranges      # [(start (token, key) incl | None, end excl | None, targets)]
        self.index = 0
        self.after = resume             # (token, key, ck): rows up to here are done
        self.page_size = page_size
        self.columns = columns
        self.deadline_ms = deadline_ms
        self.now_s = now_s
        self.rows: list[dict] = []
        self.phase = "index"            # index (step 1) | fetch (step 2)
        self.expected: set[str] = set()
        self.replies: dict[str, tuple] = {}
        self.versions: dict[tuple, dict] = {}
        self.cutoff = None
        self.done = False

    @property
    def finished(self) -> bool:
        return self.done

    def start(self) -> list:
        return self._request()

    def _request(self) -> list:
        while self.index < len(self.subranges):
            start, end, targets = self.subranges[self.index][:3]
            if self.after is not None and end is not None and self.after[:2] >= end:
                self.index += 1  # earlier pages covered this sub-range
                continue
            msg_id = self.ctx.register(self)
            self.phase, self.replies, self.expected = "index", {}, set(targets)
            limit = max(1, min(REPLICA_ROWS, self.page_size - len(self.rows)))
            req = IndexReadRequest(msg_id, self.table.id, self.where, list(start) if start else None,
                                   list(end) if end else None, list(self.after) if self.after else None, limit)
            return [Send(ep, req) for ep in targets]
        self.done = True
        return [Reply(self.request_id, result={"rows": self.rows, "paging_state": None})]

    def on_reply(self, now_ms: int, src: str, reply: IndexReadResponse) -> list:
        rows, exhausted, error = reply.rows, reply.exhausted, reply.error
        if self.done or src not in self.expected or src in self.replies:
            return []
        if error is not None:
            self.done = True
            if str(error).startswith((IndexNotReady.__name__, InvalidRequest.__name__)):
                # the coordinator validated the query against its schema: the replica is still
                # building the index, or has not learned it (or the table) yet; both pass
                return [Reply(self.request_id, error=IndexNotReady(f"replica {src} cannot answer yet: {error}"))]
            return [Reply(self.request_id, error=ReadFailure(self.level, len(self.replies), 1, len(self.expected)))]
        self.replies[src] = (rows, exhausted)
        if set(self.replies) != self.expected:
            return []
        return self._candidates() if self.phase == "index" else self._finish_range()

    def _candidates(self) -> list:
        """Step 2: candidates up to the cutoff; fetch those some replica did not return."""
        cutoff = None
        for rows, exhausted in self.replies.values():
            if not exhausted and rows:
                last = tuple(rows[-1][:3])
                cutoff = last if cutoff is None or last < cutoff else cutoff
        self.cutoff = cutoff
        self.versions = {}
        for src, (rows, _) in self.replies.items():
            for token, key, ck, payload in rows:
                if cutoff is None or (token, key, ck) <= cutoff:
                    self.versions.setdefault((token, key, ck), {})[src] = payload
        missing: dict[str, list] = {}
        for (_, key, ck), by_src in sorted(self.versions.items()):
            for ep in self.expected:
                if ep not in by_src:
                    missing.setdefault(ep, []).append([key, ck])
        if not missing:
            return self._finish_range()
        self.ctx.count("index_row_fetches")
        msg_id = self.ctx.register(self)
        self.phase, self.replies, self.expected = "fetch", {}, set(missing)
        return [Send(ep, RowsReadRequest(msg_id, self.table.id, keys)) for ep, keys in sorted(missing.items())]

    def _finish_range(self) -> list:
        """Step 3: reconcile each candidate, keep the live matching rows, move on."""
        if self.phase == "fetch":
            for src, (rows, _) in self.replies.items():
                for token, key, ck, payload in rows:
                    self.versions.setdefault((token, key, ck), {})[src] = payload
        table = self.table
        for token, key, ck in sorted(self.versions):
            payloads = [p for p in self.versions[(token, key, ck)].values() if p is not None]
            cells = live_row(merge_all([decode_partition(p) for p in payloads]), ck, self.now_s)
            self.after = (token, key, ck)
            if not cells:
                continue
            key_values = row_decode.decode_key(table, key)
            row = row_decode.row_dict(table, key_values, ck, cells, None, self.writetime, ttl_now=self.ttl_now)
            if rs.matches(table, self.restrictions, row):
                self.rows.append(row if self.columns is None else row_decode.row_dict(
                    table, key_values, ck, cells, self.columns, self.writetime, ttl_now=self.ttl_now))
                if len(self.rows) >= self.page_size:
                    self.done = True
                    return [Reply(self.request_id, result={"rows": self.rows,
                                                           "paging_state": packb([token, key, ck])})]
        if self.cutoff is None:
            self.index += 1      # every replica exhausted this sub-range
        else:
            self.after = self.cutoff
        return self._request()

    def on_timeout(self, now_ms: int) -> list:
        if self.done or now_ms < self.deadline_ms:
            return []
        self.done = True
        return [Reply(self.request_id, error=ReadTimeout(self.level, len(self.replies), len(self.expected)))]
