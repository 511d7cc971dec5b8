"""The chart under a GitOps controller: what Flux's helm-controller does with it on every commit.

Flux builds the chart from Git as `<version>+<commit>.<generation>` and runs `helm upgrade` for every
commit. For a Workflow (a custom resource) Helm sends the JSON merge patch from the previous release's
manifest to the new one, and nothing when they are equal. So "a no-op commit starts nothing and
rewrites no release" means: the release Workflows render identically across such upgrades.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import string
import threading
from collections.abc import Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.chart.conftest import BIN_CACHE, CHART, KUBE_VERSION, NAMESPACE, Doc, by_kind, run_helm

REPO = CHART.parents[1]
GITOPS_RELEASE = REPO / "scripts" / "build" / "cluster" / "manifests" / "gitops-release.yaml"
WORKFLOWS = "/apis/argoproj.io/v1alpha1"


def chart_copy(tmp_path: Path, version: str, app_version: str | None = None) -> Path:
    """The chart with another version in Chart.yaml, as Flux (or a release of the chart) packages it."""
    chart = tmp_path / f"chart-{version}" / "fleet-eval"
    shutil.copytree(CHART, chart)
    meta = (chart / "Chart.yaml").read_text()
    meta = re.sub(r"(?m)^version: .*$", f"version: {version}", meta)
    if app_version is not None:
        meta = re.sub(r"(?m)^appVersion: .*$", f'appVersion: "{app_version}"', meta)
    (chart / "Chart.yaml").write_text(meta)
    return chart


def render(helm: Path, chart: Path, values: Sequence[Path] = (), sets: Sequence[str] = (), *extra: str) -> list[Doc]:
    """`helm template` of CHART as release fleet-eval; EXTRA are more helm flags."""
    args = ["template", "fleet-eval", str(chart), "--namespace", NAMESPACE, "--kube-version", KUBE_VERSION, *extra]
    for path in values:
        args += ["-f", str(path)]
    for pair in sets:
        args += ["--set", pair]
    done = run_helm(helm, *args)
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def releases(docs: list[Doc]) -> dict[str, Doc]:
    return {w["metadata"]["name"]: w for w in by_kind(docs, "Workflow")}


SCENARIOS = [CHART / "ci" / "release-values.yaml", CHART / "ci" / "demo-values.yaml"]


@pytest.mark.parametrize("values", SCENARIOS, ids=lambda p: p.name)
def test_a_commit_changes_nothing_the_chart_renders(helm: Path, tmp_path: Path, values: Path) -> None:
    # reconcileStrategy Revision: every commit is the same chart with new build metadata.
    before = render(helm, CHART, [values])
    after = render(helm, chart_copy(tmp_path, "0.1.0+0123456789ab.3"), [values])
    assert after == before
    labels = {d["metadata"].get("labels", {}).get("helm.sh/chart") for d in after} - {None}
    assert labels == {"fleet-eval-0.1.0"}


def test_a_new_chart_version_leaves_release_workflows_alone(helm: Path, tmp_path: Path) -> None:
    values = [CHART / "ci" / "release-values.yaml"]
    before = releases(render(helm, CHART, values))
    after = releases(render(helm, chart_copy(tmp_path, "0.2.0", "0.2.0"), values))
    assert len(before) == 2
    assert after == before
    # Everything else does carry the new version (a real upgrade may restart pods; records stay put).
    config_maps = by_kind(render(helm, chart_copy(tmp_path / "b", "0.2.0", "0.2.0"), values), "ConfigMap")
    assert {c["metadata"]["labels"]["helm.sh/chart"] for c in config_maps} == {"fleet-eval-0.2.0"}


class FakeApi:
    """Just enough of a Kubernetes API server for Helm's `lookup` of Workflows.

    It answers discovery of argoproj.io/v1alpha1 and GET of one Workflow (404 when absent), and records
    the paths asked for.
    """

    def __init__(self) -> None:
        self.workflows: dict[str, Doc] = {}
        self.requests: list[str] = []
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                api.requests.append(self.path)
                path = self.path.split("?")[0]
                prefix = f"{WORKFLOWS}/namespaces/{NAMESPACE}/workflows/"
                if path == WORKFLOWS:
                    self.reply(
                        200,
                        {
                            "kind": "APIResourceList",
                            "apiVersion": "v1",
                            "groupVersion": "argoproj.io/v1alpha1",
                            "resources": [
                                {
                                    "name": "workflows",
                                    "singularName": "workflow",
                                    "namespaced": True,
                                    "kind": "Workflow",
                                    "verbs": ["get", "list"],
                                }
                            ],
                        },
                    )
                elif path.startswith(prefix) and path[len(prefix) :] in api.workflows:
                    self.reply(200, api.workflows[path[len(prefix) :]])
                else:
                    self.reply(
                        404,
                        {
                            "kind": "Status",
                            "apiVersion": "v1",
                            "status": "Failure",
                            "reason": "NotFound",
                            "code": 404,
                            "message": f"{path} not found",
                        },
                    )

            def reply(self, code: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)

    def kubeconfig(self, path: Path) -> Path:
        port = self.server.server_address[1]
        path.write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": [{"name": "fake", "cluster": {"server": f"http://127.0.0.1:{port}"}}],
                    "users": [{"name": "fake", "user": {"token": "fake"}}],
                    "contexts": [
                        {"name": "fake", "context": {"cluster": "fake", "user": "fake", "namespace": NAMESPACE}}
                    ],
                    "current-context": "fake",
                }
            )
        )
        return path


@pytest.fixture
def fake_api() -> Iterator[FakeApi]:
    api = FakeApi()
    thread = threading.Thread(target=api.server.serve_forever, daemon=True)
    thread.start()
    yield api
    api.server.shutdown()
    api.server.server_close()
    thread.join(timeout=5)


def as_argo_left_it(workflow: Doc) -> Doc:
    """The Workflow as the API server holds it after Argo ran it: server fields, Argo's labels, status."""
    live = copy.deepcopy(workflow)
    live["metadata"].update(
        namespace=NAMESPACE,
        uid="5f0c7d8e-0000-4000-8000-000000000001",
        resourceVersion="4242",
        creationTimestamp="2026-11-30T10:00:00Z",
    )
    live["metadata"]["labels"].update(
        {"workflows.argoproj.io/phase": "Succeeded", "workflows.argoproj.io/completed": "true"}
    )
    live["status"] = {"phase": "Succeeded", "startedAt": "2026-11-30T10:00:01Z", "finishedAt": "2026-11-30T10:09:00Z"}
    return live


