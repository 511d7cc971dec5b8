"""`eval-runner fleet`: run a library version on every device: snapshot, plan, shard, merge, or all locally."""

from __future__ import annotations

import click


@click.group(name="fleet")
def group() -> None:
    """Run a library version on every device: snapshot, plan, shard, merge, or all locally."""


# What cli.py registers from this module (top-level commands and groups).
commands: tuple[click.Command, ...] = (group,)
