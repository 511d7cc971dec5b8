#!/usr/bin/env bash
# Makes a working Docker engine on this machine, idempotently: Debian packages if missing, the
# runc-capfix runtime wrapper where the host's capability bounding set is incomplete, daemon.json, and a
# running dockerd (started in the background when the host has no systemd as PID 1), then proves that a
# privileged container starts. kind nodes are privileged containers, so nothing else works without this.
set -Eeuo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
CACHE_ROOT=${FLEET_EVAL_CACHE:-/var/cache/fleet-eval}
LOGS=$CACHE_ROOT/logs
mkdir -p "$LOGS"
log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo

# 1. Packages. The build scripts need the rest of this list too (debootstrap for the base image, gcc
#    for pause, libseccomp-dev for runc).
PKGS=(docker.io containerd runc debootstrap jq gcc libc6-dev libseccomp-dev pkg-config
      containernetworking-plugins iptables gettext-base python3)
missing=()
for p in "${PKGS[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >"$LOGS/apt-docker.log"
fi

# 2. The runtime wrapper, only where the bounding set misses a capability the kernel knows.
want_wrapper=false
last_cap=$(cat /proc/sys/kernel/cap_last_cap)
full=$(( (1 << (last_cap + 1)) - 1 ))
bnd=$((16#$(awk '/^CapBnd:/{print $2}' /proc/self/status)))
[ $(( bnd & full )) -ne "$full" ] && want_wrapper=true
WRAPPER=/usr/local/sbin/runc-capfix
if $want_wrapper; then
  if ! cmp -s "$HERE/runc-capfix" "$WRAPPER"; then
    log "host bounding set is $(printf '%x' "$bnd"): installing $WRAPPER as dockerd's default runtime"
    $SUDO install -m 0755 "$HERE/runc-capfix" "$WRAPPER"
  fi
  DAEMON_JSON=$(jq -n --arg p "$WRAPPER" \
    '{"runtimes": {"runc-capfix": {"path": $p}}, "default-runtime": "runc-capfix", "log-driver": "json-file",
      "log-opts": {"max-size": "10m", "max-file": "2"}}')
else
  DAEMON_JSON='{"log-driver": "json-file", "log-opts": {"max-size": "10m", "max-file": "2"}}'
fi

# 3. daemon.json: merged into an existing file so settings owned by others survive.
$SUDO mkdir -p /etc/docker
current='{}'; [ -s /etc/docker/daemon.json ] && current=$(cat /etc/docker/daemon.json)
merged=$(jq -n --argjson a "$current" --argjson b "$DAEMON_JSON" '$a * $b')
changed=false
if [ "$(jq -S . <<<"$current")" != "$(jq -S . <<<"$merged")" ]; then
  log "writing /etc/docker/daemon.json"
  jq . <<<"$merged" | $SUDO tee /etc/docker/daemon.json >/dev/null
  changed=true
fi

# 4. dockerd. The Debian package's systemd unit is used when systemd is PID 1; otherwise dockerd runs
#    in the background with its log in the cache.
docker_up() { timeout 10 docker info >/dev/null 2>&1; }
if [ "$(ps -p 1 -o comm=)" = systemd ]; then
  if $changed || ! docker_up; then $SUDO systemctl restart docker; fi
else
  if $changed && pid=$(pgrep -x dockerd); then
    log "restarting dockerd (pid $pid) to apply daemon.json"
    $SUDO kill "$pid"
    for _ in $(seq 30); do pgrep -x dockerd >/dev/null || break; sleep 1; done
  fi
  if ! pgrep -x dockerd >/dev/null; then
    log "starting dockerd (log: $LOGS/dockerd.log)"
    # setsid detaches it from this shell's process group so make's job control never kills it.
    # 9>&-: never hand make cluster's lock (fd 9) to the long-lived daemon.
    $SUDO setsid nohup dockerd >>"$LOGS/dockerd.log" 2>&1 </dev/null 9>&- &
  fi
fi
for _ in $(seq 60); do docker_up && break; sleep 1; done
docker_up || { log "dockerd did not come up; see $LOGS/dockerd.log"; tail -n 30 "$LOGS/dockerd.log" >&2; exit 1; }

# 5. Proof: a privileged container starts. The busybox-free check uses the locally built base image
#    when it exists, otherwise any local image; with no image at all, an empty scratch image with a
#    static binary is imported (docker-init, i.e. tini-static, ships with docker.io).
probe=fleet-eval/privileged-probe:1
if ! docker image inspect "$probe" >/dev/null 2>&1; then
  tmp=$(mktemp -d)
  cp "$(readlink -f /usr/bin/docker-init)" "$tmp/tini"
  tar -C "$tmp" -c tini | docker import --change 'ENTRYPOINT ["/tini","--version"]' - "$probe" >/dev/null
  rm -rf "$tmp"
fi
if docker run --rm --privileged "$probe" >/dev/null 2>"$LOGS/privileged-probe.err"; then
  log "docker ready: a --privileged container runs (runtime: $(docker info -f '{{.DefaultRuntime}}'))"
else
  log "a --privileged container fails:"; cat "$LOGS/privileged-probe.err" >&2; exit 1
fi
