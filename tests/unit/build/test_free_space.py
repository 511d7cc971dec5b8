"""scripts/build/lib.sh's require_free_space: `make cluster` stops up front when the disk is nearly full."""

from __future__ import annotations

import subprocess
from pathlib import Path

LIB = Path(__file__).resolve().parents[3] / "scripts/build/lib.sh"


def _require(tmp_path: Path, min_free_gb: int) -> subprocess.CompletedProcess[str]:
    script = f'source "{LIB}"; require_free_space "{tmp_path}" /no/such/dir; echo went-on'
    return subprocess.run(
        ["/bin/bash", "-c", script],
        env={
            "PATH": "/usr/bin:/bin",
            "FLEET_EVAL_CACHE": str(tmp_path / "cache"),
            "FLEET_EVAL_MIN_FREE_GB": str(min_free_gb),
        },
        capture_output=True,
        text=True,
        check=False,
    )


def test_enough_free_space_lets_the_build_go_on(tmp_path: Path) -> None:
    done = _require(tmp_path, 0)
    assert done.returncode == 0 and done.stdout.strip() == "went-on", done.stderr


def test_too_little_free_space_stops_the_build_and_says_where_and_how_much(tmp_path: Path) -> None:
    done = _require(tmp_path, 10**9)
    assert done.returncode == 1 and "went-on" not in done.stdout
    assert f"free on the filesystem of {tmp_path}; builds need 1000000000 GB (FLEET_EVAL_MIN_FREE_GB)" in done.stderr
    assert "reclaim with: docker image prune" in done.stderr
