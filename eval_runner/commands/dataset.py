"""`eval-runner dataset`: build monthly evaluation datasets from the field sources (extract, validate, publish)."""

from __future__ import annotations

import click


@click.group(name="dataset")
def group() -> None:
    """Build monthly evaluation datasets from the field sources (extract, validate, publish)."""


# What cli.py registers from this module (top-level commands and groups).
commands: tuple[click.Command, ...] = (group,)
