"""The committed YAML is what the Hera modules render, and rendering is deterministic.

Set FLEET_EVAL_REGENERATE=1 to rewrite charts/fleet-eval/files/ instead of failing (as Hera's own
golden-file tests do with HERA_REGENERATE).
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from workflows import render


def test_rendering_is_deterministic(rendered: dict[str, str]) -> None:
    assert render.render() == rendered


def test_every_template_has_a_file(rendered: dict[str, str]) -> None:
    assert {name for name in rendered if name.startswith("workflows/")} == {
        f"workflows/{name}" for name in render.BUILDERS
    }
    assert "policies/default.yaml" in rendered


def test_committed_files_are_current() -> None:
    if os.environ.get("FLEET_EVAL_REGENERATE") == "1":
        render.write()
    outdated = render.stale()
    assert not outdated, (
        f"stale generated files {outdated}: run `make render` (or FLEET_EVAL_REGENERATE=1 pytest tests/workflows)"
    )


def test_stale_detects_edits_and_strays(tmp_path: Path) -> None:
    render.write(tmp_path)
    assert render.stale(tmp_path) == []
    (tmp_path / "workflows" / "evaluate.yaml").write_text("edited: true\n")
    (tmp_path / "workflows" / "gone.yaml").write_text("kind: WorkflowTemplate\n")
    assert render.stale(tmp_path) == ["workflows/evaluate.yaml", "workflows/gone.yaml"]
    render.write(tmp_path)
    assert render.stale(tmp_path) == []
    assert not (tmp_path / "workflows" / "gone.yaml").exists()


def test_normalised_content_round_trips(rendered: dict[str, str]) -> None:
    # A reformatting of the YAML must not hide a semantic change: compare parsed documents too.
    for name, text in rendered.items():
        committed = (render.CHART_FILES / name).read_text()
        assert yaml.safe_load(committed) == yaml.safe_load(text), name
