"""Resolve version labels (0.9.0, v0.9.0, latest, git:<ref>) to one library version and one image tag.

A label is what people type; a resolution is what runs. The resolution pins the library to an exact
release on the private package index (PEP 503 simple API) or to a Git commit, and derives the runner
image tag from that pin plus the eval_runner version, so the same pin always maps to the same image and
an image that exists is never rebuilt. The resolution is recorded (the ``versions resolve`` command
writes it as JSON) so a decision can say which label meant which build.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Literal, Protocol

import httpx
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version
from pydantic import BaseModel, ConfigDict

from eval_runner.errors import ConfigError, DataError, TransientError
from eval_runner.retry import retry_transient

LIBRARY = "battery-lib"
_GIT_SHA = re.compile(r"^[0-9a-f]{40}$")
_GIT_REF = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]*$")
# Docker's tag grammar: [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}.
_TAG_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")

LabelKind = Literal["release", "latest", "git"]


@dataclass(frozen=True)
class VersionLabel:
    """A parsed label: an exact release, the newest release, or a Git ref."""

    kind: LabelKind
    value: str  # the normalised release version, "latest", or the Git ref
    text: str  # what the user typed, kept for the record


def parse_label(text: str) -> VersionLabel:
    """Parse ``0.9.0``, ``v0.9.0``, ``latest`` or ``git:<ref>``; anything else is a ConfigError."""
    raw = text.strip()
    if raw == "latest":
        return VersionLabel("latest", "latest", raw)
    if raw.startswith("git:"):
        ref = raw.removeprefix("git:")
        if not _GIT_REF.match(ref) or ".." in ref:
            raise ConfigError(f"version label {text!r}: Git ref {ref!r} is empty or has characters refs cannot have")
        return VersionLabel("git", ref, raw)
    candidate = raw[1:] if raw[:1] in {"v", "V"} else raw
    try:
        return VersionLabel("release", str(Version(candidate)), raw)
    except InvalidVersion as error:
        raise ConfigError(
            f"version label {text!r} is not a release version (0.9.0 or v0.9.0), 'latest' or 'git:<ref>'"
        ) from error


def image_tag(library_version: str, runner_version: str) -> str:
    """Derive the runner image tag from one library pin and one eval_runner version.

    Both parts appear in the tag so a new eval_runner release gets new images while an existing
    (library, runner) pair always maps to the tag that was built before. PEP 440 local versions
    ("+abc") become "_abc" because "+" is not allowed in a tag.
    """
    tag = f"{_TAG_UNSAFE.sub('_', library_version)}-runner-{_TAG_UNSAFE.sub('_', runner_version)}"
    if len(tag) > 128 or tag[0] in ".-":
        raise ConfigError(f"image tag {tag!r} derived from {library_version!r} is not a valid Docker tag")
    return tag


class Resolution(BaseModel):
    """What one label resolved to: the record the evaluate workflow fans out over and decisions cite."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    label: str
    kind: LabelKind
    library_version: str  # "0.9.0", or "git-<12 hex>" for a Git commit
    requirement: str  # what pip installs in the runner image
    git_commit: str | None
    runner_version: str
    image_tag: str
    image: str  # repository:tag as pods pull it
    resolved_at: str
    image_digest: str | None = None  # filled in when the registry was asked and has the image


# ---- the package index (PEP 503) ---------------------------------------------------------------


class _Anchors(HTMLParser):
    """Collects (filename, yanked) from the anchors of a PEP 503 project page."""

    def __init__(self) -> None:
        super().__init__()
        self.files: list[tuple[str, bool]] = []
        self._yanked = False
        self._inside = False
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._inside, self._text = True, []
            self._yanked = any(name == "data-yanked" for name, _ in attrs)

    def handle_data(self, data: str) -> None:
        if self._inside:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._inside:
            self._inside = False
            self.files.append(("".join(self._text).strip(), self._yanked))


def versions_in_page(html: str, project: str = LIBRARY) -> dict[Version, bool]:
    """Map every version offered on a PEP 503 page to whether all its files are yanked."""
    parser = _Anchors()
    parser.feed(html)
    prefix = canonicalize_name(project).replace("-", "_")
    found: dict[Version, bool] = {}
    for filename, yanked in parser.files:
        version = _version_of(filename, prefix)
        if version is not None:
            found[version] = found.get(version, True) and yanked
    return found


