"""fleet-rollback: put back exactly the devices a configuration run wrote, from the Argo UI or `argo submit`.

One pod in the core image running `eval-runner fleet rollback`: the devices and their previous
parameters come from the run's batch results (a halted run rolls back too), and the restore is a
configuration write under its own run id (``<run>-rollback``) with the apply's confirm-and-journal,
canary and error-rate halt. So a retried or resubmitted rollback resumes and never writes a device
twice. Dry run (a count) unless apply=true. A rollback that left devices unrestored ends Failed
(exit 3), naming failed.parquet; submit it again to resume.
"""

from __future__ import annotations

from hera.workflows import DAG, Container, WorkflowTemplate
from hera.workflows import models as m

from eval_runner.fleet.models import DEFAULT_MAX_ERROR_RATE, DEFAULT_MIN_WRITES, DEFAULT_ROLLBACK_CANARY
from workflows import images
from workflows.common import Needs, arg, inp, names, param, runner_step, task, template_defaults

NAME = "fleet-rollback"
ENTRY = "fleet-rollback"
# The workflow's arguments; the entry template's inputs are the same names (passed on to the one step).
ARGUMENTS = (
    arg("run-id", "", "the configuration run to roll back (its fleet-rollout workflow's run id)"),
    arg(
        "apply",
        "false",
        "really write the previous parameters (default: dry run, a count)",
        ["false", "true"],
    ),
    arg("canary", str(DEFAULT_ROLLBACK_CANARY), "devices restored first; the rest only if they all succeed"),
    arg(
        "max-error-rate",
        str(DEFAULT_MAX_ERROR_RATE),
        "halt above this failed-write share (once min-writes were attempted)",
    ),
    arg(
        "min-writes",
        str(DEFAULT_MIN_WRITES),
        "writes attempted before the error rate can halt the rollback",
    ),
)
INPUTS = names(ARGUMENTS)
# `fleet rollback --apply` is a flag; Argo cannot drop an argument, so a dry run repeats an option instead.
APPLY_FLAG = "{{=inputs.parameters.apply == 'true' ? '--apply' : '--canary=' + inputs.parameters.canary}}"


def rollback_template() -> Container:
    """Restore (or count, dry run) the devices the run wrote; its summary is the counts."""
    return runner_step(
        "fleet-rollback-step",
        [
            "fleet",
            "rollback",
            "--run-id",
            inp("run-id"),
            f"--canary={inp('canary')}",
            f"--max-error-rate={inp('max-error-rate')}",
            f"--min-writes={inp('min-writes')}",
            APPLY_FLAG,
        ],
        image=images.CORE_IMAGE,
        inputs=[param(n) for n in INPUTS],
        needs=(Needs.SHARDS,),
        summary_keys=("would_restore", "devices", "attempted"),
        memory="2Gi",
        # One rollback of a run at a time: a resubmit while one runs waits, then resumes from its journal.
        synchronization=m.Synchronization(mutexes=[m.Mutex(name=f"fleet-rollback-{inp('run-id')}")]),
    )


def build() -> WorkflowTemplate:
    """The fleet-rollback WorkflowTemplate."""
    with (
        WorkflowTemplate(
            name=NAME,
            entrypoint=ENTRY,
            arguments=list(ARGUMENTS),
            annotations={"workflows.argoproj.io/description": "Restore exactly the devices a configuration run wrote."},
            **template_defaults(),
        ) as wt,
        DAG(name=ENTRY, inputs=[param(n) for n in INPUTS]),
    ):
        task(rollback_template(), "rollback", arguments={n: inp(n) for n in INPUTS})
    return wt
