"""Shared template builders: how a runner step is run, retried, secured and wired to Secrets and S3.

Every WorkflowTemplate module builds its steps with ``runner_step`` and its spec with
``template_defaults``, so conventions (exit-code retries, summaries as output parameters, non-root
pods with read-only root filesystems, credentials only as Secret references) live in one place.
"""

# Secret *names* and keys, and /tmp as an emptyDir mount, are what these rules mistake for secrets and
# insecure temp files.
# ruff: noqa: S105, S106, S108

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum
from pathlib import Path
from typing import Any

from hera.workflows import (
    ConfigMapEnvFrom,
    Container,
    EmptyDirVolume,
    Env,
    Parameter,
    Resources,
    RetryStrategy,
    S3Artifact,
    SecretEnv,
    Task,
)
from hera.workflows import models as m

from workflows.images import RUNNER_VERSION

# ---- names shared with the chart (templates are rendered once, so these cannot be Helm values) ----
SERVICE_ACCOUNT = "fleet-eval-workflow"
CONFIG_MAP = "fleet-eval-config"  # non-secret FLEET_EVAL_* variables, loaded with envFrom
S3_SECRET = "fleet-eval-s3"  # keys: access-key, secret-key
POSTGRES_SECRET = "fleet-eval-postgres"  # key: dsn
SHARDS_SECRET = "fleet-eval-shards"  # key: token (optional)
POLICIES_CONFIG_MAP = "fleet-eval-policies"  # gate policies, one <name>.yaml per key
POLICIES_DIR = "/etc/fleet-eval/policies"
ARTIFACT_REPOSITORY = m.ArtifactRepositoryRef(config_map="fleet-eval-artifact-repositories", key="default")
# Argo's own artifacts (plots for the UI, archived logs) live under this prefix of the artifact bucket,
# keyed by workflow and step; the datasets, evaluations and fleet results that matter are written by
# eval_runner under its own keys in the data bucket, which artifact GC never touches.
ARGO_PREFIX = "fleet-eval/{{workflow.namespace}}/{{workflow.name}}"
# Always: a runner tag (library + eval_runner version) is rebuilt in place while eval_runner's version
# stays the same, and a node must not keep running an older image under that tag. Against the cluster
# registry the check is one manifest request; unchanged layers are reused.
RUNNER_PULL_POLICY = "Always"
OUTPUTS = "/tmp/outputs"  # an emptyDir mounted in every runner pod

LABELS = {
    "app.kubernetes.io/part-of": "fleet-eval",
    "app.kubernetes.io/version": RUNNER_VERSION,
}
RUNNER_UID = 10001
POD_ROLE_LABEL = "fleet-eval/role"
STEP_WRAPPER = (Path(__file__).with_name("step_wrapper.py")).read_text()


class Needs(Enum):
    """Which service credentials a step gets: only the ones it uses (least privilege per pod)."""

    POSTGRES = "postgres"
    SHARDS = "shards"


# 143 = killed by SIGTERM: the pod was deleted, evicted or its node drained while the step ran (the
# e2e chaos test deletes a shard pod: Argo marks that node Failed, not Error). Work is checkpointed,
# so a retry resumes. 137 stays unretried: it is also what an OOM kill looks like.
RETRIED_EXIT_CODES = (75, 143)


# Infrastructure failures, retried whatever the exit code says: a container that never started (runc and
# containerd report StartError, exit code 128, as Failed when it is the main container) and an evicted or
# preempted pod. Argo's Error phase (init or wait container failures, deleted pods) is retried too.
INFRASTRUCTURE_FAILURES = "StartError|ContainerCannotRun|failed to create containerd task|Evicted|Preempt"


def retry_transient(limit: int = 5) -> RetryStrategy:
    """Retry exit code 75 (TransientError), a SIGTERM'd pod and infrastructure failures with backoff; never 2 or 3."""
    codes = " || ".join(f"asInt(lastRetry.exitCode) == {code}" for code in RETRIED_EXIT_CODES)
    return RetryStrategy(
        limit=limit,
        retry_policy="Always",
        expression=(f'{codes} || lastRetry.status == "Error" || lastRetry.message matches "{INFRASTRUCTURE_FAILURES}"'),
        backoff=m.Backoff(duration="30s", factor=2, max_duration="15m"),
    )


