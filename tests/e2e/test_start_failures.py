"""A pod that fails to start once is retried by the runner steps' retryStrategy, and the workflow succeeds.

The failure is the one that broke `make demo` on cgroup v1 hosts: a pod whose container never ran, so
there is no exit code for the exit-code rules to read (the retry expression then has to classify the
failure by the node's phase or message). Here an init container fails on the first attempt only
(``{{retries}}`` is 0 on the first attempt), which is deterministic where a real runc failure is not.
The retry strategy is the one every runner step uses (workflows.common.retry_transient), not a copy.
"""

# No `from __future__ import annotations` here: Hera reads the real annotations.
import time

import pytest
from hera.workflows import Container, Steps, Workflow, WorkflowsService
from hera.workflows.models import PodSecurityContext, TTLStrategy, UserContainer

from tests.e2e.conftest import NAMESPACE
from tests.e2e.test_smoke import PYTHON_IMAGE, wait_for_completion
from workflows.common import retry_transient

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning"),
    pytest.mark.filterwarnings("ignore::pydantic.warnings.PydanticDeprecatedSince20"),
    pytest.mark.timeout(900),
]


def _workflow(service: WorkflowsService) -> Workflow:
    flaky = Container(
        name="starts-on-the-second-attempt",
        image=PYTHON_IMAGE,
        command=["python3", "-c", "print('the step ran')"],
        init_containers=[
            UserContainer(
                name="fails-on-the-first-attempt",
                image=PYTHON_IMAGE,
                command=["python3", "-c", "import sys; sys.exit(int('{{retries}}') == 0)"],
            )
        ],
        retry_strategy=retry_transient(),
    )
    with (
        Workflow(
            generate_name="e2e-start-failure-",
            namespace=NAMESPACE,
            entrypoint="main",
            workflows_service=service,
            labels={"fleet-eval/test": "e2e-start-failure"},
            ttl_strategy=TTLStrategy(seconds_after_completion=3600),
            security_context=PodSecurityContext(run_as_user=1000, run_as_group=1000, run_as_non_root=True),
        ) as w,
        Steps(name="main"),
    ):
        flaky(name="flaky")
    return w


def test_a_pod_that_fails_to_start_once_is_retried_and_the_workflow_succeeds(
    workflows_service: WorkflowsService,
) -> None:
    started = time.monotonic()
    name = _workflow(workflows_service).create().metadata.name
    assert name
    phase = wait_for_completion(workflows_service, name, timeout=600)
    wf = workflows_service.get_workflow(name=name, namespace=NAMESPACE)
    pods = sorted(
        (n for n in ((wf.status.nodes if wf.status else None) or {}).values() if n.type == "Pod"),
        key=lambda n: str(n.started_at),
    )
    attempts = [(n.phase, n.message) for n in pods]
    assert phase == "Succeeded", f"workflow {name} ended {phase}; attempts: {attempts}"
    assert len(pods) == 2 and pods[0].phase in ("Failed", "Error") and pods[1].phase == "Succeeded", attempts
    print(f"start failure retried: {attempts} in {time.monotonic() - started:.0f}s")
