"""GitOps on the kind cluster: the chart's values repository on the demo Git server, reconciled by Flux.

The repository `fleet-eval-config` holds the chart and one values file; Flux's GitRepository and
HelmRelease (scripts/build/cluster/manifests/gitops-release.yaml) make every push a `helm upgrade` of the
`fleet-eval` release, and each entry under `releases` one release Workflow (docs/gitops.md).
`make demo` and tests/e2e/test_gitops.py hand the release over to Flux and commit to it with this module,
as a platform engineer does with `git clone`, an edit and `git push`.
"""

from __future__ import annotations

import json
import shutil
import string
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from scripts.demo import cluster
from scripts.demo.cluster import CHART, GIT_NODE_PORT, NAMESPACE, RELEASE, REPO, kubectl

CONFIG_REPO = "fleet-eval-config"
HOST_URL = f"http://127.0.0.1:{GIT_NODE_PORT}/git/{CONFIG_REPO}.git"
# What source-controller fetches: the chart's Git server Service (networkPolicies are off in the demo).
CLUSTER_URL = f"http://{RELEASE}-git.{NAMESPACE}.svc.cluster.local/git/{CONFIG_REPO}.git"
BRANCH = "main"
CHART_PATH = "charts/fleet-eval"
VALUES_FILE = "values/kind.yaml"
INTERVAL = "10s"
PUSH_SECRET = f"{RELEASE}-git-push"
SECRET_VALUES = "fleet-eval-gitops-values"  # noqa: S105  # a Secret's name: the HelmRelease's valuesFrom
MANIFEST = REPO / "scripts" / "build" / "cluster" / "manifests" / "gitops-release.yaml"
HELMRELEASE = "helmreleases.helm.toolkit.fluxcd.io"
GITREPOSITORY = "gitrepositories.source.toolkit.fluxcd.io"
HELMCHART = "helmcharts.source.toolkit.fluxcd.io"
CHART_OBJECT = f"{NAMESPACE}-{RELEASE}"  # the HelmChart helm-controller creates: <namespace>-<helmrelease>
RECONCILE = "reconcile.fluxcd.io/requestedAt"
VALUES_HEADER = (
    "# The fleet-eval release on the kind cluster, reconciled by Flux (docs/gitops.md). A release is an\n"
    "# entry under `releases`: commit and push, and helm-controller creates its Workflow.\n"
)
WATCH = (
    f"kubectl -n {NAMESPACE} get gitrepository,helmchart,helmrelease",
    f"kubectl -n {NAMESPACE} events --for helmrelease/{RELEASE}",
    f"kubectl -n {NAMESPACE} get workflows -l app.kubernetes.io/component=release",
)


