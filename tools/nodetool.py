"""`dynatable nodetool -h HOST:PORT VERB`: Cassandra's nodetool verbs over the client protocol.

Each verb is one admin op answered by the node at HOST:PORT (docs/node_api.md): `status` and
`ring` show that node's view of the cluster (gossip and its failure detector), `info`,
`tablestats`, `flush` and `compact` are about that node alone, `getendpoints` asks which nodes
replicate a partition. Output is rich tables on a terminal and plain aligned text otherwise
(pipes, files, tests), with nodetool's layout:

    Datacenter: datacenter1
    =======================
    Status=Up/Down
    |/ State=Normal/Leaving/Joining/Moving
    --  Address          Load       Tokens  Owns    Host ID                           Rack
    UN  127.0.0.1:9101   1.2 MiB    16      33.3%   6b0e...                           rack1
"""
from __future__ import annotations

import datetime
import decimal
import time
import uuid

from rich.console import Console
from rich.table import Table as RichTable

STATE_LETTER = {"NORMAL": "N", "shutdown": "N", "BOOT": "J", "BOOT_REPLACE": "J", "LEAVING": "L", "LEFT": "L",
                "MOVING": "M", "removing": "L", "removed": "L", "hibernate": "N"}


class NodeProbe:
    """One node's admin interface (Cassandra's NodeProbe): every call is pinned to `host`."""

    def __init__(self, host: str, *, cluster_name: str = "dynatable", cluster_secret: str = "",
                 timeout_s: float = 10.0):
        from ring.client import Cluster, normalize_endpoint
        self.host = normalize_endpoint(host)
        self.cluster = Cluster([self.host], cluster_name=cluster_name, cluster_secret=cluster_secret,
                               timeout_s=timeout_s)

    def call(self, op: str, **args):
        from ring.client import Session
        self.cluster.metadata.refreshed_at = time.monotonic()  # pinned: no ring/schema refresh needed
        return Session(self.cluster, None).execute(op, endpoint=self.host, **args)

    def close(self) -> None:
        self.cluster.shutdown()

    def __enter__(self) -> NodeProbe:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# -- formatting helpers ----------------------------------------------------------------------------

def human_bytes(n) -> str:
    if n is None:
        return "?"
    n = float(n)
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{int(n)} bytes" if unit == "bytes" else f"{n:.2f} {unit}"
        n /= 1024
    return f"{n:.2f} TiB"


def percent(x) -> str:
    return "?" if x is None else f"{100 * float(x):.1f}%"


def console_for(console: Console | None) -> Console:
    return console or Console()


def emit_table(console: Console, headers: list[str], rows: list[list], title: str | None = None,
                justify: dict[int, str] | None = None) -> None:
    """A rich table on a terminal; plain aligned columns (two spaces apart) otherwise."""
    justify = justify or {}
    rows = [[("" if c is None else str(c)) for c in r] for r in rows]
    if console.is_terminal:
        t = RichTable(title=title, show_edge=False, header_style="bold", box=None, pad_edge=False)
        for i, h in enumerate(headers):
            t.add_column(h, justify=justify.get(i, "left"))
        for r in rows:
            t.add_row(*r)
        needed = sum(max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)) + 2 * len(headers)
        width = console.width
        console.width = max(width, needed)  # never cut host ids to fit a narrow terminal
        try:
            console.print(t)
        finally:
            console.width = width
        return
    if title:
        console.print(title, highlight=False, markup=False)
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]

    def line(cells):
        out = []
        for i, c in enumerate(cells):
            out.append(c.rjust(widths[i]) if justify.get(i) == "right" else c.ljust(widths[i]))
        return "  ".join(out).rstrip()

    console.print(line(headers), highlight=False, markup=False, soft_wrap=True)
    for r in rows:
        console.print(line(r), highlight=False, markup=False, soft_wrap=True)


def plain(console: Console, text: str = "") -> None:
    console.print(text, highlight=False, markup=False, soft_wrap=True)


# -- verbs -----------------------------------------------------------------------------------------

