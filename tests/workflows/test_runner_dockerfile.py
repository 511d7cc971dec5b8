"""The runner Dockerfile and its build context keep the rules the in-cluster BuildKit step relies on."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from workflows import version_images

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "images" / "runner" / "Dockerfile"


def _instructions() -> list[str]:
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def test_the_build_step_passes_every_argument_the_dockerfile_declares() -> None:
    lines = _instructions()
    assert lines[0].startswith("ARG BASE_IMAGE=")
    declared = {line.split()[1].split("=")[0] for line in lines if line.startswith("ARG ")}
    passed = set(re.findall(r"build-arg:([A-Z0-9_]+)=", version_images.BUILD_SCRIPT))
    # REVISION is a label the host build of the core image sets; in the cluster it stays "unknown".
    assert declared - passed == {"REVISION"}
    assert passed <= declared
    assert 'build runner "type=image,' in version_images.BUILD_SCRIPT
    assert 'build installed "type=local,' in version_images.BUILD_SCRIPT


def test_the_build_stage_is_root_and_the_image_a_numeric_non_root_user() -> None:
    lines = _instructions()
    users = [line for line in lines if line.startswith(("USER ", "FROM "))]
    assert users[:2] == [users[0], "USER 0"]  # the cluster's base runs as 1000 and lacks pip/venv
    runner = lines.index(next(line for line in lines if line.startswith("FROM ") and line.endswith("AS runner")))
    final_user = [line for line in lines[runner:] if line.startswith("USER ")]
    assert final_user and re.fullmatch(r"USER [1-9][0-9]*:[1-9][0-9]*", final_user[-1])


def test_dependencies_come_from_the_lock_before_eval_runner_and_the_library() -> None:
    lines = _instructions()
    locked = next(
        i for i, line in enumerate(lines) if "--require-hashes --no-deps -r /tmp/build/requirements.txt" in line
    )
    runner = next(i for i, line in enumerate(lines) if "dist/fleet-eval.txt" in line and line.startswith("RUN"))
    library = next(i for i, line in enumerate(lines) if 'requirement.txt"' in line and line.startswith("RUN"))
    assert locked < runner < library
    assert "uv pip check" in lines[library]


def test_labels_name_the_versions_the_context_and_the_lock() -> None:
    labels = " ".join(line for line in _instructions() if line.startswith("LABEL "))
    for key in ("title", "version", "revision", "source", "licenses"):
        assert f"org.opencontainers.image.{key}=" in labels
    for key in ("io.fleet-eval.runner.context-digest", "io.fleet-eval.lock.sha256", "io.fleet-eval.runner.profile"):
        assert f"{key}=" in labels


def test_the_committed_requirement_exports_match_the_lock() -> None:
    done = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "build" / "runner_context.py"), "requirements", "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def _build_function(tmp_path: Path, fake_buildctl: str) -> str:
    """The step's ``build`` function, its scratch files under tmp_path, over a fake ``run_buildctl``."""
    script = version_images.BUILD_SCRIPT
    functions = script[script.index("UNREACHABLE=") : script.index("run_buildctl() {")]
    return "set -eu\n" + functions.replace("/tmp/", f"{tmp_path}/") + f"run_buildctl() {{ {fake_buildctl}; }}\n"


@pytest.mark.parametrize(
    ("buildctl", "exit_code"),
    [
        # uv inside BuildKit, the package index busy (the CI failure of 2026-12-02)
        (
            "echo '  x Failed to download `numpy==2.3.5`'; echo '  -> Request failed after 3 retries in 48.3s:"
            " client error (Connect): operation timed out' ; return 1",
            75,
        ),
        ("echo 'error: failed to get status: rpc error: code = Unavailable desc = connection error'; return 1", 75),
        # final: the wheel's hash is not the locked one, or the library fails `uv pip check`
        ("echo '  x Failed to download: Hash mismatch for `numpy==2.3.5`'; return 1", 1),
        ("echo 'battery-lib 0.9.1 requires numpy<2, but numpy 2.3.5 is installed'; return 2", 2),
        ("echo built; return 0", 0),
    ],
    ids=["index-timeout", "buildkitd-unavailable", "hash-mismatch", "pip-check", "success"],
)
def test_a_build_that_could_not_reach_a_service_exits_75_and_any_other_failure_keeps_its_code(
    tmp_path: Path, buildctl: str, exit_code: int
) -> None:
    script = _build_function(tmp_path, buildctl) + 'build runner "type=image"\necho returned\n'
    done = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=False)
    assert done.returncode == exit_code, done.stdout + done.stderr
    assert ("returned" in done.stdout) == (exit_code == 0)
    assert (tmp_path / "build.log").read_text().strip()  # the log the classification read
