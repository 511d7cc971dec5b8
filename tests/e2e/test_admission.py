"""Admission in the argo namespace, where workflows run: Pod Security `restricted` refuses other pods, to anyone."""

from __future__ import annotations

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.e2e.conftest import NAMESPACE

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
