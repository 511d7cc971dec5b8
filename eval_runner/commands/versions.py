"""`eval-runner versions`: resolve version labels (0.9.0, v0.9.0, latest, git:<ref>) to pins and images."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click
import httpx

from eval_runner import __version__
from eval_runner.runtime import Runtime, pass_runtime
from eval_runner.versions import LsRemote, Resolution, Resolver, SimpleIndex, image_digest, split_labels


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
@pass_runtime
def resolve(
    runtime: Runtime,
    labels: tuple[str, ...],
    image_repository: str,
    registry_url: str | None,
    registry_repository: str | None,
    output_dir: Path | None,
) -> None:
    """Resolve labels against the package index or Git and record what each one means.

    Prints the resolutions as a JSON list. With --registry-url, also lists the resolutions whose
    image is not in the registry yet: the evaluate workflow builds exactly those.
    """
    resolutions, missing, summary = resolve_labels(
        runtime, labels, image_repository, registry_url=registry_url, registry_repository=registry_repository
    )
    if output_dir is not None:
        write_outputs(output_dir, resolutions, missing, summary)
    click.echo(json.dumps([r.model_dump(mode="json") for r in resolutions], indent=2, sort_keys=True))


def resolve_labels(
    runtime: Runtime,
    labels: tuple[str, ...],
    image_repository: str,
    *,
    registry_url: str | None,
    registry_repository: str | None,
) -> tuple[list[Resolution], list[Resolution], dict[str, object]]:
    """Resolve ``labels``; with a registry URL, also the resolutions whose image is missing there.

    Returns (resolutions, missing, summary). `fleet prepare` calls this too, in the same pod as its
    snapshot and plan.
    """
    started = time.monotonic()
    settings = runtime.index_settings()
    with httpx.Client(timeout=10.0) as client:
        resolver = Resolver(
            index=SimpleIndex(client, settings.url),
            index_url=settings.url,
            git=LsRemote(settings.git_url) if settings.git_url else None,
            git_url=settings.git_url,
            runner_version=__version__,
            image_repository=image_repository,
        )
        resolutions = resolver.resolve_all(split_labels(labels))
        missing = []
        if registry_url is not None:
            repository = registry_repository or image_repository.split("/", 1)[-1]
            resolutions = [
                r.model_copy(update={"image_digest": image_digest(client, registry_url, repository, r.image_tag)})
                for r in resolutions
            ]
            missing = [r for r in resolutions if r.image_digest is None]
    summary: dict[str, object] = {
        "labels": len(resolutions),
        "resolved": {r.label: r.library_version for r in resolutions},
        "images_missing": len(missing),
        "errors": 0,
        "duration_seconds": round(time.monotonic() - started, 3),
    }
    return resolutions, missing, summary


def write_outputs(
    output_dir: Path, resolutions: list[Resolution], missing: list[Resolution], summary: dict[str, object]
) -> None:
    """Write one file per Argo output parameter; the first label's pin also gets scalar files."""
    output_dir.mkdir(parents=True, exist_ok=True)
    files = {
        "resolutions.json": json.dumps([r.model_dump(mode="json") for r in resolutions], sort_keys=True),
        "missing.json": json.dumps([r.model_dump(mode="json") for r in missing], sort_keys=True),
        "library_versions.json": json.dumps([r.library_version for r in resolutions]),
        # The first label is the candidate of a gate and the version of a fleet rollout.
        "image.txt": resolutions[0].image,
        "library_version.txt": resolutions[0].library_version,
        "summary.json": json.dumps(summary, sort_keys=True, default=str),
    }
    for name, text in files.items():
        (output_dir / name).write_text(text)


# What cli.py registers from this module (top-level commands and groups).
commands: tuple[click.Command, ...] = (group,)
