#!/usr/bin/env bash
# `make cluster`: builds (or loads from the machine cache) everything the offline kind cluster needs,
# then creates or updates the cluster idempotently: Docker, images, node image, kind-registry,
# the kind cluster, CNI, registry mirrors, Argo Workflows, versitygw S3, BuildKit, Flux (GitOps).
# Nothing here pulls from a container registry; see docs/offline-install.md.
# shellcheck source=../lib.sh
source "$(cd "$(dirname "$0")/.." && pwd)/lib.sh"
HERE=$REPO_ROOT/scripts/build
CLUSTER=fleet-eval
CTX=kind-$CLUSTER
KBIN=$BIN_CACHE/kubernetes-$KUBERNETES_VERSION
KIND=$BIN_CACHE/kind-$KIND_VERSION/kind
kubectl() { "$KBIN/kubectl" --context "$CTX" "$@"; }
# One `make cluster` at a time on a machine: builds and the cluster are shared by every checkout.
exec 9>"$CACHE_ROOT/cluster.lock"
flock 9
T0=$(date +%s)
phase() { log "== $* (+$(( $(date +%s) - T0 ))s)"; }

phase "docker"
"$REPO_ROOT/scripts/host/setup-docker.sh"
require_free_space "$CACHE_ROOT" "$(docker info -f '{{.DockerRootDir}}')"

phase "binaries (Go module proxy; cached by version)"
# Go comes with the machine image (GOTOOLCHAIN=local: no toolchain downloads); modules need >= 1.25.
command -v go >/dev/null || { log "Go is required (1.25 or newer) and not on PATH"; exit 1; }
"$HERE/kubernetes.sh"
"$HERE/components.sh" all

phase "images (cached as tarballs keyed by content)"
"$HERE/base-image.sh" >/dev/null
"$HERE/images.sh" all
NODE_IMAGE=$("$HERE/node-image.sh")

# kind-config.yaml names the etcd tag; it must be the etcd we built.
grep -q "imageTag: ${ETCD_VERSION#v}-0" "$REPO_ROOT/kind-config.yaml" \
  || { log "kind-config.yaml's etcd imageTag does not match ETCD_VERSION=$ETCD_VERSION"; exit 1; }

phase "registry (kind-registry on 127.0.0.1:5001, data in docker volume fleet-eval-registry)"
REG_IMAGE=fleet-eval/registry:$REGISTRY_VERSION
if [ "$(docker inspect -f '{{.Config.Image}}' kind-registry 2>/dev/null)" != "$REG_IMAGE" ]; then
  docker rm -f kind-registry >/dev/null 2>&1 || true
  docker run -d --restart=always -p 127.0.0.1:5001:5000 --network bridge --name kind-registry \
    -v fleet-eval-registry:/var/lib/registry "$REG_IMAGE" >/dev/null
fi
[ "$(docker inspect -f '{{.State.Running}}' kind-registry)" = true ] || docker start kind-registry >/dev/null

