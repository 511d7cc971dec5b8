"""`eval-runner evaluate | compare | gate | evaluations list`: evaluate library versions and gate a release."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click
import polars as pl

from eval_runner.errors import ConfigError
from eval_runner.keys import Month

if TYPE_CHECKING:
    from eval_runner.runtime import Runtime
    from eval_runner.tracking import Tracker


def _split(values: tuple[str, ...]) -> list[str]:
    """Items from repeated options, comma-separated text or JSON lists (what Argo parameters carry)."""
    parts: list[str] = []
    for value in values:
        text = value.strip()
        if text.startswith("["):
            try:
                items = json.loads(text)
            except ValueError as error:
                raise ConfigError(f"{text!r} looks like a JSON list but does not parse ({error})") from error
            if not isinstance(items, list):
                raise ConfigError(f"{text!r} is not a JSON list")
            parts.extend(str(item).strip() for item in items)
        else:
            parts.extend(part.strip() for part in text.split(","))
    return [part for part in parts if part]


def _months(values: tuple[str, ...]) -> tuple[Month, ...]:
    parts = _split(values)
    months = tuple(sorted({Month.parse(part) for part in parts}))
    if not months:
        raise ConfigError("give at least one --month YYYY-MM")
    return months


def _versions(values: tuple[str, ...]) -> tuple[str, ...]:
    from eval_runner.evaluation.inputs import normalise_version

    return tuple(normalise_version(part) for part in _split(values))


def _echo_json(data: object) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=True, default=str))


def _table(frame: pl.DataFrame) -> str:
    with pl.Config(tbl_rows=-1, tbl_cols=-1, tbl_width_chars=200, tbl_hide_dataframe_shape=True,
                   tbl_hide_column_data_types=True, fmt_str_lengths=60):  # fmt: skip
        return str(frame)


PLOTS_DIR_OPTION = click.option(
    "--plots-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Also write the run's plots (PNG) here, e.g. for Argo to show them on the workflow node.",
)


def _tracker(runtime: Runtime, plots_dir: Path | None) -> Tracker:
    from eval_runner.tracking import PlotMirroringTracker  # mlflow is imported only by steps that track

    tracker = runtime.tracker()
    return tracker if plots_dir is None else PlotMirroringTracker(tracker, plots_dir)


@click.command(name="evaluate")
@click.option("--month", required=True, help="The reviewed month to evaluate on, YYYY-MM.")
@click.option(
    "--version-label", required=True, help="The label this run was asked for (0.9.0, v0.9.0, latest, git:<ref>)."
)
@click.option("--image-digest", default="unknown", show_default=True, help="Digest of the runner image (recorded).")
@PLOTS_DIR_OPTION
@click.pass_obj
def evaluate(runtime: Runtime, month: str, version_label: str, image_digest: str, plots_dir: Path | None) -> None:
    """Evaluate the battery-lib installed here on a month's approved samples.

    Writes predictions.parquet and metrics.json under capacity/evaluations/ and logs one MLflow run.
    Run it in the runner image of the version (or an environment with exactly that version).
    """
    from eval_runner.evaluation import evaluate as step
    from eval_runner.library import load_predictor

    predictor = load_predictor()
    params = step.EvaluateParams(Month.parse(month), version_label, image_digest=image_digest)
    out = step.run(params, store=runtime.store(), tracker=_tracker(runtime, plots_dir), predictor=predictor)
    overall = out.record.metrics["overall"]
    _echo_json(
        {
            "month": out.record.month,
            "library_version": out.record.library_version,
            "reused": out.reused,
            "mlflow_run_id": out.run_id,
            "samples": out.record.n_evaluated,
            "predicted": overall.get("n_predicted"),
            "errors": {k: overall.get(k) for k in ("runtime_abs_error_median", "capacity_abs_error_median")},
            "metrics": overall,
            "timings_seconds": {k: round(v, 4) for k, v in out.phases.wall.items()},
            "cpu_seconds": {k: round(v, 4) for k, v in out.phases.cpu.items()},
        }
    )


@click.command(name="compare")
@click.option("--month", "--months", "months", multiple=True, required=True, help="Month(s) to pool, YYYY-MM.")
@click.option(
    "--versions", "versions", multiple=True, required=True, help="Versions to compare; the first is the reference."
)
@PLOTS_DIR_OPTION
@click.pass_obj
def compare(runtime: Runtime, months: tuple[str, ...], versions: tuple[str, ...], plots_dir: Path | None) -> None:
    """Compare evaluated versions: leaderboard, per-segment table, error CDFs, logged as one MLflow run.

    Refuses evaluations of a month made on different dataset, manifest or review hashes.
    """
    from eval_runner.evaluation import compare_step as step

    params = step.CompareParams(_months(months), _versions(versions))
    out = step.run(params, store=runtime.store(), tracker=_tracker(runtime, plots_dir))
    # Tables for people on stderr; stdout stays the JSON summary the workflow step wrapper parses.
    click.echo(_table(out.leaderboard), err=True)
    click.echo(_table(out.segments), err=True)
    versions_ranked = out.leaderboard.get_column("version").to_list()
    _echo_json(
        {
            "samples": out.leaderboard.get_column("n_samples").to_list()[0],
            "versions": versions_ranked,
            "best": versions_ranked[0],
            "mlflow_run_id": out.run_id,
            "reused": out.reused,
            "leaderboard": out.leaderboard.to_dicts(),
        }
    )


@click.command(name="gate")
@click.option("--policy", "policy_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Gate policy YAML (see policies/default.yaml).")  # fmt: skip
@click.option("--candidate", required=True, help="The version that wants to become champion.")
@click.option("--baseline", default="champion", show_default=True, help="A version, or 'champion' (the MLflow alias).")
@click.option("--month", "--months", "months", multiple=True, required=True, help="Month(s) judged together, YYYY-MM.")
@click.option(
    "--release-id",
    default=None,
    help="Names capacity/decisions/<release-id>/ (default: from candidate, months, policy).",
)
@click.option("--promote/--no-promote", default=False, show_default=True, help="Move the champion alias on a pass.")
@click.option("--output-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Also write verdict.txt and decision.json here (Argo output parameters).")  # fmt: skip
@click.pass_obj
def gate(
    runtime: Runtime,
    policy_path: Path,
    candidate: str,
    baseline: str,
    months: tuple[str, ...],
    release_id: str | None,
    promote: bool,
    output_dir: Path | None,
) -> None:
    """Judge a candidate against the baseline under a policy; write decision.json; promote on a pass."""
    from eval_runner.evaluation import gate_step as step

    try:
        policy_text = policy_path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"gate policy {policy_path}: cannot be read ({error.strerror})") from error
    params = step.GateParams(
        months=_months(months),
        candidate=candidate,
        baseline=baseline,
        policy_text=policy_text,
        policy_name=policy_path.name,
        release_id=release_id,
        promote=promote,
        model=runtime.mlflow_settings().registered_model,
    )
    out = step.run(params, store=runtime.store(), tracker=runtime.tracker())
    decision = out.decision
    for reason in decision.reasons:
        click.echo(reason, err=True)
    if out.promoted is not None:
        click.echo(f"champion -> {out.promoted.library_version} (model version {out.promoted.version})", err=True)
    if output_dir is not None:
        output_dir.mkdir(parents=True, exist_ok=True)
        (output_dir / "verdict.txt").write_text(decision.verdict)
        (output_dir / "decision.json").write_bytes(decision.to_json_bytes())
    _echo_json(
        {
            "passed": decision.verdict == "pass",
            "verdict": decision.verdict,
            "release_id": decision.release_id,
            "decision": out.key,
            "candidate_image": decision.candidate_image,
            "reasons": decision.reasons,
            "reused": out.reused,
            "promoted": out.promoted.library_version if out.promoted else None,
        }
    )


@click.group(name="evaluations")
def evaluations() -> None:
    """Inspect published evaluations."""


@evaluations.command(name="list")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.pass_obj
def list_evaluations(runtime: Runtime, fmt: str) -> None:
    """Show the month x version matrix: median absolute runtime error and dataset hash per cell."""
    from eval_runner.evaluation.matrix import evaluations_frame, matrix
    from eval_runner.evaluation.records import list_records

    records = list_records(runtime.store())
    if fmt == "json":
        _echo_json(evaluations_frame(records).to_dicts())
        return
    click.echo(_table(matrix(records)))
    click.echo("cell: median abs runtime error (days) @ dataset hash; '!' = mixed inputs; '-' = not evaluated")


@evaluations.command(name="labels")
@click.option("--candidate", required=True, help="The version a release wants to promote.")
@click.option("--baseline", default="champion", show_default=True, help="A version, or 'champion' (the MLflow alias).")
@click.pass_obj
def release_labels(runtime: Runtime, candidate: str, baseline: str) -> None:
    """Print the JSON list of labels a release evaluates: the candidate, then the version it is judged against.

    Evaluating both on the release's months lets the comparison and the gate work on months the
    baseline was never evaluated on; evaluations that exist are reused, not redone.
    """
    from eval_runner.evaluation.gate_step import resolve_baseline
    from eval_runner.evaluation.inputs import normalise_version

    model = runtime.mlflow_settings().registered_model
    version, _ = resolve_baseline(baseline, tracker=runtime.tracker(), model=model)
    labels = [candidate] if normalise_version(version) == normalise_version(candidate) else [candidate, version]
    click.echo(json.dumps(labels))


# What cli.py registers from this module (top-level commands and groups).
commands: tuple[click.Command, ...] = (evaluate, compare, gate, evaluations)
