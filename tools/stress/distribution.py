"""cassandra-stress distributions: how keys, column counts and column sizes are drawn.

    parse_distribution("uniform(1..100000)").next(rng)

Spellings (case-insensitive, as cassandra-stress writes them): `fixed(N)`, `uniform(MIN..MAX)`,
`gaussian(MIN..MAX)` or `gaussian(MIN..MAX,STDVRNG)` (mean in the middle, standard deviation
(MAX-MIN)/2/STDVRNG, default STDVRNG 3, clamped to the range), `seq(MIN..MAX)` (MIN, MIN+1, ...,
MAX, then MIN again), and a bare integer N for `fixed(N)`. Every draw lies in [MIN, MAX].

Invariants: a distribution is a value; `next(rng)` draws only from the `random.Random` passed in
(so a seeded run repeats exactly), except `seq`, which keeps its own position.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from engine.errors import InvalidRequest

_SPEC = re.compile(r"^\s*(?P<kind>[a-z]+)\s*\(\s*(?P<body>[^)]*)\)\s*$", re.IGNORECASE)
_RANGE = re.compile(r"^\s*(-?\d+)\s*\.\.\s*(-?\d+)\s*(?:,\s*([0-9.]+)\s*)?$")
RANGE_MAX = 2**62   # keys, counts and sizes above this are mistakes, not workloads


@dataclass(frozen=True)
class Fixed:
    value: int

    @property
    def low(self) -> int:
        return self.value

    @property
    def high(self) -> int:
        return self.value

    def next(self, rng) -> int:
        return self.value

    def __str__(self) -> str:
        return f"fixed({self.value})"


@dataclass(frozen=True)
class Uniform:
    low: int
    high: int

    def next(self, rng) -> int:
        return rng.randint(self.low, self.high)

    def __str__(self) -> str:
        return f"uniform({self.low}..{self.high})"


@dataclass(frozen=True)
class Gaussian:
    low: int
    high: int
    stdvrng: float = 3.0

    @property
    def mean(self) -> float:
        return (self.low + self.high) / 2

    @property
    def stdev(self) -> float:
        return (self.high - self.low) / 2 / self.stdvrng

    def next(self, rng) -> int:
        v = round(rng.gauss(self.mean, self.stdev))
        return min(self.high, max(self.low, v))

    def __str__(self) -> str:
        return f"gaussian({self.low}..{self.high},{self.stdvrng:g})"


@dataclass
class Sequence:
    low: int
    high: int
    position: int = field(default=0, compare=False)

    def next(self, rng) -> int:
        v = self.low + self.position
        self.position = (self.position + 1) % (self.high - self.low + 1)
        return v

    def __str__(self) -> str:
        return f"seq({self.low}..{self.high})"


KINDS = {"fixed": Fixed, "uniform": Uniform, "gaussian": Gaussian, "gauss": Gaussian, "seq": Sequence}


def parse_distribution(spec: str, what: str = "distribution", minimum: int = 0):
    """A distribution from its cassandra-stress spelling; InvalidRequest names `what` and the fix."""
    text = str(spec).strip()
    if re.fullmatch(r"-?\d+", text):
        return _checked(Fixed(int(text)), what, minimum, text)
    m = _SPEC.match(text)
    if not m or m["kind"].lower() not in KINDS:
        raise InvalidRequest(f"bad {what} {text!r}: write fixed(N), uniform(MIN..MAX), gaussian(MIN..MAX[,STDVRNG]) "
                             "or seq(MIN..MAX)")
    kind, body = m["kind"].lower(), m["body"]
    if kind == "fixed":
        if not re.fullmatch(r"\s*-?\d+\s*", body):
            raise InvalidRequest(f"bad {what} {text!r}: fixed takes one integer, e.g. fixed(34)")
        return _checked(Fixed(int(body)), what, minimum, text)
    r = _RANGE.match(body)
    if not r:
        raise InvalidRequest(f"bad {what} {text!r}: write {kind}(MIN..MAX), e.g. {kind}(1..100000)")
    low, high = int(r[1]), int(r[2])
    if r[3] is not None and kind not in ("gaussian", "gauss"):
        raise InvalidRequest(f"bad {what} {text!r}: only gaussian takes a third parameter (STDVRNG)")
    if low > high:
        raise InvalidRequest(f"bad {what} {text!r}: MIN {low} is greater than MAX {high}")
    if kind in ("gaussian", "gauss"):
        stdvrng = float(r[3]) if r[3] is not None else 3.0
        if stdvrng <= 0:
            raise InvalidRequest(f"bad {what} {text!r}: STDVRNG must be positive")
        return _checked(Gaussian(low, high, stdvrng), what, minimum, text)
    return _checked(KINDS[kind](low, high), what, minimum, text)


def _checked(dist, what: str, minimum: int, text: str):
    if dist.low < minimum:
        raise InvalidRequest(f"bad {what} {text!r}: values must be >= {minimum}")
    if dist.high > RANGE_MAX:
        raise InvalidRequest(f"bad {what} {text!r}: values must be <= {RANGE_MAX} (2^62)")
    return dist
