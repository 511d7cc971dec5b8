"""Smoke test of the offline cluster: Argo + S3 artifacts + BuildKit + the cluster registry, via Hera."""

# No `from __future__ import annotations` here: Hera reads the script functions' real annotations.
import json
import time
from urllib.parse import urlsplit

import pytest
from hera.workflows import (
    DAG,
    Artifact,
    Container,
    NoneArchiveStrategy,
    S3Artifact,
    Task,
    Workflow,
    WorkflowsService,
    script,
)
from hera.workflows.models import PodSecurityContext, TTLStrategy
from minio import Minio

from tests.e2e.conftest import NAMESPACE, S3_ENDPOINT, SubmitFromTemplate, component_version

pytestmark = pytest.mark.timeout(900)

# Images come from the cluster registry (kind's local-registry pattern); make cluster pushed them.
PYTHON_IMAGE = "localhost:5001/fleet-eval/python:3.11-bookworm"
BUILDKIT_IMAGE = f"localhost:5001/moby/buildkit:{component_version('BUILDKIT_VERSION')}"
BUCKET = "argo-artifacts"
# In-cluster names: BuildKit pushes to the registry container over the kind network, and pods pull the
# result as localhost:5001/... through containerd's mirror configuration on every node.
BUILDKIT_ADDR = "tcp://buildkitd.fleet-infra.svc.cluster.local:1234"
BUILT_IMAGE = "e2e/tiny:{{workflow.name}}"
DOCKERFILE = (
    "FROM kind-registry:5000/fleet-eval/python:3.11-bookworm\n"
    "USER 0\n"
    "RUN echo built-by-buildkit > /marker.txt\n"
    "USER 1000\n"
)
RUN_BUILT_CHECK = (
    "import pathlib, sys; m = pathlib.Path('/marker.txt').read_text().strip(); print(m); "
    "sys.exit(m != 'built-by-buildkit')"
)
BUILD_SCRIPT = f"""set -eu
mkdir -p /tmp/ctx && cd /tmp/ctx
printf '%s' '{DOCKERFILE}' > Dockerfile
buildctl --addr {BUILDKIT_ADDR} build --frontend dockerfile.v0 --local context=. --local dockerfile=. \\
  --output type=image,name=kind-registry:5000/{BUILT_IMAGE},push=true,registry.insecure=true
"""


@script(
    image=PYTHON_IMAGE,
    outputs=[
        S3Artifact(
            name="part",
            path="/tmp/part.json",
            key="e2e/{{workflow.name}}/part-{{inputs.parameters.index}}.json",
            archive=NoneArchiveStrategy(),
        )
    ],
)
def produce(index: int) -> None:
    import json
    from pathlib import Path

    Path("/tmp/part.json").write_text(json.dumps({"index": index, "values": [index * 10 + k for k in range(5)]}))


@script(
    image=PYTHON_IMAGE,
    inputs=[Artifact(name=f"part{i}", path=f"/tmp/in/part{i}.json") for i in range(3)],
    outputs=[
        S3Artifact(
            name="total",
            path="/tmp/total.json",
            key="e2e/{{workflow.name}}/total.json",
            archive=NoneArchiveStrategy(),
        )
    ],
)
def combine() -> None:
    import json
    from pathlib import Path

    parts = [json.loads(Path(f"/tmp/in/part{i}.json").read_text()) for i in range(3)]
    indexes = sorted(p["index"] for p in parts)
    if indexes != [0, 1, 2]:
        raise SystemExit(f"expected parts 0, 1, 2; got {indexes}")
    total = {"parts": len(parts), "sum": sum(sum(p["values"]) for p in parts)}
    Path("/tmp/total.json").write_text(json.dumps(total))


def build_workflow(service: WorkflowsService) -> Workflow:
    """Build the smoke workflow.

    Three producers fan out and hand S3 artifacts to a combiner; BuildKit builds an image a later step runs.
    """
    build = Container(
        name="build-image",
        image=BUILDKIT_IMAGE,
        command=["sh", "-c"],
        args=[BUILD_SCRIPT],
    )
    run_built = Container(
        name="run-built-image",
        image=f"localhost:5001/{BUILT_IMAGE}",
        # emissary needs an explicit command (it cannot read the image's entrypoint from this registry).
        command=["python3", "-c"],
        args=[RUN_BUILT_CHECK],
    )
    with (
        Workflow(
            generate_name="e2e-smoke-",
            namespace=NAMESPACE,
            entrypoint="main",
            workflows_service=service,
            labels={"fleet-eval/test": "e2e-smoke"},
            ttl_strategy=TTLStrategy(seconds_after_completion=3600),
            # One non-root UID for every container of a pod, Argo's init/wait included, so the step
            # can read the input artifacts the init container downloaded (files are mode 0600).
            security_context=PodSecurityContext(
                run_as_user=1000, run_as_group=1000, fs_group=1000, run_as_non_root=True
            ),
        ) as w,
        DAG(name="main"),
    ):
        producers = [produce(name=f"produce-{i}", arguments={"index": i}) for i in range(3)]
        total = combine(
            name="combine",
            arguments=[p.get_artifact("part").with_name(f"part{i}") for i, p in enumerate(producers)],
        )
        producers >> total  # type: ignore[operator]  # Hera's Task.__rrshift__ takes the list
        build_task: Task = build(name="build")  # type: ignore[assignment]  # a Task inside a DAG
        run_task: Task = run_built(name="run-built")  # type: ignore[assignment]
        build_task >> run_task
    return w


def wait_for_completion(service: WorkflowsService, name: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        wf = service.get_workflow(name=name, namespace=NAMESPACE)
        phase = wf.status.phase if wf.status else None
        if phase in ("Succeeded", "Failed", "Error"):
            return phase
        time.sleep(5)
    raise TimeoutError(f"workflow {name} did not finish within {timeout:.0f}s")


def test_fan_out_artifacts_and_buildkit(
    workflows_service: WorkflowsService, s3_credentials: tuple[str, str], submit_from_template: SubmitFromTemplate
) -> None:
    started = time.monotonic()
    name = submit_from_template(build_workflow(workflows_service))

    phase = wait_for_completion(workflows_service, name, timeout=780)
    wf = workflows_service.get_workflow(name=name, namespace=NAMESPACE)
    failed = {
        n.display_name: n.message
        for n in ((wf.status.nodes if wf.status else None) or {}).values()
        if n.phase not in ("Succeeded", "Skipped", "Omitted")
    }
    assert phase == "Succeeded", f"workflow {name} ended {phase}: {failed}"

    listed = workflows_service.list_workflows(namespace=NAMESPACE, label_selector="fleet-eval/test=e2e-smoke")
    assert name in {item.metadata.name for item in listed.items or []}

    access_key, secret_key = s3_credentials
    endpoint = urlsplit(S3_ENDPOINT)
    s3 = Minio(endpoint.netloc, access_key=access_key, secret_key=secret_key, secure=endpoint.scheme == "https")
    response = s3.get_object(BUCKET, f"e2e/{name}/total.json")
    try:
        total = json.loads(response.read())
    finally:
        response.close()
        response.release_conn()
    assert total == {"parts": 3, "sum": sum(i * 10 + k for i in range(3) for k in range(5))}
    print(f"smoke workflow {name} succeeded in {time.monotonic() - started:.0f}s")