def _git(checkout: Path, *args: str) -> str:
    identity = ["-c", "user.name=fleet-eval platform engineer", "-c", "user.email=platform@fleet-eval.invalid"]
    done = subprocess.run(["git", "-C", str(checkout), *identity, *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} in {checkout} failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout.strip()


@dataclass
class ConfigRepo:
    """A clone of the values repository; commit and push as a platform engineer does."""

    checkout: Path

    @classmethod
    def clone(cls, workdir: Path) -> ConfigRepo:
        """Clone the repository (created empty by the Git server: then a new main branch)."""
        checkout = workdir / CONFIG_REPO
        done = subprocess.run(["git", "clone", "--quiet", HOST_URL, str(checkout)], capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"git clone {HOST_URL} failed: {done.stderr.strip()} (is the chart's Git server up?)")
        _git(checkout, "checkout", "--quiet", "-B", BRANCH)
        return cls(checkout)

    def values(self) -> dict[str, Any]:
        """The values file as committed (empty before the first handover)."""
        path = self.checkout / VALUES_FILE
        return dict(yaml.safe_load(path.read_text()) or {}) if path.exists() else {}

    def write_values(self, values: dict[str, Any]) -> None:
        """Replace the values file."""
        path = self.checkout / VALUES_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(VALUES_HEADER + yaml.safe_dump(values, sort_keys=False))

    def set_releases(self, releases: list[dict[str, Any]]) -> None:
        """The `releases` list of the values file."""
        values = self.values()
        values["releases"] = releases
        self.write_values(values)

    def write_chart(self, chart: Path = CHART) -> None:
        """The chart as this checkout has it (Flux builds it from the repository)."""
        target = self.checkout / CHART_PATH
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(chart, target, ignore=shutil.ignore_patterns("__pycache__", "*.tgz"))

    def commit_and_push(self, message: str, *, allow_empty: bool = False) -> tuple[str, float]:
        """Commit everything and push to main; returns the commit and when the push returned (time.time())."""
        _git(self.checkout, "add", "--all")
        _git(self.checkout, "commit", "--quiet", *(["--allow-empty"] if allow_empty else []), "-m", message)
        user, password = (cluster.secret_value(PUSH_SECRET, key) for key in ("username", "password"))
        push_url = HOST_URL.replace("http://", f"http://{user}:{password}@")
        _git(self.checkout, "push", "--quiet", push_url, f"HEAD:refs/heads/{BRANCH}")
        return _git(self.checkout, "rev-parse", "HEAD"), time.time()


def _get(resource: str, name: str) -> dict[str, Any] | None:
    out = kubectl("-n", NAMESPACE, "get", resource, name, "--ignore-not-found", "-o", "json")
    return dict(json.loads(out)) if out.strip() else None


def _ready(obj: dict[str, Any]) -> dict[str, Any]:
    conditions = obj.get("status", {}).get("conditions") or []
    return next((c for c in conditions if c.get("type") == "Ready"), {})


def request_reconcile(resource: str = HELMRELEASE, name: str = RELEASE) -> str:
    """Ask Flux to reconcile now (what `flux reconcile` does); returns the token it reports back."""
    token = str(time.time_ns())
    kubectl("-n", NAMESPACE, "annotate", "--overwrite", resource, name, f"{RECONCILE}={token}")
    return token


def wait_reconciled(token: str, *, timeout: float = 300) -> dict[str, Any]:
    """Wait until helm-controller handled the reconcile request ``token`` and the release is Ready."""
    deadline = time.monotonic() + timeout
    while True:
        release = _get(HELMRELEASE, RELEASE) or {}
        ready = _ready(release)
        if release.get("status", {}).get("lastHandledReconcileAt") == token and ready.get("status") == "True":
            return release
        if time.monotonic() > deadline:
            raise TimeoutError(f"helmrelease {NAMESPACE}/{RELEASE} did not handle reconcile {token}: {ready}")
        time.sleep(2)


def wait_fetched(commit: str, *, timeout: float = 300) -> None:
    """Wait until source-controller has fetched ``commit`` (the GitRepository's artifact)."""
    deadline = time.monotonic() + timeout
    while True:
        repo = _get(GITREPOSITORY, RELEASE) or {}
        revision = str(repo.get("status", {}).get("artifact", {}).get("revision", ""))
        if revision.endswith(commit):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"gitrepository {NAMESPACE}/{RELEASE} has revision {revision!r}, not {commit}: {_ready(repo)}"
            )
        time.sleep(2)


def wait_chart_built(commit: str, *, timeout: float = 300) -> None:
    """Wait until the HelmChart helm-controller asked for is built from ``commit`` (version 0.1.0+<commit12>...)."""
    deadline = time.monotonic() + timeout
    name = CHART_OBJECT
    while True:
        chart = _get(HELMCHART, name) or {}
        revision = str(chart.get("status", {}).get("artifact", {}).get("revision", ""))
        if f"+{commit[:12]}" in revision:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"helmchart {NAMESPACE}/{name} is at {revision!r}, not {commit[:12]}: {_ready(chart)}")
        time.sleep(2)


def wait_applied(commit: str, *, timeout: float = 900) -> dict[str, Any]:
    """Wait until helm-controller has deployed the chart built from ``commit``; returns the HelmRelease.

    Raises as soon as the upgrade of that commit failed, with helm-controller's message.
    """
    deadline = time.monotonic() + timeout
    while True:
        release = _get(HELMRELEASE, RELEASE) or {}
        status = release.get("status", {})
        history = status.get("history") or [{}]
        ready = _ready(release)
        deployed = (
            f"+{commit[:12]}" in str(history[0].get("chartVersion", "")) and history[0].get("status") == "deployed"
        )
        if deployed and ready.get("status") == "True":
            return release
        attempted = f"+{commit[:12]}" in str(status.get("lastAttemptedRevision", ""))
        if attempted and ready.get("status") == "False" and ready.get("reason") != "Progressing":
            raise RuntimeError(
                f"helmrelease {NAMESPACE}/{RELEASE} failed on commit {commit[:12]}: {ready.get('message')}"
            )
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"helmrelease {NAMESPACE}/{RELEASE} has not deployed commit {commit[:12]} after {timeout:.0f}s: "
                f"last attempted {status.get('lastAttemptedRevision')!r}, Ready: {ready}"
            )
        time.sleep(2)


