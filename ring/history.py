"""Client histories: every operation's invocation and completion, for the checkers.

An op is ok (it happened), fail (definitely did not happen: nothing was applied) or info (a
timeout: it may apply later, or never; it "returns at +infinity", and the client continues under a
new process id, as in Knossos). Times are one global logical sequence, so there are no ties.
Writes carry unique values; a delete is a write of "absent" (value None) at its timestamp; a read
that finds nothing returns value None and ts None.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass


@dataclass(frozen=True, slots=True)
class Op:
    index: int
    process: str
    kind: str            # "write" | "delete" | "read"
    key: str
    value: str | None
    ts: int | None
    call: int
    ret: int | None      # None = info: returns at +infinity
    outcome: str         # "ok" | "fail" | "info"
    level: str = ""


class History:
    def __init__(self):
        self._clock = 0
        self._open: dict[int, tuple] = {}
        self._done: list[Op] = []

    def _tick(self) -> int:
        self._clock += 1
        return self._clock

    def invoke(self, process: str, kind: str, key: str, value: str | None = None, level: str = "") -> int:
        assert kind in ("write", "delete", "read"), kind
        handle = self._tick()
        self._open[handle] = (process, kind, key, value, level)
        return handle

    def complete(self, handle: int, outcome: str, value: str | None = None, ts: int | None = None) -> None:
        assert outcome in ("ok", "fail", "info"), outcome
        process, kind, key, invoked_value, level = self._open.pop(handle)
        ret = None if outcome == "info" else self._tick()
        self._done.append(Op(handle, process, kind, key, value if kind == "read" else invoked_value, ts,
                             handle, ret, outcome, level))

    @property
    def ops(self) -> list[Op]:
        return sorted(self._done, key=lambda o: o.call)

    def by_key(self) -> dict[str, list[Op]]:
        out: dict[str, list[Op]] = {}
        for op in self.ops:
            out.setdefault(op.key, []).append(op)
        return out

    def to_jsonl(self) -> str:
        return "".join(json.dumps(asdict(op)) + "\n" for op in self.ops)

    @classmethod
    def from_ops(cls, ops) -> "History":
        h = cls()
        h._done = list(ops)
        h._clock = max([o.call for o in ops] + [o.ret or 0 for o in ops] + [0])
        return h

    @classmethod
    def from_jsonl(cls, text: str) -> "History":
        return cls.from_ops([Op(**json.loads(line)) for line in text.splitlines() if line.strip()])
