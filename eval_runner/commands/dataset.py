"""`eval-runner dataset`: build monthly evaluation datasets from the field sources and check them."""

from __future__ import annotations

import asyncio
import json
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import click

from eval_runner.contracts import SCHEMA_VERSION
from eval_runner.dataset import build as build_step
from eval_runner.dataset.build import READ_AHEAD, BuildParams, build_summary
from eval_runner.dataset.reader import load_dataset, published_schema_versions
from eval_runner.keys import Month
from eval_runner.settings import ShardSettings
from eval_runner.sources.analytics import AnalyticsSource, PostgresAnalytics
from eval_runner.sources.extract import ShardCheckpoint, ShardExtract, fetch_month
from eval_runner.sources.shards import ShardClient

if TYPE_CHECKING:  # cli imports this module at load time; importing cli here would be a cycle
    from eval_runner.runtime import Runtime


@click.group(name="dataset")
def group() -> None:
    """Build monthly evaluation datasets from the field sources (extract, validate, publish)."""


async def _fetch(
    settings: ShardSettings, month: Month, checkpoint: ShardCheckpoint, refetch: bool
) -> list[ShardExtract]:
    async with ShardClient.from_settings(settings) as client:
        return await fetch_month(client, month, checkpoint, refetch=refetch)


@group.command(name="build")
@click.option("--month", "month_text", required=True, help="The month to build, YYYY-MM.")
@click.option("--refetch", is_flag=True, help="Ignore the records of shards finished by an earlier attempt.")
@click.option(
    "--allow-unfinished-month", is_flag=True, help="Publish a month that has not ended yet (it is immutable after)."
)
@click.option("--allow-no-data", is_flag=True, help="Publish a month whose sources hold no data for it.")
@click.pass_obj
def build(runtime: Runtime, month_text: str, refetch: bool, allow_unfinished_month: bool, allow_no_data: bool) -> None:
    """Extract a month from the analytics database and the API shards, and publish its dataset.

    Rebuilding from unchanged sources writes nothing new (the files are byte-identical); a month
    already published with different content by this extractor schema version is refused, because reviews
    name its content hash. A new extractor schema version publishes its own build beside the old ones. A month
    that has not ended (exit 2) or whose sources hold no data for it (exit 3) is refused before anything is
    published, unless allowed explicitly.
    """
    month = Month.parse(month_text)
    params = BuildParams(
        month=month,
        today=datetime.now(UTC).date(),
        allow_unfinished_month=allow_unfinished_month,
        allow_no_data=allow_no_data,
    )

    def fetch_extracts(checkpoint: ShardCheckpoint) -> list[ShardExtract]:
        return asyncio.run(_fetch(runtime.shard_settings(), month, checkpoint, refetch))

    def open_analytics() -> AbstractContextManager[AnalyticsSource]:
        return PostgresAnalytics.connect(runtime.postgres_settings(), connections=READ_AHEAD)

    built = build_step.run(params, store=runtime.store(), fetch_extracts=fetch_extracts, open_analytics=open_analytics)
    click.echo(json.dumps(build_summary(month, built), indent=2, sort_keys=True))


@group.command(name="show")
@click.option("--month", "month_text", required=True, help="The month, YYYY-MM.")
@click.pass_obj
def show(runtime: Runtime, month_text: str) -> None:
    """Verify a published month's build by this extractor (hashes, rows, schema version); print its manifest.

    Builds by other extractor schema versions are listed on stderr: they are kept, and not comparable.
    """
    store, month = runtime.store(), Month.parse(month_text)
    for version in published_schema_versions(store, month):
        if version != SCHEMA_VERSION:
            click.echo(f"{month}: a build by extractor schema version {version} is kept too (incomparable)", err=True)
    loaded = load_dataset(store, month, with_series=True)
    click.echo(loaded.manifest.to_json_bytes().decode(), nl=False)


# What cli.py registers from this module (top-level commands and groups).
commands: tuple[click.Command, ...] = (group,)
