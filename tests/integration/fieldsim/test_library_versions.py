"""The demo library versions, installed from the private index into their own venvs."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest
from fieldsim import SimConfig, simulate
from fieldsim.library_input import month_dataset

from eval_runner.contracts import LIBRARY_SAMPLE_COLUMNS
from eval_runner.parquet import frame_to_parquet
from tests.fixtures.library_envs import index_arguments
from tests.services.package_index import PackageIndex

# Runs inside a library venv: generation 1 gets the latest reading per sample (as the eval_runner
# adapter feeds it), generation 2 the batch.
_DRIVER = r"""
import sys
import pyarrow as pa, pyarrow.parquet as pq, pyarrow.compute as pc
import battery_lib
samples, series, out = pq.read_table(sys.argv[1]), pq.read_table(sys.argv[2]), sys.argv[3]
if getattr(battery_lib, "API_GENERATION", 1) == 2:
    pq.write_table(battery_lib.Predictor().predict(samples, series), out)
else:
    latest = {}
    for sid, mv, t in zip(*(series.column(c).to_pylist() for c in ("sample_id", "battery_mv", "temperature_c"))):
        if mv is not None:
            latest[sid] = (mv, t)
    rows = {"sample_id": [], "capacity_mah_p50": [], "runtime_days_p50": []}
    ids, nominals = samples.column("sample_id").to_pylist(), samples.column("nominal_capacity_mah").to_pylist()
    for sid, nominal in zip(ids, nominals):
        mv, t = latest.get(sid, (0.0, 20.0))
        est = battery_lib.estimate(voltage_mv=float(mv), temperature_c=float(t), nominal_mah=nominal)
        rows["sample_id"].append(sid)
        rows["capacity_mah_p50"].append(est.remaining_mah)
        rows["runtime_days_p50"].append(est.runtime_days)
    pq.write_table(pa.table(rows), out)
print(battery_lib.__version__)
"""


def _uv_compile(index: PackageIndex, requirements: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["uv", "pip", "compile", "-", "--python-version", "3.11", "--no-header", *index_arguments(index)],
        input="\n".join(requirements),
        capture_output=True,
        text=True,
        check=False,
    )


def test_incompatible_versions_fail_at_resolution(package_index: PackageIndex) -> None:
    both = _uv_compile(package_index, ["battery-lib==0.6.0", "battery-lib==0.9.0"])
    assert both.returncode != 0
    assert "No solution found" in both.stderr
    pins = _uv_compile(package_index, ["battery-lib==0.6.0", "numpy>=2"])
    assert pins.returncode != 0
    assert "numpy" in pins.stderr
    alone = _uv_compile(package_index, ["battery-lib==0.9.0"])
    assert alone.returncode == 0, alone.stderr
    assert "battery-lib==0.9.0" in alone.stdout


def test_git_ref_resolves_to_the_tagged_commit(package_index: PackageIndex) -> None:
    result = _uv_compile(package_index, [package_index.git_url("v0.8.0")])
    assert result.returncode == 0, result.stderr
    assert package_index.git_commits["0.8.0"] in result.stdout


def _run(python: Path, samples: Path, series: Path, out: Path) -> pl.DataFrame:
    done = subprocess.run(
        [str(python), "-c", _DRIVER, str(samples), str(series), str(out)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return pl.read_parquet(out)


@pytest.mark.slow
def test_versions_rank_by_median_absolute_runtime_error(library_env: Callable[[str], Path], tmp_path: Path) -> None:
    fleet = simulate(SimConfig.for_months(seed=7, devices=400, start="2026-04", months=1))
    dataset, series = month_dataset(fleet, "2026-04")
    dataset = dataset.filter(~pl.col("missing_capacity_test"))
    series = series.filter(pl.col("sample_id").is_in(dataset["sample_id"].implode()))
    samples_path, series_path = tmp_path / "samples.parquet", tmp_path / "series.parquet"
    samples_path.write_bytes(frame_to_parquet(dataset.select(LIBRARY_SAMPLE_COLUMNS)))
    series_path.write_bytes(frame_to_parquet(series))
    errors: dict[str, float] = {}
    by_revision: dict[str, dict[str, float]] = {}
    for version in ("0.6.0", "0.8.0", "0.9.0", "0.10.0"):
        predictions = _run(library_env(version), samples_path, series_path, tmp_path / f"{version}.parquet")
        assert predictions["sample_id"].to_list() == dataset["sample_id"].to_list()
        scored = dataset.join(predictions, on="sample_id").with_columns(
            (pl.col("runtime_days_p50") - pl.col("true_runtime_days")).abs().alias("error")
        )
        errors[version] = float(scored.select(pl.col("error").median()).item())
        segment = scored.group_by("hardware_revision").agg(pl.col("error").median())
        by_revision[version] = dict(zip(segment["hardware_revision"], segment["error"], strict=True))
    assert errors["0.6.0"] > errors["0.8.0"] > errors["0.9.0"], errors
    # The release candidate's trap: on rev C it is clearly worse than 0.9.
    assert by_revision["0.10.0"]["C"] > 1.5 * by_revision["0.9.0"]["C"], by_revision
    assert by_revision["0.10.0"]["B"] < by_revision["0.9.0"]["B"], by_revision


def test_git_label_installs_that_commit(library_env: Callable[[str], Path]) -> None:
    python = library_env("git:v0.8.0")
    version = subprocess.run(
        [str(python), "-c", "import battery_lib, eval_runner; print(battery_lib.__version__)"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert version.stdout.strip() == "0.8.0"
