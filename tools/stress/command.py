"""`dynatable stress ...`: parse the line, find the cluster, run the phases, print and write results.

The thin driver around the pure parts: settings (the line), standard / ycsb (the workloads),
runner (the load), latency (the histograms), report (text, JSON, CSV), plot (the picture).
Contact points: `-node` if given, else the current local cluster's nodes (`dynatable cluster`,
under $DYNATABLE_HOME), else 127.0.0.1:9100, as `dynatable nodetool` finds its node.
Exit status: 0 done, 1 the run failed (no node, a bad request, a file not written), 2 a bad line.
"""
from __future__ import annotations

import asyncio
import json
import sys

from engine.errors import InvalidRequest
from tools.stress import report
from tools.stress.settings import DEFAULT_PORT, parse

HELP = """\
usage: dynatable stress COMMAND [WORDS] [-OPTION WORDS ...] [--json FILE] [--csv FILE] [--plot FILE.png]

commands (like cassandra-stress):
  write                      insert rows into keyspace1.standard1 (created on first use)
  read                       read rows by key
  mixed 'ratio(write=1,read=3)'
  ycsb --workload a..f [load|run] [-p name=value ...] [-threads N] [-target OPS]
                             YCSB core workloads on ycsb.usertable, YCSB-style output

command words:  n=100000 | duration=30s (or 5m, 1h)   cl=ONE|QUORUM|ALL|LOCAL_ONE|...  (default LOCAL_ONE)
options:
  -rate threads=32 [throttle=5000/s | fixed=5000/s]   (a rate runs on a fixed schedule; latency is
                                                       then measured from each op's intended start)
  -node HOST:PORT[,HOST:PORT]   (default: the current local cluster, else 127.0.0.1:9100)
  -col n=fixed(5) size=fixed(34)        -pop seq=1..N | dist=uniform(1..N) | dist=gaussian(1..N)
  -schema replication(factor=3) [keyspace=NAME]   -mode cluster-name=NAME secret=S timeout=12s
  --mode cql [-mode user=U password=P]  drive any Cassandra-compatible cluster over CQL (cassandra-driver,
                                        prepared statements, token-aware; -node HOST[:9042])
  -seed N                               --quiet (no progress lines)
example:
  dynatable stress write n=100000 cl=QUORUM -rate threads=32 -col n=5 size=fixed(34) -pop dist=uniform(1..100000)
"""


def resolve_contact(s, cluster_name_for=None) -> tuple[list[str], str, str]:
    """(contact points, cluster_name, cluster_secret) for the run."""
    if s.nodes:
        name = s.cluster_name or (cluster_name_for(s.nodes[0]) if cluster_name_for else "dynatable")
        return s.nodes, name, s.secret
    from tools.cluster import ClusterError, LocalCluster
    current = LocalCluster.current_name()
    if current is not None:
        try:
            c = LocalCluster.load(current)
            return (c.contact_points(), s.cluster_name or c.setting("cluster_name", "dynatable"),
                    s.secret or c.setting("cluster_secret", ""))
        except ClusterError:
            pass
    return [f"127.0.0.1:{DEFAULT_PORT}"], s.cluster_name or "dynatable", s.secret


def workloads(s, seed):
    if s.command == "ycsb":
        from tools.stress.ycsb import YcsbWorkload
        return [(phase, YcsbWorkload(s, s.ycsb_workload, phase, seed)) for phase in s.ycsb_phases]
    from tools.stress.standard import StandardWorkload
    return [(s.command, StandardWorkload(s, seed))]


