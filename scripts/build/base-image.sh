#!/usr/bin/env bash
# Builds local/debian:bookworm, the base of every image here, from Debian packages with debootstrap
# (no registry needed) and caches it as a saved tarball keyed by suite, package list and this script.
# Prints the tag.
source "$(dirname "$0")/lib.sh"
SUITE=bookworm
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
SECURITY_MIRROR=${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
# ca-certificates so images can reach PyPI/registries over TLS; nothing else beyond minbase.
INCLUDE=ca-certificates
TAG=local/debian:$SUITE
KEY=$(content_key "$SUITE" "$MIRROR" "$INCLUDE" "$0")

build() {
  local root; root=$(mktemp -d "$CACHE_ROOT/work/debootstrap.XXXXXX")
  debootstrap --variant=minbase --include="$INCLUDE" "$SUITE" "$root" "$MIRROR" \
    >"$CACHE_ROOT/logs/debootstrap.log" 2>&1
  # Updates and security fixes come from apt inside later image builds, so point apt at them too.
  rm -f "$root/etc/apt/sources.list"
  cat >"$root/etc/apt/sources.list.d/debian.sources" <<SRC
Types: deb
URIs: $MIRROR
Suites: $SUITE $SUITE-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $SECURITY_MIRROR
Suites: $SUITE-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  # Keep images small: no docs/man pages, no apt lists, no recommends.
  printf 'path-exclude /usr/share/doc/*\npath-exclude /usr/share/man/*\npath-exclude /usr/share/locale/*\n' \
    >"$root/etc/dpkg/dpkg.cfg.d/01-nodoc"
  printf 'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n' >"$root/etc/apt/apt.conf.d/01-norecommends"
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/archives/*.deb "$root"/usr/share/doc/* "$root"/usr/share/man/*
  tar -C "$root" --numeric-owner -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change "LABEL fleet-eval.key=$KEY" \
    --change 'CMD ["/bin/bash"]' - "$TAG" >/dev/null
  rm -rf "$root"
}
mkdir -p "$CACHE_ROOT/work"
ensure_image "$TAG" "$KEY" build
echo "$TAG"
