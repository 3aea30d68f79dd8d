"""A token-range scan's cursor: the pages of Store.scan, read on from where the last page stopped.

`ScanCursor(t, cfs, start_token, end_token, paging_state, ...).page(page_size)` is exactly the page
Store.scan returns for those arguments (`scan_page` is one page of a fresh cursor). Calling
`page` again returns the page Store.scan would return for the previous page's paging_state,
without seeking again: the cursor keeps the range's block stream (cfs.scan_blocks: the SSTables'
decoded blocks, merged with the memtables' runs) and the entries of the last run the previous
page did not take. That holds while the table's storage is what the cursor started from:
`stale()` is True once the table's schema object, memtable, write count or SSTable list has
changed (a write, a flush, a compaction, a truncate, an ALTER), and the caller (Store.scan_all)
then makes a new cursor from the last paging state, so a write seen by a page-by-page scan is
seen by a cursor's too. Within a page, reads are as lazy as before: a flush or compaction that
ends meanwhile leaves the page reading the readers it opened (a reader is never closed while
referenced; an unlinked file's fd stays readable).

Rows are made as results' fast paths make them: a run of single-version plain payloads becomes
its row dicts at once (plain_rows) when the table is plain and the page asks for every column
without writetime; any other partition goes through simple_row / reconcile + live_rows +
row_dict. Paging state: msgpack [token, partition key, clustering] of the page's last row
(results module docstring); a page that ends inside a partition resumes after that row. The
cursor's next page goes on with that partition's row iterator (`inside`) while the clock is in
the same second, so a wide partition is reconciled once, not once a page; its partition-level
and range tombstones are then counted by the first page only.
"""
from __future__ import annotations

import msgpack

from engine import row_decode
from engine.column_family import ColumnFamilyStore
from engine.dropped_columns import visible
from engine.merge import reconcile
from engine.partition import live_rows
from engine.plain_rows import plain_rows, simple_row_cells
from engine.results import ScanPage, blob_key_name, check_page_size, column_converters, simple_row, token_ranges
from engine.schema import Table
from engine.token import MAX_TOKEN

_packb = msgpack.packb
EVERY_ROW = 1 << 62  # a hint: the caller means to take every row of the range (Store.scan_all)
# scan_all's pages hold at most this many rows: fewer than the collector's young threshold (700
# allocations), so that a consumer that drops its rows frees a page's dicts before the next page
# makes as many, and a scan's rows trigger no young collection (which would walk the merge's runs)
SCAN_ALL_PAGE_ROWS = 512


def scan_page(t: Table, cfs: ColumnFamilyStore, start_token: int | None, end_token: int | None,
              page_size: int, paging_state: bytes | None, columns, writetime: bool) -> ScanPage:
    """One page of the rows whose token is in (start_token, end_token], in token order."""
    return ScanCursor(t, cfs, start_token, end_token, paging_state, columns, writetime).page(page_size)


def scan_all_pages(store, keyspace: str, table: str, start_token, end_token, page_size: int, kwargs: dict):
    """The row list of each page of Store.scan_all: the pages Store.scan returns, of at most
    min(page_size, SCAN_ALL_PAGE_ROWS) rows, each read when the rows before it are used up. One
    cursor reads on from page to page while the table's storage is unchanged; a new one starts
    from the last paging state once it has changed (module docstring)."""
    check_page_size(page_size)
    size = min(page_size, SCAN_ALL_PAGE_ROWS)
    state = cursor = None
    while True:
        store._check_open()
        t = store.table(keyspace, table)
        cfs = store.cfs[t.id]
        if cursor is None or cursor.stale(t, cfs):
            cursor = ScanCursor(t, cfs, start_token, end_token, state, hint=EVERY_ROW, **kwargs)
        page = cursor.page(size)
        state, rows = page.paging_state, page.rows
        del page
        yield rows
        del rows  # the caller is done with them: free them before the next page is made
        if state is None:
            return