def render_status(rows: list[dict], console: Console | None = None, effective: bool = False) -> None:
    """nodetool status from the `status` op's rows (one node's view of the ring); `effective`:
    the rows carry a keyspace's effective ownership."""
    console = console_for(console)
    by_dc: dict[str, list[dict]] = {}
    for r in rows:
        by_dc.setdefault(r.get("datacenter") or "?", []).append(r)
    for n, dc in enumerate(sorted(by_dc)):
        if n:
            plain(console)
        header = f"Datacenter: {dc}"
        plain(console, header)
        plain(console, "=" * len(header))
        plain(console, "Status=Up/Down")
        plain(console, "|/ State=Normal/Leaving/Joining/Moving")
        lines = []
        for r in sorted(by_dc[dc], key=lambda r: r["endpoint"]):
            code = ("U" if r.get("up") else "D") + STATE_LETTER.get(str(r.get("state")), "?")
            lines.append([code, r["endpoint"], human_bytes(r.get("load_bytes")), r.get("tokens"),
                          percent(r.get("owns")), r.get("host_id") or "?", r.get("rack") or "?"])
        owns = "Owns (effective)" if effective else "Owns"
        emit_table(console, ["--", "Address", "Load", "Tokens", owns, "Host ID", "Rack"], lines,
                    justify={2: "right", 3: "right", 4: "right"})


def render_ring_summary(rows: list[dict], console: Console | None = None, names: dict | None = None) -> None:
    """One line per node: the ring as `dynatable cluster status` shows it."""
    console = console_for(console)
    names = names or {}
    lines = []
    order = {ep: i for i, ep in enumerate(names)}
    for r in sorted(rows, key=lambda r: (r.get("datacenter") or "", order.get(r["endpoint"], len(order)),
                                         r["endpoint"])):
        lines.append([names.get(r["endpoint"], ""), r["endpoint"], r.get("datacenter") or "?", r.get("rack") or "?",
                      "Up" if r.get("up") else "Down", str(r.get("state", "?")).capitalize(),
                      human_bytes(r.get("load_bytes")), percent(r.get("owns"))])
    headers = ["Node", "Address", "Datacenter", "Rack", "Status", "State", "Load", "Owns"]
    if not names:
        headers, lines = headers[1:], [ln[1:] for ln in lines]
    emit_table(console, headers, lines, justify={len(headers) - 2: "right", len(headers) - 1: "right"})


def status(probe: NodeProbe, keyspace: str | None = None, console: Console | None = None) -> list[dict]:
    rows = list(probe.call("status", keyspace=keyspace) if keyspace else probe.call("status"))
    render_status(rows, console, effective=keyspace is not None)
    return rows


def ring(probe: NodeProbe, console: Console | None = None) -> None:
    """nodetool ring: every token in order with the endpoint that owns it."""
    console = console_for(console)
    answer = probe.call("describe_ring")
    status_rows = {r["endpoint"]: r for r in probe.call("status")}
    by_dc: dict[str, list[tuple[int, str]]] = {}
    for ep, info in (answer.get("endpoints") or {}).items():
        for tok in info.get("tokens") or ():
            by_dc.setdefault(info.get("datacenter") or "?", []).append((tok, ep))
    if not by_dc:
        plain(console, "no tokens known yet (is the node still joining?)")
    for n, dc in enumerate(sorted(by_dc)):
        if n:
            plain(console)
        header = f"Datacenter: {dc}"
        plain(console, header)
        plain(console, "=" * len(header))
        toks = sorted(by_dc[dc])
        lines = []
        for tok, ep in toks:
            r = status_rows.get(ep, {})
            lines.append([ep, r.get("rack") or "?", "Up" if r.get("up") else "Down",
                          str(r.get("state", "?")).capitalize(), human_bytes(r.get("load_bytes")),
                          percent(r.get("owns")), tok])
        emit_table(console, ["Address", "Rack", "Status", "State", "Load", "Owns", "Token"], lines,
                    justify={4: "right", 5: "right", 6: "right"})
    keyspaces = answer.get("keyspaces") or {}
    if keyspaces:
        plain(console)
        plain(console, "Keyspaces: " + ", ".join(f"{k} {_replication(v)}" for k, v in sorted(keyspaces.items())))


def _replication(options: dict) -> str:
    cls = str(options.get("class", "?")).rsplit(".", 1)[-1]
    rest = ", ".join(f"{k}={v}" for k, v in sorted(options.items()) if k != "class")
    return f"({cls}{', ' + rest if rest else ''})"


