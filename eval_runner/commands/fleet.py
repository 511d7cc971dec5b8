"""`eval-runner fleet`: run a library version on every device: prepare (or snapshot, plan), shard, merge, run."""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractAsyncContextManager, AbstractContextManager, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from eval_runner.errors import ConfigError
from eval_runner.fleet.models import (
    DEFAULT_MAX_ERROR_RATE,
    DEFAULT_MIN_WRITES,
    DEFAULT_ROLLBACK_CANARY,
    MODES,
    ConfigurationSettings,
    Mode,
)
from eval_runner.fleet.planning import DEFAULT_BATCH_SIZE, DEFAULT_SHARD_PODS
from eval_runner.runner_profiles import DEFAULT_CONTEXT as RUNNER_CONTEXT

if TYPE_CHECKING:
    from eval_runner.fleet.apply import ParameterClient
    from eval_runner.fleet.snapshot import FleetSource
    from eval_runner.runtime import Runtime

F = TypeVar("F", bound=Callable[..., Any])
log = logging.getLogger(__name__)
_RUN_ID = click.option("--run-id", required=True, help="The fleet run (a workflow's name); fixes every key.")
_SHARDS = click.option(
    "--shards", default=DEFAULT_SHARD_PODS, show_default=True, type=click.IntRange(min=1), help="Pods to fan out to."
)


def _echo_json(value: object) -> None:
    click.echo(json.dumps(value, sort_keys=True, default=str))


def _parse_as_of(text: str | None) -> datetime:
    """Parse --as-of (ISO 8601; UTC when no zone), default: this hour; truncated to the hour either way."""
    if text is None:
        moment = datetime.now(UTC)
    else:
        try:
            moment = datetime.fromisoformat(text)
        except ValueError as error:
            raise ConfigError(f"--as-of {text!r} is not an ISO 8601 time (e.g. 2026-04-30T00:00:00Z)") from error
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def _configuration(
    mode: str, *, apply: bool, max_error_rate: float, min_writes: int, canary_batch: int, targets: Path | None
) -> ConfigurationSettings | None:
    """The configuration settings the options describe; called before any source is read."""
    from eval_runner.fleet.plan import configuration_settings

    targets_json = None
    if targets is not None:
        try:
            targets_json = targets.read_text()
        except OSError as error:
            raise ConfigError(f"--targets {str(targets)!r}: cannot be read ({error})") from error
    return configuration_settings(
        mode,
        apply=apply,
        max_error_rate=max_error_rate,
        min_writes=min_writes,
        canary_batch=canary_batch,
        targets_json=targets_json,
        targets_name=str(targets),
    )


@click.group(name="fleet")
def group() -> None:
    """Run a library version on every device: snapshot, plan, shard, merge, or all locally."""


def _live_source(runtime: Runtime) -> Callable[[], AbstractContextManager[FleetSource]]:
    """Opens the live sources: the analytics database (one connection per batch in flight) and the shards."""

    @contextmanager
    def open_source() -> Iterator[FleetSource]:
        from eval_runner.fleet.live_source import LiveFleetSource
        from eval_runner.fleet.snapshot import SNAPSHOT_WORKERS
        from eval_runner.sources.analytics import PostgresAnalytics

        with (
            PostgresAnalytics.connect(runtime.postgres_settings(), connections=SNAPSHOT_WORKERS) as analytics,
            LiveFleetSource(runtime.shard_settings(), analytics) as source,
        ):
            yield source

    return open_source


def _snapshot(
    runtime: Runtime,
    run_id: str,
    as_of: datetime,
    batch_size: int,
    series_days: int,
    settings: ConfigurationSettings | None = None,
) -> dict[str, object]:
    from eval_runner.fleet.plan import check_canary
    from eval_runner.fleet.snapshot import SnapshotParams, snapshot_sources, snapshot_summary

    manifest = snapshot_sources(
        SnapshotParams(run_id, as_of, batch_size=batch_size, series_days=series_days),
        store=runtime.store(),
        open_source=_live_source(runtime),
        check_batches=None if settings is None else (lambda n: check_canary(settings, n)),
    )
    return snapshot_summary(run_id, manifest)


