"""Admission in the argo namespace, where workflows run, for anyone.

Pod Security `restricted` refuses other pods, and a ValidatingAdmissionPolicy refuses Workflows that do
not run a WorkflowTemplate as it is.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml
from hera.workflows import WorkflowsService
from hera.workflows.models import SubmitOpts, WorkflowSubmitRequest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.e2e.conftest import NAMESPACE
from tests.fixtures.e2e_loop import Fleet

pytestmark = pytest.mark.timeout(120)


IMAGE = "localhost:5001/fleet-eval/python:3.11-bookworm"
RESTRICTED: dict[str, object] = {
    "allow_privilege_escalation": False,
    "capabilities": client.V1Capabilities(drop=["ALL"]),
    "run_as_non_root": True,
    "run_as_user": 1000,
    "seccomp_profile": client.V1SeccompProfile(type="RuntimeDefault"),
}


def _create(core_v1: client.CoreV1Api, security: client.V1SecurityContext) -> None:
    pod = client.V1Pod(
        metadata=client.V1ObjectMeta(name="fleet-eval-admission-probe"),
        spec=client.V1PodSpec(containers=[client.V1Container(name="probe", image=IMAGE, security_context=security)]),
    )
    core_v1.create_namespaced_pod(NAMESPACE, pod, dry_run="All")  # admitted or not, nothing is created


def test_the_namespace_enforces_restricted(core_v1: client.CoreV1Api) -> None:
    metadata = core_v1.read_namespace(NAMESPACE).metadata
    labels = (metadata.labels if metadata else None) or {}
    assert labels.get("pod-security.kubernetes.io/enforce") == "restricted"


def test_a_restricted_pod_is_admitted(core_v1: client.CoreV1Api) -> None:
    _create(core_v1, client.V1SecurityContext(**RESTRICTED))


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"privileged": True, "allow_privilege_escalation": True}, "privileged"),  # one without the other is invalid
        ({"allow_privilege_escalation": True}, "allowPrivilegeEscalation"),
        ({"capabilities": client.V1Capabilities(add=["NET_ADMIN"], drop=["ALL"])}, "capabilities"),
        ({"run_as_non_root": False, "run_as_user": 0}, "runAsNonRoot"),
        ({"seccomp_profile": client.V1SeccompProfile(type="Unconfined")}, "seccompProfile"),
    ],
)
def test_a_pod_that_is_not_restricted_is_refused_even_to_the_cluster_admin(
    core_v1: client.CoreV1Api, change: dict[str, object], named: str
) -> None:
    security = client.V1SecurityContext(**{**RESTRICTED, **change})
    with pytest.raises(ApiException) as refused:
        _create(core_v1, security)
    assert refused.value.status == 403
    assert "violates PodSecurity" in str(refused.value.body) and named in str(refused.value.body)


# ---- Workflows: only what a WorkflowTemplate defines, with the knobs a submitter may turn ----------------
POLICY = "fleet-eval-workflow-overrides"
WORKFLOWS = ("argoproj.io", "v1alpha1", NAMESPACE, "workflows")
# What a submitter may set over the template (Argo 4.0.6's allow-list, enforced here by the policy).
ALLOWED = {
    "activeDeadlineSeconds", "archiveLogs", "arguments", "artifactGC", "entrypoint", "metrics", "podGC", "priority",
    "shutdown", "suspend", "ttlStrategy", "volumeClaimGC", "workflowMetadata", "workflowTemplateRef",
}  # fmt: skip


def _workflow(**spec: object) -> dict[str, Any]:
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {"generateName": "fleet-eval-admission-probe-"},
        "spec": {
            "workflowTemplateRef": {"name": "evaluate"},
            "arguments": {"parameters": [{"name": "months", "value": '["2026-04"]'}]},
            **spec,
        },
    }


def _dry_run(custom: client.CustomObjectsApi, body: dict[str, Any]) -> None:
    custom.create_namespaced_custom_object(*WORKFLOWS, body, dry_run="All")  # admitted or not, nothing is created


def _refused(custom: client.CustomObjectsApi, body: dict[str, Any]) -> str:
    with pytest.raises(ApiException) as refused:
        _dry_run(custom, body)
    assert refused.value.status == 403, refused.value.body
    assert POLICY in str(refused.value.body)
    return str(refused.value.body)


@pytest.fixture(scope="module")
def custom(core_v1: client.CoreV1Api) -> client.CustomObjectsApi:
    """The cluster admin's API (core_v1 loaded the kube config): the policy refuses even the admin."""
    return client.CustomObjectsApi()


def _controller_config(data: dict[str, str]) -> dict[str, Any]:
    """The controller's configuration as Argo assembles it from its ConfigMap (config/controller.go).

    Each key is pasted before its value: a value with a newline indented below the key, any other after
    "key: " on one line (so a one-line mapping such as "templateReferencing: Strict" breaks the whole
    configuration, and the controller then keeps running on its defaults).
    """
    raw = "".join(
        f"{name}:\n  " + "\n  ".join(value.strip("\n").split("\n")) + "\n" if "\n" in value else f"{name}: {value}\n"
        for name, value in data.items()
    )
    config = yaml.safe_load(raw)
    assert isinstance(config, dict), raw
    return config


