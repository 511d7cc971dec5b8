"""The runner Dockerfile keeps the house rules the in-cluster BuildKit step relies on."""

from __future__ import annotations

import re
from pathlib import Path

from workflows import versions

DOCKERFILE = Path(__file__).resolve().parents[2] / "images" / "runner" / "Dockerfile"


def _instructions() -> list[str]:
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def test_base_image_and_library_are_build_arguments() -> None:
    lines = _instructions()
    assert lines[0].startswith("ARG BASE_IMAGE=")
    assert any(line.startswith("ARG LIBRARY_REQUIREMENT") for line in lines)
    # The build step passes exactly these build arguments.
    for arg in ("BASE_IMAGE", "LIBRARY_REQUIREMENT", "LIBRARY_VERSION", "RUNNER_VERSION", "PIP_INDEX_URL"):
        assert f"build-arg:{arg}=" in versions.BUILD_SCRIPT
        assert any(line.startswith(f"ARG {arg}") for line in lines), arg


def test_multi_stage_with_dependencies_before_source() -> None:
    lines = _instructions()
    froms = [line for line in lines if line.startswith("FROM ")]
    assert len(froms) == 2
    copy_pyproject = next(i for i, line in enumerate(lines) if line.startswith("COPY pyproject.toml"))
    install_deps = next(i for i, line in enumerate(lines) if "-r /tmp/requirements.txt" in line)
    copy_source = next(i for i, line in enumerate(lines) if line.startswith("COPY eval_runner"))
    assert copy_pyproject < install_deps < copy_source


def test_runs_as_a_numeric_non_root_user_with_oci_labels() -> None:
    lines = _instructions()
    user = [line for line in lines if line.startswith("USER ")]
    assert user and re.fullmatch(r"USER [1-9][0-9]*:[1-9][0-9]*", user[-1])
    labels = " ".join(line for line in lines if line.startswith("LABEL "))
    for key in ("title", "version", "revision", "source", "licenses"):
        assert f"org.opencontainers.image.{key}=" in labels


def test_build_context_is_only_what_the_image_needs() -> None:
    text = (DOCKERFILE.parent / "Dockerfile.dockerignore").read_text()
    patterns = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]
    assert patterns[0] == "*"  # everything is excluded first, then the package is let back in
    assert {"!pyproject.toml", "!README.md", "!eval_runner/"} <= set(patterns)
