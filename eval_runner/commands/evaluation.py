"""`eval-runner evaluation`: evaluate library versions on reviewed datasets, compare them and gate a release."""

from __future__ import annotations

import click


@click.group(name="evaluation")
def group() -> None:
    """Evaluate library versions on reviewed datasets, compare them and gate a release."""


# What cli.py registers from this module (top-level commands and groups).
commands: tuple[click.Command, ...] = (group,)
