"""Fixtures for the e2e tier: clients for the kind cluster that `make cluster` brings up, and the loop's runs."""

from __future__ import annotations

import base64
import os
import re
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from hera.exceptions import NotFound
from hera.workflows import Workflow, WorkflowsService
from hera.workflows.models import SubmitOpts, WorkflowSubmitRequest
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

# The loop's fixtures (``x as x``: imported to be registered as this tier's fixtures, not used here).
from tests.fixtures.e2e_loop import e2e_fleet as e2e_fleet
from tests.fixtures.e2e_loop import e2e_loop as e2e_loop
from tests.fixtures.e2e_loop import e2e_reviewed_months as e2e_reviewed_months
from tests.fixtures.e2e_loop import mlflow_api as mlflow_api

REPO = Path(__file__).resolve().parents[2]
KUBE_CONTEXT = os.environ.get("FLEET_EVAL_KUBE_CONTEXT", "kind-fleet-eval")
ARGO_SERVER = os.environ.get("FLEET_EVAL_ARGO_SERVER", "https://127.0.0.1:32746")
S3_ENDPOINT = os.environ.get("FLEET_EVAL_S3_ENDPOINT", "http://127.0.0.1:32070")
NAMESPACE = "argo"
# How long argo-server may take to see a WorkflowTemplate just created (its informer's cache).
TEMPLATE_CACHE_WAIT_S = 60


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


SubmitFromTemplate = Callable[[Workflow], str]


@pytest.fixture(scope="session")
def submit_from_template(core_v1: client.CoreV1Api, workflows_service: WorkflowsService) -> SubmitFromTemplate:
    """Run a test's own Workflow as platform engineers do: from a WorkflowTemplate.

    The controller runs only Workflows that reference a WorkflowTemplate (templateReferencing: Strict), and
    the client may not create templates. So the workflow's spec becomes the WorkflowTemplate
    ``e2e-<its generateName>`` (replaced, as the cluster admin), and the client submits a Workflow from it,
    with the workflow's labels; the Workflow's name is returned.
    """
    api = client.CustomObjectsApi()

    def submit(workflow: Workflow) -> str:
        manifest = workflow.to_dict()
        name = f"e2e-{manifest['metadata']['generateName'].rstrip('-')}"
        labels = dict(manifest["metadata"].get("labels") or {})
        template = {
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "WorkflowTemplate",
            "metadata": {"name": name, "namespace": NAMESPACE, "labels": labels},
            "spec": manifest["spec"],
        }
        group = ("argoproj.io", "v1alpha1", NAMESPACE, "workflowtemplates")
        try:
            api.delete_namespaced_custom_object(*group, name)
        except ApiException as error:
            if error.status != 404:
                raise
        api.create_namespaced_custom_object(*group, template)
        options = SubmitOpts(generate_name=manifest["metadata"]["generateName"],
                             labels=",".join(f"{key}={value}" for key, value in labels.items()))  # fmt: skip
        request = WorkflowSubmitRequest(resource_kind="WorkflowTemplate", resource_name=name, submit_options=options)
        # argo-server finds templates in its informer's cache, which sees a template just created a moment
        # later: on a fresh cluster (no earlier copy cached) the first submit can be a 404.
        deadline = time.monotonic() + TEMPLATE_CACHE_WAIT_S
        while True:
            try:
                created = workflows_service.submit_workflow(request, namespace=NAMESPACE)
                break
            except NotFound:
                if time.monotonic() > deadline:
                    raise
                time.sleep(1)
        assert created.metadata.name, created
        return created.metadata.name

    return submit