def runner_env(needs: Sequence[Needs] = ()) -> list[Any]:
    """Credentials of a runner pod, as Secret references only (settings come from the ConfigMap)."""
    env: list[Any] = [
        SecretEnv(name="FLEET_EVAL_S3_ACCESS_KEY", secret_name=S3_SECRET, secret_key="access-key"),
        SecretEnv(name="FLEET_EVAL_S3_SECRET_KEY", secret_name=S3_SECRET, secret_key="secret-key"),
        Env(name="HOME", value="/tmp"),  # the root filesystem is read-only
    ]
    if Needs.POSTGRES in needs:
        env.append(SecretEnv(name="FLEET_EVAL_POSTGRES_DSN", secret_name=POSTGRES_SECRET, secret_key="dsn"))
    if Needs.SHARDS in needs:
        env.append(
            SecretEnv(name="FLEET_EVAL_SHARDS_TOKEN", secret_name=SHARDS_SECRET, secret_key="token", optional=True)
        )
    return env


def container_security() -> m.SecurityContext:
    """Non-root, no privilege escalation, no capabilities, read-only root filesystem."""
    return m.SecurityContext(
        run_as_non_root=True,
        run_as_user=RUNNER_UID,
        run_as_group=RUNNER_UID,
        allow_privilege_escalation=False,
        read_only_root_filesystem=True,
        capabilities=m.Capabilities(drop=["ALL"]),
    )


def summary_outputs(keys: Sequence[str] = ()) -> list[Parameter]:
    """Output parameters the Argo UI shows on the node: the summary, its named keys and the duration."""
    params = [
        Parameter(name="summary", value_from=m.ValueFrom(path=f"{OUTPUTS}/summary.json", default="{}")),
        Parameter(name="duration_seconds", value_from=m.ValueFrom(path=f"{OUTPUTS}/duration_seconds", default="")),
    ]
    params += [Parameter(name=k, value_from=m.ValueFrom(path=f"{OUTPUTS}/{k}", default="")) for k in keys]
    return params


def plots_artifact(step: str) -> S3Artifact:
    """Plots a step writes to /tmp/outputs/plots, uploaded unarchived so the Argo UI can display them."""
    return S3Artifact(
        name="plots",
        path=f"{OUTPUTS}/plots",
        key=f"{ARGO_PREFIX}/{step}/{{{{pod.name}}}}/plots",
        archive=m.ArchiveStrategy(none=m.NoneStrategy()),
        optional=True,
    )


def runner_step(
    name: str,
    args: Sequence[str],
    *,
    image: str,
    inputs: Sequence[Parameter | S3Artifact] = (),
    needs: Sequence[Needs] = (),
    summary_keys: Sequence[str] = (),
    plots: bool = False,
    retry: bool = True,
    metrics: Any = None,
    memory: str = "1Gi",
    extra_outputs: Sequence[Parameter | S3Artifact] = (),
    volumes: Sequence[Any] = (),
    synchronization: m.Synchronization | None = None,
    program: str = STEP_WRAPPER,
) -> Container:
    """A container template that runs ``eval-runner <args>`` through the step wrapper (or ``program``).

    The command is explicit (emissary cannot read image entrypoints from the cluster registry), the
    summary becomes output parameters, and exit code 75 is retried with backoff.
    """
    outputs: list[Parameter | S3Artifact] = [*summary_outputs(summary_keys), *extra_outputs]
    if plots:
        outputs.append(plots_artifact(name))
    return Container(
        name=name,
        image=image,
        image_pull_policy=RUNNER_PULL_POLICY,
        command=["python", "-c", program],
        args=list(args),
        inputs=list(inputs),
        outputs=outputs,
        env=runner_env(needs),
        env_from=[ConfigMapEnvFrom(name=CONFIG_MAP)],
        security_context=container_security(),
        resources=Resources(cpu_request="250m", memory_request="256Mi", memory_limit=memory),
        volumes=[EmptyDirVolume(name="tmp", mount_path="/tmp"), *volumes],  # scratch
        synchronization=synchronization,
        retry_strategy=retry_transient() if retry else None,
        metrics=metrics,
    )


