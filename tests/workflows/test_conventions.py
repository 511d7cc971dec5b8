"""What every rendered template must get right: retries, security, Secret-only credentials, artifacts."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from workflows import common, fleet_rollout, images

Doc = dict[str, Any]
CREDENTIAL = re.compile(r"(?i)secret|password|token|dsn|access[-_]?key|credential")


def _templates(documents: dict[str, Doc]) -> Iterator[tuple[str, Doc]]:
    for name, doc in documents.items():
        spec = doc["spec"].get("workflowSpec", doc["spec"])
        for template in spec.get("templates", []):
            yield f"{name}:{template['name']}", template


def _spec(documents: dict[str, Doc], name: str) -> Doc:
    spec: Doc = documents[f"workflows/{name}.yaml"]["spec"]
    return spec


def _template(documents: dict[str, Doc], file: str, name: str) -> Doc:
    return next(t for t in _spec(documents, file)["templates"] if t["name"] == name)


def test_templates_share_gc_ttl_identity_and_artifact_repository(documents: dict[str, Doc]) -> None:
    for name, doc in documents.items():
        if doc["kind"] != "WorkflowTemplate":
            continue
        spec = doc["spec"]
        assert spec["serviceAccountName"] == common.SERVICE_ACCOUNT, name
        assert spec["podGC"]["strategy"] == "OnPodSuccess", name
        assert spec["ttlStrategy"]["secondsAfterSuccess"] > 0, name
        assert spec["artifactGC"]["strategy"] == "OnWorkflowDeletion", name
        assert spec["artifactRepositoryRef"]["configMap"] == "fleet-eval-artifact-repositories", name
        assert spec["securityContext"]["runAsNonRoot"] is True, name


def test_containers_are_non_root_with_read_only_root(documents: dict[str, Doc]) -> None:
    containers = [(n, t["container"]) for n, t in _templates(documents) if "container" in t]
    assert containers
    for name, container in containers:
        security = container["securityContext"]
        assert security["runAsNonRoot"] is True, name
        assert security["readOnlyRootFilesystem"] is True, name
        assert security["allowPrivilegeEscalation"] is False, name
        assert security["capabilities"]["drop"] == ["ALL"], name
        # emissary cannot read entrypoints from the cluster registry: the command is always explicit.
        assert container["command"], name


def test_credentials_reach_pods_only_as_secret_references(documents: dict[str, Doc]) -> None:
    for name, template in _templates(documents):
        for env in template.get("container", {}).get("env", []):
            if CREDENTIAL.search(env["name"]):
                assert "value" not in env, f"{name}: {env['name']} has a literal value"
                assert "secretKeyRef" in env["valueFrom"], f"{name}: {env['name']} is not a Secret reference"


def test_no_parameter_carries_a_credential(documents: dict[str, Doc]) -> None:
    for name, doc in documents.items():
        spec = doc["spec"].get("workflowSpec", doc["spec"])
        params = [p["name"] for p in spec.get("arguments", {}).get("parameters", [])]
        for _, template in _templates({name: doc}):
            params += [p["name"] for p in template.get("inputs", {}).get("parameters", [])]
        assert not [p for p in params if CREDENTIAL.search(p)], name


def test_runner_steps_retry_only_transient_exit_codes(documents: dict[str, Doc]) -> None:
    runner_steps = [
        (n, t)
        for n, t in _templates(documents)
        if "container" in t and t["container"]["command"][:2] == ["python", "-c"]
    ]
    assert len(runner_steps) >= 10
    for name, template in runner_steps:
        if name.endswith(":pick-month"):
            continue
        retry = template["retryStrategy"]
        assert "asInt(lastRetry.exitCode) == 75" in retry["expression"], name
        assert "asInt(lastRetry.exitCode) == 143" in retry["expression"], name  # a deleted or evicted pod
        assert "== 2" not in retry["expression"] and "== 3 " not in retry["expression"], name
        assert retry["backoff"]["duration"], name


def test_s3_artifacts_are_key_only(documents: dict[str, Doc]) -> None:
    artifacts = [
        a
        for _, t in _templates(documents)
        for side in ("inputs", "outputs")
        for a in t.get(side, {}).get("artifacts", [])
    ]
    assert artifacts
    for artifact in artifacts:
        # An input filled by the caller (another step's output) names no storage; everything else is a key
        # in the artifact repository, never an endpoint or a credential.
        assert "s3" not in artifact or set(artifact["s3"]) == {"key"}, artifact["name"]


def test_plots_are_uncompressed(documents: dict[str, Doc]) -> None:
    plots = [
        a for _, t in _templates(documents) for a in t.get("outputs", {}).get("artifacts", []) if a["name"] == "plots"
    ]
    assert plots
    assert all(a["archive"] == {"none": {}} for a in plots)


def test_output_names_are_unique_per_template(documents: dict[str, Doc]) -> None:
    # argo lint --offline accepts a duplicate; argo-server refuses the submission (HTTP 400).
    for name, template in _templates(documents):
        outputs = template.get("outputs", {})
        for kind in ("parameters", "artifacts"):
            names = [o["name"] for o in outputs.get(kind, [])]
            assert len(names) == len(set(names)), f"{name}: {kind} named twice: {names}"


def test_every_runner_step_exposes_its_summary(documents: dict[str, Doc]) -> None:
    for name, template in _templates(documents):
        if template.get("container", {}).get("command", [""])[0] != "python" or name.endswith(":pick-month"):
            continue
        outputs = {p["name"] for p in template["outputs"]["parameters"]}
        assert {"summary", "duration_seconds"} <= outputs, name


def test_fleet_rollout_fans_out_over_shard_ids_with_a_limit(documents: dict[str, Doc]) -> None:
    entry = _template(documents, "fleet-rollout", fleet_rollout.ENTRY)
    assert entry["parallelism"] == fleet_rollout.PARALLELISM
    shard = next(t for t in entry["dag"]["tasks"] if t["name"] == "shard")
    assert shard["withParam"] == "{{tasks.prepare.outputs.result}}"
    merge = next(t for t in entry["dag"]["tasks"] if t["name"] == "merge")
    assert merge["depends"] == "shard"
    canary = next(t for t in entry["dag"]["tasks"] if t["name"] == "canary")
    assert canary["depends"] == "pin"  # shards never start before their image exists and is pinned
    pin = next(t for t in entry["dag"]["tasks"] if t["name"] == "pin")
    assert pin["depends"] == "build-image"
    assert "tasks.pin.outputs.parameters.image" in shard["arguments"]["parameters"][1]["value"]


def test_shards_export_metrics_and_workflow_exports_duration(documents: dict[str, Doc]) -> None:
    shard = _template(documents, "fleet-rollout", "fleet-shard")
    names = {metric["name"] for metric in shard["metrics"]["prometheus"]}
    assert names == {"fleet_shard_result_total", "fleet_shard_duration_seconds"}
    for metric in shard["metrics"]["prometheus"]:
        assert re.fullmatch(r"[a-z_]+", metric["name"])
        assert all("device" not in label["key"] for label in metric["labels"])
    workflow_metrics = _spec(documents, "fleet-rollout")["metrics"]["prometheus"]
    assert any(metric["gauge"].get("realtime") for metric in workflow_metrics if "gauge" in metric)


def test_evaluate_builds_only_missing_images(documents: dict[str, Doc]) -> None:
    tasks = {t["name"]: t for t in _template(documents, "evaluate", "evaluate")["dag"]["tasks"]}
    assert tasks["build-image"]["withParam"] == "{{tasks.resolve.outputs.parameters.missing}}"
    assert tasks["pin"]["depends"] == "build-image"
    assert tasks["month"]["arguments"]["parameters"][1]["value"] == "{{tasks.pin.outputs.parameters.evaluations}}"
    assert _spec(documents, "evaluate")["parallelism"] > 0
    assert tasks["month"]["withParam"] == "{{inputs.parameters.months}}"
    per_month = {t["name"]: t for t in _template(documents, "evaluate", "evaluate-month")["dag"]["tasks"]}
    assert per_month["evaluate"]["withParam"] == "{{inputs.parameters.evaluations}}"
    evaluate_version = _template(documents, "evaluate", "evaluate-version")
    assert evaluate_version["container"]["image"] == "{{inputs.parameters.image}}"
    build = _template(documents, "evaluate", "build-runner-image")
    assert build["container"]["image"] == images.BUILDKIT_IMAGE
    # One BuildKit build at a time across the cluster (concurrent builds shared a local-context cache).
    assert build["synchronization"]["mutexes"] == [{"name": "runner-image-build"}]


def test_dataset_build_suspends_for_review_before_validating(documents: dict[str, Doc]) -> None:
    tasks = {t["name"]: t for t in _template(documents, "dataset-build", "dataset-build")["dag"]["tasks"]}
    assert tasks["await-review"]["depends"] == "build"
    assert tasks["validate-review"]["depends"] == "await-review"
    assert "suspend" in _template(documents, "dataset-build", "await-review")
    cron = documents["workflows/dataset-build-monthly.yaml"]
    assert cron["kind"] == "CronWorkflow"
    assert cron["spec"]["workflowSpec"]["workflowTemplateRef"]["name"] == "dataset-build"
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"


def test_release_rolls_out_only_after_a_passing_gate(documents: dict[str, Doc]) -> None:
    tasks = {t["name"]: t for t in _template(documents, "release", "release")["dag"]["tasks"]}
    assert tasks["evaluate"]["templateRef"] == {"name": "evaluate", "template": "evaluate"}
    assert tasks["rollout"]["templateRef"] == {"name": "fleet-rollout", "template": "fleet-rollout"}
    assert "{{tasks.evaluate.outputs.parameters.passed}} == true" in tasks["rollout"]["when"]
    assert "{{inputs.parameters.rollout}} == true" in tasks["rollout"]["when"]
    # fleet-rollout takes one label: the exact pin the gate judged (not `latest` again), which the
    # evaluate template exposes from its pin step.
    rollout = {p["name"]: p["value"] for p in tasks["rollout"]["arguments"]["parameters"]}
    assert rollout["version"] == "{{tasks.evaluate.outputs.parameters.candidate-label}}"
    outputs = {p["name"]: p["valueFrom"] for p in _template(documents, "evaluate", "evaluate")["outputs"]["parameters"]}
    assert outputs["candidate-label"] == {"parameter": "{{tasks.pin.outputs.parameters.exact_label}}"}
    # The rollout is bound to the decision its own gate wrote, never overridden.
    assert rollout["release-id"] == "{{workflow.name}}"
    assert rollout["gate-override-reason"] == ""


def test_fleet_rollout_passes_the_gate_binding_to_prepare(documents: dict[str, Doc]) -> None:
    arguments = {p["name"]: p["value"] for p in _spec(documents, "fleet-rollout")["arguments"]["parameters"]}
    assert arguments["release-id"] == "" and arguments["gate-override-reason"] == ""
    tasks = {t["name"]: t for t in _template(documents, "fleet-rollout", fleet_rollout.ENTRY)["dag"]["tasks"]}
    prepare = {p["name"]: p["value"] for p in tasks["prepare"]["arguments"]["parameters"]}
    assert prepare["release-id"] == "{{inputs.parameters.release-id}}"
    assert prepare["gate-override-reason"] == "{{inputs.parameters.gate-override-reason}}"
    args = _template(documents, "fleet-rollout", "fleet-prepare")["container"]["args"]
    assert "--release-id={{inputs.parameters.release-id}}" in args
    assert "--gate-override-reason={{inputs.parameters.gate-override-reason}}" in args


def test_each_release_workflow_has_its_own_decision(documents: dict[str, Doc]) -> None:
    tasks = {t["name"]: t for t in _template(documents, "release", "release")["dag"]["tasks"]}
    evaluate = {p["name"]: p["value"] for p in tasks["evaluate"]["arguments"]["parameters"]}
    assert evaluate["release-id"] == "{{workflow.name}}"
    gate = _template(documents, "evaluate", "gate")["container"]["args"]
    assert "--release-id={{inputs.parameters.release-id}}" in gate


@pytest.mark.parametrize("file", ["evaluate", "fleet-rollout", "release"])
def test_template_refs_pass_every_input(documents: dict[str, Doc], file: str) -> None:
    # A templateRef'd entry template gets only what the caller passes: each input must be supplied.
    release_tasks = {t["name"]: t for t in _template(documents, "release", "release")["dag"]["tasks"]}
    for task in release_tasks.values():
        ref = task.get("templateRef")
        if not ref or ref["name"] != file:
            continue
        target = _template(documents, ref["name"], ref["template"])
        wanted = {p["name"] for p in target["inputs"]["parameters"] if "default" not in p}
        given = {p["name"] for p in task["arguments"]["parameters"]}
        assert wanted <= given, f"{task['name']} misses {wanted - given}"


_STRING_COMPARISON = re.compile(r"(\S+)\s*==\s*(\S+)")


def test_when_conditions_quote_string_parameters(documents: dict[str, Doc]) -> None:
    # Argo's expression parser reads an unquoted value such as fleet-q10-distributions as a subtraction
    # and errors before any pod runs; every comparison with a word that is not true/false must be quoted.
    for file, template in _templates(documents):
        for task in template.get("dag", {}).get("tasks", []):
            for left, right in _STRING_COMPARISON.findall(task.get("when", "")):
                if right.strip("'") in {"true", "false"} and not right.startswith("'"):
                    continue
                assert left.startswith("'") and right.startswith("'"), (file, task["name"], task["when"])


def test_the_canary_runs_only_for_configuration_apply(documents: dict[str, Doc]) -> None:
    tasks = {t["name"]: t for t in _template(documents, "fleet-rollout", "fleet-rollout")["dag"]["tasks"]}
    assert tasks["canary"]["when"] == (
        "'{{inputs.parameters.mode}}' == 'configuration' && '{{inputs.parameters.apply}}' == 'true'"
    )


def test_release_evaluates_the_candidate_beside_the_champion(documents: dict[str, Doc]) -> None:
    # Evaluating the candidate alone left the per-month comparison with one version (found on kind).
    tasks = {t["name"]: t for t in _template(documents, "release", "release")["dag"]["tasks"]}
    assert tasks["evaluate"]["depends"] == "pick-months && labels"
    labels_of = {p["name"]: p["value"] for p in tasks["evaluate"]["arguments"]["parameters"]}
    assert labels_of["labels"] == "{{tasks.labels.outputs.result}}"
    labels = _template(documents, "release", "release-labels")["container"]["args"]
    assert labels == ["evaluations", "labels", "--candidate", "{{inputs.parameters.version}}", "--baseline", "champion"]


def test_runner_steps_always_ask_the_registry_for_their_image(documents: dict[str, Doc]) -> None:
    # Runner tags are rebuilt in place while eval_runner's version is unchanged (found on kind: a node
    # kept an older core image and ran a command it did not have yet).
    runner_steps = [
        (name, t)
        for name, t in _templates(documents)
        if "container" in t and "fleet-eval/runner" in t["container"]["image"]
    ]
    assert runner_steps
    for name, template in runner_steps:
        assert template["container"]["imagePullPolicy"] == "Always", name


def test_one_build_per_month_and_one_holder_per_run_step(documents: dict[str, Doc]) -> None:
    build = _template(documents, "dataset-build", "build-dataset")
    assert build["synchronization"]["mutexes"] == [{"name": "dataset-build-{{inputs.parameters.month}}"}]
    locks = {
        name: _template(documents, "fleet-rollout", name)["synchronization"]["mutexes"][0]["name"]
        for name in ("fleet-prepare", "fleet-canary", "fleet-shard", "fleet-merge")
    }
    assert locks == {
        "fleet-prepare": "fleet-run-{{inputs.parameters.run-id}}-prepare",
        "fleet-canary": "fleet-run-{{inputs.parameters.run-id}}-canary",
        "fleet-shard": "fleet-run-{{inputs.parameters.run-id}}-{{inputs.parameters.shard}}",
        "fleet-merge": "fleet-run-{{inputs.parameters.run-id}}-merge",
    }


def test_fleet_rollback_is_one_retried_step_per_run_holding_only_the_shard_credentials(
    documents: dict[str, Doc],
) -> None:
    step = _template(documents, "fleet-rollback", "fleet-rollback-step")
    args = step["container"]["args"]
    assert args[:4] == ["fleet", "rollback", "--run-id", "{{inputs.parameters.run-id}}"]
    # Dry run unless apply=true: the flag is the only thing the expression can switch.
    assert args[-1].startswith("{{=inputs.parameters.apply == 'true' ? '--apply' : ")
    assert step["synchronization"]["mutexes"] == [{"name": "fleet-rollback-{{inputs.parameters.run-id}}"}]
    assert step["retryStrategy"]["expression"]
    secrets = {e["valueFrom"]["secretKeyRef"]["name"] for e in step["container"]["env"] if "valueFrom" in e}
    assert not any("postgres" in s or "mlflow" in s for s in secrets), secrets
    arguments = {p["name"]: p["value"] for p in _spec(documents, "fleet-rollback")["arguments"]["parameters"]}
    assert arguments["apply"] == "false"
