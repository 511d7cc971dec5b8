"""Command modules of eval-runner; each exports ``commands``, and ``COMMANDS`` is what cli.py registers."""

from __future__ import annotations

import click

from eval_runner.commands import dataset, evaluation, fleet, review, versions

COMMANDS: tuple[click.Command, ...] = (
    *dataset.commands,
    *review.commands,
    *evaluation.commands,
    *fleet.commands,
    *versions.commands,
)
