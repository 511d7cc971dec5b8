# Shared settings for the offline cluster builds: one cache root outside the checkout, keyed by version.
# Sourced by every cluster/build/*.sh script; never executed on its own.
set -euo pipefail
CACHE_ROOT=${FLEET_EVAL_CACHE:-/var/cache/fleet-eval}
export GOMODCACHE=$CACHE_ROOT/gomod
export GOCACHE=$CACHE_ROOT/gocache
# -mod=mod lets wrapper modules resolve without a committed go.sum; GOTOOLCHAIN=local keeps the
# machine's Go instead of downloading another one.
export GOFLAGS=-mod=mod
export GOTOOLCHAIN=local
BIN_CACHE=$CACHE_ROOT/bin
mkdir -p "$BIN_CACHE" "$CACHE_ROOT/logs"

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
