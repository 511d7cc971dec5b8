"""Shard step: process a shard's batches; each writes its result, then a .done marker with its hash.

Batches whose marker exists are skipped, so a retried or resubmitted shard resumes where it stopped. A
configuration batch with unresolved devices gets a .pending marker instead: its result is whole (merge
reports it), and the next run of the shard retries exactly its unresolved devices.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from eval_runner import keys
from eval_runner.concurrency import in_order
from eval_runner.contracts import LIBRARY_SAMPLE_COLUMNS
from eval_runner.errors import ConfigError, DataError
from eval_runner.fleet.apply import ClientFactory, apply_batch, error_rate_halts
from eval_runner.fleet.models import (
    ConfigurationSettings,
    DoneMarker,
    Halt,
    Plan,
    SnapshotManifest,
)
from eval_runner.fleet.modes import configuration_diff, fleet_rows
from eval_runner.fleet.progress import ProgressFile
from eval_runner.fleet.report import refresh_report
from eval_runner.fleet.run_state import check_not_halted, commit_batch, done_batches, load_run
from eval_runner.hashing import sha256_bytes
from eval_runner.library import Predictor
from eval_runner.parquet import frame_to_parquet, parquet_to_frame
from eval_runner.storage import ObjectStore, put_record

log = logging.getLogger(__name__)


@dataclass
class ShardReport:
    """What one shard invocation did, and where its time went (the benchmark reads this)."""

    shard: str
    batches: int = 0
    skipped: int = 0
    processed: int = 0
    devices: int = 0
    failures: int = 0
    library_seconds: float = 0.0
    total_seconds: float = 0.0
    library_versions: list[str] = field(default_factory=list)


def read_inputs(store: ObjectStore, manifest: SnapshotManifest, batch: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Read a batch's samples and series, verified against the manifest's hashes."""
    entry = manifest.batches[batch]
    samples_key = keys.fleet_samples_key(manifest.run_id, batch)
    series_key = keys.fleet_series_key(manifest.run_id, batch)
    samples = parquet_to_frame(store.get_bytes(samples_key, expected_sha256=entry.samples_sha256), name=samples_key)
    series = parquet_to_frame(store.get_bytes(series_key, expected_sha256=entry.series_sha256), name=series_key)
    return samples, series


def _settings(plan: Plan) -> ConfigurationSettings:
    if plan.configuration is None:
        raise DataError(f"fleet run {plan.run_id!r}: a configuration plan without configuration settings")
    return plan.configuration


def _batches_to_run(store: ObjectStore, plan: Plan, shard: str, *, canary: bool, done: set[int]) -> list[int]:
    config = plan.configuration
    if canary:
        if config is None or not config.apply:
            raise ConfigError("fleet shard --canary: only a configuration run with --apply has a canary batch")
        return [config.canary_batch]
    if shard not in plan.shards:
        raise ConfigError(f"fleet run {plan.run_id!r} has no shard {shard!r} (shards: {sorted(plan.shards)})")
    if config is not None and config.apply and config.canary_batch not in done:
        if store.exists(keys.fleet_batch_pending_key(plan.run_id, config.canary_batch)):
            raise DataError(
                f"fleet run {plan.run_id!r}: the canary batch {config.canary_batch} has unresolved devices "
                f"(see {keys.fleet_report_key(plan.run_id, 'failed.parquet')!r}); "
                "resume it with `eval-runner fleet shard --canary` before the other shards run"
            )
        raise ConfigError(
            f"fleet run {plan.run_id!r}: canary batch {config.canary_batch} is not done; "
            "run `eval-runner fleet shard --canary` first and check its result"
        )
    return list(plan.shards[shard])


@dataclass(frozen=True)
class ShardParams:
    """What `fleet shard` is asked: the run, the shard (or only the canary batch), where progress goes."""

    run_id: str
    shard: str
    canary: bool = False
    progress_path: Path | None = None  # the devices done / total file Argo's progress reads


def run(
    params: ShardParams,
    *,
    store: ObjectStore,
    predictor_factory: Callable[[], Predictor],
    client_factory: ClientFactory | None = None,
) -> ShardReport:
    """Process the batches of ``shard`` (or only the canary batch), skipping those already done."""
    started = time.perf_counter()
    run_id, shard, canary, progress_path = params.run_id, params.shard, params.canary, params.progress_path
    plan, manifest = load_run(store, run_id)
    done = done_batches(store, run_id)
    batches = _batches_to_run(store, plan, shard, canary=canary, done=done)
    sizes = {b.batch: b.devices for b in manifest.batches}
    report = ShardReport(shard="canary" if canary else shard, batches=len(batches))
    progress = ProgressFile(progress_path, sum(sizes[b] for b in batches))
    todo = [b for b in batches if b not in done]
    for batch in batches:
        if batch in done:
            report.skipped += 1
            progress.advance(sizes[batch])
    if todo and plan.mode == "configuration" and plan.configuration is not None and plan.configuration.apply:
        if client_factory is None:
            raise ConfigError("fleet shard: a configuration --apply run needs the shard API settings")
        asyncio.run(
            _apply_batches(
                plan,
                todo,
                store=store,
                client_factory=client_factory,
                report=report,
                progress=progress,
                sizes=sizes,
                manifest=manifest,
            )
        )
        if canary and report.failures:  # the canary is there to be looked at: its report at once
            refresh_report(store, run_id)
    elif todo:
        predictor = predictor_factory() if plan.mode != "configuration" else None
        _predict_batches(plan, manifest, todo, store=store, predictor=predictor, report=report, progress=progress)
    report.total_seconds = time.perf_counter() - started
    return report


