"""The tests' private package index: battery-lib wheels served by pypiserver, and a Git repository of it.

Wheels are built from demo/battery-lib/<version>; the Git repository has one tagged commit per version.

Wheels are cached under $FLEET_EVAL_CACHE/battery-lib-wheels keyed by a digest of each source tree;
hatchling builds reproducibly, so an unchanged tree always gives the same wheel bytes (and hash).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tests.services.process import CACHE, REPO, ManagedProcess, free_port, port_open, require_binary

LIBRARY_ROOT = REPO / "demo" / "battery-lib"
_GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "fleet-eval demo",
    "GIT_AUTHOR_EMAIL": "demo@fleet-eval.invalid",
    "GIT_COMMITTER_NAME": "fleet-eval demo",
    "GIT_COMMITTER_EMAIL": "demo@fleet-eval.invalid",
}


def library_versions() -> list[str]:
    """The demo versions in release order (0.6.0, 0.8.0, 0.9.0, 0.10.0)."""
    found = [p.name for p in LIBRARY_ROOT.iterdir() if (p / "pyproject.toml").is_file()]
    return sorted(found, key=lambda v: tuple(int(part) for part in v.split(".")))


def source_digest(version: str) -> str:
    """SHA-256 over the relative paths and bytes of one version's source tree (caches are keyed by it)."""
    root = LIBRARY_ROOT / version
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def build_wheel(version: str) -> Path:
    """The wheel of ``version``, built with ``uv build`` once per source digest."""
    cache = CACHE / "battery-lib-wheels" / f"{version}-{source_digest(version)[:16]}"
    wheels = sorted(cache.glob("*.whl")) if cache.is_dir() else []
    if wheels:
        return wheels[0]
    staging = cache.with_name(cache.name + f".tmp{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    # Build from a copy: building in place would leave build artefacts in the repository.
    source = staging / "src"
    shutil.copytree(LIBRARY_ROOT / version, source, ignore=shutil.ignore_patterns("__pycache__"))
    uv = require_binary(["uv"], install_hint="make setup (installs uv)")
    subprocess.run(
        [uv, "build", "--wheel", "--out-dir", str(staging / "dist"), str(source)],
        check=True,
        capture_output=True,
    )
    cache.mkdir(parents=True, exist_ok=True)
    for wheel in (staging / "dist").glob("*.whl"):
        shutil.copy2(wheel, cache / wheel.name)
    shutil.rmtree(staging, ignore_errors=True)
    return sorted(cache.glob("*.whl"))[0]


def make_git_repository(dest: Path) -> dict[str, str]:
    """A Git repository of battery-lib with one commit and tag ``v<version>`` per version, in order.

    Commit dates and identity are fixed, so the commit ids depend only on the sources. Returns the
    commit id of each version.
    """
    git = require_binary(["git"], install_hint="apt-get install git")
    env = {**os.environ, **_GIT_IDENTITY}
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    subprocess.run([git, "init", "-q", "-b", "main", str(dest)], check=True, env=env)
    commits: dict[str, str] = {}
    for day, version in enumerate(library_versions(), start=1):
        for child in dest.iterdir():
            if child.name != ".git":
                shutil.rmtree(child) if child.is_dir() else child.unlink()
        shutil.copytree(LIBRARY_ROOT / version, dest, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
        stamp = {
            "GIT_AUTHOR_DATE": f"2026-01-{day:02d}T12:00:00Z",
            "GIT_COMMITTER_DATE": f"2026-01-{day:02d}T12:00:00Z",
        }
        subprocess.run([git, "-C", str(dest), "add", "-A"], check=True, env=env)
        subprocess.run(
            [git, "-C", str(dest), "commit", "-q", "-m", f"battery-lib {version}"], check=True, env={**env, **stamp}
        )
        subprocess.run([git, "-C", str(dest), "tag", f"v{version}"], check=True, env={**env, **stamp})
        head = subprocess.run(
            [git, "-C", str(dest), "rev-parse", "HEAD"], check=True, capture_output=True, text=True, env=env
        )
        commits[version] = head.stdout.strip()
    return commits


@dataclass
class PackageIndex:
    """A running pypiserver with every demo version, and the library's Git repository."""

    process: ManagedProcess
    port: int
    wheels: dict[str, Path]
    git_repository: Path
    git_commits: dict[str, str]

    @property
    def url(self) -> str:
        """Base URL of the server."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def simple_url(self) -> str:
        """The PEP 503 simple index pip and uv use."""
        return f"{self.url}/simple/"

    def git_url(self, ref: str) -> str:
        """A PEP 508 direct reference installing battery-lib at ``ref`` (tag, branch or commit)."""
        return f"battery-lib @ git+file://{self.git_repository}@{ref}"

    def stop(self) -> None:
        """Stop the server."""
        self.process.stop()


def _serving(port: int) -> bool:
    if not port_open(port):
        return False
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/simple/", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def start_package_index(root: Path, *, port: int | None = None) -> PackageIndex:
    """Build (or reuse) the wheels, serve them with pypiserver and lay out the Git repository."""
    port = port or free_port()
    packages = root / "packages"
    packages.mkdir(parents=True, exist_ok=True)
    wheels = {}
    for version in library_versions():
        wheel = build_wheel(version)
        shutil.copy2(wheel, packages / wheel.name)
        wheels[version] = packages / wheel.name
    commits = make_git_repository(root / "battery-lib.git")
    server = require_binary(
        [Path(sys.executable).parent / "pypi-server", "pypi-server"],
        install_hint="make setup  (uv sync installs pypiserver from the dev group)",
    )
    process = ManagedProcess(
        name="pypiserver",
        argv=[
            server, "run", "--host", "127.0.0.1", "--port", str(port),
            # No upload, no auth, and never redirect a missing name to PyPI: the index is private.
            "--authenticate", ".", "--passwords", ".", "--disable-fallback",
            str(packages),
        ],
        log_path=root / "pypiserver.log",
    ).start()  # fmt: skip
    process.wait_until(lambda: _serving(port), timeout=30)
    return PackageIndex(process, port, wheels, root / "battery-lib.git", commits)
