"""The chart's values: one typed model, the values.schema.json generated from it, and the shard count.

Every values file the chart is installed with (ci/ scenarios, the demo's install, the GitOps values on
top) must pass; a typo'd key or a wrong type must fail `helm template` naming it. The model's Python
validation and Helm's schema check are fed the same bad values, so the two cannot drift apart.

Set FLEET_EVAL_REGENERATE=1 to rewrite the generated files instead of failing (as tests/workflows does).
"""

from __future__ import annotations

import copy
import inspect
import itertools
import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from fieldsim.shards import ShardState, shard_states
from pydantic import ValidationError

from eval_runner.contracts import N_SHARDS
from scripts.demo import cluster
from tests.chart.conftest import CHART, KUBE_VERSION, NAMESPACE, Template, by_kind, run_helm
from workflows import chart_render
from workflows.chart_values import ChartValues, values_schema

SCENARIOS = sorted((CHART / "ci").glob("*-values.yaml"))
DEMO_CREDENTIALS = cluster.Credentials(argo_token="t", s3_access_key="demo-access", s3_secret_key="demo-secret-key")


def defaults() -> dict[str, Any]:
    return dict(yaml.safe_load((CHART / "values.yaml").read_text()))


def coalesce(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Helm's merge of a values file over the defaults: maps merge key by key, anything else replaces, null deletes."""
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = coalesce(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def set_value(values: dict[str, Any], pair: str, *, string: bool = False) -> dict[str, Any]:
    """``values`` with one `helm --set` pair applied (`--set-string` with ``string``).

    Dotted keys and [i] list indices; bools and ints typed as Helm types them, unless ``string``.
    """
    path, raw = pair.split("=", 1)
    value: Any = raw
    if not string:
        value = {"true": True, "false": False}.get(raw, int(raw) if re.fullmatch(r"-?[0-9]+", raw) else raw)
    keys: list[str | int] = [int(i) if i else k for k, i in re.findall(r"([^.\[\]]+)|\[([0-9]+)\]", path)]
    out = copy.deepcopy(values)
    node: Any = out
    for key, after in itertools.pairwise(keys):
        if isinstance(key, int):
            while len(node) <= key:
                node.append({} if isinstance(after, str) else [])
            node = node[key]
        else:
            node = node.setdefault(key, [] if isinstance(after, int) else {})
    last = keys[-1]
    if isinstance(last, int):
        while len(node) <= last:
            node.append(None)
    node[last] = value
    return out


# ---- the generated files ------------------------------------------------------------------------


def test_committed_generated_files_are_current() -> None:
    if os.environ.get("FLEET_EVAL_REGENERATE") == "1":
        chart_render.write()
    outdated = chart_render.stale()
    assert not outdated, f"stale generated chart files {outdated}: run `make render`"


def test_stale_detects_an_edit_and_a_missing_file(tmp_path: Path) -> None:
    chart_render.write(tmp_path)
    assert chart_render.stale(tmp_path) == []
    (tmp_path / chart_render.SCHEMA).write_text("{}\n")
    (tmp_path / chart_render.CONTRACTS).unlink()
    assert chart_render.stale(tmp_path) == [chart_render.CONTRACTS, chart_render.SCHEMA]


def test_the_schema_is_strict_where_typos_hide() -> None:
    # Every mapping of the chart's own keys rejects unknown ones; only pass-through Kubernetes objects are open.
    schema = values_schema()
    closed: list[str] = []
    open_: list[str] = []

    def walk(node: dict[str, Any], path: str) -> None:
        if "properties" in node:
            (closed if node.get("additionalProperties") is False else open_).append(path or "/")
            for key, sub in node["properties"].items():
                walk(sub, f"{path}/{key}")
        if isinstance(node.get("items"), dict):
            walk(node["items"], f"{path}/0")

    walk(schema, "")
    assert sorted(open_) == ["/containerSecurityContext", "/podSecurityContext"]
    assert {"/", "/mlflow", "/mlflow/persistence", "/demo/gitServer", "/releases/0"} <= set(closed)


# ---- values.yaml and every values file used -----------------------------------------------------


def test_values_yaml_sets_exactly_the_model() -> None:
    # Every key is required by the model (values.yaml holds the defaults), and none other is allowed.
    ChartValues.model_validate(defaults())
    missing = defaults()
    del missing["mlflow"]["persistence"]["size"]
    with pytest.raises(ValidationError, match=r"mlflow\.persistence\.size"):
        ChartValues.model_validate(missing)


@pytest.mark.parametrize("values", SCENARIOS, ids=lambda p: p.name)
def test_every_scenario_satisfies_the_model(values: Path) -> None:
    ChartValues.model_validate(coalesce(defaults(), yaml.safe_load(values.read_text()) or {}))


def _demo_install_args() -> list[str]:
    return cluster.helm_values(devices=200, months=2, start="2026-03", creds=DEMO_CREDENTIALS)


def test_the_demo_install_satisfies_the_model() -> None:
    values = defaults()
    args = _demo_install_args()
    for flag, arg in zip(args[::2], args[1::2], strict=True):
        if flag == "-f":
            values = coalesce(values, yaml.safe_load(Path(arg).read_text()))
        else:
            assert flag in {"--set", "--set-string"}, flag
            values = set_value(values, arg, string=flag == "--set-string")
    assert values["demo"]["devices"] == 200  # the arguments did reach the values checked
    ChartValues.model_validate(values)


@pytest.mark.parametrize(
    "extra",
    [[], [CHART / "ci" / "release-values.yaml"]],
    ids=["demo install", "demo install + GitOps releases"],
)
def test_the_demo_and_gitops_values_pass_helm(helm: Path, extra: list[Path]) -> None:
    # What `make demo` installs, and the GitOps values file: the installed values plus `releases`.
    args = ["template", "fleet-eval", str(CHART), "-n", NAMESPACE, "--kube-version", KUBE_VERSION]
    args += _demo_install_args()
    for path in extra:
        args += ["-f", str(path)]
    done = run_helm(helm, *args)
    assert done.returncode == 0, done.stderr


# ---- bad values: the model and Helm reject the same ones, naming the key --------------------------

BAD_VALUES = [
    # (--set pairs, what helm's error names, what the model's error names)
    (["unknown=1"], "additional properties 'unknown'", "unknown"),
    (["mlflow.persistance.enabled=true"], "at '/mlflow': additional properties 'persistance'", "mlflow.persistance"),
    (["mlflow.port=abc"], "at '/mlflow/port': got string, want integer", "mlflow.port"),
    (["demo.devices=many"], "at '/demo/devices': got string, want integer", "demo.devices"),
    (["review.enabled=yes"], "at '/review/enabled': got string, want boolean", "review.enabled"),
    (["sources.shardUrls[0]=https://only-one"], f"minItems: got 1, want {N_SHARDS}", "shard URLs"),
    (["releases[0].version=0.9.0;rm -rf"], "releases/0/version", "releases.0.version"),
    (["releases[0].library=x"], "missing property 'version'", "releases.0.version"),
    (["releases[0].version=1.0.0", "releases[0].months[0]=2026-13"], "months", "releases.0.months"),
    (["releases[0].version=1.0.0", "releases[0].mode=everything"], "mode", "releases.0.mode"),
    (["releases[0].version=1.0.0", "releases[0].shards=0"], "releases/0/shards", "releases.0.shards"),
    (["demo.enabled=true"], "secrets/create", "secrets.create"),
    (["mlflow.enabled=false"], "externalUri", "externalUri"),
    (["packageIndex.enabled=false"], "externalUrl", "externalUrl"),
    (["s3.endpoint=http://s3:7070"], "endpoint", "s3.endpoint"),
    (["podSecurityContext.runAsNonRoot=false"], "runAsNonRoot", "runAsNonRoot"),
    (["images.pullPolicy=Sometimes"], "pullPolicy", "images.pullPolicy"),
]


@pytest.mark.parametrize(("sets", "helm_says", "model_says"), BAD_VALUES, ids=lambda v: str(v))
def test_the_model_rejects_bad_values(sets: list[str], helm_says: str, model_says: str) -> None:
    values = defaults()
    for pair in sets:
        values = set_value(values, pair)
    with pytest.raises(ValidationError) as error:
        ChartValues.model_validate(values)
    assert model_says in str(error.value)


@pytest.mark.parametrize(("sets", "helm_says", "model_says"), BAD_VALUES, ids=lambda v: str(v))
def test_helm_rejects_bad_values_naming_them(helm: Path, sets: list[str], helm_says: str, model_says: str) -> None:
    args = ["template", "fe", str(CHART), "--kube-version", KUBE_VERSION]
    for pair in sets:
        args += ["--set", pair]
    done = run_helm(helm, *args)
    assert done.returncode != 0
    assert "values don't meet the specifications of the schema" in done.stderr, done.stderr
    assert helm_says in done.stderr, done.stderr


# ---- the shard count: contracts.N_SHARDS, followed by the chart and the simulator ----------------


def test_the_demo_serves_the_contract_shard_count(template: Template) -> None:
    docs = template([CHART / "ci" / "demo-values.yaml"])
    config = next(d for d in by_kind(docs, "ConfigMap") if d["metadata"]["name"] == "fleet-eval-config")
    urls = config["data"]["FLEET_EVAL_SHARDS_URLS"].split(",")
    assert len(urls) == N_SHARDS
    service = next(s for s in by_kind(docs, "Service") if s["metadata"]["name"] == "fe-fleet-eval-demo-shards")
    assert [p["port"] for p in service["spec"]["ports"]] == [8100 + i for i in range(N_SHARDS)]
    deployment = next(d for d in by_kind(docs, "Deployment") if d["metadata"]["name"] == "fe-fleet-eval-demo-shards")
    ports = deployment["spec"]["template"]["spec"]["containers"][0]["ports"]
    assert [p["containerPort"] for p in ports] == [8100 + i for i in range(N_SHARDS)]


def test_the_simulator_serves_the_contract_shard_count() -> None:
    # `fieldsim serve-shards` (what the chart's demo Deployment runs) splits the fleet with the default.
    assert inspect.signature(shard_states).parameters["n_shards"].default == N_SHARDS
    assert ShardState.__dataclass_fields__["n_shards"].default == N_SHARDS


def test_the_chart_shard_count_is_rendered_from_the_contract() -> None:
    text = (CHART / chart_render.CONTRACTS).read_text()
    assert re.search(r'define "fleet-eval\.shardCount" -\}\}(\d+)\{\{', text).group(1) == str(N_SHARDS)  # type: ignore[union-attr]
    literal_counts = [
        path.name for path in (CHART / "templates").glob("*") if re.search(r"until [0-9]", path.read_text())
    ]
    assert literal_counts == [], f"a literal shard count in {literal_counts}: use fleet-eval.shardCount"
