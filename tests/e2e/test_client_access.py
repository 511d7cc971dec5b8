"""The client token (what tests, Hera, the argo CLI and the UI use) drives workflows and reads nothing else.

Asked of the real API server with the token itself (SelfSubjectAccessReview, what `kubectl auth can-i`
sends), and proven once by a read that must be refused.
"""

from __future__ import annotations

import pytest
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from tests.e2e.conftest import KUBE_CONTEXT, NAMESPACE

pytestmark = pytest.mark.timeout(120)

# (verb, API group, resource): what driving workflows through argo-server needs.
ALLOWED = [
    ("create", "argoproj.io", "workflows"),  # submit
    ("update", "argoproj.io", "workflows"),  # resume, stop, retry
    ("watch", "argoproj.io", "workflows"),
    ("delete", "argoproj.io", "workflows"),
    ("list", "argoproj.io", "workflowtemplates"),
    ("get", "argoproj.io", "cronworkflows"),
    ("get", "", "pods/log"),  # logs stream through argo-server with the caller's token
    ("delete", "", "pods"),  # retry deletes the retried nodes' pods
    ("list", "", "events"),
]
# What `edit` gave it before: every Secret, pods of any service account, template and RBAC edits.
DENIED = [
    ("get", "", "secrets"),
    ("list", "", "secrets"),
    ("create", "", "pods"),
    ("create", "", "pods/exec"),
    ("create", "", "serviceaccounts/token"),
    ("get", "", "configmaps"),
    ("create", "argoproj.io", "workflowtemplates"),
    ("update", "argoproj.io", "workflowtemplates"),
    ("create", "argoproj.io", "cronworkflows"),
    ("create", "rbac.authorization.k8s.io", "rolebindings"),
    ("create", "apps", "deployments"),
]


@pytest.fixture(scope="module")
def as_client(argo_token: str) -> client.ApiClient:
    """An API client of the kind cluster that authenticates with the client token only (no admin cert)."""
    configuration = client.Configuration()
    config.load_kube_config(context=KUBE_CONTEXT, client_configuration=configuration)  # type: ignore[no-untyped-call]
    configuration.cert_file = configuration.key_file = None
    configuration.api_key = {"authorization": argo_token}
    configuration.api_key_prefix = {"authorization": "Bearer"}
    return client.ApiClient(configuration)


def _can(api: client.ApiClient, verb: str, group: str, resource: str) -> bool:
    resource, _, subresource = resource.partition("/")
    review = client.V1SelfSubjectAccessReview(
        spec=client.V1SelfSubjectAccessReviewSpec(
            resource_attributes=client.V1ResourceAttributes(
                namespace=NAMESPACE, verb=verb, group=group, resource=resource, subresource=subresource or None
            )
        )
    )
    status = client.AuthorizationV1Api(api).create_self_subject_access_review(review).status
    assert status is not None
    return bool(status.allowed)


def test_the_token_is_the_client_service_account(as_client: client.ApiClient) -> None:
    status = client.AuthenticationV1Api(as_client).create_self_subject_review(client.V1SelfSubjectReview()).status
    assert status is not None and status.user_info is not None
    assert status.user_info.username == f"system:serviceaccount:{NAMESPACE}:fleet-eval-client"


@pytest.mark.parametrize(("verb", "group", "resource"), ALLOWED)
def test_the_client_may(as_client: client.ApiClient, verb: str, group: str, resource: str) -> None:
    assert _can(as_client, verb, group, resource)


@pytest.mark.parametrize(("verb", "group", "resource"), DENIED)
def test_the_client_may_not(as_client: client.ApiClient, verb: str, group: str, resource: str) -> None:
    assert not _can(as_client, verb, group, resource)


def test_reading_a_secret_with_the_client_token_is_forbidden(as_client: client.ApiClient) -> None:
    with pytest.raises(ApiException) as refused:
        client.CoreV1Api(as_client).read_namespaced_secret("fleet-eval-s3", NAMESPACE)
    assert refused.value.status == 403
