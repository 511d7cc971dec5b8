"""Render the chart files that follow Python: values.schema.json and the shard count helper.

``python -m workflows.chart_render`` writes them; ``--check`` exits 1 when the committed files are stale
(`make render` and `make render-check` run it after ``workflows.render``). The schema comes from the
typed model in ``workflows.chart_values``; the shard count from ``eval_runner.contracts.N_SHARDS``, the
one place it is set, so the demo shards the chart runs and the URLs it hands the runner cannot drift
from what the simulator serves and ``shard_of`` routes to.
"""

from __future__ import annotations

import json
from pathlib import Path

from eval_runner.contracts import N_SHARDS
from workflows import generated_files
from workflows.chart_values import values_schema

CHART = Path(__file__).resolve().parent.parent / "charts" / "fleet-eval"
SCHEMA = "values.schema.json"
CONTRACTS = "templates/_contracts.tpl"


def _contracts_tpl() -> str:
    return (
        "{{/* Generated from eval_runner/contracts.py by `make render` (python -m workflows.chart_render); do not"
        " edit. */}}\n"
        "{{/* The number of API shards: the demo serves this many and sources.shardUrls lists this many. */}}\n"
        f'{{{{- define "fleet-eval.shardCount" -}}}}{N_SHARDS}{{{{- end -}}}}\n'
    )


def render() -> dict[str, str]:
    """Every file this module generates, by path relative to the chart."""
    return {
        SCHEMA: json.dumps(values_schema(), indent=2) + "\n",
        CONTRACTS: _contracts_tpl(),
    }


def stale(chart: Path = CHART) -> list[str]:
    """Generated paths whose committed content differs from a fresh render (or that are missing)."""
    return sorted(
        path for path, text in render().items() if not (chart / path).is_file() or (chart / path).read_text() != text
    )


def write(chart: Path = CHART) -> list[str]:
    """Write the generated files; returns the ones that changed."""
    changed = stale(chart)
    for path, text in render().items():
        (chart / path).parent.mkdir(parents=True, exist_ok=True)
        (chart / path).write_text(text)
    return changed


def main(argv: list[str] | None = None) -> int:
    """Render into the chart, or with --check report stale files and exit 1."""
    return generated_files.main(
        argv, prog="python -m workflows.chart_render", description=__doc__, stale=stale, write=write,
        shown_under="charts/fleet-eval",
    )  # fmt: skip


if __name__ == "__main__":
    raise SystemExit(main())