async def run_phases(s, contact_points, cluster_name, secret, emit, on_row=None, phases=None) -> list[dict]:
    """Every phase of the run, in order, appended to `phases` as each ends (so a failure or Ctrl-C
    keeps the finished ones); `emit(line)` gets progress and result lines, `on_row(row)` each
    interval row as it ends (the benchmarks time their events with it)."""
    from ring.client import AsyncCluster
    from tools.stress.runner import run_load
    if s.protocol == "cql":
        from tools.stress.cql_mode import cluster_for
        cluster = cluster_for(s, contact_points)
    else:
        cluster = AsyncCluster(contact_points, cluster_name=cluster_name, cluster_secret=secret,
                               timeout_s=s.timeout_s, seed=s.seed)
    phases = [] if phases is None else phases
    try:
        session = await cluster.connect()
        for name, wl in workloads(s, s.seed):
            await wl.setup(session)
            if s.command == "ycsb":
                n = wl.total_ops if s.duration_s is None or name == "load" else None
                duration = None if n is not None else s.duration_s
            else:
                n, duration = s.n, s.duration_s
            rows: list[dict] = []
            last = [0.0]

            def on_interval(elapsed, stats, name=name, rows=rows, last=last):
                row = report.interval_row(name, elapsed, elapsed - last[0], stats)
                last[0] = elapsed
                rows.append(row)
                if on_row is not None:
                    on_row(row)
                if not s.quiet:
                    emit(report.progress_line(row))

            mode = f"fixed rate {s.rate:,.0f}/s" if s.rate is not None else "closed loop"
            emit(f"{name}: {('n=' + format(n, ',')) if n is not None else f'duration={duration:g}s'}, "
                 f"cl={s.consistency}, {s.threads} threads, {mode}, keyspace {s.keyspace}, nodes {contact_points}")
            if not s.quiet:
                emit(report.PROGRESS_HEADER)
            res = await run_load(wl, threads=s.threads, n=n, duration_s=duration, rate=s.rate, seed=s.seed,
                                 on_interval=on_interval)
            phases.append(report.phase_report(name, res.totals, res.elapsed_s, rows, rate=s.rate,
                                              stopped_by=res.stopped_by, sub_totals=res.sub_totals,
                                              error_log=res.error_log))
            emit("")
            emit("\n".join(report.ycsb_lines(phases[-1]) if s.command == "ycsb" else report.summary_lines(phases[-1])))
            emit("")
            if res.error is not None:
                raise res.error
    finally:
        await cluster.shutdown()
    return phases


def _event_loop_runner():
    try:
        import uvloop
        return uvloop.run
    except ImportError:
        return asyncio.run


def run_command(argv: list[str], out=None, err=None, cluster_name_for=None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr

    def emit(line: str) -> None:
        out.write(line + "\n")
        out.flush()

    if not argv or argv[0].lower() == "help" or any(a.lower() in ("--help", "-help") for a in argv):
        out.write(HELP)
        return 0
    try:
        s = parse(argv)
        if s.plot_path:
            from tools.stress.plot import require_matplotlib
            require_matplotlib()
    except InvalidRequest as e:
        err.write(f"dynatable stress: {e}\n")
        return 2
    if s.protocol == "cql":
        from tools.stress.cql_mode import cql_contact, require_driver
        try:
            require_driver()
            hosts, port = cql_contact(s)
        except InvalidRequest as e:
            err.write(f"dynatable stress: {e}\n")
            return 2
        contact_points, cluster_name, secret = [f"{h}:{port}" for h in hosts], "", ""
    else:
        contact_points, cluster_name, secret = resolve_contact(s, cluster_name_for)
    from ring.client import NoHostAvailable
    phases: list[dict] = []
    status = 0
    try:
        _event_loop_runner()(run_phases(s, contact_points, cluster_name, secret, emit, phases=phases))
    except NoHostAvailable as e:
        err.write(f"dynatable stress: {e}; is a node running at {', '.join(contact_points)}? "
                  "pass -node HOST:PORT, or start a local cluster with `dynatable cluster start`"
                  + (" (CQL mode: -mode cql user=U password=P if the cluster needs a login)"
                     if s.protocol == "cql" else "") + "\n")
        return 1
    except (InvalidRequest, TimeoutError) as e:
        err.write(f"dynatable stress: {e}\n")
        status = 1
    except KeyboardInterrupt:
        err.write("dynatable stress: interrupted; the phases finished so far are written below\n")
        status = 130
    if not phases:
        return status or 1
    return write_outputs(s, phases, err) or status


def write_outputs(s, phases: list[dict], err) -> int:
    try:
        if s.json_path:
            with open(s.json_path, "w") as f:
                json.dump(report.to_json(s, phases), f, indent=2)
        if s.csv_path:
            with open(s.csv_path, "w", newline="") as f:
                f.write(report.to_csv(phases))
        if s.plot_path:
            from tools.stress.plot import plot_timeline
            title = f"dynatable stress {' '.join(p['phase'] for p in phases)}: cl={s.consistency}, " \
                    f"{s.threads} threads" + (f", {s.rate:,.0f}/s" if s.rate is not None else "")
            plot_timeline(phases, s.plot_path, title)
    except OSError as e:
        err.write(f"dynatable stress: could not write {e.filename}: {e.strerror}\n")
        return 1
    return 0