def test_the_controller_runs_only_workflows_that_reference_a_template(core_v1: client.CoreV1Api) -> None:
    data = core_v1.read_namespaced_config_map("workflow-controller-configmap", NAMESPACE).data or {}
    assert _controller_config(data)["workflowRestrictions"] == {"templateReferencing": "Strict"}
    # The rule the test applies is Argo's: the one-line form is what broke the controller's configuration.
    with pytest.raises(yaml.YAMLError):
        _controller_config({**data, "workflowRestrictions": "templateReferencing: Strict"})


def test_a_workflow_that_runs_a_template_with_its_knobs_is_admitted(custom: client.CustomObjectsApi) -> None:
    ttl, gc = {"secondsAfterCompletion": 60}, {"strategy": "OnWorkflowDeletion"}
    _dry_run(custom, _workflow(priority=5, suspend=True, activeDeadlineSeconds=600, ttlStrategy=ttl, artifactGC=gc))


def test_an_inline_workflow_is_refused(custom: client.CustomObjectsApi) -> None:
    body = _workflow(entrypoint="main", templates=[{"name": "main", "container": {"image": IMAGE, "command": ["id"]}}])
    del body["spec"]["workflowTemplateRef"]
    assert "must run a WorkflowTemplate" in _refused(custom, body)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("podSpecPatch", '{"serviceAccountName": "argo-server"}'),
        ("serviceAccountName", "argo-server"),
        ("securityContext", {"runAsUser": 0, "runAsNonRoot": False}),
        ("templates", [{"name": "evaluate", "container": {"image": IMAGE, "command": ["id"]}}]),
        ("volumes", [{"name": "host", "hostPath": {"path": "/"}}]),
        ("hostNetwork", True),
        ("executor", {"serviceAccountName": "argo-server"}),
        ("automountServiceAccountToken", True),
        ("templateDefaults", {"podSpecPatch": "{}"}),
    ],
)
def test_a_workflow_overriding_its_template_is_refused(
    custom: client.CustomObjectsApi, field: str, value: object
) -> None:
    assert f"spec.{field} may only be set by the WorkflowTemplate" in _refused(custom, _workflow(**{field: value}))


@pytest.mark.parametrize("field", ["podSpecPatch", "serviceAccountName", "podMetadata"])
def test_an_artifact_gc_override_is_refused(custom: client.CustomObjectsApi, field: str) -> None:
    value: object = {"labels": {"a": "b"}} if field == "podMetadata" else ("{}" if field == "podSpecPatch" else "argo")
    body = _workflow(artifactGC={"strategy": "OnWorkflowDeletion", field: value})
    assert f"spec.artifactGC.{field} may only be set" in _refused(custom, body)


def test_the_client_submitting_under_another_service_account_is_refused(
    workflows_service: WorkflowsService, e2e_fleet: Fleet
) -> None:
    # `argo submit --from workflowtemplate/evaluate --serviceaccount argo-server`, through argo-server;
    # e2e_fleet installs the chart, whose template this is (this file runs first on a fresh cluster).
    options = SubmitOpts(service_account="argo-server", server_dry_run=True)  # admission runs; nothing is created
    request = WorkflowSubmitRequest(resource_kind="WorkflowTemplate", resource_name="evaluate", submit_options=options)
    with pytest.raises(Exception, match=r"spec\.serviceAccountName may only be set by the WorkflowTemplate"):
        workflows_service.submit_workflow(request, namespace=NAMESPACE)


def test_an_admitted_workflow_cannot_be_patched_into_an_override(custom: client.CustomObjectsApi) -> None:
    # Suspended, and of a template that does not exist: it runs nothing while it exists.
    body = _workflow(suspend=True)
    body["spec"]["workflowTemplateRef"] = {"name": "fleet-eval-admission-probe-no-such-template"}
    created = custom.create_namespaced_custom_object(*WORKFLOWS, body)
    assert isinstance(created, dict)
    name = created["metadata"]["name"]
    try:
        with pytest.raises(ApiException) as refused:
            custom.patch_namespaced_custom_object(*WORKFLOWS, name, {"spec": {"podSpecPatch": "{}"}}, dry_run="All")
        assert refused.value.status == 403 and "spec.podSpecPatch" in str(refused.value.body)
    finally:
        custom.delete_namespaced_custom_object(*WORKFLOWS, name)


def test_the_policy_names_every_workflow_spec_field_it_does_not_allow(core_v1: client.CoreV1Api) -> None:
    # CEL cannot list an object's fields, so the policy names each: a field a new Argo adds must be named.
    # (core_v1 loaded the admin's kube config these clients use.)
    crd = client.ApiextensionsV1Api().read_custom_resource_definition("workflows.argoproj.io").to_dict()
    fields = set(crd["spec"]["versions"][0]["schema"]["open_apiv3_schema"]["properties"]["spec"]["properties"])
    policy = client.AdmissionregistrationV1Api().read_validating_admission_policy(POLICY).to_dict()
    overrides = next(v["expression"] for v in policy["spec"]["variables"] if v["name"] == "overrides")
    named = set(re.findall(r"has\(object\.spec\.(\w+)\)", overrides))
    assert named.isdisjoint(ALLOWED), named & ALLOWED
    assert named | ALLOWED == fields, {"not named": sorted(fields - named - ALLOWED), "unknown": sorted(named - fields)}