def info(probe: NodeProbe, console: Console | None = None) -> dict:
    console = console_for(console)
    a = probe.call("info")
    metrics = a.get("metrics") or {}
    pairs = [("ID", a.get("host_id")), ("Address", a.get("endpoint")),
             ("Gossip active", "true"), ("Load", human_bytes(a.get("load_bytes"))),
             ("Generation No", a.get("generation")), ("Uptime (seconds)", int((a.get("uptime_ms") or 0) / 1000)),
             ("Data Center", a.get("datacenter")), ("Rack", a.get("rack")), ("Tokens", a.get("tokens")),
             ("Schema version", a.get("schema_version"))]
    for key in sorted(metrics):
        value = metrics[key]
        if isinstance(value, (int, float, str)) and not isinstance(value, bool):
            pairs.append((key, value))
        elif isinstance(value, dict):  # e.g. requests: none served yet is said, not an empty line
            pairs.append((key, ", ".join(f"{k}={v}" for k, v in sorted(value.items())) or "none yet"))
    width = max(len(k) for k, _ in pairs)
    for k, v in pairs:
        plain(console, f"{k.ljust(width)} : {v}")
    return a


def describecluster(probe: NodeProbe, console: Console | None = None) -> dict:
    """nodetool describecluster: name, snitch, partitioner, schema versions and who holds each."""
    console = console_for(console)
    a = probe.call("describecluster")
    plain(console, "Cluster Information:")
    plain(console, f"\tName: {a['name']}")
    plain(console, f"\tSnitch: {a['snitch']}")
    plain(console, f"\tDynamicEndPointSnitch: {'enabled' if a.get('dynamic_snitch') else 'disabled'}")
    plain(console, f"\tPartitioner: {a['partitioner']}")
    plain(console, "\tSchema versions:")
    for version, endpoints in sorted(a["schema_versions"].items()):
        plain(console, f"\t\t{version}: [{', '.join(sorted(endpoints))}]")
    plain(console)
    plain(console, "Stats for all nodes:")
    dcs = a.get("datacenters") or {}
    plain(console, f"\tLive: {sum(d['up'] for d in dcs.values())}")
    plain(console, f"\tUnreachable: {sum(d['down'] for d in dcs.values())}")
    plain(console)
    plain(console, "Data Centers: ")
    for dc in sorted(dcs):
        plain(console, f"\t{dc} #Nodes: {dcs[dc]['up'] + dcs[dc]['down']} #Down: {dcs[dc]['down']}")
    plain(console)
    plain(console, "Keyspaces:")
    for ks in a.get("keyspaces") or ():
        plain(console, f"\t{ks}")
    return a


def gossipinfo(probe: NodeProbe, console: Console | None = None) -> dict:
    """nodetool gossipinfo: each endpoint's gossip state, `KEY:VERSION:VALUE` as Cassandra prints it."""
    console = console_for(console)
    a = probe.call("gossipinfo")
    for ep in sorted(a):
        st = a[ep]
        plain(console, f"/{ep}")
        plain(console, f"  generation:{st['generation']}")
        plain(console, f"  heartbeat:{st['heartbeat']}")
        for key, (value, version) in sorted(st["states"].items()):
            plain(console, f"  {key}:{version}:{value}")
    return a


def parse_key(text: str, cql_type: str):
    """A partition key component typed on the command line, as the column's type wants it."""
    t = cql_type.lower()
    try:
        if t in ("int", "bigint", "varint", "timestamp", "smallint", "tinyint", "time"):
            return int(text, 0)
        if t == "date":
            return datetime.date.fromisoformat(text)
        if t in ("uuid", "timeuuid"):
            return uuid.UUID(text)
        if t == "blob":
            return bytes.fromhex(text[2:] if text.lower().startswith("0x") else text)
        if t in ("float", "double"):
            return float(text)
        if t == "decimal":
            return decimal.Decimal(text)
        if t == "boolean":
            if text.lower() not in ("true", "false"):
                raise ValueError("expected true or false")
            return text.lower() == "true"
    except (ValueError, decimal.InvalidOperation) as e:
        raise ValueError(f"key {text!r} is not a valid {cql_type}: {e}") from None
    return text


def partition_key_of(schema_answer: dict, keyspace: str, table: str, key_text: str) -> dict:
    """{"col": value} for `key_text` ("a" or, for a composite partition key, "a:b")."""
    from engine.schema import Table
    tables = schema_answer.get("tables") or []
    if isinstance(tables, dict):
        tables = list(tables.values())
    for d in tables:
        t = Table.from_dict(d)
        if t.keyspace == keyspace and t.name == table:
            cols = t.partition_key
            parts = key_text.split(":") if len(cols) > 1 else [key_text]
            if len(parts) != len(cols):
                names = ":".join(c.name for c in cols)
                raise ValueError(f"{keyspace}.{table} has a {len(cols)}-column partition key; write it as {names}")
            return {c.name: parse_key(p, c.cql_type) for c, p in zip(cols, parts)}
    known = ", ".join(sorted(f"{Table.from_dict(d).keyspace}.{Table.from_dict(d).name}" for d in tables)) or "none"
    raise ValueError(f"no table {keyspace}.{table} (tables: {known})")


