#!/usr/bin/env bash
# Builds the infrastructure images of the offline cluster from images/infra/* and the binaries in the
# machine cache, each cached as a saved tarball keyed by its Dockerfile, versions and base image.
# Usage: images.sh [kubernetes|coredns|pause|argo|versitygw|registry|buildkit|python|postgres|mlflow|
#                  local_path_provisioner|flux|all]...
# Images are tagged with the names upstream uses (registry.k8s.io/..., quay.io/argoproj/...) so
# manifests written for upstream images run unchanged; their labels say they are offline builds.
source "$(dirname "$0")/lib.sh"
INFRA=$REPO_ROOT/images/infra
BASE=local/debian:bookworm
base_key() { docker image inspect -f '{{index .Config.Labels "fleet-eval.key"}}' "$BASE"; }

# stage NAME FILES...: a fresh build context holding the image's directory plus the given files.
stage() {
  local name=$1 ctx=$CACHE_ROOT/work/ctx-$1; shift
  rm -rf "$ctx" && mkdir -p "$ctx" && cp -r "$INFRA/$name/." "$ctx/"
  echo "$ctx"
}

img_kubernetes() {
  local k=$BIN_CACHE/kubernetes-$KUBERNETES_VERSION e=$BIN_CACHE/etcd-$ETCD_VERSION
  local tag=registry.k8s.io/kube-apiserver:$KUBERNETES_VERSION
  local key; key=$(content_key "$INFRA/kubernetes" "$KUBERNETES_VERSION" "$ETCD_VERSION" "$(base_key)")
  build() {
    local ctx; ctx=$(stage kubernetes)
    mkdir -p "$ctx/bin"
    cp "$k"/kube-{apiserver,controller-manager,scheduler,proxy} "$e"/etcd "$e"/etcdctl "$ctx/bin/"
    docker_build "$tag" "$key" "$ctx"
  }
  ensure_image "$tag" "$key" build
  local c
  for c in kube-controller-manager kube-scheduler kube-proxy; do
    docker tag "$tag" "registry.k8s.io/$c:$KUBERNETES_VERSION"
  done
  # kind-config.yaml points kubeadm at this etcd tag (see its ClusterConfiguration patch).
  docker tag "$tag" "registry.k8s.io/etcd:${ETCD_VERSION#v}-0"
}

img_coredns() {
  local tag=registry.k8s.io/coredns/coredns:$COREDNS_VERSION
  local key; key=$(content_key "$INFRA/coredns" "$COREDNS_VERSION")
  build() {
    local ctx; ctx=$(stage coredns)
    cp "$BIN_CACHE/coredns-$COREDNS_VERSION/coredns" /etc/ssl/certs/ca-certificates.crt "$ctx/"
    docker_build "$tag" "$key" "$ctx"
  }
  ensure_image "$tag" "$key" build
}

img_pause() {
  local tag=registry.k8s.io/pause:$PAUSE_VERSION
  local key; key=$(content_key "$INFRA/pause" "$PAUSE_VERSION" "$KUBERNETES_VERSION")
  build() {
    local ctx; ctx=$(stage pause)
    cp "$BIN_CACHE/pause-$PAUSE_VERSION/pause" "$ctx/"
    docker_build "$tag" "$key" "$ctx"
  }
  ensure_image "$tag" "$key" build
  # kind's containerd config names pause:3.10 as its sandbox image; kubeadm 1.34 lists 3.10.1.
  docker tag "$tag" registry.k8s.io/pause:3.10
}

img_argo() {
  local a t
  a=$(argo_bin_dir)
  # The UI's key too: argocli is argo-server, which embeds the UI.
  local key; key=$(content_key "$INFRA/argo" "$ARGO_VERSION" "$(argo_ui_key)" "$(base_key)")
  for t in workflow-controller argoexec argocli; do
    build() {
      local ctx; ctx=$(stage argo)
      cp "$a"/{workflow-controller,argoexec,argo} "$ctx/"
      docker_build "quay.io/argoproj/$t:$ARGO_VERSION" "$key" "$ctx" --target "$t"
    }
    ensure_image "quay.io/argoproj/$t:$ARGO_VERSION" "$key" build
  done
}

img_versitygw() {
  local tag=docker.io/versity/versitygw:$VERSITYGW_VERSION
  local key; key=$(content_key "$INFRA/versitygw" "$VERSITYGW_VERSION" "$(base_key)")
  build() {
    local ctx; ctx=$(stage versitygw)
    cp "$BIN_CACHE/versitygw-$VERSITYGW_VERSION/versitygw" "$ctx/"
    docker_build "$tag" "$key" "$ctx"
  }
  ensure_image "$tag" "$key" build
}

