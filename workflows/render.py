"""Render every WorkflowTemplate and CronWorkflow into the chart's files/ (and copy the gate policies).

``python -m workflows.render`` writes them; ``--check`` exits 1 when the committed files are stale.
The chart includes these files verbatim (never through ``tpl``, which would eat Argo's ``{{ }}``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from workflows import dataset_build, evaluate, fleet_rollback, fleet_rollout, generated_files, release

ROOT = Path(__file__).resolve().parent.parent
CHART_FILES = ROOT / "charts" / "fleet-eval" / "files"
WORKFLOWS_DIR = "workflows"
POLICIES_DIR = "policies"

# File name -> (source module, builder). One file per template keeps diffs and lint errors local.
BUILDERS: dict[str, tuple[str, Callable[[], Any]]] = {
    "dataset-build.yaml": ("workflows/dataset_build.py", dataset_build.build),
    "dataset-build-monthly.yaml": ("workflows/dataset_build.py", dataset_build.build_cron),
    "evaluate.yaml": ("workflows/evaluate.py", evaluate.build),
    "fleet-rollout.yaml": ("workflows/fleet_rollout.py", fleet_rollout.build),
    "fleet-rollback.yaml": ("workflows/fleet_rollback.py", fleet_rollback.build),
    "release.yaml": ("workflows/release.py", release.build),
}


class _Dumper(yaml.SafeDumper):
    """Block style for multi-line strings (the step wrapper, scripts) so the YAML stays readable."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def to_yaml(document: dict[str, Any], source: str) -> str:
    """Serialise one manifest deterministically (sorted keys), headed by where it comes from."""
    body = yaml.dump(document, Dumper=_Dumper, sort_keys=True, default_flow_style=False, width=120)
    return f"# Generated from {source} by `make render` (python -m workflows.render); do not edit.\n{body}"


def render() -> dict[str, str]:
    """Every generated file of the chart, by path relative to files/."""
    out = {
        f"{WORKFLOWS_DIR}/{name}": to_yaml(builder().to_dict(), source)
        for name, (source, builder) in sorted(BUILDERS.items())
    }
    for policy in sorted((ROOT / "policies").glob("*.yaml")):
        out[f"{POLICIES_DIR}/{policy.name}"] = policy.read_text()
    return out


def stale(files_dir: Path = CHART_FILES) -> list[str]:
    """Paths under files/ whose content differs from a fresh render, or that a render would delete."""
    wanted = render()
    found = {
        str(p.relative_to(files_dir)): p.read_text()
        for sub in (WORKFLOWS_DIR, POLICIES_DIR)
        for p in sorted((files_dir / sub).glob("*.yaml"))
    }
    return sorted(k for k in wanted.keys() | found.keys() if wanted.get(k) != found.get(k))


def write(files_dir: Path = CHART_FILES) -> list[str]:
    """Write the rendered files and delete generated ones no builder makes any more; returns changes."""
    changed = stale(files_dir)
    wanted = render()
    for sub in (WORKFLOWS_DIR, POLICIES_DIR):
        (files_dir / sub).mkdir(parents=True, exist_ok=True)
        for path in (files_dir / sub).glob("*.yaml"):
            if f"{sub}/{path.name}" not in wanted:
                path.unlink()
    for relative, text in wanted.items():
        (files_dir / relative).write_text(text)
    return changed


def main(argv: list[str] | None = None) -> int:
    """Render into the chart, or with --check report stale files and exit 1."""
    return generated_files.main(
        argv, prog="python -m workflows.render", description=__doc__, stale=stale, write=write,
        shown_under="charts/fleet-eval/files",
    )  # fmt: skip


if __name__ == "__main__":
    raise SystemExit(main())
