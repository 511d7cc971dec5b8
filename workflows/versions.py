"""Templates shared by evaluate and fleet-rollout: resolve version labels, build the missing runner images.

An image is built only when ``versions resolve`` found its tag missing from the registry, so an image
that exists is never rebuilt; a mutex per tag stops two workflows from building the same one at once.
"""

# /tmp is an emptyDir mount in these pods, not a shared temp directory.
# ruff: noqa: S108

from __future__ import annotations

from hera.workflows import ConfigMapEnv, Container, Env, Parameter, S3Artifact, Task
from hera.workflows import models as m

from workflows import images
from workflows.common import (
    CONFIG_MAP,
    OUTPUTS,
    container_security,
    inp,
    param,
    retry_transient,
    runner_step,
    task,
)
from workflows.images import RUNNER_VERSION

# The build context (pyproject.toml, README.md, eval_runner/, images/runner/) as a .tar.gz in the
# artifact repository; `make runner-context` writes it. Argo unpacks tarballs given as input artifacts.
RUNNER_CONTEXT_KEY = f"build/runner-context/fleet-eval-{RUNNER_VERSION}.tar.gz"

RESOLVE_OUTPUTS = ("resolutions", "missing", "library_versions", "image", "library_version")


def resolution_outputs() -> list[Parameter]:
    """The output parameters of a step that resolves versions with --output-dir (resolve, fleet prepare)."""
    return [
        param(name, value_from=m.ValueFrom(path=f"{OUTPUTS}/{name}.{ext}"))
        for name, ext in zip(RESOLVE_OUTPUTS, ("json", "json", "json", "txt", "txt"), strict=True)
    ]


def resolution_arguments() -> list[str]:
    """Where runner images come from, which of them the registry has, where the resolution is written."""
    return [
        "--image-repository",
        inp("image-repository"),
        "--registry-url",
        images.REGISTRY_URL,
        "--registry-repository",
        images.RUNNER_PUSH_REPOSITORY.split("/", 1)[1],
        "--output-dir",
        OUTPUTS,
    ]


def resolve_template() -> Container:
    """Resolve labels to pins and images (core image); lists the images the registry lacks."""
    return runner_step(
        "resolve-versions",
        ["versions", "resolve", "--label", inp("labels"), *resolution_arguments()],
        image=images.CORE_IMAGE,
        inputs=[
            param("labels", description="JSON list of version labels: 0.9.0, v0.9.0, latest, git:<ref>"),
            param("image-repository", images.RUNNER_REPOSITORY),
        ],
        summary_keys=("labels", "images_missing"),
        extra_outputs=resolution_outputs(),
        memory="256Mi",
    )


BUILD_SCRIPT = """set -eu
# pip inside BuildKit reaches the private index over plain HTTP in the cluster: trust its host.
index_host=$(printf '%s' "$FLEET_EVAL_INDEX_URL" | sed -E 's#^[a-z]+://([^/:]+).*#\\1#')
mkdir -p /tmp/outputs
buildctl --addr "$BUILDKIT_ADDR" build --frontend dockerfile.v0 \\
  --local context=/tmp/context --local dockerfile=/tmp/context/images/runner \\
  --opt build-arg:BASE_IMAGE="$BASE_IMAGE" \\
  --opt build-arg:LIBRARY_REQUIREMENT="$LIBRARY_REQUIREMENT" \\
  --opt build-arg:LIBRARY_VERSION="$LIBRARY_VERSION" \\
  --opt build-arg:RUNNER_VERSION="$RUNNER_VERSION" \\
  --opt build-arg:PIP_INDEX_URL="$FLEET_EVAL_INDEX_URL" \\
  --opt build-arg:PIP_TRUSTED_HOST="$index_host" \\
  --output "type=image,name=$PUSH_REPOSITORY:$IMAGE_TAG,push=true,registry.insecure=true" \\
  --metadata-file /tmp/outputs/metadata.json
jq -r '."containerimage.digest"' /tmp/outputs/metadata.json >/tmp/outputs/digest
echo "built $PUSH_REPOSITORY:$IMAGE_TAG@$(cat /tmp/outputs/digest)"
"""


def build_image_template() -> Container:
    """Build one runner image with BuildKit and push it to the cluster registry; outputs its digest."""
    container = Container(
        name="build-runner-image",
        image=images.BUILDKIT_IMAGE,
        image_pull_policy="IfNotPresent",
        command=["sh", "-c"],
        args=[BUILD_SCRIPT],
        inputs=[
            param("requirement", description="what pip installs, e.g. battery-lib==0.9.0"),
            param("library_version"),
            param("image_tag"),
            param("runner-context-key", RUNNER_CONTEXT_KEY),
            S3Artifact(name="context", path="/tmp/context", key=inp("runner-context-key")),
        ],
        outputs=[param("digest", value_from=m.ValueFrom(path=f"{OUTPUTS}/digest", default=""))],
        # Parameters reach the script as environment variables, never spliced into shell text.
        env=[
            Env(name="LIBRARY_REQUIREMENT", value=inp("requirement")),
            Env(name="LIBRARY_VERSION", value=inp("library_version")),
            Env(name="IMAGE_TAG", value=inp("image_tag")),
            Env(name="RUNNER_VERSION", value=RUNNER_VERSION),
            Env(name="PUSH_REPOSITORY", value=images.RUNNER_PUSH_REPOSITORY),
            Env(name="BASE_IMAGE", value=images.RUNNER_BASE_IMAGE),
            Env(name="BUILDKIT_ADDR", value=images.BUILDKIT_ADDR),
            Env(name="HOME", value="/tmp"),  # the root filesystem is read-only
            ConfigMapEnv(
                name="FLEET_EVAL_INDEX_URL", config_map_name=CONFIG_MAP, config_map_key="FLEET_EVAL_INDEX_URL"
            ),
        ],
        security_context=container_security(),
        volumes=[m.Volume(name="tmp", empty_dir=m.EmptyDirVolumeSource())],
        volume_mounts=[m.VolumeMount(name="tmp", mount_path="/tmp")],  # scratch
        retry_strategy=retry_transient(limit=3),
        synchronization=m.Synchronization(mutexes=[m.Mutex(name="runner-image-" + inp("image_tag"))]),
    )
    return container


def build_missing_images(*, after: str = "resolve") -> Task:
    """A DAG task building, in parallel, every runner image the ``after`` resolve step found missing.

    Call inside a DAG; the caller wires it after that step.
    """
    return task(
        build_image_template(),
        "build-image",
        with_param=f"{{{{tasks.{after}.outputs.parameters.missing}}}}",
        arguments={
            "requirement": "{{item.requirement}}",
            "library_version": "{{item.library_version}}",
            "image_tag": "{{item.image_tag}}",
            "runner-context-key": inp("runner-context-key"),
        },
    )
