#!/bin/sh
# Builds battery-lib's demo history as a bare repository: one commit and annotated tag v<version> per
# demo version (oldest first), then one unreleased commit on main. Authors and dates are fixed, so the
# same sources always give the same commit ids.
# Usage: seed-battery-lib.sh SOURCES_DIR OUT_DIR   (SOURCES_DIR/<version>/ are the library's trees)
set -eu
src=$1 out=$2
work=$(mktemp -d)
export GIT_AUTHOR_NAME="battery-lib team" GIT_AUTHOR_EMAIL="battery-lib@example.invalid"
export GIT_COMMITTER_NAME="$GIT_AUTHOR_NAME" GIT_COMMITTER_EMAIL="$GIT_AUTHOR_EMAIL"
git init -q -b main "$work"
day=1
for version in $(find "$src" -mindepth 1 -maxdepth 1 -type d -printf '%f\n' | sort -V); do
  find "$work" -mindepth 1 -maxdepth 1 ! -name .git -exec rm -rf {} +
  cp -r "$src/$version/." "$work/"
  stamp=2026-01-$(printf %02d "$day")T12:00:00Z
  export GIT_AUTHOR_DATE="$stamp" GIT_COMMITTER_DATE="$stamp"
  git -C "$work" add -A
  git -C "$work" commit -q -m "battery-lib $version"
  git -C "$work" tag -a "v$version" -m "battery-lib $version"
  day=$((day + 1))
  last=$version
done
# The unreleased change: the next version under development, not yet on the package index.
stamp=2026-01-$(printf %02d "$day")T12:00:00Z
export GIT_AUTHOR_DATE="$stamp" GIT_COMMITTER_DATE="$stamp"
sed -i "s/^version = \"$last\"/version = \"0.11.0.dev0\"/" "$work/pyproject.toml"
sed -i "s/^__version__ = \"$last\"/__version__ = \"0.11.0.dev0\"/" "$work/battery_lib/__init__.py"
printf '# battery-lib\n\nUnreleased: 0.11.0.dev0, the next release under development on main.\n' >"$work/README.md"
git -C "$work" add -A
git -C "$work" commit -q -m "Start 0.11.0.dev0 (unreleased)"
mkdir -p "$out"
git clone -q --bare "$work" "$out/battery-lib.git"
git -C "$out/battery-lib.git" config http.receivepack false   # the library's history is read-only here
rm -rf "$work"
