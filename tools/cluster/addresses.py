"""Where a local cluster's nodes listen: one loopback address per node, and ports free on all of them.

As ccm does, node N listens on 127.0.0.N (node1 on 127.0.0.1, node2 on 127.0.0.2, ...), so every
node can use the same port numbers: one internode/client `port`, and later one CQL port (9042)
for all nodes, which clients that take a single port for the whole cluster need (acsylla,
cqlsh's COPY). Linux routes all of 127.0.0.0/8 to the loopback interface, so binding needs no
setup; elsewhere (macOS) each address needs an alias, and `check_bindable` says so.

A port is "free" if a socket could bind it on every address right now; nothing is reserved, so
a port can still be taken between `create` and `start` (the node then fails to start and its
log says why). `--set listen_address=H` gives every node the one address H on distinct ports,
the layout before per-node addresses.
"""
from __future__ import annotations

import errno
import socket

LOOPBACK_NODES_MAX = 254
KERNEL_PICK_TRIES = 200


class AddressError(Exception):
    """An address or port problem; the message says what to do (the cluster manager re-raises it
    as a ClusterError)."""


def loopback_address(n: int) -> str:
    """Node n's address (1-based): 127.0.0.n."""
    if not 1 <= n <= LOOPBACK_NODES_MAX:
        raise AddressError(f"node {n}: a local cluster gives node N the address 127.0.0.N, so N must be in "
                           f"1..{LOOPBACK_NODES_MAX}; for more nodes give them one address with "
                           f"--set listen_address=127.0.0.1")
    return f"127.0.0.{n}"


def address_number(host: str) -> int | None:
    """N for 127.0.0.N, else None."""
    prefix, _, last = host.rpartition(".")
    return int(last) if prefix == "127.0.0" and last.isdigit() else None


def _bind(host: str, port: int) -> socket.socket | None:
    """A socket bound to (host, port), or None if the port is taken there. An address that cannot
    be bound at all is an AddressError that says how to fix it."""
    s = socket.socket()
    try:
        s.bind((host, port))
        return s
    except OSError as e:
        s.close()
        if e.errno == errno.EADDRINUSE or e.errno == errno.EACCES:
            return None
        raise AddressError(f"cannot bind {host} ({e.strerror}): on Linux all of 127.0.0.0/8 is loopback; "
                           f"elsewhere add the address first (macOS: sudo ifconfig lo0 alias {host}), "
                           f"or give every node one address with --set listen_address=127.0.0.1") from None


def check_bindable(hosts: list[str]) -> None:
    for host in dict.fromkeys(hosts):
        s = _bind(host, 0)
        if s is not None:
            s.close()


def port_free(hosts: list[str], port: int) -> bool:
    """True if `port` can be bound on every one of `hosts` right now."""
    held = []
    try:
        for host in dict.fromkeys(hosts):
            s = _bind(host, port)
            if s is None:
                return False
            held.append(s)
        return True
    finally:
        for s in held:
            s.close()


def common_free_ports(hosts: list[str], count: int, preferred: list[int] = (), exclude: set[int] = frozenset()) -> list[int]:
    """`count` distinct port numbers, each free on every one of `hosts`: the `preferred` ones
    that are free, then ports the kernel picks (on the first host) that are free on the others."""
    check_bindable(hosts)
    hosts = list(dict.fromkeys(hosts))
    chosen: list[int] = []
    for port in preferred:
        if len(chosen) < count and port not in chosen and port_free(hosts, port):
            chosen.append(port)
    held = []
    try:
        for _ in range(KERNEL_PICK_TRIES):
            if len(chosen) >= count:
                return chosen
            s = _bind(hosts[0], 0)
            held.append(s)  # held until the end, so the kernel never hands out the same port twice
            port = s.getsockname()[1]
            if port not in chosen and port not in exclude and port_free(hosts[1:], port):
                chosen.append(port)
    finally:
        for s in held:
            if s is not None:
                s.close()
    if len(chosen) < count:
        raise AddressError(f"found no port free on all of {', '.join(hosts)} after {KERNEL_PICK_TRIES} tries; "
                           f"pass --base-port")
    return chosen


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """`count` distinct ports free on `host` right now (all sockets held until the end)."""
    socks = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind((host, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def node_hosts(total: int, shared_host: str | None = None) -> list[str]:
    """Each node's listen address: 127.0.0.1, 127.0.0.2, ... or `shared_host` for all."""
    if shared_host is not None:
        return [shared_host] * total
    return [loopback_address(i + 1) for i in range(total)]


def node_ports(hosts: list[str], fixed: list[int | None], preferred: list[int | None] | None = None) -> list[list[int]]:
    """Per kind of port (internode/client, metrics, CQL, ...) one number per node. `fixed[k]` is
    a number to use as given, or None for one found free (`preferred[k]` first, if free). On
    distinct addresses every node gets the same number; on one shared address node i gets
    fixed[k] + i, or a free port of its own."""
    total, preferred = len(hosts), preferred or [None] * len(fixed)
    if len(set(hosts)) == total:
        numbers: list[int] = []
        for number, wish in zip(fixed, preferred):
            if number is None:
                taken = set(numbers) | {n for n in fixed if n is not None}
                number = common_free_ports(hosts, 1, [wish] if wish is not None and wish not in taken else [],
                                           exclude=taken)[0]
            numbers.append(number)
        return [[n] * total for n in numbers]
    check_bindable(hosts[:1])
    free = iter(free_ports(total * sum(1 for n in fixed if n is None), hosts[0]))
    return [[number + i for i in range(total)] if number is not None else [next(free) for _ in range(total)]
            for number in fixed]
