"""TokenRing: an immutable map of sorted tokens to the endpoints that own them.

Invariants (`check_invariants`): tokens strictly increase; every token lies in
[MIN_TOKEN + 1, MAX_TOKEN] (MIN_TOKEN is the ring minimum, never a node's token); owners[i] owns
tokens[i]. The owner of a key token t is the endpoint of the first ring token >= t, wrapping past
the largest to the smallest; each ring token owns the range (previous token, token].

Endpoints are ids like "127.0.0.1:9100". A change makes a new ring (`from_endpoints`,
`without_endpoint`), so a ring can be shared freely between a coordinator's requests.
Rules in docs/ring.md#ring.
"""
from __future__ import annotations

import hashlib
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from engine.token import MAX_TOKEN, MIN_TOKEN
from ring.errors import InvalidRequest

RING_SIZE = 2**64  # the size of the token space; a range's width is (end - start) mod RING_SIZE
TokenRange = tuple[int, int]  # (start, end]: exclusive start, inclusive end; start == end: all


@dataclass(frozen=True, slots=True)
class TokenRing:
    tokens: tuple[int, ...] = ()
    owners: tuple[str, ...] = ()
    _by_endpoint: dict[str, tuple[int, ...]] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_endpoints(cls, tokens_by_endpoint: Mapping[str, Iterable[int]]) -> TokenRing:
        """Build a ring from {endpoint: tokens}. Two endpoints claiming a token is an error."""
        owner_of: dict[int, str] = {}
        for ep in sorted(tokens_by_endpoint):
            for tok in tokens_by_endpoint[ep]:
                if not MIN_TOKEN < tok <= MAX_TOKEN:
                    raise InvalidRequest(f"token {tok} of {ep} is outside ({MIN_TOKEN}, {MAX_TOKEN}]")
                other = owner_of.setdefault(tok, ep)
                if other != ep:
                    raise InvalidRequest(f"token {tok} is claimed by both {other} and {ep}")
        tokens = tuple(sorted(owner_of))
        owners = tuple(owner_of[t] for t in tokens)
        by_ep: dict[str, list[int]] = {}
        for tok, ep in zip(tokens, owners):
            by_ep.setdefault(ep, []).append(tok)
        return cls(tokens, owners, {ep: tuple(toks) for ep, toks in sorted(by_ep.items())})

    def __len__(self) -> int:
        return len(self.tokens)

    @property
    def endpoints(self) -> tuple[str, ...]:
        """Every endpoint with at least one token, sorted."""
        return tuple(self._by_endpoint)

    def tokens_of(self, ep: str) -> tuple[int, ...]:
        return self._by_endpoint.get(ep, ())

    def first_token_index(self, token: int) -> int:
        """Index of the first ring token >= `token`, wrapping to 0 past the largest."""
        assert self.tokens, "empty ring"
        i = bisect_left(self.tokens, token)
        return 0 if i == len(self.tokens) else i

    def owner(self, token: int) -> str:
        """The primary owner of a key token (the first replica of SimpleStrategy)."""
        return self.owners[self.first_token_index(token)]

    def primary_range(self, token: int) -> TokenRange:
        """The range (prev, tok] of ring token `tok` that contains `token`."""
        i = self.first_token_index(token)
        return self.tokens[i - 1], self.tokens[i]

    def ranges_of(self, ep: str) -> list[TokenRange]:
        """The primary ranges (prev, tok] of each of `ep`'s tokens, in token order."""
        out = []
        for tok in self.tokens_of(ep):
            i = bisect_left(self.tokens, tok)
            out.append((self.tokens[i - 1], tok))
        return out

    def walk(self, start_index: int) -> Iterator[tuple[int, str]]:
        """(token, owner) clockwise from `start_index`, once round the ring."""
        n = len(self.tokens)
        for k in range(n):
            i = (start_index + k) % n
            yield self.tokens[i], self.owners[i]

    def without_endpoint(self, ep: str) -> TokenRing:
        return TokenRing.from_endpoints({e: t for e, t in self._by_endpoint.items() if e != ep})

    def check_invariants(self) -> None:
        assert len(self.tokens) == len(self.owners)
        assert all(a < b for a, b in zip(self.tokens, self.tokens[1:])), "tokens not sorted"
        assert all(MIN_TOKEN < t <= MAX_TOKEN for t in self.tokens)
        assert sum(len(t) for t in self._by_endpoint.values()) == len(self.tokens)
        for ep, toks in self._by_endpoint.items():
            for t in toks:
                assert self.owners[bisect_left(self.tokens, t)] == ep