img_registry() {
  local tag=fleet-eval/registry:$REGISTRY_VERSION
  local key; key=$(content_key "$INFRA/registry" "$REGISTRY_VERSION" "$(base_key)")
  build() {
    local ctx; ctx=$(stage registry)
    cp "$BIN_CACHE/registry-$REGISTRY_VERSION/registry" "$ctx/"
    docker_build "$tag" "$key" "$ctx"
  }
  ensure_image "$tag" "$key" build
}

img_buildkit() {
  local tag=docker.io/moby/buildkit:$BUILDKIT_VERSION
  local key; key=$(content_key "$INFRA/buildkit" "$BUILDKIT_VERSION" "$RUNC_VERSION" \
    "$REPO_ROOT/scripts/host/runc-capfix" "$(base_key)")
  build() {
    local ctx; ctx=$(stage buildkit)
    mkdir -p "$ctx/bin/bin" "$ctx/bin/sbin"
    cp "$BIN_CACHE/buildkit-$BUILDKIT_VERSION/buildkitd" "$BIN_CACHE/buildkit-$BUILDKIT_VERSION/buildctl" "$ctx/bin/bin/"
    cp "$BIN_CACHE/runc-$RUNC_VERSION/runc" "$ctx/bin/sbin/runc.real"
    cp "$REPO_ROOT/scripts/host/runc-capfix" "$ctx/bin/sbin/runc"
    docker_build "$tag" "$key" "$ctx"
  }
  ensure_image "$tag" "$key" build
}

img_python() {
  local tag=fleet-eval/python:3.11-bookworm
  local key; key=$(content_key "$INFRA/python" "$(base_key)")
  build() { docker_build "$tag" "$key" "$(stage python)"; }
  ensure_image "$tag" "$key" build
}

img_postgres() {
  local tag=localhost:5001/fleet-eval/postgres:$POSTGRES_MAJOR
  local key; key=$(content_key "$INFRA/postgres" "$POSTGRES_MAJOR" "$(base_key)")
  build() { docker_build "$tag" "$key" "$(stage postgres)"; }
  ensure_image "$tag" "$key" build
}

img_mlflow() {
  local tag=localhost:5001/fleet-eval/mlflow:$MLFLOW_VERSION
  local key; key=$(content_key "$INFRA/mlflow" "$MLFLOW_VERSION" "$BOTO3_VERSION" "$PSYCOPG_VERSION" "$(base_key)")
  build() {
    local ctx; ctx=$(stage mlflow)
    cp /etc/ssl/certs/ca-certificates.crt "$ctx/"
    docker_build "$tag" "$key" "$ctx" --build-arg "MLFLOW_VERSION=$MLFLOW_VERSION" \
      --build-arg "BOTO3_VERSION=$BOTO3_VERSION" --build-arg "PSYCOPG_VERSION=$PSYCOPG_VERSION"
  }
  ensure_image "$tag" "$key" build
}

img_local_path_provisioner() {
  local tag=localhost:5001/fleet-eval/local-path-provisioner:$LOCAL_PATH_PROVISIONER_VERSION
  local key; key=$(content_key "$INFRA/local-path-provisioner" "$LOCAL_PATH_PROVISIONER_VERSION" "$(base_key)")
  build() {
    local ctx; ctx=$(stage local-path-provisioner)
    cp "$BIN_CACHE/local-path-provisioner-$LOCAL_PATH_PROVISIONER_VERSION/local-path-provisioner" "$ctx/"
    docker_build "$tag" "$key" "$ctx"
  }
  ensure_image "$tag" "$key" build
}

img_flux() {
  # Both targets share one context (the classic builder walks the stages before --target too).
  local s=$BIN_CACHE/source-controller-$FLUX_SOURCE_CONTROLLER_VERSION h=$BIN_CACHE/helm-controller-$FLUX_HELM_CONTROLLER_VERSION
  local key; key=$(content_key "$INFRA/flux" "$FLUX_SOURCE_CONTROLLER_VERSION" "$FLUX_HELM_CONTROLLER_VERSION")
  local c v
  for c in "source-controller $FLUX_SOURCE_CONTROLLER_VERSION" "helm-controller $FLUX_HELM_CONTROLLER_VERSION"; do
    read -r c v <<<"$c"
    build() {
      local ctx; ctx=$(stage flux)
      cp "$s/source-controller" "$h/helm-controller" /etc/ssl/certs/ca-certificates.crt "$ctx/"
      docker_build "ghcr.io/fluxcd/$c:$v" "$key" "$ctx" --target "$c"
    }
    ensure_image "ghcr.io/fluxcd/$c:$v" "$key" build
  done
}

ALL="kubernetes coredns pause argo versitygw registry buildkit python postgres mlflow local_path_provisioner flux"
[ $# -eq 0 ] && set -- all
[ "$*" = all ] && set -- $ALL
mkdir -p "$CACHE_ROOT/work"
for i in "$@"; do "img_$i"; done
