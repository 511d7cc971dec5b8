#!/usr/bin/env bash
# Installs one Go command at a pinned version into the machine cache and prints its path.
# Usage: go-tool.sh NAME MODULE/PATH/TO/CMD VERSION [extra go build flags...]
# The binary lands in $BIN_CACHE/NAME-VERSION/NAME; a cached binary is reused, never rebuilt.
source "$(dirname "$0")/lib.sh"
NAME=$1 PKG=$2 VERSION=$3; shift 3
OUT=$BIN_CACHE/$NAME-$VERSION
if [ ! -x "$OUT/$NAME" ]; then
  log "building $NAME $VERSION from $PKG (go module proxy)"
  rm -rf "$OUT.tmp" && mkdir -p "$OUT.tmp"
  CGO_ENABLED=${CGO_ENABLED:-0} GOBIN="$OUT.tmp" go install -trimpath -ldflags "-s -w" "$@" "$PKG@$VERSION"
  # go install names the binary after the package directory; normalise to NAME.
  built=$(find "$OUT.tmp" -maxdepth 1 -type f | head -n1)
  [ "$built" = "$OUT.tmp/$NAME" ] || mv "$built" "$OUT.tmp/$NAME"
  rm -rf "$OUT" && mv "$OUT.tmp" "$OUT"
fi
echo "$OUT/$NAME"
