"""fleet-rollout: run one library version on every device, in checkpointed batches over shard pods.

prepare (resolve the version, check its gate decision, snapshot, plan: one pod) -> (build the runner
image and pin it when missing) -> (canary, for configuration --apply) -> shard pods over the plan's
shard ids -> merge. Fan-out is over shard ids (a few dozen), never devices; each shard skips batches
whose .done marker exists, so ``argo retry``, a resubmit with the same run id or a re-release resumes
where the last attempt stopped. Shards report devices done/total as Argo progress and export
Prometheus metrics.
"""

from __future__ import annotations

from hera.workflows import DAG, Container, Counter, Gauge, Label, WorkflowTemplate
from hera.workflows import models as m

from eval_runner.fleet.models import DEFAULT_MAX_ERROR_RATE, MODES
from eval_runner.fleet.planning import DEFAULT_BATCH_SIZE, DEFAULT_SHARD_PODS
from workflows import images
from workflows.common import Needs, arg, in_expression, inp, names, param, runner_step, task, template_defaults
from workflows.version_images import (
    build_inputs_artifacts,
    build_missing_images,
    pin_template,
    resolution_arguments,
    resolution_outputs,
)

NAME = "fleet-rollout"
ENTRY = "fleet-rollout"
# The workflow's arguments; the entry template's inputs are the same names (release passes them by templateRef).
ARGUMENTS = (
    arg("version", "latest", "the version label to run: 0.9.0, v0.9.0, latest or git:<ref>"),
    arg("mode", "fleet", "what to compute or write", enum=MODES),
    arg("run-id", "", "checkpoint key of the run; empty: this workflow's name"),
    arg("shards", str(DEFAULT_SHARD_PODS), "shard pods to fan out to"),
    arg("batch-size", str(DEFAULT_BATCH_SIZE), "devices per checkpointed batch"),
    arg("apply", "false", "configuration: really write (default: dry-run diff)", enum=["false", "true"]),
    arg(
        "max-error-rate",
        str(DEFAULT_MAX_ERROR_RATE),
        "configuration --apply: halt a batch above this failed-write share",
    ),
    arg("image-repository", images.RUNNER_REPOSITORY, "repository pods pull runner images from"),
    arg("release-id", "", "the gate decision allowing this rollout; empty: any pass decision of the version"),
    arg(
        "gate-override-reason",
        "",
        "roll out without a pass decision that judged this image; the reason is recorded in the plan",
    ),
)
INPUTS = names(ARGUMENTS)
# Shard pods running at once: bounds the load on the API shards and the object store. The controller
# needs a number here (Argo does not template parallelism), so changing it means `make render`.
PARALLELISM = 16

# The run id fixes every checkpoint key: by default the workflow's name, so `argo retry` resumes; give
# the same run id to a new submission to resume a run whose workflow is gone.
AS_OF = "{{workflow.creationTimestamp}}"
RUN_ID = "{{=inputs.parameters['run-id'] != '' ? inputs.parameters['run-id'] : workflow.name}}"
# `fleet plan --apply` is a flag; Argo cannot drop an argument, so dry-run repeats an option instead.
APPLY_FLAG = (
    "{{=inputs.parameters.apply == 'true' ? '--apply' : '--max-error-rate=' + inputs.parameters['max-error-rate']}}"
)


def run_mutex(step: str) -> m.Synchronization:
    """One holder per run id and step across workflows: a resubmit of a running run waits for it.

    Template-level (the run id is an input, resolved from the workflow's name when empty); shards
    lock per shard id, so one run's shards still run in parallel while two runs of one id never
    process the same shard at once.
    """
    return m.Synchronization(mutexes=[m.Mutex(name=f"fleet-run-{inp('run-id')}-{step}")])


def prepare_template() -> Container:
    """Resolve the version, check its gate decision, snapshot the fleet's inputs and write the plan, in one pod.

    Prints the shard ids. A version without a pass decision that judged its image exits 2 before the
    snapshot unless gate-override-reason is given; plan.json records the decision or the reason.

    One pod instead of three: every step costs seconds of pod start-up and controller latency before
    the shards can start. An existing snapshot is reused, so a retry reads the same moment.
    """
    return runner_step(
        "fleet-prepare",
        [
            "fleet",
            "prepare",
            "--run-id",
            inp("run-id"),
            "--version",
            inp("version"),
            *resolution_arguments(),
            # The workflow's creation time, not "now": a retry an hour later reads the same moment.
            "--as-of",
            AS_OF,
            "--batch-size",
            inp("batch-size"),
            "--shards",
            inp("shards"),
            "--mode",
            inp("mode"),
            "--max-error-rate",
            inp("max-error-rate"),
            APPLY_FLAG,
            # One argument each, so an empty value (the default: no release id, no override) needs no flag.
            f"--release-id={inp('release-id')}",
            f"--gate-override-reason={inp('gate-override-reason')}",
        ],
        image=images.CORE_IMAGE,
        inputs=[
            param("run-id"),
            param("version"),
            param("image-repository"),
            param("batch-size"),
            param("shards"),
            param("mode"),
            param("apply"),
            param("max-error-rate"),
            param("release-id"),
            param("gate-override-reason"),
        ],
        needs=(Needs.POSTGRES, Needs.SHARDS),
        # library_version is among the resolution outputs already; Argo refuses a name given twice.
        summary_keys=("images_missing", "devices", "batches", "as_of", "shards", "gate_release_id"),
        extra_outputs=[*resolution_outputs(), *build_inputs_artifacts()],
        memory="4Gi",
        synchronization=run_mutex("prepare"),
    )


