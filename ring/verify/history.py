"""Client histories: every operation's invocation and completion, for the checkers (ring/verify/checkers.py).

Pure data, no I/O. The simulator's workload and the real-process nemesis both record into a
`History`; `to_jsonl`/`from_jsonl` make replay files.

Outcomes (specs/testing.md §4, "Indeterminate ops"):

* ``ok``   — it happened. Writes and deletes carry the timestamp the store acknowledged; reads carry
  the value and the timestamp of the cell they read.
* ``fail`` — definitely did not happen: nothing was applied and nothing may ever read it.
* ``info`` — a timeout: it may take effect later, or never. It "returns at +infinity" (``ret`` is
  None) and its output is never checked. Its process is retired: the client continues under a
  NEW process id (Knossos), which `invoke` enforces.

Times: ``call`` and ``ret`` come from one global logical counter (one tick per invoke and per ok or
fail completion), so there are no ties and ``a.ret < b.call`` means "a returned before b began".

Values and deletes: every write writes a unique value (e.g. ``"c1-17"``); a delete is a write of
"absent" (value None) at its timestamp, i.e. a tombstone. A read that finds nothing returns value
None with ts None ("absent": explained by the initial state or by some delete), or value None with
the tombstone's ts when the store exposes it (test mode).

Compare-and-set (lightweight transactions): a ``cas`` op sets ``value`` if the register holds
``expected`` (None = absent). An applied one completes ``ok``; one that was not applied saw the
current value and completes as a ``read`` of it (`complete(..., as_read=True)`); an ``info`` one
may have applied at any point after its call, or never.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass

KINDS = ("write", "delete", "read", "cas")
OUTCOMES = ("ok", "fail", "info")


@dataclass(frozen=True, slots=True)
class Op:
    index: int            # global logical sequence of the invoke (== call)
    process: str          # client process id; retired after an info
    kind: str             # "write" | "delete" | "read"
    key: str
    value: str | None     # writes: the unique value written; deletes: None; reads: the value read (None = absent)
    ts: int | None        # writes/deletes: the acked write timestamp (µs); reads: ts of the cell read
    call: int             # logical time of invoke
    ret: int | None       # logical time of completion; None for info (= +infinity)
    outcome: str          # "ok" | "fail" | "info"
    level: str = ""       # consistency level used
    expected: str | None = None   # cas: the value the register must hold for it to apply

    @property
    def is_write(self) -> bool:
        """Writes and deletes (a delete is a write of a tombstone)."""
        return self.kind != "read"

    def describe(self) -> str:
        ret = "inf" if self.ret is None else self.ret
        what = {"write": f"write {self.value!r}", "delete": "delete", "read": f"read {self.value!r}",
                "cas": f"cas {self.expected!r}->{self.value!r}"}[self.kind]
        level = f" {self.level}" if self.level else ""
        return f"#{self.index} {self.process} {what} key={self.key} ts={self.ts} [{self.call}, {ret}] {self.outcome}{level}"


class History:
    """Records invokes and completions. `ops` holds completed (ok/fail) and info ops, by call time."""

    def __init__(self):
        self._clock = 0
        self._open: dict[int, tuple] = {}          # handle -> (process, kind, key, value, level)
        self._busy: dict[str, int] = {}            # process -> its open handle
        self._retired: set[str] = set()            # processes that had an info op
        self._done: list[Op] = []

    def _tick(self) -> int:
        self._clock += 1
        return self._clock

    def invoke(self, process: str, kind: str, key: str, value: str | None = None, level: str = "",
               expected: str | None = None) -> int:
        """Record an invocation; returns a handle for `complete`. A process has one op at a time,
        and a process that had an info op never invokes again."""
        if kind not in KINDS:
            raise ValueError(f"unknown op kind {kind!r}")
        if process in self._busy:
            raise ValueError(f"process {process!r} already has op #{self._busy[process]} in flight")
        if process in self._retired:
            raise ValueError(f"process {process!r} had an info op: continue under a new process id")
        handle = self._tick()
        self._open[handle] = (process, kind, key, value if kind in ("write", "cas") else None, level, expected)
        self._busy[process] = handle
        return handle

    def complete(self, handle: int, outcome: str, value: str | None = None, ts: int | None = None,
                 as_read: bool = False) -> None:
        """Record a completion. `value` matters for reads only (what was read); `ts` is the acked
        write timestamp (writes/deletes) or the read cell's timestamp (reads). `as_read`: a cas
        that was not applied, recorded as the read of the current value it returned."""
        if outcome not in OUTCOMES:
            raise ValueError(f"unknown outcome {outcome!r}")
        process, kind, key, invoked_value, level, expected = self._open.pop(handle)
        if as_read:
            assert kind == "cas" and outcome == "ok", (kind, outcome)
            kind, expected = "read", None
        del self._busy[process]
        if outcome == "info":
            self._retired.add(process)
        ret = None if outcome == "info" else self._tick()
        self._done.append(Op(handle, process, kind, key, value if kind == "read" else invoked_value, ts,
                             handle, ret, outcome, level, expected))

    def pending(self) -> list[int]:
        """Handles of ops invoked but not completed."""
        return sorted(self._open)

    def close(self) -> None:
        """Complete every pending op as info (never answered: indeterminate)."""
        for handle in self.pending():
            self.complete(handle, "info")

    @property
    def ops(self) -> list[Op]:
        return sorted(self._done, key=lambda o: o.call)

    def __len__(self) -> int:
        return len(self._done)

    def by_key(self) -> dict[str, list[Op]]:
        out: dict[str, list[Op]] = {}
        for op in self.ops:
            out.setdefault(op.key, []).append(op)
        return out

    def to_jsonl(self) -> str:
        return "".join(json.dumps(asdict(op), sort_keys=True) + "\n" for op in self.ops)

    @classmethod
    def from_ops(cls, ops) -> History:
        """A history of already-completed ops (hand-made tests, replay files). Not re-validated."""
        h = cls()
        h._done = list(ops)
        h._clock = max([o.call for o in h._done] + [o.ret or 0 for o in h._done] + [0])
        return h

    @classmethod
    def from_jsonl(cls, text: str) -> History:
        return cls.from_ops([Op(**json.loads(line)) for line in text.splitlines() if line.strip()])
