"""Benchmark `eval-runner evaluate`: one version on 1,000 samples, library time vs harness time.

Simulates a month with fieldsim (30 days of hourly series per sample), publishes it with a review to a
real local S3 (versitygw) and runs the evaluate step against a real MLflow server with battery-lib
0.9.0 (generation 2) from demo/battery-lib. Library time is the adapter's predict call; harness time is
everything else the step does: reading and verifying dataset, series and review, metrics, Parquet,
publishing, and MLflow logging with the plot. Wall and CPU time are both reported (the machine is
shared; CPU time of this process is steadier but does not count the servers' work). The servers are
warmed up with one throwaway run first, so a cold server's one-off start-up is not charged.
Usage: python bench/evaluation.py [SAMPLES]  (default 1000).
"""

from __future__ import annotations

import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LIBRARY = REPO / "demo" / "battery-lib" / "0.9.0"
# The repo (eval_runner, tests) and battery-lib 0.9.0 from source are importable without installing them.
sys.path[:] = [str(REPO), str(LIBRARY), *sys.path]

import polars as pl  # noqa: E402  (imports follow the path set-up above)
from fieldsim import SimConfig, simulate  # type: ignore[import-untyped,unused-ignore]  # noqa: E402
from fieldsim.library_input import month_dataset  # type: ignore[import-untyped,unused-ignore]  # noqa: E402

from eval_runner.dataset.manifest import SourceFingerprint  # noqa: E402
from eval_runner.dataset.publish import encode_dataset, publish_dataset  # noqa: E402
from eval_runner.dataset.shape import EVENTS_SCHEMA  # noqa: E402
from eval_runner.evaluation import evaluate  # noqa: E402
from eval_runner.keys import Month  # noqa: E402
from eval_runner.library import Predictor, load_predictor  # noqa: E402
from eval_runner.review.reader import save_review  # noqa: E402
from eval_runner.settings import MlflowSettings  # noqa: E402
from eval_runner.storage import S3ObjectStore  # noqa: E402
from eval_runner.tracking import MlflowTracker  # noqa: E402
from tests.services.mlflow import start_mlflow  # noqa: E402
from tests.services.s3 import start_s3  # noqa: E402

MONTH = Month(2026, 4)


class _Timed:
    """Wraps a Predictor and adds up wall and CPU time spent inside the library."""

    def __init__(self, inner: Predictor) -> None:
        self.inner = inner
        self.library_version = inner.library_version
        self.generation = inner.generation
        self.wall = 0.0
        self.cpu = 0.0

    def predict(self, samples: pl.DataFrame, series: pl.DataFrame) -> pl.DataFrame:
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            return self.inner.predict(samples, series)
        finally:
            self.wall += time.perf_counter() - wall
            self.cpu += time.process_time() - cpu


def _publish(store: S3ObjectStore, samples: int) -> None:
    # Capacity tests are not taken on every device every month: simulate extra devices and keep the
    # first `samples` that have a truth.
    fleet = simulate(SimConfig.for_months(seed=20260401, devices=int(samples * 1.6), start=str(MONTH), months=1))
    dataset, series = month_dataset(fleet, str(MONTH))
    dataset = dataset.filter(pl.col("true_runtime_days").is_not_null()).head(samples)
    series = series.filter(pl.col("sample_id").is_in(dataset.get_column("sample_id").implode()))
    source = SourceFingerprint(rows=dataset.height, sha256="0" * 64)
    objects, manifest = encode_dataset(
        MONTH, dataset, series, pl.DataFrame(schema=EVENTS_SCHEMA), sources={"fieldsim": source},
        suggestion_policy={"max_days_offline": 3.0},
    )  # fmt: skip
    publish_dataset(store, objects, manifest)
    ids = dataset.get_column("sample_id").to_list()
    save_review(store, MONTH, dict.fromkeys(ids, True), reviewer="bench", reviewed_at=datetime(2026, 5, 2, tzinfo=UTC),
                dataset_hash=manifest.content_hash, sample_ids=ids)  # fmt: skip
    print(f"dataset: {dataset.height} samples, {series.height} series rows")


def main(samples: int) -> None:
    """Run the benchmark and print the figures."""
    root = Path(tempfile.mkdtemp(prefix="bench-evaluation-"))
    s3 = start_s3(root / "s3")
    mlflow = start_mlflow(root / "mlflow", s3)
    try:
        store = S3ObjectStore.from_settings(s3.settings(f"bench-{uuid.uuid4().hex[:8]}"))
        store.ensure_bucket()
        tracker = MlflowTracker.from_settings(
            MlflowSettings(tracking_uri=mlflow.tracking_uri, experiment_prefix="bench")
        )
        with tracker.run("evaluations", "warm-up") as warm:
            warm.log_artifact("warm.txt", b"warm")
        _publish(store, samples)
        predictor = _Timed(load_predictor())
        wall, cpu = time.perf_counter(), time.process_time()
        out = evaluate.run(evaluate.EvaluateParams(MONTH, predictor.library_version), store=store, tracker=tracker,
                           predictor=predictor)  # fmt: skip
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    finally:
        mlflow.stop()
        s3.stop()
    harness_wall, harness_cpu = wall - predictor.wall, cpu - predictor.cpu
    print(f"battery-lib {predictor.library_version} on {out.record.n_evaluated} samples")
    print(f"total     wall {wall:7.2f} s   cpu {cpu:7.2f} s")
    print(f"library   wall {predictor.wall:7.2f} s   cpu {predictor.cpu:7.2f} s")
    print(f"harness   wall {harness_wall:7.2f} s   cpu {harness_cpu:7.2f} s")
    print(f"harness share: wall {harness_wall / wall:.1%}, cpu {harness_cpu / cpu:.1%}  (target < 10%)")
    print("harness breakdown (wall, s): " + ", ".join(f"{k} {v:.2f}" for k, v in out.timings.items() if k != "library"))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000)
