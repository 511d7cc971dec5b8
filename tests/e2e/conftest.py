"""Fixtures for the e2e tier: clients for the kind cluster that `make cluster` brings up."""

from __future__ import annotations

import base64
import os
import re
from pathlib import Path

import pytest
from hera.workflows import WorkflowsService
from kubernetes import client, config

REPO = Path(__file__).resolve().parents[2]
KUBE_CONTEXT = os.environ.get("FLEET_EVAL_KUBE_CONTEXT", "kind-fleet-eval")
ARGO_SERVER = os.environ.get("FLEET_EVAL_ARGO_SERVER", "https://127.0.0.1:32746")
S3_ENDPOINT = os.environ.get("FLEET_EVAL_S3_ENDPOINT", "http://127.0.0.1:32070")
NAMESPACE = "argo"


def component_version(name: str) -> str:
    """Return a pinned version from scripts/build/versions.sh, the list the cluster was built from."""
    text = (REPO / "scripts/build/versions.sh").read_text()
    match = re.search(rf'^: "\$\{{{name}:=([^}}]+)\}}"', text, re.MULTILINE)
    if match is None:
        raise LookupError(f"{name} is not pinned in scripts/build/versions.sh")
    return match.group(1)


@pytest.fixture(scope="session")
def core_v1() -> client.CoreV1Api:
    """Kubernetes API of the kind cluster; skips the tier cleanly when no cluster is up."""
    try:
        config.load_kube_config(context=KUBE_CONTEXT)  # type: ignore[no-untyped-call]
    except (config.ConfigException, FileNotFoundError) as e:
        pytest.fail(f"kube context {KUBE_CONTEXT!r} not found; run `make cluster` first ({e})")
    return client.CoreV1Api()


def _secret_value(core_v1: client.CoreV1Api, namespace: str, name: str, key: str) -> str:
    secret = core_v1.read_namespaced_secret(name, namespace)
    if not secret.data or key not in secret.data:
        raise LookupError(f"secret {namespace}/{name} has no key {key!r} (has `make cluster` finished?)")
    return base64.b64decode(secret.data[key]).decode()


@pytest.fixture(scope="session")
def argo_token(core_v1: client.CoreV1Api) -> str:
    """Bearer token of the fleet-eval-client ServiceAccount (argo-server runs in client auth mode)."""
    return _secret_value(core_v1, NAMESPACE, "fleet-eval-client.service-account-token", "token")


@pytest.fixture(scope="session")
def workflows_service(argo_token: str) -> WorkflowsService:
    """Hera's client for argo-server; its certificate is self-signed, hence no TLS verification."""
    return WorkflowsService(host=ARGO_SERVER, token=argo_token, namespace=NAMESPACE, verify_ssl=False)


@pytest.fixture(scope="session")
def s3_credentials(core_v1: client.CoreV1Api) -> tuple[str, str]:
    """Access and secret key of the in-cluster versitygw (Argo's default artifact repository)."""
    return (
        _secret_value(core_v1, NAMESPACE, "s3-credentials", "accesskey"),
        _secret_value(core_v1, NAMESPACE, "s3-credentials", "secretkey"),
    )
