"""The `dynatable` command groups beside the root (tools/cli.py): `cluster` (like ccm) and
`nodetool`. Each module is one click group; errors leave through `fail`: one line that says
what to do, never a traceback, exit status 1.
"""
from __future__ import annotations

import sys

import click


def fail(message: str) -> None:
    """The CLI's error exit: one line saying what to do, on stderr, exit status 1."""
    click.echo(f"dynatable: {message}", err=True)
    sys.exit(1)


def cluster_name_for(host: str) -> str:
    """The cluster_name of the local cluster that has a node at `host`, else the default."""
    from tools.cluster import LocalCluster
    try:
        names = LocalCluster.list_names()
        current = LocalCluster.current_name()
        for name in sorted(names, key=lambda n: n != current):
            c = LocalCluster.load(name)
            if host in c.contact_points():
                return c.setting("cluster_name", "dynatable")
    except Exception:  # noqa: BLE001, S110 - only a convenience: fall back to the default
        pass
    return "dynatable"