def shard_metrics() -> list[Counter | Gauge]:
    """Per-shard Prometheus metrics; labels are low-cardinality (mode, status), never device ids."""
    labels = [Label(key="mode", value=inp("mode")), Label(key="status", value="{{status}}")]
    return [
        Counter(name="fleet_shard_result_total", help="Shard pods by final status", labels=labels, value="1"),
        Gauge(
            name="fleet_shard_duration_seconds",
            help="Wall time of one shard pod",
            labels=labels,
            realtime=False,
            value="{{duration}}",
        ),
    ]


def shard_template(name: str, selector: list[str]) -> Container:
    """Process a shard's batches in the version's image, skipping done ones; writes Argo progress."""
    return runner_step(
        name,
        ["fleet", "shard", "--run-id", inp("run-id"), *selector],
        image=inp("image"),
        inputs=[param("run-id"), param("image"), param("mode"), *([param("shard")] if "--shard" in selector else [])],
        needs=(Needs.SHARDS,),
        summary_keys=("devices", "batches", "skipped", "processed", "failures"),
        metrics=shard_metrics(),
        memory="4Gi",
        synchronization=run_mutex(inp("shard") if "--shard" in selector else "canary"),
    )


def merge_template() -> Container:
    """Prove every device appears exactly once, then publish results; the summary is the run's."""
    return runner_step(
        "fleet-merge",
        ["fleet", "merge", "--run-id", inp("run-id")],
        image=images.CORE_IMAGE,
        inputs=[param("run-id")],
        summary_keys=("devices", "batches", "library_version", "counts"),
        memory="4Gi",
        synchronization=run_mutex("merge"),
    )


def entry_dag() -> DAG:
    """Prepare (resolve, snapshot, plan), build the image if missing, canary, shards, merge."""
    with DAG(name=ENTRY, inputs=[param(n) for n in INPUTS], parallelism=PARALLELISM) as dag:
        t_prepare = task(
            prepare_template(),
            "prepare",
            arguments={
                "run-id": RUN_ID,
                "version": inp("version"),
                "image-repository": inp("image-repository"),
                "batch-size": inp("batch-size"),
                "shards": inp("shards"),
                "mode": inp("mode"),
                "apply": inp("apply"),
                "max-error-rate": inp("max-error-rate"),
                "release-id": inp("release-id"),
                "gate-override-reason": inp("gate-override-reason"),
            },
        )
        t_build = build_missing_images(after=t_prepare)
        images_missing = t_prepare.get_parameter("images_missing")
        t_pin = task(
            pin_template(),
            "pin",
            when=f"{images_missing.value} > 0",
            arguments={"resolutions": t_prepare.get_parameter("resolutions")},
        )
        # prepare names the image by digest when it exists; a freshly built one gets its digest from pin.
        image = (
            f"{{{{={in_expression(images_missing)} == '0' ? "
            f"{in_expression(t_prepare.get_parameter('image'))} : {in_expression(t_pin.get_parameter('image'))}}}}}"
        )
        t_canary = task(
            shard_template("fleet-canary", ["--canary"]),
            "canary",
            # Quoted: unquoted, Argo's expression parser reads fleet-q10-distributions as a subtraction.
            when=f"'{inp('mode')}' == 'configuration' && '{inp('apply')}' == 'true'",
            arguments={"run-id": RUN_ID, "image": image, "mode": inp("mode")},
        )
        t_shards = task(
            shard_template("fleet-shard", ["--shard", inp("shard")]),
            "shard",
            with_param=t_prepare.result,
            arguments={"run-id": RUN_ID, "image": image, "mode": inp("mode"), "shard": "{{item}}"},
        )
        t_merge = task(merge_template(), "merge", arguments={"run-id": RUN_ID})
        # A missing image is built after prepare, so a new version's build (minutes) also waits for the
        # snapshot (~25 s at 100,000 devices); an existing image, the usual case, costs no step at all.
        t_prepare >> t_build
        t_build >> t_pin
        t_canary.depends = "pin"
        t_canary >> t_shards
        t_shards >> t_merge
    return dag


def workflow_metrics() -> list[Gauge | Counter]:
    """Run-level metrics: duration (updated while running) and outcome, by mode."""
    mode = Label(key="mode", value="{{workflow.parameters.mode}}")
    return [
        Gauge(
            name="fleet_rollout_duration_seconds",
            help="Wall time of a fleet rollout",
            labels=[mode],
            realtime=True,
            value="{{workflow.duration}}",
        ),
        Counter(
            name="fleet_rollout_result_total",
            help="Fleet rollouts by final status",
            labels=[mode, Label(key="status", value="{{workflow.status}}")],
            value="1",
        ),
    ]


def build() -> WorkflowTemplate:
    """The fleet-rollout WorkflowTemplate."""
    with WorkflowTemplate(
        name=NAME,
        entrypoint=ENTRY,
        arguments=list(ARGUMENTS),
        annotations={"workflows.argoproj.io/description": "Run a library version on every device, in batches."},
        **template_defaults(workflow_metrics=workflow_metrics()),
    ) as wt:
        entry_dag()
    return wt
