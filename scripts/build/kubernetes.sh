#!/usr/bin/env bash
# Builds kubeadm, kubelet, kubectl and the control-plane binaries of one Kubernetes version from the
# k8s.io/kubernetes module. `go install` cannot do it (the module replaces its staging modules with
# local paths), so a throwaway wrapper module pins every staging module to its published v0.Y.Z.
# Output: $BIN_CACHE/kubernetes-$K/<binary>; a finished build is never redone.
source "$(dirname "$0")/lib.sh"
K=${KUBERNETES_VERSION:-v1.34.4}
S=v0.${K#v1.}
OUT=$BIN_CACHE/kubernetes-$K
[ -f "$OUT/.complete" ] && { log "kubernetes $K cached in $OUT"; exit 0; }

WORK=$CACHE_ROOT/work/kubernetes-$K
rm -rf "$WORK" && mkdir -p "$WORK" "$OUT" && cd "$WORK"
go mod init local/k8sbuild >/dev/null 2>&1
MOD=$(go mod download -json "k8s.io/kubernetes@$K" | python3 -c 'import json,sys;print(json.load(sys.stdin)["GoMod"])')
GOVER=$(awk '$1=="go"{print $2; exit}' "$MOD")
go mod edit -go="$GOVER"
grep -E '^godebug ' "$MOD" >> go.mod || true
sed -n '/^replace (/,/^)/p' "$MOD" | awk '$2=="=>"{print $1}' | while read -r m; do
  go mod edit -replace="$m=$m@$S"
done
CMDS=(kubeadm kubelet kubectl kube-apiserver kube-controller-manager kube-scheduler kube-proxy)
PKGS=("${CMDS[@]/#/k8s.io/kubernetes/cmd/}")
log "resolving modules for kubernetes $K"
go get "${PKGS[@]/%/@$K}"

MINOR=$(echo "$K" | cut -d. -f2)
# Without these the binaries report v0.0.0-master and kubeadm refuses the version.
LDF="-s -w"
for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  LDF="$LDF -X $p.gitVersion=$K -X $p.gitMajor=1 -X $p.gitMinor=$MINOR -X $p.gitTreeState=clean"
  LDF="$LDF -X $p.gitCommit=0000000000000000000000000000000000000000 -X $p.buildDate=1970-01-01T00:00:00Z"
done
log "building ${CMDS[*]} (cold: about ${COLD_MINUTES[kubernetes]} min on 2 cores, the longest build of all)"
t0=$(date +%s)
CGO_ENABLED=0 with_progress kubernetes go build -trimpath -ldflags "$LDF" -o "$OUT/" "${PKGS[@]}"
printf '%s\t%s\t%ss\n' "$(date -u +%FT%TZ)" kubernetes "$(( $(date +%s) - t0 ))" >>"$CACHE_ROOT/logs/build-times.tsv"
cp "$MOD" "$OUT/kubernetes.mod"
touch "$OUT/.complete"
log "kubernetes $K built into $OUT"
