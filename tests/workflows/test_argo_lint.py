"""`argo lint --offline` accepts every rendered file (all at once, so templateRefs resolve)."""

from __future__ import annotations

import subprocess

import pytest

from tests.workflows.conftest import argo_binary
from workflows import render


def test_argo_lint_offline_accepts_every_file() -> None:
    argo = argo_binary()
    if argo is None:
        pytest.skip(
            "argo CLI not found (set ARGO_BIN, or build it with the cluster: "
            "$FLEET_EVAL_CACHE/bin/argo-v4.0.5/argo comes from scripts/build/components.sh)"
        )
    files = sorted(str(p) for p in (render.CHART_FILES / render.WORKFLOWS_DIR).glob("*.yaml"))
    assert len(files) == len(render.BUILDERS)
    done = subprocess.run(
        [str(argo), "lint", "--offline", "--output", "simple", *files],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, f"argo lint failed:\n{done.stdout}\n{done.stderr}"
