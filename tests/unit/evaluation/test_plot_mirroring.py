"""--plots-dir: the PNGs a step logs to MLflow also land where Argo collects them for its UI."""

from __future__ import annotations

from pathlib import Path

from eval_runner.tracking import PlotMirroringTracker
from tests.fakes import FakeTracker


def test_plots_are_mirrored_and_other_artifacts_are_not(fake_tracker: FakeTracker, tmp_path: Path) -> None:
    tracker = PlotMirroringTracker(fake_tracker, tmp_path / "plots")
    with tracker.run("evaluations", "2026-04 0.9.0") as run:
        run.log_artifacts({"plots/errors.png": b"png-bytes", "plots/cdf/runtime.png": b"cdf", "metrics.json": b"{}"})
        run.log_batch(params={"month": "2026-04"})
    assert (tmp_path / "plots" / "errors.png").read_bytes() == b"png-bytes"
    assert (tmp_path / "plots" / "cdf" / "runtime.png").read_bytes() == b"cdf"
    assert sorted(p.name for p in (tmp_path / "plots").rglob("*") if p.is_file()) == ["errors.png", "runtime.png"]
    # MLflow (here the fake) still receives everything: it stays the place of record.
    ((_, _, _, logged),) = fake_tracker.runs
    assert set(logged.artifacts) == {"plots/errors.png", "plots/cdf/runtime.png", "metrics.json"}
    assert logged.params == {"month": "2026-04"}
    assert tracker.find_runs("evaluations", tags={})[0].run_id == logged.run_id
