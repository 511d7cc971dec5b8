"""`eval-runner review`: validate review manifests and serve the review UI for domain experts."""

from __future__ import annotations

import json
import os
import shutil
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from eval_runner.dataset.reader import load_dataset
from eval_runner.errors import ConfigError, DataError
from eval_runner.hashing import sha256_bytes
from eval_runner.keys import Month, review_csv_key
from eval_runner.review.manifest import parse_review_csv, validate_review_csv
from eval_runner.review.reader import (
    approved_months_from,
    load_review,
    load_review_meta,
    review_revisions,
    review_states,
    save_review,
)

if TYPE_CHECKING:  # cli imports this module at load time; importing cli here would be a cycle
    from eval_runner.runtime import Runtime

APP = Path(__file__).resolve().parent.parent / "review" / "app.py"


@click.group(name="review")
def group() -> None:
    """Validate review manifests and serve the review UI for domain experts."""


def _read_local(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise DataError(f"{path}: cannot read ({error.strerror})") from error


@group.command(name="validate")
@click.option("--month", "month_text", required=True, help="The month whose dataset the review applies to.")
@click.option(
    "--file",
    "path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="A local review.csv to check before submitting (default: the published review).",
)
@click.option(
    "--revision",
    type=click.IntRange(min=0),
    default=None,
    help="A revision of the published review (default: the month's current review, its newest revision).",
)
@click.pass_obj
def validate(runtime: Runtime, month_text: str, path: Path | None, revision: int | None) -> None:
    """Check a review against the month's dataset; exit 3 naming each bad line. Publishes nothing.

    The summary's ``review_hash`` (sha256 of the review.csv validated) is what `evaluate` and `gate`
    take as ``--review-hash`` to insist on exactly this review.
    """
    month = Month.parse(month_text)
    if path is not None and revision is not None:
        raise ConfigError("give --file (a local review.csv) or --revision (a published one), not both")
    store = runtime.store()
    loaded = load_dataset(store, month, with_series=False)
    ids = frozenset(loaded.dataset["sample_id"].to_list())
    if path is None:
        review = load_review(store, month, loaded.content_hash, sample_ids=ids, revision=revision)
        summary: dict[str, object] = {
            "review": review_csv_key(month, review.revision),
            "revision": review.revision,
            "review_hash": review.review_hash,
            "reviewer": review.reviewer,
            "reviewed_at": review.reviewed_at.isoformat(),
            "approved": len(review.approved),
            "rejected": len(review.rejected),
        }
        unmentioned = review.unmentioned
    else:
        data = _read_local(path)
        decisions = validate_review_csv(data, sample_ids=ids, name=str(path))
        summary = {
            "review": str(path),
            "review_hash": sha256_bytes(data),
            "approved": len(decisions.approved),
            "rejected": len(decisions.rejected),
        }
        unmentioned = decisions.unmentioned
    summary |= {"month": str(month), "dataset_hash": loaded.content_hash, "unmentioned": unmentioned}
    click.echo(json.dumps(summary, indent=2, sort_keys=True))
    if unmentioned:
        click.echo(f"note: {unmentioned} sample(s) not mentioned: they count as not approved", err=True)


@group.command(name="submit")
@click.option("--month", "month_text", required=True, help="The month whose dataset the review applies to.")
@click.option("--file", "path", required=True, type=click.Path(path_type=Path, dir_okay=False), help="review.csv")
@click.option("--reviewer", required=True, help="Who reviewed (recorded in review.json).")
@click.pass_obj
def submit(runtime: Runtime, month_text: str, path: Path, reviewer: str) -> None:
    """Validate a local review.csv and publish it with its review.json; nothing is written if invalid."""
    month = Month.parse(month_text)
    store = runtime.store()
    loaded = load_dataset(store, month, with_series=False)
    ids = frozenset(loaded.dataset["sample_id"].to_list())
    decisions = parse_review_csv(_read_local(path), sample_ids=ids, name=str(path))
    review = save_review(
        store,
        month,
        decisions,
        reviewer=reviewer,
        reviewed_at=datetime.now(UTC),
        dataset_hash=loaded.content_hash,
        sample_ids=ids,
    )
    click.echo(
        f"saved review of {month} by {review.reviewer} as revision {review.revision} "
        f"(review hash {review.review_hash}): {len(review.approved)} approved, "
        f"{len(review.rejected)} rejected, {review.unmentioned} unmentioned (not approved)"
    )


@group.command(name="history")
@click.option("--month", "month_text", required=True, help="The month whose review revisions to list.")
@click.pass_obj
def history(runtime: Runtime, month_text: str) -> None:
    """Print a JSON list of the month's review revisions, oldest first; the last one is the current review."""
    month = Month.parse(month_text)
    store = runtime.store()
    revisions = review_revisions(store, month)
    rows = []
    for number in revisions:
        meta = load_review_meta(store, month, number)
        rows.append(
            {
                "revision": number,
                "review_hash": meta.review_csv_sha256,
                "dataset_hash": meta.dataset_hash,
                "reviewer": meta.reviewer,
                "reviewed_at": meta.reviewed_at.isoformat(),
                "approved": meta.approved,
                "rejected": meta.rejected,
                "current": number == revisions[-1],
            }
        )
    click.echo(json.dumps(rows, indent=2))


@group.command(name="approved-months")
@click.option("--latest", type=int, default=3, show_default=True, help="How many of the newest approved months.")
@click.pass_obj
def approved_months_command(runtime: Runtime, latest: int) -> None:
    """Print a JSON list of the newest months with a valid review (what `release` evaluates on).

    Months left out, and why (no review, a review of an older dataset build, nothing approved), go to
    stderr; a run with no approved month exits 3.
    """
    states = review_states(runtime.store())
    for state in states:
        if state.reason is not None:
            click.echo(f"skipping {state.month}: {state.reason}", err=True)
    months = approved_months_from(states, latest=latest)
    if not months:
        raise DataError("no published month has a valid review that approves a sample; review a month first")
    click.echo(json.dumps([str(month) for month in months]))


@group.command(name="serve", context_settings={"ignore_unknown_options": True})
@click.option("--port", default=8501, show_default=True, type=int)
@click.option("--address", default="0.0.0.0", show_default=True, help="Listen address.")  # noqa: S104
@click.argument("streamlit_args", nargs=-1, type=click.UNPROCESSED)
def serve(port: int, address: str, streamlit_args: tuple[str, ...]) -> None:
    """Start the review UI (Streamlit); S3 settings come from the same FLEET_EVAL_S3_* variables."""
    if shutil.which("streamlit") is None and not _has_streamlit():
        raise ConfigError("the review UI needs streamlit: install fleet-eval[review]")
    command = [
        sys.executable, "-m", "streamlit", "run", str(APP),
        "--server.port", str(port), "--server.address", address,
        "--server.headless", "true", "--browser.gatherUsageStats", "false",
        *streamlit_args,
    ]  # fmt: skip
    # exec, not a child process: the server itself then gets the pod's (or a test's) SIGTERM; a child
    # outlived its terminated parent, and every stopped `review serve` left a Streamlit server running.
    os.execve(sys.executable, command, os.environ.copy())  # noqa: S606  # a fixed argv, no shell involved


def _has_streamlit() -> bool:
    try:
        import streamlit  # noqa: F401
    except ImportError:
        return False
    return True


# What cli.py registers from this module (top-level commands and groups).
commands: tuple[click.Command, ...] = (group,)
