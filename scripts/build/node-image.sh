#!/usr/bin/env bash
# Assembles the kind node image offline, replicating `kind build node-image` (kind v0.30.0,
# pkg/build/nodeimage/buildcontext.go buildImage()) step by step. kind's own command cannot be used:
# it fetches etcd/coredns/pause/kindnetd images from registries with `ctr content fetch`.
#   1. local/kind-base:bookworm  = images/kind-base/Dockerfile + kind module's images/base/files +
#                                  our containerd/runc/crictl builds + the runc-capfix wrapper
#   2. local/kind-node:<k8s>     = base + kubeadm/kubelet/kubectl + /kind/version + the control-plane,
#                                  etcd, coredns and pause images imported into containerd (pinned)
# Both are cached as saved tarballs keyed by every input. Prints the node image tag.
# Usage: node-image.sh [--base-only]
source "$(dirname "$0")/lib.sh"
K=$KUBERNETES_VERSION
KBIN=$BIN_CACHE/kubernetes-$K
BASE_TAG=local/kind-base:bookworm
NODE_TAG=local/kind-node:$K
debian_key=$(docker image inspect -f '{{index .Config.Labels "fleet-eval.key"}}' local/debian:bookworm)

base_key=$(content_key "$REPO_ROOT/images/kind-base" "$REPO_ROOT/scripts/host/runc-capfix" \
  "$KIND_VERSION" "$CONTAINERD_VERSION" "$RUNC_VERSION" "$CRICTL_VERSION" "$debian_key")
build_base() {
  local ctx=$CACHE_ROOT/work/ctx-kind-base kind_dir
  kind_dir=$(go mod download -json "sigs.k8s.io/kind@$KIND_VERSION" | jq -r .Dir)
  rm -rf "$ctx" && mkdir -p "$ctx/bin/bin" "$ctx/bin/sbin" "$ctx/cni"
  cp -r "$REPO_ROOT/images/kind-base/." "$ctx/"
  # The module cache is read-only; give the files kind's modes (scripts 0755, the rest 0644).
  cp -r "$kind_dir/images/base/files" "$ctx/files"
  chmod -R u+w "$ctx/files"
  find "$ctx/files" -type d -exec chmod 0755 {} +
  find "$ctx/files" -type f -exec chmod 0644 {} +
  chmod 0755 "$ctx"/files/usr/local/bin/* "$ctx"/files/kind/bin/*
  local c
  for c in containerd ctr containerd-shim-runc-v2; do cp "$BIN_CACHE/containerd-$CONTAINERD_VERSION/$c" "$ctx/bin/bin/"; done
  cp "$BIN_CACHE/crictl-$CRICTL_VERSION/crictl" "$ctx/bin/bin/"
  cp "$BIN_CACHE/runc-$RUNC_VERSION/runc" "$ctx/bin/sbin/runc.real"
  install -m 0755 "$REPO_ROOT/scripts/host/runc-capfix" "$ctx/bin/sbin/runc"
  docker_build "$BASE_TAG" "$base_key" "$ctx"
}
ensure_image "$BASE_TAG" "$base_key" build_base
[ "${1:-}" = --base-only ] && { echo "$BASE_TAG"; exit 0; }

# Images kubeadm and containerd need inside the node (built by images.sh).
PRELOAD=(
  "registry.k8s.io/kube-apiserver:$K" "registry.k8s.io/kube-controller-manager:$K"
  "registry.k8s.io/kube-scheduler:$K" "registry.k8s.io/kube-proxy:$K"
  "registry.k8s.io/etcd:${ETCD_VERSION#v}-0"
  "registry.k8s.io/coredns/coredns:$COREDNS_VERSION"
  "registry.k8s.io/pause:$PAUSE_VERSION" "registry.k8s.io/pause:3.10"
)
preload_ids=$(for i in "${PRELOAD[@]}"; do docker image inspect -f '{{.Id}}' "$i"; done)
node_key=$(content_key "$base_key" "$K" "$preload_ids" "$0")

build_node() {
  c=$(docker run -d --entrypoint=sleep --security-opt seccomp=unconfined "$BASE_TAG" infinity)
  trap 'docker rm -f "$c" >/dev/null 2>&1 || true' EXIT
  local b
  for b in kubeadm kubelet kubectl; do docker cp "$KBIN/$b" "$c:/usr/bin/$b"; done
  docker exec "$c" chown root:root /usr/bin/kubeadm /usr/bin/kubelet /usr/bin/kubectl
  docker exec "$c" chmod +x /usr/bin/kubeadm /usr/bin/kubelet /usr/bin/kubectl
  printf '%s' "$K" | docker exec -i "$c" sh -c 'mkdir -p /kind && cat >/kind/version'
  # Cross-check what kubeadm will ask for against what we preload (etcd and coredns tags are set in
  # kind-config.yaml, so only the control-plane images must match exactly).
  docker exec "$c" kubeadm config images list --kubernetes-version "$K" >"$CACHE_ROOT/logs/kubeadm-images.txt"
  docker exec -d "$c" sh -c 'containerd >/var/log/containerd-build.log 2>&1'
  local i
  for i in $(seq 30); do docker exec "$c" ctr version >/dev/null 2>&1 && break; sleep 1; done
  docker save "${PRELOAD[@]}" | docker exec -i "$c" ctr --namespace=k8s.io images import \
    --label=io.cri-containerd.pinned=pinned --all-platforms --no-unpack --digests - >/dev/null
  docker exec "$c" ctr --namespace=k8s.io images ls -q >"$CACHE_ROOT/logs/node-preloaded-images.txt"
  docker exec "$c" pkill containerd || true
  sleep 2
  docker exec "$c" rm -rf /var/log/containerd-build.log /tmp/*
  docker commit \
    --change 'ENTRYPOINT [ "/usr/local/bin/entrypoint", "/sbin/init" ]' \
    --change 'CMD []' \
    --change 'ENV HTTP_PROXY="" HTTPS_PROXY="" NO_PROXY=""' \
    --change "LABEL fleet-eval.key=$node_key" \
    "$c" "$NODE_TAG" >/dev/null
}
ensure_image "$NODE_TAG" "$node_key" build_node
echo "$NODE_TAG"