_SNAPSHOT_OPTIONS = [
    click.option("--as-of", default=None, help="Predict as of this time (ISO 8601, UTC); default: this hour."),
    click.option("--batch-size", default=DEFAULT_BATCH_SIZE, show_default=True, type=click.IntRange(min=1)),
    click.option(
        "--series-days",
        default=None,
        type=click.IntRange(min=1, max=30),
        help="Days of hourly series per device [default: FLEET_SERIES_DAYS].",
    ),
]
_PLAN_OPTIONS = [
    click.option("--mode", type=click.Choice(MODES), required=True),
    click.option("--apply", is_flag=True, help="configuration: really PUT (default: dry-run diff)."),
    click.option(
        "--max-error-rate",
        default=DEFAULT_MAX_ERROR_RATE,
        show_default=True,
        type=click.FloatRange(0, 1),
        help="configuration --apply: halt when a shard's failed writes pass this share.",
    ),
    click.option(
        "--min-writes",
        default=DEFAULT_MIN_WRITES,
        show_default=True,
        type=click.IntRange(min=1),
        help="configuration --apply: attempted writes before --max-error-rate applies.",
    ),
    click.option("--canary-batch", default=0, show_default=True, type=click.IntRange(min=0)),
    click.option(
        "--targets",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help="configuration: JSON {chemistry: {nominal_capacity_mah, cutoff_mv}}.",
    ),
]


def _options(options: list[Any]) -> Callable[[F], F]:
    def decorate(function: F) -> F:
        for option in reversed(options):
            function = option(function)
        return function

    return decorate


@group.command()
@_RUN_ID
@_options(_SNAPSHOT_OPTIONS)
@click.pass_obj
def snapshot(runtime: Runtime, run_id: str, as_of: str | None, batch_size: int, series_days: int | None) -> None:
    """Read the fleet's inputs from the sources into per-batch Parquet on S3 (manifest last)."""
    from eval_runner.contracts import FLEET_SERIES_DAYS

    _echo_json(_snapshot(runtime, run_id, _parse_as_of(as_of), batch_size, series_days or FLEET_SERIES_DAYS))


def _mode(mode: str) -> Mode:
    return next(m for m in MODES if m == mode)  # click.Choice(MODES) checked it


@group.command()
@_RUN_ID
@_SHARDS
@_options(_PLAN_OPTIONS)
@click.pass_obj
def plan(runtime: Runtime, /, run_id: str, shards: int, mode: str, **config: Any) -> None:
    """Write plan.json and print the shard ids as a JSON list (for the workflow's fan-out)."""
    from eval_runner.fleet import plan as plan_step

    settings = _configuration(mode, **config)
    params = plan_step.PlanParams(run_id, _mode(mode), n_shards=shards, configuration=settings)
    the_plan = plan_step.run(params, store=runtime.store())
    _echo_json(sorted(the_plan.shards))


