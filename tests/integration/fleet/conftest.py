"""Shared helpers of the fleet integration tests: run eval-runner as a process against the real S3."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from eval_runner.fleet.local import ENTRY
from eval_runner.settings import S3Settings

STUB_LIB = Path(__file__).parent / "stub_lib"
REPO = Path(__file__).parents[3]


def cli_env(s3: S3Settings, **extra: str) -> dict[str, str]:
    """The environment of an eval-runner process: S3 settings, the stub library on PYTHONPATH."""
    env = dict(os.environ)
    env.update(
        FLEET_EVAL_S3_ENDPOINT=s3.endpoint,
        FLEET_EVAL_S3_ACCESS_KEY=s3.access_key.get_secret_value(),
        FLEET_EVAL_S3_SECRET_KEY=s3.secret_key.get_secret_value(),
        FLEET_EVAL_S3_BUCKET=s3.bucket,
        PYTHONPATH=os.pathsep.join([str(STUB_LIB), str(REPO), env.get("PYTHONPATH", "")]),
    )
    env.update(extra)
    return env


def eval_runner_command(*args: str) -> list[str]:
    """The command line of one eval-runner invocation in this interpreter."""
    return [sys.executable, "-c", ENTRY, *args]


def run_cli(env: dict[str, str], *args: str, expect: int = 0) -> Any:
    """Run eval-runner; check its exit code; return its stdout parsed as JSON (or None when empty)."""
    done = subprocess.run(eval_runner_command(*args), env=env, capture_output=True, text=True, check=False)
    assert done.returncode == expect, f"exit {done.returncode}: {done.stderr[-2000:]}"
    return json.loads(done.stdout) if done.stdout.strip() else None
