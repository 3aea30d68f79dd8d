"""The `dynatable` command line: one console script, subcommands in the spirit of Cassandra's tools."""
from __future__ import annotations

import sys

import click


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """dynatable: a Dynamo/BigTable storage engine in Python, in the spirit of Apache Cassandra."""


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
def sstable_dump(path) -> None:
    """Print an SSTable's statistics and partitions (any of its component files)."""
    from tools.sstable_dump import dump_sstable
    dump_sstable(path, sys.stdout)


@main.group()
def commitlog() -> None:
    """Inspect commit-log segments."""


@commitlog.command("dump")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
def commitlog_dump(path) -> None:
    """Print a commit-log segment's header and records."""
    from tools.commitlog_dump import dump_commitlog
    dump_commitlog(path, sys.stdout)


if __name__ == "__main__":
    main()