def getendpoints(probe: NodeProbe, keyspace: str, table: str, key: str, console: Console | None = None) -> list[str]:
    console = console_for(console)
    pk = partition_key_of(probe.call("describe_schema"), keyspace, table, key)
    answer = probe.call("getendpoints", keyspace=keyspace, table=table, key=pk)
    for ep in answer.get("endpoints") or []:
        plain(console, ep)
    return list(answer.get("endpoints") or [])


def flush(probe: NodeProbe, keyspace: str | None = None, table: str | None = None,
          console: Console | None = None) -> int:
    a = probe.call("flush", keyspace=keyspace, table=table)
    what = ".".join(p for p in (keyspace, table) if p) or "every table"
    plain(console_for(console), f"flushed {a.get('flushed', 0)} memtable(s) of {what} on {probe.host}")
    return int(a.get("flushed", 0))


def compact(probe: NodeProbe, keyspace: str | None = None, table: str | None = None,
            console: Console | None = None) -> int:
    a = probe.call("compact", keyspace=keyspace, table=table)
    what = ".".join(p for p in (keyspace, table) if p) or "every table"
    plain(console_for(console), f"ran {a.get('compactions', 0)} major compaction task(s) of {what} on {probe.host}")
    return int(a.get("compactions", 0))


def since_start(seconds: int) -> str:
    """'node start, 1h 2m 3s ago': what the flush/compaction counters count from (they reset on restart)."""
    h, rest = divmod(int(seconds), 3600)
    m, s = divmod(rest, 60)
    ago = " ".join(f"{v}{u}" for v, u in ((h, "h"), (m, "m"), (s, "s")) if v) or "0s"
    return f"node start, {ago} ago (they reset when the node restarts)"


def tablestats(probe: NodeProbe, keyspace: str | None = None, table: str | None = None,
               console: Console | None = None) -> list[dict]:
    """nodetool tablestats: per keyspace, then per table, `name: value` lines."""
    console = console_for(console)
    stats = list(probe.call("tablestats"))
    by_ks: dict[str, list[dict]] = {}
    for s in stats:
        ks, _, name = s["table"].partition(".")
        if (keyspace in (None, ks)) and (table in (None, name)):
            by_ks.setdefault(ks, []).append(s)
    if not by_ks and keyspace is not None:  # as Cassandra's nodetool: an unknown name is an error
        raise ValueError(f"Unknown keyspace/table {keyspace}{'.' + table if table else ''}; "
                         "`nodetool tablestats` with no argument lists them")
    if not by_ks:
        plain(console, "no tables")
    labels = [("sstable_count", "SSTable count", str), ("space_used_bytes", "Space used", human_bytes),
              ("memtable_bytes", "Memtable data size", human_bytes),
              ("memtable_partitions", "Memtable partition count", str),
              ("pending_flushes", "Pending flushes", str), ("compacting", "Compactions in progress", str),
              ("flushes", "Flushes", str), ("compactions", "Compactions", str),
              ("counters_since_s", "Flushes and compactions counted since", since_start),
              ("bytes_compacted", "Bytes compacted", human_bytes),
              ("tombstone_warnings", "Tombstone warnings", str),
              ("key_cache_hit_rate", "Key cache hit rate", lambda v: "NaN" if v is None else f"{v:.3f}"),
              ("row_cache_hit_rate", "Row cache hit rate", lambda v: "NaN" if v is None else f"{v:.3f}")]
    for ks in sorted(by_ks):
        plain(console, f"Keyspace : {ks}")
        for s in sorted(by_ks[ks], key=lambda s: s["table"]):
            plain(console, f"\t\tTable: {s['table'].partition('.')[2]}")
            shown = set()
            for key, label, fmt in labels:
                if key in s:
                    shown.add(key)
                    plain(console, f"\t\t{label}: {fmt(s[key])}")
            for key in sorted(set(s) - shown - {"table"}):
                plain(console, f"\t\t{key}: {s[key]}")
            plain(console)
        plain(console, "----------------")
    return stats
