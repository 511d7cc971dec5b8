"""`eval-runner versions`: resolve version labels (0.9.0, v0.9.0, latest, git:<ref>) to library versions and image tags."""

from __future__ import annotations

import click


@click.group(name="versions")
def group() -> None:
    """Resolve version labels (0.9.0, v0.9.0, latest, git:<ref>) to library versions and image tags."""


# What cli.py registers from this module (top-level commands and groups).
commands: tuple[click.Command, ...] = (group,)
