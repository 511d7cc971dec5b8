#!/usr/bin/env bash
# Builds the images the chart and the demo need and pushes them to the cluster registry (localhost:5001):
# the core runner, one runner per demo battery-lib version, the field simulator and pypiserver.
# An image whose tag the registry already has is skipped (FORCE=1 rebuilds). Logs: $LOG_DIR/*.log.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
HERE=$REPO/scripts/demo/images
PY=${PY:-$REPO/.venv/bin/python}
REGISTRY=${REGISTRY:-localhost:5001}
BASE_IMAGE=$REGISTRY/fleet-eval/python:3.11-bookworm
PYPISERVER_VERSION=2.4.2
FIELDSIM_VERSION=0.1.0
VERSIONS=${VERSIONS:-0.6.0 0.8.0 0.9.0 0.10.0}
RUNNER_VERSION=$("$PY" -c 'import eval_runner; print(eval_runner.__version__)')
CORE=$REGISTRY/fleet-eval/runner:core-runner-$RUNNER_VERSION
LOG_DIR=${LOG_DIR:-${FLEET_EVAL_CACHE:-/var/cache/fleet-eval}/logs}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$LOG_DIR"

log() { printf '[images %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# in_registry IMAGE: the registry already serves this tag.
in_registry() {
  local ref=${1#"$REGISTRY"/} repo tag
  repo=${ref%:*} tag=${ref##*:}
  curl -fs -o /dev/null -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
    "http://$REGISTRY/v2/$repo/manifests/$tag"
}

# build IMAGE CONTEXT DOCKER_BUILD_ARGS...: build (legacy builder, as scripts/build does) and push.
build() {
  local image=$1 ctx=$2; shift 2
  if [[ -z ${FORCE:-} ]] && in_registry "$image"; then log "$image: in the registry"; return; fi
  local l; l=$LOG_DIR/demo-image-$(printf '%s' "${image#"$REGISTRY"/}" | tr '/:' '__').log
  log "$image: building (log $l)"
  local t0=$SECONDS
  DOCKER_BUILDKIT=0 docker build -t "$image" "$@" "$ctx" >"$l" 2>&1 \
    || { log "docker build of $image failed; end of $l:"; tail -n 30 "$l" >&2; return 1; }
  docker push "$image" >>"$l" 2>&1 || { log "docker push of $image failed; see $l"; return 1; }
  log "$image: built and pushed in $((SECONDS - t0))s"
}

ctx() { local d=$WORK/$1; mkdir -p "$d"; cp /etc/ssl/certs/ca-certificates.crt "$d/"; echo "$d"; }

docker image inspect "$BASE_IMAGE" >/dev/null 2>&1 || docker pull "$BASE_IMAGE" >/dev/null
# The cluster's Python base runs as uid 1000 and lacks python3-venv, but the runner Dockerfile's build
# stage writes /opt as root with `python3 -m venv`: build on a local variant of the same base that
# has both (the runtime stage ends as 10001 anyway).
ROOT_BASE=fleet-eval-demo/python-root-venv:3.11-bookworm
if ! docker image inspect "$ROOT_BASE" >/dev/null 2>&1; then
  printf 'FROM %s\nUSER 0\nRUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3-venv && rm -rf /var/lib/apt/lists/*\n' \
    "$BASE_IMAGE" | DOCKER_BUILDKIT=0 docker build -q -t "$ROOT_BASE" - >/dev/null
fi

# Core runner: the real runner Dockerfile (images/runner) on the cluster's Python base, pip from PyPI
# through the host's CA bundle (the build stage trusts the index hosts instead of mounting a bundle).
c=$(ctx core)
cp -r "$REPO/pyproject.toml" "$REPO/README.md" "$REPO/eval_runner" "$c/"
mkdir -p "$c/images" && cp -r "$REPO/images/runner" "$c/images/"
find "$c" -name __pycache__ -prune -exec rm -rf {} +
build "$CORE" "$c" -f "$c/images/runner/Dockerfile" \
  --build-arg BASE_IMAGE="$ROOT_BASE" --build-arg EXTRAS=review --build-arg LIBRARY_VERSION=none \
  --build-arg PIP_INDEX_URL=https://pypi.org/simple/ \
  --build-arg PIP_TRUSTED_HOST="pypi.org files.pythonhosted.org" \
  --build-arg RUNNER_VERSION="$RUNNER_VERSION" --build-arg REVISION="$(git -C "$REPO" rev-parse HEAD)"

# One runner per library version, from the wheels the tests' package index builds (cached by digest),
# layered on the runner Dockerfile's image without a library and without the review extras (streamlit
# pulls pandas 3, which needs numpy 2; battery-lib 0.6.0 needs numpy<2). Kept local, never pushed.
NOLIB=fleet-eval-demo/runner-nolib:$RUNNER_VERSION
missing_libs=
for v in $VERSIONS; do
  [[ -n ${FORCE:-} ]] || ! in_registry "$REGISTRY/fleet-eval/runner:$v-runner-$RUNNER_VERSION" || continue
  missing_libs=1
done
if [[ -n $missing_libs ]] && ! docker image inspect "$NOLIB" >/dev/null 2>&1; then
  log "$NOLIB: building (the base of the library runners)"
  c=$WORK/core
  DOCKER_BUILDKIT=0 docker build -t "$NOLIB" -f "$c/images/runner/Dockerfile" \
    --build-arg BASE_IMAGE="$ROOT_BASE" --build-arg LIBRARY_VERSION=none \
    --build-arg PIP_INDEX_URL=https://pypi.org/simple/ \
    --build-arg PIP_TRUSTED_HOST="pypi.org files.pythonhosted.org" \
    --build-arg RUNNER_VERSION="$RUNNER_VERSION" "$c" >"$LOG_DIR/demo-image-runner-nolib.log" 2>&1 \
    || { log "docker build of $NOLIB failed; see $LOG_DIR/demo-image-runner-nolib.log"; exit 1; }
fi
for v in $VERSIONS; do
  c=$(ctx "lib-$v")
  mkdir -p "$c/wheels"
  wheel=$(cd "$REPO" && "$PY" -c "from tests.services.package_index import build_wheel; print(build_wheel('$v'))")
  cp "$wheel" "$c/wheels/"
  build "$REGISTRY/fleet-eval/runner:$v-runner-$RUNNER_VERSION" "$c" -f "$HERE/library.Dockerfile" \
    --build-arg CORE_IMAGE="$NOLIB" --build-arg LIBRARY_VERSION="$v" --build-arg RUNNER_VERSION="$RUNNER_VERSION"
  echo "$wheel" >>"$WORK/wheels.txt"
done

c=$(ctx fieldsim)
cp -r "$REPO/demo/fieldsim" "$c/fieldsim"
# fieldsim's dependency on fleet-eval is the core image's own install (a uv workspace member).
find "$c" -name __pycache__ -prune -exec rm -rf {} +
build "$REGISTRY/fleet-eval/fieldsim:$FIELDSIM_VERSION" "$c" -f "$HERE/fieldsim.Dockerfile" --build-arg CORE_IMAGE="$CORE"

c=$(ctx pypiserver)
build "$REGISTRY/fleet-eval/pypiserver:$PYPISERVER_VERSION" "$c" -f "$HERE/pypiserver.Dockerfile" \
  --build-arg BASE_IMAGE="$ROOT_BASE" --build-arg PYPISERVER_VERSION="$PYPISERVER_VERSION"
log "all demo images are in $REGISTRY"