@group.command()
@_RUN_ID
@click.option("--version", "label", required=True, help="The version label to roll out: 0.9.0, latest, git:<ref>.")
@click.option("--image-repository", required=True, help="Repository pods pull runner images from.")
@click.option("--registry-url", default=None, help="Registry HTTP API base: report the image when it is missing.")
@click.option("--registry-repository", default=None, help="Repository name inside that registry.")
@click.option(
    "--output-dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Write the resolution's files and summary.json here (Argo output parameters).",
)
@click.option(
    "--runner-context",
    type=click.Path(file_okay=False, path_type=Path),
    default=RUNNER_CONTEXT,
    show_default=True,
    help="Runner build context; its digest is part of every image tag (the core image carries it).",
)
@_SHARDS
@click.option(
    "--release-id",
    default=None,
    help="The gate decision that allows this rollout (the release Workflow's name); "
    "default: any pass decision of the resolved version.",
)
@click.option(
    "--gate-override-reason",
    default=None,
    help="Roll out without (or regardless of) a pass decision that judged this image; plan.json records the reason.",
)
@_options(_SNAPSHOT_OPTIONS)
@_options(_PLAN_OPTIONS)
@click.pass_obj
def prepare(
    runtime: Runtime,
    /,
    run_id: str,
    label: str,
    image_repository: str,
    registry_url: str | None,
    registry_repository: str | None,
    output_dir: Path,
    runner_context: Path,
    shards: int,
    release_id: str | None,
    gate_override_reason: str | None,
    as_of: str | None,
    batch_size: int,
    series_days: int | None,
    mode: str,
    **config: Any,
) -> None:
    """`versions resolve`, the gate check, `fleet snapshot` and `fleet plan` in one process; print the shard ids.

    The workflow's first step (eval_runner/fleet/prepare.py says why one pod): the options are checked
    and the label resolved before the gate, and the gate before the sources are read.
    """
    from eval_runner.commands.versions import LIBRARY_SOURCES, resolve_labels, write_outputs
    from eval_runner.contracts import FLEET_SERIES_DAYS
    from eval_runner.fleet import prepare as prepare_step

    started = time.monotonic()
    configuration = _configuration(mode, **config)  # before the label and the sources: options fail first
    moment = _parse_as_of(as_of)
    resolutions, missing, resolved = resolve_labels(
        runtime,
        (label,),
        image_repository,
        registry_url=registry_url,
        registry_repository=registry_repository,
        runner_context=runner_context,
        sources_dir=output_dir / LIBRARY_SOURCES,
    )
    if len(resolutions) != 1:
        raise ConfigError(f"fleet prepare: --version {label!r} must name exactly one version")
    params = prepare_step.PrepareParams(
        run_id=run_id,
        resolution=resolutions[0],
        mode=_mode(mode),
        as_of=moment,
        batch_size=batch_size,
        series_days=series_days or FLEET_SERIES_DAYS,
        n_shards=shards,
        configuration=configuration,
        release_id=release_id,
        gate_override_reason=gate_override_reason,
    )
    prepared = prepare_step.run(params, store=runtime.store(), open_source=_live_source(runtime))
    summary = prepare_step.prepare_summary(
        prepared, resolutions[0], images_missing=int(str(resolved["images_missing"])), started=started
    )
    write_outputs(output_dir, resolutions, missing, summary)
    _echo_json(prepared.shard_ids)


@group.command()
@_RUN_ID
@click.option("--shard", default=None, help="The shard id to process (from `fleet plan`).")
@click.option("--canary", is_flag=True, help="configuration --apply: process only the canary batch.")
@click.option(
    "--progress-file",
    envvar="ARGO_PROGRESS_FILE",
    default=None,
    type=click.Path(path_type=Path),
    help="Write 'devices done/total' here [env: ARGO_PROGRESS_FILE].",
)
@click.pass_obj
def shard(runtime: Runtime, run_id: str, shard: str | None, canary: bool, progress_file: Path | None) -> None:
    """Process a shard's batches (done batches are skipped); print a JSON report."""
    from eval_runner.fleet import shard as shard_step

    if (shard is None) == (not canary):
        raise ConfigError("fleet shard: give exactly one of --shard <id> or --canary")

    def predictor() -> Any:
        from eval_runner.library import load_predictor

        return load_predictor()

    def client() -> AbstractAsyncContextManager[ParameterClient]:
        from eval_runner.sources.shards import ShardClient

        return ShardClient.from_settings(runtime.shard_settings())

    params = shard_step.ShardParams(run_id, shard or "canary", canary=canary, progress_path=progress_file)
    report = shard_step.run(params, store=runtime.store(), predictor_factory=predictor, client_factory=client)
    _echo_json(dataclasses.asdict(report))


@group.command()
@_RUN_ID
@click.pass_obj
def merge(runtime: Runtime, run_id: str) -> None:
    """Prove every device appears exactly once, then publish results and summary; print the summary."""
    from eval_runner.fleet import merge as merge_step

    _echo_json(merge_step.run(merge_step.MergeParams(run_id), store=runtime.store()).model_dump(mode="json"))


