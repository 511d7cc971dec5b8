"""The runner image's build context: what every runner image is built from, on the host or in the cluster.

    python scripts/build/runner_context.py requirements [--check]   # images/runner/requirements/*.txt
    python scripts/build/runner_context.py context --out DIR          # prints the context digest

The requirement files are exports of uv.lock with hashes, one per pin set ("profile"); they are committed
so a change to the lock shows in review, and `--check` (a test) fails when they are stale. The context
is the Dockerfile, its bootstrap script, those files, and the eval_runner wheel with its hash: nothing
from the checkout is copied loose, so an image's content follows from the context digest alone. The
core image carries its own context (under /opt/fleet-eval/runner-context), and the workflows build
every library runner from exactly that copy.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
RUNNER = REPO / "images" / "runner"
REQUIREMENTS = RUNNER / "requirements"

# Profile name -> the `uv export` selection that gives its pins. Runner images of library versions
# take `runtime` or `runtime-numpy1` (whichever satisfies the library's requirements); the core image
# (datasets, review UI, compare, gate, fleet bookkeeping) takes `core`; `tools` is the build stage's uv
# and the build backend for libraries built from Git.
PROFILES: dict[str, tuple[str, ...]] = {
    "core": ("--no-dev", "--extra", "review"),
    "runtime": ("--no-dev",),
    "runtime-numpy1": ("--no-dev", "--extra", "numpy1"),
    "tools": ("--only-group", "runner-build"),
}
# pyproject.toml names README.md as the package's description: a fixed stub keeps documentation edits
# out of the wheel, so they change no context digest and rebuild no image.
README_STUB = "# fleet-eval\n\nThe evaluation runner; see the repository README.\n"
CONTEXT_FILES = ("Dockerfile", "bootstrap_uv.py")


def export(profile: str) -> str:
    """The pins of one profile as a hashed requirements file, exported from uv.lock (never re-resolved)."""
    done = subprocess.run(
        ["uv", "export", "--frozen", "--no-emit-project", "--no-emit-workspace", "--no-annotate", *PROFILES[profile]],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


def write_requirements(*, check: bool) -> int:
    """Write (or with ``check``, compare) every profile's export; returns a process exit code."""
    stale = []
    REQUIREMENTS.mkdir(parents=True, exist_ok=True)
    for profile in PROFILES:
        path = REQUIREMENTS / f"{profile}.txt"
        text = export(profile)
        if check:
            if not path.exists() or path.read_text() != text:
                stale.append(path.relative_to(REPO))
        else:
            path.write_text(text)
    if stale:
        names = ", ".join(str(p) for p in stale)
        print(f"stale runner requirements ({names}): run `make runner-requirements`", file=sys.stderr)
        return 1
    return 0


def build_wheel(out: Path) -> Path:
    """Build the eval_runner wheel from a copy of the package with the README stub; return its path."""
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "src"
        src.mkdir()
        shutil.copy2(REPO / "pyproject.toml", src / "pyproject.toml")
        (src / "README.md").write_text(README_STUB)
        shutil.copytree(REPO / "eval_runner", src / "eval_runner", ignore=shutil.ignore_patterns("__pycache__"))
        # hatchling writes fixed timestamps and sorted entries, so the same sources give the same bytes.
        subprocess.run(
            ["uv", "build", "--wheel", "--quiet", "--out-dir", str(out), str(src)],
            check=True,
            env={**os.environ, "SOURCE_DATE_EPOCH": "315532800"},
        )
    (out / ".gitignore").unlink(missing_ok=True)  # uv build leaves one in its output folder
    wheels = sorted(out.glob("fleet_eval-*.whl"))
    if len(wheels) != 1:
        raise SystemExit(f"expected one fleet_eval wheel in {out}, found {[w.name for w in wheels]}")
    return wheels[0]


def digest_of(root: Path) -> str:
    """sha256 over every file's relative path and bytes, in sorted order: the context's identity."""
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file() and p.name != "CONTEXT_DIGEST"):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def write_context(out: Path) -> str:
    """Assemble the context in ``out`` (emptied first) and return its digest."""
    if write_requirements(check=True) != 0:
        raise SystemExit(1)
    if out.exists():
        shutil.rmtree(out)
    (out / "requirements").mkdir(parents=True)
    (out / "dist").mkdir()
    (out / "library").mkdir()  # the build step puts the library's requirement or source here
    (out / "library" / ".keep").write_text("")
    for name in CONTEXT_FILES:
        shutil.copy2(RUNNER / name, out / name)
    for path in sorted(REQUIREMENTS.glob("*.txt")):
        shutil.copy2(path, out / "requirements" / path.name)
    wheel = build_wheel(out / "dist")
    sha = hashlib.sha256(wheel.read_bytes()).hexdigest()
    (out / "dist" / "fleet-eval.txt").write_text(
        f"fleet-eval @ file:///tmp/build/dist/{wheel.name} --hash=sha256:{sha}\n"
    )
    (out / "LOCK_SHA256").write_text(hashlib.sha256((REPO / "uv.lock").read_bytes()).hexdigest() + "\n")
    digest = digest_of(out)
    (out / "CONTEXT_DIGEST").write_text(digest + "\n")
    return digest


def main(argv: list[str] | None = None) -> int:
    """Command line: ``requirements [--check]`` or ``context --out DIR``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    req = sub.add_parser("requirements", help="export uv.lock into images/runner/requirements/")
    req.add_argument("--check", action="store_true", help="fail when the committed files are stale")
    ctx = sub.add_parser("context", help="assemble the build context; prints its digest")
    ctx.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.command == "requirements":
        return write_requirements(check=args.check)
    print(write_context(args.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
