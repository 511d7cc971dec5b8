"""`eval-runner versions`: resolve version labels (0.9.0, v0.9.0, latest, git:<ref>) to pins and images."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path

import click
import httpx
from pydantic import TypeAdapter, ValidationError

from eval_runner import __version__
from eval_runner.errors import ConfigError, DataError
from eval_runner.git_repository import GitRepository
from eval_runner.package_index import SimpleIndex
from eval_runner.registry import image_digest
from eval_runner.resolution import Resolution, Resolver, split_labels
from eval_runner.runner_profiles import DEFAULT_CONTEXT, RunnerContext
from eval_runner.runtime import Runtime, pass_runtime

RESOLUTIONS = TypeAdapter(list[Resolution])
# Where a Git label's source tree is written for the build step (one folder per library version).
LIBRARY_SOURCES = "library-src"


@click.group(name="versions")
def group() -> None:
    """Resolve version labels (0.9.0, v0.9.0, latest, git:<ref>) to library versions and image tags."""


@group.command(name="resolve")
@click.option(
    "--label",
    "labels",
    multiple=True,
    required=True,
    help="A version label; repeat it, separate with commas, or pass a JSON list.",
)
@click.option(
    "--image-repository",
    required=True,
    help="Repository pods pull runner images from, e.g. localhost:5001/fleet-eval/runner.",
)
@click.option(
    "--registry-url",
    default=None,
    help="Registry HTTP API base (e.g. http://kind-registry:5000): list images that are missing.",
)
@click.option(
    "--registry-repository",
    default=None,
    help="Repository name inside that registry (default: --image-repository without its host).",
)
@click.option(
    "--output-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Write resolutions.json, missing.json, summary.json, ... here (Argo output parameters).",
)
@click.option(
    "--runner-context",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_CONTEXT,
    show_default=True,
    help="Runner build context (scripts/build/runner_context.py); its digest is part of every image tag.",
)
@pass_runtime
def resolve(
    runtime: Runtime,
    labels: tuple[str, ...],
    image_repository: str,
    registry_url: str | None,
    registry_repository: str | None,
    output_dir: Path | None,
    runner_context: Path,
) -> None:
    """Resolve labels against the package index or Git and record what each one means.

    Prints the resolutions as a JSON list. With --registry-url, also lists the resolutions whose
    image is not in the registry yet: the evaluate workflow builds exactly those. A Git label's source
    tree goes to OUTPUT_DIR/library-src/<library version>/ for that build.
    """
    resolutions, missing, summary = resolve_labels(
        runtime,
        labels,
        image_repository,
        registry_url=registry_url,
        registry_repository=registry_repository,
        runner_context=runner_context,
        sources_dir=output_dir / LIBRARY_SOURCES if output_dir is not None else None,
    )
    if output_dir is not None:
        write_outputs(output_dir, resolutions, missing, summary)
    click.echo(json.dumps([r.model_dump(mode="json") for r in resolutions], indent=2, sort_keys=True))


def resolve_labels(
    runtime: Runtime,
    labels: Sequence[str],
    image_repository: str,
    *,
    registry_url: str | None,
    registry_repository: str | None,
    runner_context: Path = DEFAULT_CONTEXT,
    sources_dir: Path | None = None,
) -> tuple[list[Resolution], list[Resolution], dict[str, object]]:
    """Resolve ``labels``; with a registry URL, also the resolutions whose image is missing there.

    Returns (resolutions, missing, summary). `fleet prepare` calls this too, in the same pod as its
    snapshot and plan. With ``sources_dir``, the tree of every missing Git build is exported there.
    """
    started = time.monotonic()
    settings = runtime.index_settings()
    context = RunnerContext.load(runner_context)
    git = GitRepository(settings.git_url) if settings.git_url else None
    with httpx.Client(timeout=10.0) as client:
        resolver = Resolver(
            index=SimpleIndex(client, settings.url),
            index_url=settings.url,
            git=git,
            context=context,
            runner_version=__version__,
            image_repository=image_repository,
        )
        resolutions = resolver.resolve_all(split_labels(labels))
        missing: list[Resolution] = []
        if registry_url is not None:
            repository = registry_repository or image_repository.split("/", 1)[-1]
            resolutions = [
                r.with_digest(image_digest(client, registry_url, repository, r.image_tag)) for r in resolutions
            ]
            missing = [r for r in resolutions if r.image_digest is None]
    if sources_dir is not None:
        sources_dir.mkdir(parents=True, exist_ok=True)  # an empty folder still makes a valid artifact
        for resolution in missing:
            if resolution.git_commit is not None and git is not None:
                git.export(resolution.git_commit, sources_dir / resolution.library_version)
    summary: dict[str, object] = {
        "labels": len(resolutions),
        "resolved": {r.label: r.library_version for r in resolutions},
        "images_missing": len(missing),
        "errors": 0,
        "duration_seconds": round(time.monotonic() - started, 3),
    }
    return resolutions, missing, summary


def _evaluation_item(r: Resolution) -> dict[str, str]:
    """One item of evaluate's fan-out: small, since Argo names each node after its item."""
    return {
        "label": r.label,
        "version": r.library_version,
        "image": r.pinned_image or r.image,
        "digest": r.image_digest or "",
    }


