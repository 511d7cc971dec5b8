"""Resolve version labels (0.9.0, v0.9.0, latest, git:<ref>) to one library build and one runner image.

A label is what people type; a resolution is what runs. It pins the library to one wheel on the private
package index (by its sha256) or to one Git commit, picks the locked pin set ("profile") the library's
requirements fit, and derives the image tag from the pin, the eval_runner version and the runner build
context's digest: the same pin and context always map to the same image, an image that exists is never
rebuilt, and a new eval_runner (a new context) gets new images. The resolution is recorded (``versions
resolve`` writes it as JSON) so a decision can say which label meant which build.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from packaging import tags
from packaging.tags import Tag
from packaging.utils import InvalidWheelFilename, parse_wheel_filename
from packaging.version import InvalidVersion, Version

from eval_runner.errors import ConfigError
from eval_runner.git_repository import GitRepository
from eval_runner.package_index import IndexFile, PackageIndex, version_of, versions_offered, wheel_requirements
from eval_runner.runner_profiles import RunnerContext
from eval_runner.stored import RecordPart

LIBRARY = "battery-lib"
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


def image_tag(library_version: str, runner_version: str, context_digest: str) -> str:
    """Derive the runner image tag from one library pin, one eval_runner version and one build context.

    The library and runner versions are there for people; the context digest's first 12 hex digits make
    the tag change whenever what the image is built from changes (eval_runner's code, the lock, the
    Dockerfile), although eval_runner's version stays the same between commits. PEP 440 local versions
    ("+abc") become "_abc" because "+" is not allowed in a tag.
    """
    safe = [_TAG_UNSAFE.sub("_", part) for part in (library_version, runner_version)]
    tag = f"{safe[0]}-runner-{safe[1]}-{context_digest[:12]}"
    if len(tag) > 128 or tag[0] in ".-":
        raise ConfigError(f"image tag {tag!r} derived from {library_version!r} is not a valid Docker tag")
    return tag


class Resolution(RecordPart):
    """What one label resolved to: the record the workflows fan out over and decisions cite."""

    label: str
    kind: LabelKind
    library_version: str  # "0.9.0", or "git-<12 hex>" for a Git commit
    requirement: str  # for people: battery-lib==0.9.0, or battery-lib @ git+<url>@<commit>
    git_commit: str | None
    wheel: str | None  # the wheel a release installs, and its sha256 on the index
    wheel_sha256: str | None
    profile: str  # the locked pin set the library runs in (images/runner/requirements/<profile>.txt)
    context_digest: str  # the runner build context the image is built from
    lock_sha256: str
    runner_version: str
    image_tag: str
    image: str  # repository:tag as pods pull it
    resolved_at: str
    image_digest: str | None = None  # filled in when the registry was asked and has the image
    pinned_image: str | None = None  # repository@digest: what pods run, so a rebuilt tag changes nothing judged

    def with_digest(self, digest: str | None) -> Resolution:
        """Return the resolution with the registry's digest of its image (None: the image is missing)."""
        pinned = f"{self.image.rsplit(':', 1)[0]}@{digest}" if digest else None
        return self.model_copy(update={"image_digest": digest, "pinned_image": pinned})

    def require_pinned(self) -> str:
        """``repository@digest`` of the image; a ConfigError when the registry had no digest for it."""
        if self.pinned_image is None:
            raise ConfigError(f"image {self.image} of {self.label!r} has no digest yet (not built or not pushed)")
        return self.pinned_image

    @property
    def exact_label(self) -> str:
        """The label that means this pin and nothing else: the release's version, or git:<full commit>.

        A release rolls out the candidate by this label, so a ``latest`` or a branch that moved since
        the gate judged it still names the judged build.
        """
        return f"git:{self.git_commit}" if self.git_commit is not None else self.library_version

    @property
    def install(self) -> str:
        """The hashed requirement line the build step installs (empty for a Git build from source)."""
        if self.wheel_sha256 is None:
            return ""
        return f"{self.requirement} --hash=sha256:{self.wheel_sha256}"


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


def _image_tags() -> frozenset[Tag]:
    """Wheel tags the runner images accept: CPython 3.11 on manylinux x86_64, and pure Python."""
    platforms = [f"manylinux_2_{minor}_x86_64" for minor in range(36, 16, -1)] + ["linux_x86_64"]
    cpython = tags.cpython_tags(python_version=(3, 11), platforms=platforms)
    pure = tags.compatible_tags(python_version=(3, 11), interpreter="cp311", platforms=platforms)
    return frozenset([*cpython, *pure])


def wheel_for(files: Sequence[IndexFile], version: Version, where: str) -> IndexFile:
    """The wheel of ``version`` the runner images can install (runner images install wheels only)."""
    accepted = _image_tags()
    wheels = [f for f in files if f.is_wheel and version_of(f.filename, LIBRARY) == version]
    for file in wheels:
        try:
            _, _, _, file_tags = parse_wheel_filename(file.filename)
        except InvalidWheelFilename:
            continue
        if file_tags & accepted:
            return file
    names = ", ".join(f.filename for f in wheels) or "no wheel at all"
    raise ConfigError(f"{LIBRARY} {version} on {where} has no wheel for CPython 3.11 on Linux x86_64 (has: {names})")


# ---- resolution ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Resolver:
    """Resolves labels against one index, one Git repository and one runner build context."""

    index: PackageIndex
    index_url: str
    git: GitRepository | None
    context: RunnerContext
    runner_version: str
    image_repository: str

    def resolve(self, text: str, *, now: datetime | None = None) -> Resolution:
        """Resolve one label; the result names the exact pin, what the image installs, and the image."""
        label = parse_label(text)
        wheel: IndexFile | None = None
        if label.kind == "git":
            if self.git is None:
                raise ConfigError(f"version label {text!r} needs a Git URL (FLEET_EVAL_INDEX_GIT_URL) and none is set")
            commit: str | None = self.git.commit_of(label.value)
            assert commit is not None  # noqa: S101  # commit_of returns a commit or raises
            library_version = f"git-{commit[:12]}"
            requirement = f"{LIBRARY} @ git+{self.git.url}@{commit}"
            needs = self.git.requirements_at(commit)
        else:
            commit = None
            files = self.index.files(LIBRARY)
            version = pick(label, versions_offered(files, LIBRARY), self.index_url)
            wheel = wheel_for(files, version, self.index_url)
            library_version = str(version)
            requirement = f"{LIBRARY}=={version}"
            needs = wheel_requirements(self.index.read(wheel), wheel.filename)
        profile = self.context.profile_for(f"{LIBRARY} {library_version}", needs)
        tag = image_tag(library_version, self.runner_version, self.context.digest)
        return Resolution(
            label=label.text,
            kind=label.kind,
            library_version=library_version,
            requirement=requirement,
            git_commit=commit,
            wheel=wheel.filename if wheel else None,
            wheel_sha256=wheel.sha256 if wheel else None,
            profile=profile,
            context_digest=self.context.digest,
            lock_sha256=self.context.lock_sha256,
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