@group.command()
@_RUN_ID
@click.option("--local", is_flag=True, required=True, help="Run the steps as local processes.")
@click.option("--workers", default=2, show_default=True, type=click.IntRange(min=1), help="Concurrent shards.")
@click.option("--shards", default=None, type=click.IntRange(min=1), help="Shards to plan [default: --workers].")
@_options(_SNAPSHOT_OPTIONS)
@_options(_PLAN_OPTIONS)
@click.pass_context
def run(
    ctx: click.Context,
    /,
    run_id: str,
    local: bool,
    workers: int,
    shards: int | None,
    as_of: str | None,
    batch_size: int,
    series_days: int | None,
    mode: str,
    **config: Any,
) -> None:
    """Snapshot, plan, run every shard (canary first) and merge, as local processes; print timings."""
    from eval_runner.contracts import FLEET_SERIES_DAYS
    from eval_runner.fleet import merge as merge_step
    from eval_runner.fleet import plan as plan_step
    from eval_runner.fleet.local import run_shard_process, run_shards, shard_command

    runtime: Runtime = ctx.obj
    if not local:
        raise ConfigError("fleet run: only --local is implemented here; in a cluster submit fleet-rollout")
    verbose = ctx.find_root().params.get("verbose", 0)
    settings = _configuration(mode, **config)  # before the snapshot: a wrong option costs no source reads
    moment = _parse_as_of(as_of)
    timings: dict[str, float] = {}
    tick = time.perf_counter()
    snap = _snapshot(runtime, run_id, moment, batch_size, series_days or FLEET_SERIES_DAYS, settings)
    timings["snapshot_seconds"] = time.perf_counter() - tick
    tick = time.perf_counter()
    params = plan_step.PlanParams(run_id, _mode(mode), n_shards=shards or workers, configuration=settings)
    the_plan = plan_step.run(params, store=runtime.store())
    reports = []
    if the_plan.configuration is not None and the_plan.configuration.apply:
        reports.append(run_shard_process(shard_command(run_id, None, verbose=verbose)))
    reports += run_shards(run_id, sorted(the_plan.shards), workers=workers, verbose=verbose)
    timings["shards_seconds"] = time.perf_counter() - tick
    tick = time.perf_counter()
    summary = merge_step.run(merge_step.MergeParams(run_id), store=runtime.store())
    timings["merge_seconds"] = time.perf_counter() - tick
    _echo_json({"snapshot": snap, "summary": summary.model_dump(mode="json"), "timings": timings, "shards": reports})


@group.command()
@_RUN_ID
@click.option("--apply", is_flag=True, help="Really PUT the previous parameters (default: dry run, a count).")
@click.option(
    "--canary",
    default=DEFAULT_ROLLBACK_CANARY,
    show_default=True,
    type=click.IntRange(min=1),
    help="Devices restored first.",
)
@click.option("--max-error-rate", default=DEFAULT_MAX_ERROR_RATE, show_default=True, type=click.FloatRange(0, 1))
@click.option("--min-writes", default=DEFAULT_MIN_WRITES, show_default=True, type=click.IntRange(min=1))
@click.pass_obj
def rollback(runtime: Runtime, run_id: str, apply: bool, canary: int, max_error_rate: float, min_writes: int) -> None:
    """Restore exactly the devices a configuration run wrote (a halted run too); print counts."""
    from eval_runner.fleet import rollback as rollback_step

    def client() -> AbstractAsyncContextManager[ParameterClient]:
        from eval_runner.sources.shards import ShardClient

        return ShardClient.from_settings(runtime.shard_settings())

    params = rollback_step.RollbackParams(
        run_id, apply=apply, canary=canary, max_error_rate=max_error_rate, min_writes=min_writes
    )
    _echo_json(rollback_step.run(params, store=runtime.store(), client_factory=client))


# What cli.py registers from this module (top-level commands and groups).
commands: tuple[click.Command, ...] = (group,)