def test_a_started_release_is_never_patched(helm: Path, tmp_path: Path, fake_api: FakeApi) -> None:
    kubeconfig = fake_api.kubeconfig(tmp_path / "kubeconfig")
    server = ["--dry-run=server", "--kubeconfig", str(kubeconfig)]  # lookup asks the API, as in an upgrade
    first = releases(render(helm, CHART, [], ["releases[0].version=0.9.0"], *server))
    assert len(first) == 1
    name, created = next(iter(first.items()))
    assert any(r.startswith(f"{WORKFLOWS}/namespaces/{NAMESPACE}/workflows/{name}") for r in fake_api.requests)
    fake_api.workflows[name] = as_argo_left_it(created)

    # The next commit edits the entry, adds 0.10.0, and comes with a newer chart.
    edited = [
        "releases[0].version=0.9.0",
        "releases[0].rollout=true",
        "releases[0].policy=tail-risk",
        "releases[1].version=0.10.0",
        "releases[1].rollout=true",
    ]
    newer = chart_copy(tmp_path, "0.2.0+89abcdef0123.7", "0.2.0")
    second = releases(render(helm, newer, [], edited, *server))
    assert second[name] == created  # same manifest as the last release: Helm patches nothing
    (added,) = set(second) - {name}
    params = {p["name"]: p["value"] for p in second[added]["spec"]["arguments"]["parameters"]}
    assert params["version"] == "0.10.0"
    assert params["rollout"] == "true"

    # Without the live object the edit would have reached the spec, which is what the lookup prevents.
    offline = releases(render(helm, newer, [], edited))
    assert offline[name]["spec"] != created["spec"]