def _manifests() -> dict[str, dict[str, Any]]:
    params = {
        "GITOPS_REPO_URL": CLUSTER_URL,
        "GITOPS_BRANCH": BRANCH,
        "GITOPS_CHART_PATH": CHART_PATH,
        "GITOPS_VALUES_FILE": VALUES_FILE,
        "GITOPS_INTERVAL": INTERVAL,
    }
    docs = yaml.safe_load_all(string.Template(MANIFEST.read_text()).substitute(params))
    return {doc["kind"]: doc for doc in docs if doc}


def _installed_values(repo: ConfigRepo) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """(values for Git, credentials for the Secret) of the installed release.

    Right after a `helm upgrade` by hand its user-supplied values are the whole configuration; when
    helm-controller made the last revision they are only the Secret's, and Git's file is kept.
    """
    out = subprocess.run(
        [cluster.tool("helm"), "--kube-context", cluster.KUBE_CONTEXT, "-n", NAMESPACE, "get", "values", RELEASE,
         "-ojson"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if out.returncode != 0:
        raise RuntimeError(f"helm get values {RELEASE} failed: {out.stderr.strip()} (install the chart first)")
    values = dict(json.loads(out.stdout or "{}") or {})
    secrets = values.pop("secrets", None)
    values.pop("releases", None)
    if "demo" not in values:
        values = {k: v for k, v in repo.values().items() if k != "releases"}
        if not values:
            raise RuntimeError(f"release {RELEASE} has no demo values and {CONFIG_REPO} no values file to keep")
    return values, secrets


def hand_over(repo: ConfigRepo, *, releases: list[dict[str, Any]] | None = None) -> str:
    """Make Flux manage the installed release from ``repo``: chart, values, then the GitRepository and HelmRelease.

    The values are the installed release's (so the handover changes no object), with ``releases``
    (default: none). A HelmRelease suspended for a `helm upgrade` by hand is resumed only once the chart
    of this commit is built, so helm-controller never upgrades to an older commit. Returns the commit.
    """
    values, secrets = _installed_values(repo)
    if secrets is not None:
        secret = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": SECRET_VALUES, "namespace": NAMESPACE},
            "type": "Opaque",
            "stringData": {"values.yaml": yaml.safe_dump({"secrets": secrets})},
        }
        kubectl("apply", "-f", "-", stdin=json.dumps(secret))
    repo.write_chart()
    repo.write_values({**values, "releases": releases or []})
    commit, _ = repo.commit_and_push("GitOps handover: the installed release's chart and values", allow_empty=True)
    manifests = _manifests()
    kubectl("apply", "-f", "-", stdin=json.dumps(manifests["GitRepository"]))
    request_reconcile(GITREPOSITORY, RELEASE)
    wait_fetched(commit)
    existing = cluster.flux_release()
    kubectl("apply", "-f", "-", stdin=json.dumps(manifests["HelmRelease"]))
    if existing is not None and existing.get("spec", {}).get("suspend"):
        # source-controller rebuilds the chart when the source's revision changes, suspended or not.
        request_reconcile(HELMCHART, CHART_OBJECT)
        wait_chart_built(commit)
        kubectl("-n", NAMESPACE, "patch", HELMRELEASE, RELEASE, "--type", "merge", "-p", '{"spec":{"suspend":false}}')
    wait_applied(commit)
    return commit


def release_workflows() -> dict[str, dict[str, Any]]:
    """The release Workflows the chart rendered (any release, listed or kept), by name."""
    out = kubectl("-n", NAMESPACE, "get", "workflows", "-l", "app.kubernetes.io/component=release", "-o", "json")
    return {w["metadata"]["name"]: w for w in json.loads(out)["items"]}


def wait_release_workflow(version: str, run: str | None, *, timeout: float = 600, poll: float = 1) -> dict[str, Any]:
    """Wait until the Workflow of the release entry (version, run) exists; returns it."""
    deadline = time.monotonic() + timeout
    while True:
        for workflow in release_workflows().values():
            annotations = workflow["metadata"].get("annotations") or {}
            if annotations.get("fleet-eval/version") == version and annotations.get("fleet-eval/run") == run:
                return workflow
        if time.monotonic() > deadline:
            state = _ready(_get(HELMRELEASE, RELEASE) or {})
            raise TimeoutError(
                f"no release Workflow of {version} (run {run}) after {timeout:.0f}s; helmrelease: {state}"
            )
        time.sleep(poll)


def controller_view() -> str:
    """What Flux itself shows: the source, the chart and the release, and the release's recent events."""
    objects = kubectl("-n", NAMESPACE, "get", f"{GITREPOSITORY},{HELMCHART},{HELMRELEASE}")
    events = kubectl("-n", NAMESPACE, "events", "--for", f"helmrelease/{RELEASE}", check=False)
    return f"{objects.rstrip()}\n{events.rstrip()}"
