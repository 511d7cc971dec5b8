"""dataset-build: extract and publish one month's dataset, then wait for the domain experts' review.

The workflow suspends after publishing; reviewers approve or reject samples in the review UI, which
saves a new review revision (review.csv/json), and someone resumes the workflow (Argo UI "Resume" or
``argo resume``). The validate step then proves the month's current review covers exactly the published
dataset and outputs its ``review_hash``, which evaluate takes as ``review-hashes`` to insist on that
very review. A monthly CronWorkflow runs it for the previous month.
"""

from __future__ import annotations

from hera.workflows import DAG, Container, CronWorkflow, Suspend, WorkflowTemplate
from hera.workflows import models as m

from workflows import images
from workflows.common import (
    RUNNER_PULL_POLICY,
    Needs,
    arg,
    container_security,
    inp,
    param,
    runner_step,
    task,
    template_defaults,
)

NAME = "dataset-build"
CRON_NAME = "dataset-build-monthly"

# "previous" is resolved once, when the workflow starts, so a review that is resumed after the month
# turns still validates the month that was built.
PICK_MONTH = """import datetime, re, sys
month = sys.argv[1]
if month == "previous":
    first = datetime.datetime.now(datetime.UTC).date().replace(day=1)
    month = (first - datetime.timedelta(days=1)).strftime("%Y-%m")
if not re.fullmatch(r"\\d{4}-(0[1-9]|1[0-2])", month):
    sys.exit(f"month {month!r} is not YYYY-MM or 'previous'")
print(month)
"""


def build() -> WorkflowTemplate:
    """The dataset-build WorkflowTemplate."""
    with WorkflowTemplate(
        name=NAME,
        entrypoint=NAME,
        arguments=[arg("month", "previous", "YYYY-MM, or 'previous' for the month before this one")],
        annotations={"workflows.argoproj.io/description": "Build a month's dataset, then wait for its review."},
        **template_defaults(),
    ) as wt:
        extract = runner_step(
            "build-dataset",
            ["dataset", "build", "--month", inp("month")],
            image=images.CORE_IMAGE,
            inputs=[param("month")],
            needs=(Needs.POSTGRES, Needs.SHARDS),
            summary_keys=("manifest", "content_hash", "rows"),
            memory="2Gi",
            # One build of a month at a time (a CronWorkflow run and a manual submit may overlap); the
            # conditional writes in storage.py make a second publisher fail with exit 3 even without it.
            synchronization=m.Synchronization(mutexes=[m.Mutex(name="dataset-build-" + inp("month"))]),
        )
        pick_month = Container(
            name="pick-month",
            image=images.CORE_IMAGE,
            image_pull_policy=RUNNER_PULL_POLICY,
            command=["python", "-c", PICK_MONTH],
            args=[inp("month")],
            inputs=[param("month")],
            security_context=container_security(),
        )
        await_review = Suspend(
            name="await-review",
            # What the resuming person may note; the reviewer's identity is recorded by the review UI.
            intermediate_parameters=[param("note", "", "optional note shown on this node")],
        )
        validate = runner_step(
            "validate-review",
            ["review", "validate", "--month", inp("month")],
            image=images.CORE_IMAGE,
            inputs=[param("month")],
            summary_keys=(
                "reviewer",
                "reviewed_at",
                "approved",
                "rejected",
                "unmentioned",
                "dataset_hash",
                "review_hash",
                "revision",
            ),
        )
        with DAG(name=NAME, inputs=[param("month")]):
            t_month = task(pick_month, "pick-month", arguments={"month": inp("month")})
            month = t_month.get_result_as("month").value
            t_build = task(extract, "build", arguments={"month": month})
            t_wait = task(await_review, "await-review")
            t_validate = task(validate, "validate-review", arguments={"month": month})
            t_month >> t_build
            t_build >> t_wait
            t_wait >> t_validate
    return wt


def build_cron() -> CronWorkflow:
    """The monthly CronWorkflow: the previous month's dataset, on the 2nd at 03:00 UTC."""
    return CronWorkflow(
        name=CRON_NAME,
        schedules=["0 3 2 * *"],
        timezone="UTC",
        # A month is built once at a time; a missed run within a day still starts.
        concurrency_policy="Forbid",
        starting_deadline_seconds=24 * 3600,
        successful_jobs_history_limit=3,
        failed_jobs_history_limit=3,
        labels=template_defaults()["labels"],
        workflow_template_ref=m.WorkflowTemplateRef(name=NAME),
        arguments=[arg("month", "previous")],
    )
