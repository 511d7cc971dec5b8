#!/usr/bin/env bash
# Builds the infrastructure images of the offline cluster from images/infra/* and the binaries in the
# machine cache, each cached as a saved tarball keyed by its Dockerfile, versions and base image.
# Usage: images.sh [--keys] [NAME...|all]   NAME: the first column of IMAGES below (default: all);
#        --keys prints each tag with its cache key and builds nothing.
# Images are tagged with the names upstream uses (registry.k8s.io/..., quay.io/argoproj/...) so
# manifests written for upstream images run unchanged; their labels say they are offline builds.
source "$(dirname "$0")/lib.sh"
INFRA=$REPO_ROOT/images/infra
BASE=local/debian:bookworm
base_key() { docker image inspect -f '{{index .Config.Labels "fleet-eval.key"}}' "$BASE"; }
# Words the tables below use beyond versions.sh.
# shellcheck disable=SC2034 # read by the tables, through split_row
ARGO_BIN=$(argo_bin_dir) ETCD_IMAGE_VERSION=${ETCD_VERSION#v}-0

# ---- the images ------------------------------------------------------------------------------------
# One row per tag. NAME selects the rows on the command line; its build context is images/infra/NAME
# (with - for _) plus its files in EXTRAS. TARGET is the Dockerfile stage (- for the last one). KEY is
# what the cache key hashes after that directory, in order: words, files by content, @base (the base
# image's key), @argo-ui (the key of the Argo UI that argo-server embeds). Words are split on blanks
# first, then each $NAME in them is replaced by that variable's value.
IMAGES=$(cat <<'EOF'
# NAME                  TAG                                                                    TARGET               KEY
kubernetes              registry.k8s.io/kube-apiserver:$KUBERNETES_VERSION                     -                    $KUBERNETES_VERSION $ETCD_VERSION @base
coredns                 registry.k8s.io/coredns/coredns:$COREDNS_VERSION                       -                    $COREDNS_VERSION
pause                   registry.k8s.io/pause:$PAUSE_VERSION                                   -                    $PAUSE_VERSION $KUBERNETES_VERSION
argo                    quay.io/argoproj/workflow-controller:$ARGO_VERSION                     workflow-controller  $ARGO_VERSION @argo-ui @base
argo                    quay.io/argoproj/argoexec:$ARGO_VERSION                                argoexec             $ARGO_VERSION @argo-ui @base
argo                    quay.io/argoproj/argocli:$ARGO_VERSION                                 argocli              $ARGO_VERSION @argo-ui @base
versitygw               docker.io/versity/versitygw:$VERSITYGW_VERSION                         -                    $VERSITYGW_VERSION @base
registry                fleet-eval/registry:$REGISTRY_VERSION                                  -                    $REGISTRY_VERSION @base
buildkit                docker.io/moby/buildkit:$BUILDKIT_VERSION                              -                    $BUILDKIT_VERSION $RUNC_VERSION $REPO_ROOT/scripts/host/runc-capfix @base
python                  fleet-eval/python:3.11-bookworm                                        -                    @base
postgres                localhost:5001/fleet-eval/postgres:$POSTGRES_MAJOR                     -                    $POSTGRES_MAJOR @base
mlflow                  localhost:5001/fleet-eval/mlflow:$MLFLOW_VERSION                       -                    $MLFLOW_VERSION $BOTO3_VERSION $PSYCOPG_VERSION @base
local_path_provisioner  localhost:5001/fleet-eval/local-path-provisioner:$LOCAL_PATH_PROVISIONER_VERSION  -  $LOCAL_PATH_PROVISIONER_VERSION @base
# Both Flux targets share one context (the classic builder walks the stages before --target too).
flux                    ghcr.io/fluxcd/source-controller:$FLUX_SOURCE_CONTROLLER_VERSION       source-controller    $FLUX_SOURCE_CONTROLLER_VERSION $FLUX_HELM_CONTROLLER_VERSION
flux                    ghcr.io/fluxcd/helm-controller:$FLUX_HELM_CONTROLLER_VERSION           helm-controller      $FLUX_SOURCE_CONTROLLER_VERSION $FLUX_HELM_CONTROLLER_VERSION
EOF
)

# ---- what their builds add ---------------------------------------------------------------------------
# file SRC [DEST]  copy SRC into the context as DEST (default: SRC's name; a DEST ending in / is a folder)
# arg NAME=VALUE   a --build-arg
# tag TAG          tag NAME's first image TAG as well, once it is built or loaded
EXTRAS=$(cat <<'EOF'
kubernetes              file  $BIN_CACHE/kubernetes-$KUBERNETES_VERSION/kube-apiserver           bin/
kubernetes              file  $BIN_CACHE/kubernetes-$KUBERNETES_VERSION/kube-controller-manager  bin/
kubernetes              file  $BIN_CACHE/kubernetes-$KUBERNETES_VERSION/kube-scheduler           bin/
kubernetes              file  $BIN_CACHE/kubernetes-$KUBERNETES_VERSION/kube-proxy               bin/
kubernetes              file  $BIN_CACHE/etcd-$ETCD_VERSION/etcd                                 bin/
kubernetes              file  $BIN_CACHE/etcd-$ETCD_VERSION/etcdctl                              bin/
kubernetes              tag   registry.k8s.io/kube-controller-manager:$KUBERNETES_VERSION
kubernetes              tag   registry.k8s.io/kube-scheduler:$KUBERNETES_VERSION
kubernetes              tag   registry.k8s.io/kube-proxy:$KUBERNETES_VERSION
# kind-config.yaml points kubeadm at this etcd tag (see its ClusterConfiguration patch).
kubernetes              tag   registry.k8s.io/etcd:$ETCD_IMAGE_VERSION
coredns                 file  $BIN_CACHE/coredns-$COREDNS_VERSION/coredns
coredns                 file  /etc/ssl/certs/ca-certificates.crt
pause                   file  $BIN_CACHE/pause-$PAUSE_VERSION/pause
# kind's containerd config names pause:3.10 as its sandbox image; kubeadm 1.34 lists 3.10.1.
pause                   tag   registry.k8s.io/pause:3.10
argo                    file  $ARGO_BIN/workflow-controller
argo                    file  $ARGO_BIN/argoexec
argo                    file  $ARGO_BIN/argo
versitygw               file  $BIN_CACHE/versitygw-$VERSITYGW_VERSION/versitygw
registry                file  $BIN_CACHE/registry-$REGISTRY_VERSION/registry
buildkit                file  $BIN_CACHE/buildkit-$BUILDKIT_VERSION/buildkitd                   bin/bin/
buildkit                file  $BIN_CACHE/buildkit-$BUILDKIT_VERSION/buildctl                    bin/bin/
buildkit                file  $BIN_CACHE/runc-$RUNC_VERSION/runc                                bin/sbin/runc.real
buildkit                file  $REPO_ROOT/scripts/host/runc-capfix                               bin/sbin/runc
mlflow                  file  /etc/ssl/certs/ca-certificates.crt
mlflow                  arg   MLFLOW_VERSION=$MLFLOW_VERSION
mlflow                  arg   BOTO3_VERSION=$BOTO3_VERSION
mlflow                  arg   PSYCOPG_VERSION=$PSYCOPG_VERSION
local_path_provisioner  file  $BIN_CACHE/local-path-provisioner-$LOCAL_PATH_PROVISIONER_VERSION/local-path-provisioner
flux                    file  $BIN_CACHE/source-controller-$FLUX_SOURCE_CONTROLLER_VERSION/source-controller
flux                    file  $BIN_CACHE/helm-controller-$FLUX_HELM_CONTROLLER_VERSION/helm-controller
flux                    file  /etc/ssl/certs/ca-certificates.crt
EOF
)

# rows TABLE: the table's rows, without comments and blank lines.
rows() { sed -e 's/^[[:space:]]*#.*//' -e '/^[[:space:]]*$/d' <<<"$1"; }
mapfile -t IMAGE_ROWS < <(rows "$IMAGES")
mapfile -t EXTRA_ROWS < <(rows "$EXTRAS")

# split_row ROW: ROW's words into the array ROW, each $NAME in them replaced by that variable's value
# (after the split, so a path with blanks stays one word; an unset NAME stops the script).
split_row() {
  local re='^([^$]*)[$]([A-Za-z_][A-Za-z0-9_]*)(.*)$' i w out var
  read -ra ROW <<<"$1"
  for i in "${!ROW[@]}"; do
    w=${ROW[i]} out=
    while [[ $w =~ $re ]]; do
      var=${BASH_REMATCH[2]} out+=${BASH_REMATCH[1]} w=${BASH_REMATCH[3]}
      out+=${!var}
    done
    ROW[i]=$out$w
  done
}

# image_key NAME KEY...: the cache key of a row of NAME (content_key in lib.sh).
image_key() {
  local name=$1 w words=(); shift
  for w in "$@"; do
    case $w in
      @base) w=$(base_key) || { log "$BASE is missing: scripts/build/base-image.sh builds it"; return 1; } ;;
      @argo-ui) w=$(argo_ui_key) ;;
    esac
    words+=("$w")
  done
  content_key "$INFRA/${name//_/-}" "${words[@]}"
}

