#!/usr/bin/env bash
# Builds the Go (and one C) components of the offline cluster from the Go module proxy into the
# machine cache, one directory per component and version: $BIN_CACHE/<name>-<version>/.
# Usage: components.sh [kind|etcd|coredns|pause|containerd|argo|registry|buildkit|versitygw|
#                      local_path_provisioner|flux|all]...
# A finished component is never rebuilt; each build's wall time is appended to logs/build-times.tsv.
source "$(dirname "$0")/lib.sh"
TOOL=$(cd "$(dirname "$0")" && pwd)/go-tool.sh
UI_BUILD=$(cd "$(dirname "$0")" && pwd)/argo-ui.sh
TIMES=$CACHE_ROOT/logs/build-times.tsv

timed() { # timed NAME CMD...: run CMD with progress lines, record its wall time when it did real work
  local name=$1 t0; shift; t0=$(date +%s)
  with_progress "$name" "$@"
  local dt=$(( $(date +%s) - t0 ))
  if [ "$dt" -gt 2 ]; then
    printf '%s\t%s\t%ss\n' "$(date -u +%FT%TZ)" "$name" "$dt" >>"$TIMES"
    log "$name built in $((dt / 60)) min $((dt % 60)) s"
  fi
  return 0
}

cached() { # cached NAME: whether component NAME is in the machine cache already
  case $1 in
    argo) [ -f "$(argo_bin_dir)/.complete" ] ;;
    containerd) [ -f "$BIN_CACHE/containerd-$CONTAINERD_VERSION/.complete" ] && [ -x "$BIN_CACHE/runc-$RUNC_VERSION/runc" ] ;;
    buildkit) [ -f "$BIN_CACHE/buildkit-$BUILDKIT_VERSION/.complete" ] ;;
    flux) [ -f "$BIN_CACHE/source-controller-$FLUX_SOURCE_CONTROLLER_VERSION/.complete" ] \
            && [ -f "$BIN_CACHE/helm-controller-$FLUX_HELM_CONTROLLER_VERSION/.complete" ] ;;
    etcd) [ -x "$BIN_CACHE/etcd-$ETCD_VERSION/etcd" ] ;;
    pause) [ -x "$BIN_CACHE/pause-$PAUSE_VERSION/pause" ] ;;
    local_path_provisioner) [ -x "$BIN_CACHE/local-path-provisioner-$LOCAL_PATH_PROVISIONER_VERSION/local-path-provisioner" ] ;;
    *) local v; v=${1^^}_VERSION; [ -x "$BIN_CACHE/$1-${!v}/$1" ] ;;
  esac
}

moddir() { go mod download -json "$1" | jq -r .Dir; }

build_kind() { "$TOOL" kind sigs.k8s.io/kind "$KIND_VERSION" >/dev/null; }

build_etcd() {
  # etcd's server module replaces its sibling modules with relative paths, so `go install` refuses it;
  # a throwaway wrapper module requiring the published versions builds the same main package.
  local out=$BIN_CACHE/etcd-$ETCD_VERSION
  [ -x "$out/etcd" ] && return 0
  local w=$CACHE_ROOT/work/etcd-$ETCD_VERSION
  rm -rf "$w" && mkdir -p "$w" && cd "$w"
  go mod init local/etcdbuild >/dev/null 2>&1
  go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION" "go.etcd.io/etcd/etcdctl/v3@$ETCD_VERSION" >/dev/null 2>&1
  mkdir -p "$out.tmp"
  CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$out.tmp/etcd" go.etcd.io/etcd/server/v3
  CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$out.tmp/etcdctl" go.etcd.io/etcd/etcdctl/v3
  rm -rf "$out" && mv "$out.tmp" "$out"
}

build_coredns() {
  "$TOOL" coredns github.com/coredns/coredns "$COREDNS_VERSION" \
    -ldflags "-s -w -X github.com/coredns/coredns/coremain.GitCommit=$COREDNS_VERSION" >/dev/null
}

build_pause() {
  # pause.c ships inside the k8s.io/kubernetes module; upstream compiles it statically with gcc.
  local out=$BIN_CACHE/pause-$PAUSE_VERSION
  [ -x "$out/pause" ] && return 0
  local src; src=$(moddir "k8s.io/kubernetes@$KUBERNETES_VERSION")/build/pause/linux/pause.c
  mkdir -p "$out.tmp"
  gcc -Os -Wall -Werror -static -DVERSION="v$PAUSE_VERSION-fleet-eval" -o "$out.tmp/pause" "$src"
  strip "$out.tmp/pause"
  rm -rf "$out" && mv "$out.tmp" "$out"
}

