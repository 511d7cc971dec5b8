#!/usr/bin/env bash
# Builds the images the chart needs that are not library runners, and pushes them to the cluster registry
# (localhost:5001): the core runner (datasets, review UI, compare, gate, fleet bookkeeping), the field
# simulator, the package index and the Git server. Library runner images are never built here: the
# evaluate and fleet-rollout workflows build each one in the cluster, from the build context the core
# image carries.
# An image is skipped when the registry has its tag and its last push came from the same context (a
# digest over the context's files and build arguments, kept in $STAMPS); FORCE=1 rebuilds all. Core pods
# pull Always, so a rebuilt tag reaches them. Logs: $LOG_DIR/demo-image-*.log.
set -eEuo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
HERE=$REPO/scripts/demo/images
PY=${PY:-$REPO/.venv/bin/python}
REGISTRY=${REGISTRY:-localhost:5001}
CACHE=${FLEET_EVAL_CACHE:-/var/cache/fleet-eval}
LOG_DIR=$CACHE/logs
STAMPS=$CACHE/demo-images
# The cluster's Python base (python3 only, uid 1000; built by `make cluster`), by its local name.
PYTHON_BASE=fleet-eval/python:3.11-bookworm
DEBIAN_BASE=local/debian:bookworm
PYPISERVER_VERSION=2.4.2
# pypiserver alone serves with wsgiref, one request at a time: a build downloading pyarrow keeps every
# other build (and the readiness probe) waiting until connections time out. waitress serves in threads.
WAITRESS_VERSION=3.0.2
PYPISERVER_TAG=$PYPISERVER_VERSION-waitress$WAITRESS_VERSION
FIELDSIM_VERSION=0.1.0
GIT_SERVER_VERSION=0.1.0
RUNNER_VERSION=$("$PY" -c 'import eval_runner; print(eval_runner.__version__)')
CORE=$REGISTRY/fleet-eval/runner:core-runner-$RUNNER_VERSION
WORK=$(mktemp -d)
INDEX_PID=
cleanup() { [ -z "$INDEX_PID" ] || kill "$INDEX_PID" 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
trap 'log "failed at line $LINENO: $BASH_COMMAND"' ERR
mkdir -p "$LOG_DIR" "$STAMPS"

log() { printf '[images %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

for base in "$PYTHON_BASE" "$DEBIAN_BASE"; do
  docker image inspect "$base" >/dev/null 2>&1 || { log "$base is missing: run make cluster first"; exit 1; }
done

# in_registry IMAGE: the registry already serves this tag.
in_registry() {
  local ref=${1#"$REGISTRY"/} repo tag
  repo=${ref%:*} tag=${ref##*:}
  curl -fs -o /dev/null -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
    "http://$REGISTRY/v2/$repo/manifests/$tag"
}

# context_digest DIR WORDS...: 16 hex digits over DIR's file paths and bytes plus WORDS (build arguments,
# with this run's temporary folder and the checkout replaced, so every run and clone agrees). Two build
# arguments stay out: PIP_INDEX_URL (this run's local index, on a random port; what it serves is the lock,
# whose hash is an argument) and REVISION (the commit, a label: a commit that changes no file in the
# context needs no new image). With them in, every run rebuilt the core image (about 2.5 minutes).
context_digest() {
  local dir=$1; shift
  { (cd "$dir" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum)
    printf '%s\n' "$@" | sed -e '/^PIP_INDEX_URL=/d' -e '/^REVISION=/d' -e "s#$WORK#<work>#g" -e "s#$REPO#<repo>#g"
  } | sha256sum | cut -c1-16
}
stamp_of() { printf '%s/%s' "$STAMPS" "$(printf '%s' "${1#"$REGISTRY"/}" | tr '/:' '__')"; }

# build IMAGE CONTEXT DOCKERFILE DOCKER_BUILD_ARGS...: build with the classic builder on the host network
# (RUN steps reach the local index on 127.0.0.1) and push, unless the registry has it from this context.
# $DIGEST_EXTRA joins the digest: what the build depends on beyond its context and arguments.
build() {
  local image=$1 ctx=$2 dockerfile=$3; shift 3
  local digest; digest=$(context_digest "$ctx" "$@" "$(sha256sum <"$dockerfile")" "${DIGEST_EXTRA:-}")
  if [[ -z ${FORCE:-} ]] && in_registry "$image" && [[ "$(cat "$(stamp_of "$image")" 2>/dev/null)" == "$digest" ]]; then
    log "$image: in the registry, built from this context"
    return
  fi
  local l; l=$LOG_DIR/demo-image-$(printf '%s' "${image#"$REGISTRY"/}" | tr '/:' '__').log
  log "$image: building (context $digest; log $l)"
  local t0=$SECONDS
  DOCKER_BUILDKIT=0 docker build --network host -t "$image" -f "$dockerfile" \
    --label "org.fleet-eval.context-digest=$digest" "$@" "$ctx" >"$l" 2>&1 \
    || { log "docker build of $image failed; end of $l:"; tail -n 30 "$l" >&2; return 1; }
  docker push "$image" >>"$l" 2>&1 || { log "docker push of $image failed; see $l"; return 1; }
  printf '%s' "$digest" >"$(stamp_of "$image")"
  log "$image: built and pushed in $((SECONDS - t0))s ($(docker image inspect -f '{{.Size}}' "$image" | numfmt --to=si)B)"
}

# A local index over the wheelhouse: the same locked wheels, by the same hashes, as in the cluster.
WHEELHOUSE=$(bash "$REPO/scripts/build/wheelhouse.sh" "pypiserver==$PYPISERVER_VERSION" "waitress==$WAITRESS_VERSION")
INDEX_PORT=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$(dirname "$PY")/pypi-server" run --host 127.0.0.1 --port "$INDEX_PORT" --disable-fallback \
  --authenticate . --passwords . "$WHEELHOUSE" >"$LOG_DIR/demo-images-index.log" 2>&1 &
INDEX_PID=$!
INDEX=http://127.0.0.1:$INDEX_PORT/simple/
for _ in $(seq 100); do curl -fs -o /dev/null "$INDEX" && break; sleep 0.2; done
curl -fs -o /dev/null "$INDEX" || { log "the local index on $INDEX did not start; see $LOG_DIR/demo-images-index.log"; exit 1; }

# ---- contexts ------------------------------------------------------------------------------------
runner_context() { # the context every runner image is built from (scripts/build/runner_context.py)
  "$PY" "$REPO/scripts/build/runner_context.py" context --out "$WORK/runner" >/dev/null
}
fieldsim_context() {
  mkdir -p "$WORK/fieldsim" && cp -r "$REPO/demo/fieldsim/fieldsim" "$WORK/fieldsim/fieldsim"
  find "$WORK/fieldsim" -name __pycache__ -prune -exec rm -rf {} +
}
pypiserver_context() {
  mkdir -p "$WORK/pypiserver"
  cp "$REPO/images/runner/bootstrap_uv.py" "$REPO/images/runner/requirements/tools.txt" "$WORK/pypiserver/"
  # Hard links: the wheelhouse is large and lives on the same file system as the temporary folder.
  cp -rl "$WHEELHOUSE" "$WORK/pypiserver/wheelhouse" 2>/dev/null || cp -r "$WHEELHOUSE" "$WORK/pypiserver/wheelhouse"
  rm -f "$WORK"/pypiserver/wheelhouse/.complete-*
}
git_server_context() {
  mkdir -p "$WORK/git-server/battery-lib"
  cp "$HERE"/git-server/{seed-battery-lib.sh,lighttpd.conf,entrypoint.sh} "$WORK/git-server/"
  for dir in "$REPO"/demo/battery-lib/*/; do cp -r "$dir" "$WORK/git-server/battery-lib/"; done
  find "$WORK/git-server" -name __pycache__ -prune -exec rm -rf {} +
}

runner_context
fieldsim_context
pypiserver_context
git_server_context
CONTEXT_DIGEST=$(cat "$WORK/runner/CONTEXT_DIGEST")

# ---- the images: one line each (image, context, Dockerfile, build arguments) --------------------------
# PIP_INDEX_URL and REVISION stay out of the digest (context_digest says why).
DIGEST_EXTRA="$(docker image inspect -f '{{.Id}}' "$PYTHON_BASE")" build "$CORE" "$WORK/runner" "$WORK/runner/Dockerfile" \
  --target core --build-arg BASE_IMAGE="$PYTHON_BASE" --build-arg PROFILE=core --build-arg PIP_INDEX_URL="$INDEX" \
  --build-arg RUNNER_VERSION="$RUNNER_VERSION" --build-arg CONTEXT_DIGEST="$CONTEXT_DIGEST" \
  --build-arg LOCK_SHA256="$(cat "$WORK/runner/LOCK_SHA256")" --build-arg REVISION="$(git -C "$REPO" rev-parse HEAD)"
DIGEST_EXTRA="$CONTEXT_DIGEST" build "$REGISTRY/fleet-eval/fieldsim:$FIELDSIM_VERSION" "$WORK/fieldsim" \
  "$HERE/fieldsim.Dockerfile" --build-arg CORE_IMAGE="$CORE"
DIGEST_EXTRA="$(docker image inspect -f '{{.Id}}' "$PYTHON_BASE")" build "$REGISTRY/fleet-eval/pypiserver:$PYPISERVER_TAG" \
  "$WORK/pypiserver" "$HERE/pypiserver.Dockerfile" --build-arg BASE_IMAGE="$PYTHON_BASE" \
  --build-arg PIP_INDEX_URL="$INDEX" --build-arg PYPISERVER_VERSION="$PYPISERVER_VERSION" \
  --build-arg WAITRESS_VERSION="$WAITRESS_VERSION"
DIGEST_EXTRA="$(docker image inspect -f '{{.Id}}' "$DEBIAN_BASE")" build "$REGISTRY/fleet-eval/git-server:$GIT_SERVER_VERSION" \
  "$WORK/git-server" "$HERE/git-server/Dockerfile" --build-arg BASE_IMAGE="$DEBIAN_BASE"
log "all demo images are in $REGISTRY (runner context $CONTEXT_DIGEST)"
