"""Step: compare versions on the same reviewed months and log a comparison run to MLflow."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from eval_runner.errors import ConfigError
from eval_runner.evaluation.comparison import leaderboard, segment_table
from eval_runner.evaluation.inputs import load_evaluations
from eval_runner.evaluation.lineage import months_lineage
from eval_runner.evaluation.plots import cdf_png, segment_bars_png
from eval_runner.hashing import sha256_bytes
from eval_runner.keys import Month
from eval_runner.storage import ObjectStore
from eval_runner.tracking import Tracker

EXPERIMENT = "comparisons"


@dataclass(frozen=True)
class CompareParams:
    """Months to pool and versions to compare (the first one is the reference for segment changes)."""

    months: tuple[Month, ...]
    versions: tuple[str, ...]
    # The review each month must be compared on (from validate-review); a month not named: its current review.
    review_hashes: Mapping[Month, str] = field(default_factory=dict)


@dataclass(frozen=True)
class CompareOutput:
    """The leaderboard, the per-segment table and the MLflow run they were logged to."""

    leaderboard: pl.DataFrame
    segments: pl.DataFrame
    run_id: str
    reused: bool


def _csv(frame: pl.DataFrame) -> bytes:
    return frame.write_csv(float_precision=6).encode()


def run(params: CompareParams, *, store: ObjectStore, tracker: Tracker) -> CompareOutput:
    """Compare ``params.versions`` on ``params.months``' current reviews; the same comparison logs only one run."""
    if len(params.versions) < 2 or len(set(params.versions)) != len(params.versions):
        raise ConfigError(f"compare needs at least two distinct versions, got {list(params.versions)}")
    if not params.months:
        raise ConfigError("compare needs at least one month")
    lineage = months_lineage(store, params.months, params.review_hashes)
    loaded = load_evaluations(store, lineage, params.versions)
    errors = {version: item.errors for version, item in loaded.items()}
    board = leaderboard(errors)
    segments = segment_table(errors, reference=params.versions[0])
    months = [str(m) for m in params.months]
    inputs = {
        "months": months,
        "versions": list(params.versions),
        "reviews": {str(m): item.review_hash for m, item in lineage.items()},
        "predictions": {v: [r.predictions.sha256 for r in item.records] for v, item in loaded.items()},
    }
    inputs_bytes = json.dumps(inputs, sort_keys=True, indent=2).encode()
    tags = {"kind": "comparison", "inputs_sha256": sha256_bytes(inputs_bytes)}
    found = tracker.find_runs(EXPERIMENT, tags=tags)
    if found:
        return CompareOutput(board, segments, found[0].run_id, reused=True)
    title = f"{', '.join(params.versions)} on {', '.join(months)}"
    artifacts = {"inputs.json": inputs_bytes, "leaderboard.csv": _csv(board), "segments.csv": _csv(segments)}
    for column, unit in (("runtime_abs_error", "days"), ("capacity_abs_error", "mAh"), ("runtime_rel_error", "")):
        curves = {v: e.get_column(column).drop_nulls().to_numpy().astype(np.float64) for v, e in errors.items()}
        label = column.replace("_", " ") + (f" ({unit})" if unit else "")
        artifacts[f"plots/cdf_{column}.png"] = cdf_png(curves, xlabel=label, title=f"CDF: {title}")
    artifacts["plots/segments_runtime_abs_error_median.png"] = segment_bars_png(
        segments, value="runtime_abs_error_median", title=f"median abs runtime error: {title}"
    )
    with tracker.run(EXPERIMENT, f"compare {title}", tags=tags) as tracked:
        tracked.log_batch(
            params={"months": ",".join(months), "versions": ",".join(params.versions)},
            metrics={
                f"{row['version']}.{name}": float(row[name])
                for row in board.iter_rows(named=True)
                for name in ("runtime_abs_error_median", "capacity_abs_error_median", "rank")
                if row[name] is not None
            },
        )
        tracked.log_artifacts(artifacts)
        run_id = tracked.run_id
    return CompareOutput(board, segments, run_id, reused=False)
