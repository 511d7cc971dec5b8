"""`eval-runner evaluate | compare | gate | evaluations list`: evaluate library versions and gate a release."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import polars as pl

from eval_runner.errors import ConfigError, DataError
from eval_runner.keys import Month

if TYPE_CHECKING:
    from eval_runner.runtime import Runtime
    from eval_runner.tracking import Tracker


def _json_option(text: str, expected: type[list[object]] | type[dict[str, object]], *, option: str) -> Any:
    """``text`` parsed as the JSON list or object an Argo parameter carries; anything else is a ConfigError."""
    kind = "list" if expected is list else "object"
    try:
        value = json.loads(text)
    except ValueError as error:
        raise ConfigError(f"{option} {text!r} looks like a JSON {kind} but does not parse ({error})") from error
    if not isinstance(value, expected):
        raise ConfigError(f"{option} {text!r} is not a JSON {kind}")
    return value


def _split(values: tuple[str, ...], *, option: str) -> list[str]:
    """Items from repeated options, comma-separated text or JSON lists (what Argo parameters carry)."""
    parts: list[str] = []
    for value in values:
        text = value.strip()
        if text.startswith("["):
            parts.extend(str(item).strip() for item in _json_option(text, list, option=option))
        else:
            parts.extend(part.strip() for part in text.split(","))
    return [part for part in parts if part]


def _months(values: tuple[str, ...]) -> tuple[Month, ...]:
    parts = _split(values, option="--month")
    months = tuple(sorted({Month.parse(part) for part in parts}))
    if not months:
        raise ConfigError("give at least one --month YYYY-MM")
    return months


_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def _review_hashes(values: tuple[str, ...], months: tuple[Month, ...]) -> dict[Month, str]:
    """The review hash each month must use (months not named: their current review).

    A JSON object {"YYYY-MM": hash}, ``YYYY-MM=hash`` items, or a bare hash when there is one month;
    empty, and ``{}`` (the workflow's default), name none.
    """
    pairs: list[tuple[str, str]] = []
    for value in values:
        text = value.strip()
        if text.startswith("{"):
            items = _json_option(text, dict, option="--review-hash")
            pairs.extend((str(k), str(v).strip()) for k, v in items.items())
            continue
        for part in (p.strip() for p in text.split(",")):
            if not part:
                continue
            if "=" in part:
                month_text, _, digest = part.partition("=")
                pairs.append((month_text, digest.strip()))
            elif len(months) == 1:
                pairs.append((str(months[0]), part))
            else:
                raise ConfigError(
                    f"--review-hash {part!r} names no month; give YYYY-MM=<hash> for {len(months)} months"
                )
    hashes: dict[Month, str] = {}
    for month_text, digest in pairs:
        month = Month.parse(month_text)
        if not _SHA256.match(digest):
            raise ConfigError(f"--review-hash of {month}: {digest!r} is not a sha256 (64 lowercase hex digits)")
        if hashes.setdefault(month, digest) != digest:
            raise ConfigError(f"--review-hash names two reviews for {month}: {hashes[month]} and {digest}")
    return hashes


REVIEW_HASH_OPTION = click.option(
    "--review-hash",
    "review_hash",
    multiple=True,
    help="The review each month must use, as `validate-review` printed it: YYYY-MM=<sha256> (repeatable), "
    'a JSON object {"YYYY-MM": "<sha256>"}, or a bare sha256 for one month; another current review exits 3. '
    "Default: each month's current review.",
)


def _versions(values: tuple[str, ...]) -> tuple[str, ...]:
    from eval_runner.evaluation.inputs import normalise_version

    return tuple(normalise_version(part) for part in _split(values, option="--version-label"))


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
@REVIEW_HASH_OPTION
@PLOTS_DIR_OPTION
@click.pass_obj
def evaluate(
    runtime: Runtime,
    month: str,
    version_label: str,
    image_digest: str,
    review_hash: tuple[str, ...],
    plots_dir: Path | None,
) -> None:
    """Evaluate the battery-lib installed here on the approved samples of a month's current review.

    Writes predictions.parquet and metrics.json under capacity/evaluations/<month>/version=<v>/
    dataset=<hash>/review=<hash>/ and logs one MLflow run. Run it in the runner image of the version
    (or an environment with exactly that version).
    """
    from eval_runner.evaluation import evaluate as step
    from eval_runner.library import load_predictor

    the_month = Month.parse(month)
    expected = _review_hashes(review_hash, (the_month,)).get(the_month)
    predictor = load_predictor()
    params = step.EvaluateParams(the_month, version_label, image_digest=image_digest, review_hash=expected)
    out = step.run(params, store=runtime.store(), tracker=_tracker(runtime, plots_dir), predictor=predictor)
    overall = out.record.metrics["overall"]
    _echo_json(
        {
            "month": out.record.month,
            "library_version": out.record.library_version,
            "dataset_hash": out.record.dataset_hash,
            "review_hash": out.record.review_csv_sha256,
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
@REVIEW_HASH_OPTION
@PLOTS_DIR_OPTION
@click.pass_obj
def compare(
    runtime: Runtime,
    months: tuple[str, ...],
    versions: tuple[str, ...],
    review_hash: tuple[str, ...],
    plots_dir: Path | None,
) -> None:
    """Compare evaluated versions: leaderboard, per-segment table, error CDFs, logged as one MLflow run.

    Reads only evaluations of each month's current dataset and review (or the review hash given).
    """
    from eval_runner.evaluation import compare as step

    the_months = _months(months)
    params = step.CompareParams(the_months, _versions(versions), _review_hashes(review_hash, the_months))
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
@click.option("--baseline", default="champion", show_default=True, help="A version, or 'champion' (of record).")
@click.option("--month", "--months", "months", multiple=True, required=True, help="Month(s) judged together, YYYY-MM.")
@click.option(
    "--release-id",
    default=None,
    help="Names capacity/decisions/<release-id>/ (default: from candidate, months, policy).",
)
@click.option("--promote/--no-promote", default=False, show_default=True, help="Promote the candidate on a pass.")
@click.option("--output-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Also write verdict.txt and decision.json here (Argo output parameters).")  # fmt: skip
@REVIEW_HASH_OPTION
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
    review_hash: tuple[str, ...],
) -> None:
    """Judge a candidate against the baseline under a policy; write decision.json; promote on a pass.

    Judges only evaluations of each month's current dataset and review (or the review hash given) and
    names the review hash per month in decision.json.
    """
    from eval_runner.evaluation import gate as step

    try:
        policy_text = policy_path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"gate policy {policy_path}: cannot be read ({error.strerror})") from error
    the_months = _months(months)
    review_hashes = _review_hashes(review_hash, the_months)
    unknown = sorted(str(m) for m in set(review_hashes) - set(the_months))
    if unknown:
        raise ConfigError(f"--review-hash names month(s) {', '.join(unknown)} that are not gated")
    params = step.GateParams(
        months=the_months,
        candidate=candidate,
        baseline=baseline,
        policy_text=policy_text,
        policy_name=policy_path.name,
        release_id=release_id,
        promote=promote,
        model=runtime.mlflow_settings().registered_model,
        review_hashes=review_hashes,
    )
    out = step.run(params, store=runtime.store(), tracker=runtime.tracker())
    decision = out.decision
    for reason in decision.reasons:
        click.echo(reason, err=True)
    if out.promoted is not None:
        click.echo(f"champion -> {out.promoted.library_version} (generation {out.promoted.generation})", err=True)
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
            "reviews": {month: inputs.review_csv_sha256 for month, inputs in sorted(decision.hashes.items())},
            "reused": out.reused,
            "promoted": out.promoted.library_version if out.promoted else None,
            "champion_generation": out.promoted.generation if out.promoted else None,
        }
    )


@click.group(name="evaluations")
def evaluations() -> None:
    """Inspect published evaluations."""


@evaluations.command(name="list")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.pass_obj
def list_evaluations(runtime: Runtime, fmt: str) -> None:
    """Show the month x version matrix: which evaluations are current, stale or incomparable.

    Current: of the month's current review and dataset. Incomparable: of a dataset built by another
    extractor schema version.
    """
    from eval_runner.dataset.reader import dataset_builds
    from eval_runner.evaluation.lineage import month_lineage
    from eval_runner.evaluation.matrix import evaluations_frame, matrix
    from eval_runner.evaluation.records import list_records

    store = runtime.store()
    records = list_records(store)
    current: dict[str, tuple[str, str] | None] = {}
    dataset_schemas: dict[str, int] = {}
    for month in sorted({record.month for record in records}):
        builds = dataset_builds(store, Month.parse(month))
        dataset_schemas |= {manifest.content_hash: version for version, manifest in builds.items()}
        try:
            lineage = month_lineage(store, Month.parse(month))
        except DataError as error:  # no valid current review or dataset build: nothing of the month is current
            click.echo(f"{month}: nothing is current ({error})", err=True)
            current[month] = None
        else:
            current[month] = (lineage.dataset_hash, lineage.review_hash)
    if fmt == "json":
        _echo_json(evaluations_frame(records, current, dataset_schemas).to_dicts())
        return
    click.echo(_table(matrix(records, current, dataset_schemas)))
    click.echo(
        "cell: median abs runtime error (days) @ dataset/review hash of the current evaluation; "
        "'+N stale' = older evaluations kept; 'stale:' = evaluated only on an older review or dataset; "
        "'incomparable (schema vN):' = evaluated only on a dataset built by another extractor schema version; "
        "'-' = not evaluated"
    )


@evaluations.command(name="labels")
@click.option("--candidate", required=True, help="The version a release wants to promote.")
@click.option("--baseline", default="champion", show_default=True, help="A version, or 'champion' (of record).")
@click.pass_obj
def release_labels(runtime: Runtime, candidate: str, baseline: str) -> None:
    """Print the JSON list of labels a release evaluates: the candidate, then the version it is judged against.

    Evaluating both on the release's months lets the comparison and the gate work on months the
    baseline was never evaluated on; evaluations that exist are reused, not redone.
    """
    from eval_runner.evaluation import champion
    from eval_runner.evaluation.gate import CHAMPION, resolve_baseline
    from eval_runner.evaluation.inputs import normalise_version

    model = runtime.mlflow_settings().registered_model
    champion_now = champion.current(runtime.store(), model) if baseline == CHAMPION else None
    version = resolve_baseline(baseline, champion_now, model=model)
    labels = [candidate] if normalise_version(version) == normalise_version(candidate) else [candidate, version]
    click.echo(json.dumps(labels))


@click.group(name="champion")
def champion_group() -> None:
    """The champion of record (capacity/champion/ in S3), which MLflow's alias mirrors."""


@champion_group.command(name="show")
@click.option("--history", is_flag=True, help="Every generation, oldest first, not only the current one.")
@click.pass_obj
def champion_show(runtime: Runtime, history: bool) -> None:
    """Print the champion of record as JSON (with --history, the list of every generation).

    Each generation printed is checked to chain onto the one before; a broken chain exits 3.
    """
    from eval_runner.evaluation import champion

    store, model = runtime.store(), runtime.mlflow_settings().registered_model
    if history:
        _echo_json([record.model_dump(mode="json") for record in champion.history(store, model)])
        return
    record = champion.current(store, model)
    if record is None:
        raise DataError(f"registered model {model!r} has no champion of record yet")
    _echo_json(record.model_dump(mode="json"))


# What cli.py registers from this module (top-level commands and groups).
commands: tuple[click.Command, ...] = (evaluate, compare, gate, evaluations, champion_group)