build_containerd() {
  # containerd's go.mod has `exclude` directives, so `go install pkg@version` refuses it; build from a
  # copy of the module instead, where its go.mod is the main module and is honoured as upstream does.
  local out=$BIN_CACHE/containerd-$CONTAINERD_VERSION
  if [ ! -f "$out/.complete" ]; then
    local src w=$CACHE_ROOT/work/containerd-$CONTAINERD_VERSION
    src=$(moddir "github.com/containerd/containerd/v2@$CONTAINERD_VERSION")
    rm -rf "$w" && cp -r "$src" "$w" && chmod -R u+w "$w" && cd "$w"
    mkdir -p "$out.tmp"
    CGO_ENABLED=0 go build -trimpath -tags "no_aufs no_zfs no_btrfs no_devmapper urfave_cli_no_docs" \
      -ldflags "-s -w -X github.com/containerd/containerd/v2/version.Version=$CONTAINERD_VERSION" \
      -o "$out.tmp/" ./cmd/containerd ./cmd/ctr ./cmd/containerd-shim-runc-v2
    touch "$out.tmp/.complete"
    rm -rf "$out" && mv "$out.tmp" "$out"
    cd "$REPO_ROOT" && rm -rf "$w"
  fi
  # runc needs cgo for seccomp (libseccomp-dev); it links libseccomp2 dynamically, present in the node.
  CGO_ENABLED=1 "$TOOL" runc github.com/opencontainers/runc "$RUNC_VERSION" -tags "seccomp urfave_cli_no_docs" \
    -ldflags "-s -w -X main.version=${RUNC_VERSION#v}" >/dev/null
  "$TOOL" crictl sigs.k8s.io/cri-tools/cmd/crictl "$CRICTL_VERSION" \
    -ldflags "-s -w -X sigs.k8s.io/cri-tools/pkg/version.Version=$CRICTL_VERSION" >/dev/null
}

build_argo() {
  # argo-server embeds ui/dist/app (Go embed in ui/embed.go, served by server/static), which the module
  # zip does not contain: build the UI first (argo-ui.sh, cached), then the binaries from a writable
  # copy of the module with that dist/app in place, as upstream's `make` with STATIC_FILES=true does.
  local out; out=$(argo_bin_dir)
  [ -f "$out/.complete" ] && return 0
  local ui; ui=$("$UI_BUILD")
  local src w=$CACHE_ROOT/work/argo-$ARGO_VERSION
  src=$(moddir "github.com/argoproj/argo-workflows/v4@$ARGO_VERSION")
  rm -rf "$w" && cp -r "$src" "$w" && chmod -R u+w "$w" && cd "$w"
  # Upstream's workflow/executor/osspecific/signal_linux.go is a git symlink to signal_darwin.go; module
  # zips drop symlinks, so argoexec does not compile from the module as published. Restore the link.
  [ -e workflow/executor/osspecific/signal_linux.go ] || ln -s signal_darwin.go workflow/executor/osspecific/signal_linux.go
  rm -rf ui/dist && mkdir -p ui/dist && cp -r "$ui" ui/dist/app
  local p=github.com/argoproj/argo-workflows/v4
  local ldf="-s -w -X $p.version=$ARGO_VERSION -X $p.gitTag=$ARGO_VERSION -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
  local tags=""
  # v4.1+ needs this tag because k8s 0.35 moved ProtoMessage() behind it; harmless to older versions.
  grep -q 'kubernetes_protomessage_one_more_release' Makefile 2>/dev/null && tags=kubernetes_protomessage_one_more_release
  mkdir -p "$out.tmp"
  CGO_ENABLED=0 go build -trimpath -tags "$tags" -ldflags "$ldf" -o "$out.tmp/" \
    ./cmd/workflow-controller ./cmd/argoexec ./cmd/argo
  # The install manifests and CRDs travel with the binaries: the cluster installs Argo from them.
  cp -r manifests "$out.tmp/manifests"
  touch "$out.tmp/.complete"
  rm -rf "$out" && mv "$out.tmp" "$out"
  cd "$REPO_ROOT" && rm -rf "$w"
  # Binaries with an older UI are superseded; the placeholder build (argo-$ARGO_VERSION/) is left alone.
  find "$BIN_CACHE" -mindepth 1 -maxdepth 1 -name "argo-$ARGO_VERSION-ui-*" ! -name "$(basename "$out")" -exec rm -rf {} +
}

build_registry() {
  "$TOOL" registry github.com/distribution/distribution/v3/cmd/registry "$REGISTRY_VERSION" \
    -ldflags "-s -w -X github.com/distribution/distribution/v3/version.version=$REGISTRY_VERSION" >/dev/null
}