def _version_of(filename: str, prefix: str) -> Version | None:
    # Wheels are name-version-...whl; sdists name-version.tar.gz. Names are normalised with _ or -.
    for suffix in (".whl", ".tar.gz", ".zip"):
        if filename.endswith(suffix):
            stem = filename.removesuffix(suffix)
            break
    else:
        return None
    normalised = stem.replace("-", "_").lower()
    if not normalised.startswith(prefix + "_"):
        return None
    rest = stem[len(prefix) + 1 :]
    text = rest.split("-")[0] if suffix == ".whl" else rest
    try:
        return Version(text)
    except InvalidVersion:
        return None


class PackageIndex(Protocol):
    """Lists the versions of one project on an index."""

    def versions(self, project: str) -> dict[Version, bool]:
        """Every version offered, mapped to whether it is yanked."""
        ...


class SimpleIndex:
    """A PEP 503 simple index over HTTP (pypiserver in tests and in the cluster)."""

    def __init__(self, client: httpx.Client, url: str) -> None:
        self._client = client
        self._url = url.rstrip("/") + "/"

    def versions(self, project: str) -> dict[Version, bool]:
        """Fetch the project page; network trouble is transient, a missing project a ConfigError."""
        page = f"{self._url}{canonicalize_name(project)}/"

        def fetch() -> httpx.Response:
            try:
                response = self._client.get(page, follow_redirects=True)
            except httpx.HTTPError as error:
                raise TransientError(f"package index {page}: {error}") from error
            if response.status_code >= 500 or response.status_code == 429:
                raise TransientError(f"package index {page}: HTTP {response.status_code}")
            return response

        response = retry_transient(fetch, what=f"GET {page}")
        if response.status_code == 404:
            raise ConfigError(f"package index {self._url} has no project {project!r} (GET {page} was 404)")
        if response.status_code != 200:
            raise ConfigError(f"package index {page}: expected HTTP 200, got {response.status_code}")
        return versions_in_page(response.text, project)


def pick(label: VersionLabel, offered: dict[Version, bool], where: str) -> Version:
    """Choose the version a release or ``latest`` label means among those offered."""
    if label.kind == "release":
        wanted = Version(label.value)
        if wanted not in offered:
            known = ", ".join(str(v) for v in sorted(offered)) or "none"
            raise ConfigError(f"version label {label.text!r}: {LIBRARY} {wanted} is not on {where} (has: {known})")
        return wanted
    # "latest" means the newest final release: pre-releases and yanked files are opt-in by exact label.
    finals = [v for v, yanked in offered.items() if not yanked and not v.is_prerelease and not v.is_devrelease]
    if not finals:
        raise ConfigError(f"version label 'latest': {where} offers no final, unyanked {LIBRARY} release")
    return max(finals)


# ---- Git -----------------------------------------------------------------------------------------


class GitRemote(Protocol):
    """Turns a ref into a commit."""

    def commit_of(self, ref: str) -> str:
        """Return the 40-hex commit a ref points to."""
        ...


