#!/usr/bin/env bash
# `make setup`: everything a fresh Debian 12 machine lacks to run `make test-fast`, idempotently.
# System packages from Debian, Go tools from the Go module proxy (cached by version under
# $FLEET_EVAL_CACHE), Python packages from PyPI pinned by uv.lock. Area-specific steps live in
# scripts/setup.d/*.sh and run last, in name order.
set -Eeuo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=versions.env
source scripts/versions.env
log() { printf '[setup %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# chromium: the review UI is tested once in a real headless browser (tests/integration/review);
# Debian's shellcheck: `make lint` runs it on every shell script.
APT_PACKAGES=(postgresql git ca-certificates curl util-linux chromium shellcheck)
missing=()
for package in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

command -v go >/dev/null || { echo "setup: Go is required (Go 1.26 from the machine image); not found on PATH" >&2; exit 1; }
log "versitygw $VERSITYGW_VERSION: $(bash scripts/build/go-tool.sh versitygw github.com/versity/versitygw/cmd/versitygw "$VERSITYGW_VERSION")"

if [ "$(uv --version 2>/dev/null | awk '{print $2}')" != "$UV_VERSION" ]; then
  log "installing uv $UV_VERSION"
  python3 -m pip install -q --root-user-action=ignore "uv==$UV_VERSION"
fi
log "python environment (.venv) from uv.lock"
uv sync --frozen --quiet

for step in scripts/setup.d/*.sh; do
  [ -e "$step" ] || continue
  log "running $step"
  bash "$step"
done
log "done"
