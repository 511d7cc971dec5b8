"""`argo lint --offline` accepts the release Workflows the chart renders, with the templates they use."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from tests.chart.conftest import CHART, Template, by_kind
from tests.workflows.tools import argo_binary
from workflows import render


def test_release_workflows_lint(template: Template, tmp_path: Path) -> None:
    argo = argo_binary()
    if argo is None:
        pytest.skip("argo CLI not found: set ARGO_BIN or let the cluster build put it in $FLEET_EVAL_CACHE/bin")
    workflows = by_kind(template([CHART / "ci" / "release-values.yaml"]), "Workflow")
    assert workflows
    target = tmp_path / "releases.yaml"
    target.write_text(yaml.safe_dump_all(workflows))
    files = [str(p) for p in sorted((render.CHART_FILES / render.WORKFLOWS_DIR).glob("*.yaml"))]
    done = subprocess.run(
        [str(argo), "lint", "--offline", "--output", "simple", *files, str(target)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
