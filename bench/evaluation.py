"""Benchmark `eval-runner evaluate`: battery-lib's own compute against the harness, phase by phase.

For each size, simulates a month with fieldsim (30 days of hourly series per sample), publishes it with
a review to a real local S3 (versitygw) and runs the evaluate step against a real MLflow server with
battery-lib 0.9.0 (generation 2) from demo/battery-lib. The split comes from the step's own phase timer
(EvaluateOutput.phases), with one refinement: the library is ``battery_lib.Predictor.predict`` itself,
timed here, and the rest of the predict phase (the adapter's input shaping and Arrow conversions) is
reported as ``adapter``. The harness is every phase but the library: read (manifest, dataset, series,
review, the published-record lookup), adapter, metrics (errors, summary, Parquet encode), publish (S3),
plot (matplotlib) and track (MLflow: the run, its batch, its artifact upload). Each figure is also given
as a ratio against the library in the same run; the goal is a harness under 10 % of it.
Wall and CPU time are both reported: the machine is shared, and CPU time (of this process, all threads)
is steadier but does not count the servers' work, which is most of track. The datasets are simulated
first, then the servers and matplotlib are warmed up (throwaway runs with a plot until WARM_UP_S after
the servers started), so one-off start-up is not charged. Each size runs REPEATS times on its own copy
of the dataset (a fresh bucket and experiment, so nothing is reused); every figure is the median over
the repeats. Figures go to stdout and to bench/results/evaluation.{json,md}.
Usage: python bench/evaluation.py [SAMPLES ...]  (default 1000 10000).
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LIBRARY = REPO / "demo" / "battery-lib" / "0.9.0"
RESULTS = REPO / "bench" / "results"
# The repo (eval_runner, tests) and battery-lib 0.9.0 from source are importable without installing them.
sys.path[:] = [str(REPO), str(LIBRARY), *sys.path]

import battery_lib  # type: ignore[import-not-found,unused-ignore]  # noqa: E402  (imports follow the path set-up)
import numpy as np  # noqa: E402
import polars as pl  # noqa: E402
from fieldsim import SimConfig, simulate  # type: ignore[import-untyped,unused-ignore]  # noqa: E402
from fieldsim.library_input import month_dataset  # type: ignore[import-untyped,unused-ignore]  # noqa: E402

from eval_runner.dataset.manifest import DatasetManifest, SourceFingerprint  # noqa: E402
from eval_runner.dataset.publish import encode_dataset, publish_dataset  # noqa: E402
from eval_runner.dataset.shape import EVENTS_SCHEMA  # noqa: E402
from eval_runner.evaluation import evaluate  # noqa: E402
from eval_runner.evaluation.plots import error_distribution_png  # noqa: E402
from eval_runner.keys import Month  # noqa: E402
from eval_runner.library import load_predictor  # noqa: E402
from eval_runner.review.reader import save_review  # noqa: E402
from eval_runner.settings import MlflowSettings  # noqa: E402
from eval_runner.storage import S3ObjectStore  # noqa: E402
from eval_runner.timing import Phases  # noqa: E402
from eval_runner.tracking import MlflowTracker  # noqa: E402
from tests.services.mlflow import start_mlflow  # noqa: E402
from tests.services.s3 import S3Server, start_s3  # noqa: E402

MONTH = Month(2026, 4)
REPEATS = 3
LIBRARY_PHASE = "library"
GOAL = 0.10  # harness / library
WARM_UP_S = 150.0
# The columns error_distribution_png reads, for the warm-up plot.
_ERRORS = {
    "runtime_abs_error": pl.Float64(),
    "capacity_abs_error": pl.Float64(),
    "hardware_revision": pl.String(),
    "true_runtime_days": pl.Float64(),
    "runtime_days_p50": pl.Float64(),
}


def _month(samples: int) -> tuple[dict[str, bytes], DatasetManifest, list[str]]:
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
    print(f"dataset: {dataset.height} samples, {series.height} series rows")
    return objects, manifest, dataset.get_column("sample_id").to_list()


def _reviewed_copy(s3: S3Server, month: tuple[dict[str, bytes], DatasetManifest, list[str]]) -> S3ObjectStore:
    objects, manifest, ids = month
    store = S3ObjectStore.from_settings(s3.settings(f"bench-{uuid.uuid4().hex[:8]}"))
    store.ensure_bucket()
    publish_dataset(store, objects, manifest)
    save_review(store, MONTH, dict.fromkeys(ids, True), reviewer="bench", reviewed_at=datetime(2026, 5, 2, tzinfo=UTC),
                dataset_hash=manifest.content_hash, sample_ids=ids)  # fmt: skip
    return store


class _LibraryClock:
    """Wall and CPU seconds inside ``battery_lib.Predictor.predict``, wrapped at the class."""

    def __init__(self) -> None:
        self.wall = self.cpu = 0.0
        inner = battery_lib.Predictor.predict

        def timed(predictor: object, samples: object, series: object) -> object:
            wall, cpu = time.perf_counter(), time.process_time()
            try:
                return inner(predictor, samples, series)
            finally:
                self.wall += time.perf_counter() - wall
                self.cpu += time.process_time() - cpu

        battery_lib.Predictor.predict = timed

    def split(self, phases: Phases) -> Phases:
        """``phases`` with predict split into library and adapter; resets the clock for the next run."""
        out = Phases()
        for seconds, ours, library in ((out.wall, phases.wall, self.wall), (out.cpu, phases.cpu, self.cpu)):
            for name, value in ours.items():
                if name == "predict":
                    seconds[LIBRARY_PHASE], seconds["adapter"] = library, value - library
                else:
                    seconds[name] = value
        self.wall = self.cpu = 0.0
        return out


@dataclass(frozen=True)
class Figures:
    """One size: seconds per phase (medians over the repeats) and each as a ratio against the library."""

    samples: int
    repeats: int
    wall_s: dict[str, float]
    cpu_s: dict[str, float]
    wall_vs_library: dict[str, float]
    cpu_vs_library: dict[str, float]

    @classmethod
    def of(cls, samples: int, runs: list[Phases]) -> Figures:
        """Medians over ``runs``, with the harness (every phase but the library) added up."""
        wall = {name: statistics.median(run.wall[name] for run in runs) for name in runs[0].wall}
        cpu = {name: statistics.median(run.cpu[name] for run in runs) for name in runs[0].cpu}
        for seconds in (wall, cpu):
            seconds["harness"] = sum(value for name, value in seconds.items() if name != LIBRARY_PHASE)
        return cls(
            samples=samples,
            repeats=len(runs),
            wall_s={name: round(value, 4) for name, value in wall.items()},
            cpu_s={name: round(value, 4) for name, value in cpu.items()},
            wall_vs_library={name: round(value / wall[LIBRARY_PHASE], 4) for name, value in wall.items()},
            cpu_vs_library={name: round(value / cpu[LIBRARY_PHASE], 4) for name, value in cpu.items()},
        )

    def table(self) -> str:
        """The split as a Markdown table, under a line with the harness share and the verdict."""
        wall, cpu = self.wall_vs_library["harness"], self.cpu_vs_library["harness"]
        verdict = "met" if max(wall, cpu) < GOAL else "not met"
        rows = "".join(
            f"| {name} | {self.wall_s[name]:.3f} | {self.wall_vs_library[name]:.1%} | {self.cpu_s[name]:.3f} "
            f"| {self.cpu_vs_library[name]:.1%} |\n"
            for name in self.wall_s
        )
        return (
            f"battery-lib 0.9.0 on {self.samples:,} samples, median of {self.repeats} runs: the harness is "
            f"{wall:.1%} of the library's wall time and {cpu:.1%} of its CPU time (goal < {GOAL:.0%}: {verdict})\n\n"
            "| phase | wall (s) | wall / library | cpu (s) | cpu / library |\n|---|---:|---:|---:|---:|\n" + rows
        )


def _fresh_experiment(tracking_uri: str) -> MlflowSettings:
    """Settings for an experiment of its own, so each repeat is a first evaluation.

    The experiment is created beforehand, as in production, where it exists after the first evaluation ever.
    """
    settings = MlflowSettings(tracking_uri=tracking_uri, experiment_prefix=f"bench-{uuid.uuid4().hex[:8]}")
    MlflowTracker.from_settings(settings).experiment_id(evaluate.EXPERIMENT)
    return settings


def _warm_up(tracking_uri: str, *, since: float) -> None:
    """Every kind of request a step makes, and a plot, over and over until WARM_UP_S after ``since``.

    An MLflow server answers /health long before it is done starting: on this machine a run's requests
    took 17 s right after start-up and settled at about 0.2 s after some 100 s.
    """
    rng = np.random.default_rng(0)
    errors = pl.DataFrame(
        {name: rng.gamma(2.0, 100.0, 1000) for name, dtype in _ERRORS.items() if dtype == pl.Float64()}
    ).with_columns(hardware_revision=pl.Series(rng.choice(["B", "C"], 1000)))
    while True:
        tracker = MlflowTracker.from_settings(_fresh_experiment(tracking_uri))
        tracker.find_runs(evaluate.EXPERIMENT, tags={"kind": "warm-up"})
        with tracker.run(evaluate.EXPERIMENT, "warm-up") as warm:
            warm.log_batch(params={"warm": "up"}, metrics={"warm": 1.0})
            warm.log_artifacts({"plots/warm.png": error_distribution_png(errors, title="warm-up")})
        if time.perf_counter() - since >= WARM_UP_S:
            return
        time.sleep(5)


def main(sizes: list[int]) -> None:
    """Run the benchmark for each size and print the figures."""
    root = Path(tempfile.mkdtemp(prefix="bench-evaluation-"))
    s3 = start_s3(root / "s3")
    mlflow = start_mlflow(root / "mlflow", s3)
    started = time.perf_counter()
    results: list[Figures] = []
    try:
        months = {samples: _month(samples) for samples in sizes}
        _warm_up(mlflow.tracking_uri, since=started)
        clock = _LibraryClock()
        predictor = load_predictor()
        for samples, month in months.items():
            runs: list[Phases] = []
            for _ in range(REPEATS):
                store = _reviewed_copy(s3, month)
                tracker = MlflowTracker.from_settings(_fresh_experiment(mlflow.tracking_uri))  # new, as in a pod
                params = evaluate.EvaluateParams(MONTH, predictor.library_version)
                out = evaluate.run(params, store=store, tracker=tracker, predictor=predictor)
                runs.append(clock.split(out.phases))
            figures = Figures.of(samples, runs)
            print(figures.table(), flush=True)
            results.append(figures)
    finally:
        mlflow.stop()
        s3.stop()
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "evaluation.json").write_text(json.dumps([asdict(f) for f in results], indent=2) + "\n")
    (RESULTS / "evaluation.md").write_text("\n".join(figures.table() for figures in results))


if __name__ == "__main__":
    main([int(arg) for arg in sys.argv[1:]] or [1000, 10000])
