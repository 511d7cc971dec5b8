"""`argo lint --offline` accepts every rendered file (all at once, so templateRefs resolve)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.workflows.tools import argo_binary
from workflows import render

BROKEN = """apiVersion: argoproj.io/v1alpha1
kind: WorkflowTemplate
metadata: {name: broken}
spec:
  entrypoint: main
  templates:
    - name: main
      dag:
        tasks:
          - {name: a, template: does-not-exist}
"""


@pytest.fixture(scope="module")
def argo() -> Path:
    found = argo_binary()
    if found is None:
        pytest.skip(
            "argo CLI not found: set ARGO_BIN or let the cluster build put it in $FLEET_EVAL_CACHE/bin/argo-v*/argo "
            "(scripts/build/components.sh argo)"
        )
    return found


def lint(argo: Path, *files: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(argo), "lint", "--offline", "--output", "simple", *files],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_argo_lint_offline_accepts_every_file(argo: Path) -> None:
    files = sorted(str(p) for p in (render.CHART_FILES / render.WORKFLOWS_DIR).glob("*.yaml"))
    assert len(files) == len(render.BUILDERS)
    done = lint(argo, *files)
    assert done.returncode == 0, f"argo lint failed:\n{done.stdout}\n{done.stderr}"


def test_argo_lint_offline_rejects_a_broken_template(argo: Path, tmp_path: Path) -> None:
    # The control: the linter really validates, so the test above can fail.
    broken = tmp_path / "broken.yaml"
    broken.write_text(BROKEN)
    done = lint(argo, str(broken))
    assert done.returncode != 0
    assert "does-not-exist" in done.stdout + done.stderr
