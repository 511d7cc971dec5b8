"""A pod that fails to start is retried by the runner steps' retry strategy, and the workflow succeeds.

On cgroup v1 hosts, runc sometimes failed to create a container ("unable to freeze", StartError exit
128): the pod never ran the step, and a retry strategy that looked only at exit codes ended the
workflow Failed. `retry_transient` also retries start errors and Argo's Error phase. Here a real
container start fails the same way, in runc, on a pod's first attempt only: its init container's
command is a file that does not exist while Argo's ``retries`` is 0. The workflow must succeed after
exactly one retry; with no retries left the same step must end Failed, so the test can fail.
"""

# No `from __future__ import annotations` here: Hera reads the models' real annotations.
import re
import time

import pytest
from hera.workflows import Container, UserContainer, Workflow, WorkflowsService
from hera.workflows.models import (
    Capabilities,
    NodeStatus,
    PodSecurityContext,
    SeccompProfile,
    SecurityContext,
    TTLStrategy,
)

from tests.e2e.conftest import NAMESPACE, SubmitFromTemplate
from workflows.common import retry_transient

pytestmark = pytest.mark.timeout(600)

PYTHON_IMAGE = "localhost:5001/fleet-eval/python:3.11-bookworm"
# runc cannot start a container whose command does not exist: StartError (exit code 128), as with a
# cgroup that will not freeze. Argo evaluates the expression per attempt.
FIRST_ATTEMPT_COMMAND = "{{=asInt(retries) == 0 ? '/first-attempt/does-not-start' : '/bin/true'}}"


def _workflow(service: WorkflowsService, *, retries: int) -> Workflow:
    step = Container(
        name="step",
        image=PYTHON_IMAGE,
        command=["python3", "-c", "print('the step ran')"],
        init_containers=[
            UserContainer(
                name="flaky-start",
                image=PYTHON_IMAGE,
                command=[FIRST_ATTEMPT_COMMAND],
                # The namespace enforces Pod Security `restricted`; Argo's defaults do not reach user init containers.
                security_context=SecurityContext(
                    allow_privilege_escalation=False, capabilities=Capabilities(drop=["ALL"])
                ),
            )
        ],
        retry_strategy=retry_transient(limit=retries),
    )
    with Workflow(
        generate_name=f"e2e-start-failure-r{retries}-",
        namespace=NAMESPACE,
        entrypoint="step",
        workflows_service=service,
        labels={"fleet-eval/test": "e2e-start-failure"},
        ttl_strategy=TTLStrategy(seconds_after_completion=3600),
        security_context=PodSecurityContext(
            run_as_user=1000,
            run_as_group=1000,
            run_as_non_root=True,
            seccomp_profile=SeccompProfile(type="RuntimeDefault"),
        ),
    ) as w:
        w.templates.append(step)
    return w


def _attempt(node: NodeStatus) -> int:
    """The retry attempt a pod node ran: Argo names them ``<step>(0)``, ``<step>(1)``, ...

    Not its start time: a pod that never started may carry none, and times have whole seconds only.
    """
    match = re.search(r"\((\d+)\)$", node.name or "")
    assert match, f"pod node {node.name!r} is not named as a retry attempt"
    return int(match.group(1))


def _run(
    service: WorkflowsService, submit: SubmitFromTemplate, *, retries: int, timeout: float = 420
) -> tuple[str, list[tuple[str, str]]]:
    """Submit, wait, and return the workflow's phase and (phase, message) of every pod it ran, in attempt order."""
    name = submit(_workflow(service, retries=retries))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        wf = service.get_workflow(name=name, namespace=NAMESPACE)
        phase = wf.status.phase if wf.status else None
        if phase in ("Succeeded", "Failed", "Error"):
            nodes = sorted(
                (n for n in (wf.status.nodes or {}).values() if n.type == "Pod"),  # type: ignore[union-attr]
                key=_attempt,
            )
            return phase, [(str(n.phase), n.message or "") for n in nodes]
        time.sleep(3)
    raise TimeoutError(f"workflow {name} did not finish within {timeout:.0f}s")


def test_a_pod_that_fails_to_start_once_is_retried_and_the_workflow_succeeds(
    workflows_service: WorkflowsService, submit_from_template: SubmitFromTemplate
) -> None:
    started = time.monotonic()
    phase, pods = _run(workflows_service, submit_from_template, retries=2)
    assert phase == "Succeeded", pods
    assert len(pods) == 2, pods  # the failed start, then the retry that ran the step
    assert pods[0][0] in ("Failed", "Error") and pods[1][0] == "Succeeded", pods
    print(f"start failure retried: {pods[0]} then {pods[1][0]} in {time.monotonic() - started:.0f}s")


def test_without_retries_left_the_same_start_failure_fails_the_workflow(
    workflows_service: WorkflowsService, submit_from_template: SubmitFromTemplate
) -> None:
    phase, pods = _run(workflows_service, submit_from_template, retries=0)
    assert phase in ("Failed", "Error"), pods
    assert len(pods) == 1, pods
