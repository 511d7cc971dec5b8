"""evaluate: every (month, version) pair on reviewed datasets, one pod per version, then compare and gate.

One submit takes a list of months and a list of version labels, so a backfill is one workflow:
resolve the labels, build the runner images the registry lacks, evaluate each version in its own image
for each month, compare the versions per month, and gate the first label (the candidate) against the
baseline (the champion of record) over all months. The gate writes decision.json; whether it passed is an
output parameter of the entry template, which release reads.
"""

from __future__ import annotations

from hera.workflows import DAG, ConfigMapVolume, Container, Parameter, WorkflowTemplate
from hera.workflows import models as m

from workflows import images
from workflows.common import (
    OUTPUTS,
    POLICIES_CONFIG_MAP,
    POLICIES_DIR,
    arg,
    inp,
    names,
    param,
    runner_step,
    task,
    template_defaults,
)
from workflows.version_images import build_missing_images, pin_template, resolve_template

NAME = "evaluate"
ENTRY = "evaluate"
# The entry template's outputs; release reads them through its templateRef.
ENTRY_OUTPUTS = ("passed", "resolutions", "candidate-label")
# The default of review-hashes: every step uses each month's current review.
CURRENT_REVIEWS = "{}"
# The workflow's arguments; the entry template's inputs are the same names (release passes them by templateRef).
ARGUMENTS = (
    arg("months", '["2026-04"]', "JSON list of months (YYYY-MM) with approved reviews"),
    arg("labels", '["latest"]', "JSON list of version labels; the first is the gate's candidate"),
    arg("gate", "true", "judge the first label against the baseline", enum=["true", "false"]),
    arg("policy", "default", "gate policy name (a key of the fleet-eval-policies ConfigMap)"),
    arg("baseline", "champion", "the version to beat: 'champion' (the champion of record in S3) or a version"),
    arg("promote", "false", "promote the candidate to champion on a pass", enum=["false", "true"]),
    arg("release-id", "", "capacity/decisions/<release-id>/; empty: derived from the question"),
    arg("image-repository", images.RUNNER_REPOSITORY, "repository pods pull runner images from"),
    arg(
        "review-hashes",
        CURRENT_REVIEWS,
        'JSON object {"YYYY-MM": "<review_hash of validate-review>"}: the review each month must use '
        "(evaluate and gate exit 3 on another); months not named use their current review",
    ),
)
INPUTS = names(ARGUMENTS)
# Evaluation pods running at once (each holds a month of series in memory); a backfill queues the rest.
PARALLELISM = 6
# On a pass the gate may promote the candidate; a boolean flag pair, chosen by an expression.
PLOTS_DIR = f"{OUTPUTS}/plots"  # what runner_step(plots=True) uploads for the Argo UI
PROMOTE_FLAG = "{{=inputs.parameters.promote == 'true' ? '--promote' : '--no-promote'}}"


def evaluate_version_template() -> Container:
    """Evaluate one resolved version on one month, in that version's own runner image."""
    return runner_step(
        "evaluate-version",
        [
            "evaluate",
            "--month",
            inp("month"),
            "--version-label",
            inp("label"),
            "--image-digest",
            inp("image_digest"),
            # One argument, so the default ({}: the month's current review) needs no flag of its own.
            f"--review-hash={inp('review-hashes')}",
            "--plots-dir",
            PLOTS_DIR,
        ],
        image=inp("image"),
        inputs=[
            param("month"),
            param("label"),
            param("image"),
            param("image_digest"),
            param("library_version"),
            param("review-hashes", CURRENT_REVIEWS),
        ],
        summary_keys=("samples", "predicted", "errors", "mlflow_run_id", "metrics", "review_hash"),
        plots=True,
        memory="4Gi",
    )


def compare_template() -> Container:
    """Compare the versions evaluated on one month (plots across versions, an MLflow comparison run)."""
    return runner_step(
        "compare-versions",
        [
            "compare",
            "--month",
            inp("month"),
            "--versions",
            inp("versions"),
            f"--review-hash={inp('review-hashes')}",
            "--plots-dir",
            PLOTS_DIR,
        ],
        image=images.CORE_IMAGE,
        inputs=[
            param("month"),
            param("versions", description="JSON list of resolved library versions"),
            param("review-hashes", CURRENT_REVIEWS),
        ],
        summary_keys=("samples", "versions", "best", "mlflow_run_id"),
        plots=True,
        memory="2Gi",
    )