def storage_version(cfs: ColumnFamilyStore) -> tuple:
    """What a cursor's reads depend on: the memtable (a flush or truncate replaces it), the
    count of writes applied to it, the SSTable list (replaced, never changed in place)."""
    return cfs.memtable, cfs.writes, cfs.sstables


class ScanCursor:
    """Pages of one token-range scan (module docstring). `hint`: how many rows the caller
    expects to take in all (None: one page), which sizes the merge's rounds."""

    def __init__(self, t: Table, cfs: ColumnFamilyStore, start_token: int | None, end_token: int | None,
                 paging_state: bytes | None, columns=None, writetime: bool = False, hint: int | None = None):
        self.t, self.cfs = t, cfs
        self.version = storage_version(cfs)
        ranges = token_ranges(start_token, end_token)
        resume = msgpack.unpackb(paging_state) if paging_state else None
        self.columns, self.writetime, self.hint = columns, writetime, hint
        self.blob_key = blob_key_name(t)
        self.plain = not t.clustering and not t.dropped
        self.converters = column_converters(t) if self.plain and columns is None and not writetime else None
        self.resume = None  # (token, key, clustering) of the partition the next page resumes inside
        bounds = []
        if resume is not None:  # the range the page resumes in; the ranges before it are done
            rt, rk, rck = resume
            while len(ranges) > 1 and not _in_range(rt, *ranges[0]):
                ranges = ranges[1:]
        for lo_tok, hi_tok in ranges:
            if lo_tok == MAX_TOKEN:  # (MAX_TOKEN, ...] holds no token
                continue
            start = (lo_tok + 1, b"") if lo_tok is not None else None
            end = (hi_tok + 1, b"") if hi_tok is not None else None
            if resume is not None:
                if end is not None and (rt, rk) >= end:
                    continue
                if start is None or (rt, rk) > start:
                    start = (rt, rk)
                self.resume = (rt, rk, rck)
                resume = None  # the later range of a wrapping one is read whole
            bounds.append((start, end))
        self.want = 0
        self.runs = self._runs(bounds)
        self.pending = None  # (toks, keys, payloads, multi, offset): the last run, from the entry no page took yet
        # (token, key, now_s, live rows) of the partition the last page ended inside: the next
        # page goes on with its row iterator instead of reconciling the partition again (a wide
        # partition read in pages would cost its whole size per page: quadratic); only for the
        # same second, as a fresh page's TTL expiry would differ otherwise
        self.inside = None
        self.counter = [0]  # the page's tombstone count; a kept row iterator counts into it

    def stale(self, t: Table, cfs: ColumnFamilyStore) -> bool:
        """True when a page of this cursor might differ from a fresh one's (module docstring)."""
        if t is not self.t or cfs is not self.cfs:
            return True
        memtable, writes, sstables = self.version
        return cfs.memtable is not memtable or cfs.writes != writes or cfs.sstables is not sstables

    def _runs(self, bounds: list):
        """The block stream of every range, one after the other."""
        for start, end in bounds:
            yield from self.cfs.scan_blocks(start, end, False, self.hint or self.want)

    def page(self, page_size: int) -> ScanPage:
        """The next page (at most page_size rows); its paging_state is None on the last one."""
        check_page_size(page_size)
        t, cfs, columns, writetime = self.t, self.cfs, self.columns, self.writetime
        blob_key, plain, converters = self.blob_key, self.plain, self.converters
        rows: list[dict] = []
        counter = self.counter
        counter[0] = 0

        def general(tok: int, key: bytes, payloads, lo: bytes) -> bytes | bool | None:
            """Append the live rows of one partition from clustering `lo`. When the page is full:
            True if it took the partition's only row, else the clustering of the last row taken
            (the next page resumes after it); None while the page is not full."""
            key_values = {blob_key: key} if blob_key else row_decode.decode_key(t, key)
            if not lo and len(payloads) == 1 and plain:  # the fast paths of read_row, for scans
                if converters is not None:
                    row = simple_row(payloads[0], key_values, converters)
                    if row is not None:
                        rows.append(row)
                        return True if len(rows) >= page_size else None
                else:
                    cells = simple_row_cells(payloads[0])
                    if cells is not None:
                        rows.append(row_decode.row_dict(t, key_values, b"", cells, columns, writetime))
                        return True if len(rows) >= page_size else None
            now_s, inside, self.inside = cfs.clock.now_s(), self.inside, None
            if inside is not None and lo and inside[:3] == (tok, key, now_s):
                live = inside[3]  # the rows after the last one the previous page took
            else:
                live = live_rows(visible(t, reconcile(payloads)), now_s, lo, None, False, counter)
            for ck, cells in live:
                rows.append(row_decode.row_dict(t, key_values, ck, cells, columns, writetime))
                if len(rows) >= page_size:
                    self.inside = (tok, key, now_s, live)
                    return ck
            if counter[0] > cfs.options["tombstone_failure_threshold"]:
                cfs.guard(counter, f"{t.qualified_name} scan")
            return None

        def full(tok: int, key: bytes, ck: bytes) -> ScanPage:
            cfs.guard(counter, f"{t.qualified_name} scan")
            return ScanPage(rows, _packb([tok, key, ck], use_bin_type=True))

        while True:
            run = self.pending
            if run is not None:
                self.pending = None
                toks, keys, payloads, multi, off = run
            else:
                self.want = page_size - len(rows)
                run = next(self.runs, None)
                if run is None:
                    break
                toks, keys, payloads, multi = run
                off = 0
            if converters is not None and not multi and self.resume is None:
                # plain rows: a page that ends in the run keeps the run and an offset into it
                need = page_size - len(rows)
                end = off + need
                if end < len(keys):
                    block_rows = plain_rows(t, converters, blob_key, keys[off:end], payloads[off:end])
                elif off:
                    block_rows = plain_rows(t, converters, blob_key, keys[off:], payloads[off:])
                else:
                    block_rows = plain_rows(t, converters, blob_key, keys, payloads)
                if block_rows is not None:
                    rows += block_rows
                    if len(rows) < page_size:
                        continue
                    if end < len(keys):
                        self.pending = (toks, keys, payloads, multi, end)
                    return full(toks[end - 1], keys[end - 1], b"")
            if off:  # the slow paths below take the run from its start
                toks, keys, payloads = toks[off:], keys[off:], payloads[off:]
            if self.resume is not None:  # the partition the page resumes in: from after its last row
                rtok, rkey, rck = self.resume
                self.resume = None
                if keys[0] == rkey and toks[0] == rtok:
                    ck = general(rtok, rkey, _versions(payloads[0]), rck + b"\x00")
                    if ck is not None:  # never True: lo is not empty
                        self.resume, self.pending = (rtok, rkey, ck), (toks, keys, payloads, multi, 0)
                        return full(rtok, rkey, ck)
                    toks, keys, payloads = toks[1:], keys[1:], payloads[1:]
                    if not keys:
                        continue
                    if converters is not None and not multi:  # the rest of the run: as above
                        self.pending = (toks, keys, payloads, multi, 0)
                        continue
            for i, (tok, key, p) in enumerate(zip(toks, keys, payloads)):
                ck = general(tok, key, _versions(p), b"")
                if ck is True:  # the page ends with this partition
                    if i + 1 < len(keys):
                        self.pending = (toks, keys, payloads, multi, i + 1)
                    return full(tok, key, b"")
                if ck is not None:  # the page ends inside it: the next one resumes in it
                    self.resume, self.pending = (tok, key, ck), (toks, keys, payloads, multi, i)
                    return full(tok, key, ck)
        cfs.guard(counter, f"{t.qualified_name} scan")
        return ScanPage(rows, None)


def _in_range(tok: int, lo: int | None, hi: int | None) -> bool:
    """tok in the non-wrapping range (lo, hi] (None: the end of the ring)."""
    return (lo is None or tok > lo) and (hi is None or tok <= hi)


def _versions(payload) -> tuple | list:
    """A run's payload entry (bytes, or the list of a partition's versions) as a sequence."""
    return (payload,) if payload.__class__ is bytes else payload
