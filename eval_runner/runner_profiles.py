"""The runner build context and its pin sets ("profiles"): which locked environment a library fits.

Every runner image is built from one context (see images/runner/Dockerfile); its requirement files are
exports of uv.lock with hashes. A library version runs in the first profile whose pins satisfy all of
its own requirements, so its image installs nothing unlocked; a library no profile satisfies is refused
before anything is built, with the requirement that failed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from eval_runner.errors import ConfigError

# Profiles a library runner may take, in order of preference (the newest dependencies first). The core
# profile carries the review UI and is for the core image only.
LIBRARY_PROFILES = ("runtime", "runtime-numpy1")
# Where the core image carries its own context (images/runner/Dockerfile, target core).
DEFAULT_CONTEXT = Path("/opt/fleet-eval/runner-context")
# Environment markers of the runner images: CPython 3.11 on Linux x86_64 (the cluster's Python base).
IMAGE_ENVIRONMENT: Mapping[str, str] = {
    "python_version": "3.11",
    "python_full_version": "3.11.2",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "platform_machine": "x86_64",
    "os_name": "posix",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
    "extra": "",
}
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)\s*(?:;\s*([^\\]+?))?\s*(?:\\|$)")


def pins_of(requirements: str, environment: Mapping[str, str] = IMAGE_ENVIRONMENT) -> dict[str, Version]:
    """Exact pins of a hashed requirements file (``name==version ; marker``) that apply to ``environment``."""
    pins: dict[str, Version] = {}
    for line in requirements.splitlines():
        match = _PIN.match(line.strip())
        if match is None:
            continue
        name, version, marker = match.groups()
        if marker and not Marker(marker).evaluate(dict(environment)):
            continue
        pins[canonicalize_name(name)] = Version(version)
    return pins


@dataclass(frozen=True)
class RunnerContext:
    """The build context every runner image is built from: its digest and its profiles' pins."""

    digest: str
    lock_sha256: str
    profiles: Mapping[str, Mapping[str, Version]]

    @classmethod
    def load(cls, root: Path) -> RunnerContext:
        """Read a context directory (scripts/build/runner_context.py writes it; the core image carries it)."""
        try:
            digest = (root / "CONTEXT_DIGEST").read_text().strip()
            lock = (root / "LOCK_SHA256").read_text().strip()
            profiles = {p.stem: pins_of(p.read_text()) for p in sorted((root / "requirements").glob("*.txt"))}
        except OSError as error:
            raise ConfigError(f"runner build context {root} is incomplete ({error})") from error
        if not re.fullmatch(r"[0-9a-f]{64}", digest):
            raise ConfigError(f"runner build context {root}: CONTEXT_DIGEST {digest!r} is not a sha256")
        missing = [p for p in LIBRARY_PROFILES if p not in profiles]
        if missing:
            raise ConfigError(f"runner build context {root} lacks the profiles {missing}")
        return cls(digest=digest, lock_sha256=lock, profiles=profiles)

    def profile_for(self, library: str, requirements: Iterable[Requirement]) -> str:
        """The first library profile whose pins satisfy every requirement that applies to the images."""
        needed = [r for r in requirements if r.marker is None or r.marker.evaluate(dict(IMAGE_ENVIRONMENT))]
        problems: list[str] = []
        for profile in LIBRARY_PROFILES:
            pins = self.profiles[profile]
            unmet = [_unmet(r, pins) for r in needed]
            failures = [u for u in unmet if u]
            if not failures:
                return profile
            problems.append(f"{profile}: {'; '.join(failures)}")
        raise ConfigError(
            f"{library} cannot run in any runner profile (its requirements must be met by uv.lock's pins, "
            f"exported to images/runner/requirements/): {' | '.join(problems)}"
        )


def _unmet(requirement: Requirement, pins: Mapping[str, Version]) -> str:
    name = canonicalize_name(requirement.name)
    pinned = pins.get(name)
    if pinned is None:
        return f"{requirement} is not in the lock"
    if not requirement.specifier.contains(pinned, prereleases=True):
        return f"{requirement} but the lock pins {name} {pinned}"
    return ""