def write_outputs(
    output_dir: Path, resolutions: list[Resolution], missing: list[Resolution], summary: dict[str, object]
) -> None:
    """Write one file per Argo output parameter; the first label's pin also gets scalar files."""
    output_dir.mkdir(parents=True, exist_ok=True)
    files = {
        "resolutions.json": json.dumps([r.model_dump(mode="json") for r in resolutions], sort_keys=True),
        # What the build step fans out over: each missing image, with the hashed line it installs.
        "missing.json": json.dumps(
            [{**r.model_dump(mode="json"), "install": r.install} for r in missing], sort_keys=True
        ),
        "library_versions.json": json.dumps([r.library_version for r in resolutions]),
        # What evaluation pods fan out over: small items, since Argo names each node after its item.
        "evaluations.json": json.dumps([_evaluation_item(r) for r in resolutions]),
        # The first label is the candidate of a gate and the version of a fleet rollout.
        "image.txt": resolutions[0].pinned_image or resolutions[0].image,
        "library_version.txt": resolutions[0].library_version,
        "exact_label.txt": resolutions[0].exact_label,
        "summary.json": json.dumps(summary, sort_keys=True, default=str),
    }
    for name, text in files.items():
        (output_dir / name).write_text(text)


@group.command(name="pin")
@click.option("--resolutions", "resolutions_json", required=True, help="The JSON list `versions resolve` wrote.")
@click.option("--registry-url", required=True, help="Registry HTTP API base, e.g. http://kind-registry:5000.")
@click.option("--registry-repository", required=True, help="Repository name inside that registry.")
@click.option(
    "--output-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Write resolutions.json, summary.json, ... here (Argo output parameters).",
)
def pin(resolutions_json: str, registry_url: str, registry_repository: str, output_dir: Path | None) -> None:
    """Record the digest of every resolved image, now that the missing ones are built.

    Labels are not resolved again (``latest`` could move between the two steps): the same resolutions
    get the digests the registry serves for their tags; an image still missing is a DataError.
    """
    started = time.monotonic()
    try:
        resolutions = RESOLUTIONS.validate_json(resolutions_json)
    except ValidationError as error:
        raise ConfigError(f"--resolutions is not a list of resolutions: {error}") from error
    if not resolutions:
        raise ConfigError("--resolutions is empty")
    pinned: list[Resolution] = []
    with httpx.Client(timeout=10.0) as client:
        for resolution in resolutions:
            digest = image_digest(client, registry_url, registry_repository, resolution.image_tag)
            if digest is None:
                raise DataError(
                    f"image {resolution.image} of label {resolution.label!r} is not in {registry_url} "
                    "after the build step; see the build-image node's log"
                )
            pinned.append(resolution.with_digest(digest))
    summary: dict[str, object] = {
        "labels": len(pinned),
        "images": {r.library_version: r.require_pinned() for r in pinned},
        "errors": 0,
        "duration_seconds": round(time.monotonic() - started, 3),
    }
    if output_dir is not None:
        write_outputs(output_dir, pinned, [], summary)
    click.echo(json.dumps([r.model_dump(mode="json") for r in pinned], indent=2, sort_keys=True))


# What cli.py registers from this module (top-level commands and groups).
commands: tuple[click.Command, ...] = (group,)