def test_removing_an_entry_keeps_its_workflow(helm: Path) -> None:
    both = releases(render(helm, CHART, [], ["releases[0].version=0.9.0", "releases[1].version=0.10.0"]))
    one = releases(render(helm, CHART, [], ["releases[0].version=0.10.0"]))
    (removed,) = set(both) - set(one)
    # Helm deletes what left the manifest unless the object says keep; so does Argo CD unless Prune=false.
    assert both[removed]["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    assert both[removed]["metadata"]["annotations"]["argocd.argoproj.io/sync-options"] == "Prune=false"


def gitops_release(**params: str) -> list[Doc]:
    text = string.Template(GITOPS_RELEASE.read_text()).substitute(params)
    return [d for d in yaml.safe_load_all(text) if d]


PARAMS = {
    "GITOPS_REPO_URL": "http://git.argo.svc.cluster.local/fleet-eval.git",
    "GITOPS_BRANCH": "main",
    "GITOPS_CHART_PATH": "charts/fleet-eval",
    "GITOPS_VALUES_FILE": "values/kind.yaml",
    "GITOPS_INTERVAL": "15s",
}


def test_the_helm_release_builds_every_commit_and_never_replaces() -> None:
    docs = {d["kind"]: d for d in gitops_release(**PARAMS)}
    assert set(docs) == {"GitRepository", "HelmRelease"}
    assert docs["GitRepository"]["spec"]["url"] == PARAMS["GITOPS_REPO_URL"]
    release = docs["HelmRelease"]["spec"]
    chart = release["chart"]["spec"]
    assert chart["reconcileStrategy"] == "Revision"  # else a values-only commit deploys nothing
    assert chart["valuesFiles"] == ["charts/fleet-eval/values.yaml", "values/kind.yaml"]
    assert chart["sourceRef"] == {"kind": "GitRepository", "name": docs["GitRepository"]["metadata"]["name"]}
    assert release["upgrade"]["force"] is False
    # The chart's credentials come from a Secret in the cluster, never from the repository.
    (secret_values,) = release["valuesFrom"]
    assert secret_values == {
        "kind": "Secret",
        "name": "fleet-eval-gitops-values",
        "valuesKey": "values.yaml",
        "optional": True,
    }
    assert release["releaseName"] == "fleet-eval"
    assert docs["HelmRelease"]["metadata"]["namespace"] == NAMESPACE


def schema_errors(value: Any, schema: dict[str, Any], path: str = "") -> list[str]:
    """Unknown fields, wrong enum values and wrong basic types, against a CRD's OpenAPI schema."""
    errors = []
    kind = schema.get("type")
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{path}: {value!r} not in {schema['enum']}")
    if kind == "object" and isinstance(value, dict):
        props = schema.get("properties")
        for key, sub in value.items():
            if props is not None and key in props:
                errors += schema_errors(sub, props[key], f"{path}.{key}")
            elif props is not None and "additionalProperties" not in schema:
                errors.append(f"{path}.{key}: unknown field")
    elif kind == "array" and isinstance(value, list):
        errors += [
            e for i, item in enumerate(value) for e in schema_errors(item, schema.get("items", {}), f"{path}[{i}]")
        ]
    elif kind in {"string", "boolean", "integer"}:
        expected = {"string": str, "boolean": bool, "integer": int}[kind]
        if not isinstance(value, expected) and not schema.get("x-kubernetes-int-or-string"):
            errors.append(f"{path}: {value!r} is not a {kind}")
    return errors


def built_crd(component: str, version_var: str, filename: str) -> Doc:
    versions = (REPO / "scripts" / "build" / "versions.sh").read_text()
    version = re.search(rf"{version_var}:=(v[0-9.]+)", versions)
    assert version, version_var
    crd = BIN_CACHE / f"{component}-{version.group(1)}" / "config" / "crd" / "bases" / filename
    if not crd.exists():
        pytest.skip(f"{crd} not built: scripts/build/components.sh flux")
    loaded: Doc = yaml.safe_load(crd.read_text())
    return loaded


@pytest.mark.parametrize(
    ("kind", "component", "version_var", "filename"),
    [
        (
            "GitRepository",
            "source-controller",
            "FLUX_SOURCE_CONTROLLER_VERSION",
            "source.toolkit.fluxcd.io_gitrepositories.yaml",
        ),
        ("HelmRelease", "helm-controller", "FLUX_HELM_CONTROLLER_VERSION", "helm.toolkit.fluxcd.io_helmreleases.yaml"),
    ],
)
def test_the_gitops_manifests_match_the_built_crds(kind: str, component: str, version_var: str, filename: str) -> None:
    crd = built_crd(component, version_var, filename)
    doc = next(d for d in gitops_release(**PARAMS) if d["kind"] == kind)
    group, version = doc["apiVersion"].split("/")
    assert crd["spec"]["group"] == group
    served = {v["name"]: v for v in crd["spec"]["versions"] if v["served"]}
    assert version in served
    assert schema_errors(doc["spec"], served[version]["schema"]["openAPIV3Schema"]["properties"]["spec"], "spec") == []
