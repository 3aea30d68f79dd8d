"""The `dynatable` command line: one console script, subcommands in the spirit of Cassandra's tools.

This module is the root group with the one-shot commands (tour, demo, node, sim, stress) and the
file inspectors (`sstable ...`, `commitlog ...`); the `cluster` and `nodetool` groups and `cqlsh` live in
tools/commands/. Heavy imports stay inside the commands, so `dynatable --help` starts fast.
"""
from __future__ import annotations

import sys

import click

from tools.commands import cluster_name_for
from tools.commands.cluster import cluster, cqlsh
from tools.commands.nodetool import nodetool


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """dynatable: a Dynamo/BigTable storage engine in Python, in the spirit of Apache Cassandra."""


main.add_command(cluster)
main.add_command(nodetool)
main.add_command(cqlsh)


@main.command()
@click.option("--dir", "directory", type=click.Path(file_okay=False), default=None,
              help="Keep the tour's data here instead of a temporary directory.")
@click.option("--rows", default=20_000, show_default=True, help="How many rows to write.")
def tour(directory, rows) -> None:
    """Write, flush, compact, crash, recover and read back, printing each step."""
    from tools.tour import run_tour
    sys.exit(0 if run_tour(directory, rows) else 1)


@main.group()
def sstable() -> None:
    """Inspect SSTables."""


@sstable.command("dump")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--limit", type=click.IntRange(min=0), default=None, help="Print at most N partitions.")
@click.option("--key", "key", default=None,
              help="Print only this partition: its key as typed in CQL ('a:b' for a composite key), "
                   "or 0x<hex> bytes.")
def sstable_dump(path, limit, key) -> None:
    """Print an SSTable's statistics and partitions (any of its component files), columns by name
    when the SSTable sits in a store (from its schema.db). Exits 1 on corruption or a bad file."""
    from tools.sstable_dump import dump_sstable
    try:
        sys.exit(dump_sstable(path, sys.stdout, limit=limit, key=key))
    except (ValueError, OSError) as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(1)


@sstable.command("repair")
@click.argument("store_dir", type=click.Path(file_okay=False))
def sstable_repair(store_dir) -> None:
    """Rebuild each table's missing or unreadable MANIFEST from its SSTables (store closed).

    Every complete SSTable is read whole and checked; bad ones are moved to quarantine/."""
    from engine.sstable_repair import repair_store
    try:
        tables = repair_store(store_dir, progress=click.echo)
    except (OSError, ValueError) as e:
        click.echo(f"error: {e}; pass the directory given to Store.open (it holds data/)", err=True)
        sys.exit(1)
    rebuilt = [t for t in tables if t.status == "rebuilt"]
    kept = sum(len(t.kept) for t in rebuilt)
    lost = sum(len(t.quarantined) for t in rebuilt)
    click.echo(f"{len(tables)} tables: {len(rebuilt)} manifests rebuilt, {kept} sstables kept, "
               f"{lost} quarantined")


@main.group()
def commitlog() -> None:
    """Inspect commit-log segments."""


@commitlog.command("dump")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--limit", type=click.IntRange(min=0), default=None,
              help="Print at most N records and sync markers (corruption is always printed).")
def commitlog_dump(path, limit) -> None:
    """Print a commit-log segment's header and records, each record's mutations decoded (table,
    partition key, cells by name). Exits 1 on corruption or a file that is not a segment."""
    from tools.commitlog_dump import dump_commitlog
    try:
        sys.exit(dump_commitlog(path, sys.stdout, limit=limit))
    except (ValueError, OSError) as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(1)


@main.command()
@click.argument("which", required=False, type=click.Choice(["persistency"]))
@click.option("--rows", default=100, show_default=True, help="How many rows to write and read.")
@click.option("--keep", is_flag=True, help="Keep the cluster's files (nodes are stopped anyway).")
def demo(which, rows, keep) -> None:
    """Start a local 3-node cluster, kill a node, bring it back, printing each step.

    `dynatable demo persistency`: a space persisted write-behind into the cluster, crashed and restarted."""
    if which == "persistency":
        from tools.demo_persistency import run_demo as run_persistency_demo
        sys.exit(0 if run_persistency_demo(keep=keep) else 1)
    from tools.demo import run_demo
    sys.exit(0 if run_demo(rows=rows, keep=keep) else 1)


@main.command(context_settings={"help_option_names": ["--help"]})
@click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None,
              help="Node settings (TOML); keys not in the file keep their defaults.")
