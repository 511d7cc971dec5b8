"""MLflow's telemetry client stays off in every process that imports eval_runner (see eval_runner/__init__.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

_CLIENT_STARTED = "from mlflow.telemetry.client import get_telemetry_client; print(get_telemetry_client() is not None)"


def _in_a_pod_like_env(code: str, home: Path) -> str:
    """Run ``code`` in a fresh interpreter with a pod's bare environment.

    No CI or pytest variables: MLflow takes either as a reason to keep its telemetry off by itself.
    """
    env = {"PATH": "/usr/bin:/bin", "HOME": str(home)}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_mlflow_alone_starts_its_telemetry_client_in_a_bare_environment(tmp_path: Path) -> None:
    # The control: if MLflow stopped doing this, the test below would pass for the wrong reason.
    assert _in_a_pod_like_env(f"import mlflow; {_CLIENT_STARTED}", tmp_path) == "True"


def test_importing_the_tracker_leaves_telemetry_off(tmp_path: Path) -> None:
    assert _in_a_pod_like_env(f"import eval_runner.tracking; {_CLIENT_STARTED}", tmp_path) == "False"
