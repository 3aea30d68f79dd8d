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