def template_defaults(*, workflow_metrics: Any = None) -> dict[str, Any]:
    """Spec fields every WorkflowTemplate shares: identity, GC, TTL, artifact repository, pod security."""
    return {
        "service_account_name": SERVICE_ACCOUNT,
        "labels": dict(LABELS),
        # The chart's NetworkPolicies admit pods with this label to MLflow, the index and the sources.
        "pod_metadata": m.Metadata(labels={POD_ROLE_LABEL: "workflow"}),
        "artifact_repository_ref": ARTIFACT_REPOSITORY,
        # Succeeded pods go at once (their logs are archived); failed ones stay for `kubectl logs`.
        "pod_gc": m.PodGC(strategy="OnPodSuccess", delete_delay_duration="5m"),
        "ttl_strategy": m.TTLStrategy(seconds_after_success=7 * 24 * 3600, seconds_after_failure=14 * 24 * 3600),
        # Only Argo's own artifacts (summaries, plots) are collected; eval_runner's data is not Argo's.
        "artifact_gc": m.WorkflowLevelArtifactGC(strategy="OnWorkflowDeletion", service_account_name=SERVICE_ACCOUNT),
        "security_context": m.PodSecurityContext(
            run_as_non_root=True,
            run_as_user=RUNNER_UID,
            run_as_group=RUNNER_UID,
            fs_group=RUNNER_UID,
            seccomp_profile=m.SeccompProfile(type="RuntimeDefault"),
        ),
        "metrics": workflow_metrics,
    }


def param(name: str, default: str | None = None, description: str | None = None, **kw: Any) -> Parameter:
    """A template input parameter with an optional default and a description."""
    if default is not None:
        kw["default"] = default
    if description is not None:
        kw["description"] = description
    return Parameter(name=name, **kw)


def arg(name: str, value: str, description: str | None = None, enum: Sequence[str] | None = None) -> Parameter:
    """A workflow argument: the value the Argo UI and ``argo submit`` start from."""
    kw: dict[str, Any] = {"value": value}
    if description is not None:
        kw["description"] = description
    if enum is not None:
        kw["enum"] = list(enum)
    return Parameter(name=name, **kw)


def task(template: Any, name: str, **kwargs: Any) -> Task:
    """Call a template inside a DAG context and return the Task (Hera's call returns a wider union)."""
    created = template(name=name, **kwargs)
    if not isinstance(created, Task):
        raise TypeError(f"{name}: calling a template outside a DAG context")
    return created


def inp(name: str) -> str:
    """``{{inputs.parameters.<name>}}``."""
    return f"{{{{inputs.parameters.{name}}}}}"


def in_expression(reference: str | Parameter) -> str:
    """A reference Hera built (``task.get_parameter(...)``, ``task.result``) as a name inside ``{{=...}}``.

    Argo's expressions name variables without braces; Hera only builds the braced form.
    """
    value = reference.value if isinstance(reference, Parameter) else reference
    if not (isinstance(value, str) and value.startswith("{{") and value.endswith("}}")):
        raise ValueError(f"not an Argo reference: {value!r}")
    return value[2:-2]


def ref_arguments(inputs: Sequence[str], values: dict[str, Any], *, defaulted: Sequence[str] = ()) -> dict[str, Any]:
    """A templateRef task's arguments, checked against the referenced template's ``inputs``.

    Hera cannot see a referenced template's inputs: a misspelt or forgotten name would only fail when
    Argo runs the task. ``defaulted`` are inputs with a default there, which the caller may leave out.
    """
    unknown = [name for name in values if name not in inputs]
    missing = [name for name in inputs if name not in values and name not in defaulted]
    if unknown or missing:
        raise KeyError(f"arguments of a templateRef: {unknown} are no inputs of it, {missing} are not given")
    return values


def names(arguments: Sequence[Parameter]) -> tuple[str, ...]:
    """The names of workflow arguments, in order: the entry template's inputs."""
    return tuple(str(argument.name) for argument in arguments)


def default_of(arguments: Sequence[Parameter], name: str) -> str:
    """The default value of workflow argument ``name`` (``arg(...)``), for a caller that passes it on unchanged."""
    for argument in arguments:
        if argument.name == name and isinstance(argument.value, str):
            return argument.value
    raise KeyError(f"no workflow argument {name!r} with a value")


def ref_output(ref_task: Task, name: str, declared: Sequence[str]) -> Parameter:
    """Output parameter ``name`` of a templateRef task, checked against the outputs the referenced template declares.

    Hera's ``get_parameter`` checks the task's own template, which a templateRef task does not have.
    """
    if name not in declared:
        raise KeyError(
            f"{ref_task.name}: the referenced template declares no output {name!r} (it has {list(declared)})"
        )
    return Parameter(name=name, value=f"{{{{tasks.{ref_task.name}.outputs.parameters.{name}}}}}")
