"""Templates shared by evaluate and fleet-rollout: resolve version labels, build missing runner images, pin.

resolve (core image) turns labels into pins and lists the images the registry lacks; it also hands on,
as artifacts, the runner build context the core image carries and the source tree of every Git label to
build. build-image (BuildKit) builds exactly those images in the cluster and pushes them, one build at a
time in the whole cluster (a mutex), so no image is built twice. pin records each image's digest without
resolving the labels again, and every runner pod then references its image by that digest.
"""

# /tmp is an emptyDir mount in these pods, not a shared temp directory.
# ruff: noqa: S108

from __future__ import annotations

from hera.workflows import Artifact, ConfigMapEnv, Container, Env, Parameter, S3Artifact, Task
from hera.workflows import models as m

from workflows import images
from workflows.common import (
    ARGO_PREFIX,
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

RESOLVE_OUTPUTS = (
    "resolutions",
    "missing",
    "library_versions",
    "evaluations",
    "image",
    "library_version",
    "exact_label",
)
# The runner build context inside the core image (images/runner/Dockerfile, target core).
RUNNER_CONTEXT_PATH = "/opt/fleet-eval/runner-context"
LIBRARY_SOURCES_PATH = f"{OUTPUTS}/library-src"  # eval_runner.commands.versions.LIBRARY_SOURCES

# The mutex every runner image build takes (build_image_template says why one for all).
BUILD_MUTEX = "runner-image-build"


def resolution_outputs() -> list[Parameter]:
    """The output parameters of a step that resolves versions with --output-dir (resolve, pin, fleet prepare)."""
    return [
        param(name, value_from=m.ValueFrom(path=f"{OUTPUTS}/{name}.{ext}"))
        for name, ext in zip(RESOLVE_OUTPUTS, ("json", "json", "json", "json", "txt", "txt", "txt"), strict=True)
    ]


def build_inputs_artifacts() -> list[S3Artifact]:
    """What a resolving step hands to build-image: the runner build context and the Git source trees."""
    key = f"{ARGO_PREFIX}/build-inputs/{{{{pod.name}}}}"
    return [
        S3Artifact(name="runner-context", path=RUNNER_CONTEXT_PATH, key=f"{key}/runner-context.tgz"),
        S3Artifact(name="library-sources", path=LIBRARY_SOURCES_PATH, key=f"{key}/library-src.tgz", optional=True),
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
        extra_outputs=[*resolution_outputs(), *build_inputs_artifacts()],
        memory="256Mi",
    )


def pin_template() -> Container:
    """Record the digest of every resolved image once the missing ones are built (labels are not re-resolved)."""
    return runner_step(
        "pin-images",
        [
            "versions",
            "pin",
            "--resolutions",
            inp("resolutions"),
            "--registry-url",
            images.REGISTRY_URL,
            "--registry-repository",
            images.RUNNER_PUSH_REPOSITORY.split("/", 1)[1],
            "--output-dir",
            OUTPUTS,
        ],
        image=images.CORE_IMAGE,
        inputs=[param("resolutions", description="JSON list the resolve step wrote")],
        summary_keys=("labels", "images"),
        extra_outputs=resolution_outputs(),
        memory="256Mi",
    )


# Parameters reach the script as environment variables, never spliced into shell text. The library goes
# into the context's library/ folder: a release as its hashed requirement line, a Git commit as its tree.
BUILD_SCRIPT = """set -eu
mkdir -p /tmp/outputs
report() { # report DIGEST SECONDS BUILT INSTALLED_SHA256: the step's outputs and its summary for the Argo UI
  printf '%s' "$1" >/tmp/outputs/digest; printf '%s' "$2" >/tmp/outputs/build_seconds
  jq -cn --arg image "$PUSH_REPOSITORY:$IMAGE_TAG" --arg digest "$1" --argjson build_seconds "$2" \\
    --arg profile "$PROFILE" --argjson built "$3" --arg installed_sha256 "$4" \\
    '{$image, $digest, $build_seconds, $profile, $built, $installed_sha256}' | tee /tmp/outputs/summary.json
}
# Under the mutex: another workflow that needed the same image may have built it while this one waited.
existing=$(curl -fsI -H 'Accept: application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json' \\
  "$REGISTRY_URL/v2/${PUSH_REPOSITORY#*/}/manifests/$IMAGE_TAG" 2>/dev/null \\
  | tr -d '\\r' | awk -F': ' 'tolower($1) == "docker-content-digest" {print $2}' || true)
if [ -n "$existing" ]; then
  echo "$PUSH_REPOSITORY:$IMAGE_TAG exists already ($existing): built by another workflow meanwhile"
  report "$existing" 0 false ""; exit 0
fi
rm -rf /tmp/build && cp -r /tmp/context /tmp/build
if [ -n "$LIBRARY_INSTALL" ]; then
  printf '%s\\n' "$LIBRARY_INSTALL" >/tmp/build/library/requirement.txt
elif [ -d "/tmp/sources/$LIBRARY_VERSION" ]; then
  cp -r "/tmp/sources/$LIBRARY_VERSION" /tmp/build/library/src
else
  echo "build: $LIBRARY_VERSION has neither a hashed requirement nor a source tree" >&2; exit 2
fi
# A build that failed reaching the index, the registry or buildkitd exits 75 (retried with backoff); any
# other failure (a missing wheel, a hash mismatch, a broken library) keeps buildctl's code and is final.
UNREACHABLE='timed out|i/o timeout|connection refused|connection reset|error sending request|code = Unavailable'
UNREACHABLE="$UNREACHABLE|dns error|no such host|temporary failure in name resolution"
UNREACHABLE="$UNREACHABLE|502 Bad Gateway|503 Service Unavailable|504 Gateway"
build() { # build TARGET OUTPUT [FLAG...]: run_buildctl, its log kept, its failure classified
  # The status goes through a file: in a pipeline, sh reports tee's, and tee keeps the log live.
  { run_buildctl "$@" 2>&1 && echo 0 >/tmp/build.rc || echo $? >/tmp/build.rc; } | tee /tmp/build.log
  code=$(cat /tmp/build.rc)
  [ "$code" -eq 0 ] && return 0
  if grep -Eiq "$UNREACHABLE" /tmp/build.log; then
    echo "build: $1 failed reaching a service (see above); exit 75 so the step is retried" >&2; exit 75
  fi
  exit "$code"
}
run_buildctl() { # run_buildctl TARGET OUTPUT [FLAG...]: one buildctl call with this image's build arguments
  target=$1 output=$2; shift 2
  buildctl --addr "$BUILDKIT_ADDR" build --frontend dockerfile.v0 \\
    --local context=/tmp/build --local dockerfile=/tmp/build --opt target="$target" \\
    --opt build-arg:BASE_IMAGE="$BASE_IMAGE" \\
    --opt build-arg:PROFILE="$PROFILE" \\
    --opt build-arg:PIP_INDEX_URL="$FLEET_EVAL_INDEX_URL" \\
    --opt build-arg:LIBRARY_REQUIREMENT="$LIBRARY_REQUIREMENT" \\
    --opt build-arg:LIBRARY_VERSION="$LIBRARY_VERSION" \\
    --opt build-arg:RUNNER_VERSION="$RUNNER_VERSION" \\
    --opt build-arg:CONTEXT_DIGEST="$(cat /tmp/build/CONTEXT_DIGEST)" \\
    --opt build-arg:LOCK_SHA256="$(cat /tmp/build/LOCK_SHA256)" \\
    --output "$output" "$@"
}
started=$(date +%s)
build runner "type=image,name=$PUSH_REPOSITORY:$IMAGE_TAG,push=true,registry.insecure=true" \\
  --metadata-file /tmp/outputs/metadata.json
seconds=$(( $(date +%s) - started ))
# The same build's installed package set (every layer is cached by now: this takes a second or two).
build installed "type=local,dest=/tmp/installed"
cp /tmp/installed/installed.txt /tmp/outputs/installed
report "$(jq -r '."containerimage.digest"' /tmp/outputs/metadata.json)" "$seconds" true \\
  "$(sha256sum /tmp/outputs/installed | cut -d' ' -f1)"
"""


def build_image_template() -> Container:
    """Build one runner image with BuildKit from the core image's build context and push it; outputs its digest."""
    outputs = [
        param(name, value_from=m.ValueFrom(path=f"{OUTPUTS}/{name}", default=""))
        for name in ("digest", "build_seconds", "installed")
    ]
    return Container(
        name="build-runner-image",
        image=images.BUILDKIT_IMAGE,
        # Always: `make cluster` rebuilds this tag when the BuildKit image changes (one manifest request).
        image_pull_policy="Always",
        command=["sh", "-c"],
        args=[BUILD_SCRIPT],
        inputs=[
            param("requirement", description="for the image label: battery-lib==0.9.0 or a git+ URL"),
            param("install", description="the hashed requirement line; empty for a Git build"),
            param("library_version"),
            param("image_tag"),
            param("profile", description="the locked pin set (images/runner/requirements/<profile>.txt)"),
            Artifact(name="runner-context", path="/tmp/context"),
            Artifact(name="library-sources", path="/tmp/sources", optional=True),
        ],
        outputs=[
            *outputs,
            param("summary", value_from=m.ValueFrom(path=f"{OUTPUTS}/summary.json", default="{}")),
        ],
        env=[
            Env(name="LIBRARY_REQUIREMENT", value=inp("requirement")),
            Env(name="LIBRARY_INSTALL", value=inp("install")),
            Env(name="LIBRARY_VERSION", value=inp("library_version")),
            Env(name="IMAGE_TAG", value=inp("image_tag")),
            Env(name="PROFILE", value=inp("profile")),
            Env(name="RUNNER_VERSION", value=RUNNER_VERSION),
            Env(name="PUSH_REPOSITORY", value=images.RUNNER_PUSH_REPOSITORY),
            Env(name="BASE_IMAGE", value=images.RUNNER_BASE_IMAGE),
            Env(name="BUILDKIT_ADDR", value=images.BUILDKIT_ADDR),
            Env(name="REGISTRY_URL", value=images.REGISTRY_URL),
            Env(name="HOME", value="/tmp"),  # the root filesystem is read-only
            ConfigMapEnv(
                name="FLEET_EVAL_INDEX_URL", config_map_name=CONFIG_MAP, config_map_key="FLEET_EVAL_INDEX_URL"
            ),
        ],
        security_context=container_security(),
        volumes=[m.Volume(name="tmp", empty_dir=m.EmptyDirVolumeSource())],
        volume_mounts=[m.VolumeMount(name="tmp", mount_path="/tmp")],  # scratch
        retry_strategy=retry_transient(limit=3),
        # One build at a time in the cluster, not one per image tag: concurrent buildctl clients share
        # BuildKit's cache of the local context (same local name, no session key), and a build of 0.9.0
        # whose second call ran beside 0.6.0's installed 0.6.0's wheel (e2e, 2026-12-08). The script's
        # registry check under this mutex still skips an image another workflow built meanwhile.
        synchronization=m.Synchronization(mutexes=[m.Mutex(name=BUILD_MUTEX)]),
    )


def build_missing_images(after: Task) -> Task:
    """A DAG task building, in parallel, every runner image the ``after`` task found missing.

    Call inside a DAG; the caller wires it after that task, whose artifacts it builds from.
    """
    return task(
        build_image_template(),
        "build-image",
        with_param=after.get_parameter("missing").value,
        arguments=[
            Parameter(name="requirement", value="{{item.requirement}}"),
            Parameter(name="install", value="{{item.install}}"),
            Parameter(name="library_version", value="{{item.library_version}}"),
            Parameter(name="image_tag", value="{{item.image_tag}}"),
            Parameter(name="profile", value="{{item.profile}}"),
            after.get_artifact("runner-context"),
            Artifact(name="library-sources", from_=after.get_artifact("library-sources").from_, optional=True),
        ],
    )
