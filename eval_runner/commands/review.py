"""`eval-runner review`: validate review manifests and serve the review UI for domain experts."""

from __future__ import annotations

import click


@click.group(name="review")
def group() -> None:
    """Validate review manifests and serve the review UI for domain experts."""


# What cli.py registers from this module (top-level commands and groups).
commands: tuple[click.Command, ...] = (group,)