def range_width(rng: TokenRange) -> int:
    """Number of tokens in (start, end]; a range whose ends are equal is the whole ring."""
    start, end = rng
    return (end - start) % RING_SIZE or RING_SIZE


def range_contains(rng: TokenRange, token: int) -> bool:
    """Whether `token` lies in the wrapping range (start, end]."""
    start, end = rng
    if start < end:
        return start < token <= end
    return token > start or token <= end  # wraps (or is the whole ring when start == end)


# --- token allocation -------------------------------------------------------------------------


def _hash_token(host_id: str, counter: int) -> int:
    digest = hashlib.blake2b(f"{host_id}/{counter}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def allocate_tokens(host_id: str, num_tokens: int = 16, ring: TokenRing | None = None) -> list[int]:
    """Deterministic tokens for a node: the same `host_id` always gets the same tokens.

    Without `ring`: tokens are blake2b(host_id/counter) read as signed 64-bit, skipping MIN_TOKEN
    and repeats (Cassandra's random allocation, made reproducible). With `ring` (the ring the node
    joins): each token is placed inside the currently widest primary range, at a host-dependent
    point of its middle half, which keeps vnode ownership far more even than random tokens. Two
    nodes joining at once from the same view still differ, because the point depends on host_id.
    """
    assert num_tokens >= 1
    taken = set(ring.tokens) if ring is not None else set()
    chosen: list[int] = []
    counter = 0
    while len(chosen) < num_tokens:
        if ring is not None and taken:
            tok = _split_widest(sorted(taken), _hash_token(host_id, counter))
        else:
            tok = _hash_token(host_id, counter)
        counter += 1
        if tok == MIN_TOKEN or tok in taken:
            continue
        taken.add(tok)
        chosen.append(tok)
    return sorted(chosen)


def _split_widest(tokens: list[int], salt: int) -> int:
    widest, start = -1, 0
    for i, tok in enumerate(tokens):
        width = (tok - tokens[i - 1]) % RING_SIZE or RING_SIZE
        if width > widest:
            widest, start = width, tokens[i - 1]
    offset = widest // 4 + (salt % max(1, widest // 2))
    tok = (start + offset - MIN_TOKEN) % RING_SIZE + MIN_TOKEN
    return MAX_TOKEN if tok == MIN_TOKEN else tok


# --- ownership --------------------------------------------------------------------------------


class Strategy(Protocol):
    def replicas(self, ring: TokenRing, token: int, snitch: object) -> list[str]: ...


def primary_ownership(ring: TokenRing) -> dict[str, float]:
    """Fraction of the token space each endpoint owns as primary (`nodetool ring`'s Owns)."""
    owned = {ep: 0 for ep in ring.endpoints}
    for i, tok in enumerate(ring.tokens):
        owned[ring.owners[i]] += range_width((ring.tokens[i - 1], tok))
    return {ep: width / RING_SIZE for ep, width in owned.items()}


def ownership(ring: TokenRing, strategy: Strategy, snitch: object) -> dict[str, float]:
    """Fraction of the token space each endpoint holds a replica of, under `strategy`
    (`nodetool status <keyspace>`'s "Owns (effective)"; sums to the total RF actually placed)."""
    owned = {ep: 0 for ep in ring.endpoints}
    for i, tok in enumerate(ring.tokens):
        width = range_width((ring.tokens[i - 1], tok))
        for ep in strategy.replicas(ring, tok, snitch):
            owned[ep] += width
    return {ep: width / RING_SIZE for ep, width in owned.items()}
