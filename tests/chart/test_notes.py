"""NOTES.txt renders and tells the next steps (helm template skips NOTES, so the test renders it itself)."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from tests.chart.conftest import CHART, KUBE_VERSION, run_helm

# A test-only template in a copy of the chart: NOTES.txt evaluated with the release's values.
PROBE = 'notes: {{ tpl (.Files.Get "notes-probe.txt") . | toJson }}\n'


def _notes(helm: Path, tmp_path: Path, *values: Path) -> str:
    chart = tmp_path / "fleet-eval"
    shutil.copytree(CHART, chart)
    shutil.copy(chart / "templates" / "NOTES.txt", chart / "notes-probe.txt")
    (chart / "templates" / "notes-probe.yaml").write_text(PROBE)
    args = ["template", "fe", str(chart), "-n", "argo", "--kube-version", KUBE_VERSION]
    args += ["--show-only", "templates/notes-probe.yaml"]
    for path in values:
        args += ["-f", str(path)]
    done = run_helm(helm, *args)
    assert done.returncode == 0, done.stderr
    notes: str = yaml.safe_load(done.stdout)["notes"]
    return notes


def test_notes_show_next_steps_and_missing_secrets(helm: Path, tmp_path: Path) -> None:
    notes = _notes(helm, tmp_path)
    assert "argo -n argo submit --from workflowtemplate/evaluate" in notes
    assert "kubectl -n argo create secret generic fleet-eval-s3" in notes
    assert "port-forward svc/fe-fleet-eval-mlflow 5000" in notes


def test_notes_name_each_release_workflow(helm: Path, tmp_path: Path) -> None:
    notes = _notes(helm, tmp_path, CHART / "ci" / "release-values.yaml")
    assert notes.count("Release battery-lib") == 2
    assert "argo -n argo get release-battery-lib-0-9-0-" in notes


def test_demo_notes_need_no_secret_commands(helm: Path, tmp_path: Path) -> None:
    notes = _notes(helm, tmp_path, CHART / "ci" / "demo-values.yaml")
    assert "create secret" not in notes
