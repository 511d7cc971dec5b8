"""The single list of images and registry addresses the workflows use.

Pods pull through containerd's mirror of the cluster registry (``localhost:5001``); BuildKit pushes to
the registry container by its in-cluster name (``kind-registry:5000``). Changing the registry means
changing this module and running ``make render``: rendered templates never compute an image.
"""

from __future__ import annotations

from eval_runner import __version__

# Runner image tags and template labels carry the eval_runner version.
RUNNER_VERSION: str = __version__

# Where pods pull runner images from; one tag per (library pin, eval_runner version).
RUNNER_REPOSITORY = "localhost:5001/fleet-eval/runner"
# The same repository as BuildKit pushes to it, and its registry's HTTP API for existence checks.
RUNNER_PUSH_REPOSITORY = "kind-registry:5000/fleet-eval/runner"
REGISTRY_URL = "http://kind-registry:5000"
# The runner image without a library (built with EXTRAS=review): datasets, reviews, comparison, gate,
# fleet bookkeeping and the review UI. `make runner-image` builds it; the cluster setup pushes it.
CORE_IMAGE = f"{RUNNER_REPOSITORY}:core-runner-{RUNNER_VERSION}"
# The base the runner Dockerfile builds FROM inside the cluster (python3 with venv and pip).
RUNNER_BASE_IMAGE = "kind-registry:5000/fleet-eval/python:3.11-bookworm"
# buildctl talks to the cluster's buildkitd; the client image is the same as the daemon's.
BUILDKIT_IMAGE = "localhost:5001/moby/buildkit:v0.32.2"
BUILDKIT_ADDR = "tcp://buildkitd.fleet-infra.svc.cluster.local:1234"

ALL_IMAGES: tuple[str, ...] = (CORE_IMAGE, BUILDKIT_IMAGE)
