"""release: the GitOps entry. Evaluate a candidate against the champion, gate, and roll out on a pass.

The chart renders one Workflow per release listed in its values, named after the library and version
and running this template, so the same version never runs twice and a new one always runs. The
steps are the evaluate and fleet-rollout entry templates (templateRef), so a release runs exactly
what a platform engineer would submit by hand.
"""

from __future__ import annotations

from hera.workflows import DAG, Container, Task, WorkflowTemplate
from hera.workflows import models as m

from eval_runner.fleet.models import MODES
from workflows import evaluate, fleet_rollout, images
from workflows.common import (
    arg,
    default_of,
    inp,
    names,
    param,
    ref_arguments,
    ref_output,
    runner_step,
    task,
    template_defaults,
)

NAME = "release"
ENTRY = "release"
# The workflow's arguments; the entry template's inputs are the same names (the chart's Workflows set them).
ARGUMENTS = (
    arg("library", "battery-lib", "the library being released (the chart names workflows after it)"),
    arg("version", "latest", "the candidate's version label"),
    arg("months", "[]", "JSON list of months to judge on; empty: the latest approved months"),
    arg("latest-months", "3", "how many latest approved months when months is empty"),
    arg("policy", "default", "gate policy name"),
    arg("rollout", "false", "roll out to the fleet when the gate passes", enum=["false", "true"]),
    arg("mode", "fleet", "fleet-rollout mode", enum=MODES),
    arg("shards", default_of(fleet_rollout.ARGUMENTS, "shards"), "shard pods of the rollout"),
)
INPUTS = names(ARGUMENTS)


# Given months are used as they are (the gate refuses months without an approved review); with none
# given, eval-runner lists the latest approved ones. Prints a JSON list: the evaluate task's months.
PICK_MONTHS = """import json, re, subprocess, sys
try:
    months = json.loads(sys.argv[1] or "[]")
except ValueError:
    months = None
month = re.compile(r"\\d{4}-(0[1-9]|1[0-2])")
if not isinstance(months, list) or not all(isinstance(m, str) and month.fullmatch(m) for m in months):
    sys.exit(f"months {sys.argv[1]!r} is not a JSON list of YYYY-MM")
if months:
    print(json.dumps(sorted(set(months))))
    sys.exit(0)
sys.exit(subprocess.call(["eval-runner", "review", "approved-months", "--latest", sys.argv[2]]))
"""


# Runs one eval-runner command and lets its stdout (a JSON value) be the step's result.
RUN_CLI = """import subprocess, sys
sys.exit(subprocess.call(["eval-runner", *sys.argv[1:]]))
"""


def labels_template() -> Container:
    """The labels the release evaluates: the candidate, then the champion it is judged against.

    Evaluating the champion on the release's months too gives the comparison two versions and the gate
    a baseline on every month; evaluations that exist are reused.
    """
    return runner_step(
        "release-labels",
        ["evaluations", "labels", "--candidate", inp("version"), "--baseline", "champion"],
        image=images.CORE_IMAGE,
        inputs=[param("version")],
        memory="512Mi",
        program=RUN_CLI,
    )


def pick_months_template() -> Container:
    """The months to judge on: the given JSON list, or the latest approved ones when it is empty."""
    return runner_step(
        "pick-months",
        [inp("months"), inp("latest-months")],
        image=images.CORE_IMAGE,
        inputs=[param("months"), param("latest-months")],
        memory="256Mi",
        program=PICK_MONTHS,
    )


def entry_dag() -> DAG:
    """Pick months, evaluate + gate the candidate, then roll out when the gate passed and rollout is on."""
    with DAG(name=ENTRY, inputs=[param(n) for n in INPUTS]) as dag:
        t_months = task(
            pick_months_template(),
            "pick-months",
            arguments={"months": inp("months"), "latest-months": inp("latest-months")},
        )
        t_labels = task(labels_template(), "labels", arguments={"version": inp("version")})
        t_evaluate = Task(
            name="evaluate",
            template_ref=m.TemplateRef(name=evaluate.NAME, template=evaluate.ENTRY),
            arguments=ref_arguments(
                evaluate.INPUTS,
                {
                    "months": t_months.get_result_as("months"),
                    "labels": t_labels.get_result_as("labels"),
                    "gate": "true",
                    "policy": inp("policy"),
                    "baseline": "champion",
                    # A release that passes the gate becomes the champion, whether or not it rolls out.
                    "promote": "true",
                    # Each release Workflow (one per GitOps entry) has its own decision, found by its name;
                    # `argo retry` of it finds that decision again instead of judging anew.
                    "release-id": "{{workflow.name}}",
                    "image-repository": images.RUNNER_REPOSITORY,
                },
                # Every month uses its current review.
                defaulted=("review-hashes",),
            ),
        )
        passed = ref_output(t_evaluate, "passed", evaluate.ENTRY_OUTPUTS)
        t_rollout = Task(
            name="rollout",
            template_ref=m.TemplateRef(name=fleet_rollout.NAME, template=fleet_rollout.ENTRY),
            when=f"{passed.value} == true && {inp('rollout')} == true",
            arguments=ref_arguments(
                fleet_rollout.INPUTS,
                {
                    # The exact release or git:<commit> the gate judged, not the release's label: a `latest`
                    # or a branch that moved since then still names the judged build. fleet prepare resolves
                    # it again and requires this release's decision to have judged that version and image
                    # digest (an image rebuilt under the same tag exits 2 instead of shipping what was not gated).
                    "version": ref_output(t_evaluate, "candidate-label", evaluate.ENTRY_OUTPUTS),
                    "release-id": "{{workflow.name}}",
                    "gate-override-reason": "",
                    "mode": inp("mode"),
                    "run-id": "",
                    "shards": inp("shards"),
                    "batch-size": default_of(fleet_rollout.ARGUMENTS, "batch-size"),
                    "apply": "false",
                    "max-error-rate": default_of(fleet_rollout.ARGUMENTS, "max-error-rate"),
                    "image-repository": images.RUNNER_REPOSITORY,
                },
            ),
        )
        t_months >> t_evaluate
        t_labels >> t_evaluate
        t_evaluate >> t_rollout
    return dag


def build() -> WorkflowTemplate:
    """The release WorkflowTemplate."""
    with WorkflowTemplate(
        name=NAME,
        entrypoint=ENTRY,
        arguments=list(ARGUMENTS),
        annotations={"workflows.argoproj.io/description": "Evaluate a candidate, gate, roll out on a pass."},
        **template_defaults(),
    ) as wt:
        entry_dag()
    return wt
