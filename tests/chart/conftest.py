"""Helm for the chart tests: the binary (built by `make helm`), and `helm template` as parsed documents."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

CHART = Path(__file__).resolve().parents[2] / "charts" / "fleet-eval"
KUBE_VERSION = "1.34.4"  # the kind cluster's, so capabilities match what it will run on
NAMESPACE = "argo"
BIN_CACHE = Path(os.environ.get("FLEET_EVAL_CACHE", "/var/cache/fleet-eval")) / "bin"

Doc = dict[str, Any]


def helm_binary() -> Path | None:
    """$HELM_BIN, the machine cache's helm (mk/chart.mk builds it), or helm on PATH."""
    if os.environ.get("HELM_BIN"):
        return Path(os.environ["HELM_BIN"])
    cached = sorted(p for p in BIN_CACHE.glob("helm-v*/helm") if os.access(p, os.X_OK))
    if cached:
        return cached[-1]
    found = shutil.which("helm")
    return Path(found) if found else None


@pytest.fixture(scope="session")
def helm() -> Path:
    binary = helm_binary()
    if binary is None:
        pytest.skip("helm not found: run `make helm` (builds it into $FLEET_EVAL_CACHE/bin) or set HELM_BIN")
    return binary


def run_helm(helm: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(helm), *args], capture_output=True, text=True, timeout=120, check=False)


Template = Callable[..., list[Doc]]


@pytest.fixture(scope="session")
def template(helm: Path) -> Template:
    """Render the chart with values files and --set pairs; fails the test on a helm error."""

    def render(values: Sequence[Path] = (), sets: Sequence[str] = (), release: str = "fe") -> list[Doc]:
        args = ["template", release, str(CHART), "--namespace", NAMESPACE, "--kube-version", KUBE_VERSION]
        for path in values:
            args += ["-f", str(path)]
        for pair in sets:
            args += ["--set", pair]
        done = run_helm(helm, *args)
        assert done.returncode == 0, done.stderr
        return [doc for doc in yaml.safe_load_all(done.stdout) if doc]

    return render


def by_kind(docs: list[Doc], kind: str) -> list[Doc]:
    return [d for d in docs if d["kind"] == kind]


def pod_specs(docs: list[Doc]) -> list[tuple[str, Doc]]:
    """(name, pod spec) of every Deployment, StatefulSet and Job."""
    found = []
    for doc in docs:
        if doc["kind"] in {"Deployment", "StatefulSet", "Job"}:
            found.append((doc["metadata"]["name"], doc["spec"]["template"]["spec"]))
    return found
