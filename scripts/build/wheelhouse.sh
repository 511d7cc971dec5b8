#!/usr/bin/env bash
# Downloads every wheel the runner images install (images/runner/requirements/*.txt: uv.lock's pins, with
# hashes) into the machine cache, for CPython 3.11 on Linux x86_64, the platform of this host and of the
# cluster's Python base. The demo's package index serves them to in-cluster builds, and the host build of
# the core image reads them through a local index, so no image build ever resolves anything.
# Prints the wheelhouse directory. Usage: wheelhouse.sh [EXTRA_REQUIREMENT...] (extra pins, with deps).
source "$(dirname "$0")/lib.sh"
WHEELHOUSE=$CACHE_ROOT/wheelhouse
mkdir -p "$WHEELHOUSE"
stamp=$WHEELHOUSE/.complete-$(content_key "$REPO_ROOT/images/runner/requirements" "$@")
if [ ! -f "$stamp" ]; then
  log "wheelhouse: downloading the runner wheels into $WHEELHOUSE"
  for req in "$REPO_ROOT"/images/runner/requirements/*.txt; do
    # The files carry hashes, so pip checks every download; files already there are reused.
    python3 -m pip download --quiet --no-deps --only-binary=:all: --dest "$WHEELHOUSE" -r "$req" \
      >>"$CACHE_ROOT/logs/wheelhouse.log" 2>&1 || { log "pip download -r $req failed; see $CACHE_ROOT/logs/wheelhouse.log"; exit 1; }
  done
  if [ $# -gt 0 ]; then
    python3 -m pip download --quiet --only-binary=:all: --dest "$WHEELHOUSE" "$@" >>"$CACHE_ROOT/logs/wheelhouse.log" 2>&1
  fi
  touch "$stamp"
fi
echo "$WHEELHOUSE"