phase "kind cluster $CLUSTER"
nodes_restarted() { # true when any node container's last start is well after its creation
  local id created started
  for id in $(docker ps -aq --filter "label=io.x-k8s.kind.cluster=$CLUSTER"); do
    read -r created started < <(docker inspect -f '{{.Created}} {{.State.StartedAt}}' "$id")
    [ $(( $(date -d "$started" +%s) - $(date -d "$created" +%s) )) -gt 120 ] && return 0
  done
  return 1
}
if "$KIND" get clusters 2>/dev/null | grep -qx "$CLUSTER"; then
  # A cluster from an older node image (another Kubernetes or containerd) is recreated.
  if [ "$(docker inspect -f '{{.Image}}' "$CLUSTER-control-plane" 2>/dev/null)" != \
       "$(docker image inspect -f '{{.Id}}' "$NODE_IMAGE")" ]; then
    log "cluster runs an outdated node image; recreating"
    "$KIND" delete cluster --name "$CLUSTER"
  # Stopped nodes (dockerd or the host restarted) may come back with other IPs, which a multi-node
  # kubeadm cluster does not survive; a fresh cluster takes about a minute.
  elif docker ps -a --filter "label=io.x-k8s.kind.cluster=$CLUSTER" --format '{{.State}}' | grep -qv '^running$'; then
    log "cluster nodes are not all running; recreating"
    "$KIND" delete cluster --name "$CLUSTER"
  # The same goes for nodes that Docker restarted by itself (kind's restart policy brings them back when
  # dockerd starts again): they report "running" while the API server is still bootstrapping RBAC and
  # NodePorts lead nowhere. A node started more than two minutes after it was created was restarted.
  elif nodes_restarted; then
    log "cluster nodes were restarted (dockerd or the host restarted); recreating"
    "$KIND" delete cluster --name "$CLUSTER"
  # kind-config.yaml only takes effect at creation.
  elif [ "$(cat "$CACHE_ROOT/kind-config.sha256" 2>/dev/null)" != "$(sha256sum <"$REPO_ROOT/kind-config.yaml")" ]; then
    log "kind-config.yaml changed since the cluster was created; recreating"
    "$KIND" delete cluster --name "$CLUSTER"
  fi
fi
if ! "$KIND" get clusters 2>/dev/null | grep -qx "$CLUSTER"; then
  "$KIND" create cluster --name "$CLUSTER" --image "$NODE_IMAGE" --config "$REPO_ROOT/kind-config.yaml" \
    --wait 0s 2>&1 | sed 's/^/  kind: /' >&2
  sha256sum <"$REPO_ROOT/kind-config.yaml" >"$CACHE_ROOT/kind-config.sha256"
fi
docker network inspect kind -f '{{range .Containers}}{{.Name}} {{end}}' | grep -qw kind-registry \
  || docker network connect kind kind-registry

# kubectl answers before the API server has finished its post-start hooks (RBAC bootstrap answers
# "Forbidden" until then); everything below assumes a ready API server.
for _ in $(seq 90); do kubectl get --raw /readyz >/dev/null 2>&1 && break; sleep 2; done
kubectl get --raw /readyz >/dev/null || { log "the API server of $CLUSTER did not become ready in 180s"; exit 1; }

phase "per-node: registry mirrors and CNI"
NODES=$("$KIND" get nodes --name "$CLUSTER")
for n in $NODES; do
  # localhost:5001 is kind's documented name; quay.io, docker.io and ghcr.io fall back to kind-registry
  # first, so manifests that name upstream images (Argo's, Flux's, the chart's) run the offline builds
  # unchanged, while a cluster with internet access would still pull from upstream.
  docker exec -i "$n" sh -c 'set -e
    for r in localhost:5001 kind-registry:5000; do
      mkdir -p /etc/containerd/certs.d/$r
      printf "[host.\"http://kind-registry:5000\"]\n  capabilities = [\"pull\", \"resolve\", \"push\"]\n" >/etc/containerd/certs.d/$r/hosts.toml
    done
    for r in quay.io:https://quay.io docker.io:https://registry-1.docker.io ghcr.io:https://ghcr.io; do
      d=/etc/containerd/certs.d/${r%%:*}; mkdir -p $d
      printf "server = \"%s\"\n\n[host.\"http://kind-registry:5000\"]\n  capabilities = [\"pull\", \"resolve\"]\n" "${r#*:}" >$d/hosts.toml
    done'
done
# ptp + host-local on each node's podCIDR, plus routes to the other nodes' podCIDRs: what kindnetd does,
# without building its image. Debian's CNI plugins (containernetworking-plugins) are in the node image.
for _ in $(seq 60); do
  [ "$(kubectl get nodes -o jsonpath='{range .items[*]}{.spec.podCIDR}{" "}{end}' | wc -w)" -eq "$(echo "$NODES" | wc -w)" ] && break
  sleep 2
