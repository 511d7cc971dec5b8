"""`eval-runner dataset`: build monthly evaluation datasets from the field sources and check them."""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING

import click

from eval_runner.dataset.build import build_month, publish
from eval_runner.dataset.reader import load_dataset
from eval_runner.keys import Month, dataset_manifest_key, extract_prefix
from eval_runner.settings import ShardSettings
from eval_runner.sources.analytics import PostgresAnalytics
from eval_runner.sources.extract import ShardExtract, StoreCheckpoint, fetch_month
from eval_runner.sources.shards import ShardClient

if TYPE_CHECKING:  # cli imports this module at load time; importing cli here would be a cycle
    from eval_runner.runtime import Runtime


@click.group(name="dataset")
def group() -> None:
    """Build monthly evaluation datasets from the field sources (extract, validate, publish)."""


async def _fetch(
    settings: ShardSettings, month: Month, checkpoint: StoreCheckpoint, refetch: bool
) -> list[ShardExtract]:
    async with ShardClient.from_settings(settings) as client:
        return await fetch_month(client, month, checkpoint, refetch=refetch)


@group.command(name="build")
@click.option("--month", "month_text", required=True, help="The month to build, YYYY-MM.")
@click.option("--refetch", is_flag=True, help="Ignore the records of shards finished by an earlier attempt.")
@click.pass_obj
def build(runtime: Runtime, month_text: str, refetch: bool) -> None:
    """Extract a month from the analytics database and the API shards, and publish its dataset.

    Rebuilding from unchanged sources writes nothing new (the files are byte-identical); a month
    already published with different content is refused, because reviews name its content hash.
    """
    month = Month.parse(month_text)
    store = runtime.store()
    shard_settings = runtime.shard_settings()
    checkpoint = StoreCheckpoint(store, extract_prefix(month))
    extracts = asyncio.run(_fetch(shard_settings, month, checkpoint, refetch))
    with PostgresAnalytics.connect(runtime.postgres_settings()) as analytics:
        built = build_month(month, analytics=analytics, extracts=extracts, shard_location=",".join(shard_settings.urls))
    manifest = publish(store, built)
    summary = {
        "manifest": dataset_manifest_key(month),
        "content_hash": manifest.content_hash,
        "rows": {name: entry.rows for name, entry in manifest.files.items()},
        "seconds": {name: round(value, 3) for name, value in built.seconds.items()},
    }
    click.echo(json.dumps(summary, indent=2, sort_keys=True))


@group.command(name="show")
@click.option("--month", "month_text", required=True, help="The month, YYYY-MM.")
@click.pass_obj
def show(runtime: Runtime, month_text: str) -> None:
    """Verify a published month (hashes, rows, schema version) and print its manifest."""
    loaded = load_dataset(runtime.store(), Month.parse(month_text), with_series=True)
    click.echo(loaded.manifest.to_json_bytes().decode(), nl=False)


# What cli.py registers from this module (top-level commands and groups).
commands: tuple[click.Command, ...] = (group,)
