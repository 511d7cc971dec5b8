#!/usr/bin/env bash
# `make cluster-down`: deletes the kind cluster. Built binaries, image tarballs, the node image and the
# kind-registry container (with its pushed images) stay, so the next `make cluster` takes minutes.
# shellcheck source=../lib.sh
source "$(cd "$(dirname "$0")/.." && pwd)/lib.sh"
KIND=$BIN_CACHE/kind-$KIND_VERSION/kind
exec 9>"$CACHE_ROOT/cluster.lock"
flock 9
if [ -x "$KIND" ] && "$KIND" get clusters 2>/dev/null | grep -qx fleet-eval; then
  "$KIND" delete cluster --name fleet-eval
else
  log "no cluster fleet-eval"
fi
