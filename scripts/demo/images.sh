#!/usr/bin/env bash
# Builds the images the chart and the demo need and pushes them to the cluster registry (localhost:5001):
# the core runner, one runner per demo battery-lib version, the field simulator and pypiserver.
# Tags name versions, not content (eval_runner's version stays the same between commits), so an image is
# skipped only when the registry has its tag AND the last push of that tag came from the same context
# (a digest over the context's files and build arguments, kept in $STAMPS); FORCE=1 rebuilds all.
# Pods pull runner images Always, so a rebuilt tag reaches them. Logs: $LOG_DIR/*.log.
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
STAMPS=${FLEET_EVAL_CACHE:-/var/cache/fleet-eval}/demo-images
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$LOG_DIR" "$STAMPS"

log() { printf '[images %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# in_registry IMAGE: the registry already serves this tag.
in_registry() {
  local ref=${1#"$REGISTRY"/} repo tag
  repo=${ref%:*} tag=${ref##*:}
  curl -fs -o /dev/null -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
    "http://$REGISTRY/v2/$repo/manifests/$tag"
}

# context_digest DIR WORDS...: 16 hex digits over DIR's file paths and bytes plus WORDS (build arguments).
# Arguments name files under this run's temporary folder or the checkout: those prefixes are replaced,
# so the same content gives the same digest in every run and every clone.
context_digest() {
  local dir=$1; shift
  { (cd "$dir" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum)
    printf '%s\n' "$@" | sed -e "s#$WORK#<work>#g" -e "s#$REPO#<repo>#g"; } | sha256sum | cut -c1-16
}
stamp_of() { printf '%s/%s' "$STAMPS" "$(printf '%s' "${1#"$REGISTRY"/}" | tr '/:' '__')"; }

# up_to_date IMAGE DIGEST: the registry serves IMAGE and its last push was built from DIGEST.
up_to_date() {
  [[ -z ${FORCE:-} ]] && in_registry "$1" && [[ "$(cat "$(stamp_of "$1")" 2>/dev/null)" == "$2" ]]
}

# build IMAGE CONTEXT DOCKER_BUILD_ARGS...: build (legacy builder, as scripts/build does) and push,
# unless up to date. $DIGEST_EXTRA joins the digest: what the build depends on beyond its context and
# arguments (the content of a base image named by a version tag).
build() {
  local image=$1 ctx=$2; shift 2
  local digest; digest=$(context_digest "$ctx" "$@" "${DIGEST_EXTRA:-}")
  if up_to_date "$image" "$digest"; then log "$image: in the registry, built from this context"; return; fi
  local l; l=$LOG_DIR/demo-image-$(printf '%s' "${image#"$REGISTRY"/}" | tr '/:' '__').log
  log "$image: building (context $digest; log $l)"
  local t0=$SECONDS
  DOCKER_BUILDKIT=0 docker build -t "$image" --label "org.fleet-eval.context-digest=$digest" \
    ${REVISION:+--build-arg REVISION="$REVISION"} "$@" "$ctx" >"$l" 2>&1 \
    || { log "docker build of $image failed; end of $l:"; tail -n 30 "$l" >&2; return 1; }
  docker push "$image" >>"$l" 2>&1 || { log "docker push of $image failed; see $l"; return 1; }
  printf '%s' "$digest" >"$(stamp_of "$image")"
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
cp -r "$REPO/pyproject.toml" "$REPO/eval_runner" "$c/"
# pyproject.toml names README.md as the package description; a fixed stub keeps documentation edits
# from changing the context digest (and rebuilding all seven images).
printf '# fleet-eval\n\nThe evaluation runner; see the repository README.\n' >"$c/README.md"
mkdir -p "$c/images" && cp -r "$REPO/images/runner" "$c/images/"
find "$c" -name __pycache__ -prune -exec rm -rf {} +
# REVISION (the commit, a label) stays out of the digest: a commit that changes no file in the context
# needs no new image.
REVISION=$(git -C "$REPO" rev-parse HEAD) build "$CORE" "$c" -f "$c/images/runner/Dockerfile" \
  --build-arg BASE_IMAGE="$ROOT_BASE" --build-arg EXTRAS=review --build-arg LIBRARY_VERSION=none \
  --build-arg PIP_INDEX_URL=https://pypi.org/simple/ \
  --build-arg PIP_TRUSTED_HOST="pypi.org files.pythonhosted.org" \
  --build-arg RUNNER_VERSION="$RUNNER_VERSION"
CORE_DIGEST=$(context_digest "$c")

# One runner per library version, from the wheels the tests' package index builds (cached by digest),
# layered on the runner Dockerfile's image without a library and without the review extras (streamlit
# pulls pandas 3, which needs numpy 2; battery-lib 0.6.0 needs numpy<2). Kept local, never pushed.
# Tagged by the core context's digest, so a change to eval_runner gives a new base for the libraries.
NOLIB=fleet-eval-demo/runner-nolib:$RUNNER_VERSION-$CORE_DIGEST
ensure_nolib() {
  docker image inspect "$NOLIB" >/dev/null 2>&1 && return
  log "$NOLIB: building (the base of the library runners)"
  DOCKER_BUILDKIT=0 docker build -t "$NOLIB" -f "$WORK/core/images/runner/Dockerfile" \
    --build-arg BASE_IMAGE="$ROOT_BASE" --build-arg LIBRARY_VERSION=none \
    --build-arg PIP_INDEX_URL=https://pypi.org/simple/ \
    --build-arg PIP_TRUSTED_HOST="pypi.org files.pythonhosted.org" \
    --build-arg RUNNER_VERSION="$RUNNER_VERSION" "$WORK/core" >"$LOG_DIR/demo-image-runner-nolib.log" 2>&1 \
    || { log "docker build of $NOLIB failed; see $LOG_DIR/demo-image-runner-nolib.log"; exit 1; }
}
for v in $VERSIONS; do
  c=$(ctx "lib-$v")
  mkdir -p "$c/wheels"
  wheel=$(cd "$REPO" && "$PY" -c "from tests.services.package_index import build_wheel; print(build_wheel('$v'))")
  cp "$wheel" "$c/wheels/"
  image=$REGISTRY/fleet-eval/runner:$v-runner-$RUNNER_VERSION
  args=(-f "$HERE/library.Dockerfile" --build-arg CORE_IMAGE="$NOLIB" --build-arg LIBRARY_VERSION="$v"
        --build-arg RUNNER_VERSION="$RUNNER_VERSION")
  # The Dockerfile lives outside the context: its bytes join the digest.
  digest_extra=$(sha256sum <"$HERE/library.Dockerfile")
  up_to_date "$image" "$(context_digest "$c" "${args[@]}" "$digest_extra")" || ensure_nolib
  DIGEST_EXTRA=$digest_extra build "$image" "$c" "${args[@]}"
done

c=$(ctx fieldsim)
cp -r "$REPO/demo/fieldsim" "$c/fieldsim"
# fieldsim's dependency on fleet-eval is the core image's own install (a uv workspace member).
find "$c" -name __pycache__ -prune -exec rm -rf {} +
DIGEST_EXTRA="$CORE_DIGEST $(sha256sum <"$HERE/fieldsim.Dockerfile")" \
  build "$REGISTRY/fleet-eval/fieldsim:$FIELDSIM_VERSION" "$c" -f "$HERE/fieldsim.Dockerfile" --build-arg CORE_IMAGE="$CORE"

c=$(ctx pypiserver)
DIGEST_EXTRA=$(sha256sum <"$HERE/pypiserver.Dockerfile") \
  build "$REGISTRY/fleet-eval/pypiserver:$PYPISERVER_VERSION" "$c" -f "$HERE/pypiserver.Dockerfile" \
  --build-arg BASE_IMAGE="$ROOT_BASE" --build-arg PYPISERVER_VERSION="$PYPISERVER_VERSION"
log "all demo images are in $REGISTRY"