build_buildkit() {
  # Like containerd, buildkit's go.mod has `exclude` directives: build from a copy of the module.
  local out=$BIN_CACHE/buildkit-$BUILDKIT_VERSION
  [ -f "$out/.complete" ] && return 0
  local src w=$CACHE_ROOT/work/buildkit-$BUILDKIT_VERSION
  src=$(moddir "github.com/moby/buildkit@$BUILDKIT_VERSION")
  rm -rf "$w" && cp -r "$src" "$w" && chmod -R u+w "$w" && cd "$w"
  local ldf="-s -w -X github.com/moby/buildkit/version.Version=$BUILDKIT_VERSION -X github.com/moby/buildkit/version.Package=github.com/moby/buildkit"
  mkdir -p "$out.tmp"
  # Upstream's static build flags (Dockerfile): netgo/osusergo, seccomp via runc, no cgo.
  CGO_ENABLED=0 go build -trimpath -tags "osusergo netgo static_build seccomp urfave_cli_no_docs" \
    -ldflags "$ldf" -o "$out.tmp/" ./cmd/buildkitd ./cmd/buildctl
  touch "$out.tmp/.complete"
  rm -rf "$out" && mv "$out.tmp" "$out"
  cd "$REPO_ROOT" && rm -rf "$w"
}

build_local_path_provisioner() {
  "$TOOL" local-path-provisioner github.com/rancher/local-path-provisioner "$LOCAL_PATH_PROVISIONER_VERSION" \
    -ldflags "-s -w -X main.VERSION=$LOCAL_PATH_PROVISIONER_VERSION" >/dev/null
}

build_versitygw() {
  "$TOOL" versitygw github.com/versity/versitygw/cmd/versitygw "$VERSITYGW_VERSION" >/dev/null
}

build_flux() {
  # Flux's source-controller and helm-controller, the pair of one Flux release. Each go.mod replaces its
  # api module with ./api, a nested module that module zips leave out, so neither `go install` nor a
  # plain copy of the module builds. Dropping that one replace builds against the api module at the
  # version the go.mod already requires (the proxy serves it); the other replace lines stay as upstream has them.
  local c v out src w
  for c in "source-controller $FLUX_SOURCE_CONTROLLER_VERSION" "helm-controller $FLUX_HELM_CONTROLLER_VERSION"; do
    read -r c v <<<"$c"
    out=$BIN_CACHE/$c-$v
    [ -f "$out/.complete" ] && continue
    w=$CACHE_ROOT/work/$c-$v
    src=$(moddir "github.com/fluxcd/$c@$v")
    rm -rf "$w" && cp -r "$src" "$w" && chmod -R u+w "$w" && cd "$w"
    go mod edit -dropreplace "github.com/fluxcd/$c/api"
    mkdir -p "$out.tmp"
    # Upstream's static build (its Dockerfile and Makefile): no cgo, netgo/osusergo.
    CGO_ENABLED=0 go build -trimpath -tags "netgo osusergo static_build" -ldflags "-s -w" -o "$out.tmp/$c" .
    # CRDs, RBAC and the Deployment travel with the binary: the cluster installs Flux from them.
    mkdir -p "$out.tmp/config" && cp -r config/crd config/rbac config/manager "$out.tmp/config/"
    touch "$out.tmp/.complete"
    rm -rf "$out" && mv "$out.tmp" "$out"
    cd "$REPO_ROOT" && rm -rf "$w"
  done
}

ALL=(kind etcd coredns pause containerd argo registry buildkit versitygw local_path_provisioner flux)
[ $# -eq 0 ] && set -- all
for c in "$@"; do
  [ "$c" = all ] && set -- "${ALL[@]}" && break
done
mkdir -p "$CACHE_ROOT/work"
# One line for what a cold machine has ahead, so a long build says roughly how much is left.
todo=() total=0
for c in "$@"; do cached "$c" || { todo+=("$c ~${COLD_MINUTES[$c]:-?} min"); total=$((total + ${COLD_MINUTES[$c]:-0})); }; done
if [ ${#todo[@]} -gt 0 ]; then
  printf -v list '%s, ' "${todo[@]}"
  log "to build (cold, 2 cores): ${list%, }; about $total min in all"
fi
# With set -E (lib.sh) this fires at the failing step inside build_$c; only the script's own shell
# reports, not each command substitution the failure passes through.
trap '[ "$BASHPID" != "$$" ] || log "building ${c:-?} failed at line $LINENO: $BASH_COMMAND"' ERR
for c in "$@"; do
  # Not inside `if`/`||`: set -e must stay active in the build functions.
  timed "$c" "build_$c"
done
