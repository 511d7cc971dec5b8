# shellcheck shell=bash
# Shared settings for the offline cluster builds: one cache root outside the checkout, keyed by version.
# Sourced by every scripts/build/*.sh script; never executed on its own.
# -E: ERR traps (components.sh) also fire inside functions.
set -Eeuo pipefail
CACHE_ROOT=${FLEET_EVAL_CACHE:-/var/cache/fleet-eval}
export GOMODCACHE=$CACHE_ROOT/gomod
export GOCACHE=$CACHE_ROOT/gocache
# -mod=mod lets wrapper modules resolve without a committed go.sum; GOTOOLCHAIN=local keeps the
# machine's Go instead of downloading another one.
export GOFLAGS=-mod=mod
export GOTOOLCHAIN=local
BIN_CACHE=$CACHE_ROOT/bin
source "$(dirname "${BASH_SOURCE[0]}")/versions.sh"
mkdir -p "$BIN_CACHE" "$CACHE_ROOT/logs"

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# ---- free disk: a build that runs out of space half-way fails far from the cause ------------------------
# A cold `make cluster` writes about 20 GB (Go caches, image tarballs, BuildKit, the node's containerd);
# an in-cluster build that hits "no space left on device" reads like a library failure.
MIN_FREE_GB=${FLEET_EVAL_MIN_FREE_GB:-10}
# require_free_space DIR...: stop, naming the biggest consumers, unless each DIR's filesystem has MIN_FREE_GB.
require_free_space() {
  local dir free_gb
  for dir in "$@"; do
    [ -e "$dir" ] || continue
    free_gb=$(( $(df -Pk "$dir" | awk 'NR == 2 { print $4 }') / 1024 / 1024 ))
    if [ "$free_gb" -lt "$MIN_FREE_GB" ]; then
      log "only $free_gb GB free on the filesystem of $dir; builds need $MIN_FREE_GB GB (FLEET_EVAL_MIN_FREE_GB)."
      log "largest users: $(du -sh "$CACHE_ROOT"/* /var/lib/docker/volumes/* 2>/dev/null | sort -rh | head -4 | tr '\t\n' ' ')"
      log "reclaim with: docker image prune -f; docker exec fleet-eval-control-plane crictl rmi --prune"
      return 1
    fi
  done
}

# ---- how long a cold build takes, so a long one says where it is -----------------------------------
# Minutes of wall time per component on these 2-core machines with empty caches, from the clean cold
# runs in docs/offline-install.md (Flux and the Argo web UI measured later under load, scaled down).
declare -A COLD_MINUTES=(
  [kubernetes]=28 [kind]=1 [etcd]=1 [coredns]=4 [pause]=1 [containerd]=4 [argo]=15 [registry]=3
  [buildkit]=5 [versitygw]=3 [local_path_provisioner]=2 [flux]=25 [helm]=4 [images]=12
)
# with_progress NAME CMD...: run CMD; while it runs longer than a minute, print one line a minute with
# the elapsed time and the expected cold time of NAME. CMD runs as a plain command, not under `||`,
# because bash switches set -e (and the ERR trap) off inside a function called there: a failing step of
# a build function must end the script. The ticker stops by itself within 5 s once its shell is gone.
with_progress() {
  local name=$1 t0 shell=$BASHPID; shift; t0=$(date +%s)
  ( n=0
    while sleep 5 && kill -0 "$shell" 2>/dev/null; do
      (( ++n % 12 )) || log "  ... $name: $(( ($(date +%s) - t0) / 60 )) min so far (a cold build takes about ${COLD_MINUTES[$name]:-?} min)"
    done ) >/dev/null &
  local ticker=$!
  "$@"
  local rc=$?
  kill "$ticker" 2>/dev/null || true; wait "$ticker" 2>/dev/null || true
  return "$rc"
}

# ---- Argo's web UI ---------------------------------------------------------------------------------
# argo-server embeds the UI, so the argo binaries' cache directory carries the key of the UI's inputs:
# a changed patch, npm package or build script yields a new directory and a rebuild.
argo_ui_key() {
  local here; here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
  content_key "$here/argo-ui/patches" "$here/argo-ui.sh" "$ARGO_VERSION" "$ARGO_UI_NPM_VERSION" \
    "$ARGO_UI_NPM_INTEGRITY" "$YARN_VERSION"
}
argo_bin_dir() { echo "$BIN_CACHE/argo-$ARGO_VERSION-ui-$(argo_ui_key)"; }

# ---- docker images cached as saved tarballs ------------------------------------------------------
IMAGE_CACHE=$CACHE_ROOT/images
mkdir -p "$IMAGE_CACHE"
# Repository root, for Dockerfiles under images/.
# shellcheck disable=SC2034 # used by the scripts that source this file
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

# content_key ARGS...: a short hash of strings and of the contents of any files/directories named.
content_key() {
  local a
  for a in "$@"; do
    # Paths are hashed by content (relative names only), so a clone in another folder gets the same key.
    if [ -d "$a" ]; then (cd "$a" && find . -type f -print0 | sort -z | xargs -0 sha256sum)
    elif [ -f "$a" ]; then sha256sum <"$a"
    else printf '%s\n' "$a"; fi
  done | sha256sum | cut -c1-12
}

# ensure_image TAG KEY CMD...: make sure docker has TAG built from KEY. Uses the running image when its
# fleet-eval.key label matches, else the saved tarball $IMAGE_CACHE/<tag>@KEY.tar, else runs CMD (which
# must produce TAG carrying that label) and saves the result. A second `make cluster` therefore loads
# tarballs instead of building, and a changed Dockerfile or version yields a new key.
ensure_image() {
  local tag=$1 key=$2; shift 2
  local tar; tar=$IMAGE_CACHE/$(printf '%s' "$tag" | tr '/:' '__')@$key.tar
  if [ "$(docker image inspect -f '{{index .Config.Labels "fleet-eval.key"}}' "$tag" 2>/dev/null)" = "$key" ]; then
    return 0
  fi
  if [ -f "$tar" ]; then
    log "loading $tag from $tar"
    docker load -i "$tar" >/dev/null
    return 0
  fi
  log "building $tag (key $key)"
  "$@"
  [ "$(docker image inspect -f '{{index .Config.Labels "fleet-eval.key"}}' "$tag")" = "$key" ] \
    || { log "$tag was built without label fleet-eval.key=$key"; return 1; }
  docker save -o "$tar.tmp" "$tag" && mv "$tar.tmp" "$tar"
  # Older keys of the same tag are superseded; keep only the current tarball.
  find "$IMAGE_CACHE" -maxdepth 1 -name "$(basename "${tar%@*}")@*.tar" ! -name "$(basename "$tar")" -delete
}

# docker_build TAG KEY CONTEXT [docker build args...]: the classic builder, which never contacts a
# registry when every FROM image is local (BuildKit in dockerd 20.10 may try to resolve them).
docker_build() {
  local tag=$1 key=$2 ctx=$3; shift 3
  local l; l=$CACHE_ROOT/logs/docker-build-$(printf '%s' "$tag" | tr '/:' '__').log
  DOCKER_BUILDKIT=0 docker build --label "fleet-eval.key=$key" -t "$tag" "$@" "$ctx" >"$l" 2>&1 \
    || { log "docker build of $tag failed; end of $l:"; tail -n 30 "$l" >&2; return 1; }
  # Staged contexts hold copies of large binaries; the saved image is what is kept.
  case "$ctx" in "$CACHE_ROOT"/work/ctx-*) rm -rf "$ctx" ;; esac
}