# build_image NAME TAG TARGET KEY: a fresh context (NAME's directory and files) and the image built in it.
build_image() {
  local name=$1 tag=$2 target=$3 key=$4 row dest args=()
  local ctx=$CACHE_ROOT/work/ctx-${name//_/-}
  rm -rf "$ctx" && mkdir -p "$ctx" && cp -r "$INFRA/${name//_/-}/." "$ctx/"
  [ "$target" = - ] || args+=(--target "$target")
  for row in "${EXTRA_ROWS[@]}"; do
    split_row "$row"
    [ "${ROW[0]}" = "$name" ] || continue
    case ${ROW[1]} in
      file)
        dest=$ctx/${ROW[3]:-}
        [[ $dest == */ ]] && dest+=$(basename "${ROW[2]}")
        mkdir -p "$(dirname "$dest")" && cp "${ROW[2]}" "$dest" ;;
      arg) args+=(--build-arg "${ROW[2]}") ;;
    esac
  done
  docker_build "$tag" "$key" "$ctx" "${args[@]}"
}

# image NAME: every row of NAME built (or loaded from the cache), then NAME's further tags; with
# --keys, each tag and its key printed instead.
image() {
  local name=$1 row tag target key first=
  for row in "${IMAGE_ROWS[@]}"; do
    split_row "$row"
    [ "${ROW[0]}" = "$name" ] || continue
    tag=${ROW[1]} target=${ROW[2]}
    key=$(image_key "$name" "${ROW[@]:3}")
    if [ -n "$KEYS_ONLY" ]; then
      printf '%s %s\n' "$tag" "$key"
    else
      ensure_image "$tag" "$key" build_image "$name" "$tag" "$target" "$key"
    fi
    first=${first:-$tag}
  done
  [ -n "$first" ] || { log "no image $name; known: ${NAMES[*]}"; return 1; }
  [ -z "$KEYS_ONLY" ] || return 0
  for row in "${EXTRA_ROWS[@]}"; do
    split_row "$row"
    if [ "${ROW[0]} ${ROW[1]}" = "$name tag" ]; then docker tag "$first" "${ROW[2]}"; fi
  done
}

mapfile -t NAMES < <(printf '%s\n' "${IMAGE_ROWS[@]}" | awk '!seen[$1]++ {print $1}')
KEYS_ONLY=
[ "${1:-}" = --keys ] && KEYS_ONLY=1 && shift
[ $# -eq 0 ] && set -- all
[ "$*" = all ] && set -- "${NAMES[@]}"
mkdir -p "$CACHE_ROOT/work"
for name in "$@"; do image "$name"; done