@click.option("--print-default-config", is_flag=True, help="Print every key with its default and exit.")
@click.option("--ignore-replay-errors", is_flag=True,
              help="Start even if a synced commit-log section is corrupt: skip it (logged; the segment is "
                   "kept in commitlog/corrupt/). Cassandra's -Dcassandra.commitlog.ignorereplayerrors=true.")
def node(config_path, print_default_config, ignore_replay_errors) -> None:
    """Run one node in the foreground (until SIGTERM or Ctrl-C)."""
    if print_default_config:
        from ring.runtime.config import dump_default
        click.echo(dump_default(), nl=False)
        return
    from ring.runtime.asyncio_tcp import main as node_main
    sys.exit(node_main((["--config", config_path] if config_path else [])
                       + (["--ignore-replay-errors"] if ignore_replay_errors else [])))



@main.command()
@click.option("--seed", type=int, default=None, help="The run to replay.")
@click.option("--sweep", "seed_range", default=None, metavar="A..B",
              help="Run seeds A to B (swarm on) in parallel; print the verdict and the first failing seed.")
@click.option("--workload", type=click.Choice(["register", "cas", "cas-list", "clustering"]), default="register", show_default=True,
              help="cas: lightweight transactions (CAS registers at SERIAL, checked with WGL); cas-list: a "
                   "CAS-built append-only list (WGL and the list's own checks); clustering: rows, range deletes and "
                   "flushes, every read checked against a model.")
@click.option("--swarm", "use_swarm", is_flag=True, help="Let the seed draw its fault mix and workload shape.")
@click.option("--levels", type=click.Choice(["fixed", "random"]), default="fixed", show_default=True,
              help="random: each seed draws its level pair too (implies --swarm).")
@click.option("--write", "write_cl", default="QUORUM", show_default=True, help="Write consistency level.")
@click.option("--read", "read_cl", default="QUORUM", show_default=True, help="Read consistency level.")
@click.option("--two-dcs", is_flag=True, help="Six nodes in two datacenters (NetworkTopologyStrategy 3+3).")
@click.option("--skew", is_flag=True, help="Let the nemesis skew clocks (linearizability is then not promised).")
@click.option("--mutant", default="", help="A test-only canary mutant to run with.")
@click.option("--steps", type=int, default=None, help="Workload steps (default: 300; a swarm seed draws its own).")
@click.option("--jobs", type=int, default=None, help="Sweep processes (default: the number of cores).")
@click.option("--verbose", is_flag=True, help="Print the trace: every delivery, reply and fault.")
def sim(seed, seed_range, workload, use_swarm, levels, write_cl, read_cl, two_dcs, skew, mutant, steps, jobs,
        verbose) -> None:
    """Replay a seeded simulation run (--seed N) or sweep many seeds (--sweep A..B)."""
    from ring.errors import ConfigurationError
    from ring.faults import Faults
    from tools.commands import fail
    try:
        Faults.mutant(mutant)
    except ConfigurationError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(2)
    if (seed is None) == (seed_range is None):
        fail("sim takes exactly one of --seed N (replay one run) or --sweep A..B (e.g. --sweep 1..50)")
    if workload != "register" and (use_swarm or levels != "fixed" or two_dcs or skew or verbose
                              or write_cl.upper() != "QUORUM" or read_cl.upper() != "QUORUM"):
        fail(f"--workload {workload} runs its own plan (3 nodes): drop --swarm/--levels/--write/"
             "--read/--two-dcs/--skew/--verbose")
    if workload != "register" and seed is not None:
        from tools.sim_run import main_cas, main_clustering
        main_workload = main_clustering if workload == "clustering" else main_cas
        sys.exit(0 if main_workload(seed, mutant, steps, workload) else 1)
    if seed is not None:
        from tools.sim_run import main as run
        sys.exit(0 if run(seed, write_cl.upper(), read_cl.upper(), two_dcs, skew, mutant, steps, verbose,
                          use_swarm, levels) else 1)
    from tools.sim_sweep import SweepOptions, main as run_sweep, parse_range
    try:
        seeds = parse_range(seed_range)
    except ValueError as exc:
        fail(str(exc))
    if jobs is not None and jobs < 1:
        fail("--jobs takes a number of processes >= 1")
    opt = SweepOptions(write_cl.upper(), read_cl.upper(), two_dcs, skew, mutant, steps, levels, workload)
    sys.exit(0 if run_sweep(seeds, opt, jobs) else 1)


@main.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True,
                                "help_option_names": ["--help"]}, add_help_option=False)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def stress(args) -> None:
    """Load a cluster like cassandra-stress: write, read, mixed, ycsb (`dynatable stress help`)."""
    from tools.stress.command import run_command
    sys.exit(run_command(list(args), cluster_name_for=cluster_name_for))


if __name__ == "__main__":
    main()