def gate_template() -> Container:
    """Judge the candidate against the baseline with the policy; writes decision.json."""
    return runner_step(
        "gate",
        [
            "gate",
            "--policy",
            f"{POLICIES_DIR}/{inp('policy')}.yaml",
            "--candidate",
            inp("candidate"),
            "--baseline",
            inp("baseline"),
            "--months",
            inp("months"),
            PROMOTE_FLAG,
            # One argument, so an empty id (the default: derived from candidate, months and policy) needs no flag.
            f"--release-id={inp('release-id')}",
            f"--review-hash={inp('review-hashes')}",
            "--output-dir",
            OUTPUTS,
        ],
        image=images.CORE_IMAGE,
        inputs=[
            param("months"),
            param("candidate"),
            param("baseline"),
            param("policy"),
            param("promote"),
            param("release-id"),
            param("review-hashes", CURRENT_REVIEWS),
        ],
        summary_keys=(
            "passed",
            "verdict",
            "release_id",
            "decision",
            "reasons",
            "promoted",
            "candidate_image",
            "reviews",
        ),
        plots=True,
        volumes=[ConfigMapVolume(name=POLICIES_CONFIG_MAP, mount_path=POLICIES_DIR, read_only=True)],
    )


def month_dag() -> DAG:
    """One month: every version in parallel (one pod each), then the comparison."""
    with DAG(
        name="evaluate-month",
        inputs=[
            param("month"),
            param("evaluations"),
            param("library_versions"),
            param("review-hashes", CURRENT_REVIEWS),
        ],
    ) as dag:
        runs = task(
            evaluate_version_template(),
            "evaluate",
            with_param=inp("evaluations"),
            arguments={
                "month": inp("month"),
                "label": "{{item.label}}",
                "image": "{{item.image}}",
                "image_digest": "{{item.digest}}",
                "library_version": "{{item.version}}",
                "review-hashes": inp("review-hashes"),
            },
        )
        compare = task(
            compare_template(),
            "compare",
            arguments={
                "month": inp("month"),
                "versions": inp("library_versions"),
                "review-hashes": inp("review-hashes"),
            },
        )
        runs >> compare
    return dag


def entry_dag() -> DAG:
    """Resolve, build what is missing, evaluate every month, gate; outputs whether the gate passed."""
    resolve = resolve_template()
    month = month_dag()
    gate = gate_template()
    with DAG(
        name=ENTRY,
        # review-hashes has a default, so a caller that predates it (a templateRef) need not pass it.
        inputs=[param(name, CURRENT_REVIEWS if name == "review-hashes" else None) for name in INPUTS],
    ) as dag:
        t_resolve = task(
            resolve,
            "resolve",
            arguments={"labels": inp("labels"), "image-repository": inp("image-repository")},
        )
        t_build = build_missing_images(after=t_resolve)
        # The same pins, now with the digest of every image: evaluations record it and pods run by it.
        t_pin = task(pin_template(), "pin", arguments={"resolutions": t_resolve.get_parameter("resolutions")})
        t_months = task(
            month,
            "month",
            with_param=inp("months"),
            arguments={
                "month": "{{item}}",
                "evaluations": t_pin.get_parameter("evaluations"),
                "library_versions": t_pin.get_parameter("library_versions"),
                "review-hashes": inp("review-hashes"),
            },
        )
        t_gate = task(
            gate,
            "gate",
            when=f"{inp('gate')} == true",
            arguments={
                "months": inp("months"),
                "candidate": t_pin.get_parameter("library_version"),
                "baseline": inp("baseline"),
                "policy": inp("policy"),
                "promote": inp("promote"),
                "release-id": inp("release-id"),
                "review-hashes": inp("review-hashes"),
            },
        )
        t_resolve >> t_build
        t_build >> t_pin
        t_pin >> t_months
        t_months >> t_gate
        # Declared once the tasks exist, so each names its source through Hera (release reads them by name).
        outputs = [
            _output("passed", t_gate.get_parameter("passed"), default="false"),
            _output("resolutions", t_pin.get_parameter("resolutions")),
            # The first label's pin (the gate's candidate): the exact release or git:<commit> it meant.
            _output("candidate-label", t_pin.get_parameter("exact_label")),
        ]
        if tuple(p.name for p in outputs) != ENTRY_OUTPUTS:
            raise ValueError(f"{ENTRY}: its outputs are not ENTRY_OUTPUTS {ENTRY_OUTPUTS}")
        dag.outputs = outputs
    return dag


def _output(name: str, source: Parameter, default: str | None = None) -> Parameter:
    """An output parameter of the entry DAG taken from a task's output parameter."""
    return Parameter(name=name, value_from=m.ValueFrom(parameter=source.value, default=default))


def build() -> WorkflowTemplate:
    """The evaluate WorkflowTemplate."""
    with WorkflowTemplate(
        name=NAME,
        entrypoint=ENTRY,
        arguments=list(ARGUMENTS),
        annotations={"workflows.argoproj.io/description": "Evaluate versions on months, compare, gate."},
        parallelism=PARALLELISM,
        **template_defaults(),
    ) as wt:
        entry_dag()
    return wt
