#!/usr/bin/env bash
# Builds Argo Workflows' web UI (the module's ui/ -> ui/dist/app) into the machine cache and prints the
# path of dist/app. Argo's ui/ pins argo-ui to a GitHub commit; here it is npm's argo-ui@1.0.0 with the
# patches in scripts/build/argo-ui/patches (see its README). Argo's own sources stay as published: only
# the argo-ui line of ui/package.json and its ui/yarn.lock entry change, and every other package is
# installed with yarn's frozen lockfile.
# Cached in $CACHE_ROOT/argo-ui/<argo version>-<key>/app, key = argo_ui_key (lib.sh); never rebuilt.
# Usage: argo-ui.sh
source "$(dirname "$0")/lib.sh"
HERE=$(cd "$(dirname "$0")" && pwd)
KEY=$(argo_ui_key)
OUT=$CACHE_ROOT/argo-ui/$ARGO_VERSION-$KEY
if [ -f "$OUT/.complete" ]; then
  echo "$OUT/app"
  exit 0
fi
TIMES=$CACHE_ROOT/logs/build-times.tsv
LOGS=$CACHE_ROOT/logs
W=$CACHE_ROOT/work/argo-ui-$ARGO_VERSION
T0=$(date +%s)

node_major=$(node --version 2>/dev/null | sed 's/^v\([0-9]*\).*/\1/')
[ "${node_major:-0}" -ge 20 ] || { log "Argo's UI needs Node.js 20 or newer on PATH (found: ${node_major:-none})"; exit 1; }

# npm_fetch NAME VERSION INTEGRITY DIR: download NAME@VERSION's tarball into DIR, fail unless its
# sha512 is INTEGRITY, print the tarball's path.
npm_fetch() {
  local name=$1 version=$2 want=$3 dir=$4 tgz got
  tgz=$(cd "$dir" && npm pack --silent "$name@$version")
  got=sha512-$(openssl dgst -sha512 -binary "$dir/$tgz" | base64 -w0)
  [ "$got" = "$want" ] || { log "$name@$version from npm has integrity $got, expected $want"; return 1; }
  echo "$dir/$tgz"
}

run_logged() { # run_logged LOG CMD...: run CMD with its output in LOG; on failure show the end of LOG
  local l=$1; shift
  "$@" >"$l" 2>&1 || { log "failed: $*; end of $l:"; tail -n 40 "$l" >&2; return 1; }
}

log "building Argo UI $ARGO_VERSION with argo-ui@$ARGO_UI_NPM_VERSION + $(ls "$HERE/argo-ui/patches" | wc -l) patches (key $KEY)"
rm -rf "$W" && mkdir -p "$W/dl" "$W/api"

YARN=$BIN_CACHE/yarn-$YARN_VERSION/bin/yarn
if [ ! -x "$YARN" ]; then
  tgz=$(npm_fetch yarn "$YARN_VERSION" "$YARN_NPM_INTEGRITY" "$W/dl")
  rm -rf "$BIN_CACHE/yarn-$YARN_VERSION.tmp"
  npm install --silent --global --prefix "$BIN_CACHE/yarn-$YARN_VERSION.tmp" "$tgz" >/dev/null
  rm -rf "$BIN_CACHE/yarn-$YARN_VERSION" && mv "$BIN_CACHE/yarn-$YARN_VERSION.tmp" "$BIN_CACHE/yarn-$YARN_VERSION"
fi

# Argo's webpack config copies ../api/openapi-spec and ../api/jsonschema, so keep the module's layout.
src=$(go mod download -json "github.com/argoproj/argo-workflows/v4@$ARGO_VERSION" | jq -r .Dir)
cp -r "$src/ui" "$W/ui"
cp -r "$src/api/openapi-spec" "$src/api/jsonschema" "$W/api/"

tgz=$(npm_fetch argo-ui "$ARGO_UI_NPM_VERSION" "$ARGO_UI_NPM_INTEGRITY" "$W/dl")
tar -xzf "$tgz" -C "$W" && mv "$W/package" "$W/argo-ui"
chmod -R u+w "$W"
for p in "$HERE"/argo-ui/patches/*.patch; do
  patch -d "$W/argo-ui" -p1 -s --fuzz=0 --no-backup-if-mismatch <"$p" \
    || { log "patch $(basename "$p") does not apply to argo-ui@$ARGO_UI_NPM_VERSION"; exit 1; }
done

# Point Argo's ui/ at the patched folder: its package.json line and its yarn.lock entry, nothing else.
cd "$W/ui"
sed -i 's#"argo-ui": "git+https://github.com/argoproj/argo-ui.git\#[0-9a-f]*"#"argo-ui": "file:../argo-ui"#' package.json
grep -q '"argo-ui": "file:../argo-ui"' package.json \
  || { log "ui/package.json of Argo $ARGO_VERSION has no git-pinned argo-ui dependency to replace"; exit 1; }
# yarn 1 records a folder dependency as its version and dependencies; --frozen-lockfile then holds
# every other entry to the published lockfile.
entry=$(jq -r '"\"argo-ui@file:../argo-ui\":\n  version \"\(.version)\"\n  dependencies:\n"
  + ([.dependencies | to_entries[]
      | "    " + (if (.key | test("^[a-z0-9-]+$")) then .key else "\"\(.key)\"" end) + " \"\(.value)\""]
     | join("\n"))' "$W/argo-ui/package.json")
awk -v e="$entry" '/^"argo-ui@git\+/ {print e; skip=1; next} skip && /^$/ {skip=0} !skip' yarn.lock >yarn.lock.new
mv yarn.lock.new yarn.lock
[ "$(diff "$src/ui/yarn.lock" yarn.lock | grep -c '^[<>] "argo-ui@')" = 2 ] \
  || { log "ui/yarn.lock of Argo $ARGO_VERSION: the argo-ui entry was not replaced exactly once"; exit 1; }

export YARN_CACHE_FOLDER=$CACHE_ROOT/yarn-cache
t=$(date +%s)
run_logged "$LOGS/argo-ui-install.log" "$YARN" install --frozen-lockfile --non-interactive --network-timeout 600000
log "yarn install: $(( $(date +%s) - t ))s"
t=$(date +%s)
# The same command as upstream's Makefile (JOBS=max yarn --cwd ui build); webpack peaks near 2.7 GB.
JOBS=max run_logged "$LOGS/argo-ui-build.log" "$YARN" build
log "yarn build: $(( $(date +%s) - t ))s"
[ -f dist/app/index.html ] || { log "yarn build left no dist/app/index.html"; exit 1; }

rm -rf "$OUT.tmp" && mkdir -p "$OUT.tmp" && mv dist/app "$OUT.tmp/app"
touch "$OUT.tmp/.complete"
rm -rf "$OUT" && mv "$OUT.tmp" "$OUT"
cd "$REPO_ROOT" && rm -rf "$W"
# Builds of older keys are superseded (the argo binaries embed their own copy).
find "$CACHE_ROOT/argo-ui" -mindepth 1 -maxdepth 1 -name "$ARGO_VERSION-*" ! -name "$(basename "$OUT")" -exec rm -rf {} +
printf '%s\t%s\t%ss\n' "$(date -u +%FT%TZ)" argo-ui "$(( $(date +%s) - T0 ))" >>"$TIMES"
log "Argo UI built in $(( $(date +%s) - T0 ))s: $(du -sh "$OUT/app" | cut -f1) in $OUT/app"
echo "$OUT/app"