done
for n in $NODES; do
  cidr=$(kubectl get node "$n" -o jsonpath='{.spec.podCIDR}')
  docker exec -i "$n" sh -c "mkdir -p /etc/cni/net.d && cat >/etc/cni/net.d/10-fleet-eval.conflist.tmp && mv /etc/cni/net.d/10-fleet-eval.conflist.tmp /etc/cni/net.d/10-fleet-eval.conflist" <<JSON
{
  "cniVersion": "0.4.0",
  "name": "fleet-eval",
  "plugins": [
    {"type": "ptp", "ipMasq": true, "mtu": 1500,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": "$cidr"}]], "routes": [{"dst": "0.0.0.0/0"}]}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
JSON
  for m in $NODES; do
    [ "$m" = "$n" ] && continue
    mcidr=$(kubectl get node "$m" -o jsonpath='{.spec.podCIDR}')
    mip=$(docker inspect -f '{{.NetworkSettings.Networks.kind.IPAddress}}' "$m")
    docker exec "$n" ip route replace "$mcidr" via "$mip"
  done
done
kubectl wait --for=condition=Ready node --all --timeout=180s >/dev/null
kubectl apply -f "$HERE/cluster/manifests/local-registry-hosting.yaml" >/dev/null

phase "push images to kind-registry"
# Deployments name their images by digest, not by tag: a tag rebuilt from new content (Argo with its web
# UI, BuildKit with curl) keeps its name, and nodes would go on running the copy they cached. A digest
# changes the rendered manifests, so the apply below rolls the pods.
declare -A DIGEST
push() { # push IMAGE REPO_PATH: make IMAGE available as localhost:5001/REPO_PATH; DIGEST[REPO_PATH] is its digest
  local dst=localhost:5001/$2
  docker tag "$1" "$dst"
  docker push "$dst" >"$CACHE_ROOT/logs/push.log" 2>&1 || { tail "$CACHE_ROOT/logs/push.log" >&2; return 1; }
  DIGEST[$2]=$(grep -oE 'digest: sha256:[0-9a-f]{64}' "$CACHE_ROOT/logs/push.log" | tail -n1 | cut -d' ' -f2)
  [ -n "${DIGEST[$2]}" ] || { log "docker push of $dst printed no digest; see $CACHE_ROOT/logs/push.log"; return 1; }
}
for t in workflow-controller argoexec argocli; do
  push "quay.io/argoproj/$t:$ARGO_VERSION" "argoproj/$t:$ARGO_VERSION"
done
push "docker.io/versity/versitygw:$VERSITYGW_VERSION" "versity/versitygw:$VERSITYGW_VERSION"
push "docker.io/moby/buildkit:$BUILDKIT_VERSION" "moby/buildkit:$BUILDKIT_VERSION"
push fleet-eval/python:3.11-bookworm fleet-eval/python:3.11-bookworm
# The chart's MLflow and PostgreSQL images (values: localhost:5001/fleet-eval/{mlflow,postgres}).
push "localhost:5001/fleet-eval/mlflow:$MLFLOW_VERSION" "fleet-eval/mlflow:$MLFLOW_VERSION"
push "localhost:5001/fleet-eval/postgres:$POSTGRES_MAJOR" "fleet-eval/postgres:$POSTGRES_MAJOR"
push "localhost:5001/fleet-eval/local-path-provisioner:$LOCAL_PATH_PROVISIONER_VERSION" \
  "fleet-eval/local-path-provisioner:$LOCAL_PATH_PROVISIONER_VERSION"
push local/debian:bookworm fleet-eval/debian:bookworm   # the provisioner's helper pods (sh, mkdir, rm)
push "ghcr.io/fluxcd/source-controller:$FLUX_SOURCE_CONTROLLER_VERSION" "fluxcd/source-controller:$FLUX_SOURCE_CONTROLLER_VERSION"
push "ghcr.io/fluxcd/helm-controller:$FLUX_HELM_CONTROLLER_VERSION" "fluxcd/helm-controller:$FLUX_HELM_CONTROLLER_VERSION"

phase "storage (local-path-provisioner as the default StorageClass, as kind installs it)"
# kind falls back to a `standard` class with the in-tree host-path provisioner, which nothing serves;
# a StorageClass's provisioner cannot change, so replace it once.
if [ "$(kubectl get storageclass standard -o jsonpath='{.provisioner}' 2>/dev/null)" != rancher.io/local-path ]; then
  kubectl delete storageclass standard --ignore-not-found >/dev/null
fi
# shellcheck disable=SC2016 # envsubst is given the literal ${NAME}s it may replace
envsubst '${LOCAL_PATH_PROVISIONER_VERSION}' <"$HERE/cluster/manifests/storage.yaml" | kubectl apply -f - >/dev/null

phase "S3 (versitygw) and BuildKit"
for ns in fleet-infra argo; do
  kubectl create namespace "$ns" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
done
# Pod Security `restricted` where workflows run: non-root, no capabilities, no escalation, RuntimeDefault
# seccomp, no host access. Argo's own pods and containers meet it through argo-kustomization.yaml.
# BuildKit, privileged by design, lives in fleet-infra.
kubectl label --overwrite namespace argo pod-security.kubernetes.io/enforce=restricted \
  pod-security.kubernetes.io/warn=restricted pod-security.kubernetes.io/audit=restricted >/dev/null
# One random credential pair per cluster, kept in Secrets (created once, then reused).
if ! kubectl -n fleet-infra get secret s3-credentials >/dev/null 2>&1; then
  ak=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n') sk=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
  kubectl -n fleet-infra create secret generic s3-credentials --from-literal=accesskey="$ak" --from-literal=secretkey="$sk" >/dev/null
fi
kubectl -n fleet-infra get secret s3-credentials -o json \
  | jq '{apiVersion, kind, type, data, metadata: {name: .metadata.name, namespace: "argo"}}' | kubectl apply -f - >/dev/null
export VERSITYGW_DIGEST=${DIGEST[versity/versitygw:$VERSITYGW_VERSION]} BUILDKIT_DIGEST=${DIGEST[moby/buildkit:$BUILDKIT_VERSION]}
# shellcheck disable=SC2016 # envsubst is given the literal ${NAME}s it may replace
envsubst '${VERSITYGW_DIGEST} ${BUILDKIT_DIGEST}' <"$HERE/cluster/manifests/infra.yaml" | kubectl apply -f - >/dev/null

phase "Argo Workflows $ARGO_VERSION"
W=$CACHE_ROOT/work/argo-install
rm -rf "$W" && mkdir -p "$W" && cp -r "$(argo_bin_dir)/manifests" "$W/upstream"
export ARGO_CLI_DIGEST=${DIGEST[argoproj/argocli:$ARGO_VERSION]} ARGO_CONTROLLER_DIGEST=${DIGEST[argoproj/workflow-controller:$ARGO_VERSION]} \
  ARGO_EXEC_DIGEST=${DIGEST[argoproj/argoexec:$ARGO_VERSION]}
# shellcheck disable=SC2016 # envsubst is given the literal ${NAME}s it may replace
envsubst '${ARGO_VERSION} ${ARGO_CLI_DIGEST} ${ARGO_CONTROLLER_DIGEST} ${ARGO_EXEC_DIGEST}' \
  <"$HERE/cluster/manifests/argo-kustomization.yaml" >"$W/kustomization.yaml"
kubectl kustomize "$W" >"$W/rendered.yaml"
{ echo ---; cat "$HERE/cluster/manifests/argo-extras.yaml"; } >>"$W/rendered.yaml"
# Applying Argo's large CRDs takes most of a minute on a busy machine: skip it when the rendered
# manifests are the ones applied last time (their hash is kept in a ConfigMap).
sum=$(sha256sum <"$W/rendered.yaml" | cut -c1-16)
if [ "$(kubectl -n argo get configmap fleet-eval-argo-install -o jsonpath='{.data.sha256}' 2>/dev/null)" != "$sum" ]; then
  kubectl apply --server-side --force-conflicts -f "$W/rendered.yaml" >/dev/null
  # Clusters made before the client had its own Role bound it to `edit`; apply does not remove that.
  kubectl -n argo delete rolebinding fleet-eval-client-edit --ignore-not-found >/dev/null
  kubectl -n argo create configmap fleet-eval-argo-install --from-literal=sha256="$sum" \
    --dry-run=client -o yaml | kubectl apply -f - >/dev/null
else
  log "Argo manifests unchanged since the last apply"
fi

phase "Flux: source-controller $FLUX_SOURCE_CONTROLLER_VERSION, helm-controller $FLUX_HELM_CONTROLLER_VERSION (docs/gitops.md)"
W=$CACHE_ROOT/work/flux-install
rm -rf "$W" && mkdir -p "$W/upstream"
cp -r "$BIN_CACHE/source-controller-$FLUX_SOURCE_CONTROLLER_VERSION/config" "$W/upstream/source-controller"
cp -r "$BIN_CACHE/helm-controller-$FLUX_HELM_CONTROLLER_VERSION/config" "$W/upstream/helm-controller"
export FLUX_SOURCE_DIGEST=${DIGEST[fluxcd/source-controller:$FLUX_SOURCE_CONTROLLER_VERSION]} \
  FLUX_HELM_DIGEST=${DIGEST[fluxcd/helm-controller:$FLUX_HELM_CONTROLLER_VERSION]}
# shellcheck disable=SC2016 # envsubst is given the literal ${NAME}s it may replace
envsubst '${FLUX_SOURCE_DIGEST} ${FLUX_HELM_DIGEST}' \
  <"$HERE/cluster/manifests/flux-kustomization.yaml" >"$W/kustomization.yaml"
cp "$HERE/cluster/manifests/flux-extras.yaml" "$W/"
kubectl kustomize "$W" >"$W/rendered.yaml"
# As for Argo: skip the apply of the CRDs when the rendered manifests are the ones applied last time.
sum=$(sha256sum <"$W/rendered.yaml" | cut -c1-16)
if [ "$(kubectl -n flux-system get configmap fleet-eval-flux-install -o jsonpath='{.data.sha256}' 2>/dev/null)" != "$sum" ]; then
  kubectl apply --server-side --force-conflicts -f "$W/rendered.yaml" >/dev/null
  kubectl -n flux-system create configmap fleet-eval-flux-install --from-literal=sha256="$sum" \
    --dry-run=client -o yaml | kubectl apply -f - >/dev/null
else
  log "Flux manifests unchanged since the last apply"
fi

phase "waiting for rollouts"
kubectl -n fleet-infra rollout status deploy/s3 --timeout=300s >/dev/null
kubectl -n argo rollout status deploy/workflow-controller --timeout=300s >/dev/null
kubectl -n argo rollout status deploy/argo-server --timeout=300s >/dev/null
kubectl -n fleet-infra rollout status deploy/buildkitd --timeout=300s >/dev/null
kubectl -n kube-system rollout status deploy/coredns --timeout=300s >/dev/null
kubectl -n local-path-storage rollout status deploy/local-path-provisioner --timeout=300s >/dev/null
kubectl -n flux-system rollout status deploy/source-controller --timeout=300s >/dev/null
kubectl -n flux-system rollout status deploy/helm-controller --timeout=300s >/dev/null

phase "buckets"
AWS_ACCESS_KEY_ID=$(kubectl -n fleet-infra get secret s3-credentials -o jsonpath='{.data.accesskey}' | base64 -d) \
AWS_SECRET_ACCESS_KEY=$(kubectl -n fleet-infra get secret s3-credentials -o jsonpath='{.data.secretkey}' | base64 -d) \
  python3 "$HERE/cluster/s3-mkbucket.py" http://127.0.0.1:32070 argo-artifacts mlflow | sed 's/^/  /' >&2

dt=$(( $(date +%s) - T0 ))
printf '%s\tmake-cluster\t%ss\n' "$(date -u +%FT%TZ)" "$dt" >>"$CACHE_ROOT/logs/build-times.tsv"
log "cluster $CLUSTER ready in ${dt}s: kubectl --context $CTX; argo-server https://127.0.0.1:32746 (token: secret argo/fleet-eval-client.service-account-token); S3 http://127.0.0.1:32070; registry localhost:5001"
