"""helm lint and helm template per ci/*-values.yaml: what the chart must render, and must not."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from eval_runner.contracts import N_SHARDS
from tests.chart.conftest import CHART, KUBE_VERSION, Doc, Template, by_kind, pod_specs, run_helm
from workflows import render
from workflows.common import POD_ROLE_LABEL

SCENARIOS = sorted((CHART / "ci").glob("*-values.yaml"))
CREDENTIAL = re.compile(r"(?i)secret|password|token|dsn|access[-_]?key|credential")


def test_there_are_scenarios() -> None:
    assert {p.name for p in SCENARIOS} >= {"default-values.yaml", "demo-values.yaml", "release-values.yaml"}


@pytest.mark.parametrize("values", SCENARIOS, ids=lambda p: p.name)
def test_helm_lint_strict(helm: Path, values: Path) -> None:
    done = run_helm(helm, "lint", "--strict", str(CHART), "-f", str(values), "--kube-version", KUBE_VERSION)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("values", SCENARIOS, ids=lambda p: p.name)
def test_pods_are_non_root_with_read_only_root(template: Template, values: Path) -> None:
    for name, spec in pod_specs(template([values])):
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert spec["automountServiceAccountToken"] is False, name
        for container in spec["containers"]:
            security = container["securityContext"]
            assert security["readOnlyRootFilesystem"] is True, name
            assert security["allowPrivilegeEscalation"] is False, name
            assert security["capabilities"]["drop"] == ["ALL"], name


@pytest.mark.parametrize("values", SCENARIOS, ids=lambda p: p.name)
def test_credentials_are_secret_references_only(template: Template, values: Path) -> None:
    docs = template([values])
    for name, spec in pod_specs(docs):
        for container in spec["containers"]:
            for env in container.get("env", []):
                if CREDENTIAL.search(env["name"]):
                    assert "secretKeyRef" in env.get("valueFrom", {}), f"{name}: {env['name']}"
    config = next(d for d in by_kind(docs, "ConfigMap") if d["metadata"]["name"] == "fleet-eval-config")
    assert not [k for k in config["data"] if CREDENTIAL.search(k)]
    for workflow in by_kind(docs, "Workflow"):
        params = workflow["spec"]["arguments"]["parameters"]
        assert not [p for p in params if CREDENTIAL.search(p["name"]) or CREDENTIAL.search(str(p["value"]))]


def test_no_secrets_unless_asked(template: Template) -> None:
    assert by_kind(template(), "Secret") == []
    demo = template([CHART / "ci" / "demo-values.yaml"])
    assert {s["metadata"]["name"] for s in by_kind(demo, "Secret")} >= {
        "fleet-eval-s3",
        "fleet-eval-postgres",
        "fleet-eval-shards",
    }


def test_workflow_templates_are_included_verbatim(template: Template) -> None:
    # Argo's {{ }} must survive Helm: the chart's documents equal the rendered files, parsed.
    docs = template()
    rendered = {
        (d["kind"], d["metadata"]["name"]): d for d in by_kind(docs, "WorkflowTemplate") + by_kind(docs, "CronWorkflow")
    }
    expected = {}
    for name, text in render.render().items():
        if name.startswith("workflows/"):
            doc = yaml.safe_load(text)
            expected[(doc["kind"], doc["metadata"]["name"])] = doc
    assert rendered == expected
    assert "{{inputs.parameters.month}}" in yaml.safe_dump(rendered[("WorkflowTemplate", "dataset-build")])


def test_cron_can_be_left_out(template: Template) -> None:
    assert by_kind(template(sets=["workflows.cron=false"]), "CronWorkflow") == []


def test_workflow_role_is_least_privilege(template: Template) -> None:
    roles = by_kind(template(), "Role")
    assert len(roles) == 1
    rules = roles[0]["rules"]
    granted = {
        (group, res, verb) for r in rules for group in r["apiGroups"] for res in r["resources"] for verb in r["verbs"]
    }
    assert granted == {
        ("argoproj.io", "workflowtaskresults", "create"),
        ("argoproj.io", "workflowtaskresults", "patch"),
        ("argoproj.io", "workflowartifactgctasks", "list"),
        ("argoproj.io", "workflowartifactgctasks", "watch"),
        ("argoproj.io", "workflowartifactgctasks/status", "patch"),
    }
    assert by_kind(template(), "ClusterRole") == []
    binding = by_kind(template(), "RoleBinding")[0]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "fleet-eval-workflow", "namespace": "argo"}]


def test_review_ui_has_no_api_access(template: Template) -> None:
    docs = template()
    review_sa = next(s for s in by_kind(docs, "ServiceAccount") if s["metadata"]["name"].endswith("-review"))
    assert review_sa["automountServiceAccountToken"] is False
    subjects = [s["name"] for b in by_kind(docs, "RoleBinding") for s in b["subjects"]]
    assert review_sa["metadata"]["name"] not in subjects


def test_artifact_repository_uses_secret_references(template: Template) -> None:
    config = next(
        d for d in by_kind(template(), "ConfigMap") if d["metadata"]["name"] == "fleet-eval-artifact-repositories"
    )
    repository = yaml.safe_load(config["data"]["default"])
    assert repository["s3"]["accessKeySecret"] == {"name": "fleet-eval-s3", "key": "access-key"}
    assert repository["s3"]["bucket"] == "argo-artifacts"
    assert set(repository["s3"]) == {"bucket", "endpoint", "region", "insecure", "accessKeySecret", "secretKeySecret"}


def test_policies_ship_as_a_config_map(template: Template) -> None:
    config = next(d for d in by_kind(template(), "ConfigMap") if d["metadata"]["name"] == "fleet-eval-policies")
    assert yaml.safe_load(config["data"]["default.yaml"])["primary"]["min_improvement"] == 0.05


def test_demo_sources_only_when_enabled(template: Template) -> None:
    assert by_kind(template(), "StatefulSet") == []
    demo = template([CHART / "ci" / "demo-values.yaml"])
    config = next(d for d in by_kind(demo, "ConfigMap") if d["metadata"]["name"] == "fleet-eval-config")
    urls = config["data"]["FLEET_EVAL_SHARDS_URLS"].split(",")
    assert len(urls) == N_SHARDS
    assert urls[0] == "http://fe-fleet-eval-demo-shards.argo.svc:8100"
    assert {s["metadata"]["name"] for s in by_kind(demo, "Service")} >= {
        "fe-fleet-eval-demo-postgres",
        "fe-fleet-eval-demo-shards",
    }


def test_network_policies_guard_mlflow_index_and_s3(template: Template) -> None:
    docs = template([CHART / "ci" / "demo-values.yaml"])
    policies = {p["metadata"]["name"]: p for p in by_kind(docs, "NetworkPolicy")}
    assert {"fe-fleet-eval-mlflow", "fe-fleet-eval-package-index", "fe-fleet-eval-s3"} <= set(policies)
    mlflow_from = policies["fe-fleet-eval-mlflow"]["spec"]["ingress"][0]["from"]
    assert mlflow_from[0]["podSelector"]["matchExpressions"][0]["key"] == "workflows.argoproj.io/workflow"
    # The same label the rendered templates put on their pods.
    assert mlflow_from[0]["podSelector"]["matchLabels"] == {POD_ROLE_LABEL: "workflow"}
    for name, text in render.render().items():
        if name.startswith("workflows/") and "WorkflowTemplate" in text:
            assert yaml.safe_load(text)["spec"]["podMetadata"]["labels"] == {POD_ROLE_LABEL: "workflow"}
    assert policies["fe-fleet-eval-s3"]["metadata"]["namespace"] == "fleet-infra"


def test_external_services_feed_the_config(template: Template) -> None:
    docs = template([CHART / "ci" / "external-values.yaml"])
    config = next(d for d in by_kind(docs, "ConfigMap") if d["metadata"]["name"] == "fleet-eval-config")["data"]
    assert config["FLEET_EVAL_MLFLOW_TRACKING_URI"] == "https://mlflow.example.com"
    assert config["FLEET_EVAL_INDEX_URL"] == "https://pypi.example.com/simple/"
    assert config["FLEET_EVAL_S3_SECURE"] == "true"
    assert not [d for d in docs if d["kind"] == "Deployment" and "mlflow" in d["metadata"]["name"]]


def test_every_value_is_documented() -> None:
    # A key is documented by a `# --` comment right above it or above one of its parents.
    documented: list[tuple[int, bool]] = []  # (indent, documented) of the open ancestors
    comment_block: list[str] = []
    undocumented = []
    for line in (CHART / "values.yaml").read_text().splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            comment_block.append(stripped)
            continue
        key = re.match(r"^(\s*)([A-Za-z][\w-]*):", line)
        if key:
            indent = len(key.group(1))
            while documented and documented[-1][0] >= indent:
                documented.pop()
            own = any(c.startswith("# --") for c in comment_block)
            inherited = any(flag for _, flag in documented)
            if not (own or inherited) and not line.rstrip().endswith(":"):
                undocumented.append(key.group(2))
            documented.append((indent, own or inherited))
        if stripped:
            comment_block = []
    assert not undocumented, f"values without a `# --` comment: {undocumented}"


def _docs(template: Template, releases: list[str]) -> list[Doc]:
    sets = [f"releases[{i}].version={v}" for i, v in enumerate(releases)]
    return [d for d in template(sets=sets) if d["kind"] == "Workflow"]


def test_release_workflow_names_derive_from_the_version(template: Template) -> None:
    docs = template([CHART / "ci" / "release-values.yaml"])
    workflows = {w["metadata"]["name"]: w for w in by_kind(docs, "Workflow")}
    assert len(workflows) == 2
    for name, workflow in workflows.items():
        assert re.fullmatch(r"release-battery-lib-[a-z0-9-]+-[0-9a-f]{8}", name)
        assert len(name) <= 63
        assert workflow["spec"]["workflowTemplateRef"] == {"name": "release"}
        assert "generateName" not in workflow["metadata"]
        # Outlives the template's TTL: a deleted release would be recreated, and so re-run, by Helm.
        assert workflow["spec"]["ttlStrategy"]["secondsAfterCompletion"] >= 10 * 365 * 24 * 3600
    second = next(w for w in workflows.values() if w["metadata"]["annotations"]["fleet-eval/version"] == "v1.0.0")
    params = {p["name"]: p["value"] for p in second["spec"]["arguments"]["parameters"]}
    assert params == {
        "library": "battery-lib",
        "version": "v1.0.0",
        "months": '["2026-03","2026-04"]',
        "latest-months": "3",
        "policy": "tail-risk",
        "rollout": "true",
        "mode": "fleet-q10-distributions",
        "shards": "12",
    }


def test_same_values_create_nothing_new_and_a_new_version_one_run(template: Template) -> None:
    first = {w["metadata"]["name"]: w for w in _docs(template, ["0.9.0"])}
    again = {w["metadata"]["name"]: w for w in _docs(template, ["0.9.0"])}
    assert again == first  # same object, same spec: applying it again changes nothing
    # An unrelated change elsewhere in the values leaves the release Workflow untouched too.
    other = {
        w["metadata"]["name"]: w
        for w in template(sets=["releases[0].version=0.9.0", "mlflow.port=5001"])
        if w["kind"] == "Workflow"
    }
    assert other == first
    upgraded = {w["metadata"]["name"]: w for w in _docs(template, ["0.9.0", "0.10.0"])}
    assert set(first) < set(upgraded)
    assert upgraded[next(iter(first))] == first[next(iter(first))]
    assert len(set(upgraded) - set(first)) == 1


def test_a_run_label_makes_the_same_version_a_new_release(template: Template) -> None:
    # Without a run label the name is the one releases listed before run labels existed have.
    (plain,) = _docs(template, ["0.9.0"])
    assert plain["metadata"]["name"] == "release-battery-lib-0-9-0-022e0c5c"
    assert "fleet-eval/run" not in plain["metadata"]["annotations"]
    sets = ["releases[0].version=0.9.0", "releases[0].run=e2e-1", "releases[1].version=0.9.0", "releases[1].run=e2e-2"]
    runs = {w["metadata"]["name"]: w for w in template(sets=sets) if w["kind"] == "Workflow"}
    assert len(runs) == 2 and plain["metadata"]["name"] not in runs
    for name, workflow in runs.items():
        assert re.fullmatch(r"release-battery-lib-0-9-0-e2e-[12]-[0-9a-f]{8}", name)
        assert workflow["metadata"]["annotations"]["fleet-eval/run"] in {"e2e-1", "e2e-2"}
        assert workflow["spec"]["arguments"] == plain["spec"]["arguments"]  # the same release, run again


def test_versions_that_sanitise_alike_get_different_names(template: Template) -> None:
    names = {w["metadata"]["name"] for w in _docs(template, ["0.9.0+a", "0.9.0.post1", "git:main", "latest"])}
    assert len(names) == 4


def test_mlflow_accepts_exactly_its_service_names_as_host(template: Template) -> None:
    from mlflow.server.security_utils import is_allowed_host_header  # the server's own matching

    def allowed_hosts(*sets: str) -> list[str]:
        deployment = next(
            d for d in by_kind(template(sets=sets), "Deployment") if d["metadata"]["name"] == "fe-fleet-eval-mlflow"
        )
        args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
        return str(next(a for a in args if a.startswith("--allowed-hosts="))).split("=", 1)[1].split(",")

    allowed = allowed_hosts()
    assert not any("*" in host for host in allowed), allowed
    for host in (
        "fe-fleet-eval-mlflow.argo.svc:5000",  # what FLEET_EVAL_MLFLOW_TRACKING_URI makes clients send
        "fe-fleet-eval-mlflow:5000",
        "fe-fleet-eval-mlflow.argo.svc.cluster.local:5000",
        "localhost:5000",  # kubectl port-forward svc/... 5000 (NOTES.txt)
    ):
        assert is_allowed_host_header(allowed, host), host
    for host in ("fe-fleet-eval-mlflow.argo.svc.attacker.example:5000", "localhost.attacker.example", "evil:5000"):
        assert not is_allowed_host_header(allowed, host), host
    assert is_allowed_host_header(allowed_hosts("mlflow.allowedHosts={mlflow.example.com}"), "mlflow.example.com")


def _images(docs: list[Doc]) -> dict[str, set[str]]:
    return {name: {container["image"] for container in spec["containers"]} for name, spec in pod_specs(docs)}


def test_an_image_digest_pins_the_pods_to_that_content(template: Template) -> None:
    digest = "sha256:" + "ab" * 32
    demo = [CHART / "ci" / "demo-values.yaml"]
    pinned = _images(template(demo, [f"images.core.digest={digest}", f"demo.image.digest={digest}"]))
    assert pinned["fe-fleet-eval-review"] == {f"localhost:5001/fleet-eval/runner:core-runner-0.1.0@{digest}"}
    assert pinned["fe-fleet-eval-demo-shards"] == {f"localhost:5001/fleet-eval/fieldsim:0.1.0@{digest}"}
    assert _images(template(demo))["fe-fleet-eval-review"] == {"localhost:5001/fleet-eval/runner:core-runner-0.1.0"}