class LsRemote:
    """Resolves refs with ``git ls-remote`` against the library's repository."""

    def __init__(self, url: str, timeout: float = 30.0) -> None:
        self._url = url
        self._timeout = timeout

    def commit_of(self, ref: str) -> str:
        """Resolve a branch or tag (peeled) to a commit; a full commit hash is taken as is."""
        if _GIT_SHA.match(ref):
            return ref
        try:
            done = subprocess.run(
                ["git", "ls-remote", "--", self._url, ref, f"{ref}^{{}}"],
                capture_output=True,
                text=True,
                timeout=self._timeout,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as error:
            raise TransientError(f"git ls-remote {self._url} {ref}: {error}") from error
        if done.returncode != 0:
            raise TransientError(f"git ls-remote {self._url} {ref} failed: {done.stderr.strip()}")
        lines = [line.split("\t") for line in done.stdout.splitlines() if "\t" in line]
        # An annotated tag lists the tag object and the peeled commit (^{}); the commit is what we pin.
        peeled = [sha for sha, name in lines if name.endswith("^{}")]
        commits = peeled or [sha for sha, _ in lines]
        if not commits:
            raise ConfigError(f"git ref {ref!r} does not exist in {self._url}")
        return commits[0]


# ---- resolution ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Resolver:
    """Resolves labels against one index and one Git remote for one eval_runner version."""

    index: PackageIndex
    index_url: str
    git: GitRemote | None
    git_url: str | None
    runner_version: str
    image_repository: str

    def resolve(self, text: str, *, now: datetime | None = None) -> Resolution:
        """Resolve one label; the result names the exact pin, the pip requirement and the image."""
        label = parse_label(text)
        commit: str | None = None
        if label.kind == "git":
            if self.git is None or self.git_url is None:
                raise ConfigError(f"version label {text!r} needs a Git URL (FLEET_EVAL_INDEX_GIT_URL) and none is set")
            commit = self.git.commit_of(label.value)
            library_version = f"git-{commit[:12]}"
            requirement = f"{LIBRARY} @ git+{self.git_url}@{commit}"
        else:
            version = pick(label, self.index.versions(LIBRARY), self.index_url)
            library_version = str(version)
            requirement = f"{LIBRARY}=={version}"
        tag = image_tag(library_version, self.runner_version)
        return Resolution(
            label=label.text,
            kind=label.kind,
            library_version=library_version,
            requirement=requirement,
            git_commit=commit,
            runner_version=self.runner_version,
            image_tag=tag,
            image=f"{self.image_repository}:{tag}",
            resolved_at=(now or datetime.now(UTC)).isoformat(timespec="seconds"),
        )

    def resolve_all(self, labels: Iterable[str]) -> list[Resolution]:
        """Resolve several labels; two labels meaning the same pin yield one entry (the first label)."""
        seen: dict[str, Resolution] = {}
        for text in labels:
            resolution = self.resolve(text)
            seen.setdefault(resolution.library_version, resolution)
        if not seen:
            raise ConfigError("no version labels given")
        return list(seen.values())


def split_labels(values: Sequence[str]) -> list[str]:
    """Accept labels as repeated options, comma-separated text or a JSON list (as Argo passes them)."""
    labels: list[str] = []
    for value in values:
        text = value.strip()
        if text.startswith("["):
            try:
                items = json.loads(text)
            except json.JSONDecodeError as error:
                raise ConfigError(f"version labels {text!r} look like JSON but do not parse: {error}") from error
            if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
                raise ConfigError(f"version labels {text!r} must be a JSON list of strings")
            labels.extend(i.strip() for i in items)
        else:
            labels.extend(part.strip() for part in text.split(","))
    return [label for label in labels if label]


# ---- the registry: does the image exist? ----------------------------------------------------------


def image_digest(client: httpx.Client, registry_url: str, repository: str, tag: str) -> str | None:
    """Ask a Docker registry (HTTP API v2) for the digest of ``repository:tag``; None when it is missing."""
    url = f"{registry_url.rstrip('/')}/v2/{repository}/manifests/{tag}"
    accept = ", ".join(
        (
            "application/vnd.oci.image.index.v1+json",
            "application/vnd.oci.image.manifest.v1+json",
            "application/vnd.docker.distribution.manifest.list.v2+json",
            "application/vnd.docker.distribution.manifest.v2+json",
        )
    )

    def head() -> str | None:
        try:
            response = client.head(url, headers={"Accept": accept})
        except httpx.HTTPError as error:
            raise TransientError(f"registry {url}: {error}") from error
        if response.status_code == 200:
            return str(response.headers.get("Docker-Content-Digest", ""))
        if response.status_code == 404:
            return None
        if response.status_code >= 500 or response.status_code == 429:
            raise TransientError(f"registry {url}: HTTP {response.status_code}")
        raise DataError(f"registry {url}: expected 200 or 404, got HTTP {response.status_code}")

    return retry_transient(head, what=f"HEAD {url}")


def image_exists(client: httpx.Client, registry_url: str, repository: str, tag: str) -> bool:
    """Whether ``repository:tag`` has a manifest in the registry."""
    return image_digest(client, registry_url, repository, tag) is not None
