# shellcheck shell=bash
# Pinned versions of every component of the offline cluster. The cache is keyed by these, so changing
# one rebuilds exactly that piece. Each was checked to be served by the Go module proxy of the build
# machines (2026-11-26). Sourced by lib.sh; environment variables override.
: "${KUBERNETES_VERSION:=v1.34.4}"    # newest 1.34 on the proxy; 1.35+ refuses cgroup v1 by default
: "${KIND_VERSION:=v0.30.0}"          # last kind whose CI ran cgroup v1; node files from this module
: "${ETCD_VERSION:=v3.6.16}"          # newest 3.6 patch served (kubeadm 1.34 expects 3.6.x)
: "${COREDNS_VERSION:=v1.12.1}"       # what kubeadm 1.34 deploys
: "${PAUSE_VERSION:=3.10.1}"          # kubeadm 1.34's pause; kind's containerd config asks for 3.10
: "${CONTAINERD_VERSION:=v2.1.9}"     # kind v0.30.0 shipped 2.1.x; K8s 1.34 needs >= 2.1.3
: "${RUNC_VERSION:=v1.3.6}"
: "${CRICTL_VERSION:=v1.34.0}"
: "${ARGO_VERSION:=v4.0.5}"           # the only argo-workflows/v4 version the proxy serves
: "${VERSITYGW_VERSION:=v1.8.0}"
: "${REGISTRY_VERSION:=v3.1.2}"       # github.com/distribution/distribution/v3
: "${BUILDKIT_VERSION:=v0.32.2}"
export KUBERNETES_VERSION KIND_VERSION ETCD_VERSION COREDNS_VERSION PAUSE_VERSION CONTAINERD_VERSION \
  RUNC_VERSION CRICTL_VERSION ARGO_VERSION VERSITYGW_VERSION REGISTRY_VERSION BUILDKIT_VERSION
# Images the chart uses (Python packages from PyPI; PostgreSQL from Debian bookworm, which has 15 only).
: "${MLFLOW_VERSION:=3.17.2}"         # = the mlflow pinned in uv.lock
: "${BOTO3_VERSION:=1.44.8}"
: "${PSYCOPG_VERSION:=3.3.9}"
: "${POSTGRES_MAJOR:=15}"
export MLFLOW_VERSION BOTO3_VERSION PSYCOPG_VERSION POSTGRES_MAJOR
: "${LOCAL_PATH_PROVISIONER_VERSION:=v0.0.30}"  # the only version served; dynamic PVs (kind's default too)
export LOCAL_PATH_PROVISIONER_VERSION
# Argo's web UI (scripts/build/argo-ui.sh), from the npm registry. Argo pins argo-ui to a GitHub commit;
# npm's only argo-ui is 1.0.0, which scripts/build/argo-ui/patches adapt. The integrity is npm's
# `dist.integrity`, checked before the tarball is used.
: "${ARGO_UI_NPM_VERSION:=1.0.0}"
: "${ARGO_UI_NPM_INTEGRITY:=sha512-NvV47SAcVdTZeTm59EVw09u8ZdbXUo2kPdLCveJ8kbBAsFZ3pbYgDGcB9xE61iWCgM1l82sdczUp4NAfGOdCAQ==}"
: "${YARN_VERSION:=1.22.22}"          # Argo's ui/yarn.lock is a yarn 1 lockfile
: "${YARN_NPM_INTEGRITY:=sha512-prL3kGtyG7o9Z9Sv8IPfBNrWTDmXB4Qbes8A9rEzt6wkJV8mUvoirjU0Mp3GGAU06Y0XQyA3/2/RQFVuK7MTfg==}"
export ARGO_UI_NPM_VERSION ARGO_UI_NPM_INTEGRITY YARN_VERSION YARN_NPM_INTEGRITY
# GitOps controller (docs/gitops.md): Flux's source-controller and helm-controller of one Flux release.
: "${FLUX_HELM_CONTROLLER_VERSION:=v1.4.0}"    # Flux 2.7.0; the only helm-controller module the proxy serves
: "${FLUX_SOURCE_CONTROLLER_VERSION:=v1.7.0}"  # Flux 2.7.0's (v1.8+ pairs with helm-controller v1.5+, refused)
export FLUX_HELM_CONTROLLER_VERSION FLUX_SOURCE_CONTROLLER_VERSION
