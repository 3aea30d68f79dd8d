"""The gossiper: SYN / ACK / ACK2 rounds that spread every endpoint's state (Cassandra's Gossiper).

Rule: gossip.py decides whom to talk to and what to say; node.py sends. Every round (1 s) the
node bumps its heartbeat and sends a SYN to one random live peer, maybe to one unreachable peer
(p = unreachable / (live + 1)) and maybe to a seed (always when no peer is live; otherwise with
p = seeds / (live + unreachable) if the live peer was not a seed or live < seeds). Each
heartbeat seen to grow is reported to the failure detector; a new generation (a restart) resets
that endpoint's arrival window. Randomness is the injected rng; time arrives as now_ms.
"""
from __future__ import annotations

import random

from ring import membership as ms
from ring.failure_detector import FailureDetector
from ring.messages import GossipAck, GossipAck2, GossipSyn, Send


class Gossiper:
    def __init__(self, endpoint: str, cluster_name: str, seeds, rng: random.Random,
                 detector: FailureDetector, interval_ms: int = 1000):
        self.endpoint = endpoint
        self.cluster_name = cluster_name
        self.seeds = sorted(s for s in seeds if s != endpoint)
        self.rng = rng
        self.detector = detector
        self.interval_ms = interval_ms
        self.states: dict[str, ms.EndpointState] = {}
        self._version = 0
        self._last_round_ms: int | None = None
        self.rounds = 0
        self.by_version_only = False  # canary Faults.gossip_by_version_only (ring/faults.py); set by the node

    # -- our own state -----------------------------------------------------------------------

    def _next_version(self) -> int:
        self._version += 1
        return self._version

    def start(self, generation: int, app_states: dict[str, str]) -> None:
        state = ms.EndpointState(ms.HeartbeatState(generation, self._next_version()), {})
        for key, value in app_states.items():
            state = state.with_app_state(key, value, self._next_version())
        self.states[self.endpoint] = state

    def set_app_state(self, key: str, value: str) -> None:
        state = self.states[self.endpoint]
        if state.get(key) != value:
            self.states[self.endpoint] = state.with_app_state(key, value, self._next_version())

    def advertise_for(self, ep: str, changes: dict[str, str]) -> None:
        """Rewrite a dead endpoint's state under a newer generation, which wins wholesale on
        every node, with `changes` applied (Cassandra's advertiseRemoving / advertiseTokenRemoved)."""
        old = self.states[ep]
        version = self._next_version()
        apps = {k: ms.VersionedValue(v.value, version) for k, v in old.app_states.items()}
        apps.update({k: ms.VersionedValue(v, version) for k, v in changes.items()})
        self.states[ep] = ms.EndpointState(ms.HeartbeatState(old.generation + 1, version), apps)

    def app_state(self, ep: str, key: str) -> str | None:
        state = self.states.get(ep)
        return None if state is None else state.get(key)

    # -- liveness --------------------------------------------------------------------------------

    def is_alive(self, ep: str, now_ms: int) -> bool:
        return ep == self.endpoint or self.detector.is_alive(ep, now_ms)

    def peers(self) -> list[str]:
        return sorted(ep for ep in self.states if ep != self.endpoint)

    # -- rounds -----------------------------------------------------------------------------------

    def tick(self, now_ms: int) -> list[Send]:
        if self._last_round_ms is not None and now_ms - self._last_round_ms < self.interval_ms:
            return []
        self._last_round_ms = now_ms
        self.rounds += 1
        me = self.states[self.endpoint]
        self.states[self.endpoint] = me.with_heartbeat(ms.HeartbeatState(me.generation, self._next_version()))
        syn = GossipSyn(self.cluster_name, ms.digests_to_wire(self._shuffled_digests()))
        live = [ep for ep in self.peers() if self.detector.is_alive(ep, now_ms)]
        unreachable = [ep for ep in self.peers() if ep not in live]
        targets = []
        if live:
            targets.append(self.rng.choice(live))
        if unreachable and self.rng.random() < len(unreachable) / (len(live) + 1):
            targets.append(self.rng.choice(unreachable))
        if self.seeds:
            if not live:
                targets.append(self.rng.choice(self.seeds))
            elif (targets[0] not in self.seeds or len(live) < len(self.seeds)) and \
                    self.rng.random() < len(self.seeds) / (len(live) + len(unreachable)):
                targets.append(self.rng.choice(self.seeds))
        return [Send(ep, syn) for ep in dict.fromkeys(targets)]

    def _shuffled_digests(self) -> list:
        ds = ms.digests(self.states)
        self.rng.shuffle(ds)
        return ds

    def on_syn(self, now_ms: int, src: str, msg: GossipSyn) -> list[Send]:
        if msg.cluster_name != self.cluster_name:
            return []  # another cluster: dropped, as Cassandra does
        requests, to_send = ms.examine(self.states, ms.digests_from_wire(msg.digests))
        return [Send(src, GossipAck(ms.digests_to_wire(requests), _states_to_wire(to_send)))]

    def on_ack(self, now_ms: int, src: str, msg: GossipAck) -> list[Send]:
        self.apply(now_ms, _states_from_wire(msg.states))
        answer = ms.answer_requests(self.states, ms.digests_from_wire(msg.digests))
        return [Send(src, GossipAck2(_states_to_wire(answer)))] if answer else []

    def on_ack2(self, now_ms: int, src: str, msg: GossipAck2) -> None:
        self.apply(now_ms, _states_from_wire(msg.states))

    def apply(self, now_ms: int, remote: dict[str, ms.EndpointState]) -> list[str]:
        """Merge received states; report grown heartbeats to the detector. Returns changed eps."""
        remote.pop(self.endpoint, None)  # nobody tells us about ourselves
        before = {ep: self.states.get(ep) for ep in remote}
        self.states, changed = ms.apply_states(self.states, remote, now_s=None, by_version_only=self.by_version_only)
        for ep in changed:
            old, new = before[ep], self.states[ep]
            status = new.get(ms.ApplicationState.STATUS)
            if status and ms.parse_status(status)[0] in ms.DEAD_STATES:
                self.detector.remove(ep)  # left or removed: never alive again in this generation
                continue
            if old is None or new.generation != old.generation:
                self.detector.remove(ep)
                self.detector.report(ep, now_ms)
            elif new.heartbeat.version > old.heartbeat.version:
                self.detector.report(ep, now_ms)
        return changed


def _states_to_wire(states: dict[str, ms.EndpointState]) -> dict:
    return {ep: s.to_wire() for ep, s in states.items()}


def _states_from_wire(obj) -> dict[str, ms.EndpointState]:
    if not isinstance(obj, dict):
        return {}
    return {ep: ms.EndpointState.from_wire(s) for ep, s in obj.items() if isinstance(ep, str)}