def _predict_batches(
    plan: Plan,
    manifest: SnapshotManifest,
    todo: list[int],
    *,
    store: ObjectStore,
    predictor: Predictor | None,
    report: ShardReport,
    progress: ProgressFile,
) -> None:
    """Compute batches in order while the next batch's inputs download and the last result uploads.

    S3 round trips would otherwise sit between library calls; one reader and one writer thread hide
    them. Commits still happen in batch order, and a failed commit stops the shard at the next batch.
    """
    sizes = {b.batch: b.devices for b in manifest.batches}

    def read(batch: int) -> tuple[pl.DataFrame, pl.DataFrame]:
        return read_inputs(store, manifest, batch)

    # Leaving the block stops the reads first, then waits for the commit in flight.
    with ThreadPoolExecutor(max_workers=1) as writer, in_order(read, todo, workers=1, name="shard-read") as inputs:
        committing: Future[None] | None = None
        committed = 0
        for batch, (samples, series) in zip(todo, inputs, strict=True):
            marker, data = _compute_batch(plan, batch, samples, series, predictor=predictor, report=report)
            if committing is not None:
                committing.result()
                progress.advance(sizes[todo[committed]])
                committed += 1
            committing = writer.submit(commit_batch, store, plan.run_id, marker, data)
        if committing is not None:
            committing.result()
            progress.advance(sizes[todo[committed]])


def _compute_batch(
    plan: Plan,
    batch: int,
    samples: pl.DataFrame,
    series: pl.DataFrame,
    *,
    predictor: Predictor | None,
    report: ShardReport,
) -> tuple[DoneMarker, bytes]:
    if predictor is None:  # a configuration dry run: the diff against the snapshot, no shard calls
        rows = configuration_diff(samples, _settings(plan).target_map(), run_id=plan.run_id, batch=batch)
        version = "none"
    else:
        tick = time.perf_counter()
        predictions = predictor.predict(samples.select(LIBRARY_SAMPLE_COLUMNS), series)
        report.library_seconds += time.perf_counter() - tick
        rows = fleet_rows(samples, predictions, batch)
        version = predictor.library_version
    data = frame_to_parquet(rows)
    report.processed += 1
    report.devices += rows.height
    if version not in report.library_versions:
        report.library_versions.append(version)
    marker = DoneMarker(batch=batch, result_sha256=sha256_bytes(data), devices=rows.height, library_version=version)
    return marker, data


def _stop_if_halted(store: ObjectStore, run_id: str) -> None:
    """On a halt, rebuild the report first (this shard's last batch is committed), then stop."""
    if store.exists(keys.fleet_halt_key(run_id)):
        refresh_report(store, run_id)
        check_not_halted(store, run_id)


async def _apply_batches(
    plan: Plan,
    todo: list[int],
    *,
    store: ObjectStore,
    client_factory: ClientFactory,
    report: ShardReport,
    progress: ProgressFile,
    sizes: dict[int, int],
    manifest: SnapshotManifest,
) -> None:
    config = _settings(plan)
    attempted = failed = 0
    errors: list[str] = []
    async with client_factory() as client:
        for batch in todo:
            _stop_if_halted(store, plan.run_id)
            samples, _ = read_inputs(store, manifest, batch)
            diff = configuration_diff(samples, config.target_map(), run_id=plan.run_id, batch=batch)
            outcome = await apply_batch(diff, client=client, store=store, run_id=plan.run_id, batch=batch)
            # Committed before any halt, so the report (and the rollback) sees this batch's writes.
            data = frame_to_parquet(outcome.rows)
            marker = DoneMarker(
                batch=batch,
                result_sha256=sha256_bytes(data),
                devices=outcome.rows.height,
                library_version="none",
                failures=outcome.failed,
            )
            commit_batch(store, plan.run_id, marker, data, pending=outcome.failed > 0)
            report.processed += 1
            report.devices += outcome.rows.height
            report.failures += outcome.failed
            progress.advance(sizes[batch])
            # The rate counts every write this shard attempted, and only once there are enough of them.
            attempted, failed = attempted + outcome.attempted, failed + outcome.failed
            errors = [*errors, *outcome.errors][:5]
            if error_rate_halts(attempted, failed, max_error_rate=config.max_error_rate, min_writes=config.min_writes):
                halt = Halt(
                    batch=batch,
                    attempted=attempted,
                    failed=failed,
                    error_rate=failed / attempted,
                    max_error_rate=config.max_error_rate,
                    first_errors=tuple(errors),
                    shard=report.shard,
                )
                key = keys.fleet_halt_key(plan.run_id)
                if not store.exists(key):  # the first shard to halt explains why; later ones just stop
                    with contextlib.suppress(DataError):  # another shard's halt won the conditional write
                        put_record(store, key, halt)
                _stop_if_halted(store, plan.run_id)
